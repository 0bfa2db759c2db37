"""The netlink messages a full ipvs sync sends in bulk, encoded with struct (pure).

Why not pyroute2's encoder here: measured in the VM tier, encoding one IPVS_CMD_NEW_DEST
with pyroute2's generic NLA machinery took ~10 ms (about 0.3 ms on the host), most of a full
sync. These messages are small and fixed in shape; tests/unit/test_ipvs_wire.py checks
each byte for byte against pyroute2's own encoding of the same request (attribute order
included), as tests/unit/test_rtnl.py does for minikp.fabric.rtnl.

- ipvs_service_msg(seq, family_id, vs): IPVS_CMD_NEW_SERVICE (address, port, protocol,
  scheduler, flags, timeout, /32 netmask);
- ipvs_dest_msg(seq, family_id, key, rs, cmd=): IPVS_CMD_NEW_DEST, masquerading, with its
  weight; the same with IPVS_CMD_SET_DEST / IPVS_CMD_DEL_DEST (a partial sync's weight change
  and delete: one request on the batch socket instead of pyroute2's ~10 ms per call there);
- ipvs_get_dests_msg(seq, family_id, key) and parse_dests(replies): the real servers of one
  virtual server with their connection counts (what graceful termination asks each time);
- ipset_add_msg(seq, protocol_version, set_name, set_type, entry, cmd=): IPSET_CMD_ADD of an
  Entry.String() form, without NLM_F_EXCL (`ipset add -exist`); IPSET_CMD_DEL the same way.
IPv4 only.
"""

from __future__ import annotations

import socket
import struct

from minikp.proxy.ipvs.render import BITMAP_PORT, RealServer, VirtualServer

NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
NLA_F_NESTED, NLA_F_NET_BYTEORDER = 0x8000, 0x4000
IPVS_CMD_NEW_SERVICE, IPVS_CMD_NEW_DEST, IPVS_CMD_SET_DEST, IPVS_CMD_DEL_DEST, IPVS_CMD_GET_DEST = 1, 5, 6, 7, 8
IPVS_GENL_VERSION = 1
NLM_F_DUMP = 0x300
IPVS_CMD_ATTR_SERVICE, IPVS_CMD_ATTR_DEST = 1, 2
SVC_AF, SVC_PROTOCOL, SVC_ADDR, SVC_PORT, SVC_SCHED, SVC_FLAGS, SVC_TIMEOUT, SVC_NETMASK = 1, 2, 3, 4, 6, 7, 8, 9
(DEST_ADDR, DEST_PORT, DEST_FWD, DEST_WEIGHT, DEST_U_THRESH, DEST_L_THRESH, DEST_ACTIVE, DEST_INACTIVE,
 DEST_AF, DEST_TUN_TYPE, DEST_TUN_PORT, DEST_TUN_FLAGS) = 1, 2, 3, 4, 5, 6, 7, 8, 11, 13, 14, 15
IPSET_CMD_ADD, IPSET_CMD_DEL, NFNL_SUBSYS_IPSET = 9, 10, 6
IPSET_PROTOCOL, IPSET_SETNAME, IPSET_DATA = 1, 2, 7
IPSET_IP, IPSET_PORT, IPSET_PROTO, IPSET_IP2, IPSET_CIDR2, IPSET_IPADDR_IPV4 = 1, 4, 7, 20, 21, 1
PROTO = {"TCP": socket.IPPROTO_TCP, "UDP": socket.IPPROTO_UDP, "SCTP": 132,
         "tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": 132}


def _attr(kind: int, payload: bytes) -> bytes:
    return struct.pack("=HH", 4 + len(payload), kind) + payload + b"\0" * (-len(payload) % 4)


def _u8(kind: int, v: int) -> bytes:
    return _attr(kind, struct.pack("B", v))


def _u16(kind: int, v: int) -> bytes:
    return _attr(kind, struct.pack("=H", v))


def _be16(kind: int, v: int) -> bytes:
    return _attr(kind, struct.pack(">H", v))


def _u32(kind: int, v: int) -> bytes:
    return _attr(kind, struct.pack("=I", v))


def _ip(kind: int, ip: str) -> bytes:
    return _attr(kind, socket.inet_aton(ip))


def _message(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


def _genl(cmd: int) -> bytes:
    return struct.pack("=BBH", cmd, IPVS_GENL_VERSION, 0)


def _service_key(ip: str, protocol: str, port: int) -> bytes:
    return (_ip(SVC_ADDR, ip) + _u16(SVC_AF, socket.AF_INET) + _be16(SVC_PORT, port)
            + _u16(SVC_PROTOCOL, PROTO[protocol]))


def ipvs_service_msg(seq: int, family_id: int, vs: VirtualServer) -> bytes:
    attrs = (_ip(SVC_ADDR, vs.ip) + _u16(SVC_AF, socket.AF_INET) + _ip(SVC_NETMASK, "255.255.255.255")
             + _be16(SVC_PORT, vs.port) + _u16(SVC_PROTOCOL, PROTO[vs.protocol])
             + _attr(SVC_SCHED, vs.scheduler.encode() + b"\0")
             + _attr(SVC_FLAGS, struct.pack("=II", vs.flags, 0xFFFFFFFF)) + _u32(SVC_TIMEOUT, vs.timeout))
    return _message(family_id, CREATE, seq, _genl(IPVS_CMD_NEW_SERVICE) + _attr(IPVS_CMD_ATTR_SERVICE, attrs))


def ipvs_dest_msg(seq: int, family_id: int, key: tuple[str, str, int], rs: RealServer,
                  cmd: int = IPVS_CMD_NEW_DEST) -> bytes:
    ip, protocol, port = key
    dest = (_u8(DEST_TUN_TYPE, 0) + _u16(DEST_TUN_PORT, 0) + _u16(DEST_TUN_FLAGS, 0)
            + _u32(DEST_U_THRESH, 0) + _u32(DEST_L_THRESH, 0) + _ip(DEST_ADDR, rs.ip)
            + _u16(DEST_AF, socket.AF_INET) + _be16(DEST_PORT, rs.port) + _u32(DEST_WEIGHT, rs.weight)
            + _u32(DEST_FWD, 0))  # 0: IP_VS_CONN_F_MASQ
    body = _genl(cmd) + _attr(IPVS_CMD_ATTR_SERVICE, _service_key(ip, protocol, port)) \
        + _attr(IPVS_CMD_ATTR_DEST, dest)
    return _message(family_id, CREATE if cmd == IPVS_CMD_NEW_DEST else NLM_F_REQUEST | NLM_F_ACK, seq, body)


def ipvs_get_dests_msg(seq: int, family_id: int, key: tuple[str, str, int]) -> bytes:
    body = _genl(IPVS_CMD_GET_DEST) + _attr(IPVS_CMD_ATTR_SERVICE, _service_key(*key))
    return _message(family_id, NLM_F_REQUEST | NLM_F_DUMP, seq, body)


def _attrs(data: bytes, start: int, end: int):
    """(type without flags, payload) of each attribute in data[start:end]."""
    while start + 4 <= end:
        length, kind = struct.unpack_from("=HH", data, start)
        if length < 4:
            return
        yield kind & 0x3FFF, data[start + 4:start + length]
        start += (length + 3) & ~3


def parse_dests(messages: list[bytes]) -> list[tuple[str, int, int, int, int]]:
    """The IPVS_CMD_NEW_DEST messages of a GET_DEST dump (whole netlink messages) ->
    [(ip, port, weight, active connections, inactive connections)], IPv4."""
    out = []
    for msg in messages:
        for kind, payload in _attrs(msg, 20, len(msg)):  # after nlmsghdr (16) + genlmsghdr (4)
            if kind != IPVS_CMD_ATTR_DEST:
                continue
            a = dict(_attrs(payload, 0, len(payload)))
            u32 = lambda k: struct.unpack("=I", a[k])[0] if k in a else 0  # noqa: E731
            out.append((socket.inet_ntoa(a[DEST_ADDR][:4]), struct.unpack(">H", a[DEST_PORT])[0],
                        u32(DEST_WEIGHT), u32(DEST_ACTIVE), u32(DEST_INACTIVE)))
    return out


def _ipset_ip(kind: int, ip: str) -> bytes:
    return _attr(kind | NLA_F_NESTED, _attr(IPSET_IPADDR_IPV4 | NLA_F_NET_BYTEORDER, socket.inet_aton(ip)))


def ipset_add_msg(seq: int, version: int, set_name: str, set_type: str, entry: str,
                  cmd: int = IPSET_CMD_ADD) -> bytes:
    if set_type == BITMAP_PORT:
        data = _attr(IPSET_PORT | NLA_F_NET_BYTEORDER, struct.pack(">H", int(entry)))
    else:
        parts = entry.split(",")
        data = _ipset_ip(IPSET_IP, parts[0])
        if len(parts) > 1:
            proto, port = parts[1].split(":")
            data += (_attr(IPSET_PORT | NLA_F_NET_BYTEORDER, struct.pack(">H", int(port)))
                     + _attr(IPSET_PROTO | NLA_F_NET_BYTEORDER, struct.pack("B", PROTO[proto])))
        if len(parts) > 2:
            addr, _, cidr = parts[2].partition("/")
            data += _ipset_ip(IPSET_IP2, addr)
            if cidr:
                data += _attr(IPSET_CIDR2 | NLA_F_NET_BYTEORDER, struct.pack("B", int(cidr)))
    body = (struct.pack("=BBH", socket.AF_INET, 0, 0) + _u8(IPSET_PROTOCOL, version)
            + _attr(IPSET_SETNAME, set_name.encode() + b"\0") + _attr(IPSET_DATA | NLA_F_NESTED, data))
    return _message(cmd | (NFNL_SUBSYS_IPSET << 8), NLM_F_REQUEST | NLM_F_ACK, seq, body)
