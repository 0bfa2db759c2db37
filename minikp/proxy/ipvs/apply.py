"""The kernel edge of ipvs mode, inside one node's namespace, over netlink in process
(pyroute2's IPVS, IPSet and IPRoute sockets, made inside the namespace so they stay there).

- diff_real_servers, diff_entries, drained (pure): what to add, change and remove to get
  from what the kernel has to what render() wants; the proxier applies only those.
- IpvsKernel(netns_path): kube-ipvs0 and its addresses, the node's other addresses,
  virtual/real servers (read back with connection counts), ipsets and their entries, the
  namespace's IPVS sysctls.

Addresses are IPv4 (the cluster is IPv4-only).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from pyroute2 import IPRoute, IPVS, IPVSDest, IPVSService
from pyroute2.ipset import IPSet
from pyroute2.netlink import NETLINK_GENERIC, NETLINK_NETFILTER, NETLINK_ROUTE
from pyroute2.netlink.exceptions import NetlinkError

from minikp.fabric.rtnl import addr_msg
from minikp.nsenter import in_netns
from minikp.proxy.ipvs import wire
from minikp.proxy.ipvs.batch import Batch
from minikp.proxy.ipvs.render import (BITMAP_PORT, DUMMY_DEVICE, FLAG_HASHED, RealServer, VirtualServer,
                                      valid_for_set)

PROTO_NUM = {"TCP": socket.IPPROTO_TCP, "UDP": socket.IPPROTO_UDP, "SCTP": 132}
PROTO_NAME = {v: k for k, v in PROTO_NUM.items()}
_L4 = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": 132}
_L4_NAME = {v: k for k, v in _L4.items()}
MASQ = 0  # IP_VS_CONN_F_MASQ: kube-proxy's forwarding method (pyroute2 defaults to 3, Route)
EEXIST, ENOENT, ESRCH = 17, 2, 3
IPSET_ERR_EXIST = 4103  # ipset's "element already added"/"not added" protocol errors
IPSET_ERR_NOT_EXIST = 4102  # (nfnetlink ipset errno range starts at 4097)


# --- pure diffs ----------------------------------------------------------------------------

@dataclass(frozen=True)
class KernelRS:
    """A real server as the kernel lists it."""
    ip: str
    port: int
    weight: int
    active: int = 0
    inactive: int = 0
    conns: int = 0  # connections scheduled to it, ever (stats)
    inpkts: int = 0  # packets in through it, ever (stats): what `minikp trace` compares

    def __str__(self) -> str:
        return str(RealServer(self.ip, self.port))


def diff_real_servers(current: dict[str, KernelRS], desired: tuple[RealServer, ...],
                      terminating: set[str], initial: bool):
    """syncEndpoint for one VS -> (to add, to re-add from the terminating list, to reset to
    weight 1, leaving): `terminating` holds the RS strings already queued for graceful
    deletion; `initial` = the proxier's first sync, which resets stray weights."""
    want = {str(r): r for r in desired}
    add = [r for s, r in want.items() if s not in current]
    back = [r for s, r in want.items() if s in current and s in terminating]
    reset = [r for s, r in want.items() if initial and s in current and s not in terminating
             and current[s].weight != r.weight]
    leaving = [current[s] for s in current if s not in want and s not in terminating]
    return add, back, reset, leaving


def diff_entries(current: set[str], desired: tuple[str, ...] | set[str]):
    """syncIPSetEntries -> (to add, to delete)."""
    want = set(desired)
    return sorted(want - current), sorted(current - want)


def drained(rs: KernelRS, protocol: str) -> bool:
    """graceful_termination.go deleteRsFunc: UDP/SCTP go at once, TCP when no connection
    (active or inactive) is left."""
    return protocol != "TCP" or rs.active + rs.inactive == 0


# --- ipset members as the kernel lists them ------------------------------------------------

def _ip_of(nla) -> str:
    return nla.get_attr("IPSET_ATTR_IPADDR_IPV4") or nla.get_attr("IPSET_ATTR_IPADDR_IPV6")


def entry_string(set_type: str, data) -> str:
    """A member as the kernel lists it -> the Entry.String() form kube-proxy compares."""
    if set_type == BITMAP_PORT:
        return str(data.get_attr("IPSET_ATTR_PORT_FROM"))
    ip = _ip_of(data.get_attr("IPSET_ATTR_IP_FROM"))
    kind = set_type.split(":", 1)[1]
    if kind == "ip":
        return ip
    out = f"{ip},{_L4_NAME.get(data.get_attr('IPSET_ATTR_PROTO'), '?')}:{data.get_attr('IPSET_ATTR_PORT_FROM')}"
    if kind == "ip,port,ip":
        out += "," + _ip_of(data.get_attr("IPSET_ATTR_IP2"))
    elif kind == "ip,port,net":
        out += f",{_ip_of(data.get_attr('IPSET_ATTR_IP2'))}/{data.get_attr('IPSET_ATTR_CIDR2')}"
    return out


# --- the kernel edge ---------------------------------------------------------------------

def _svc(vs: VirtualServer) -> IPVSService:
    return IPVSService(addr=vs.ip, port=vs.port, protocol=PROTO_NUM[vs.protocol], sched_name=vs.scheduler,
                       flags={"flags": vs.flags, "mask": 0xFFFFFFFF}, timeout=vs.timeout)


def _svc_key(key: tuple) -> IPVSService:
    ip, proto, port = key
    return IPVSService(addr=ip, port=port, protocol=PROTO_NUM[proto])


def _dest(ip: str, port: int, weight: int = 1) -> IPVSDest:
    return IPVSDest(addr=ip, port=port, weight=weight, fwd_method=MASQ)


class IpvsKernel:
    """Netlink sockets in the node's namespace. Not thread-safe: one proxier uses it."""

    def __init__(self, netns_path: str) -> None:
        self.netns_path = netns_path
        with in_netns(netns_path):
            self.ipr = IPRoute()
            self.ipset = IPSet()
            self.ipvs = IPVS()
        self._batches = {p: Batch(netns_path, p) for p in (NETLINK_GENERIC, NETLINK_NETFILTER, NETLINK_ROUTE)}
        self._dummy_index: int | None = None

    def close(self) -> None:
        for s in (self.ipr, self.ipset, self.ipvs, *self._batches.values()):
            s.close()

    # batched adds (a full sync's bulk): [(what, errno)] of the ones that failed ------------
    def add_virtual_servers(self, vss: list[VirtualServer]) -> list[tuple[object, int]]:
        fam = self.ipvs.prid
        return self._batches[NETLINK_GENERIC].run(
            [((lambda seq, v=v: wire.ipvs_service_msg(seq, fam, v)), v) for v in vss])

    def add_real_servers(self, pairs: list[tuple[tuple, RealServer]]) -> list[tuple[object, int]]:
        fam = self.ipvs.prid
        return self._batches[NETLINK_GENERIC].run(
            [((lambda seq, k=k, r=r: wire.ipvs_dest_msg(seq, fam, k, r)), (k, r)) for k, r in pairs],
            tolerate={EEXIST})

    def add_entries(self, items: list[tuple[str, str, str]]) -> list[tuple[object, int]]:
        """(set name, set type, entry): `ipset add ... -exist`."""
        version = self.ipset._proto_version
        return self._batches[NETLINK_NETFILTER].run(
            [((lambda seq, it=it: wire.ipset_add_msg(seq, version, *it)), it) for it in items])

    def bind_many(self, ips: list[str]) -> list[tuple[object, int]]:
        idx = self._dummy_index
        reqs = [((lambda seq, ip=ip: addr_msg(seq, idx, ip, 32)), ip) for ip in ips]
        return self._batches[NETLINK_ROUTE].run(reqs, tolerate={EEXIST})

    # sysctls (written only if different, proxyutil.EnsureSysctl) ---------------------------
    def ensure_sysctl(self, key: str, value: int) -> bool:
        """True when written. Inside the node namespace only."""
        path = "/proc/sys/" + key.replace(".", "/")
        with in_netns(self.netns_path):
            with open(path) as f:
                if f.read().strip() == str(value):
                    return False
            with open(path, "w") as f:
                f.write(str(value))
        return True

    # kube-ipvs0 -------------------------------------------------------------------------
    def ensure_dummy(self) -> int:
        """EnsureDummyDevice: a dummy link, left DOWN as kube-proxy leaves it."""
        found = self.ipr.link_lookup(ifname=DUMMY_DEVICE)
        if not found:
            try:
                self.ipr.link("add", ifname=DUMMY_DEVICE, kind="dummy")
            except NetlinkError as e:
                if e.code != EEXIST:
                    raise
            found = self.ipr.link_lookup(ifname=DUMMY_DEVICE)
        self._dummy_index = found[0]
        return found[0]

    def dummy_present(self) -> bool:
        return bool(self.ipr.link_lookup(ifname=DUMMY_DEVICE))

    def _addresses(self) -> list[tuple[int, str]]:
        return [(m["index"], m.get_attr("IFA_ADDRESS")) for m in self.ipr.get_addr(family=socket.AF_INET)]

    def bound_addresses(self) -> set[str]:
        idx = self._dummy_index
        return {a for i, a in self._addresses() if i == idx}

    def node_addresses(self) -> set[str]:
        """GetAllLocalAddressesExcept(kube-ipvs0), filtered by isValidForSet."""
        idx = self._dummy_index
        return {a for i, a in self._addresses() if i != idx and valid_for_set(a)}

    def unbind(self, ip: str) -> None:
        try:
            self.ipr.addr("del", index=self._dummy_index, address=ip, prefixlen=32)
        except NetlinkError as e:
            if e.code not in (ENOENT, 99):  # EADDRNOTAVAIL: already gone
                raise

    # IPVS -------------------------------------------------------------------------------
    def virtual_servers(self) -> dict[tuple, VirtualServer]:
        out = {}
        for m in self.ipvs.service("dump"):
            a = m.get_attr("IPVS_CMD_ATTR_SERVICE")
            if a.get_attr("IPVS_SVC_ATTR_FWMARK"):
                continue  # firewall-mark services are not kube-proxy's
            proto = PROTO_NAME.get(a.get_attr("IPVS_SVC_ATTR_PROTOCOL"), "?")
            flags = a.get_attr("IPVS_SVC_ATTR_FLAGS")
            vs = VirtualServer(a.get_attr("IPVS_SVC_ATTR_ADDR"), a.get_attr("IPVS_SVC_ATTR_PORT"), proto,
                               a.get_attr("IPVS_SVC_ATTR_SCHED_NAME"), (flags["flags"] if flags else 0) & ~FLAG_HASHED,
                               a.get_attr("IPVS_SVC_ATTR_TIMEOUT") or 0)
            out[vs.key] = vs
        return out

    def real_servers(self, key: tuple) -> dict[str, KernelRS]:
        out = {}
        for m in self.ipvs.dest("dump", service=_svc_key(key)):
            a = m.get_attr("IPVS_CMD_ATTR_DEST")
            stats = a.get_attr("IPVS_DEST_ATTR_STATS64") or a.get_attr("IPVS_DEST_ATTR_STATS")
            rs = KernelRS(a.get_attr("IPVS_DEST_ATTR_ADDR"), a.get_attr("IPVS_DEST_ATTR_PORT"),
                          a.get_attr("IPVS_DEST_ATTR_WEIGHT"), a.get_attr("IPVS_DEST_ATTR_ACTIVE_CONNS") or 0,
                          a.get_attr("IPVS_DEST_ATTR_INACT_CONNS") or 0,
                          (stats.get_attr("IPVS_STATS_ATTR_CONNS") or 0) if stats else 0,
                          (stats.get_attr("IPVS_STATS_ATTR_INPKTS") or 0) if stats else 0)
            out[str(rs)] = rs
        return out

    def update_virtual_server(self, vs: VirtualServer) -> None:
        self.ipvs.service("set", service=_svc(vs))  # "update" would delete it (pyroute2 0.9.7)

    def delete_virtual_server(self, key: tuple) -> None:
        try:
            self.ipvs.service("del", service=_svc_key(key))
        except NetlinkError as e:
            if e.code not in (ENOENT, ESRCH):
                raise

    # one real server's weight or removal, and the connection counts graceful termination
    # asks for: struct-encoded on the batch socket (pyroute2's ~10 ms per call in the VM tier
    # was most of a one-endpoint change)
    def _dest_request(self, cmd: int, key: tuple, rs: RealServer, tolerate=frozenset()) -> None:
        fam = self.ipvs.prid
        _check_one(self._batches[NETLINK_GENERIC].run(
            [((lambda seq: wire.ipvs_dest_msg(seq, fam, key, rs, cmd)), rs)], tolerate=tolerate))

    def set_weight(self, key: tuple, ip: str, port: int, weight: int) -> None:
        self._dest_request(wire.IPVS_CMD_SET_DEST, key, RealServer(ip, port, weight))

    def delete_real_server(self, key: tuple, ip: str, port: int) -> None:
        self._dest_request(wire.IPVS_CMD_DEL_DEST, key, RealServer(ip, port), tolerate={ENOENT, ESRCH})

    def connection_counts(self, key: tuple) -> dict[str, KernelRS]:
        """The real servers of one virtual server with weights and active/inactive
        connections (no stats: real_servers() reads those)."""
        fam = self.ipvs.prid
        try:
            msgs = self._batches[NETLINK_GENERIC].dump(lambda seq: wire.ipvs_get_dests_msg(seq, fam, key))
        except OSError as e:
            if e.errno in (ENOENT, ESRCH):
                return {}
            raise
        rss = [KernelRS(*d) for d in wire.parse_dests(msgs)]
        return {str(r): r for r in rss}

    # ipset ------------------------------------------------------------------------------
    def ensure_set(self, name: str, set_type: str) -> None:
        """`ipset create NAME TYPE family inet hashsize 1024 maxelem 65536 -exist`
        (bitmap:port: `range 0-65535`)."""
        if set_type == BITMAP_PORT:
            self.ipset.create(name, stype=set_type, bitmap_ports_range=(0, 65535), exclusive=False)
        else:
            self.ipset.create(name, stype=set_type, family=socket.AF_INET, hashsize=1024, maxelem=65536,
                              exclusive=False)

    def set_entries(self, name: str, set_type: str) -> set[str]:
        out = set()
        for m in self.ipset.list(name):
            adt = m.get_attr("IPSET_ATTR_ADT")
            if adt:
                out.update(entry_string(set_type, d) for d in adt.get_attrs("IPSET_ATTR_DATA"))
        return out

    def delete_entries(self, items: list[tuple[str, str, str]]) -> list[tuple[object, int]]:
        """(set name, set type, entry): `ipset del`, one that is not there tolerated."""
        version = self.ipset._proto_version
        return self._batches[NETLINK_NETFILTER].run(
            [((lambda seq, it=it: wire.ipset_add_msg(seq, version, *it, cmd=wire.IPSET_CMD_DEL)), it)
             for it in items], tolerate={IPSET_ERR_NOT_EXIST})



def kernel_release() -> tuple[int, int]:
    major, minor = os.uname().release.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def _check_one(failed: list[tuple[object, int]]) -> None:
    if failed:
        label, err = failed[0]
        raise OSError(err, f"{label}: {os.strerror(err)}")
