"""The supervisor's kernel edge: every change it makes to the kernel — the cluster's
namespaces and links (fabric), pods added and removed, LoadBalancer routes, one proxier
per node, the final teardown — goes through one object, so that the controller's logic
runs without root against a fake (tests/unit/fakes.py).

- KernelEdge(cluster, plan): build(), proxy_gaps(config), proxier(node, config),
  health_server(node), add_pod(pod, netns_pid=None) -> netns path, remove_pod(pod),
  node_path(node), client_path(client), set_lb_routes({ip: nodes | None}),
  check_lb_health(targets), destroy().
"""

from __future__ import annotations

from minikp.controller import loadbalancers
from minikp.fabric import Fabric
from minikp.fabric.teardown import destroy_cluster
from minikp.proxy.base import Proxier, kernel_gaps, new_proxier
from minikp.proxy.healthcheck import HealthServer
from minikp.scenario.model import ClusterPlan, PodPlan


class KernelEdge:
    def __init__(self, cluster: str, plan: ClusterPlan):
        self.cluster, self.plan = cluster, plan
        self.fabric = Fabric(cluster, plan)

    def build(self) -> None:
        self.fabric.build()

    def proxy_gaps(self, config) -> list[str]:
        """What this kernel lacks for the cluster's proxy mode (probed in the first node)."""
        return kernel_gaps(config.proxy_mode, self.node_path(self.plan.nodes[0].name), config)

    def proxier(self, node: str, config) -> Proxier:
        return new_proxier(config.proxy_mode, self.node_path(node), config)

    def health_server(self, node: str) -> HealthServer:
        """kube-proxy's service health server (healthCheckNodePorts) in the node."""
        return HealthServer(self.node_path(node))

    def node_path(self, node: str) -> str:
        return self.fabric.node_path(node)

    def client_path(self, client: str) -> str:
        return self.fabric.client_path(client)

    def add_pod(self, pod: PodPlan, netns_pid: int | None = None) -> str:
        """`netns_pid`: a process whose namespace becomes the pod's (a Docker pause container)."""
        return self.fabric.add_pod(pod, netns_pid)

    def remove_pod(self, pod: PodPlan) -> None:
        self.fabric.remove_pod(pod.namespace, pod.name)

    def set_lb_routes(self, wanted: dict[str, list[str] | None]) -> None:
        """LoadBalancer address → the nodes it is routed to (None: every node)."""
        for ip in set(self.fabric.lb_routes) - set(wanted):
            self.fabric.remove_lb_route(ip)
        for ip, nodes in wanted.items():
            self.fabric.add_lb_route(ip, nodes)

    def check_lb_health(self, targets) -> dict[tuple[str, str], bool]:
        """The load balancer's health checks ((lb ip, node) → 200?), from outside: a client
        (in a cluster without clients, where no route needs them, the first node)."""
        source = (self.client_path(self.plan.clients[0].name) if self.plan.clients
                  else self.node_path(self.plan.nodes[0].name))
        return loadbalancers.check(source, targets)

    def destroy(self) -> None:
        """Every process, namespace and file of the cluster (works without this object's
        state too: minikp.fabric.teardown)."""
        destroy_cluster(self.cluster)
