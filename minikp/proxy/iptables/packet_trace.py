"""Following single packets through a node's iptables rules with the kernel's TRACE target:
what `minikp trace` shows when the backend is iptables-legacy. Unlike per-rule counters
(trace.py), TRACE marks only the packets a rule in the raw table selects, so the listing
holds only the traced connection's packets (its original direction: replies and other
traffic never carry the mark), each rule in the order the packet met it.

The kernel reports every rule a marked packet matched, a built-in chain's policy and a user
chain's end, as netfilter log messages "TRACE: TABLE:CHAIN:rule|policy|return:N". They go
to nfnetlink_log group 0 once a netlink socket in the node's namespace binds that logger
for IPv4 (per namespace: nothing is logged on the host). The raw-table rules are inserted
for the trace only and removed afterwards.

- parse_prefix(prefix) -> (table, chain, kind, number) | None             (pure)
- rule_hits(events, rules) -> [Hit] in traversal order, packets per rule  (pure)
- PacketTrace(netns_path, backend, match): a context manager; .hits() after it closes.
"""

from __future__ import annotations

import re
import socket
import struct

from minikp.nsenter import in_netns
from minikp.proxy.iptables.backend import binary
from minikp.proxy.iptables.tools import run, save

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET, NFULNL_MSG_CONFIG = 0, 1
NFULA_CFG_CMD, NFULA_CFG_MODE = 1, 2
CMD_BIND, CMD_UNBIND, CMD_PF_BIND, CMD_PF_UNBIND = 1, 2, 3, 4
NFULNL_COPY_META = 1
NFULA_PREFIX = 10
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
COMMENT = "minikp trace"

_PREFIX = re.compile(r"TRACE: (\w+):([^:]+):(rule|policy|return):(\d+)")


def parse_prefix(prefix: str) -> tuple[str, str, str, int] | None:
    m = _PREFIX.match(prefix)
    return (m.group(1), m.group(2), m.group(3), int(m.group(4))) if m else None


def chain_rules(save_text: str) -> dict[tuple[str, str], list[str]]:
    """{(table, chain): ["-A CHAIN ...", ...]} and each built-in chain's policy under
    (table, ":CHAIN") as ["ACCEPT"]."""
    out: dict[tuple[str, str], list[str]] = {}
    table = ""
    for line in save_text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            chain, policy = line[1:].split(" ")[:2]
            out.setdefault((table, chain), [])
            out[(table, ":" + chain)] = [policy]
        elif line.startswith("-A "):
            out.setdefault((table, line.split(" ", 2)[1]), []).append(line)
    return out


def rule_hits(events: list[tuple[str, str, str, int]],
              rules: dict[tuple[str, str], list[str]]) -> list[tuple[str, str, str, int]]:
    """(table, chain, rule text, packets) for each rule or policy the traced packets met, in
    the order the first of them met it. The raw table (where the trace itself is switched
    on), a user chain's implicit return and the policy of an empty chain are left out: they
    are not the proxy's rules."""
    order: list[tuple[str, str, str]] = []
    count: dict[tuple[str, str, str], int] = {}
    for table, chain, kind, n in events:
        if table == "raw" or kind == "return":
            continue
        if kind == "policy" and not rules.get((table, chain)):
            continue  # a chain with no rules (mangle's, here): its policy says nothing
        if kind == "policy":
            text = f"policy {(rules.get((table, ':' + chain)) or ['?'])[0]}"
        else:
            listed = rules.get((table, chain), [])
            text = listed[n - 1] if 0 < n <= len(listed) else f"rule {n}"
        key = (table, chain, text)
        if key not in count:
            order.append(key)
            count[key] = 0
        count[key] += 1
    return [(t, c, text, count[(t, c, text)]) for t, c, text in order]


def _attr(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _config(family: int, attr: bytes, seq: int) -> bytes:
    body = struct.pack("=BBH", family, 0, 0) + attr  # group 0 (res_id, big endian 0)
    kind = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
    return struct.pack("=IHHII", 16 + len(body), kind, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


def _prefixes(data: bytes) -> list[str]:
    out, off = [], 0
    while off + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, off)
        if length < 16:
            break
        if kind == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET:
            p = off + 20  # nlmsghdr + nfgenmsg
            while p + 4 <= off + length:
                alen, atype = struct.unpack_from("=HH", data, p)
                if alen < 4:
                    break
                if atype & 0x7FFF == NFULA_PREFIX:
                    out.append(data[p + 4:p + alen].rstrip(b"\0").decode(errors="replace"))
                p += (alen + 3) & ~3
        off += (length + 3) & ~3
    return out


class PacketTrace:
    """Trace packets of `proto` with source port `sport` (or destination port `dport`)
    through the node's rules while the `with` block runs."""

    def __init__(self, netns_path: str, backend: str, proto: str, *, sport: int | None = None,
                 dport: int | None = None):
        self.netns_path, self.backend = netns_path, backend
        self.match = ["-p", proto] + (["--sport", str(sport)] if sport else []) + (
            ["--dport", str(dport)] if dport else [])
        self.events: list[tuple[str, str, str, int]] = []
        self.sock: socket.socket | None = None
        self._rules: dict[tuple[str, str], list[str]] = {}

    def _ipt(self, *args: str, check: bool = True):
        return run(self.netns_path, [binary(self.backend), "-w", "5", "-t", "raw", *args],
                   check=check)

    def _rule(self, op: str, chain: str, check: bool = True):
        return self._ipt(op, chain, *self.match, "-m", "comment", "--comment", COMMENT,
                         "-j", "TRACE", check=check)

    def __enter__(self) -> "PacketTrace":
        with in_netns(self.netns_path):  # a netlink socket stays in the namespace it was made in
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self.sock.bind((0, 0))
            self.sock.settimeout(2.0)
            for seq, (family, attr) in enumerate((
                    (socket.AF_INET, _attr(NFULA_CFG_CMD, bytes([CMD_PF_UNBIND]))),
                    (socket.AF_INET, _attr(NFULA_CFG_CMD, bytes([CMD_PF_BIND]))),
                    (socket.AF_UNSPEC, _attr(NFULA_CFG_CMD, bytes([CMD_BIND]))),
                    (socket.AF_UNSPEC, _attr(NFULA_CFG_MODE, struct.pack(">IBB", 0, NFULNL_COPY_META, 0))),
            ), 1):
                self.sock.send(_config(family, attr, seq))
                self.sock.recv(65536)  # the ack
            for chain in ("PREROUTING", "OUTPUT"):  # packets arriving, and made in the node
                self._rule("-I", chain)
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            for chain in ("PREROUTING", "OUTPUT"):
                self._rule("-D", chain, check=False)
            self._rules = chain_rules(save(self.netns_path, self.backend))
            self.sock.setblocking(False)
            while True:
                try:
                    data = self.sock.recv(1 << 16)
                except (BlockingIOError, OSError):
                    break
                for prefix in _prefixes(data):
                    if (ev := parse_prefix(prefix)) is not None:
                        self.events.append(ev)
        finally:
            self._close()

    def _close(self) -> None:
        if self.sock is not None:
            try:  # leave the namespace's logger unbound, as it was
                self.sock.send(_config(socket.AF_UNSPEC, _attr(NFULA_CFG_CMD, bytes([CMD_UNBIND])), 90))
                self.sock.send(_config(socket.AF_INET, _attr(NFULA_CFG_CMD, bytes([CMD_PF_UNBIND])), 91))
            except OSError:
                pass
            self.sock.close()
            self.sock = None

    def hits(self) -> list[tuple[str, str, str, int]]:
        return rule_hits(self.events, self._rules)
