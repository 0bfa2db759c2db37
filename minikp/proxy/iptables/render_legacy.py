"""The iptables-restore input of kube-proxy 1.1-1.23 for one node (pure), by Layout.

The layouts before KUBE-EXT/KUBE-SVL (1.24): one KUBE-SVC chain per service port with its
KUBE-SEP chains, masquerade rules in KUBE-SERVICES / KUBE-NODEPORTS (until 1.21) or in the
SVC chain (1.22-1.23), KUBE-FW chains for load-balancer IPs (1.4+). What differs by release
is read from the Layout (minikp.proxy.iptables.layout), never from a release number here.

Modelled: ClusterIP, externalIPs, NodePorts, load-balancer IPs (with source ranges),
externalTrafficPolicy Local (KUBE-XLB, 1.5+), health-check NodePorts (1.21+), ClientIP
affinity, services without endpoints, large-cluster comment dropping, stale chains.
internalTrafficPolicy (1.21 alpha, KUBE-SVL from 1.24) is written as Cluster.

- service_string(sp, layout): kube-proxy's `S` of that release ("ns/name:" before 1.19).
- render(snapshot, layout, stale_nat_chains=, random_fully=, options=): *filter, then *nat.
- jump_rules(layout), base_restore(layout), active_nat_chains(snapshot, layout).
"""

from __future__ import annotations

from minikp.proxy.categorize import source_ranges
from minikp.proxy.iptables import names
from minikp.proxy.iptables.layout import MARK_1_1, MASQ_BIT_MARK, Layout
from minikp.proxy.iptables.render import (LARGE_CLUSTER_ENDPOINTS, CANARY_CHAIN, CANARY_TABLES, JumpRule,
                                          _contains, _jump, _NEW, chain_line, node_port_ips, quoted)
from minikp.proxy.options import DEFAULT as DEFAULT_OPTIONS, ProxyOptions
from minikp.proxy.snapshot import Endpoint, ProxySnapshot, ServicePortInfo, endpoint_string

DROP_MARK = "0x00008000"  # kubelet's KUBE-MARK-DROP: 1 << --iptables-drop-bit (15)


def service_string(sp: ServicePortInfo, layout: Layout) -> str:
    """ServicePortName.String() of that release: before 1.19 the colon is always there."""
    if layout.colon_for_unnamed_port and not sp.port_name:
        return f"{sp.namespace}/{sp.name}:"
    return sp.port_name_string


def svc_chain(sp: ServicePortInfo, layout: Layout) -> str:
    return "KUBE-SVC-" + names.port_proto_hash(service_string(sp, layout), sp.protocol)


def fw_chain(sp: ServicePortInfo, layout: Layout) -> str:
    return "KUBE-FW-" + names.port_proto_hash(service_string(sp, layout), sp.protocol)


def xlb_chain(sp: ServicePortInfo, layout: Layout) -> str:
    return "KUBE-XLB-" + names.port_proto_hash(service_string(sp, layout), sp.protocol)


def uses_xlb(sp: ServicePortInfo, layout: Layout) -> bool:
    """externalTrafficPolicy Local (OnlyLocal; a NodePort or LoadBalancer Service)."""
    return layout.xlb_chains and sp.external_policy_local


def sep_chain(sp: ServicePortInfo, ep: Endpoint, layout: Layout) -> str:
    return "KUBE-SEP-" + names.sep_hash(service_string(sp, layout), sp.protocol, endpoint_string(ep))


def probability(n: int, layout: Layout) -> str:
    return layout.probability_format % (1.0 / n)


def endpoints(sp: ServicePortInfo, layout: Layout) -> tuple[Endpoint, ...]:
    """The ready endpoints (no terminating fallback before 1.26) in the order of that release:
    the Endpoints object's (IP string) before EndpointSlices, else "ip:port" string order."""
    eps = [e for e in sp.endpoints if e.ready]
    return tuple(sorted(eps, key=(lambda e: e.ip) if layout.sorted_by_ip else endpoint_string))


def masq(layout: Layout) -> str:
    """The jump that marks a packet for masquerade."""
    return f"MARK --set-xmark {MARK_1_1}/0xffffffff" if layout.inline_mark else "KUBE-MARK-MASQ"


def _cidr(ip: str, layout: Layout) -> str:
    return f"{ip}/32" if layout.slash32 else ip


def _uses_fw(sp: ServicePortInfo, layout: Layout) -> bool:
    return bool(sp.load_balancer_ips) and layout.fw_chains


def active_nat_chains(snapshot: ProxySnapshot, layout: Layout) -> set[str]:
    out = set()
    for sp in snapshot.services:
        eps = endpoints(sp, layout)
        if eps or layout.nat_for_no_endpoints:
            out.add(svc_chain(sp, layout))
            if _uses_fw(sp, layout):
                out.add(fw_chain(sp, layout))
            if uses_xlb(sp, layout):
                out.add(xlb_chain(sp, layout))
        out |= {sep_chain(sp, e, layout) for e in eps}
    return out


# --- jumps from the built-in chains, and kubelet's chains of those releases --------------------

def jump_rules(layout: Layout) -> tuple[JumpRule, ...]:
    """iptablesJumpChains of that release (each prepended, so the last listed ends up first);
    1.1's SNAT rule is appended to POSTROUTING itself."""
    new = _NEW if layout.new_ctstate_on_jumps else ()
    portals, external = "kubernetes service portals", "kubernetes externally-visible service portals"
    out = []
    if layout.external_services_chain:
        out.append(_jump("filter", "KUBE-EXTERNAL-SERVICES", "INPUT", external, new))
        if layout.external_services_from_forward:
            out.append(_jump("filter", "KUBE-EXTERNAL-SERVICES", "FORWARD", external, new))
    if layout.health_check_chain:
        out.append(_jump("filter", "KUBE-NODEPORTS", "INPUT", "kubernetes health check service ports"))
    if layout.filter_jumps_forward_services:
        out.append(_jump("filter", "KUBE-SERVICES", "FORWARD", portals, new))
    if layout.filter_jumps_input_services:
        out.append(_jump("filter", "KUBE-SERVICES", "INPUT", portals, new))
    if layout.filter_table:
        out.append(_jump("filter", "KUBE-SERVICES", "OUTPUT", portals, new))
    if layout.forward_chain:
        out.append(_jump("filter", "KUBE-FORWARD", "FORWARD", layout.forward_comment))
    out += [_jump("nat", "KUBE-SERVICES", "OUTPUT", portals),
            _jump("nat", "KUBE-SERVICES", "PREROUTING", portals)]
    if layout.inline_mark:
        out.append(JumpRule("nat", "", "POSTROUTING", (
            "-m", "comment", "--comment", "kubernetes service traffic requiring SNAT",
            "-m", "mark", "--mark", MARK_1_1, "-j", "MASQUERADE"), append=True))
    else:
        out.append(_jump("nat", "KUBE-POSTROUTING", "POSTROUTING", "kubernetes postrouting rules"))
    return tuple(out)


def kubelet_rules(layout: Layout) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(table, chain, rule args) kubelet kept in those releases and kube-proxy's KUBE-FW chains
    jump to (KUBE-MARK-DROP, and the KUBE-FIREWALL that drops what it marked)."""
    if not layout.fw_chains:
        return ()
    return (("nat", "KUBE-MARK-DROP", ("-j", "MARK", "--set-xmark", f"{DROP_MARK}/{DROP_MARK}")),
            ("filter", "KUBE-FIREWALL", ("-m", "comment", "--comment",
                                         "kubernetes firewall for dropping marked packets",
                                         "-m", "mark", "--mark", f"{DROP_MARK}/{DROP_MARK}", "-j", "DROP")))


def kubelet_jumps(layout: Layout) -> tuple[JumpRule, ...]:
    if not layout.fw_chains:
        return ()
    return (_jump("filter", "KUBE-FIREWALL", "INPUT", ""), _jump("filter", "KUBE-FIREWALL", "OUTPUT", ""))


def base_restore(layout: Layout) -> str:
    """One restore for a namespace with no KUBE chain yet: what kubelet and the jump rules of
    that release leave there (the same final order as ensuring them one by one)."""
    jumps = jump_rules(layout) + kubelet_jumps(layout)
    out = []
    for table in ("mangle", "filter", "nat"):
        chains = ([CANARY_CHAIN] if layout.canary and table in CANARY_TABLES else []) + list(dict.fromkeys(
            [j.chain for j in jumps if j.table == table and j.chain]
            + [c for t, c, _ in kubelet_rules(layout) if t == table]))
        rules = [f"-A {c} {quoted(args)}" for t, c, args in kubelet_rules(layout) if t == table] + [
            f"{'-A' if j.append else '-I'} {j.builtin} {quoted(j.args)}" for j in jumps if j.table == table]
        if chains or rules:  # a table kube-proxy never touches stays unloaded (1.1: nat only)
            out += [f"*{table}", *[chain_line(c) for c in chains], *rules, "COMMIT"]
    return "\n".join(out) + "\n"


# --- the restore ---------------------------------------------------------------------------

def _static_nat(layout: Layout, random_fully: bool) -> list[str]:
    if layout.inline_mark:
        return []
    mark = f"{MASQ_BIT_MARK}/{MASQ_BIT_MARK}"
    snat = ('-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT"'
            + (f" -m mark --mark {mark}" if layout.postrouting == "single" else "") + " -j MASQUERADE"
            + (" --random-fully" if random_fully and layout.random_fully else ""))
    if layout.postrouting == "single":
        return [snat, f"-A KUBE-MARK-MASQ -j MARK --set-xmark {mark}"]
    return [f"-A KUBE-POSTROUTING -m mark ! --mark {mark} -j RETURN",
            f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_BIT_MARK}", snat,
            f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_BIT_MARK}"]


def _forward_rules(layout: Layout, cluster_cidr: str) -> list[str]:
    if not layout.forward_chain:
        return []
    out = ["-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP"] if layout.forward_invalid_drop else []
    out.append(f'-A KUBE-FORWARD -m comment --comment "{layout.forward_comment}" -m mark --mark '
               f"{MASQ_BIT_MARK}/{MASQ_BIT_MARK} -j ACCEPT")
    ct = "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    if layout.forward_pod_rules == "single":
        out.append(f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" {ct}')
    elif layout.forward_pod_rules == "detector":
        out += [f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack pod source rule" {ct}',
                f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack pod destination rule" {ct}']
    elif cluster_cidr:
        out += [f'-A KUBE-FORWARD -s {cluster_cidr} -m comment --comment "kubernetes forwarding conntrack '
                f'pod source rule" {ct}',
                f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack pod destination '
                f'rule" -d {cluster_cidr} {ct}']
    return out


def _service(sp: ServicePortInfo, layout: Layout, o: dict, filt: list[str], nat_chains: list[str],
             nat: list[str]) -> None:
    s = service_string(sp, layout)
    proto = sp.protocol.lower()
    match = f"-m {proto} -p {proto}"
    svc, fw, xlb = svc_chain(sp, layout), fw_chain(sp, layout), xlb_chain(sp, layout)
    local = uses_xlb(sp, layout)
    chosen = xlb if local else svc  # where external traffic goes
    eps = endpoints(sp, layout)
    has = bool(eps)
    write_nat = has or layout.nat_for_no_endpoints
    mark = masq(layout)
    not_local = "" if o["masquerade_all"] else (f" ! -s {o['cidr']}" if o["cidr"] else None)
    in_svc = []  # masquerade rules kept in the SVC chain (1.22+), before its endpoint rules
    no_eps = f'-m comment --comment "{s} has no endpoints"'
    external_chain = "KUBE-EXTERNAL-SERVICES" if layout.external_services_chain else "KUBE-SERVICES"

    # ClusterIP
    args = f'-m comment --comment "{s} cluster IP" {match} -d {_cidr(sp.cluster_ip, layout)} --dport {sp.port}'
    if write_nat:
        if layout.cluster_ip_masq and not_local is not None or o["masquerade_all"]:
            where = svc if layout.cluster_ip_masq == "svc" else "KUBE-SERVICES"
            rule = f"-A {where} {args}{not_local or ''} -j {mark}"
            (in_svc if where == svc else nat).append(rule)
        nat.append(f"-A KUBE-SERVICES {args} -j {svc}")
    if not has and layout.reject_no_endpoints:
        filt.append(f"-A KUBE-SERVICES {no_eps} {match} -d {_cidr(sp.cluster_ip, layout)} "
                    f"--dport {sp.port} -j REJECT")
    # externalIPs
    for ip in sp.external_ips:
        args = f'-m comment --comment "{s} external IP" {match} -d {_cidr(ip, layout)} --dport {sp.port}'
        if write_nat:
            if layout.cluster_ip_masq == "svc":
                if not local:
                    in_svc.append(f"-A {svc} {args}{not_local or ''} -j {mark}")
                nat.append(f"-A KUBE-SERVICES {args} -j {chosen}")
            else:
                nat += [f"-A KUBE-SERVICES {args} -j {mark}",
                        f"-A KUBE-SERVICES {args} -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL "
                        f"-j {svc}",
                        f"-A KUBE-SERVICES {args} -m addrtype --dst-type LOCAL -j {svc}"]
        if not has and layout.reject_node_ports:
            filt.append(f"-A {external_chain} {no_eps} {match} -d {_cidr(ip, layout)} --dport {sp.port} -j REJECT")
    # load-balancer IPs
    for ip in sp.load_balancer_ips:
        args = f'-m comment --comment "{s} loadbalancer IP" {match} -d {_cidr(ip, layout)} --dport {sp.port}'
        if write_nat and not _uses_fw(sp, layout):
            nat += [f"-A KUBE-SERVICES {args} -j {mark}", f"-A KUBE-SERVICES {args} -j {svc}"]
        elif write_nat:
            nat.append(f"-A KUBE-SERVICES {args} -j {fw}")
        if not has and layout.reject_lb_no_endpoints:
            chain = external_chain if layout.lb_reject_in_external else "KUBE-SERVICES"
            filt.append(f"-A {chain} {no_eps} {match} -d {_cidr(ip, layout)} --dport {sp.port} -j REJECT")
    # NodePort
    if sp.node_port:
        args = f"-m comment --comment {_word(s)} {match} --dport {sp.node_port}"
        if write_nat:
            if local:
                if layout.node_port_localhost_masq:  # a martian 127.0.0.1 source otherwise
                    nat.append(f"-A KUBE-NODEPORTS {args} -s 127.0.0.0/8 -j {mark}")
            elif layout.node_port_masq == "svc":
                in_svc.append(f"-A {svc} {args} -j {mark}")
            else:
                nat.append(f"-A KUBE-NODEPORTS {args} -j {mark}")
            nat.append(f"-A KUBE-NODEPORTS {args} -j {chosen}")
        if not has and layout.reject_node_ports:
            filt.append(f"-A {external_chain} {no_eps} -m addrtype --dst-type LOCAL {match} "
                        f"--dport {sp.node_port} -j REJECT")
    if sp.health_check_node_port and local and layout.health_check_chain:
        filt.append(f'-A KUBE-NODEPORTS -m comment --comment "{s} health check node port" '
                    f"-m tcp -p tcp --dport {sp.health_check_node_port} -j ACCEPT")

    if not write_nat:
        return
    nat_chains.append(chain_line(svc))
    if _uses_fw(sp, layout):
        nat_chains.append(chain_line(fw))
        head = f'-A {fw} -m comment --comment "{s} loadbalancer IP"'
        if not local:  # crossing nodes: masquerade; Local keeps the client's address
            nat.append(f"{head} -j {mark}")
        ranges = source_ranges(sp)
        if not ranges:
            nat.append(f"{head} -j {chosen}")
        for cidr in ranges:
            nat.append(f"{head} -s {cidr} -j {chosen}")
        if any(_contains(str(c), o["node_ip"]) for c in ranges):
            nat += [f"{head} -s {_cidr(ip, layout)} -j {chosen}" for ip in sp.load_balancer_ips]
        nat.append(f"{head} -j KUBE-MARK-DROP")
    nat += in_svc
    comment = "" if o["large"] else f" -m comment --comment {_word(s)}"
    affinity = sp.affinity_timeout and (layout.affinity_seconds or sp.affinity_timeout)
    if affinity:
        for ep in eps:
            sep = sep_chain(sp, ep, layout)
            nat.append(f"-A {svc}{comment} -m recent --name {sep} --rcheck --seconds {affinity} --reap -j {sep}")
    for i, ep in enumerate(eps):
        stat = f" -m statistic --mode random --probability {probability(len(eps) - i, layout)}" \
            if i < len(eps) - 1 else ""
        nat.append(f"-A {svc}{comment}{stat} -j {sep_chain(sp, ep, layout)}")
    for ep in eps:
        sep = sep_chain(sp, ep, layout)
        nat_chains.append(chain_line(sep))
        nat.append(f"-A {sep}{comment} -s {_cidr(ep.ip, layout)} -j {mark}")
        recent = f" -m recent --name {sep} --set" if affinity else ""
        nat.append(f"-A {sep}{comment}{recent} {match} -j DNAT --to-destination {endpoint_string(ep)}")
    if local:
        _xlb(sp, layout, o, nat_chains, nat, [e for e in eps if e.node == o["node"]], affinity)


def _xlb(sp: ServicePortInfo, layout: Layout, o: dict, nat_chains: list[str], nat: list[str],
         local_eps: list[Endpoint], affinity: int) -> None:
    """The OnlyLocal chain: pods and the node itself go to the whole service, the rest only
    to this node's endpoints (or are dropped)."""
    s, svc, xlb = service_string(sp, layout), svc_chain(sp, layout), xlb_chain(sp, layout)
    nat_chains.append(chain_line(xlb))
    if o["cidr"]:
        nat.append(f'-A {xlb} -m comment --comment "Redirect pods trying to reach external loadbalancer VIP '
                   f'to clusterIP" -s {o["cidr"]} -j {svc}')
    if layout.xlb_local_rules:
        nat += [f'-A {xlb} -m comment --comment "masquerade LOCAL traffic for {s} LB IP" -m addrtype '
                f"--src-type LOCAL -j {masq(layout)}",
                f'-A {xlb} -m comment --comment "route LOCAL traffic for {s} LB IP to service chain" -m addrtype '
                f"--src-type LOCAL -j {svc}"]
    if not local_eps:
        nat.append(f'-A {xlb} -m comment --comment "{s} has no local endpoints" -j KUBE-MARK-DROP')
        return
    if affinity:
        for ep in local_eps:
            sep = sep_chain(sp, ep, layout)
            nat.append(f"-A {xlb} -m comment --comment {_word(s)} -m recent --name {sep} --rcheck --seconds "
                       f"{affinity} --reap -j {sep}")
    for i, ep in enumerate(local_eps):
        stat = f" -m statistic --mode random --probability {probability(len(local_eps) - i, layout)}" \
            if i < len(local_eps) - 1 else ""
        nat.append(f'-A {xlb} -m comment --comment "Balancing rule {i} for {s}"{stat} '
                   f"-j {sep_chain(sp, ep, layout)}")


def _word(s: str) -> str:
    """A comment as kube-proxy writes one that is a single word: unquoted."""
    return f'"{s}"' if " " in s else s


def render(snapshot: ProxySnapshot, layout: Layout, *, stale_nat_chains=(), random_fully: bool = True,
           options: ProxyOptions = DEFAULT_OPTIONS) -> str:
    """The restore buffer of that release: always a full sync (partial syncs came in 1.26)."""
    cidr = options.cluster_cidr or snapshot.cluster_cidr
    o = {"node": snapshot.node_name, "node_ip": snapshot.node_ip, "cidr": cidr,
         "masquerade_all": options.masquerade_all,
         "large": layout.large_cluster_comments and sum(len(s.endpoints) for s in snapshot.services)
         > LARGE_CLUSTER_ENDPOINTS}
    if layout.cluster_ip_masq == "":  # 1.1, 1.2: no --cluster-cidr yet
        o["cidr"] = ""
    filter_chains = [chain_line(c) for c, on in (
        ("KUBE-SERVICES", layout.filter_table),
        ("KUBE-EXTERNAL-SERVICES", layout.external_services_chain),
        ("KUBE-FORWARD", layout.forward_chain),
        ("KUBE-NODEPORTS", layout.health_check_chain)) if on]
    nat_chains = [chain_line(c) for c in ("KUBE-SERVICES", "KUBE-NODEPORTS")]
    if not layout.inline_mark:
        nat_chains += [chain_line("KUBE-POSTROUTING"), chain_line("KUBE-MARK-MASQ")]
    filt: list[str] = []
    nat = _static_nat(layout, random_fully)
    for sp in sorted(snapshot.services, key=lambda s: (s.port_name_string, s.protocol)):
        _service(sp, layout, o, filt, nat_chains, nat)
    for chain in sorted(stale_nat_chains):
        nat_chains.append(chain_line(chain))
        nat.append(f"-X {chain}")
    tail = ('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this '
            'must be the last rule in this chain"')
    ips = node_port_ips(options.node_port_addresses, snapshot.node_ip) \
        if layout.external_services_chain else None  # --nodeport-addresses: 1.10+
    if ips is None:
        nat.append(f"{tail} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    for ip in ips or ():
        nat.append(f"{tail} -d {_cidr(ip, layout)} -j KUBE-NODEPORTS")
    filt += _forward_rules(layout, cidr if layout.cluster_ip_masq else "")
    lines = (["*filter", *filter_chains, *filt, "COMMIT"] if layout.filter_table else []) + \
        ["*nat", *nat_chains, *nat, "COMMIT"]
    return "\n".join(lines) + "\n"
