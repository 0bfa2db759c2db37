"""Churn under load (the standing reliability tier): while a client sends requests through
a ClusterIP all the time, pods are deleted, the Deployment is scaled up and down, its
Service gains a port and its template changes (rolled out with the default strategy):
not one request fails. A refused apply afterwards changes nothing, in any node's rules.
Also: the rollout's order (a new pod Ready before an old one goes; an old pod out of every
node's proxy before its workload stops; at most replicas + maxSurge pods) and Recreate's."""

import time

from churn import (PROBED, SCENARIO, Load, apply, churn_round, service, snapshot, web,
                   web_pods)
from minikp.controller.control import request


def test_churn_under_load_fails_no_request_and_a_refused_apply_changes_nothing(
        cluster_factory, tmp_path):
    c = cluster_factory(SCENARIO + web() + "---" + service())
    ip = c.svc("web")["spec"]["clusterIP"]
    with Load(c, f"http://{ip}/") as load:
        churn_round(c, tmp_path, 0)
        time.sleep(0.3)
    failed = load.failed()
    print(f"\nchurn under load: {len(load.results)} requests, {len(failed)} failed")
    assert len(load.results) > 100 and failed == [], failed[:3]
    assert all(r["ok"] for r in c.probe("client/outside", "http", f"http://{ip}:8080/", 5))
    assert {p["metadata"]["labels"]["version"] for p in web_pods(c).values()} == {"2"}

    # a refused apply (a good Service, then a template change that does not fit) changes nothing
    before = snapshot(c)
    bad = tmp_path / "bad.yaml"
    bad.write_text(service(", {name: more, port: 8081, targetPort: 9376}") + "---"
                   + web("3", replicas=600))
    r = c.cli("apply", str(bad), check=False)
    assert r.returncode == 2 and "do not fit" in r.stderr, r.stderr
    assert snapshot(c) == before


def test_rolling_update_order_and_recreate(cluster_factory, tmp_path):
    c = cluster_factory(SCENARIO + web() + "---" + service())
    ip = c.svc("web")["spec"]["clusterIP"]
    old = web_pods(c)
    seq = request(c.name, "events")[-1]["seq"]
    with Load(c, f"http://{ip}/") as load:
        apply(c, tmp_path, "v2.yaml", web("2"))
    assert load.failed() == [] and len(load.results) > 20, load.failed()[:3]
    new = web_pods(c)
    assert len(new) == 3 and not set(old) & set(new)
    old_hash = {p["metadata"]["labels"]["pod-template-hash"] for p in old.values()}
    new_hash = {p["metadata"]["labels"]["pod-template-hash"] for p in new.values()}
    assert len(new_hash) == 1 and new_hash != old_hash
    rs = f"web-{new_hash.pop()}"  # a new ReplicaSet: <deployment>-<pod-template-hash>
    for name, p in new.items():
        assert name.startswith(rs + "-") and p["metadata"]["ownerReferences"][0]["name"] == rs

    events = [e for e in request(c.name, "events") if e["seq"] > seq]
    live, most = len(old), len(old)
    first_ready = first_gone = None
    for i, e in enumerate(events):
        pod = e.get("pod", "").removeprefix("default/")
        if e["type"] == "PodCreated":
            live += 1
            most = max(most, live)
        elif e["type"] == "PodTerminating":  # no longer counted by the Deployment controller
            live -= 1
            first_gone = i if first_gone is None else first_gone
            assert pod in old
        elif e["type"] == "PodDeleted":
            assert pod in old
            # out of every node's proxy before its workload stopped
            synced = {x["node"] for x in events[:i] if x["type"] == "ProxySynced"
                      and "deleting " in x["message"] and f"default/{pod}" in x["message"]}
            assert synced == {"node-1", "node-2"}, (pod, synced)
        elif e["type"] == "PodReady" and pod in new and first_ready is None:
            first_ready = i
    # Terminating pods do not count (the Deployment controller's default before
    # podReplacementPolicy): at most replicas + maxSurge (25% of 3: 1) pods that are not
    assert most == 3 + 1, "more pods than replicas + maxSurge (25% of 3: 1)"
    scaled = [e["message"] for e in events if e["type"] == "ScalingReplicaSet"]
    old_rs = f"web-{next(iter(old_hash))}"
    assert scaled == [f"Scaled up replica set {rs} to 1", f"Scaled down replica set {old_rs} to 2",
                      f"Scaled up replica set {rs} to 2", f"Scaled down replica set {old_rs} to 1",
                      f"Scaled up replica set {rs} to 3", f"Scaled down replica set {old_rs} to 0"]
    assert first_ready is not None and first_gone is not None and first_ready < first_gone

    seq = request(c.name, "events")[-1]["seq"]
    apply(c, tmp_path, "v3.yaml", web("3", "strategy: {type: Recreate}"))
    events = [e for e in request(c.name, "events") if e["seq"] > seq]
    kinds = [e["type"] for e in events if e["type"] in ("PodCreated", "PodDeleted")]
    assert kinds == ["PodDeleted"] * 3 + ["PodCreated"] * 3, kinds
    assert {p["metadata"]["labels"]["version"] for p in web_pods(c).values()} == {"3"}

    # checked against the live cluster's nodes (a file alone describes a one-node cluster)
    pinned = web("4").replace("    spec:\n      containers", "    spec:\n      nodeName: node-2\n      containers")
    apply(c, tmp_path, "pinned.yaml", pinned)
    assert {p["spec"]["nodeName"] for p in web_pods(c).values()} == {"node-2"}


def test_a_rollout_waits_for_the_readiness_probe_of_each_new_pod(cluster_factory, tmp_path):
    """A new pod that listens but whose readinessProbe has not passed yet is not Ready: an
    old pod may go only once it is (else requests meet fewer endpoints than the budget)."""
    probed = lambda version: PROBED.replace("VERSION", version).replace("STRATEGY", "")  # noqa: E731
    c = cluster_factory(SCENARIO + probed("1") + "---" + service())
    old = set(web_pods(c))
    seq = request(c.name, "events")[-1]["seq"]
    apply(c, tmp_path, "v2.yaml", probed("2"))
    events = [e for e in request(c.name, "events") if e["seq"] > seq]
    ready, gone = [], []
    for e in events:
        pod = e.get("pod", "").removeprefix("default/")
        if e["type"] == "PodReady" and pod not in old:
            ready.append(pod)
        elif e["type"] == "PodDeleted":
            assert len(ready) > len(gone), f"{pod} deleted while only {ready} were Ready"
            gone.append(pod)
    assert sorted(gone) == sorted(old) and len(ready) == 3
