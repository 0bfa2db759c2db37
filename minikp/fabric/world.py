"""The world: one private namespace per cluster holding the node network, a bridge that
every node and client plugs into. Nothing links it to the host namespace, so no packet of
the cluster can leave the machine.

- World.build(cluster): the namespace and its bridge `br-nodes` (up, no address).
- World.plug(host_key, host_netns_path): a veth pair, `eth0` inside the host's namespace
  and the other end (named after host_key) attached to the bridge.
"""

from __future__ import annotations

import os

from minikp import names
from minikp.fabric import netns
from minikp.fabric.rtnl import Rtnl

BRIDGE = "br-nodes"


class World:
    def __init__(self, cluster: str, path: str, rtnl: Rtnl, bridge_index: int):
        self.cluster, self.path, self.rtnl, self.bridge_index = cluster, path, rtnl, bridge_index

    @classmethod
    def build(cls, cluster: str) -> "World":
        # The node network is plain L2: keep the bridge's frames out of iptables here
        # (nodes set bridge-nf-call-iptables=1 for their own cni0, as kubeadm asks).
        path = netns.create(names.world_netns(cluster), {"net.bridge.bridge-nf-call-iptables": 0})
        rtnl = Rtnl(path)
        try:
            index = rtnl.bridge(BRIDGE)
        except BaseException:
            rtnl.close()
            raise
        return cls(cluster, path, rtnl, index)

    def plug(self, host_key: str, host_path: str) -> str:
        """Connect the namespace at host_path to the node network; returns the world-side
        link name. The host side is `eth0`, down and without address (the caller sets it)."""
        ifname = names.link_name("vw", host_key)
        fd = os.open(host_path, os.O_RDONLY)
        try:
            self.rtnl.veth_into(ifname, self.bridge_index, "eth0", fd)
        finally:
            os.close(fd)
        return ifname

    def close(self) -> None:
        self.rtnl.close()
