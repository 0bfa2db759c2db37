"""The few rtnetlink requests the fabric makes, encoded with struct, over a plain socket.

Why not pyroute2: measured at 1,000 pods, pyroute2's IPRoute calls (an asyncio loop,
argument processors and its generic encoder per call, ~1 ms each, six per pod) were most of
`minikp up`; and merely importing pyroute2 costs ~0.16 s (every `up` paid it, in the CLI and
in the supervisor). These messages are tiny and fixed in shape; tests/unit/test_rtnl.py
checks each byte for byte against pyroute2's own encoding of the same request.

- Rtnl(netns_path): a NETLINK_ROUTE socket made inside that namespace (it stays there).
- Rtnl.veth_into(ifname, master, peer, peer_netns_fd), .bridge(ifname) -> index,
  .hairpin(index), .link_up(index), .link_del(ifname), .index(ifname),
  .addr_add(index, ip, prefixlen), .route(dst, gateways, table=main), .route_del(dst),
  .default_route(gateway), .fwmark_rule(fwmark, table, priority), .close()
- the message builders (pure): veth_msg, bridge_msg, hairpin_msg, link_up_msg,
  link_del_msg, addr_msg, route_msg, fwmark_rule_msg
- NetlinkError(code): a request the kernel refused (an OSError with that errno, as .code too)
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import socket
import struct

from minikp.nsenter import in_netns

NLM_F_REQUEST, NLM_F_ACK, NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x100, 0x200, 0x400
ACKED = NLM_F_REQUEST | NLM_F_ACK
CREATE = ACKED | NLM_F_CREATE | NLM_F_EXCL
REPLACE = ACKED | NLM_F_CREATE | NLM_F_REPLACE
NLMSG_ERROR = 2
RTM_NEWLINK, RTM_DELLINK, RTM_SETLINK, RTM_NEWADDR, RTM_NEWROUTE, RTM_DELROUTE = 16, 17, 19, 20, 24, 25
RTM_NEWRULE = 32
IFF_UP = 1
IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 1, 2, 4, 5
VETH_INFO_PEER = 1
IFLA_BRPORT_MODE = 4  # hairpin
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_GATEWAY, RTA_MULTIPATH, RTA_TABLE = 1, 5, 9, 15
RT_TABLE_UNSPEC, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 0, 254, 3, 0, 1
FRA_PRIORITY, FRA_FWMARK, FR_ACT_TO_TBL = 6, 10, 1


class NetlinkError(OSError):
    def __init__(self, code: int):
        super().__init__(code, os.strerror(code))
        self.code = code


def _attr(kind: int, payload: bytes) -> bytes:
    head = struct.pack("=HH", 4 + len(payload), kind)
    return head + payload + b"\0" * (-len(payload) % 4)


def _str(s: str) -> bytes:
    return s.encode() + b"\0"


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, flags, change)


def _message(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


def veth_msg(seq: int, ifname: str, master: int, peer: str, peer_netns_fd: int) -> bytes:
    """`ip link add IFNAME master M up type veth peer name PEER netns FD`"""
    peer_info = _ifinfo() + _attr(IFLA_IFNAME, _str(peer)) + _attr(IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd))
    linkinfo = _attr(IFLA_INFO_KIND, _str("veth")) + _attr(
        IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_info))
    body = (_ifinfo(0, IFF_UP, IFF_UP) + _attr(IFLA_IFNAME, _str(ifname))
            + _attr(IFLA_MASTER, struct.pack("=I", master)) + _attr(IFLA_LINKINFO, linkinfo))
    return _message(RTM_NEWLINK, CREATE, seq, body)


def bridge_msg(seq: int, ifname: str) -> bytes:
    """`ip link add IFNAME up type bridge`"""
    body = (_ifinfo(0, IFF_UP, IFF_UP) + _attr(IFLA_IFNAME, _str(ifname))
            + _attr(IFLA_LINKINFO, _attr(IFLA_INFO_KIND, _str("bridge"))))
    return _message(RTM_NEWLINK, CREATE, seq, body)


def link_del_msg(seq: int, ifname: str) -> bytes:
    """`ip link del IFNAME`"""
    return _message(RTM_DELLINK, ACKED, seq, _ifinfo() + _attr(IFLA_IFNAME, _str(ifname)))


def hairpin_msg(seq: int, index: int) -> bytes:
    """`bridge link set dev IFNAME hairpin on` (the CNI bridge plugin's hairpinMode)."""
    linkinfo = _attr(IFLA_INFO_SLAVE_KIND, _str("bridge")) + _attr(
        IFLA_INFO_SLAVE_DATA, _attr(IFLA_BRPORT_MODE, b"\1"))
    return _message(RTM_NEWLINK, ACKED, seq,
                    _ifinfo(index) + _attr(IFLA_LINKINFO, linkinfo))


def link_up_msg(seq: int, index: int) -> bytes:
    return _message(RTM_SETLINK, ACKED, seq, _ifinfo(index, IFF_UP, IFF_UP))


def addr_msg(seq: int, index: int, ip: str, prefixlen: int) -> bytes:
    addr = socket.inet_aton(ip)
    body = struct.pack("=BBBBI", socket.AF_INET, prefixlen, 0, 0, index) + _attr(
        IFA_LOCAL, addr) + _attr(IFA_ADDRESS, addr)
    return _message(RTM_NEWADDR, CREATE, seq, body)


def _table(table: int) -> tuple[int, bytes]:
    """A table id as iproute2 sends it: in the header below 256, else as an attribute."""
    return (table, b"") if table < 256 else (RT_TABLE_UNSPEC, _attr(RTA_TABLE, struct.pack("=I", table)))


def route_msg(seq: int, dst: str, gateways: list[str], flags: int = CREATE,
              kind: int = RTM_NEWROUTE, table: int = RT_TABLE_MAIN) -> bytes:
    """`ip route add|replace|del DST via GW [table T]` (several gateways: `nexthop via GW`
    each, ECMP); dst "default" or a CIDR; proto boot, scope universe, unicast."""
    net = ipaddress.ip_network("0.0.0.0/0" if dst == "default" else dst)
    head_table, table_attr = _table(table)
    body = struct.pack("=BBBBBBBBI", socket.AF_INET, net.prefixlen, 0, 0, head_table,
                       RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0) + table_attr
    if net.prefixlen:
        body += _attr(RTA_DST, net.network_address.packed)
    if len(gateways) == 1:
        body += _attr(RTA_GATEWAY, socket.inet_aton(gateways[0]))
    elif gateways:
        hops = b""
        for gw in gateways:  # struct rtnexthop (len, flags, hops, ifindex), then its gateway
            gw_attr = _attr(RTA_GATEWAY, socket.inet_aton(gw))
            hops += struct.pack("=HBBi", 8 + len(gw_attr), 0, 0, 0) + gw_attr
        body += _attr(RTA_MULTIPATH, hops)
    return _message(kind, flags, seq, body)


def fwmark_rule_msg(seq: int, fwmark: int, table: int, priority: int) -> bytes:
    """`ip rule add fwmark M table T priority P`."""
    head_table, table_attr = _table(table)  # FRA_TABLE is RTA_TABLE's number (15)
    body = struct.pack("=BBBBBBBBI", socket.AF_INET, 0, 0, 0, head_table, 0, 0, FR_ACT_TO_TBL, 0)
    body += _attr(FRA_PRIORITY, struct.pack("=I", priority)) + _attr(FRA_FWMARK, struct.pack("=I", fwmark))
    return _message(RTM_NEWRULE, CREATE, seq, body + table_attr)


class Rtnl:
    def __init__(self, netns_path: str):
        self.path = netns_path
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

    def _request(self, build, *args) -> None:
        seq = next(self.seq)
        self.sock.send(build(seq, *args))
        while True:  # the ack (an NLMSG_ERROR with code 0) or the error
            reply = self.sock.recv(65536)
            _, kind, _, rseq = struct.unpack_from("=IHHI", reply, 0)
            if kind == NLMSG_ERROR and rseq == seq:
                code = -struct.unpack_from("=i", reply, 16)[0]
                if code:
                    raise NetlinkError(code)
                return

    def veth_into(self, ifname: str, master: int, peer: str, peer_netns_fd: int) -> None:
        self._request(veth_msg, ifname, master, peer, peer_netns_fd)

    def hairpin(self, index: int) -> None:
        self._request(hairpin_msg, index)

    def link_up(self, index: int) -> None:
        self._request(link_up_msg, index)

    def addr_add(self, index: int, ip: str, prefixlen: int) -> None:
        self._request(addr_msg, index, ip, prefixlen)

    def default_route(self, gateway: str) -> None:
        self._request(route_msg, "default", [gateway])

    def route(self, dst: str, gateways: list[str], table: int = RT_TABLE_MAIN) -> None:
        """Add or replace the route to dst (`ip route replace`)."""
        self._request(route_msg, dst, gateways, REPLACE, RTM_NEWROUTE, table)

    def fwmark_rule(self, fwmark: int, table: int, priority: int) -> None:
        self._request(fwmark_rule_msg, fwmark, table, priority)

    def route_del(self, dst: str) -> None:
        self._request(route_msg, dst, [], ACKED, RTM_DELROUTE)

    def bridge(self, ifname: str) -> int:
        self._request(bridge_msg, ifname)
        return self.index(ifname)

    def link_del(self, ifname: str) -> None:
        self._request(link_del_msg, ifname)

    def index(self, ifname: str) -> int:
        """A link's index: if_nametoindex, an ioctl in this thread's namespace, is far
        cheaper than a netlink lookup."""
        with in_netns(self.path):
            return socket.if_nametoindex(ifname)
