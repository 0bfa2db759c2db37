"""Applying rendered nftables transactions inside a node's namespace, the way kube-proxy
1.33's nftables syncProxyRules does (notes §1.6):

- a full sync at start, after a failed sync, once flushed() has seen the table (or its
  nat-prerouting base chain) gone, and an hour after the last full one (FullSyncPeriod): the
  setup part, every service, every element (its sets and maps flushed first); on the
  process's first sync the base chains are added and deleted once so that they are recreated;
- a partial transaction the kernel refuses (e.g. the table was flushed behind our back and
  nobody called flushed() yet) is followed at once by a full sync in the same call, where
  kube-proxy would retry with a full sync after syncPeriod;
- otherwise a partial sync: only services whose ServicePortInfos changed since the last
  successful sync get their chains rewritten, and map elements are added or deleted by diff
  (nftElementStorage); nothing changed = no transaction at all;
- service chains no longer used are flushed in the sync's transaction and deleted in a
  separate transaction at the start of a sync at least 1 s later (kernels before 6.2 release
  a map element's chain reference lazily); unused affinity sets are deleted at once;
- one `nft -f -` per transaction, inside the node's netns (minikp.nsenter.run_in);
- UDP conntrack cleanup after the transaction, as in every mode (minikp.proxy.conntrack).

Stale objects: a full sync lists the kernel's chains and sets (`nft -j list chains ip`,
`nft -t list sets ip`, as knftables' List does on every kube-proxy sync); a partial sync knows
them from the services it changed, since only those can have left chains behind: listing the
60,000 chains of a 10,000-service table takes nft 1.0.6 about 0.45 s.

API: NftablesProxier(netns_path, service_cidrs=, ...).sync(snapshot) -> NftablesSyncResult,
plus the rest of minikp.proxy.base.Proxier; list_table(netns_path) -> `nft list table`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from minikp.errors import InputError, OperationError
from minikp.nsenter import run_in
from minikp.proxy import conntrack
from minikp.proxy.base import Hit, SyncResult
from minikp.proxy.nftables import names, paths, render as rd, trace
from minikp.proxy.paths import PortPath
from minikp.proxy.options import node_port_ips
from minikp.proxy.release import DEFAULT as DEFAULT_RELEASE, parse_release, release_of
from minikp.proxy.snapshot import ProxySnapshot, ServicePortInfo

FULL_SYNC_PERIOD_S = 3600.0  # proxy.FullSyncPeriod (#129329)
STALE_CHAIN_DELAY_S = 1.0  # how long a flushed stale chain waits before its delete
CANARY_CHAIN = "nat-prerouting"  # gone with the table: someone flushed the ruleset


@dataclass
class NftablesSyncResult(SyncResult):
    transaction: str = ""  # exactly what `nft -f -` was given ("" = nothing to do)
    operations: int = 0  # lines of the transaction (knftables NumOperations)
    stale_chains: list[str] = field(default_factory=list)  # flushed in this sync
    deleted_chains: list[str] = field(default_factory=list)  # deleted before it (separate tx)


def nft(netns_path: str, args: list[str], input: str | None = None, check: bool = True):
    res = run_in(netns_path, ["nft", *args], input=input)
    if check and res.returncode != 0:
        raise OperationError(f"nft {' '.join(args)}: exit {res.returncode}: {res.stderr.strip()[:2000]}")
    return res


def list_table(netns_path: str) -> str:
    """The kernel's own view: `nft list table ip kube-proxy` ("" when there is none)."""
    res = nft(netns_path, ["list", "table", *rd.TABLE.split()], check=False)
    return res.stdout if res.returncode == 0 else ""


def chains_in(listing_json: str, table: str = "kube-proxy") -> set[str]:
    """Chain names of `table` in `nft -j list chains ip` output (knftables List "chains")."""
    items = json.loads(listing_json or "{}").get("nftables", [])
    return {i["chain"]["name"] for i in items if "chain" in i and i["chain"]["table"] == table}


def sets_in(listing: str, table: str = "kube-proxy") -> set[str]:
    """Set and map names of `table` in `nft -t list sets ip` output."""
    out, current = set(), None
    for line in listing.splitlines():
        words = line.split()
        if len(words) == 4 and words[0] == "table" and words[3] == "{":  # table ip NAME {
            current = words[2]
        elif len(words) == 3 and words[0] in ("set", "map") and words[2] == "{" and current == table:
            out.add(words[1])
    return out


def by_service(snapshot: ProxySnapshot) -> dict[tuple[str, str], tuple[ServicePortInfo, ...]]:
    """Service ports grouped by service, in snapshot order: the unit of a partial sync.
    Tuples, not minikp.proxy.changes' frozensets: hashing 10,000 ServicePortInfos (every
    field, every endpoint) costs more per sync than the 50 ms a partial sync may take, while
    comparing tuples of unchanged ports is an identity check."""
    out: dict[tuple[str, str], list[ServicePortInfo]] = {}
    for sp in snapshot.services:
        out.setdefault((sp.namespace, sp.name), []).append(sp)
    return {k: tuple(v) for k, v in out.items()}


class NftablesProxier:
    """One node's nftables-mode proxy, driving the real kernel in `netns_path`
    (a minikp.proxy.base.Proxier)."""

    formats = ("nft",)

    @classmethod
    def from_config(cls, netns_path: str, config) -> "NftablesProxier":
        opts = getattr(config, "proxy_options", None)
        return cls(netns_path, service_cidrs=tuple(c for c in config.service_subnet.split(",") if c),
                   release=release_of(config), masquerade_all=bool(opts and opts.masquerade_all),
                   node_port_addresses=opts.node_port_addresses if opts else ())

    def __init__(self, netns_path: str, *, service_cidrs: tuple[str, ...] = (),
                 nodeport_ips: tuple[str, ...] | None = None, masquerade_all: bool = False,
                 full_sync_period_s: float = FULL_SYNC_PERIOD_S,
                 stale_chain_delay_s: float = STALE_CHAIN_DELAY_S,
                 release: tuple[int, int] = parse_release(DEFAULT_RELEASE),
                 node_port_addresses: tuple[str, ...] = ()) -> None:
        self.node_port_addresses = node_port_addresses  # spec.proxy.nodePortAddresses
        self.release = release  # the kube-proxy release modelled (UDP conntrack cleanup)
        self.netns_path = netns_path
        self.service_cidrs = tuple(service_cidrs)
        self.nodeport_ips = nodeport_ips  # None: "primary", the snapshot's node IP
        self.masquerade_all = masquerade_all
        self.full_sync_period_s = full_sync_period_s
        self.stale_chain_delay_s = stale_chain_delay_s
        self.need_full = True
        self._first = True  # the process's first full sync recreates the base chains
        self._last: ProxySnapshot | None = None  # last successfully applied snapshot
        self._last_by: dict[tuple[str, str], tuple[ServicePortInfo, ...]] = {}  # its ports by service
        self._opts: rd.Options | None = None
        self._last_full = float("-inf")
        self._stale: dict[str, float] = {}  # flushed chain -> when
        self._trace = trace.Tracer(netns_path)

    def options(self, snapshot: ProxySnapshot) -> rd.Options:
        nodeport_ips = self.nodeport_ips
        if nodeport_ips is None and self.node_port_addresses:  # no localhost NodePorts in nftables mode
            nodeport_ips = tuple(ip for ip in node_port_ips(self.node_port_addresses, snapshot.node_ip)
                                 if not ip.startswith("127."))
        if nodeport_ips is None:  # nftables' default nodePortAddresses is "primary"
            nodeport_ips = (snapshot.node_ip,)
        return rd.Options(snapshot.cluster_cidr, snapshot.node_ip, self.service_cidrs, nodeport_ips,
                          self.masquerade_all)

    @staticmethod
    def _objects(ports, node: str, o: rd.Options) -> tuple[set[str], set[str]]:
        chains, sets = set(), set()
        for sp in ports:
            pr = rd.service_port(sp, node, o)
            chains.update(pr.chains)
            sets.update(pr.affinity_sets)
        return chains, sets

    def _delete_old_stale(self, now: float) -> list[str]:
        """The separate transaction run first: chains flushed long enough ago."""
        due = [c for c, t in self._stale.items() if t < now - self.stale_chain_delay_s]
        if not due:
            return []
        for c in due:
            del self._stale[c]
        # On failure they stay in the kernel; the next full sync's listing finds them again.
        if nft(self.netns_path, ["-f", "-"], input=rd.delete_chains(due), check=False).returncode != 0:
            return []
        return sorted(due)

    def sync(self, snapshot: ProxySnapshot) -> NftablesSyncResult:
        start = time.monotonic()
        o = self.options(snapshot)
        full = (self.need_full or self._last is None or o != self._opts
                or start - self._last_full > self.full_sync_period_s)
        deleted = self._delete_old_stale(start)
        try:
            return self._sync(snapshot, o, start, full, deleted)
        except OperationError:
            if full:
                raise
            # The kernel refused a partial transaction: state is lost, as in kube-proxy.
            return self._sync(snapshot, o, start, True, deleted)

    def _sync(self, snapshot: ProxySnapshot, o: rd.Options, start: float, full: bool,
              deleted: list[str]) -> NftablesSyncResult:
        node, cur = snapshot.node_name, by_service(snapshot)
        try:
            if full:
                existing_chains = chains_in(nft(self.netns_path, ["-j", "list", "chains", "ip"]).stdout)
                existing_sets = sets_in(nft(self.netns_path, ["-t", "list", "sets", "ip"]).stdout)
                active_chains, active_sets = self._objects(snapshot.services, node, o)
                stale = {c for c in existing_chains if names.is_service_chain(c)} - active_chains
                stale_sets = {s for s in existing_sets if names.is_affinity_set(s)} - active_sets
                keys = set(cur) | set(self._last_by)
                text, _ = rd.full(snapshot, o, first=self._first, stale_chains=stale, stale_sets=stale_sets)
            else:
                prev = self._last_by
                keys = {k for k in prev.keys() | cur.keys() if prev.get(k) != cur.get(k)}
                ports = [sp for k in keys for sp in cur.get(k, ())]
                old_ports = [sp for k in keys for sp in prev.get(k, ())]
                old_chains, old_sets = self._objects(old_ports, node, o)
                active_chains, active_sets = self._objects(ports, node, o)
                stale, stale_sets = old_chains - active_chains, old_sets - active_sets
                text = rd.partial(node, ports, old_ports, o, stale_chains=stale, stale_sets=stale_sets)
            if text:
                nft(self.netns_path, ["-f", "-"], input=text)
        except Exception:
            self.need_full = True  # kube-proxy: a failed sync loses partial-sync state
            self._stale.clear()  # they were not flushed; the full sync recomputes them
            raise
        for c in active_chains:
            self._stale.pop(c, None)  # used again: not to be deleted
        for c in stale:
            self._stale[c] = start
        prev = self._last
        self._last, self._last_by, self._opts, self.need_full = snapshot, cur, o, False
        if full:
            self._first, self._last_full = False, start
        cmds, errors = conntrack.cleanup(self.netns_path, prev, snapshot, self.release)
        changed = {f"{ns}/{name}" for ns, name in keys}
        return NftablesSyncResult(full=full, duration_s=time.monotonic() - start, changed=changed,
                                  conntrack=cmds, conntrack_errors=errors, transaction=text,
                                  operations=text.count("\n"), stale_chains=sorted(stale),
                                  deleted_chains=deleted)

    # --- the rest of the Proxier protocol ---------------------------------------------------
    def flushed(self) -> bool:
        """The table, or its nat-prerouting base chain, is gone (e.g. `nft flush ruleset`); the
        next sync is then a full one. A check-mode flush (`nft -c`): the kernel says whether the
        chain exists without nft fetching the table (listing it takes seconds at 10,000
        services)."""
        res = nft(self.netns_path, ["-c", "flush", "chain", *rd.TABLE.split(), CANARY_CHAIN], check=False)
        if res.returncode != 0:
            self.need_full = True
        return res.returncode != 0

    def rules_text(self, table: str | None = None, fmt: str | None = None) -> str:
        if fmt not in (None, *self.formats):
            raise InputError(f"{fmt}: nftables mode prints only: {', '.join(self.formats)}", field="--format")
        if table not in (None, "kube-proxy"):
            raise InputError(f"{table}: nftables mode has one table, kube-proxy", field="--table")
        return list_table(self.netns_path)

    def counters(self) -> int:
        """kube-proxy's nft rules carry no counters: `nft monitor trace` stands in for them.
        The first call starts tracing; each call returns how many trace lines exist."""
        return self._trace.mark()

    def hits(self, before: int, after: int) -> list[Hit]:
        """Rules traced between two counters() readings, in the order packets met them;
        tracing stops."""
        try:
            return self._trace.hits(before, after)
        finally:
            self._trace.stop()

    def service_paths(self, service: str) -> list[PortPath]:
        return paths.service_paths(list_table(self.netns_path), service)

    def shell_commands(self) -> dict[str, str]:
        return {}  # no iptables rules: the node's iptables is the host's

    def describe(self) -> str:
        return "nftables"

    def settings(self) -> dict:
        return {"service_subnet": ",".join(self.service_cidrs)} if self.service_cidrs else {}

    def close(self) -> None:
        self._trace.stop()
