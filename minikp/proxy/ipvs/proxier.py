"""One node's ipvs-mode proxy: kube-proxy 1.33's ipvs syncProxyRules, applied inside the
node's namespace (fidelity notes in /work/shared/notes/kube-proxy-nftables-ipvs.md §2).

With the first sync (NewProxier's): the IPVS sysctls in the node namespace only: vs.conntrack=1,
conn_reuse_mode=0 on kernels 4.1 <= v < 5.9, expire_nodest_conn=1,
expire_quiescent_template=1, ip_forward=1, and arp_ignore=1/arp_announce=2 with strict ARP.

One sync, in kube-proxy's order: KUBE chains and built-in jumps (full syncs), kube-ipvs0, the
17 ipsets, per service port the virtual servers (added, or updated when scheduler/flags/
timeout differ), kube-ipvs0 addresses and real servers, the set entries, iptables-restore
(nat then filter, --noflush --counters), superfluous kube-ipvs0 addresses unbound, virtual
servers not wanted deleted (cleanLegacyService), UDP conntrack cleanup.

Where minikp differs, for speed and not in effect: kube-proxy re-reads every virtual and real
server from the kernel and rewrites every set on every sync (it has no partial syncs). Here a
full sync (the first, after a failure or after `flushed()`) reads the kernel (servers, set
members, kube-ipvs0 and the node's addresses) and reconciles everything; later syncs
recompute only the service ports whose ServicePortInfo changed (found by proxy.portindex
without a Python pass over all of them; desired.Desired sums the shares), touch only
their virtual/real servers, set entries and addresses, and skip the restore when its text is
unchanged. A change of the node's own addresses is seen at the next full sync.

Graceful termination (graceful_termination.go): a real server that leaves is deleted at once
if UDP/SCTP or without connections; otherwise it gets weight 0 and stays until
reap_terminating() (each sync, and whoever calls it periodically; kube-proxy: every minute)
finds its active+inactive connections at 0. A returning one is deleted and re-added.

API (minikp.proxy.base's Proxier): IpvsProxier.from_config(netns_path, config) or
IpvsProxier(netns_path, backend, scheduler=, strict_arp=); .sync(snapshot) -> SyncResult;
flushed(), rules_text(table=, fmt=), counters()/hits() for `minikp trace`, describe(),
settings(); plus reap_terminating() and close(). Building one changes nothing in the kernel
(sockets and sysctls come with the first sync), so a CLI may build one just to read rules.
"""

from __future__ import annotations

import ipaddress
import os
import time
from dataclasses import dataclass, field
from typing import Any

from minikp.errors import InputError, OperationError
from minikp.nsenter import in_netns
from minikp.proxy import conntrack
from minikp.proxy.base import Hit, SyncResult as BaseSyncResult
from minikp.proxy.iptables import trace as ipt_trace
from minikp.proxy.iptables.backend import binary, command_links, resolve_backend
from minikp.proxy.iptables.sync import WAIT_FLAGS
from minikp.proxy.iptables.tools import run as _run
from minikp.proxy.ipvs import kernel as ipvs_kernel, render as rd
from minikp.proxy.ipvs.apply import (EEXIST, IpvsKernel, KernelRS, diff_entries, diff_real_servers, drained,
                                     kernel_release)
from minikp.proxy.ipvs.desired import Delta, Desired
from minikp.proxy.paths import Branch, Frontend, PortPath
from minikp.proxy.portindex import PortIndex
from minikp.proxy.release import DEFAULT as DEFAULT_RELEASE, parse_release, release_of
from minikp.proxy.snapshot import ProxySnapshot

_SET_TYPE = {name: typ for name, typ, _ in rd.SET_INFO}


@dataclass
class SyncResult(BaseSyncResult):
    """base.SyncResult (changed: service port names whose virtual/real servers were
    touched), then ipvs mode's own."""
    lines: int = 0  # lines of restore input (0: the restore was skipped, same text)
    ops: list[str] = field(default_factory=list)  # every kernel change made, in order
    restore_input: str = ""


def sysctls(strict_arp: bool = False, release: tuple[int, int] | None = None) -> dict[str, int]:
    """The sysctls NewProxier ensures, in its order."""
    out = {"net.ipv4.vs.conntrack": 1}
    if (4, 1) <= (release or kernel_release()) < (5, 9):  # #93297: fixed from 5.9 on
        out["net.ipv4.vs.conn_reuse_mode"] = 0
    out |= {"net.ipv4.vs.expire_nodest_conn": 1, "net.ipv4.vs.expire_quiescent_template": 1,
            "net.ipv4.ip_forward": 1}
    if strict_arp:
        out |= {"net.ipv4.conf.all.arp_ignore": 1, "net.ipv4.conf.all.arp_announce": 2}
    return out


class IpvsProxier:
    """One node's ipvs-mode proxy, driving the real kernel in `netns_path`."""

    mode = "ipvs"
    # `minikp rules --format`: everything, or one of the kernel's tools
    formats = ("ipvs", "ipvsadm", "stats", "connections", "ipset", "iptables")
    tables = ("filter", "nat", "mangle", "raw")

    @classmethod
    def from_config(cls, netns_path: str, config) -> "IpvsProxier":
        return cls(netns_path, config.iptables_backend,
                   scheduler=getattr(config, "ipvs_scheduler", "") or rd.DEFAULT_SCHEDULER,
                   release=release_of(config), masquerade_all=bool(
                       getattr(getattr(config, "proxy_options", None), "masquerade_all", False)))

    @classmethod
    def kernel_gaps(cls, netns_path: str, config=None) -> list[str]:
        """What this kernel lacks for ipvs mode ([] = nothing), probed in `netns_path`:
        `up` exits 1 naming them, `doctor` lists them."""
        sched = getattr(config, "ipvs_scheduler", "") or rd.DEFAULT_SCHEDULER
        return ipvs_kernel.missing(netns_path, (sched,) if config is not None else rd.SCHEDULERS)

    def __init__(self, netns_path: str, backend: str = "auto", *, scheduler: str = rd.DEFAULT_SCHEDULER,
                 strict_arp: bool = False, masquerade_all: bool = False,
                 release: tuple[int, int] = parse_release(DEFAULT_RELEASE)) -> None:
        self.release = release  # the kube-proxy release modelled (UDP conntrack cleanup)
        self.netns_path = netns_path
        self.backend = resolve_backend(backend)
        self.scheduler = scheduler or rd.DEFAULT_SCHEDULER
        self.strict_arp = strict_arp
        self.masquerade_all = masquerade_all
        self._kernel: IpvsKernel | None = None
        self.need_full = True
        self.initial = True  # first sync: stray real-server weights are reset to 1
        self._last: ProxySnapshot | None = None
        self._restored = ""  # restore text last applied
        # what the kernel holds, as of the last successful sync (re-read on a full one)
        self._vs: dict[tuple, rd.VirtualServer] = {}
        self._rs: dict[tuple, dict[str, KernelRS]] = {}
        self._entries: dict[str, set[str]] = {}
        self._bound: set[str] = set()  # kube-ipvs0's addresses
        self._addrs: tuple[str, ...] = ()  # the node's other addresses (read on full syncs)
        self._index = PortIndex(rd.port_key)  # the last applied service ports, by key
        self._changed: list = []  # (key, old, new) of the ports the last sync replaced
        self.desired = Desired()
        self.terminating: dict[tuple[tuple, str], str] = {}  # (vs key, "ip:port") -> protocol
        self._restore_argv = [binary(self.backend, "restore"), *WAIT_FLAGS, "--noflush", "--counters"]

    @property
    def kernel(self) -> IpvsKernel:
        """The netlink sockets, made on first use (NewProxier's sysctls with them)."""
        if self._kernel is None:
            self._kernel = IpvsKernel(self.netns_path)
            for key, value in sysctls(self.strict_arp).items():
                self._kernel.ensure_sysctl(key, value)
        return self._kernel

    # --- iptables ------------------------------------------------------------------------
    def _ipt(self, *args: str, check: bool = True):
        return _run(self.netns_path, [binary(self.backend), *WAIT_FLAGS, *args], check=check)

    def _ensure_chains_and_jumps(self) -> None:
        """createAndLinkKubeChain: EnsureChain for each chain, EnsureRule(Prepend) per jump."""
        for table, chains in (("nat", rd.NAT_CHAINS), ("filter", rd.FILTER_CHAINS)):
            for chain in chains:
                res = self._ipt("-N", chain, "-t", table, check=False)
                if res.returncode not in (0, 1):  # 1: it exists
                    raise OperationError(f"iptables -N {chain} -t {table}: {res.stderr.strip()}")
        for j in rd.JUMP_RULES:
            spec = (j.builtin, "-t", j.table, *j.args)
            if self._ipt("-C", *spec, check=False).returncode != 0:
                self._ipt("-I", *spec)

    def flushed(self) -> bool:
        """Someone removed what a sync relies on (KUBE-SERVICES in nat, or kube-ipvs0): the
        next sync must be a full one. kube-proxy notices on its 30 s full resync."""
        if self._last is None:
            return False  # nothing applied yet
        gone = (self._ipt("-S", "KUBE-SERVICES", "-t", "nat", check=False).returncode != 0
                or not self.kernel.dummy_present())
        if gone:
            self.need_full = True
        return gone

    # --- reading the kernel on a full sync ----------------------------------------------
    def _read_kernel(self) -> None:
        self._vs = self.kernel.virtual_servers()
        self._rs = {k: self.kernel.real_servers(k) for k in self._vs}
        self._entries = {name: self.kernel.set_entries(name, typ) for name, typ, _ in rd.SET_INFO}
        self.terminating = {(k, s): p for (k, s), p in self.terminating.items()
                            if k in self._rs and s in self._rs[k]}

    # --- graceful termination -------------------------------------------------------------
    def housekeeping(self) -> None:
        self.reap_terminating()

    def reap_terminating(self, ops: list[str] | None = None) -> list[str]:
        """Delete the weight-0 real servers whose connections have drained."""
        done = []
        for (key, rs_str), proto in list(self.terminating.items()):
            now = self.kernel.connection_counts(key) if key in self._vs else {}
            rs = now.get(rs_str)
            if rs is None or drained(rs, proto):
                if rs is not None:
                    self.kernel.delete_real_server(key, rs.ip, rs.port)
                    self._rs.get(key, {}).pop(rs_str, None)
                del self.terminating[(key, rs_str)]
                done.append(f"{_vs_str(key)}/{rs_str}")
        if ops is not None:
            ops += [f"reap {d}" for d in done]
        return done

    def _graceful_delete(self, key: tuple, rs: KernelRS, ops: list[str]) -> None:
        """GracefulDeleteRS, with the connection counts the kernel has now."""
        rs = self.kernel.connection_counts(key).get(str(rs), rs)
        if drained(rs, key[1]):
            self.kernel.delete_real_server(key, rs.ip, rs.port)
            self._rs[key].pop(str(rs), None)
            ops.append(f"del rs {_vs_str(key)} {rs}")
        else:
            self.kernel.set_weight(key, rs.ip, rs.port, 0)
            self._rs[key][str(rs)] = KernelRS(rs.ip, rs.port, 0, rs.active, rs.inactive)
            self.terminating[(key, str(rs))] = key[1]
            ops.append(f"weight 0 {_vs_str(key)} {rs}")

    # --- the sync -----------------------------------------------------------------------
    def sync(self, snapshot: ProxySnapshot) -> SyncResult:
        start = time.monotonic()
        last = self._last
        full = (self.need_full or last is None or (snapshot.node_name, snapshot.node_ip)
                != (last.node_name, last.node_ip))
        ops: list[str] = []
        changed: set[str] = set()
        try:
            if full:
                self._ensure_chains_and_jumps()
                self.kernel.ensure_dummy()
                for name, typ, _ in rd.SET_INFO:
                    self.kernel.ensure_set(name, typ)
                self._read_kernel()
                self._bound = self.kernel.bound_addresses()
                self._addrs = rd.node_addresses_for(snapshot, self.kernel.node_addresses())
            self.reap_terminating(ops)
            delta = self._update_desired(snapshot, full)
            touched = (set(self.desired.vs) | set(self._vs)) if full else delta.vs_keys
            binds = set(self.desired.bind_refs) - self._bound if full else delta.bind_added - self._bound
            self._sync_servers(touched, sorted(binds), ops, changed)
            self._sync_entries(delta, full, ops)
            text = rd.iptables_restore(self.desired.non_empty(), snapshot.cluster_cidr,
                                       self.desired.lb_no_node_access(), masquerade_all=self.masquerade_all)
            if full or text != self._restored:
                _run(self.netns_path, self._restore_argv, input=text)
                self._restored = text
                ops.append("iptables-restore")
            unbind = self._bound - set(self.desired.bind_refs) if full else delta.bind_removed & self._bound
            for ip in sorted(unbind):  # superfluous addresses
                self.kernel.unbind(ip)
                self._bound.discard(ip)
                ops.append(f"unbind {ip}")
            for key in sorted(k for k in touched if k not in self.desired.vs and k in self._vs):
                self.kernel.delete_virtual_server(key)  # cleanLegacyService
                self._vs.pop(key)
                self._rs.pop(key, None)
                self.terminating = {k: p for k, p in self.terminating.items() if k[0] != key}
                ops.append(f"del vs {_vs_str(key)}")
        except Exception:
            self.need_full = True  # the kernel may differ from the cache: re-read it next time
            raise
        self._last = snapshot
        self.need_full = False
        self.initial = False
        cmds, errors = conntrack.cleanup(self.netns_path, last, snapshot, self.release,
                                         None if full else [(o, n) for _, o, n in self._changed])
        restored = "iptables-restore" in ops
        return SyncResult(full=full, duration_s=time.monotonic() - start, changed=changed, conntrack=cmds,
                          conntrack_errors=errors, lines=text.count("\n") if restored else 0, ops=ops,
                          restore_input=text if restored else "")

    def _update_desired(self, snapshot: ProxySnapshot, full: bool) -> Delta:
        """Replace the shares of the service ports that changed (all of them on a full sync),
        found by the PortIndex (by identity when unchanged ports are the same objects)."""
        delta = Delta()
        if full:
            self.desired = Desired()
            self._changed = self._index.reset(snapshot.services)
        else:
            self._changed = self._index.update(snapshot.services)
        args = (snapshot.node_name, snapshot.node_ip, self._addrs, self.scheduler)
        for key, _old, sp in self._changed:
            self.desired.replace(key, rd.port_state(sp, *args) if sp is not None else None, delta)
        return delta

    def _sync_entries(self, delta: Delta, full: bool, ops: list[str]) -> None:
        """syncIPSetEntries: every set on a full sync, else only the entries that changed."""
        if full:
            want = {name: self.desired.entries(name) for name in rd.SET_NAMES}
            add = [(n, e) for n in rd.SET_NAMES for e in diff_entries(self._entries[n], want[n])[0]]
            remove = [(n, e) for n in rd.SET_NAMES for e in diff_entries(self._entries[n], want[n])[1]]
        else:
            add = sorted(e for e in delta.entries_added if e[1] not in self._entries[e[0]])
            remove = sorted(e for e in delta.entries_removed if e[1] in self._entries[e[0]])
        _check(self.kernel.add_entries([(n, _SET_TYPE[n], e) for n, e in add]), "ipset add")
        for name, entry in add:
            self._entries[name].add(entry)
            ops.append(f"ipset add {name} {entry}")
        _check(self.kernel.delete_entries([(n, _SET_TYPE[n], e) for n, e in remove]), "ipset del")
        for name, entry in remove:
            self._entries[name].discard(entry)
            ops.append(f"ipset del {name} {entry}")

    def _sync_servers(self, touched: set[tuple], binds: list[str], ops: list[str], changed: set[str]) -> None:
        """syncService + syncEndpoint for the virtual servers a change touched; binding
        their addresses (`binds`) to kube-ipvs0 as syncService does. Adds go in batches."""
        _check(self.kernel.bind_many(binds), "bind to kube-ipvs0")
        self._bound.update(binds)
        ops += [f"bind {ip}" for ip in binds]
        new_vs, rs_adds = [], []
        for key in sorted(touched):
            vs = self.desired.vs.get(key)
            if vs is None:
                continue  # deleted after the restore, as cleanLegacyService does
            cur_vs = self._vs.get(key)
            if cur_vs is None:
                new_vs.append(vs)
                self._rs[key] = {}
                ops.append(f"add vs {vs} {vs.scheduler}")
                changed.add(vs.service)
            elif cur_vs.settings != vs.settings:
                self.kernel.update_virtual_server(vs)
                ops.append(f"update vs {vs} {vs.scheduler}")
                changed.add(vs.service)
            self._vs[key] = vs
            cur = self._rs.setdefault(key, {})
            term = {s for (k, s) in self.terminating if k == key}
            add_rs, back, reset, leaving = diff_real_servers(cur, vs.real_servers, term, self.initial)
            for r in back:  # MoveRSOutofGracefulDeleteList: delete now, added again below
                self.kernel.delete_real_server(key, r.ip, r.port)
                del self.terminating[(key, str(r))]
                cur.pop(str(r), None)
            rs_adds += [(key, r) for r in [*back, *add_rs]]
            for r in [*back, *add_rs]:
                cur[str(r)] = KernelRS(r.ip, r.port, r.weight)
            for r in reset:
                self.kernel.set_weight(key, r.ip, r.port, r.weight)
                cur[str(r)] = KernelRS(r.ip, r.port, r.weight)
            for rs in leaving:
                self._graceful_delete(key, rs, ops)
            if add_rs or back or reset or leaving:
                ops += [f"add rs {vs} {r}" for r in [*back, *add_rs]] + [f"weight 1 {vs} {r}" for r in reset]
                changed.add(vs.service)
        for vs, err in self.kernel.add_virtual_servers(new_vs):
            if err != EEXIST:
                raise OperationError(f"add virtual server {vs}: {os.strerror(err)}")
            self.kernel.update_virtual_server(vs)  # there already: make it ours
        _check(self.kernel.add_real_servers(rs_adds), "add real server")

    # --- reading back --------------------------------------------------------------------
    def _tool(self, argv: list[str]) -> str:
        try:
            res = _run(self.netns_path, argv, check=False)
        except FileNotFoundError:
            return f"({argv[0]} is not installed: apt-get install {argv[0].split('-')[0]})\n"
        return res.stdout if res.returncode == 0 else f"(exit {res.returncode}) {res.stderr.strip()}\n"

    def rules_text(self, table: str | None = None, fmt: str | None = None) -> str:
        """The kernel's own tools: `ipvsadm -Ln`, `ipset list` and iptables-save (fmt "ipvs",
        the default), or one of them; "stats" is `ipvsadm -Ln --stats`, "connections" the
        connection table (`ipvsadm -Lnc`). `table` narrows iptables-save."""
        fmt = fmt or self.formats[0]
        if fmt not in self.formats:
            raise InputError(f"{fmt}: ipvs mode prints: {', '.join(self.formats)}", field="--format")
        if table not in (None, *self.tables):
            raise InputError(f"{table}: expected one of {', '.join(self.tables)}", field="--table")
        save = [binary(self.backend, "save"), *(["-t", table] if table else [])]
        tools = {"ipvsadm": ["ipvsadm", "-Ln"], "stats": ["ipvsadm", "-Ln", "--stats"],
                 "connections": ["ipvsadm", "-Lnc"], "ipset": ["ipset", "list"], "iptables": save}
        if fmt != "ipvs":
            return self._tool(tools[fmt])
        return "\n".join(f"# {' '.join(tools[k])}\n{self._tool(tools[k])}" for k in ("ipvsadm", "ipset", "iptables"))

    def counters(self) -> tuple[Any, set[tuple[str, ...]], dict[tuple[str, str, int], str]]:
        """iptables' per-rule counters, the IPVS connection table (/proc/net/ip_vs_conn) and
        each virtual server's scheduler. The table, not IPVS's packet stats: those are
        refreshed by the kernel's estimator only every 2 s."""
        scheds = {k: v.scheduler for k, v in self.kernel.virtual_servers().items()}
        return ipt_trace.read_counters(self.netns_path, self.backend), read_connections(self.netns_path), scheds

    def hits(self, before, after) -> list[Hit]:
        """The iptables rules whose counters grew (traversal order), then the virtual and real
        servers of the connections IPVS made meanwhile, with how many:
        ("ipvs", "TCP  VIP:port sched", "-> RS:port Masq", connections)."""
        out = ipt_trace.hits(before[0], after[0])
        new: dict[tuple[str, str], int] = {}
        for proto, _client, vip, dest in sorted(after[1] - before[1]):
            ip, port = vip.rsplit(":", 1)
            sched = after[2].get((ip, proto, int(port)), "")
            key = (f"{proto}  {vip} {sched}".rstrip(), f"-> {dest} Masq")
            new[key] = new.get(key, 0) + 1
        out += [("ipvs", vs, rs, n) for (vs, rs), n in new.items()]
        return out

    def service_paths(self, service: str) -> list[PortPath]:
        """Per service port: its virtual servers (frontends) and their real servers with
        weight shares and the connections IPVS scheduled to each (the kernel's stats,
        refreshed by its estimator every 2 s). The kernel does not know Service names: this
        answers for what this proxier synced (in a rebuilt proxier: nothing yet)."""
        out = []
        for key in sorted(k for k, sp in self._index.ports.items() if sp.service_key == service):
            sp = self._index.ports[key]
            path = PortPath(service, sp.port_name or str(sp.port), f"{sp.protocol} {sp.cluster_ip}:{sp.port}")
            branches: dict[str, list] = {}
            for vs in (v for v in self.desired.ports[key].virtual_servers):
                kind = ("cluster IP" if vs.ip == sp.cluster_ip else "node port" if vs.port == sp.node_port
                        else "loadbalancer IP" if vs.ip in sp.load_balancer_ips else "external IP")
                real = self.kernel.real_servers(vs.key)
                path.frontends.append(Frontend(kind, f"{vs.ip}:{vs.port}/{vs.protocol.lower()}",
                                               f"{vs} {vs.scheduler}", sum(r.conns for r in real.values())))
                total = sum(r.weight for r in real.values()) or 1
                for name, r in real.items():
                    b = branches.setdefault(name, [f"-> {name} Masq", f"{vs.scheduler} weight {r.weight}",
                                                   r.weight / total, 0])
                    b[3] += r.conns
            path.branches = [Branch(name, *b) for name, b in sorted(branches.items())]
            out.append(path)
        return out

    def shell_commands(self) -> dict[str, str]:
        return command_links(self.backend)

    def describe(self) -> str:
        return f"ipvs (scheduler {self.scheduler}, iptables {self.backend})"

    def settings(self) -> dict:
        return {"iptables_backend": self.backend, "ipvs_scheduler": self.scheduler}

    def close(self) -> None:
        if self._kernel is not None:
            self._kernel.close()
            self._kernel = None


def _hex_addr(ip_hex: str, port_hex: str) -> str:
    return f"{ipaddress.IPv4Address(int(ip_hex, 16))}:{int(port_hex, 16)}"


def parse_connections(text: str) -> set[tuple[str, str, str, str]]:
    """/proc/net/ip_vs_conn -> {(protocol, client, virtual server, real server)}, each
    "ip:port" (the connection's client port makes it unique)."""
    out = set()
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) >= 7 and len(f[1]) == 8:  # IPv4 rows: 8 hex digits
            out.add((f[0], _hex_addr(f[1], f[2]), _hex_addr(f[3], f[4]), _hex_addr(f[5], f[6])))
    return out


def read_connections(netns_path: str) -> set[tuple[str, str, str, str]]:
    with in_netns(netns_path):
        try:
            with open("/proc/net/ip_vs_conn") as f:
                return parse_connections(f.read())
        except FileNotFoundError:  # no IPVS in this kernel
            return set()


def _check(failed: list[tuple[object, int]], what: str) -> None:
    if failed:
        label, err = failed[0]
        raise OperationError(f"{what} {label}: {os.strerror(err)}" + (f" (and {len(failed) - 1} more)"
                                                                     if len(failed) > 1 else ""))


def _vs_str(key: tuple) -> str:
    ip, proto, port = key
    return str(rd.VirtualServer(ip, port, proto))
