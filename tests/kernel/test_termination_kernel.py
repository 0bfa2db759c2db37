"""The termination model with real pods: no request fails while a pod is deleted under load
through an externalTrafficPolicy Local LoadBalancer; a Terminating pod's endpoint conditions;
preStop exec, httpGet and sleep; SIGKILL when the grace period runs out; kube-proxy's health
check server on healthCheckNodePort."""

import json
import os
import threading
import time

import yaml

from minikp import names

LB_SCENARIO = """
apiVersion: minikp.dev/v1alpha1
kind: Cluster
spec:
  nodes: 2
  clients: [{name: outside}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/serve_hostname
        ports: [{containerPort: 9376}]
        readinessProbe:   # a new pod is Ready only after 2 s: the node is drained meanwhile
          httpGet: {path: /, port: 9376}
          initialDelaySeconds: 2
          periodSeconds: 1
        lifecycle:
          preStop:        # keep serving until the load balancer has drained the node
            sleep: {seconds: 3}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: web}
  ports: [{port: 80, targetPort: 9376}]
"""


def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def events(c):
    return c.cli("events").stdout


def health(c, node_ip, port):
    r = c.cli("exec", "client/outside", "--", "curl", "-s", "-w", "\n%{http_code}",
              f"http://{node_ip}:{port}/")
    text, _, code = r.stdout.rpartition("\n")
    return int(code), json.loads(text)


def test_no_request_fails_while_a_pod_is_deleted_under_load_through_an_etp_local_lb(cluster_factory):
    c = cluster_factory(LB_SCENARIO, name="termination-lb")
    wait_for(lambda: all(p["status"]["conditions"][0]["status"] == "True" for p in c.pods("web-")))
    lb_ip = c.svc("web")["status"]["loadBalancer"]["ingress"][0]["ip"]
    victim = next(p for p in c.pods("web-") if p["spec"]["nodeName"] == "node-1")
    results, done = [], threading.Event()

    def load():
        while not done.is_set():
            results.extend(c.probe("client/outside", "http", f"http://{lb_ip}/", 10, timeout=2.0))

    t = threading.Thread(target=load)
    t.start()
    try:
        time.sleep(0.5)
        c.cli("delete", "pod", victim["metadata"]["name"])  # waits until it is gone
        time.sleep(1.5)
    finally:
        done.set()
        t.join()
    failed = [r for r in results if not r["ok"]]
    assert len(results) > 40 and failed == [], failed[:3]
    log = events(c)
    # node-1 had only terminating endpoints for a while: its health check failed, the load
    # balancer drained it, and took it back once the replacement was Ready there (or not)
    assert "load balancer " + lb_ip + " → node-2" in log, log[-2000:]
    assert "preStop sleep done" in log


HOOKS = """
apiVersion: minikp.dev/v1alpha1
kind: Cluster
spec:
  nodes: 1
---
apiVersion: v1
kind: Pod
metadata: {name: sleeper, labels: {app: web}}
spec:
  containers:
  - name: web
    image: registry.k8s.io/serve_hostname
    ports: [{containerPort: 9376}]
    lifecycle: {preStop: {sleep: {seconds: 2}}}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 9376}]
---
apiVersion: v1
kind: Pod
metadata: {name: execer}
spec:
  terminationGracePeriodSeconds: 3   # PID 1 ignores SIGTERM: killed after 3 s, not the default 30
  volumes: [{name: out, hostPath: {path: "OUT"}}]
  containers:
  - name: c
    image: python
    command: [python3, -m, http.server, "8080"]
    volumeMounts: [{name: out, mountPath: /out}]
    lifecycle: {preStop: {exec: {command: [sh, -c, "echo bye > /out/prestop"]}}}
---
apiVersion: v1
kind: Pod
metadata: {name: getter}
spec:
  terminationGracePeriodSeconds: 3   # as execer
  containers:
  - name: c
    image: python
    command: [python3, -m, http.server, "8080"]
    ports: [{containerPort: 8080, name: http}]
    lifecycle: {preStop: {httpGet: {path: /drain-me, port: http}}}
---
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 3
  containers:   # PID 1 of its sandbox without a SIGTERM handler: SIGTERM does nothing
  - {name: c, image: python, command: [python3, -m, http.server, "8080"]}
---
apiVersion: v1
kind: Pod
metadata: {name: now}
spec:
  containers:
  - {name: c, image: python, command: [python3, -m, http.server, "8080"]}
"""


def slice_conditions(c, pod):
    doc = yaml.safe_load(c.cli("get", "endpointslices", "-o", "yaml").stdout)
    for s in doc["items"]:
        for e in s.get("endpoints") or []:
            if (e.get("targetRef") or {}).get("name") == pod:
                return e["conditions"]
    return None


def test_terminating_endpoint_pre_stop_hooks_and_the_grace_period(cluster_factory, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    c = cluster_factory(HOOKS.replace("OUT", str(out)), name="termination-hooks")
    ip = next(p for p in c.pods() if p["metadata"]["name"] == "sleeper")["status"]["podIP"]

    # sleep: Terminating for 2 s, its endpoint not ready but serving and terminating
    t0 = time.monotonic()
    c.cli("delete", "pod", "sleeper", "--wait=false")
    assert slice_conditions(c, "sleeper") == {"ready": False, "serving": True, "terminating": True}
    assert "Terminating" in c.cli("get", "pods").stdout
    assert f"{ip}:9376" in c.cli("rules", "node-1", "--table", "nat").stdout
    # gone once its preStop sleep is over, well before its 30 s grace period (a loaded
    # machine's CLI calls are slow: 10 s of polling once fell just short)
    assert wait_for(lambda: slice_conditions(c, "sleeper") is None, 25)
    assert time.monotonic() - t0 < 25, "it waited for its grace period, not its preStop"
    assert time.monotonic() - t0 > 1.9, "gone before its preStop sleep was over"

    # exec: the command ran in the container, before it was stopped
    c.cli("delete", "pod", "execer")
    assert (out / "prestop").read_text() == "bye\n"

    # httpGet: the pod's server was asked for the path (its log says so)
    c.cli("delete", "pod", "getter")
    log = os.path.join(names.state_dir(c.name), "pods", "default_getter.c.log")
    assert "GET /drain-me" in open(log).read()

    # a workload that ignores SIGTERM is killed when the grace period runs out
    t0 = time.monotonic()
    c.cli("delete", "pod", "stubborn")
    took = time.monotonic() - t0
    assert 2.8 < took < 8, took
    assert "killed (SIGKILL) when the grace period ran out" in events(c)

    # --grace-period 0: at once
    t0 = time.monotonic()
    c.cli("delete", "pod", "now", "--grace-period", "0")
    assert time.monotonic() - t0 < 2
    assert not [p for p in c.pods() if p["metadata"]["name"] in ("sleeper", "execer", "getter",
                                                                   "stubborn", "now")]


HEALTH = """
apiVersion: minikp.dev/v1alpha1
kind: Cluster
spec:
  nodes: 2
  clients: [{name: outside}]
---
apiVersion: v1
kind: Pod
metadata: {name: one, labels: {app: web}}
spec:
  nodeName: node-1
  containers: [{name: web, image: registry.k8s.io/serve_hostname, ports: [{containerPort: 9376}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  healthCheckNodePort: 32100
  selector: {app: web}
  ports: [{port: 80, targetPort: 9376}]
"""


def test_health_check_node_port_answers_200_with_local_endpoints_503_without(cluster_factory):
    c = cluster_factory(HEALTH, name="termination-health")
    node_ip = {n["metadata"]["name"]: n["status"]["addresses"][0]["address"] for n in c.get("nodes")}
    want = {"service": {"namespace": "default", "name": "web"}, "serviceProxyHealthy": True}
    assert health(c, node_ip["node-1"], 32100) == (200, {**want, "localEndpoints": 1})
    assert health(c, node_ip["node-2"], 32100) == (503, {**want, "localEndpoints": 0})
    # the load balancer sends the address only where the check passes
    assert "load balancer " in events(c) and "→ node-1\n" in events(c)


def test_the_terminating_sheet_runs_and_shows_a_terminating_endpoint():
    from pathlib import Path

    from test_docs_run import run_document

    ran = run_document(Path(__file__).resolve().parents[2] / "scenarios/terminating.md",
                       "termination-docs")
    pods = [out for cmd, out in ran if cmd.startswith("minikp get pods")]
    assert "Terminating" not in pods[0] and "1/1" in pods[0] and "Terminating" in pods[1], pods
    slices = next(out for cmd, out in ran if cmd.startswith("minikp get endpointslices"))
    assert "terminating: true" in slices and "serving: true" in slices, slices
    assert "20 answered, 0 failed" in next(out for cmd, out in ran if "curl http://172.18" in cmd)
