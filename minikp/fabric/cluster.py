"""The Fabric: one cluster's namespaces, links, addresses and routes, built from its plan.

    fabric = Fabric("demo", plan)
    fabric.build()                      # world, nodes, clients (no pods yet)
    path = fabric.add_pod(pod_plan)     # a few ms each
    fabric.add_lb_route("172.18.255.200")
    fabric.remove_pod("default", "web-1")
    fabric.destroy()                    # = teardown.destroy_cluster("demo")

Safe to call from several threads (one lock). Every kernel object lives in a namespace named
by minikp.names; the host namespace gets nothing but the /run/netns bind mounts.
"""

from __future__ import annotations

import ipaddress
import threading

from minikp import names
from minikp.errors import OperationError
from minikp.fabric import pod as podnet, teardown
from minikp.fabric.client import Client
from minikp.fabric.node import Node
from minikp.fabric.world import World
from minikp.scenario.model import ClusterPlan, PodPlan


class Fabric:
    def __init__(self, cluster: str, plan: ClusterPlan):
        self.cluster, self.plan = cluster, plan
        self.world: World | None = None
        self.nodes: dict[str, Node] = {}
        self.clients: dict[str, Client] = {}
        self.pods: dict[tuple[str, str], str] = {}  # (namespace, name) → node name
        self.host_network_pods: set[tuple[str, str]] = set()  # in their node's namespace
        self.lb_routes: dict[str, list[str]] = {}  # LB ip → node names it is routed to
        self._lock = threading.RLock()

    # ---- build -------------------------------------------------------------------------
    def build(self) -> None:
        """World, nodes and clients. Fails (leaving nothing) if the cluster's namespaces
        already exist, e.g. left over from a crash: `minikp down` removes them."""
        leftover = teardown.cluster_netns(self.cluster)
        if leftover:
            raise OperationError(
                f'cluster "{self.cluster}" already has namespaces ({leftover[0]}, ...); '
                f"remove them with: minikp down --name {self.cluster}")
        prefixlen = ipaddress.ip_network(self.plan.config.node_subnet, strict=False).prefixlen
        with self._lock:
            teardown.register_open(self.cluster, self.close)
            try:
                self.world = World.build(self.cluster)
                for node in self.plan.nodes:
                    self.nodes[node.name] = Node.build(self.cluster, node, self.world, prefixlen)
                gateway = str(next(ipaddress.ip_network(self.plan.config.node_subnet,
                                                        strict=False).hosts()))
                for node in self.nodes.values():
                    node.route_pod_cidrs(self.plan.nodes)
                    node.route_default(gateway)
                node_ips = [n.ip for n in self.plan.nodes]
                for client in self.plan.clients:
                    self.clients[client.name] = c = Client.build(
                        self.cluster, client, self.world, prefixlen, self.plan.nodes,
                        self.plan.config.load_balancer_pool)
                    c.route_via_nodes(self.plan.config.service_subnet, node_ips)
            except BaseException:
                self.destroy()
                raise

    # ---- paths ---------------------------------------------------------------------------
    def node_path(self, node: str) -> str:
        return names.netns_path(names.node_netns(self.cluster, node))

    def client_path(self, client: str) -> str:
        return names.netns_path(names.client_netns(self.cluster, client))

    def pod_path(self, namespace: str, name: str) -> str:
        return names.netns_path(names.pod_netns(self.cluster, namespace, name))

    # ---- pods ----------------------------------------------------------------------------
    def add_pod(self, pod: PodPlan, netns_pid: int | None = None) -> str:
        """The pod's namespace (that of process `netns_pid` if given), wired to its node;
        returns the namespace path. A hostNetwork pod gets none: it lives in its node's
        namespace, with the node's address."""
        with self._lock:
            node = self.nodes.get(pod.node)
            if node is None:
                raise OperationError(f'pod {pod.namespace}/{pod.name}: no node "{pod.node}" '
                                     "in this cluster")
            if pod.template.host_network:
                self.host_network_pods.add((pod.namespace, pod.name))
                self.pods[(pod.namespace, pod.name)] = pod.node
                return self.node_path(pod.node)
            path = podnet.add(self.cluster, node, pod, netns_pid)
            self.pods[(pod.namespace, pod.name)] = pod.node
            return path

    def remove_pod(self, namespace: str, name: str) -> None:
        """Cut the pod's link and remove its namespace. Close the pod's sockets and end its
        processes first: whatever still holds the namespace keeps it (unreachable) alive."""
        with self._lock:
            node_name = self.pods.pop((namespace, name), None)
            if (namespace, name) in self.host_network_pods:  # its node's namespace stays
                self.host_network_pods.discard((namespace, name))
                return
            node = self.nodes.get(node_name) if node_name else None
            # a pod this Fabric did not make (another process's): look on every node
            podnet.remove(self.cluster, [node] if node else list(self.nodes.values()),
                          namespace, name)

    # ---- LoadBalancer addresses ----------------------------------------------------------
    def add_lb_route(self, ip: str, nodes: list[str] | None = None) -> None:
        """Route ip/32 from every client to the nodes (all by default, ECMP; pass the nodes
        with local endpoints for externalTrafficPolicy: Local, as MetalLB announces)."""
        with self._lock:
            chosen = [n for n in self.plan.nodes if nodes is None or n.name in nodes]
            if not chosen:
                self.remove_lb_route(ip)
                return
            for client in self.clients.values():
                client.set_lb_route(ip, [n.ip for n in chosen])
            self.lb_routes[ip] = [n.name for n in chosen]

    def remove_lb_route(self, ip: str) -> None:
        with self._lock:
            for client in self.clients.values():
                client.del_lb_route(ip)
            self.lb_routes.pop(ip, None)

    # ---- teardown ------------------------------------------------------------------------
    def close(self) -> None:
        """Close this process's netlink sockets (the namespaces stay)."""
        with self._lock:
            for host in [*self.clients.values(), *self.nodes.values(), self.world]:
                if host is not None:
                    host.close()
            self.clients, self.nodes, self.world = {}, {}, None
            teardown.unregister_open(self.cluster, self.close)

    def destroy(self) -> None:
        with self._lock:
            self.close()
            self.pods.clear()
            self.lb_routes.clear()
            teardown.destroy_cluster(self.cluster)
