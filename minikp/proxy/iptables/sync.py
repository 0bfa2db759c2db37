"""Applying rendered rules inside a node's namespace, the way kube-proxy's syncProxyRules
does (fidelity notes §2):

- full sync at start, after a failed sync, when the mangle canary chain has vanished
  (someone flushed iptables), or (1.33+) when the last full sync is an hour old: canary
  chains, chains + jump rules via `iptables -C`/`-I` (a node with no KUBE chain yet: as the
  first lines of the restore instead), nfacct counters, then ONE
  `iptables-restore -w 5 -W 100000 --noflush --counters`, fed the render as it is produced
  (tools.restore) so that the restore parses while Python renders;
- otherwise a partial sync: only services whose ServicePortInfos changed since the last
  successful sync get their chains rewritten (top-level chains always are); lines of
  unchanged service ports come from the proxier's render.RenderCache;
- stale KUBE-SVC/SVL/EXT/FW/SEP chains (in `iptables-save -t nat`, or the full sync's one
  `iptables-save`, no longer needed) are flushed and deleted in the same restore; in
  large-cluster mode (>1000 endpoints) at most once per syncPeriod, as kube-proxy does;
- UDP conntrack cleanup after the restore, as the modelled release does it
  (minikp.proxy.conntrack: ≤1.31 per event, 1.32+ the reconciler).

Every command runs inside the node's netns through minikp.nsenter.run_in.

API: IptablesProxier(netns_path, backend), a minikp.proxy.base.Proxier: sync(snapshot) ->
IptablesSyncResult; flushed() is the canary check; rules_text/counters read iptables-save
(tools.save) back.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

from minikp import clock as minikp_clock
from minikp.errors import InputError, OperationError
from minikp.nsenter import in_netns
from minikp.proxy import conntrack
from minikp.proxy.base import Hit, SyncResult
from minikp.proxy.paths import PortPath
from minikp.proxy.changes import services_to_write
from minikp.proxy.iptables import names, nfacct, paths, render as rd, render_legacy as legacy, trace
from minikp.proxy.iptables.layout import layout_of
from minikp.proxy.iptables.backend import binary, command_links, resolve_backend
from minikp.proxy.iptables.tools import restore, run as _run, save
from minikp.proxy.options import DEFAULT as DEFAULT_OPTIONS, ProxyOptions
from minikp.proxy.release import DEFAULT as DEFAULT_RELEASE, parse_release, release_of
from minikp.proxy.snapshot import ProxySnapshot

SYNC_PERIOD_S = 30.0  # iptables.syncPeriod default: large-cluster stale-chain cleanup cadence
# utiliptables' wait flags (iptables >= 1.6.2): kube-proxy passes both to iptables and
# iptables-restore. iptables-legacy 1.8.9 accepts -W and prints a deprecation note.
WAIT_FLAGS = ("-w", "5", "-W", "100000")
# proxyutil.FullSyncPeriod: kube-proxy 1.33 (#129329, for #129128) forces a full sync when
# the last one is older than this, to repair drift that no canary catches.
FULL_SYNC_PERIOD_S = 3600.0
PERIODIC_FULL_SYNC_SINCE = (1, 33)


@dataclass
class IptablesSyncResult(SyncResult):
    lines: int = 0  # lines of restore input
    stale_chains: list[str] = field(default_factory=list)
    restore_input: str = ""  # exactly what iptables-restore was given


def chains_in(save_text: str, table: str | None = None) -> list[str]:
    """Chain names declared in iptables-save output (utiliptables.GetChainsFromTable), of
    one table's section or of all."""
    out, current = [], None
    for line in save_text.splitlines():
        if line.startswith("*"):
            current = line[1:]
        elif line.startswith(":") and table in (None, current):
            out.append(line[1:].split(" ", 1)[0])
    return out


def tables_loaded(netns_path: str) -> bool:
    """Whether any x_tables table exists in the namespace yet: the kernel makes them on
    first use, and iptables-legacy-save lists only these, so none loaded means no rules."""
    try:
        with in_netns(netns_path):
            with open("/proc/thread-self/net/ip_tables_names") as f:
                return bool(f.read().strip())
    except FileNotFoundError:  # ip_tables not even loaded on the host
        return False


def read_tcp_liberal(netns_path: str) -> bool:
    """nf_conntrack_tcp_be_liberal of the namespace (per netns; absent = 0)."""
    try:
        with in_netns(netns_path):
            with open("/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal") as f:
                return f.read().strip() not in ("", "0")
    except OSError:
        return False


# --- the proxier ------------------------------------------------------------------------

class IptablesProxier:
    """One node's iptables-mode proxy, driving the real kernel in `netns_path`
    (a minikp.proxy.base.Proxier)."""

    formats = ("iptables",)
    RUNNER_MAX_INTERVAL_S = FULL_SYNC_PERIOD_S  # NewProxier passes time.Hour to the runner
    tables = ("filter", "nat", "mangle", "raw")

    @classmethod
    def from_config(cls, netns_path: str, config) -> "IptablesProxier":
        return cls(netns_path, config.iptables_backend, sync_period_s=config.sync_period_s,
                   release=release_of(config), options=getattr(config, "proxy_options", DEFAULT_OPTIONS))

    def __init__(self, netns_path: str, backend: str, *, sync_period_s: float = SYNC_PERIOD_S,
                 release: tuple[int, int] = parse_release(DEFAULT_RELEASE),
                 options: ProxyOptions = DEFAULT_OPTIONS, clock=minikp_clock.now) -> None:
        self.netns_path = netns_path
        self.release = release  # the kube-proxy release modelled (conntrack cleanup, full syncs)
        self.layout = layout_of(release)  # its rule layout: render.py's from 1.24, else render_legacy's
        self.legacy = not self.layout.ext_chains
        self.options = options
        self.clock = clock  # minikp's clock: a test may advance it past FULL_SYNC_PERIOD_S
        self._last_full = float("-inf")
        self.backend = resolve_backend(backend)
        self.sync_period_s = sync_period_s
        self.need_full = True
        self.nfacct = False  # counters exist; decided on each full sync
        self.tcp_liberal = read_tcp_liberal(netns_path)  # read once, as NewProxier does
        self._last: ProxySnapshot | None = None  # last successfully applied snapshot
        self._last_cleanup = float("-inf")
        self._restore_argv = [binary(self.backend, "restore"), *WAIT_FLAGS, "--noflush", "--counters"]
        self._render_cache = rd.RenderCache()  # lines of the service ports last rendered

    def _ipt(self, *args: str, check: bool = True):
        return _run(self.netns_path, [binary(self.backend), *WAIT_FLAGS, *args], check=check)

    def canary_present(self) -> bool:
        """ipt.Monitor polls only mangle's canary: gone means someone flushed iptables. Before
        the canary (1.17) kube-proxy resynced every syncPeriod anyway: nat KUBE-SERVICES gone
        stands for what such a resync repaired."""
        if not self.layout.canary:
            return self._ipt("-S", "KUBE-SERVICES", "-t", "nat", check=False).returncode == 0
        return self._ipt("-S", rd.CANARY_CHAIN, "-t", "mangle", check=False).returncode == 0

    # --- the rest of the Proxier protocol ---------------------------------------------------
    def flushed(self) -> bool:
        return not self.canary_present()

    def rules_text(self, table: str | None = None, fmt: str | None = None) -> str:
        if fmt not in (None, *self.formats):
            raise InputError(f"{fmt}: iptables mode prints only: {', '.join(self.formats)}",
                             field="--format")
        if table not in (None, *self.tables):
            raise InputError(f"{table}: expected one of {', '.join(self.tables)}", field="--table")
        return save(self.netns_path, self.backend, table)

    def counters(self) -> trace.Counters:
        return trace.read_counters(self.netns_path, self.backend)

    def hits(self, before: trace.Counters, after: trace.Counters) -> list[Hit]:
        return trace.hits(before, after)

    def service_paths(self, service: str) -> list[PortPath]:
        return paths.service_paths(save(self.netns_path, self.backend, "nat", counters=True), service)

    def packet_trace(self, proto: str, *, sport: int | None = None, dport: int | None = None):
        """A context manager following single packets (the TRACE target), or None where its
        reports do not reach nfnetlink_log (iptables-nft traces through nftrace instead)."""
        if self.backend != "legacy":
            return None
        from minikp.proxy.iptables.packet_trace import PacketTrace

        return PacketTrace(self.netns_path, self.backend, proto, sport=sport, dport=dport)

    def shell_commands(self) -> dict[str, str]:
        return command_links(self.backend)

    def describe(self) -> str:
        return f"iptables ({self.backend})"

    def settings(self) -> dict:
        return {"iptables_backend": self.backend, "sync_period_s": self.sync_period_s,
                "kubernetes_version": self.layout.name}

    def close(self) -> None:
        """Nothing held: the rules go with the node's namespace."""

    def _ensure_chain(self, table: str, chain: str) -> None:
        """EnsureChain: -N, where exit 1 means the chain is already there."""
        res = self._ipt("-N", chain, "-t", table, check=False)
        if res.returncode not in (0, 1):
            raise OperationError(f"iptables -N {chain} -t {table}: {res.stderr.strip()}")

    def _ensure_base(self) -> tuple[str, str | None]:
        """Canaries, chains and the built-in -> KUBE jumps, nfacct counters (full sync only).
        A namespace without any KUBE chain (a node just made) gets them as restore input
        that goes first in the sync's one restore (returned: the chains exist before any
        rule needs them, and each table commits in turn as separate restores would);
        otherwise kube-proxy's EnsureChain/EnsureRule, one iptables command each, and ""
        is returned. Also returns the iptables-save text read to tell the two apart (None
        when the kernel showed no table at all), for the stale-chain check to reuse."""
        self.nfacct = self.layout.nfacct and nfacct.ensure(self.netns_path, rd.NFACCT_COUNTERS)
        saved = None
        if self.backend != "legacy" or tables_loaded(self.netns_path):
            saved = save(self.netns_path, self.backend)
        if saved is None or ":KUBE-" not in saved:
            return legacy.base_restore(self.layout) if self.legacy else rd.base_restore(), saved
        for table in rd.CANARY_TABLES if self.layout.canary else ():
            self._ensure_chain(table, rd.CANARY_CHAIN)
        if self.legacy:  # kubelet's chains of those releases, which the KUBE-FW chains use
            for table, chain, args in legacy.kubelet_rules(self.layout):
                self._ensure_chain(table, chain)
                if self._ipt("-C", chain, "-t", table, *args, check=False).returncode != 0:
                    self._ipt("-A", chain, "-t", table, *args)
        jumps = legacy.jump_rules(self.layout) + legacy.kubelet_jumps(self.layout) if self.legacy \
            else rd.JUMP_RULES
        for jump in jumps:
            if jump.chain:
                self._ensure_chain(jump.table, jump.chain)
            spec = (jump.builtin, "-t", jump.table, *jump.args)
            if self._ipt("-C", *spec, check=False).returncode != 0:
                self._ipt("-A" if jump.append else "-I", *spec)
        return "", saved

    def periodic_full_due(self) -> bool:
        """1.33+ (#129329): a full sync when the last one is more than an hour old."""
        return self.release >= PERIODIC_FULL_SYNC_SINCE and \
            self.clock() - self._last_full > FULL_SYNC_PERIOD_S

    def sync(self, snapshot: ProxySnapshot) -> SyncResult:
        start = time.monotonic()
        full = self.need_full or self._last is None or not self.layout.partial_sync \
            or self.periodic_full_due() or not self.canary_present()
        stale: list[str] = []
        try:
            base, saved = self._ensure_base() if full else ("", None)
            changed = services_to_write(self._last, snapshot, full)
            cleanup = not rd.large_cluster(snapshot) or start - self._last_cleanup > self.sync_period_s
            if base:  # nothing there yet, so nothing stale: counts as a cleanup
                self._last_cleanup = start
            elif cleanup:
                active = legacy.active_nat_chains(snapshot, self.layout) if self.legacy \
                    else rd.active_nat_chains(snapshot)
                existing = chains_in(saved if full else save(self.netns_path, self.backend, "nat"), "nat")
                stale = sorted(c for c in existing if names.is_service_chain(c) and c not in active)
                self._last_cleanup = start
            if self.legacy:
                lines = legacy.render(snapshot, self.layout, stale_nat_chains=stale,
                                      options=self.options).splitlines()
            else:
                lines = rd.render_lines(
                    snapshot, changed=None if full else changed, stale_nat_chains=stale, nfacct=self.nfacct,
                    options=self.options, cache=self._render_cache,
                    tcp_liberal=self.tcp_liberal and self.layout.tcp_liberal_skips_invalid_drop)
            text = restore(self.netns_path, self._restore_argv, itertools.chain(base.splitlines(), lines))
            if full:
                self._last_full = self.clock()
        except Exception:
            self.need_full = True  # kube-proxy: a failed sync loses partial-sync state
            raise
        prev, self._last = self._last, snapshot
        self.need_full = False
        cmds, errors = conntrack.cleanup(self.netns_path, prev, snapshot, self.release)
        return IptablesSyncResult(full=full, duration_s=time.monotonic() - start, lines=text.count("\n"),
                                  changed=changed, stale_chains=stale, conntrack=cmds,
                                  conntrack_errors=errors, restore_input=text)
