"""Churn under load, shared by the reliability tier (test_reliability_churn.py) and
`make soak` (tests/soak_churn.py): the scenario, a client sending requests through a
ClusterIP all the time (Load), and one round of churn (churn_round)."""

import json
import re
import threading
import time

SCENARIO = """
apiVersion: minikp.dev/v1alpha1
kind: Cluster
spec:
  nodes: 2
  clients: [{name: outside}]
---
"""
WEB = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  STRATEGY
  template:
    metadata: {labels: {app: web, version: 'VERSION'}}
    spec:
      containers: [{name: web, image: registry.k8s.io/serve_hostname, ports: [{containerPort: 9376}]}]
"""
SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 9376}EXTRA]
"""


def web(version="1", strategy="", replicas=3):
    return (WEB.replace("VERSION", version).replace("STRATEGY", strategy)
            .replace("replicas: 3", f"replicas: {replicas}"))


def service(extra=""):
    return SERVICE.replace("EXTRA", extra)


class Load:
    """A client sending HTTP requests through a ClusterIP all the time: three threads, each
    running probe processes of 100 requests back to back, so that one is sending while
    another's next process starts."""

    def __init__(self, c, url):
        self.c, self.url, self.results, self.errors = c, url, [], []
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self.run) for _ in range(3)]

    def run(self):
        from minikp import state
        from minikp.client import probe
        try:
            host = state.find_host(self.c.name, state.read(self.c.name), "client/outside")
            while not self.done.is_set():
                self.results.extend(probe(self.c.name, host, "http", self.url, 100,
                                          timeout=2.0, interval=0.002))
        except Exception as e:  # noqa: BLE001 - the test reports it
            self.errors.append(e)

    def __enter__(self):
        for t in self.threads:
            t.start()
            time.sleep(0.2)
        return self

    def __exit__(self, *exc):
        self.done.set()
        for t in self.threads:
            t.join()
        assert not self.errors, self.errors

    def failed(self):
        return [r for r in self.results if not r["ok"]]


def rules(c, node):
    """iptables-save of a node's nat table without its timestamp and packet counters."""
    text = c.cli("rules", node, "--table", "nat").stdout
    return re.sub(r" \[\d+:\d+\]", "", "\n".join(l for l in text.splitlines() if not l.startswith("#")))


def snapshot(c):
    objects = {kind: c.get(kind) for kind in ("pods", "svc", "endpoints", "endpointslices")}
    return json.dumps(objects, sort_keys=True), rules(c, "node-1"), rules(c, "node-2")


def apply(c, tmp_path, name, *docs):
    path = tmp_path / name
    path.write_text("---".join(docs))
    return c.cli("apply", str(path)).stdout


def web_pods(c):
    return {p["metadata"]["name"]: p for p in c.pods("web-")}


def churn_round(c, workdir, i: int) -> None:
    """One round of churn on a running cluster made of SCENARIO + web() + service(): delete
    pods, scale up and down, give the Service a port (or take it away again), roll out a
    new template, scale back to 3."""
    c.cli("delete", "pod", sorted(web_pods(c))[0])
    c.cli("scale", "deployment", "web", "--replicas", "5")
    c.cli("delete", "pod", sorted(web_pods(c))[-1])
    c.cli("scale", "deployment", "web", "--replicas", "2")
    extra = ", {name: alt, port: 8080, targetPort: 9376}" if i % 2 == 0 else ""
    assert "service/web configured" in apply(c, workdir, f"port-{i}.yaml", service(extra))
    old = set(web_pods(c))
    assert "deployment.apps/web configured" in apply(c, workdir, f"v{i}.yaml",
                                                     web(str(i + 2), replicas=2))
    assert not old & set(web_pods(c))
    c.cli("scale", "deployment", "web", "--replicas", "3")


PROBED = WEB.replace("ports: [{containerPort: 9376}]}]", """ports: [{containerPort: 9376}],
                   readinessProbe: {httpGet: {path: /, port: 9376}, initialDelaySeconds: 1,
                                    periodSeconds: 1}}]""")
