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
- Connections to the load balancer pool stay on the node they started on (PIN_RULES): a load
  balancer tracks connections and drains a node rather than cutting them, where re-routed
  ECMP would send an open connection's next packets to another node, which resets it.
  The node the route chose is kept in the connection's conntrack mark; later packets carry
  it as their fwmark, and an ip rule per node routes them through that node.
"""

from __future__ import annotations

from minikp import names
from minikp.errors import OperationError
from minikp.fabric import netns
from minikp.fabric.node import bring_up_eth0
from minikp.fabric.rtnl import NetlinkError, Rtnl
from minikp.nsenter import run_in
from minikp.scenario.model import ClientPlan, NodePlan

ESRCH = 3
PIN_TABLE = 1000  # + the node's index: its ip rule's fwmark, priority and routing table

# nft input: {pool} an address range, {marks} "node ip : mark" pairs
PIN_RULES = """table ip minikp-lb {{
	chain pin {{
		type filter hook postrouting priority mangle; policy accept;
		ip daddr {pool} ct state new ct mark set rt ip nexthop map {{ {marks} }}
	}}
	chain keep {{
		type route hook output priority mangle; policy accept;
		ip daddr {pool} ct state established,related meta mark set ct mark
	}}
}}
"""


class Client:
    def __init__(self, plan: ClientPlan, path: str, rtnl: Rtnl):
        self.plan, self.path, self.rtnl = plan, path, rtnl

    @classmethod
    def build(cls, cluster: str, plan: ClientPlan, world, node_prefixlen: int,
              nodes: list[NodePlan], lb_pool: tuple[str, str]) -> "Client":
        path = netns.create(names.client_netns(cluster, plan.name))
        rtnl = Rtnl(path)
        try:
            world.plug(f"client/{plan.name}", path)
            bring_up_eth0(rtnl, plan.ip, node_prefixlen)
            for node in nodes:
                rtnl.route(node.pod_cidr, [node.ip])
            pin_lb_connections(path, rtnl, nodes, lb_pool)
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


def pin_lb_connections(path: str, rtnl: Rtnl, nodes: list[NodePlan], lb_pool: tuple[str, str]) -> None:
    """PIN_RULES in the client's namespace, and per node: fwmark → a table routing via it."""
    marks = []
    for i, node in enumerate(nodes, 1):
        n = PIN_TABLE + i
        rtnl.route("default", [node.ip], table=n)
        rtnl.fwmark_rule(n, n, n)
        marks.append(f"{node.ip} : {n}")
    rules = PIN_RULES.format(pool="-".join(lb_pool), marks=", ".join(marks))
    res = run_in(path, ["nft", "-f", "-"], input=rules)
    if res.returncode != 0:
        raise OperationError(f"nft in client namespace {path}: {res.stderr.strip()}")
