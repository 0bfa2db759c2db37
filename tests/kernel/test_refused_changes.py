"""A refused change changes nothing (issue 9.3, 9.4): an `apply` or `scale` that exits 2
leaves every object, every node's rules and the allocator's free names and addresses as
they were; a later resync does not lose what the refused change touched."""

import json
import re

from minikp.controller.control import request

SCENARIO = """
apiVersion: minikp.dev/v1alpha1
kind: Cluster
spec:
  nodes: 1
  clients: [{name: outside}]
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
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 9376, nodePort: 30080}]
"""


def snapshot(c):
    """What a user can see of the cluster: objects and the node's rules."""
    objects = {kind: c.get(kind) for kind in ("pods", "svc", "endpoints", "endpointslices")}
    return json.dumps(objects, sort_keys=True), rules(c)


def rules(c, node="node-1"):
    """iptables-save of the node's nat table without its timestamp and packet counters."""
    text = c.cli("rules", node, "--table", "nat").stdout
    return re.sub(r" \[\d+:\d+\]", "", "\n".join(l for l in text.splitlines() if not l.startswith("#")))


def refused(c, *args, says):
    before = snapshot(c)
    r = c.cli(*args, check=False)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert says in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert snapshot(c) == before, "a refused change changed the cluster"
    return r


def web_names(c):
    return sorted(p["metadata"]["name"] for p in c.pods("web-"))


def test_a_changed_service_with_a_taken_cluster_ip_is_refused_and_kept(cluster_factory, tmp_path):
    c = cluster_factory(SCENARIO)
    ip = c.svc("web")["spec"]["clusterIP"]
    changed = tmp_path / "svc.yaml"
    changed.write_text("""
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports: [{port: 8080, targetPort: 9376}]
""")
    refused(c, "apply", str(changed), says="spec.clusterIP")
    c.cli("scale", "deployment", "web", "--replicas", "4")  # a resync
    assert c.svc("web")["spec"]["clusterIP"] == ip
    assert f"{ip}/32" in c.cli("rules", "node-1", "--table", "nat").stdout
    assert len(set(c.answers("client/outside", f"http://{ip}/", 20))) == 4


def test_a_template_change_that_does_not_fit_deletes_no_pod(cluster_factory, tmp_path):
    c = cluster_factory(SCENARIO)
    before = web_names(c)
    big = tmp_path / "big.yaml"
    big.write_text(SCENARIO.split("---", 1)[1].replace("replicas: 3", "replicas: 300")
                   .replace("{labels: {app: web}}", "{labels: {app: web, v: '2'}}"))
    r = refused(c, "apply", str(big), says="do not fit")
    assert "10.244.1.0/24" in r.stderr and "253" in r.stderr, r.stderr
    assert web_names(c) == before
    c.cli("scale", "deployment", "web", "--replicas", "4")
    assert len(web_names(c)) == 4


def test_a_file_whose_second_service_collides_creates_nothing(cluster_factory, tmp_path):
    c = cluster_factory(SCENARIO)
    two = tmp_path / "two.yaml"
    two.write_text("""
apiVersion: v1
kind: Service
metadata: {name: first}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 81, targetPort: 9376, nodePort: 30081}]
---
apiVersion: v1
kind: Service
metadata: {name: second}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 82, targetPort: 9376, nodePort: 30081}]
""")
    refused(c, "apply", str(two), says="already allocated")
    assert not [s for s in c.get("svc") if s["metadata"]["name"] in ("first", "second")]
    # the refused file's addresses were not kept either: a file with only the first works
    two.write_text(two.read_text().split("---")[0])
    assert "service/first created" in c.cli("apply", str(two)).stdout
    assert c.svc("first")["spec"]["ports"][0]["nodePort"] == 30081


def test_a_scale_that_does_not_fit_is_refused_and_leaks_no_address(cluster_factory):
    c = cluster_factory(SCENARIO)
    before = web_names(c)
    r = refused(c, "scale", "deployment", "web", "--replicas", "300", says="do not fit")
    assert "10.244.1.0/24" in r.stderr and "253" in r.stderr, r.stderr
    assert web_names(c) == before
    c.cli("scale", "deployment", "web", "--replicas", "4")
    assert len(web_names(c)) == 4
    assert "PodFailed" not in [e["type"] for e in request(c.name, "events")]
