"""kube-proxy's iptables rule layout by release, as data (pure).

CHANGES lists, release by release, only what changed in the rules kube-proxy writes (sources:
../shared/notes/kube-proxy-history.md, kubernetes/kubernetes pkg/proxy/iptables/proxier.go at
the release tags; docs/releases.md says the why). layout_of(release) folds them, from 1.1 on,
into the Layout of that release. render_legacy renders the layouts before 1.24; from 1.24 on
render.py (1.33's renderer) writes the rules, with the later switches (nfacct, the
INVALID-drop sysctl) applied by the proxier.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

MARK_1_1 = "0x4d415351"  # "MASQ": 1.1's constant mark, set inline
MASQ_BIT_MARK = "0x00004000"  # fmt.Sprintf("%#08x", 1<<14): Go pads the digits, then adds 0x


@dataclass(frozen=True)
class Layout:
    release: tuple[int, int]
    colon_for_unnamed_port: bool = True  # S = "ns/name:" for an unnamed port (hash + comments)
    probability_format: str = "%0.5f"  # computeProbability
    inline_mark: bool = True  # 1.1: -j MARK --set-xmark MASQ/0xffffffff, no KUBE-MARK-MASQ
    postrouting: str = "builtin"  # builtin (1.1) | single (1.2-1.18) | xor (1.19+)
    random_fully: bool = False  # MASQUERADE --random-fully (iptables >= 1.6.2)
    cluster_ip_masq: str = ""  # "" masqueradeAll only | services | svc (chain of the ! -s rule)
    node_port_masq: str = "nodeports"  # nodeports | svc
    filter_table: bool = False  # kube-proxy writes filter rules at all (1.2+)
    fw_chains: bool = False  # KUBE-FW per LB IP, ending in kubelet's KUBE-MARK-DROP (1.4+)
    reject_lb_no_endpoints: bool = False  # LB IPs without endpoints get a REJECT (1.14+)
    lb_reject_in_external: bool = False  # ... in KUBE-EXTERNAL-SERVICES (1.20+)
    reject_no_endpoints: bool = False  # filter KUBE-SERVICES "S has no endpoints" REJECT
    reject_node_ports: bool = False  # ... also for NodePorts without endpoints
    nat_for_no_endpoints: bool = True  # an empty SVC chain plus capture rules (before 1.10)
    external_services_chain: bool = False  # filter KUBE-EXTERNAL-SERVICES
    forward_chain: bool = False  # filter KUBE-FORWARD
    forward_invalid_drop: bool = False  # KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
    forward_pod_rules: str = "cidr"  # cidr (-s/-d) | detector (no -s/-d, 1.18) | single (1.23)
    health_check_chain: bool = False  # filter KUBE-NODEPORTS (health-check ports)
    new_ctstate_on_jumps: bool = False  # filter jumps carry -m conntrack --ctstate NEW
    filter_jumps_input_services: bool = False  # INPUT -> KUBE-SERVICES (1.7-1.19)
    filter_jumps_forward_services: bool = False  # FORWARD -> KUBE-SERVICES (1.14+)
    external_services_from_forward: bool = False  # FORWARD -> KUBE-EXTERNAL-SERVICES (1.20+)
    forward_comment: str = "kubernetes forward rules"  # the FORWARD -> KUBE-FORWARD jump's
    xlb_chains: bool = False  # externalTrafficPolicy Local: KUBE-XLB chains (1.5-1.23)
    xlb_local_rules: bool = False  # XLB "masquerade/route LOCAL traffic" rules (1.15+)
    node_port_localhost_masq: bool = False  # eTP=Local NodePort: -s 127.0.0.0/8 -j KUBE-MARK-MASQ (1.10+)
    affinity_seconds: int = 180  # 0 = the Service's timeoutSeconds (1.8+)
    large_cluster_comments: bool = False  # drop SVC/SEP comments above 1000 endpoints (1.12+)
    slash32: bool = True  # -d/-s written as ip/32 in the restore input (until 1.23)
    sorted_by_ip: bool = True  # Endpoints order (IP string) before EndpointSlices (ip:port)
    canary: bool = False  # KUBE-PROXY-CANARY chains, polled to detect a flush (1.17+)
    sep_arrow_comments: bool = False  # SVC -> SEP comments "S -> ip:port" (1.24+)
    ext_chains: bool = False  # KUBE-EXT / KUBE-SVL / KUBE-PROXY-FIREWALL: render.py's layout
    nfacct: bool = False  # nfacct counters (1.31+)
    tcp_liberal_skips_invalid_drop: bool = False  # 1.29+
    partial_sync: bool = False  # MinimizeIPTablesRestore on by default (1.27+)

    @property
    def name(self) -> str:
        return f"{self.release[0]}.{self.release[1]}"


# (release, {field: value}): what that release changed. Each row says why in docs/releases.md.
CHANGES: tuple[tuple[tuple[int, int], dict], ...] = (
    ((1, 1), {}),  # first iptables proxier (#9210): nat only, inline MASQ mark, %0.5f
    ((1, 2), {"inline_mark": False, "postrouting": "single", "filter_table": True,  # #20496
              "reject_no_endpoints": True}),
    ((1, 3), {"cluster_ip_masq": "services"}),  # --cluster-cidr: off-cluster sources masqueraded
    ((1, 4), {"fw_chains": True}),  # #29409 (loadBalancerSourceRanges), KUBE-MARK-DROP #30486
    ((1, 5), {"affinity_seconds": 10800, "xlb_chains": True}),  # #35681, #33587
    ((1, 7), {"reject_node_ports": True, "filter_jumps_input_services": True}),  # #43415, #43972
    ((1, 8), {"affinity_seconds": 0}),  # timeoutSeconds (#49850)
    ((1, 9), {"forward_chain": True}),  # KUBE-FORWARD (#52569)
    ((1, 10), {"external_services_chain": True, "node_port_localhost_masq": True,  # #57942 "new_ctstate_on_jumps": True,  # #56164, #60306
               "forward_comment": "kubernetes forwarding rules", "nat_for_no_endpoints": False}),
    ((1, 12), {"large_cluster_comments": True}),  # #65755
    ((1, 14), {"filter_jumps_forward_services": True, "reject_lb_no_endpoints": True}),  # #74394
    ((1, 15), {"forward_invalid_drop": True, "xlb_local_rules": True}),  # #74840, #77523
    ((1, 16), {"random_fully": True}),  # #78547
    ((1, 17), {"probability_format": "%0.10f", "canary": True}),  # #83599, #81517
    ((1, 18), {"forward_pod_rules": "detector"}),  # --detect-local-mode (#87748)
    ((1, 19), {"colon_for_unnamed_port": False, "postrouting": "xor",  # #92035
               "sorted_by_ip": False}),  # EndpointSlice proxying by default
    ((1, 20), {"filter_jumps_input_services": False, "external_services_from_forward": True,  # #95252
               "lb_reject_in_external": True}),
    ((1, 21), {"health_check_chain": True}),  # #97824
    ((1, 22), {"cluster_ip_masq": "svc", "node_port_masq": "svc"}),  # #96959
    ((1, 23), {"slash32": False, "forward_pod_rules": "single"}),  # #106030, #97279
    ((1, 24), {"sep_arrow_comments": True, "ext_chains": True}),  # #109060
    ((1, 27), {"partial_sync": True}),  # MinimizeIPTablesRestore beta (#115138)
    ((1, 29), {"tcp_liberal_skips_invalid_drop": True}),  # #120412
    ((1, 31), {"nfacct": True}),  # #122812, #125015
)


def layout_of(release: tuple[int, int]) -> Layout:
    """The Layout of `release`: every change up to and including it, applied in order."""
    fields: dict = {}
    for since, change in CHANGES:
        if since <= release:
            fields.update(change)
    return dataclasses.replace(Layout(release=release), **fields)


def changed_in(field: str) -> list[tuple[tuple[int, int], object]]:
    """[(release, new value)] for one field: where a line of one era differs from another's."""
    return [(since, change[field]) for since, change in CHANGES if field in change]
