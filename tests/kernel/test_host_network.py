"""Pod hostNetwork: true (issue 19 item 3): the pod runs in its node's network namespace with
the node's address, as the kubelet runs it; its Service's endpoint is NODE-IP:port."""

SCENARIO = """
apiVersion: minikp.dev/v1alpha1
kind: Cluster
spec:
  nodes: 2
  clients: [{name: outside}]
---
apiVersion: v1
kind: Pod
metadata: {name: hostnet, labels: {app: hn}}
spec:
  hostNetwork: true
  nodeName: node-2
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: python, command: [python3, -m, http.server, "8080"], ports: [{containerPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: hn}
spec:
  selector: {app: hn}
  ports: [{port: 80, targetPort: 8080}]
"""


def test_a_host_network_pod_has_its_nodes_address_and_namespace(cluster_factory):
    c = cluster_factory(SCENARIO, name="termination-hostnet")
    node_ip = {n["metadata"]["name"]: n["status"]["addresses"][0]["address"] for n in c.get("nodes")}
    pod = next(p for p in c.pods() if p["metadata"]["name"] == "hostnet")
    assert pod["status"]["podIP"] == node_ip["node-2"] and pod["spec"]["hostNetwork"] is True
    assert "cni0" in c.cli("exec", "hostnet", "--", "ip", "-o", "link").stdout  # the node's links
    eps = next(e for e in c.get("endpoints") if e["metadata"]["name"] == "hn")
    assert [a["ip"] for s in eps["subsets"] for a in s["addresses"]] == [node_ip["node-2"]]
    got = c.answers("client/outside", "http://hn.default.svc.cluster.local/", 5)
    assert all(not a.startswith("ERROR") for a in got), got
    c.cli("delete", "pod", "hostnet")  # its node's namespace stays, with its links
    assert "cni0" in c.cli("exec", "node/node-2", "--", "ip", "-o", "link").stdout
    assert c.answers("client/outside", f"http://{node_ip['node-2']}:8080/")[0].startswith("ERROR")
