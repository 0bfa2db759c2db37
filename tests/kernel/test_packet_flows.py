"""kube-proxy's packet-flow catalogue (TestInternalExternalMasquerade and friends) as real
connections: sources a pod, a node, localhost on a node and an outside client; destinations
ClusterIP, NodePort and LoadBalancer address; each traffic policy. Each case asserts which
endpoints answered and which source address the backend saw (masqueraded or original)."""

import pytest

SCENARIO = """
apiVersion: minikp.dev/v1alpha1
kind: Cluster
spec:
  nodes: 2
  clients: [{name: outside}]
"""
for svc, extra in (("s1", "type: LoadBalancer"),
                   ("s2", "type: LoadBalancer\n  externalTrafficPolicy: Local"),
                   ("s3", "type: NodePort\n  internalTrafficPolicy: Local")):
    for where, node in (("local", "node-1"), ("remote", "node-2")):
        SCENARIO += f"""
---
apiVersion: v1
kind: Pod
metadata: {{name: {svc}-{where}, labels: {{app: {svc}}}}}
spec:
  nodeName: {node}
  containers: [{{name: web, image: nginx, ports: [{{containerPort: 80}}]}}]
"""
    SCENARIO += f"""
---
apiVersion: v1
kind: Service
metadata: {{name: {svc}}}
spec:
  {extra}
  selector: {{app: {svc}}}
  ports: [{{port: 80}}]
"""
SCENARIO += """
---
apiVersion: v1
kind: Pod
metadata: {name: src}
spec:
  nodeName: node-1
  containers: [{name: c, image: nginx}]
"""

N = 30  # requests per case: enough that "both endpoints" is all but certain (1 - 2^-29)


@pytest.fixture(scope="module")
def flows(request, tmp_path_factory):
    from conftest import Cluster, minikp
    path = tmp_path_factory.mktemp("flows") / "flows.yaml"
    path.write_text(SCENARIO)
    name = "mkt-flows"
    minikp("up", str(path), "--name", name)
    try:
        c = Cluster(name, str(path))
        info = {"c": c, "nodes": {n["metadata"]["name"]: n["status"]["addresses"][0]["address"]
                                  for n in c.get("nodes")},
                "pods": {p["metadata"]["name"]: p["status"]["podIP"] for p in c.pods()},
                "svc": {s: c.svc(s) for s in ("s1", "s2", "s3")},
                "client": next(x for x in __import__("minikp.state", fromlist=["read"]).read(name)["clients"])["ip"]}
        info["gw"] = {"node-1": "10.244.1.1", "node-2": "10.244.2.1"}
        yield info
    finally:
        minikp("down", "--name", name, check=False)


def hit(f, source, url):
    """(answering pod, source address it saw) for N requests."""
    results = f["c"].probe(source, "http", url, N)
    assert all(r["ok"] for r in results), [r["error"] for r in results if not r["ok"]]
    return {(r["body"], r["client"].rpartition(":")[0]) for r in results}


def cluster_ip(f, svc):
    return f"http://{f['svc'][svc]['spec']['clusterIP']}/"


def node_port(f, svc, node="node-1", host=None):
    port = f["svc"][svc]["spec"]["ports"][0]["nodePort"]
    return f"http://{host or f['nodes'][node]}:{port}/"


def lb(f, svc):
    return f"http://{f['svc'][svc]['status']['loadBalancer']['ingress'][0]['ip']}/"


def masqueraded_on(f, node):
    return {f["nodes"][node], f["gw"][node]}


def test_pod_to_cluster_ip_reaches_both_unmasqueraded(flows):
    got = hit(flows, "src", cluster_ip(flows, "s1"))
    assert {b for b, _ in got} == {"s1-local", "s1-remote"}
    assert {s for _, s in got} == {flows["pods"]["src"]}


@pytest.mark.parametrize("dest", ["nodeport", "lb"])
def test_pod_to_external_destinations_is_masqueraded(flows, dest):
    url = node_port(flows, "s1") if dest == "nodeport" else lb(flows, "s1")
    got = hit(flows, "src", url)
    assert {b for b, _ in got} == {"s1-local", "s1-remote"}
    assert {s for _, s in got} <= masqueraded_on(flows, "node-1")


def test_node_to_cluster_ip_is_masqueraded(flows):
    got = hit(flows, "node/node-1", cluster_ip(flows, "s1"))
    assert {b for b, _ in got} == {"s1-local", "s1-remote"}
    assert {s for _, s in got} <= masqueraded_on(flows, "node-1")


def test_localhost_to_node_port_is_masqueraded(flows):
    got = hit(flows, "node/node-1", node_port(flows, "s1", host="127.0.0.1"))
    assert {b for b, _ in got} == {"s1-local", "s1-remote"}
    assert {s for _, s in got} <= masqueraded_on(flows, "node-1")


@pytest.mark.parametrize("dest", ["nodeport", "lb"])
def test_external_to_cluster_policy_service_is_masqueraded(flows, dest):
    url = node_port(flows, "s1") if dest == "nodeport" else lb(flows, "s1")
    got = hit(flows, "client/outside", url)
    assert {b for b, _ in got} == {"s1-local", "s1-remote"}
    assert flows["client"] not in {s for _, s in got}


def test_external_to_local_policy_node_port_hits_only_the_local_endpoint_unmasqueraded(flows):
    assert hit(flows, "client/outside", node_port(flows, "s2", "node-1")) == {("s2-local", flows["client"])}
    assert hit(flows, "client/outside", node_port(flows, "s2", "node-2")) == {("s2-remote", flows["client"])}


def test_external_to_local_policy_lb_keeps_the_client_ip(flows):
    got = hit(flows, "client/outside", lb(flows, "s2"))
    assert got and {s for _, s in got} == {flows["client"]}


def test_pod_to_local_policy_node_port_short_circuits_to_both_endpoints(flows):
    got = hit(flows, "src", node_port(flows, "s2", "node-1"))
    assert {b for b, _ in got} == {"s2-local", "s2-remote"}
    assert {s for _, s in got} == {flows["pods"]["src"]}


def test_internal_traffic_policy_local_only_for_cluster_ip(flows):
    assert {b for b, _ in hit(flows, "src", cluster_ip(flows, "s3"))} == {"s3-local"}
    assert {b for b, _ in hit(flows, "client/outside", node_port(flows, "s3"))} == {"s3-local", "s3-remote"}


def test_hairpin_a_pod_reaching_itself_through_its_service_is_masqueraded(flows):
    got = hit(flows, "s1-local", cluster_ip(flows, "s1"))
    own = {s for b, s in got if b == "s1-local"}
    assert own and own == {flows["gw"]["node-1"]}
    assert {s for b, s in got if b == "s1-remote"} <= {flows["pods"]["s1-local"]}
