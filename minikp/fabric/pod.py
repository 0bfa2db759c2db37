"""A pod's network, as the CNI bridge plugin makes it: its own namespace, a veth pair with
`eth0` inside (pod IP, default route via the node's cni0) and the node end (`veth` + 8 hex)
on cni0 in hairpin mode.

Fast path (~1.5 ms): the veth pair is created from the node's already open netlink socket
straight into the pod namespace, attached and up in one message; only the pod end needs a
short-lived socket inside the pod. Both speak rtnl.py's plain requests.

- add(cluster, node, pod, netns_pid=None) -> netns path
- remove(cluster, nodes, namespace, name)
"""

from __future__ import annotations

import ipaddress
import os

from minikp import names
from minikp.fabric import netns
from minikp.fabric.rtnl import NetlinkError, Rtnl
from minikp.scenario.model import PodPlan

ENODEV = 19


def node_link(namespace: str, name: str) -> str:
    return names.link_name("veth", f"{namespace}/{name}")


def add(cluster: str, node, pod: PodPlan, netns_pid: int | None = None) -> str:
    """Create the pod's namespace (or name that of process `netns_pid`: a Docker pod's
    pause container) and wire it to `node` (a fabric.node.Node)."""
    name = names.pod_netns(cluster, pod.namespace, pod.name)
    path = netns.adopt(name, netns_pid) if netns_pid else netns.create(name)
    ifname = node_link(pod.namespace, pod.name)
    created = False
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            node.rtnl.veth_into(ifname, node.bridge_index, "eth0", fd)
            created = True
        finally:
            os.close(fd)
        # Hairpin: with bridge-nf-call-iptables a pod reaching itself through a Service is
        # DNATed back to the port it came from; the bridge only sends it back in hairpin mode
        # (what the CNI bridge plugin's hairpinMode does). Indexes come from if_nametoindex,
        # an ioctl in this thread's namespace: far cheaper than a netlink lookup.
        node.rtnl.hairpin(node.rtnl.index(ifname))
        with Rtnl(path) as rtnl:
            eth0 = rtnl.index("eth0")
            rtnl.link_up(1)  # lo
            rtnl.addr_add(eth0, pod.ip, ipaddress.ip_network(node.plan.pod_cidr).prefixlen)
            rtnl.link_up(eth0)
            rtnl.default_route(node.plan.gateway_ip)
    except BaseException:
        if created:  # never delete a same-named link that was there before
            _delete_link(node, ifname)
        netns.remove(name)
        raise
    return path


def remove(cluster: str, nodes: list, namespace: str, name: str) -> None:
    """Delete the pod's veth on whichever of `nodes` has it (cut it off at once, even if a
    socket still holds its namespace) and its namespace. Idempotent."""
    for node in nodes:
        _delete_link(node, node_link(namespace, name))
    netns.remove(names.pod_netns(cluster, namespace, name))


def _delete_link(node, ifname: str) -> None:
    try:
        node.rtnl.link_del(ifname)
    except NetlinkError as e:
        if e.code != ENODEV:
            raise
