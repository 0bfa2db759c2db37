"""Scenario files the benchmarks bring up, generated as YAML text (pure functions)."""


def _cluster(name, nodes, clients=("load",), proxy_mode=""):
    lines = ["apiVersion: minikp.dev/v1alpha1", "kind: Cluster", f"metadata: {{name: {name}}}",
             "spec:", f"  nodes: {nodes}"]
    if proxy_mode:
        lines.append(f"  proxy: {{mode: {proxy_mode}}}")
    if clients:
        lines.append("  clients:")
        lines += [f"    - name: {c}" for c in clients]
    return "\n".join(lines) + "\n"


def _deployment(name, replicas, node_name=""):
    pin = f"      nodeName: {node_name}\n" if node_name else ""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
{pin}      containers:
      - name: {name}
        image: registry.k8s.io/serve_hostname
        ports: [{{containerPort: 9376, protocol: TCP}}]
"""


def _service(name, type_="ClusterIP"):
    return f"""apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  type: {type_}
  selector: {{app: {name}}}
  ports: [{{name: http, protocol: TCP, port: 80, targetPort: 9376}}]
"""


def scale_scenario(pods, nodes=10, per_deployment=10):
    """`pods` serve_hostname pods as Deployments of `per_deployment` replicas, one
    ClusterIP Service each, over `nodes` nodes, plus one client."""
    docs = [_cluster("bench", nodes)]
    full, rest = divmod(pods, per_deployment)
    sizes = [per_deployment] * full + ([rest] if rest else [])
    for i, replicas in enumerate(sizes, 1):
        docs += [_deployment(f"app-{i}", replicas), _service(f"app-{i}")]
    return "---\n".join(docs)


def datapath_scenario(proxy_mode=""):
    """One backend pod (`web`, pinned to node-2) behind a LoadBalancer Service, so the pod
    IP, the ClusterIP, a NodePort and the LB address all end at that same pod; a `wrk`
    pod on node-1 to send from inside the cluster; a client `load` outside it. Every node's
    proxy in `proxy_mode` ("" = the default, iptables)."""
    return "---\n".join([
        _cluster("datapath", 2, proxy_mode=proxy_mode),
        _deployment("web", 1, node_name="node-2"), _service("web", "LoadBalancer"),
        _deployment("wrk", 1, node_name="node-1"),
    ])
