"""The few rtnetlink requests a pod needs, without pyroute2's per-call machinery.

Messages are pyroute2's own (ifinfmsg, ifaddrmsg, rtmsg) encoded by pyroute2; only the
socket is plain: one request, one ack. Measured at 1,000 pods, pyroute2's IPRoute calls
(an asyncio loop and argument processors per call, ~1 ms each, six per pod) were most of
`minikp up`; the same messages this way cost ~0.2 ms each (docs/benchmarks.md).

- Rtnl(netns_path): a NETLINK_ROUTE socket made inside that namespace (it stays there).
- Rtnl.veth_into(ifname, master, peer, peer_netns_fd), .hairpin(index), .link_up(index),
  .addr_add(index, ip, prefixlen), .default_route(gateway), .close()
"""

from __future__ import annotations

import itertools
import socket
import struct

from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NLMSG_ERROR
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE, RTM_SETLINK
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP, ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from minikp.nsenter import in_netns

CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
AF_BRIDGE = 7


class Rtnl:
    def __init__(self, netns_path: str):
        with in_netns(netns_path):
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = itertools.count(1)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _request(self, msg, msg_type: int, flags: int) -> None:
        seq = next(self.seq)
        msg["header"]["type"], msg["header"]["flags"] = msg_type, flags
        msg["header"]["sequence_number"] = seq
        msg.encode()
        self.sock.send(msg.data)
        while True:  # the ack (an NLMSG_ERROR with code 0) or the error
            reply = self.sock.recv(65536)
            length, kind, _, rseq = struct.unpack_from("=IHHI", reply, 0)
            if kind == NLMSG_ERROR and rseq == seq:
                code = -struct.unpack_from("=i", reply, 16)[0]
                if code:
                    raise NetlinkError(code)
                return

    def veth_into(self, ifname: str, master: int, peer: str, peer_netns_fd: int) -> None:
        """`ip link add IFNAME master M up type veth peer name PEER netns FD`"""
        m = ifinfmsg()
        m["index"], m["flags"], m["change"] = 0, IFF_UP, IFF_UP
        m["attrs"] = [("IFLA_IFNAME", ifname), ("IFLA_MASTER", master),
                      ("IFLA_LINKINFO", {"attrs": [
                          ("IFLA_INFO_KIND", "veth"),
                          ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", {"attrs": [
                              ("IFLA_IFNAME", peer), ("IFLA_NET_NS_FD", peer_netns_fd)]})]})]})]
        self._request(m, RTM_NEWLINK, CREATE)

    def hairpin(self, index: int) -> None:
        """`bridge link set dev IFNAME hairpin on` (the CNI bridge plugin's hairpinMode)."""
        m = ifinfmsg()
        m["index"] = index
        m["attrs"] = [("IFLA_LINKINFO", {"attrs": [
            ("IFLA_INFO_SLAVE_KIND", "bridge"),
            ("IFLA_INFO_SLAVE_DATA", {"attrs": [("IFLA_BRPORT_MODE", 1)]})]})]
        self._request(m, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK)

    def link_up(self, index: int) -> None:
        m = ifinfmsg()
        m["index"], m["flags"], m["change"] = index, IFF_UP, IFF_UP
        self._request(m, RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK)

    def addr_add(self, index: int, ip: str, prefixlen: int) -> None:
        m = ifaddrmsg()
        m["family"], m["prefixlen"], m["index"] = socket.AF_INET, prefixlen, index
        m["attrs"] = [("IFA_LOCAL", ip), ("IFA_ADDRESS", ip)]
        self._request(m, RTM_NEWADDR, CREATE)

    def default_route(self, gateway: str) -> None:
        m = rtmsg()
        m["family"], m["dst_len"] = socket.AF_INET, 0
        m["table"], m["proto"], m["scope"], m["type"] = 254, 3, 0, 1  # main, boot, universe, unicast
        m["attrs"] = [("RTA_GATEWAY", gateway)]
        self._request(m, RTM_NEWROUTE, CREATE)
