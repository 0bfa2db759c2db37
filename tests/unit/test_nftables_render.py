"""nftables mode goldens without root: kube-proxy 1.33's pkg/proxy/nftables/proxier_test.go
expectations (TestOverallNFTablesRules, TestSyncProxyRulesRepeated, the chain-name vectors),
compared the way upstream's assertNFTablesTransactionEqual does: the table a transaction
leaves (nft_fake.Table, a knftables.Fake stand-in), normalised."""

from dataclasses import replace

import pytest

from minikp.proxy.nftables import names, render as rd
from minikp.proxy.snapshot import Endpoint as E, ProxySnapshot, ServicePortInfo as SP
from nft_fake import Table, normalise

NODE = "test-node"

# NewFakeProxier: pod CIDR 10.0.0.0/8, service CIDR 172.30.0.0/16, nodePortAddresses
# 192.168.0.2/32, node IP 192.168.0.2.
OPTS = rd.Options(cluster_cidr="10.0.0.0/8", node_ip="192.168.0.2", service_cidrs=("172.30.0.0/16",),
                  nodeport_ips=("192.168.0.2",))

BASE_RULES = """
add table ip kube-proxy { comment "rules for kube-proxy" ; }

add chain ip kube-proxy mark-for-masquerade
add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
add chain ip kube-proxy masquerading
add rule ip kube-proxy masquerading mark and 0x4000 == 0 return
add rule ip kube-proxy masquerading mark set mark xor 0x4000
add rule ip kube-proxy masquerading masquerade fully-random
add chain ip kube-proxy services
add chain ip kube-proxy service-endpoints-check
add chain ip kube-proxy nodeport-endpoints-check
add chain ip kube-proxy filter-prerouting { type filter hook prerouting priority -110 ; }
add rule ip kube-proxy filter-prerouting ct state new jump firewall-check
add chain ip kube-proxy filter-forward { type filter hook forward priority -110 ; }
add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
add chain ip kube-proxy filter-input { type filter hook input priority -110 ; }
add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
add rule ip kube-proxy filter-input ct state new jump service-endpoints-check
add chain ip kube-proxy filter-output { type filter hook output priority -110 ; }
add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output ct state new jump firewall-check
add chain ip kube-proxy filter-output-post-dnat { type filter hook output priority -90 ; }
add rule ip kube-proxy filter-output-post-dnat ct state new jump cluster-ips-check
add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
add rule ip kube-proxy nat-output jump services
add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
add rule ip kube-proxy nat-postrouting jump masquerading
add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
add rule ip kube-proxy nat-prerouting jump services

add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
add chain ip kube-proxy cluster-ips-check
add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
add rule ip kube-proxy cluster-ips-check ip daddr { 172.30.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"

add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }
add element ip kube-proxy nodeport-ips { 192.168.0.2 }

add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
add chain ip kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
add rule ip kube-proxy reject-chain reject
add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports

add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
add chain ip kube-proxy firewall-check
add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips

add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
"""

OVERALL = [
    SP("ns1", "svc1", "p80", "TCP", "172.30.0.41", 80, endpoints=(E("10.180.0.1", 80),)),
    SP("ns2", "svc2", "p80", "TCP", "172.30.0.42", 80, node_port=3001, external_ips=("192.168.99.22",),
       load_balancer_ips=("1.2.3.4",), external_policy_local=True, health_check_node_port=30000,
       endpoints=(E("10.180.0.2", 80),)),  # no NodeName: not local
    SP("ns3", "svc3", "p80", "TCP", "172.30.0.43", 80, node_port=3003, endpoints=(E("10.180.0.3", 80),)),
    SP("ns4", "svc4", "p80", "TCP", "172.30.0.44", 80, external_ips=("192.168.99.33",),
       endpoints=(E("10.180.0.4", 80), E("10.180.0.5", 80, node=NODE))),
    SP("ns5", "svc5", "p80", "TCP", "172.30.0.45", 80, node_port=3002, load_balancer_ips=("5.6.7.8",),
       load_balancer_source_ranges=(" 203.0.113.0/25",), affinity_timeout=10800,
       health_check_node_port=30000, endpoints=(E("10.180.0.3", 80),)),
    SP("ns6", "svc6", "p80", "TCP", "172.30.0.46", 80),
]

OVERALL_EXPECTED = BASE_RULES + """
# svc1
add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }
add chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 ip saddr 10.180.0.1 jump mark-for-masquerade
add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80
add element ip kube-proxy cluster-ips { 172.30.0.41 }
add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }

# svc2
add chain ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80
add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 ip daddr 172.30.0.42 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 }
add chain ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80
add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit pod traffic"
add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit local traffic"
add chain ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80
add rule ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 ip saddr 10.180.0.2 jump mark-for-masquerade
add rule ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 meta l4proto tcp dnat to 10.180.0.2:80
add element ip kube-proxy cluster-ips { 172.30.0.42 }
add element ip kube-proxy service-ips { 172.30.0.42 . tcp . 80 : goto service-42NFTM6N-ns2/svc2/tcp/p80 }
add element ip kube-proxy service-ips { 192.168.99.22 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
add element ip kube-proxy service-ips { 1.2.3.4 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 3001 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
add element ip kube-proxy no-endpoint-nodeports { tcp . 3001 comment "ns2/svc2:p80" : drop }
add element ip kube-proxy no-endpoint-services { 1.2.3.4 . tcp . 80 comment "ns2/svc2:p80" : drop }
add element ip kube-proxy no-endpoint-services { 192.168.99.22 . tcp . 80 comment "ns2/svc2:p80" : drop }

# svc3
add chain ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80
add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 ip daddr 172.30.0.43 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 }
add chain ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80
add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 jump mark-for-masquerade
add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 goto service-4AT6LBPK-ns3/svc3/tcp/p80
add chain ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80
add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80
add element ip kube-proxy cluster-ips { 172.30.0.43 }
add element ip kube-proxy service-ips { 172.30.0.43 . tcp . 80 : goto service-4AT6LBPK-ns3/svc3/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 3003 : goto external-4AT6LBPK-ns3/svc3/tcp/p80 }

# svc4
add chain ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80
add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 ip daddr 172.30.0.44 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 , 1 : goto endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 }
add chain ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80
add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 jump mark-for-masquerade
add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 goto service-LAUZTJTB-ns4/svc4/tcp/p80
add chain ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80
add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 ip saddr 10.180.0.5 jump mark-for-masquerade
add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 meta l4proto tcp dnat to 10.180.0.5:80
add chain ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80
add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 ip saddr 10.180.0.4 jump mark-for-masquerade
add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 meta l4proto tcp dnat to 10.180.0.4:80
add element ip kube-proxy cluster-ips { 172.30.0.44 }
add element ip kube-proxy service-ips { 172.30.0.44 . tcp . 80 : goto service-LAUZTJTB-ns4/svc4/tcp/p80 }
add element ip kube-proxy service-ips { 192.168.99.33 . tcp . 80 : goto external-LAUZTJTB-ns4/svc4/tcp/p80 }

# svc5
add set ip kube-proxy affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }
add chain ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip daddr 172.30.0.45 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 }
add chain ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80
add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 jump mark-for-masquerade
add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 goto service-HVFWP5L3-ns5/svc5/tcp/p80
add chain ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 update @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { ip saddr }
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80
add chain ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80
add rule ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr != { 203.0.113.0/25 } drop
add element ip kube-proxy cluster-ips { 172.30.0.45 }
add element ip kube-proxy service-ips { 172.30.0.45 . tcp . 80 : goto service-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kube-proxy service-ips { 5.6.7.8 . tcp . 80 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 3002 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kube-proxy firewall-ips { 5.6.7.8 . tcp . 80 : goto firewall-HVFWP5L3-ns5/svc5/tcp/p80 }

# svc6
add element ip kube-proxy cluster-ips { 172.30.0.46 }
add element ip kube-proxy no-endpoint-services { 172.30.0.46 . tcp . 80 comment "ns6/svc6:p80" : goto reject-chain }
"""


def snap(*svcs):
    return ProxySnapshot(NODE, "192.168.0.2", "10.0.0.0/8", tuple(svcs))


def table_after(*texts):
    t = Table()
    for text in texts:
        t.apply(text)
    return t


def assert_table(table, expected):
    got_others, got_rules = normalise(table.dump())
    want_others, want_rules = normalise(expected)
    assert sorted(got_others - want_others) == [] and sorted(want_others - got_others) == []
    assert got_rules == want_rules


# --- names -------------------------------------------------------------------------------

@pytest.mark.parametrize("base,hashed", [
    ("ns1/svc1/tcp/p80", "ULMVA6XW"),
    ("ns1/svc1/tcp/p80__10.180.0.1/80", "5OJB2KTY"),
    ("testing/service/tcp/http", "P4ZYZVCF"),
    ("testing/service/tcp/http__fd80.abcd.12..a1b2.c3d4.e5f6.9999/80", "U7E2ET36"),
])
def test_chain_name_hash(base, hashed):
    assert names.hash_and_truncate(base) == f"{hashed}-{base}"


def test_names_of_a_service_port_and_its_endpoints():
    sp = SP("testing", "service", "http", "TCP", "172.30.0.1", 80)
    assert names.service_chain(sp) == "service-P4ZYZVCF-testing/service/tcp/http"
    assert names.external_chain(sp).startswith("external-P4ZYZVCF-")
    ep6 = E("fd80:abcd:12::a1b2:c3d4:e5f6:9999", 80)
    assert names.endpoint_chain(sp, ep6) == \
        "endpoint-U7E2ET36-testing/service/tcp/http__fd80.abcd.12..a1b2.c3d4.e5f6.9999/80"
    unnamed = SP("ns", "svc", "", "UDP", "172.30.0.1", 53)
    assert names.service_base(unnamed).endswith("-ns/svc/udp/")
    long = "x" * 63
    truncated = names.hash_and_truncate(f"{long}/{long}/tcp/{long}__{'1' * 39}/65535")
    assert len(truncated) == 240 and truncated.endswith("...")
    assert names.is_service_chain(names.service_chain(sp)) and not names.is_service_chain("services")
    assert names.is_affinity_set(names.affinity_set(sp, ep6))


# --- TestOverallNFTablesRules ---------------------------------------------------------

def test_overall_nftables_rules():
    text, _ = rd.full(snap(*OVERALL), OPTS)
    assert_table(table_after(text), OVERALL_EXPECTED)


def test_first_sync_recreates_base_chains_and_is_otherwise_the_same():
    text, _ = rd.full(snap(*OVERALL), OPTS, first=True)
    assert "add chain ip kube-proxy nat-prerouting\ndelete chain ip kube-proxy nat-prerouting\n" in text
    t = table_after(rd.full(snap(*OVERALL), OPTS)[0])
    t.apply(text)  # a restarted kube-proxy over its old table
    assert_table(t, OVERALL_EXPECTED)


def test_nodeport_addresses_match_all():
    o = replace(OPTS, nodeport_ips=None)
    text, _ = rd.full(snap(*OVERALL), o)
    assert "add set ip kube-proxy nodeport-ips" in text and "delete set ip kube-proxy nodeport-ips" in text
    t = table_after(text)
    assert "nodeport-ips" not in t.sets
    assert t.chain_rules("services")[1] == \
        "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports"
    assert t.chain_rules("nodeport-endpoints-check") == \
        ["ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports"]


def test_no_service_cidrs_means_no_unallocated_drop():
    t = table_after(rd.full(snap(*OVERALL), replace(OPTS, service_cidrs=()))[0])
    assert t.chain_rules("cluster-ips-check") == \
        ['ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"']
    t = table_after(rd.full(snap(), replace(OPTS, service_cidrs=("172.30.0.0/16", "172.50.0.0/16")))[0])
    assert 'ip daddr { 172.30.0.0/16,172.50.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"' \
        in t.chain_rules("cluster-ips-check")


def test_masquerade_all_and_no_detector():
    sp = OVERALL[0]
    t = table_after(rd.full(snap(sp), replace(OPTS, masquerade_all=True))[0])
    assert t.chain_rules(names.service_chain(sp))[0] == "ip daddr 172.30.0.41 tcp dport 80 jump mark-for-masquerade"
    t = table_after(rd.full(snap(sp), replace(OPTS, cluster_cidr=""))[0])
    assert t.chain_rules(names.service_chain(sp))[0].startswith("numgen random mod 1 vmap")


def test_source_range_holding_the_node_ip_admits_the_vips():
    sp = replace(OVERALL[4], load_balancer_source_ranges=("192.168.0.0/24", "203.0.113.0/25"))
    t = table_after(rd.full(snap(sp), OPTS)[0])
    assert t.chain_rules(names.firewall_chain(sp)) == \
        ["ip saddr != { 192.168.0.0/24 , 203.0.113.0/25 , 5.6.7.8 } drop"]


def test_internal_traffic_policy_local():
    local = SP("ns1", "svc1", "p80", "TCP", "172.30.0.41", 80, internal_policy_local=True,
               endpoints=(E("10.180.0.1", 80, node=NODE), E("10.180.2.1", 80, node="node2")))
    t = table_after(rd.full(snap(local), OPTS)[0])
    lc = names.local_chain(local)
    assert names.service_chain(local) not in t.chains
    assert t.chain_rules(lc) == [
        "ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade",
        f"numgen random mod 1 vmap {{ 0 : goto {names.endpoint_chain(local, local.endpoints[0])} }}"]
    assert f"172.30.0.41 . tcp . 80 : goto {lc}" in t.elements["service-ips"]["172.30.0.41 . tcp . 80"]
    remote_only = replace(local, endpoints=local.endpoints[1:])
    t = table_after(rd.full(snap(remote_only), OPTS)[0])
    assert t.elements["no-endpoint-services"]["172.30.0.41 . tcp . 80"].endswith(
        '{ 172.30.0.41 . tcp . 80 comment "ns1/svc1:p80" : drop }')
    assert not any(names.is_service_chain(c) for c in t.chains)


def test_terminating_endpoints_are_a_fallback():
    sp = replace(OVERALL[0], endpoints=(E("10.180.0.1", 80, ready=False, serving=True, terminating=True),
                                        E("10.180.0.2", 80, ready=False, serving=False, terminating=True)))
    t = table_after(rd.full(snap(sp), OPTS)[0])
    assert t.chain_rules(names.service_chain(sp))[1] == \
        f"numgen random mod 1 vmap {{ 0 : goto {names.endpoint_chain(sp, sp.endpoints[0])} }}"


def test_udp_and_sctp_dnat():
    sp = SP("ns1", "dns", "dns", "UDP", "172.30.0.10", 53, endpoints=(E("10.180.0.9", 53),))
    t = table_after(rd.full(snap(sp), OPTS)[0])
    ep = names.endpoint_chain(sp, sp.endpoints[0])
    assert t.chain_rules(ep)[-1] == "meta l4proto udp dnat to 10.180.0.9:53"
    assert "172.30.0.10 . udp . 53" in t.elements["service-ips"]


# --- TestSyncProxyRulesRepeated: partial syncs and their operation counts ---------------------

SVC1 = SP("ns1", "svc1", "p80", "TCP", "172.30.0.41", 80, endpoints=(E("10.0.1.1", 80),))
SVC2 = SP("ns2", "svc2", "p8080", "TCP", "172.30.0.42", 8080, endpoints=(E("10.0.2.1", 8080),))
SVC3 = SP("ns3", "svc3", "p80", "TCP", "172.30.0.43", 80, endpoints=(E("10.0.3.1", 80),))


def _partial(prev, cur, changed):
    ports = [sp for sp in cur.services if sp.service_key in changed]
    old_ports = [sp for sp in prev.services if sp.service_key in changed]
    old_chains = {c for sp in old_ports for c in rd.service_port(sp, NODE, OPTS).chains}
    new_chains = {c for sp in ports for c in rd.service_port(sp, NODE, OPTS).chains}
    text = rd.partial(NODE, ports, old_ports, OPTS, stale_chains=old_chains - new_chains)
    return text, old_chains - new_chains


def test_sync_proxy_rules_repeated():
    s12 = snap(SVC1, SVC2)
    t = table_after(rd.full(s12, OPTS)[0])
    # Adding a ClusterIP service with one endpoint: 2 elements, add+flush of 2 chains, 4 rules.
    s123 = snap(SVC1, SVC2, SVC3)
    text, stale = _partial(s12, s123, {"ns3/svc3"})
    t.apply(text)
    assert t.last_ops == 10 and not stale
    assert "endpoint-2OCDJSZQ-ns3/svc3/tcp/p80__10.0.3.1/80" in t.chains
    assert "service-MHHHYRWA-ns2/svc2/tcp/p8080" in t.chains
    assert "endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080" in t.chains
    assert "endpoint-5TPGNJF2-ns1/svc1/tcp/p80__10.0.1.1/80" in t.chains
    # Deleting a service: 2 element deletes, its 2 chains flushed (deleted a second later).
    text, stale = _partial(s123, snap(SVC1, SVC3), {"ns2/svc2"})
    t.apply(text)
    assert t.last_ops == 4 and len(stale) == 2
    assert all(t.rules[c] == [] for c in stale)
    assert "172.30.0.42" not in t.elements["cluster-ips"]
    t.apply(rd.delete_chains(stale))
    assert not stale & set(t.chains)
    # Nothing changed: an empty transaction.
    text, stale = _partial(snap(SVC1, SVC3), snap(SVC1, SVC3), set())
    assert text == "" and not stale
    # An endpoint changes: the service's chains are rewritten, its element keeps its value.
    moved = replace(SVC1, endpoints=(E("10.0.1.2", 80),))
    text, stale = _partial(snap(SVC1, SVC3), snap(moved, SVC3), {"ns1/svc1"})
    t.apply(text)
    assert [c.split("__")[1] for c in stale] == ["10.0.1.1/80"]
    assert "element" not in text  # same keys, same values: no element operation
    assert t.chain_rules(names.service_chain(moved))[-1].endswith(
        f"goto {names.endpoint_chain(moved, moved.endpoints[0])} }}")
    assert names.service_chain(SVC3) in t.chains and t.rules[names.service_chain(SVC3)]


def test_partial_sync_element_value_change_is_delete_then_add():
    t = table_after(rd.full(snap(SVC1), OPTS)[0])
    gone = replace(SVC1, endpoints=())
    text, stale = _partial(snap(SVC1), snap(gone), {"ns1/svc1"})
    assert text.splitlines()[:2] == [
        "delete element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 }",
        'add element ip kube-proxy no-endpoint-services { 172.30.0.41 . tcp . 80 comment "ns1/svc1:p80" : goto reject-chain }',
    ]
    t.apply(text)
    assert "172.30.0.41 . tcp . 80" not in t.elements["service-ips"]
    assert "172.30.0.41" in t.elements["cluster-ips"]  # same key and value: untouched


def test_partial_and_full_leave_the_same_table():
    """Whatever partial syncs do, the table equals what one full sync of the end state writes."""
    steps = [snap(*OVERALL),
             snap(*OVERALL[:3], replace(OVERALL[3], endpoints=OVERALL[3].endpoints[:1]), *OVERALL[4:]),
             snap(*OVERALL[1:], SVC2),
             snap(replace(OVERALL[1], endpoints=(E("10.180.0.2", 80, node=NODE),)), *OVERALL[2:5],
                  replace(OVERALL[5], endpoints=(E("10.180.0.6", 80),)), SVC2)]
    t = table_after(rd.full(steps[0], OPTS)[0])
    stale_all = set()
    for prev, cur in zip(steps, steps[1:]):
        from minikp.proxy.changes import by_service, changed_services
        changed = changed_services(by_service(prev), by_service(cur))
        text, stale = _partial(prev, cur, changed)
        t.apply(text)
        stale_all |= stale
    active = {c for sp in steps[-1].services for c in rd.service_port(sp, NODE, OPTS).chains}
    t.apply(rd.delete_chains(stale_all - active))  # a stale chain used again is not deleted
    assert_table(t, rd.full(steps[-1], OPTS)[0].replace("flush", "# flush"))


# --- what the proxier reads back from nft ----------------------------------------------------

def test_listings_are_read_per_table():
    from minikp.proxy.nftables.sync import chains_in, sets_in
    listing = ('{"nftables": [{"metainfo": {"json_schema_version": 1}},'
               ' {"chain": {"family": "ip", "table": "kube-proxy", "name": "service-X-a/b/tcp/", "handle": 3}},'
               ' {"chain": {"family": "ip", "table": "other", "name": "c/d", "handle": 4}}]}')
    assert chains_in(listing) == {"service-X-a/b/tcp/"}
    assert chains_in("") == set()
    sets = "table ip kube-proxy {\n\tset cluster-ips {\n\t}\n\tmap service-ips {\n\t}\n}\n" \
           "table ip other {\n\tset affinity-x {\n\t}\n}\n"
    assert sets_in(sets) == {"cluster-ips", "service-ips"}


def test_nftables_proxier_has_the_proxy_protocol():
    import inspect
    from minikp.proxy import base
    from minikp.proxy.nftables.sync import NftablesProxier
    from minikp.scenario.model import ClusterConfig
    members = {n for n in vars(base.Proxier) if not n.startswith("_")} | set(base.Proxier.__annotations__)
    assert not {m for m in members if not hasattr(NftablesProxier, m)}
    assert inspect.ismethod(NftablesProxier.from_config)
    p = NftablesProxier.from_config("/nonexistent", ClusterConfig(service_subnet="10.96.0.0/12"))
    assert p.service_cidrs == ("10.96.0.0/12",) and p.describe() == "nftables"
    rebuilt = NftablesProxier.from_config("/nonexistent", replace(ClusterConfig(), **p.settings()))
    assert rebuilt.service_cidrs == p.service_cidrs


# A piece of `nft list table ip kube-proxy` as nft 1.0.6 printed it for a NodePort +
# LoadBalancer service with two endpoints (elements wrapped over lines, as nft does).
LISTING = """table ip kube-proxy {
	map service-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		comment "ClusterIP, ExternalIP and LoadBalancer IP traffic"
		elements = { 192.168.99.1 . udp . 53 : goto external-E6QV3ZKR-default/other/udp/,
			     10.96.0.21 . udp . 53 : goto service-E6QV3ZKR-default/other/udp/,
			     10.96.0.20 . tcp . 80 : goto service-SUSTUHLJ-default/web/tcp/http,
			     172.18.255.200 . tcp . 80 : goto external-SUSTUHLJ-default/web/tcp/http }
	}
	map service-nodeports {
		type inet_proto . inet_service : verdict
		comment "NodePort traffic"
		elements = { tcp . 30080 : goto external-SUSTUHLJ-default/web/tcp/http }
	}
	chain service-SUSTUHLJ-default/web/tcp/http {
		ip daddr 10.96.0.20 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
		numgen random mod 2 vmap { 0 : goto endpoint-YHBK3W6O-default/web/tcp/http__10.244.1.3/9376, 1 : goto endpoint-UXUKPGFI-default/web/tcp/http__10.244.2.3/9376 }
	}
}
"""


def test_service_paths_from_the_listing():
    from minikp.proxy.nftables.paths import service_paths
    [path] = service_paths(LISTING, "default/web")
    assert (path.port, path.chain) == ("http", "service-SUSTUHLJ-default/web/tcp/http")
    assert [(f.kind, f.address) for f in path.frontends] == [
        ("cluster IP", "10.96.0.20:80/tcp"), ("external IP", "172.18.255.200:80/tcp"), ("node port", ":30080/tcp")]
    assert [(b.endpoint, b.share, b.rule) for b in path.branches] == [
        ("10.244.1.3:9376", 0.5, "numgen random mod 2 = 0"), ("10.244.2.3:9376", 0.5, "numgen random mod 2 = 1")]
    assert service_paths(LISTING, "default/other") == []
