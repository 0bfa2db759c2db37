"""The `nft -f` transaction kube-proxy 1.33's nftables proxier writes for one node (pure).

Target: pkg/proxy/nftables/proxier.go (setupNFTables, syncProxyRules,
writeServiceToEndpointRules) with knftables v0.0.18's text forms, IPv4, masquerade bit 14
(mark 0x4000), the ClusterCIDR local-traffic detector (the snapshot's cluster_cidr),
masqueradeAll off. Facts: /work/shared/notes/kube-proxy-nftables-ipvs.md §1.

- service_port(sp, node, opts) -> PortRules: one service port's chains, rules, affinity sets
  and map/set elements (cached: a partial sync re-plans only changed services).
- full(snapshot, opts, first=, stale_chains=, stale_sets=) -> (text, elements): the setup part
  (table, base chains, jump rules, static rules, maps flushed), every service's objects and
  every element.
- partial(node, ports, old_ports, opts, stale_chains=, stale_sets=) -> text: only the changed
  services' chains; element adds/deletes by diff against what they had (kube-proxy's
  nftElementStorage), then stale chains flushed and stale affinity sets deleted.
- delete_chains(names): the separate transaction that deletes chains flushed >1 s before.

Services are written in port-name order, where kube-proxy follows Go map order (random);
sorted is one valid instance of it.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass

from minikp import KUBE_PROXY_VERSION
from minikp.proxy.categorize import (categorize, externally_accessible, source_ranges,
                                     uses_cluster_endpoints, uses_local_endpoints)
from minikp.proxy.nftables import names
from minikp.proxy.snapshot import Endpoint, ProxySnapshot, ServicePortInfo

TARGET_VERSION = KUBE_PROXY_VERSION
TABLE = "ip kube-proxy"
MASQ_MARK = "0x4000"  # fmt.Sprintf("%#08x", 1<<14)

# nftablesBaseChains: (name, type, hook, priority as knftables prints it).
BASE_CHAINS = (
    ("filter-prerouting", "filter", "prerouting", -110),
    ("filter-input", "filter", "input", -110),
    ("filter-forward", "filter", "forward", -110),
    ("filter-output", "filter", "output", -110),
    ("filter-output-post-dnat", "filter", "output", -90),
    ("nat-prerouting", "nat", "prerouting", -100),
    ("nat-output", "nat", "output", -100),
    ("nat-postrouting", "nat", "postrouting", 100),
)
# nftablesJumpChains: (destination, source base chain, extra match).
JUMP_CHAINS = (
    ("nodeport-endpoints-check", "filter-input", "ct state new"),
    ("service-endpoints-check", "filter-input", "ct state new"),
    ("service-endpoints-check", "filter-forward", "ct state new"),
    ("service-endpoints-check", "filter-output", "ct state new"),
    ("firewall-check", "filter-prerouting", "ct state new"),
    ("firewall-check", "filter-output", "ct state new"),
    ("services", "nat-output", ""),
    ("services", "nat-prerouting", ""),
    ("masquerading", "nat-postrouting", ""),
    ("cluster-ips-check", "filter-forward", "ct state new"),
    ("cluster-ips-check", "filter-output-post-dnat", "ct state new"),
)
CLUSTER_IPS, NODEPORT_IPS = "cluster-ips", "nodeport-ips"
SERVICE_IPS, SERVICE_NODEPORTS = "service-ips", "service-nodeports"
NO_EP_SERVICES, NO_EP_NODEPORTS = "no-endpoint-services", "no-endpoint-nodeports"
FIREWALL_IPS = "firewall-ips"
REJECT_CHAIN, MARK_MASQ = "reject-chain", "mark-for-masquerade"
# The element containers a full sync flushes and refills, in kube-proxy's order.
ELEMENT_CONTAINERS = (("set", CLUSTER_IPS), ("map", FIREWALL_IPS), ("map", NO_EP_SERVICES),
                      ("map", NO_EP_NODEPORTS), ("map", SERVICE_IPS), ("map", SERVICE_NODEPORTS))
_KIND = dict((n, k) for k, n in ELEMENT_CONTAINERS)


@dataclass(frozen=True)
class Options:
    """What the proxier knows besides the snapshot (NewProxier's arguments)."""
    cluster_cidr: str  # the ClusterCIDR local-traffic detector ("" = no detector)
    node_ip: str
    service_cidrs: tuple[str, ...] = ()  # ServiceCIDRs of this family: the unallocated-IP drop
    nodeport_ips: tuple[str, ...] | None = None  # --nodeport-addresses' node IPs; None = match-all
    masquerade_all: bool = False


def options_for(snapshot: ProxySnapshot, service_cidrs: tuple[str, ...] = ()) -> Options:
    """nftables mode's default --nodeport-addresses is "primary": the node IP only."""
    return Options(snapshot.cluster_cidr, snapshot.node_ip, service_cidrs, (snapshot.node_ip,))


# --- text forms (knftables) ------------------------------------------------------------

def q(text: str) -> str:
    """Go's %q for the plain ASCII comments kube-proxy writes."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def add_chain(name: str, comment: str = "") -> str:
    return f"add chain {TABLE} {name}" + (f" {{ comment {q(comment)} ; }}" if comment else "")


def flush_chain(name: str) -> str:
    return f"flush chain {TABLE} {name}"


def rule(chain: str, text: str, comment: str = "") -> str:
    return f"add rule {TABLE} {chain} {text}" + (f" comment {q(comment)}" if comment else "")


# An element: (container, key, comment, value); comment/value "" when absent.
Element = tuple[str, str, str, str]


def add_element(e: Element) -> str:
    container, key, comment, value = e
    body = key + (f" comment {q(comment)}" if comment else "") + (f" : {value}" if value else "")
    return f"add element {TABLE} {container} {{ {body} }}"


def delete_element(container: str, key: str) -> str:
    return f"delete element {TABLE} {container} {{ {key} }}"


# --- one service port ------------------------------------------------------------------

@dataclass(frozen=True)
class PortRules:
    chains: tuple[str, ...]  # service chains it uses (activeChains)
    affinity_sets: tuple[str, ...]
    lines: tuple[str, ...]  # add/flush chain, add set, add rule: in kube-proxy's order
    elements: tuple[Element, ...]


@functools.lru_cache(maxsize=1 << 16)
def service_port(sp: ServicePortInfo, node: str, o: Options) -> PortRules:
    proto = sp.protocol.lower()
    name = sp.port_name_string
    cat = categorize(sp, node)
    has = cat.any_endpoints
    svc_c, loc_c = names.service_chain(sp), names.local_chain(sp)
    ext_c, fw_c = names.external_chain(sp), names.firewall_chain(sp)
    chains: list[str] = []
    lines: list[str] = []
    elems: list[Element] = []

    def ensure(chain: str) -> None:
        if chain not in chains:
            chains.append(chain)
            lines.extend((add_chain(chain), flush_chain(chain)))

    for ep in cat.reachable:
        ensure(names.endpoint_chain(sp, ep))
    uses_cluster = bool(cat.cluster) and uses_cluster_endpoints(sp)
    uses_local = bool(cat.local) and uses_local_endpoints(sp)
    if uses_cluster:
        ensure(svc_c)
    if uses_local:
        ensure(loc_c)
    internal_chain = loc_c if sp.internal_policy_local else svc_c
    has_internal = has and (not sp.internal_policy_local or bool(cat.local))
    external_policy_chain = loc_c if sp.external_policy_local else svc_c
    has_external = has and (not sp.external_policy_local or bool(cat.local))
    uses_ext = has and externally_accessible(sp)
    if uses_ext:
        ensure(ext_c)
    if not has:
        int_verdict = ext_verdict = f"goto {REJECT_CHAIN}"
    else:
        int_verdict = ext_verdict = "drop"

    def key(ip: str) -> str:
        return f"{ip} . {proto} . {sp.port}"

    # Capture the clusterIP.
    elems.append((CLUSTER_IPS, sp.cluster_ip, "", ""))
    if has_internal:
        elems.append((SERVICE_IPS, key(sp.cluster_ip), "", f"goto {internal_chain}"))
    else:
        elems.append((NO_EP_SERVICES, key(sp.cluster_ip), name, int_verdict))
    # Capture externalIPs.
    for ip in sp.external_ips:
        if has:
            elems.append((SERVICE_IPS, key(ip), "", f"goto {ext_c}"))
        if not has_external:
            elems.append((NO_EP_SERVICES, key(ip), name, ext_verdict))
    # LoadBalancerSourceRanges.
    ranges = source_ranges(sp)
    uses_fw = bool(sp.load_balancer_ips) and bool(ranges)
    if uses_fw:
        ensure(fw_c)
        sources = [str(n) for n in ranges]
        node_ip = ipaddress.ip_address(o.node_ip) if o.node_ip else None
        if node_ip is not None and any(node_ip in n for n in ranges):
            # A node reaching its own VIP loops back with the VIP as source.
            sources += list(sp.load_balancer_ips)
        lines.append(rule(fw_c, f"ip saddr != {{ {' , '.join(sources)} }} drop"))
    # Capture load-balancer ingress.
    for ip in sp.load_balancer_ips:
        if has:
            elems.append((SERVICE_IPS, key(ip), "", f"goto {ext_c}"))
        if uses_fw:
            elems.append((FIREWALL_IPS, key(ip), "", f"goto {fw_c}"))
    if not has_external:
        for ip in sp.load_balancer_ips:
            elems.append((NO_EP_SERVICES, key(ip), name, ext_verdict))
    # Capture nodeports (not subject to loadBalancerSourceRanges).
    if sp.node_port:
        np_key = f"{proto} . {sp.node_port}"
        if has:
            elems.append((SERVICE_NODEPORTS, np_key, "", f"goto {ext_c}"))
        if not has_external:
            elems.append((NO_EP_NODEPORTS, np_key, name, ext_verdict))
    # Internal traffic: masquerade off-cluster sources.
    if has_internal:
        match = f"ip daddr {sp.cluster_ip} {proto} dport {sp.port}"
        if o.masquerade_all:
            lines.append(rule(internal_chain, f"{match} jump {MARK_MASQ}"))
        elif o.cluster_cidr:
            lines.append(rule(internal_chain, f"{match} ip saddr != {o.cluster_cidr} jump {MARK_MASQ}"))
    # External traffic.
    if uses_ext:
        if not sp.external_policy_local:
            lines.append(rule(ext_c, f"jump {MARK_MASQ}"))
        else:
            if o.cluster_cidr:
                lines.append(rule(ext_c, f"ip saddr {o.cluster_cidr} goto {svc_c}", "short-circuit pod traffic"))
            lines.append(rule(ext_c, f"fib saddr type local jump {MARK_MASQ}", "masquerade local traffic"))
            lines.append(rule(ext_c, f"fib saddr type local goto {svc_c}", "short-circuit local traffic"))
        if has_external:
            lines.append(rule(ext_c, f"goto {external_policy_chain}"))
    # Affinity sets, one per locally reachable endpoint.
    sets: list[str] = []
    if sp.affinity_timeout:
        for ep in cat.reachable:
            s = names.affinity_set(sp, ep)
            sets.append(s)
            lines.append(f"add set {TABLE} {s} {{ type ipv4_addr ; flags dynamic,timeout ; "
                         f"timeout {sp.affinity_timeout}s ; }}")
    if uses_cluster:
        lines += _to_endpoints(sp, svc_c, cat.cluster)
    if uses_local:
        lines += _to_endpoints(sp, loc_c, cat.local)
    for ep in cat.reachable:
        chain = names.endpoint_chain(sp, ep)
        lines.append(rule(chain, f"ip saddr {ep.ip} jump {MARK_MASQ}"))
        if sp.affinity_timeout:
            lines.append(rule(chain, f"update @{names.affinity_set(sp, ep)} {{ ip saddr }}"))
        lines.append(rule(chain, f"meta l4proto {proto} dnat to {ep.ip}:{ep.port}"))
    return PortRules(tuple(chains), tuple(sets), tuple(lines), tuple(elems))


def _to_endpoints(sp: ServicePortInfo, chain: str, eps: tuple[Endpoint, ...]) -> list[str]:
    """writeServiceToEndpointRules: affinity checks, then one numgen verdict map."""
    out = []
    if sp.affinity_timeout:
        out += [rule(chain, f"ip saddr @{names.affinity_set(sp, ep)} goto {names.endpoint_chain(sp, ep)}")
                for ep in eps]
    vmap = " , ".join(f"{i} : goto {names.endpoint_chain(sp, ep)}" for i, ep in enumerate(eps))
    out.append(rule(chain, f"numgen random mod {len(eps)} vmap {{ {vmap} }}"))
    return out


# --- whole transactions ----------------------------------------------------------------

def setup(o: Options, first: bool) -> list[str]:
    """setupNFTables: everything but the per-service objects, then the containers flushed."""
    out = [f'add table {TABLE} {{ comment "rules for kube-proxy" ; }}']
    if first:  # the process's first sync: force base chains to be recreated
        for name, *_ in BASE_CHAINS:
            out += [add_chain(name), f"delete chain {TABLE} {name}"]
    for name, typ, hook, prio in BASE_CHAINS:
        out += [f"add chain {TABLE} {name} {{ type {typ} hook {hook} priority {prio} ; }}", flush_chain(name)]
    created: list[str] = []

    def ensure(chain: str) -> None:
        if chain not in created:
            created.append(chain)
            out.extend((add_chain(chain), flush_chain(chain)))

    for dst, src, extra in JUMP_CHAINS:
        ensure(dst)
        out.append(rule(src, (extra + " " if extra else "") + f"jump {dst}"))
    for chain in ("services", "cluster-ips-check", "masquerading", MARK_MASQ):
        ensure(chain)
    out += [
        rule(MARK_MASQ, f"mark set mark or {MASQ_MARK}"),
        rule("masquerading", f"mark and {MASQ_MARK} == 0 return"),
        rule("masquerading", f"mark set mark xor {MASQ_MARK}"),
        rule("masquerading", "masquerade fully-random"),
        f'add set {TABLE} {CLUSTER_IPS} {{ type ipv4_addr ; comment "Active ClusterIPs" ; }}',
        rule("cluster-ips-check", f"ip daddr @{CLUSTER_IPS} reject", "Reject traffic to invalid ports of ClusterIPs"),
    ]
    if o.service_cidrs:
        out.append(rule("cluster-ips-check", f"ip daddr {{ {','.join(o.service_cidrs)} }} drop",
                        "Drop traffic to unallocated ClusterIPs"))
    out.append(f'add set {TABLE} {NODEPORT_IPS} {{ type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }}')
    if o.nodeport_ips is None:
        out.append(f"delete set {TABLE} {NODEPORT_IPS}")
    else:
        out.append(f"flush set {TABLE} {NODEPORT_IPS}")
        out += [add_element((NODEPORT_IPS, ip, "", "")) for ip in o.nodeport_ips
                if not ipaddress.ip_address(ip).is_loopback]
    out += [
        f"add map {TABLE} {NO_EP_SERVICES} {{ type ipv4_addr . inet_proto . inet_service : verdict ; "
        'comment "vmap to drop or reject packets to services with no endpoints" ; }',
        f"add map {TABLE} {NO_EP_NODEPORTS} {{ type inet_proto . inet_service : verdict ; "
        'comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }',
        add_chain(REJECT_CHAIN, "helper for @no-endpoint-services / @no-endpoint-nodeports"),
        flush_chain(REJECT_CHAIN),
        rule(REJECT_CHAIN, "reject"),
        rule("service-endpoints-check", f"ip daddr . meta l4proto . th dport vmap @{NO_EP_SERVICES}"),
    ]
    if o.nodeport_ips is None:
        out.append(rule("nodeport-endpoints-check",
                        f"ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @{NO_EP_NODEPORTS}"))
    else:
        out.append(rule("nodeport-endpoints-check",
                        f"ip daddr @{NODEPORT_IPS} meta l4proto . th dport vmap @{NO_EP_NODEPORTS}"))
    out.append(f"add map {TABLE} {FIREWALL_IPS} {{ type ipv4_addr . inet_proto . inet_service : verdict ; "
               'comment "destinations that are subject to LoadBalancerSourceRanges" ; }')
    ensure("firewall-check")
    out += [
        rule("firewall-check", f"ip daddr . meta l4proto . th dport vmap @{FIREWALL_IPS}"),
        f"add map {TABLE} {SERVICE_IPS} {{ type ipv4_addr . inet_proto . inet_service : verdict ; "
        'comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }',
        f"add map {TABLE} {SERVICE_NODEPORTS} {{ type inet_proto . inet_service : verdict ; "
        'comment "NodePort traffic" ; }',
        rule("services", f"ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}"),
    ]
    if o.nodeport_ips is None:
        out.append(rule("services", "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport "
                        f"vmap @{SERVICE_NODEPORTS}"))
    else:
        out.append(rule("services", f"ip daddr @{NODEPORT_IPS} meta l4proto . th dport vmap @{SERVICE_NODEPORTS}"))
    out += [f"flush {kind} {TABLE} {name}" for kind, name in ELEMENT_CONTAINERS]
    return out


def sorted_services(snapshot: ProxySnapshot) -> list[ServicePortInfo]:
    return sorted(snapshot.services, key=lambda s: (s.port_name_string, s.protocol))


# Stored elements: (container, key) -> (comment, value), as nftElementStorage keeps them.
Stored = dict[tuple[str, str], tuple[str, str]]


def _stale_lines(stale_chains, stale_sets) -> list[str]:
    return [flush_chain(c) for c in sorted(stale_chains)] + \
           [f"delete set {TABLE} {s}" for s in sorted(stale_sets)]


def full(snapshot: ProxySnapshot, o: Options, *, first: bool = False, stale_chains=(),
         stale_sets=()) -> tuple[str, Stored]:
    """A full sync's transaction and the elements it leaves stored."""
    lines = setup(o, first)
    stored: Stored = {}
    element_lines = []
    for sp in sorted_services(snapshot):
        pr = service_port(sp, snapshot.node_name, o)
        lines.extend(pr.lines)
        for e in pr.elements:
            stored[(e[0], e[1])] = (e[2], e[3])
            element_lines.append(add_element(e))
    lines += element_lines + _stale_lines(stale_chains, stale_sets)
    return "\n".join(lines) + "\n", stored


def service_elements(ports, node: str, o: Options) -> Stored:
    """The elements the given service ports ensure."""
    out: Stored = {}
    for sp in ports:
        for e in service_port(sp, node, o).elements:
            out[(e[0], e[1])] = (e[2], e[3])
    return out


def partial(node: str, ports, old_ports, o: Options, *, stale_chains=(), stale_sets=()) -> str:
    """A partial sync: the objects of `ports` (the changed services' service ports now) only;
    their elements diffed against those of `old_ports` (the same services at the last sync),
    as nftElementStorage does: same key and value: nothing; changed value: delete + add;
    gone: delete."""
    ports = sorted(ports, key=lambda s: (s.port_name_string, s.protocol))
    lines: list[str] = []
    for sp in ports:
        lines.extend(service_port(sp, node, o).lines)
    old, new = service_elements(old_ports, node, o), service_elements(ports, node, o)
    for (container, key), val in old.items():
        if new.get((container, key)) != val:
            lines.append(delete_element(container, key))
    for (container, key), (comment, value) in new.items():
        if old.get((container, key)) != (comment, value):
            lines.append(add_element((container, key, comment, value)))
    lines += _stale_lines(stale_chains, stale_sets)
    return "\n".join(lines) + "\n" if lines else ""


def delete_chains(chains) -> str:
    return "".join(f"delete chain {TABLE} {c}\n" for c in sorted(chains))
