"""The iptables-restore input kube-proxy writes for one node (pure).

Target: kube-proxy KUBE_PROXY_VERSION (1.33), pkg/proxy/iptables/proxier.go syncProxyRules,
with masquerade bit 14 (mark 0x4000), IPv4, and the options of minikp.proxy.options
(defaults: the ClusterCIDR local-traffic detector on the snapshot's cluster_cidr,
localhostNodePorts on, masqueradeAll off, nodePortAddresses unset).

- render(snapshot, changed=, stale_nat_chains=, random_fully=, nfacct=, tcp_liberal=):
  `*filter … COMMIT` then `*nat … COMMIT`, line for line as syncProxyRules builds its four
  buffers (filter chains, filter rules, nat chains, nat rules). changed=None is a full sync;
  a set of service keys is a partial sync that writes per-service chains only for those.
- render_lines(snapshot, ..., cache=): the same lines one by one as they are produced (the
  proxier streams them into iptables-restore); a RenderCache kept between calls re-renders
  only service ports that changed.
- plan(sp, node): the per-service-port decisions (which chains, which filter targets).
- active_nat_chains(snapshot): every per-service nat chain the ruleset needs (stale = the rest).
- JUMP_RULES, CANARY_CHAIN, CANARY_TABLES, NFACCT_COUNTERS: what a full sync installs
  outside the restore.

Rule order inside the top-level chains follows the services sorted by port name, where
kube-proxy's follows Go map order (random); sorted is one valid instance of it.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from minikp import KUBE_PROXY_VERSION
from minikp.proxy.categorize import (Categorized, categorize, externally_accessible, source_ranges,
                                     uses_cluster_endpoints, uses_local_endpoints)
from minikp.proxy.iptables import names
from minikp.proxy.options import DEFAULT as DEFAULT_OPTIONS, ProxyOptions, node_port_ips
from minikp.proxy.snapshot import Endpoint, ProxySnapshot, ServicePortInfo

TARGET_VERSION = KUBE_PROXY_VERSION
MASQ_MARK = "0x4000"  # fmt.Sprintf("%#08x", 1<<14)
LARGE_CLUSTER_ENDPOINTS = 1000  # largeClusterEndpointsThreshold
CANARY_CHAIN = "KUBE-PROXY-CANARY"
CANARY_TABLES = ("mangle", "nat", "filter")  # ipt.Monitor polls only the first (mangle)
# nfacct counters kube-proxy creates (metrics.*NFAcctCounter) when the kernel has nfacct.
NFACCT_INVALID = "ct_state_invalid_dropped_pkts"
NFACCT_LOCALHOST_NODEPORT = "localhost_nps_accepted_pkts"
NFACCT_COUNTERS = (NFACCT_INVALID, NFACCT_LOCALHOST_NODEPORT)

FILTER_TOP_CHAINS = ("KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD",
                     "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL")
NAT_TOP_CHAINS = ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ")


@dataclass(frozen=True)
class JumpRule:
    table: str
    chain: str  # KUBE chain jumped to ("" for 1.1's SNAT rule in POSTROUTING itself)
    builtin: str  # built-in chain holding the jump
    args: tuple[str, ...]  # rule spec after the chain name, ending in `-j chain`
    append: bool = False  # EnsureRule Append (1.1's SNAT rule), else Prepend


def _jump(table: str, chain: str, builtin: str, comment: str, extra: tuple[str, ...] = ()) -> JumpRule:
    args = extra + (("-m", "comment", "--comment", comment) if comment else ()) + ("-j", chain)
    return JumpRule(table, chain, builtin, args)


_NEW = ("-m", "conntrack", "--ctstate", "NEW")
# iptablesJumpChains + iptablesKubeletJumpChains, in kube-proxy's order. Each is prepended
# (EnsureRule Prepend: -C, then -I) when missing, so the last one ends up first.
JUMP_RULES: tuple[JumpRule, ...] = (
    _jump("filter", "KUBE-EXTERNAL-SERVICES", "INPUT", "kubernetes externally-visible service portals", _NEW),
    _jump("filter", "KUBE-EXTERNAL-SERVICES", "FORWARD", "kubernetes externally-visible service portals", _NEW),
    _jump("filter", "KUBE-NODEPORTS", "INPUT", "kubernetes health check service ports"),
    _jump("filter", "KUBE-SERVICES", "FORWARD", "kubernetes service portals", _NEW),
    _jump("filter", "KUBE-SERVICES", "OUTPUT", "kubernetes service portals", _NEW),
    _jump("filter", "KUBE-FORWARD", "FORWARD", "kubernetes forwarding rules"),
    _jump("filter", "KUBE-PROXY-FIREWALL", "INPUT", "kubernetes load balancer firewall", _NEW),
    _jump("filter", "KUBE-PROXY-FIREWALL", "OUTPUT", "kubernetes load balancer firewall", _NEW),
    _jump("filter", "KUBE-PROXY-FIREWALL", "FORWARD", "kubernetes load balancer firewall", _NEW),
    _jump("nat", "KUBE-SERVICES", "OUTPUT", "kubernetes service portals"),
    _jump("nat", "KUBE-SERVICES", "PREROUTING", "kubernetes service portals"),
    _jump("nat", "KUBE-POSTROUTING", "POSTROUTING", "kubernetes postrouting rules"),
    _jump("filter", "KUBE-FIREWALL", "INPUT", ""),
    _jump("filter", "KUBE-FIREWALL", "OUTPUT", ""),
)


def base_restore() -> str:
    """What _ensure_base's one-by-one commands build, as one restore for a namespace with no
    KUBE chain yet: the canaries, the jump targets, then every jump rule prepended in the
    same order (so the same final order). Declaring a chain flushes it: only for a fresh
    namespace."""
    out = []
    for table in ("mangle", "filter", "nat"):
        chains = ([CANARY_CHAIN] if table in CANARY_TABLES else []) + list(dict.fromkeys(
            j.chain for j in JUMP_RULES if j.table == table))
        out.append(f"*{table}")
        out += [f":{c} - [0:0]" for c in chains]
        out += [f"-I {j.builtin} {quoted(j.args)}" for j in JUMP_RULES if j.table == table]
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def quoted(args) -> str:
    """A rule's args as restore input: those with a space (comments) in double quotes."""
    return " ".join(f'"{a}"' if " " in a else a for a in args)


def probability(n: int) -> str:
    """computeProbability: Go's %0.10f of 1/n."""
    return "%0.10f" % (1.0 / n)


def chain_line(chain: str) -> str:
    return f":{chain} - [0:0]"


# --- which chains a service port uses ---------------------------------------------

@dataclass(frozen=True)
class Plan:
    """The locals syncProxyRules computes for one service port."""
    cat: Categorized
    has_endpoints: bool
    has_internal: bool
    has_external: bool
    internal_chain: str
    external_policy_chain: str
    uses_cluster_chain: bool
    uses_local_chain: bool
    uses_ext_chain: bool
    uses_fw: bool
    svc: str  # its chain names (one hash), looked up once per service port
    svl: str
    ext: str
    fw: str


@functools.lru_cache(maxsize=1 << 16)  # partial syncs re-plan unchanged services: reuse
def plan(sp: ServicePortInfo, node: str) -> Plan:
    cat = categorize(sp, node)
    has = cat.any_endpoints
    svc, svl = names.svc_chain(sp), names.svl_chain(sp)
    return Plan(
        cat=cat,
        has_endpoints=has,
        has_internal=has and (not sp.internal_policy_local or bool(cat.local)),
        has_external=has and (not sp.external_policy_local or bool(cat.local)),
        internal_chain=svl if sp.internal_policy_local else svc,
        external_policy_chain=svl if sp.external_policy_local else svc,
        uses_cluster_chain=bool(cat.cluster) and uses_cluster_endpoints(sp),
        uses_local_chain=bool(cat.local) and uses_local_endpoints(sp),
        uses_ext_chain=has and externally_accessible(sp),
        uses_fw=has and bool(sp.load_balancer_ips) and bool(source_ranges(sp)),
        svc=svc, svl=svl, ext=names.ext_chain(sp), fw=names.fw_chain(sp),
    )


def sep_chains(sp: ServicePortInfo, p: Plan) -> dict[Endpoint, str]:
    """The KUBE-SEP chain of each reachable endpoint: most of a render's hashing, kept out
    of plan() so that a streamed render reaches its nat chains sooner."""
    return {ep: names.sep_chain(sp, ep) for ep in p.cat.reachable}


def nat_chains_for(sp: ServicePortInfo, node: str) -> list[str]:
    """The per-service nat chains this service port needs (its part of activeNATChains)."""
    p = plan(sp, node)
    return _nat_chains(p, sep_chains(sp, p))


def _nat_chains(p: Plan, seps: dict[Endpoint, str]) -> list[str]:
    out = []
    if p.uses_ext_chain:
        out.append(p.ext)
    if p.uses_fw:
        out.append(p.fw)
    if p.uses_cluster_chain:
        out.append(p.svc)
    if p.uses_local_chain:
        out.append(p.svl)
    out.extend(seps[e] for e in p.cat.reachable)
    return out


def active_nat_chains(snapshot: ProxySnapshot) -> set[str]:
    return {c for sp in snapshot.services for c in nat_chains_for(sp, snapshot.node_name)}


def sorted_services(snapshot: ProxySnapshot) -> list[ServicePortInfo]:
    return sorted(snapshot.services, key=lambda s: (s.port_name_string, s.protocol))


def large_cluster(snapshot: ProxySnapshot) -> bool:
    """largeClusterMode: more than 1000 endpoints in all (any readiness)."""
    return sum(len(s.endpoints) for s in snapshot.services) > LARGE_CLUSTER_ENDPOINTS


def _contains(cidr: str, ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)
    except ValueError:
        return False


# --- rendering ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Opts:
    cluster_cidr: str
    node: str
    node_ip: str
    large: bool
    nfacct: bool
    masquerade_all: bool = False
    localhost_node_ports: bool = True


def _top_rules(sp: ServicePortInfo, p: Plan, o: _Opts) -> tuple[list[str], list[str]]:
    """One service port's rules in the top-level chains, in syncProxyRules' order: (filter
    rules, nat rules). kube-proxy writes these on every sync, changed or not."""
    s = sp.port_name_string
    proto = sp.protocol.lower()
    match = f"-m {proto} -p {proto}"
    port = sp.port
    ext, fw = p.ext, p.fw
    lb_chain = fw if p.uses_fw else ext
    if not p.has_endpoints:
        int_target, int_comment = "REJECT", f'"{s} has no endpoints"'
        ext_target, ext_comment = int_target, int_comment
    else:
        int_target, int_comment = "DROP", f'"{s} has no local endpoints"'
        ext_target, ext_comment = int_target, int_comment
    fr: list[str] = []
    nr: list[str] = []

    # Capture the clusterIP.
    if p.has_internal:
        nr.append(f'-A KUBE-SERVICES -m comment --comment "{s} cluster IP" {match} '
                  f"-d {sp.cluster_ip} --dport {port} -j {p.internal_chain}")
    else:
        fr.append(f"-A KUBE-SERVICES -m comment --comment {int_comment} {match} "
                  f"-d {sp.cluster_ip} --dport {port} -j {int_target}")
    # Capture externalIPs.
    for ip in sp.external_ips:
        if p.has_endpoints:
            nr.append(f'-A KUBE-SERVICES -m comment --comment "{s} external IP" {match} '
                      f"-d {ip} --dport {port} -j {ext}")
        if not p.has_external:
            fr.append(f"-A KUBE-EXTERNAL-SERVICES -m comment --comment {ext_comment} {match} "
                      f"-d {ip} --dport {port} -j {ext_target}")
    # Capture load-balancer ingress.
    for ip in sp.load_balancer_ips:
        if p.has_endpoints:
            nr.append(f'-A KUBE-SERVICES -m comment --comment "{s} loadbalancer IP" {match} '
                      f"-d {ip} --dport {port} -j {lb_chain}")
        if p.uses_fw:
            fr.append(f'-A KUBE-PROXY-FIREWALL -m comment --comment "{s} traffic not accepted by {fw}" '
                      f"{match} -d {ip} --dport {port} -j DROP")
    if not p.has_external:
        for ip in sp.load_balancer_ips:
            fr.append(f"-A KUBE-EXTERNAL-SERVICES -m comment --comment {ext_comment} {match} "
                      f"-d {ip} --dport {port} -j {ext_target}")
    # Capture nodeports (not subject to loadBalancerSourceRanges).
    if sp.node_port:
        if p.has_endpoints:
            if o.nfacct and o.localhost_node_ports:  # IPv4, counter present
                nr.append(f"-A KUBE-NODEPORTS -m comment --comment {s} {match} -d 127.0.0.0/8 "
                          f"--dport {sp.node_port} -m nfacct --nfacct-name {NFACCT_LOCALHOST_NODEPORT} "
                          f"-j {ext}")
            nr.append(f"-A KUBE-NODEPORTS -m comment --comment {s} {match} --dport {sp.node_port} -j {ext}")
        if not p.has_external:
            fr.append(f"-A KUBE-EXTERNAL-SERVICES -m comment --comment {ext_comment} "
                      f"-m addrtype --dst-type LOCAL {match} --dport {sp.node_port} -j {ext_target}")
    # Capture healthCheckNodePorts (always TCP).
    if sp.health_check_node_port:
        fr.append(f'-A KUBE-NODEPORTS -m comment --comment "{s} health check node port" '
                  f"-m tcp -p tcp --dport {sp.health_check_node_port} -j ACCEPT")
    return fr, nr


def _chain_rules(sp: ServicePortInfo, p: Plan, seps: dict[Endpoint, str], o: _Opts) -> list[str]:
    """The rules of one service port's own nat chains (nat_chains_for's chains, in the
    order syncProxyRules fills them); a partial sync writes them only for changed services."""
    s = sp.port_name_string
    proto = sp.protocol.lower()
    match = f"-m {proto} -p {proto}"
    port = sp.port
    cat = p.cat
    svc, svl, ext, fw = p.svc, p.svl, p.ext, p.fw
    rules: list[str] = []

    # Internal traffic: masquerade off-cluster sources (ClusterCIDR detector's IfNotLocal),
    # or everything with masqueradeAll.
    if p.has_internal:
        not_local = "" if o.masquerade_all else f" ! -s {o.cluster_cidr}"
        rules.append(f'-A {p.internal_chain} -m comment --comment "{s} cluster IP" {match} '
                     f"-d {sp.cluster_ip} --dport {port}{not_local} -j KUBE-MARK-MASQ")
    if p.uses_ext_chain:
        if not sp.external_policy_local:
            rules.append(f'-A {ext} -m comment --comment "masquerade traffic for {s} external destinations" '
                         "-j KUBE-MARK-MASQ")
        else:
            rules.append(f'-A {ext} -m comment --comment "pod traffic for {s} external destinations" '
                         f"-s {o.cluster_cidr} -j {svc}")
            rules.append(f'-A {ext} -m comment --comment "masquerade LOCAL traffic for {s} external '
                         'destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ')
            rules.append(f'-A {ext} -m comment --comment "route LOCAL traffic for {s} external '
                         f'destinations" -m addrtype --src-type LOCAL -j {svc}')
        if p.has_external:
            rules.append(f"-A {ext} -j {p.external_policy_chain}")
    if p.uses_fw:
        head = f'-A {fw} -m comment --comment "{s} loadbalancer IP"'
        allow_from_node = False
        for cidr in source_ranges(sp):
            rules.append(f"{head} -s {cidr} -j {ext}")
            allow_from_node = allow_from_node or _contains(cidr, o.node_ip)
        if allow_from_node:
            # A node reaching its own LB VIP loops back with the VIP as source.
            for ip in sp.load_balancer_ips:
                rules.append(f"{head} -s {ip} -j {ext}")
        rules.append(f'-A {fw} -m comment --comment "other traffic to {s} will be dropped by '
                     'KUBE-PROXY-FIREWALL"')
    if p.uses_cluster_chain:
        _service_to_endpoints(rules, sp, svc, cat.cluster, seps, o.large)
    if p.uses_local_chain:
        _service_to_endpoints(rules, sp, svl, cat.local, seps, o.large)
    for ep in cat.reachable:
        sep = seps[ep]
        head = f"-A {sep}" if o.large else f"-A {sep} -m comment --comment {s}"
        rules.append(f"{head} -s {ep.ip} -j KUBE-MARK-MASQ")
        recent = f" -m recent --name {sep} --set" if sp.affinity_timeout else ""
        rules.append(f"{head}{recent} {match} -j DNAT --to-destination {names.endpoint_string(ep)}")
    return rules


def _service_to_endpoints(rules: list[str], sp: ServicePortInfo, chain: str,
                          eps: tuple[Endpoint, ...], seps: dict[Endpoint, str], large: bool) -> None:
    """writeServiceToEndpointRules: affinity checks first, then the random spread."""
    s = sp.port_name_string

    def head(ep: Endpoint) -> str:
        return f"-A {chain}" if large else f'-A {chain} -m comment --comment "{s} -> {names.endpoint_string(ep)}"'

    if sp.affinity_timeout:
        for ep in eps:
            sep = seps[ep]
            rules.append(f"{head(ep)} -m recent --name {sep} --rcheck --seconds {sp.affinity_timeout} "
                         f"--reap -j {sep}")
    n = len(eps)
    for i, ep in enumerate(eps):
        stat = f" -m statistic --mode random --probability {probability(n - i)}" if i < n - 1 else ""
        rules.append(f"{head(ep)}{stat} -j {seps[ep]}")


class _Entry:
    """One service port's rendered lines, filled pass by pass (None: not yet)."""
    __slots__ = ("plan", "filter", "nat_top", "seps", "chains", "rules")

    def __init__(self, p: Plan) -> None:
        self.plan = p
        self.filter = self.nat_top = self.seps = self.chains = self.rules = None


class RenderCache:
    """Rendered lines per service port, kept by a proxier between syncs: a service port
    equal to last sync's (with the same options) renders to the same lines, so only
    changed ones are rendered again. Holds only the last render's service ports."""

    def __init__(self) -> None:
        self.opts: _Opts | None = None
        self.entries: dict[ServicePortInfo, _Entry] = {}


def render(snapshot: ProxySnapshot, **kwargs) -> str:
    """The restore buffer as one string: render_lines' lines (same keywords)."""
    return "\n".join(render_lines(snapshot, **kwargs)) + "\n"


def render_lines(snapshot: ProxySnapshot, *, changed: set[str] | None = None, stale_nat_chains=(),
                 random_fully: bool = True, nfacct: bool = False, tcp_liberal: bool = False,
                 options: ProxyOptions = DEFAULT_OPTIONS, cache: RenderCache | None = None) -> Iterator[str]:
    """The restore buffer, line by line, as it is produced: each table's chains are declared
    before its rules (restore needs that), so the lines can go to iptables-restore while
    the rest is still rendered. Three passes over the services (filter rules, nat chains,
    nat rules), each yielding as it goes.

    changed: None = full sync; else only services whose service_key is in it get their
    SVC/SVL/EXT/FW/SEP chains written (partial sync). stale_nat_chains: flushed and deleted.
    random_fully: iptables >= 1.6.2. nfacct: the kernel has nfacct and the counters exist
    (kube-proxy then counts INVALID drops and localhost NodePort hits). tcp_liberal: the
    netns has nf_conntrack_tcp_be_liberal set, so no INVALID DROP rule. options: kube-proxy's
    configuration (masqueradeAll, localhostNodePorts, nodePortAddresses, clusterCIDR).
    cache: reuse (and keep) the lines of service ports rendered by an earlier call.
    """
    opts = _Opts(options.cluster_cidr or snapshot.cluster_cidr, snapshot.node_name, snapshot.node_ip,
                 large_cluster(snapshot), nfacct, options.masquerade_all, options.localhost_node_ports)
    cache = cache or RenderCache()
    old = cache.entries if cache.opts == opts else {}
    cache.opts, cache.entries = opts, {}
    services = [(sp, changed is None or sp.service_key in changed, cache.entries.setdefault(
        sp, old.get(sp) or _Entry(plan(sp, opts.node)))) for sp in sorted_services(snapshot)]

    yield "*filter"
    yield from (chain_line(c) for c in FILTER_TOP_CHAINS)
    # IPv4 with localhostNodePorts on: kube-proxy's copy of kubelet's localnet guard.
    if options.localhost_node_ports:
        yield chain_line("KUBE-FIREWALL")
        yield ('-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" '
               "-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP")
    for sp, _, entry in services:
        if entry.filter is None:
            entry.filter, entry.nat_top = _top_rules(sp, entry.plan, opts)
        yield from entry.filter
    if not tcp_liberal:
        yield ("-A KUBE-FORWARD -m conntrack --ctstate INVALID"
               + (f" -m nfacct --nfacct-name {NFACCT_INVALID}" if nfacct else "") + " -j DROP")
    yield (f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark '
           f"{MASQ_MARK}/{MASQ_MARK} -j ACCEPT")
    yield ('-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack '
           "--ctstate RELATED,ESTABLISHED -j ACCEPT")
    yield "COMMIT"

    yield "*nat"
    yield from (chain_line(c) for c in NAT_TOP_CHAINS)
    for sp, write, entry in services:
        if write:
            if entry.chains is None:
                entry.seps = sep_chains(sp, entry.plan)
                entry.chains = [chain_line(c) for c in _nat_chains(entry.plan, entry.seps)]
            yield from entry.chains
    stale = sorted(stale_nat_chains)
    yield from (chain_line(c) for c in stale)
    yield f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN"
    yield f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK}"
    yield ('-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE'
           + (" --random-fully" if random_fully else ""))
    yield f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK}"
    for sp, write, entry in services:
        yield from entry.nat_top
        if write:
            if entry.rules is None:
                entry.rules = _chain_rules(sp, entry.plan, entry.seps, opts)
            yield from entry.rules
    yield from (f"-X {c}" for c in stale)
    tail = ('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this '
            'must be the last rule in this chain"')
    ips = node_port_ips(options.node_port_addresses, snapshot.node_ip)
    if ips is None:
        local = "" if options.localhost_node_ports else " ! -d 127.0.0.0/8"
        yield f"{tail} -m addrtype --dst-type LOCAL{local} -j KUBE-NODEPORTS"
    for ip in ips or ():
        if ip.startswith("127.") and not options.localhost_node_ports:
            continue
        yield f"{tail} -d {ip} -j KUBE-NODEPORTS"
    yield "COMMIT"
