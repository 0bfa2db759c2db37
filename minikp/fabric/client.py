"""A client: a host on the node network outside the cluster (a laptop on the same LAN).

- Client.build(cluster, plan, world, node_prefixlen, nodes): its namespace, eth0 with its
  IP, and a route to every node's pod /24 via that node. The routes stand in for the
  router of a flat routed network: replies to pods that talk to a client go back to the
  right node without any masquerading, so a client sees real pod source addresses.
- Client.route_via_nodes(cidr, node_ips): the service subnet via the nodes (ECMP), like a
  lab host given `ip route add 10.96.0.0/12 via <node>` so it can reach ClusterIPs and the
  cluster DNS (kube-proxy masquerades such external-to-ClusterIP traffic).
- Client.set_lb_route(ip, node_ips) / del_lb_route(ip): ip/32 via the nodes, ECMP when
  more than one (the way MetalLB in BGP mode spreads a LoadBalancer address).
"""

from __future__ import annotations

from minikp import names
from minikp.fabric import netns
from minikp.fabric.node import bring_up_eth0
from minikp.fabric.rtnl import NetlinkError, Rtnl
from minikp.scenario.model import ClientPlan, NodePlan

ESRCH = 3


class Client:
    def __init__(self, plan: ClientPlan, path: str, rtnl: Rtnl):
        self.plan, self.path, self.rtnl = plan, path, rtnl

    @classmethod
    def build(cls, cluster: str, plan: ClientPlan, world, node_prefixlen: int,
              nodes: list[NodePlan]) -> "Client":
        path = netns.create(names.client_netns(cluster, plan.name))
        rtnl = Rtnl(path)
        try:
            world.plug(f"client/{plan.name}", path)
            bring_up_eth0(rtnl, plan.ip, node_prefixlen)
            for node in nodes:
                rtnl.route(node.pod_cidr, [node.ip])
        except BaseException:
            rtnl.close()
            raise
        return cls(plan, path, rtnl)

    def route_via_nodes(self, cidr: str, node_ips: list[str]) -> None:
        self.rtnl.route(cidr, node_ips)  # several: ECMP

    def set_lb_route(self, ip: str, node_ips: list[str]) -> None:
        self.route_via_nodes(f"{ip}/32", node_ips)

    def del_lb_route(self, ip: str) -> None:
        try:
            self.rtnl.route_del(f"{ip}/32")
        except NetlinkError as e:
            if e.code != ESRCH:  # no such route: already gone
                raise

    def close(self) -> None:
        self.rtnl.close()
