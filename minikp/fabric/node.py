"""A node: a namespace on the node network with a pod bridge, like a kind node running the
CNI bridge plugin in host-gw mode.

- bring_up_eth0(rtnl, ip, prefixlen): lo and eth0 up, eth0 addressed (nodes and clients).
- Node.build(cluster, plan, world, node_prefixlen): the namespace; eth0 with the node IP;
  `cni0` bridge with the gateway /24; sysctls (forwarding, bridge-nf-call-iptables,
  route_localnet); its netlink socket stays open for fast pod creation.
- Node.route_pod_cidrs(others): a route to every other node's pod /24 via that node.
- Node.route_default(gateway): a default route via the node network's first address, as a
  kind node has via its Docker bridge. Nothing answers there (the world ends at the bridge);
  the route exists so that a node's own connections to Service addresses are routed out
  eth0 with the node IP as source before kube-proxy's OUTPUT DNAT rewrites them.
"""

from __future__ import annotations

import ipaddress

from minikp import names
from minikp.fabric import netns
from minikp.fabric.rtnl import Rtnl
from minikp.scenario.model import NodePlan

POD_BRIDGE = "cni0"

# What a kubeadm node has set: forwarding for pod traffic, bridged pod frames through
# iptables (so Service DNAT sees same-node pod-to-pod traffic), and route_localnet, which
# kube-proxy sets itself in iptables mode so NodePorts answer on 127.0.0.1.
NODE_SYSCTLS = {
    "net.ipv4.ip_forward": 1,
    "net.bridge.bridge-nf-call-iptables": 1,
    "net.ipv4.conf.all.route_localnet": 1,
}


def bring_up_eth0(rtnl: Rtnl, ip: str, prefixlen: int) -> int:
    rtnl.link_up(1)  # lo is always index 1 in a fresh namespace
    eth0 = rtnl.index("eth0")
    rtnl.addr_add(eth0, ip, prefixlen)
    rtnl.link_up(eth0)
    return eth0


class Node:
    def __init__(self, plan: NodePlan, path: str, rtnl: Rtnl, bridge_index: int):
        self.plan, self.path, self.rtnl, self.bridge_index = plan, path, rtnl, bridge_index

    @classmethod
    def build(cls, cluster: str, plan: NodePlan, world, node_prefixlen: int) -> "Node":
        path = netns.create(names.node_netns(cluster, plan.name), NODE_SYSCTLS)
        rtnl = Rtnl(path)  # stays open: pods are wired through it (pod.py)
        try:
            world.plug(f"node/{plan.name}", path)
            bring_up_eth0(rtnl, plan.ip, node_prefixlen)
            bridge = rtnl.bridge(POD_BRIDGE)
            rtnl.addr_add(bridge, plan.gateway_ip, ipaddress.ip_network(plan.pod_cidr).prefixlen)
        except BaseException:
            rtnl.close()
            raise
        return cls(plan, path, rtnl, bridge)

    def route_pod_cidrs(self, others: list[NodePlan]) -> None:
        for other in others:
            if other.name != self.plan.name:
                self.rtnl.route(other.pod_cidr, [other.ip])

    def route_default(self, gateway: str) -> None:
        self.rtnl.route("default", [gateway])

    def close(self) -> None:
        self.rtnl.close()
