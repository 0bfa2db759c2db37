"""One node's ipvs-mode proxy: kube-proxy 1.33's ipvs syncProxyRules, applied inside the
node's namespace (fidelity notes in /work/shared/notes/kube-proxy-nftables-ipvs.md §2).

At construction (NewProxier): the IPVS sysctls in the node namespace only: vs.conntrack=1,
conn_reuse_mode=0 on kernels 4.1 <= v < 5.9, expire_nodest_conn=1,
expire_quiescent_template=1, ip_forward=1, and arp_ignore=1/arp_announce=2 with strict ARP.

One sync, in kube-proxy's order: KUBE chains and built-in jumps (full syncs), kube-ipvs0, the
17 ipsets, per service port the virtual servers (added, or updated when scheduler/flags/
timeout differ), kube-ipvs0 addresses and real servers, the set entries, iptables-restore
(nat then filter, --noflush --counters), superfluous kube-ipvs0 addresses unbound, virtual
servers not wanted deleted (cleanLegacyService), UDP conntrack cleanup.

Where minikp differs, for speed and not in effect: kube-proxy re-reads every virtual and real
server from the kernel on every sync and always restores; here the kernel is read on a full
sync (the first, after a failure, or after `flushed()`), later syncs diff against what the
last one applied, touch only the servers and entries that changed, and skip the restore when
its text is the same as the last one applied.

Graceful termination (graceful_termination.go): a real server that leaves is deleted at once
if UDP/SCTP or without connections; otherwise it gets weight 0 and stays until
reap_terminating() (each sync, and whoever calls it periodically; kube-proxy: every minute)
finds its active+inactive connections at 0. A returning one is deleted and re-added.

API: IpvsProxier(netns_path, backend, scheduler=, strict_arp=).sync(snapshot) -> SyncResult;
flushed(), reap_terminating(), rules_text(stats=, connections=), describe(), close().
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from minikp.errors import OperationError
from minikp.nsenter import run_in
from minikp.proxy.iptables.backend import binary, resolve_backend
from minikp.proxy.iptables.sync import NO_FLOWS, WAIT_FLAGS, conntrack_commands
from minikp.proxy.ipvs import render as rd
from minikp.proxy.ipvs.apply import (IpvsKernel, KernelRS, diff_entries, diff_real_servers,
                                     diff_virtual_servers, drained, kernel_release)
from minikp.proxy.snapshot import ProxySnapshot


@dataclass
class SyncResult:
    full: bool
    duration_s: float
    lines: int  # lines of restore input (0: the restore was skipped, same text)
    changed: set[str]  # service port names whose virtual/real servers were touched
    ops: list[str] = field(default_factory=list)  # every kernel change made, in order
    conntrack: list[list[str]] = field(default_factory=list)
    conntrack_errors: list[str] = field(default_factory=list)
    restore_input: str = ""


def _run(netns_path: str, argv: list[str], input: str | None = None, check: bool = True):
    res = run_in(netns_path, argv, input=input)
    if check and res.returncode != 0:
        raise OperationError(f"{' '.join(argv[:6])}: exit {res.returncode}: {res.stderr.strip()[:2000]}")
    return res


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

    def __init__(self, netns_path: str, backend: str = "auto", *, scheduler: str = rd.DEFAULT_SCHEDULER,
                 strict_arp: bool = False, masquerade_all: bool = False) -> None:
        self.netns_path = netns_path
        self.backend = resolve_backend(backend)
        self.scheduler = scheduler or rd.DEFAULT_SCHEDULER
        self.masquerade_all = masquerade_all
        self.kernel = IpvsKernel(netns_path)
        for key, value in sysctls(strict_arp).items():
            self.kernel.ensure_sysctl(key, value)
        self.need_full = True
        self.initial = True  # first sync: stray real-server weights are reset to 1
        self._last: ProxySnapshot | None = None
        self._restored = ""  # restore text last applied
        # what the kernel holds, as of the last successful sync (re-read on a full one)
        self._vs: dict[tuple, rd.VirtualServer] = {}
        self._rs: dict[tuple, dict[str, KernelRS]] = {}
        self._entries: dict[str, set[str]] = {}
        self.terminating: dict[tuple[tuple, str], str] = {}  # (vs key, "ip:port") -> protocol
        self._restore_argv = [binary(self.backend, "restore"), *WAIT_FLAGS, "--noflush", "--counters"]

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
    def reap_terminating(self, ops: list[str] | None = None) -> list[str]:
        """Delete the weight-0 real servers whose connections have drained."""
        done = []
        for (key, rs_str), proto in list(self.terminating.items()):
            now = self.kernel.real_servers(key) if key in self._vs else {}
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
        rs = self.kernel.real_servers(key).get(str(rs), rs)
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
        full = self.need_full or self._last is None
        ops: list[str] = []
        changed: set[str] = set()
        try:
            if full:
                self._ensure_chains_and_jumps()
            self.kernel.ensure_dummy()
            if full:
                for name, typ, _ in rd.SET_INFO:
                    self.kernel.ensure_set(name, typ)
                self._read_kernel()
            bound = self.kernel.bound_addresses()
            state = rd.render(snapshot, scheduler=self.scheduler,
                              node_addresses=tuple(self.kernel.node_addresses()),
                              masquerade_all=self.masquerade_all)
            self.reap_terminating(ops)
            self._sync_servers(state, bound, ops, changed)
            for s in state.ipsets:
                add, delete = diff_entries(self._entries.get(s.name, set()), s.entries)
                for e in add:
                    self.kernel.add_entry(s.name, s.type, e)
                for e in delete:
                    self.kernel.delete_entry(s.name, s.type, e)
                if add or delete:
                    self._entries[s.name] = set(s.entries)
                    ops += [f"ipset add {s.name} {e}" for e in add] + [f"ipset del {s.name} {e}" for e in delete]
            text = state.restore
            if full or text != self._restored:
                _run(self.netns_path, self._restore_argv, input=text)
                self._restored = text
                ops.append("iptables-restore")
            for ip in sorted(bound - set(state.bind_addresses)):
                self.kernel.unbind(ip)
                ops.append(f"unbind {ip}")
            wanted = {v.key for v in state.virtual_servers}
            for key in [k for k in self._vs if k not in wanted]:  # cleanLegacyService
                self.kernel.delete_virtual_server(key)
                self._vs.pop(key)
                self._rs.pop(key, None)
                self.terminating = {k: p for k, p in self.terminating.items() if k[0] != key}
                ops.append(f"del vs {_vs_str(key)}")
        except Exception:
            self.need_full = True  # the kernel may differ from the cache: re-read it next time
            raise
        cmds = conntrack_commands(self._last, snapshot)
        self._last = snapshot
        self.need_full = False
        self.initial = False
        errors = []
        for argv in cmds:
            res = _run(self.netns_path, argv, check=False)
            if res.returncode != 0 and NO_FLOWS not in res.stderr + res.stdout:
                errors.append(f"{' '.join(argv)}: {res.stderr.strip()}")
        restored = "iptables-restore" in ops
        return SyncResult(full=full, duration_s=time.monotonic() - start,
                          lines=text.count("\n") if restored else 0, changed=changed, ops=ops,
                          conntrack=cmds, conntrack_errors=errors, restore_input=text if restored else "")

    def _sync_servers(self, state: rd.IpvsState, bound: set[str], ops: list[str], changed: set[str]) -> None:
        add, update, _ = diff_virtual_servers(self._vs, list(state.virtual_servers))
        for vs in add:
            self.kernel.add_virtual_server(vs)
            self._vs[vs.key] = vs
            self._rs[vs.key] = {}
            ops.append(f"add vs {vs} {vs.scheduler}")
            changed.add(vs.service)
        for vs in update:
            self.kernel.update_virtual_server(vs)
            self._vs[vs.key] = vs
            ops.append(f"update vs {vs} {vs.scheduler}")
            changed.add(vs.service)
        for ip in state.bind_addresses:
            if ip not in bound:
                self.kernel.bind(ip)
                ops.append(f"bind {ip}")
        for vs in state.virtual_servers:
            cur = self._rs.setdefault(vs.key, {})
            term = {s for (k, s) in self.terminating if k == vs.key}
            add_rs, back, reset, leaving = diff_real_servers(cur, vs.real_servers, term, self.initial)
            for r in back:  # MoveRSOutofGracefulDeleteList: delete now, added again below
                self.kernel.delete_real_server(vs.key, r.ip, r.port)
                del self.terminating[(vs.key, str(r))]
                cur.pop(str(r), None)
            for r in [*back, *add_rs]:
                self.kernel.add_real_server(vs.key, r)
                cur[str(r)] = KernelRS(r.ip, r.port, r.weight)
            for r in reset:
                self.kernel.set_weight(vs.key, r.ip, r.port, r.weight)
                cur[str(r)] = KernelRS(r.ip, r.port, r.weight)
            for rs in leaving:
                self._graceful_delete(vs.key, rs, ops)
            if add_rs or back or reset or leaving:
                ops += [f"add rs {vs} {r}" for r in [*back, *add_rs]] + [f"weight 1 {vs} {r}" for r in reset]
                changed.add(vs.service)

    # --- reading back --------------------------------------------------------------------
    def rules_text(self, stats: bool = False, connections: bool = False) -> str:
        """The kernel's own tools: ipvsadm -Ln (--stats, -c), ipset list, iptables-save."""
        parts = []
        for title, argv in ((("ipvsadm -Ln" + (" --stats" if stats else "")),
                             ["ipvsadm", "-Ln", *(["--stats"] if stats else [])]),
                            *((("ipvsadm -Lnc", ["ipvsadm", "-Lnc"]),) if connections else ()),
                            ("ipset list", ["ipset", "list"]),
                            (f"{binary(self.backend, 'save')}", [binary(self.backend, "save")])):
            try:
                res = _run(self.netns_path, argv, check=False)
                body = res.stdout if res.returncode == 0 else f"(exit {res.returncode}) {res.stderr.strip()}\n"
            except FileNotFoundError:
                body = f"({argv[0]} not installed: apt-get install {argv[0].split('-')[0]})\n"
            parts.append(f"# {title}\n{body}")
        return "\n".join(parts)

    def describe(self) -> str:
        return (f"ipvs (kube-proxy {rd.TARGET_VERSION} ipvs proxier), scheduler {self.scheduler}, "
                f"{len(self._vs)} virtual servers, {len(self.terminating)} real servers terminating, "
                f"iptables-{self.backend}")

    def close(self) -> None:
        self.kernel.close()


def _vs_str(key: tuple) -> str:
    ip, proto, port = key
    return str(rd.VirtualServer(ip, port, proto))
