"""The supervisor's logic without root, through its two seams: a fake kernel edge (pods are
names, each node's proxier records its syncs) and a fake pod runtime. A pod dies → its
endpoint leaves → every node's proxier gets a partial sync; scale; apply."""

import dataclasses
import json
import shutil
import tempfile

import pytest

from minikp import clock, names, state
from minikp.controller import changes
from minikp.controller.supervisor import Supervisor
from minikp.scenario.load import load_scenario
from minikp.workloads.runtime import RUNTIMES
from fakes import FakeEdge, FakeRuntime

SCENARIO = """
apiVersion: minikp.dev/v1alpha1
kind: Cluster
spec: {nodes: 2}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.k8s.io/serve_hostname, ports: [{containerPort: 9376}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 9376}]
"""


@pytest.fixture
def sup(monkeypatch, tmp_path):
    root = tempfile.mkdtemp(prefix="mkp-", dir="/tmp")  # short: the control socket's path
    monkeypatch.setattr(names, "STATE_ROOT", root)
    f = tmp_path / "s.yaml"
    f.write_text(SCENARIO)
    runtime = FakeRuntime()
    s = Supervisor("seams-unit", [str(f)], load_scenario([str(f)]),
                   runtimes={name: runtime for name in RUNTIMES}, edge=FakeEdge)
    s.runtime = runtime
    s.up()
    yield s
    s.control.close()
    shutil.rmtree(root)


def terminated(s):
    """What the serve loop does once the Terminating pods' Stoppers are done."""
    for t in list(s.terminations.values()):
        assert t.done.wait(5)
    s.finish_terminations()


def web_pods(s):
    return [p for p in s.plan.pods if p.owner_name == "web"]


def proxiers(s):
    return s.edge.proxiers.values()


def endpoints(s):
    """The web Service's ready endpoints as every node's proxier has them: one set."""
    seen = {frozenset(p.endpoints("default/web")) for p in proxiers(s)}
    assert len(seen) == 1, seen  # every node agrees
    return set(next(iter(seen)))


def test_up_starts_every_pod_through_the_runtime_and_syncs_every_node(sup):
    assert len(sup.edge.proxiers) == 2 and all(p.syncs[0].full for p in proxiers(sup))
    pods = {f"{p.namespace}/{p.name}" for p in sup.plan.pods}
    assert sup.edge.pods == pods and len(pods) == 5  # 3 web + 2 coredns
    assert {h.rsplit("/", 1)[0] for h in sup.runtime.running} == pods
    assert endpoints(sup) == {f"{p.ip}:9376" for p in web_pods(sup)}


def test_a_pod_that_dies_leaves_every_nodes_endpoints_in_a_partial_sync(sup):
    dead = web_pods(sup)[1]
    dead.template = dataclasses.replace(dead.template, restart_policy="Never")  # stays down
    before = [len(p.syncs) for p in proxiers(sup)]
    sup.runtime.kill(f"default/{dead.name}")
    sup.check_pods()
    for p, n in zip(proxiers(sup), before):
        assert len(p.syncs) == n + 1
        assert not p.syncs[-1].full and p.syncs[-1].changed == {"default/web"}
    assert endpoints(sup) == {f"{p.ip}:9376" for p in web_pods(sup) if p is not dead}
    sup.settle()
    pod = next(p for p in state.read("seams-unit")["pods"] if p["metadata"]["name"] == dead.name)
    assert pod["status"]["phase"] == "Failed"
    assert any(e["type"] == "PodFailed" and dead.name in e["message"] for e in sup.events.since(0))


def test_scale_up_and_down_changes_pods_runtime_and_endpoints(sup):
    changes.scale(sup, {"kind": "deployment", "name": "web", "replicas": 5})
    assert len(web_pods(sup)) == 5
    assert endpoints(sup) == {f"{p.ip}:9376" for p in web_pods(sup)}
    assert all(not p.syncs[-1].full for p in proxiers(sup))
    changes.scale(sup, {"kind": "deployment", "name": "web", "replicas": 1})
    [left] = [p for p in web_pods(sup) if f"default/{p.name}" not in sup.terminations]
    assert endpoints(sup) == {f"{left.ip}:9376"}  # the Terminating ones are not ready
    terminated(sup)
    assert web_pods(sup) == [left]
    assert {h for h in sup.runtime.running if "/web-" in h} == {f"default/{left.name}/web"}
    assert sup.edge.pods == {f"{p.namespace}/{p.name}" for p in sup.plan.pods}
    assert set(sup.records) == sup.edge.pods


def test_apply_uses_the_scenario_the_cli_loaded_and_loads_nothing(sup, tmp_path, monkeypatch):
    f = tmp_path / "more.yaml"
    f.write_text(SCENARIO.split("---", 1)[1].replace("replicas: 3", "replicas: 2")
                 + "---\napiVersion: v1\nkind: Service\nmetadata: {name: api}\n"
                 "spec: {selector: {app: web}, ports: [{port: 8080, targetPort: 9376}]}\n")
    loaded = load_scenario([str(f)])

    def no_loading(*a, **kw):
        raise AssertionError("the supervisor loaded the file again")
    monkeypatch.setattr("minikp.scenario.load.load_scenario", no_loading)
    report = changes.apply(sup, {"file": str(f), "scenario": loaded})
    assert report.splitlines() == ["service/web unchanged", "service/api created",
                                   "deployment.apps/web scaled"]
    terminated(sup)  # the pod scaled away is gone once its Stopper is done
    assert len(web_pods(sup)) == 2
    for p in proxiers(sup):
        assert p.endpoints("default/api") == p.endpoints("default/web") == {
            f"{q.ip}:9376" for q in web_pods(sup)}
        assert not p.syncs[-1].full
    sup.settle()
    st = state.read("seams-unit")
    assert "api" in {s["metadata"]["name"] for s in st["services"]}
    json.dumps(st)  # state.json stays plain JSON


def test_a_container_that_dies_is_restarted_by_its_restart_policy(sup):
    """restartPolicy Always (a Deployment's): the kubelet starts it again at once (then
    after 10 s, 20 s, ...); the pod counts the restart and serves again."""
    pod = web_pods(sup)[0]
    sup.runtime.kill(f"default/{pod.name}", code=2)
    sup.check_pods()
    assert f"default/{pod.name}/web" in sup.runtime.running
    assert endpoints(sup) == {f"{p.ip}:9376" for p in web_pods(sup)}
    types = [e["type"] for e in sup.events.since(0) if pod.name in e["message"]]
    assert "ContainerExited" in types and "ContainerRestarted" in types and "PodFailed" not in types
    sup.settle()
    st = next(p for p in state.read("seams-unit")["pods"] if p["metadata"]["name"] == pod.name)
    assert st["status"]["phase"] == "Running"
    assert st["status"]["containerStatuses"][0]["restartCount"] == 1
    sup.runtime.kill(f"default/{pod.name}", code=2)  # again: now the back-off waits 10 s
    sup.check_pods()
    sup.proxy_loop.wait_synced()  # a sync this soon after the last one waits minSyncPeriod
    assert f"default/{pod.name}/web" not in sup.runtime.running
    assert f"{pod.ip}:9376" not in endpoints(sup)
    sup.settle()
    st = next(p for p in state.read("seams-unit")["pods"] if p["metadata"]["name"] == pod.name)
    assert st["status"]["containerStatuses"][0]["state"] == {"waiting": {"reason": "CrashLoopBackOff"}}


def test_a_deleted_pod_is_terminating_its_replacement_comes_at_once(sup):
    victim = web_pods(sup)[0]
    changes.delete(sup, {"kind": "pod", "name": victim.name, "namespace": "default"})
    assert f"default/{victim.name}" in sup.terminations and len(web_pods(sup)) == 4
    (addr,) = [a for a in sup.endpoints["default/web"].addresses if a.pod == victim.name]
    assert (addr.ready, addr.serving, addr.terminating) == (False, True, True)
    sup.settle()
    pod = next(p for p in state.read("seams-unit")["pods"] if p["metadata"]["name"] == victim.name)
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 30
    terminated(sup)
    assert victim not in web_pods(sup) and len(web_pods(sup)) == 3
    assert f"default/{victim.name}" not in sup.edge.pods
    assert any(e["type"] == "PodDeleted" and victim.name in e["message"]
               for e in sup.events.since(0) + sup.events.pending)


LOCAL_LB = SCENARIO.replace("spec:\n  selector: {app: web}",
                            "spec:\n  type: LoadBalancer\n  externalTrafficPolicy: Local\n"
                            "  selector: {app: web}")


def test_an_etp_local_load_balancer_follows_the_health_checks(monkeypatch, tmp_path):
    root = tempfile.mkdtemp(prefix="mkp-", dir="/tmp")
    monkeypatch.setattr(names, "STATE_ROOT", root)
    f = tmp_path / "s.yaml"
    f.write_text(LOCAL_LB)
    s = Supervisor("seams-unit", [str(f)], load_scenario([str(f)]),
                   runtimes={name: FakeRuntime() for name in RUNTIMES}, edge=FakeEdge)
    s.up()
    try:
        (ip,) = s.edge.lb_routes
        nodes = {p.node for p in web_pods(s)}
        assert s.edge.lb_routes[ip] == sorted(nodes)
        for p in [p for p in web_pods(s) if p.node == "node-1"]:
            changes.delete(s, {"kind": "pod", "name": p.name, "namespace": "default"})
        # node-1's health server follows once its proxier applied the change (a batched
        # sync: minSyncPeriod later); the load balancer sees it at its next check
        monkeypatch.setattr(clock, "_offset", clock._offset)
        clock.advance(s.plan.config.proxy_options.min_sync_period_s)
        s.proxy_loop.tick()
        assert s.health["node-1"].counts.get("default/web", 0) == sum(
            p.node == "node-1" and f"default/{p.name}" not in s.terminations for p in web_pods(s))
        s.lb_checks.next_at = 0
        s.check_load_balancers(1.0)
        want = sorted({p.node for p in web_pods(s) if f"default/{p.name}" not in s.terminations})
        assert s.edge.lb_routes[ip] == want
    finally:
        s.control.close()
        shutil.rmtree(root)
