"""A living cluster: pods that die, deletes and scaling with rules and DNS following,
apply of a changed Service, no failed request while a pod is deleted under load, readiness
probes, rules flushed behind the proxy's back, and DNS answering through a dnsmasq restart."""

import subprocess
import sys
import threading
import time

# clients search only the cluster domain, as a machine pointed at the cluster DNS would
WEB = "http://web.default.svc.cluster.local/"

WEB_OBJECTS = """
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
SCENARIO = """
apiVersion: minikp.dev/v1alpha1
kind: Cluster
spec:
  nodes: 2
  clients: [{name: outside}]
---""" + WEB_OBJECTS + """---
apiVersion: v1
kind: Pod
metadata: {name: worker, labels: {app: web}}
spec:
  restartPolicy: Never  # a workload that exits stays down: the pod fails
  containers:
  - name: c
    image: busybox
    command: [python3, -m, http.server, "9376", --bind, 0.0.0.0]
    ports: [{containerPort: 9376}]
"""


def rules(c, node="node-1"):
    return c.cli("rules", node, "--table", "nat").stdout


def endpoint_ips(c):
    eps = next(e for e in c.get("endpoints") if e["metadata"]["name"] == "web")
    return sorted(a["ip"] for s in eps.get("subsets", []) for a in s.get("addresses", []))


def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def test_a_dead_workload_leaves_every_nodes_rules(cluster_factory):
    c = cluster_factory(SCENARIO)
    worker = next(p for p in c.pods() if p["metadata"]["name"] == "worker")
    ip = worker["status"]["podIP"]
    assert ip in endpoint_ips(c) and f"{ip}:9376" in rules(c, "node-2")
    # kill the command's process by its PID, found by its network namespace
    from minikp import names
    from minikp.fabric.teardown import processes_in
    pids = processes_in([names.pod_netns(c.name, "default", "worker")])
    assert pids
    for pid in pids:
        subprocess.run(["kill", "-9", str(pid)], check=True)
    t0 = time.monotonic()
    assert wait_for(lambda: f"{ip}:9376" not in rules(c, "node-1") and f"{ip}:9376" not in rules(c, "node-2"))
    print(f"endpoint left both nodes' rules {time.monotonic() - t0:.2f}s after the kill")
    assert ip not in endpoint_ips(c)
    assert next(p for p in c.pods() if p["metadata"]["name"] == "worker")["status"]["phase"] == "Failed"
    names_seen = set(c.answers("client/outside", "http://web.default.svc.cluster.local/", 30))
    assert all(not n.startswith("ERROR") for n in names_seen) and len(names_seen) == 3


def test_scale_and_delete_with_rules_and_dns_following(cluster_factory):
    c = cluster_factory(SCENARIO)
    watcher = subprocess.Popen([sys.executable, "-m", "minikp.cli", "get", "--name", c.name,
                                "pods", "--watch"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # the first table is printed and the watch is open
        c.cli("scale", "deployment", "web", "--replicas", "5")
        assert len(c.pods("web-")) == 5 and len(endpoint_ips(c)) == 6
        time.sleep(0.5)
    finally:
        watcher.terminate()
        watched = watcher.communicate(timeout=5)[0]
    for pod in c.pods("web-"):  # every pod in a row, the two new ones in rows after the table
        assert pod["metadata"]["name"] in watched
    assert watched.count("\n") >= 1 + 4 + 2, watched
    assert rules(c).count("-j KUBE-SEP-") >= 6
    got = set(c.answers("client/outside", WEB, 80))
    assert len(got) == 6, got
    c.cli("scale", "deployment", "web", "--replicas", "1")
    assert len(c.pods("web-")) == 1 and len(endpoint_ips(c)) == 2
    victim = c.pods("web-")[0]["metadata"]["name"]
    c.cli("delete", "pod", victim)
    pods = c.pods("web-")
    assert len(pods) == 1 and pods[0]["metadata"]["name"] != victim  # replaced, new name
    assert victim not in set(c.answers("client/outside", WEB, 10))
    events = c.cli("events").stdout
    assert "PodDeleted" in events and "partial sync" in events


def test_apply_a_changed_service(cluster_factory, tmp_path):
    c = cluster_factory(SCENARIO)
    ip = c.svc("web")["spec"]["clusterIP"]
    changed = tmp_path / "changed.yaml"
    changed.write_text("""
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 8080, targetPort: 9376, nodePort: 30777}]
""")
    out = c.cli("apply", str(changed)).stdout
    assert "service/web configured" in out
    svc = c.svc("web")
    assert svc["spec"]["clusterIP"] == ip and svc["spec"]["ports"][0]["nodePort"] == 30777
    assert c.probe("client/outside", "http", "http://172.18.0.3:30777/")[0]["ok"]
    assert c.probe("client/outside", "http", f"http://{ip}:8080/")[0]["ok"]
    assert c.probe("client/outside", "tcp", f"{ip}:80", timeout=0.5)[0]["ok"] is False
    bad = tmp_path / "bad.yaml"
    bad.write_text(changed.read_text().replace("30777", "3"))
    r = c.cli("apply", str(bad), check=False)
    assert r.returncode == 2 and "nodePort" in r.stderr
    assert c.svc("web")["spec"]["ports"][0]["nodePort"] == 30777  # bad input changed nothing


def test_no_failed_request_while_a_pod_is_deleted(cluster_factory):
    c = cluster_factory(SCENARIO)
    results = []
    done = threading.Event()

    def load():
        while not done.is_set():
            results.extend(c.probe("client/outside", "http", WEB, 20, timeout=2.0))

    t = threading.Thread(target=load)
    t.start()
    time.sleep(0.5)
    c.cli("delete", "pod", c.pods("web-")[0]["metadata"]["name"])
    time.sleep(0.5)
    done.set()
    t.join()
    failed = [r for r in results if not r["ok"]]
    assert len(results) > 40 and failed == [], failed[:3]


PROBED = WEB_OBJECTS.replace("replicas: 3", "replicas: 1") + """---
apiVersion: v1
kind: Pod
metadata: {name: probed, labels: {app: web}}
spec:
  volumes: [{name: docroot, hostPath: {path: "DOCROOT"}}]  # the sandbox shows only what is declared
  containers:
  - name: c
    image: python
    command: [python3, -m, http.server, "9376", --directory, /docroot]
    volumeMounts: [{name: docroot, mountPath: /docroot}]
    ports: [{containerPort: 9376, name: http}]
    readinessProbe:
      httpGet: {path: /ready, port: http}
      periodSeconds: 1
      failureThreshold: 2
"""


def test_readiness_probe_failing_and_recovering(cluster_factory, tmp_path):
    docroot = tmp_path / "docroot"
    docroot.mkdir()
    c = cluster_factory(PROBED.replace("DOCROOT", str(docroot)))
    probed = next(p for p in c.pods() if p["metadata"]["name"] == "probed")
    ip = probed["status"]["podIP"]
    ready = lambda: next(x["status"] == "True" for x in  # noqa: E731
                         next(p for p in c.pods() if p["metadata"]["name"] == "probed")
                         ["status"]["conditions"] if x["type"] == "Ready")
    # /ready answers 404: running, not ready, not an endpoint, not in any node's rules
    assert probed["status"]["phase"] == "Running" and not ready()
    assert ip not in endpoint_ips(c) and ip not in rules(c)
    (docroot / "ready").write_text("ok")
    assert wait_for(lambda: ip in endpoint_ips(c), 5), "endpoint did not appear once the probe passed"
    assert f"{ip}:9376" in rules(c) and ready()
    (docroot / "ready").unlink()
    assert wait_for(lambda: ip not in endpoint_ips(c), 6), "endpoint stayed after the probe failed"
    assert f"{ip}:9376" not in rules(c)


def test_dns_keeps_answering_while_a_restart_type_update_lands(cluster_factory, tmp_path):
    """An ExternalName adds a CNAME, which dnsmasq reads only at start: each DNS pod leaves
    the kube-dns endpoints while its dnsmasq restarts, so no query meets a closed port."""
    from minikp.client import probe
    from minikp import state
    c = cluster_factory(SCENARIO)
    ext = tmp_path / "ext.yaml"
    ext.write_text("""
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {type: ExternalName, externalName: db.example.test}
""")
    host = state.find_host(c.name, state.read(c.name), "worker")
    results = []
    t = threading.Thread(target=lambda: results.extend(probe(
        c.name, host, "dns", "web.default.svc.cluster.local", 400, timeout=2.0, interval=0.002)))
    t.start()
    time.sleep(0.3)
    c.cli("apply", str(ext))
    t.join()
    failed = [r for r in results if not r["ok"]]
    assert len(results) == 400 and failed == [], failed[:3]
    assert "PodNotReady" not in c.cli("events").stdout  # readiness of pods untouched
    assert "restarting DNS in kube-system/coredns-" in c.cli("events").stdout


def test_rules_flushed_behind_the_proxys_back_come_back(cluster_factory):
    """kube-proxy's canary monitor: every syncPeriod (1s here) each node's KUBE-PROXY-CANARY
    is looked for; gone means someone flushed iptables (firewalld reload, iptables -X)."""
    c = cluster_factory(SCENARIO.replace("  nodes: 2\n", "  nodes: 2\n  proxy: {syncPeriod: 1s}\n"))
    assert "KUBE-SVC-" in rules(c)
    # flushed, then read at once in the same shell: a separate `minikp rules` would race the
    # 1 s canary check (up to a third of the time it saw the rules already restored)
    after = c.cli("exec", "node/node-1", "--", "sh", "-c",
                  "for t in nat mangle filter; do iptables-legacy -t $t -F; iptables-legacy -t $t -X;"
                  " done; iptables-legacy-save -t nat").stdout
    assert "*nat" in after and "KUBE-" not in after
    assert wait_for(lambda: "KUBE-SVC-" in rules(c), 5), "rules not restored"
    assert set(c.answers("node/node-1", WEB, 40)) >= {p["metadata"]["name"] for p in c.pods("web-")}
    assert "RulesFlushed" in c.cli("events").stdout


def test_state_is_written_before_the_event_that_announces_it(cluster_factory):
    """Every event has a sequence number; when a watcher sees event N, state.json already
    says it reflects N or later, so a reader never waits for the file to catch up."""
    from minikp import state
    from minikp.controller.control import request, watch
    c = cluster_factory(SCENARIO)
    start = request(c.name, "events")[-1]["seq"]
    assert state.read(c.name)["seq"] >= start
    seen = []

    def follow():
        for ev in watch(c.name, since=start):
            seen.append((ev["seq"], ev["type"], state.read(c.name)["seq"]))

    threading.Thread(target=follow, daemon=True).start()
    c.cli("scale", "deployment", "web", "--replicas", "5")
    c.cli("delete", "pod", c.pods("web-")[0]["metadata"]["name"])
    last = request(c.name, "events")[-1]["seq"]
    assert wait_for(lambda: seen and seen[-1][0] == last), seen
    assert [s[0] for s in seen] == list(range(start + 1, last + 1))  # none lost, in order
    assert {"PodCreated", "PodReady", "PodDeleted", "ProxySynced"} <= {s[1] for s in seen}
    assert [s for s in seen if s[2] < s[0]] == [], "state older than an event already seen"
