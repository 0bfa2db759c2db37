"""The fabric alone: time minikp.fabric.Fabric building 10 nodes and N pods (namespaces,
veths, addresses, routes) and destroying them, with no workloads, DNS or proxy rules.

The floor under `minikp up` for N pods: what namespaces + netlink cost on this kernel.
    python3 bench/fabric_floor.py 1000          # prints one JSON line
Profile it with: py-spy record -o fabric.svg -- python3 bench/fabric_floor.py 1000
"""

import ipaddress
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minikp.fabric.cluster import Fabric  # noqa: E402
from minikp.scenario.model import ClusterConfig, ClusterPlan, NodePlan, PodPlan, PodTemplate  # noqa: E402

CLUSTER = "benchfab"


def plan(pods, nodes=10):
    node_plans = [NodePlan(f"node-{i}", f"172.18.0.{i + 1}", f"10.244.{i}.0/24", f"10.244.{i}.1")
                  for i in range(1, nodes + 1)]
    pod_plans = []
    for k in range(pods):
        n = node_plans[k % nodes]
        ip = str(ipaddress.ip_network(n.pod_cidr)[2 + k // nodes])
        pod_plans.append(PodPlan("default", f"p-{k}", n.name, ip, "Pod", f"p-{k}",
                                 PodTemplate(labels={"app": "p"})))
    return ClusterPlan(ClusterConfig(name=CLUSTER), node_plans, pod_plans, [], [])


def main():
    pods = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    p = plan(pods)
    f = Fabric(CLUSTER, p)
    out = {"pods": pods}
    try:
        t0 = time.perf_counter()
        f.build()
        t1 = time.perf_counter()
        for pod in p.pods:
            f.add_pod(pod)
        t2 = time.perf_counter()
        out.update(nodes_s=t1 - t0, pods_s=t2 - t1, per_pod_ms=(t2 - t1) / pods * 1000)
    finally:
        t3 = time.perf_counter()
        f.destroy()
        out["destroy_s"] = time.perf_counter() - t3
    print(json.dumps(out))


if __name__ == "__main__":
    main()
