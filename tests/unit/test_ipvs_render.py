"""Golden tests for the state ipvs mode wants, against kube-proxy 1.33's own expectations in
pkg/proxy/ipvs/proxier_test.go (TestNodePortIPv4, TestLoadBalancerSourceRanges,
TestAcceptIPVSTraffic, TestOnlyLocalNodePorts, TestOnlyLocalLoadBalancing, TestExternalIPs,
TestCreateAndLinkKubeChain, TestDismissLocalhostRuleExist). Upstream's fixture: scheduler rr,
hostname test-hostname, a no-op local detector (cluster_cidr "" here). Its checkIptables
compares, per chain name (nat and filter merged), each rule's jump target, match-set and
source; chain_summary() below is that view of our restore text."""

import re

from minikp.proxy.ipvs import render as rd
from minikp.proxy.ipvs.render import RealServer as RS, VirtualServer as VS, render
from minikp.proxy.snapshot import Endpoint as E, ProxySnapshot, ServicePortInfo as SP

HOST = "test-hostname"


def snap(*svcs, cidr=""):
    return ProxySnapshot(HOST, "100.101.102.103", cidr, tuple(svcs))


def chain_summary(text):
    """{chain: [(jump, match_set, source)]} in rule order, tables merged as the fake does."""
    out = {}
    for line in text.splitlines():
        if not line.startswith("-A "):
            continue
        chain = line.split()[1]
        jump = re.search(r" -j (\S+)", line).group(1)
        mset = re.search(r"--match-set (\S+)", line)
        src = re.search(r" -s (\S+)", line)
        out.setdefault(chain, []).append((jump, mset.group(1) if mset else "", src.group(1) if src else ""))
    return out


def vs_map(state):
    return {str(v): (v.scheduler, v.flags, v.timeout, [str(r) for r in v.real_servers])
            for v in state.virtual_servers}


def nodeport_svc(proto="TCP", eps=(E("10.180.0.1", 80),), **kw):
    return SP("ns1", "svc1", "p80", proto, "10.20.30.41", 80, node_port=3001, endpoints=eps, **kw)


# --- TestNodePortIPv4 ---------------------------------------------------------------------

def test_nodeport_two_frontends_with_the_endpoint():
    st = render(snap(nodeport_svc()), node_addresses=("100.101.102.103", "2001:db8::1:1"))
    assert vs_map(st) == {
        "10.20.30.41:80/TCP": ("rr", 0, 0, ["10.180.0.1:80"]),
        "100.101.102.103:3001/TCP": ("rr", 0, 0, ["10.180.0.1:80"]),
    }
    assert st.virtual_servers[0].real_servers == (RS("10.180.0.1", 80, 1),)


def test_nodeport_udp_sets_and_chains():
    st = render(snap(nodeport_svc("UDP")), node_addresses=("100.101.102.103",))
    assert set(vs_map(st)) == {"10.20.30.41:80/UDP", "100.101.102.103:3001/UDP"}
    assert st.ipset(rd.NODE_PORT_UDP).entries == ("3001",)
    chains = chain_summary(st.restore)
    assert chains["KUBE-NODE-PORT"] == [("KUBE-MARK-MASQ", "KUBE-NODE-PORT-UDP", ""),
                                        ("ACCEPT", "KUBE-HEALTH-CHECK-NODE-PORT", "")]
    assert chains["KUBE-SERVICES"] == [("RETURN", "", "127.0.0.0/8"),
                                       ("KUBE-MARK-MASQ", "KUBE-CLUSTER-IP", ""),
                                       ("KUBE-NODE-PORT", "", ""),
                                       ("ACCEPT", "KUBE-CLUSTER-IP", "")]


def test_nodeport_without_endpoints_has_virtual_servers_without_real_servers():
    st = render(snap(nodeport_svc(eps=())), node_addresses=("100.101.102.103",))
    assert vs_map(st) == {"10.20.30.41:80/TCP": ("rr", 0, 0, []),
                          "100.101.102.103:3001/TCP": ("rr", 0, 0, [])}


def test_nodeport_sctp_on_every_node_ip():
    ips = ("100.101.102.103", "100.101.102.104", "100.101.102.105", "2001:db8::1:1")
    st = render(snap(nodeport_svc("SCTP")), node_addresses=ips)
    assert set(vs_map(st)) == {"10.20.30.41:80/SCTP", "100.101.102.103:3001/SCTP",
                               "100.101.102.104:3001/SCTP", "100.101.102.105:3001/SCTP"}
    assert st.ipset(rd.NODE_PORT_SCTP).entries == (
        "100.101.102.103,sctp:3001", "100.101.102.104,sctp:3001", "100.101.102.105,sctp:3001")


def test_nodeport_sctp_local_policy():
    eps = (E("10.180.0.1", 80, node=HOST), E("10.180.1.1", 80, node="otherHost"))
    st = render(snap(nodeport_svc("SCTP", eps=eps, external_policy_local=True)),
                node_addresses=("100.101.102.103",))
    assert vs_map(st) == {"10.20.30.41:80/SCTP": ("rr", 0, 0, ["10.180.0.1:80", "10.180.1.1:80"]),
                          "100.101.102.103:3001/SCTP": ("rr", 0, 0, ["10.180.0.1:80"])}
    assert st.ipset(rd.NODE_PORT_SCTP).entries == ("100.101.102.103,sctp:3001",)
    assert st.ipset(rd.NODE_PORT_LOCAL_SCTP).entries == ("100.101.102.103,sctp:3001",)
    assert chain_summary(st.restore)["KUBE-NODE-PORT"] == [
        ("RETURN", "KUBE-NODE-PORT-LOCAL-SCTP-HASH", ""),
        ("KUBE-MARK-MASQ", "KUBE-NODE-PORT-SCTP-HASH", ""),
        ("ACCEPT", "KUBE-HEALTH-CHECK-NODE-PORT", "")]
    assert "-A KUBE-NODE-PORT -p sctp -m comment --comment \"Kubernetes nodeport SCTP port with " \
           "externalTrafficPolicy=local with type 'hash ip:port'\" -m set --match-set " \
           "KUBE-NODE-PORT-LOCAL-SCTP-HASH dst,dst -j RETURN" in st.restore


def test_no_nodeport_vs_without_node_addresses():
    assert set(vs_map(render(snap(nodeport_svc()), node_addresses=("127.0.0.1",)))) == {"10.20.30.41:80/TCP"}


# --- TestOnlyLocalNodePorts / TestOnlyLocalLoadBalancing --------------------------------------

def test_only_local_nodeports():
    eps = (E("10.180.0.1", 80, node="other"), E("10.180.2.1", 80, node=HOST))
    sp = SP("ns1", "svc1", "p80", "TCP", "10.20.30.41", 80, node_port=3001, external_policy_local=True,
            health_check_node_port=30000, endpoints=eps)
    st = render(snap(sp), node_addresses=("100.101.102.103",))
    assert vs_map(st)["100.101.102.103:3001/TCP"][3] == ["10.180.2.1:80"]
    assert vs_map(st)["10.20.30.41:80/TCP"][3] == ["10.180.0.1:80", "10.180.2.1:80"]
    assert st.ipset(rd.NODE_PORT_TCP).entries == ("3001",)
    assert st.ipset(rd.NODE_PORT_LOCAL_TCP).entries == ("3001",)
    assert st.ipset(rd.HEALTH_CHECK_NODE_PORT).entries == ("30000",)
    assert chain_summary(st.restore)["KUBE-NODE-PORT"] == [
        ("RETURN", "KUBE-NODE-PORT-LOCAL-TCP", ""), ("KUBE-MARK-MASQ", "KUBE-NODE-PORT-TCP", ""),
        ("ACCEPT", "KUBE-HEALTH-CHECK-NODE-PORT", "")]


def test_local_policy_without_local_endpoints_falls_back_to_cluster():
    sp = nodeport_svc(eps=(E("10.180.0.1", 80, node="other"),), external_policy_local=True)
    st = render(snap(sp), node_addresses=("100.101.102.103",))
    assert vs_map(st)["100.101.102.103:3001/TCP"][3] == ["10.180.0.1:80"]  # #97081


def test_only_local_load_balancing():
    sp = SP("ns1", "svc1", "p80", "TCP", "10.20.30.41", 80, node_port=3001,
            load_balancer_ips=("1.2.3.4",), external_policy_local=True,
            endpoints=(E("10.180.0.1", 80, node=HOST), E("10.180.2.1", 80, node="other")))
    st = render(snap(sp), node_addresses=("100.101.102.103",))
    assert st.ipset(rd.LOAD_BALANCER).entries == ("1.2.3.4,tcp:80",)
    assert st.ipset(rd.LOAD_BALANCER_LOCAL).entries == ("1.2.3.4,tcp:80",)
    assert chain_summary(st.restore)["KUBE-LOAD-BALANCER"] == [
        ("RETURN", "KUBE-LOAD-BALANCER-LOCAL", ""), ("KUBE-MARK-MASQ", "", "")]
    assert vs_map(st)["1.2.3.4:80/TCP"][3] == ["10.180.0.1:80"]
    assert "1.2.3.4" in st.bind_addresses


# --- TestLoadBalancerSourceRanges / TestAcceptIPVSTraffic ------------------------------------

def test_load_balancer_source_ranges():
    sp = SP("ns1", "svc1", "p80", "TCP", "10.20.30.41", 80, node_port=3001, load_balancer_ips=("1.2.3.4",),
            load_balancer_source_ranges=("10.0.0.0/8",), endpoints=(E("10.180.0.1", 80),))
    st = render(snap(sp))
    assert st.ipset(rd.LOAD_BALANCER).entries == ("1.2.3.4,tcp:80",)
    assert st.ipset(rd.LOAD_BALANCER_FW).entries == ("1.2.3.4,tcp:80",)
    assert st.ipset(rd.LOAD_BALANCER_SOURCE_CIDR).entries == ("1.2.3.4,tcp:80,10.0.0.0/8",)
    chains = chain_summary(st.restore)
    assert chains["KUBE-SERVICES"] == [
        ("RETURN", "", "127.0.0.0/8"), ("KUBE-LOAD-BALANCER", "KUBE-LOAD-BALANCER", ""),
        ("KUBE-MARK-MASQ", "KUBE-CLUSTER-IP", ""), ("KUBE-NODE-PORT", "", ""),
        ("ACCEPT", "KUBE-CLUSTER-IP", ""), ("ACCEPT", "KUBE-LOAD-BALANCER", "")]
    assert chains["KUBE-PROXY-FIREWALL"] == [("KUBE-SOURCE-RANGES-FIREWALL", "KUBE-LOAD-BALANCER-FW", "")]
    assert chains["KUBE-SOURCE-RANGES-FIREWALL"] == [
        ("RETURN", "KUBE-LOAD-BALANCER-SOURCE-CIDR", ""), ("DROP", "", "")]
    # the node (100.101.102.103) is outside the range: it may not reach the VIP either (#119656)
    assert chains["KUBE-IPVS-OUT-FILTER"] == [("DROP", "", "1.2.3.4")]
    assert "-A KUBE-IPVS-OUT-FILTER -s 1.2.3.4 -m ipvs --vaddr 1.2.3.4 --vproto tcp --vport 80 -j DROP" in st.restore


def test_source_range_holding_the_node_allows_it():
    sp = SP("ns1", "svc1", "p80", "TCP", "10.20.30.41", 80, load_balancer_ips=("1.2.3.4",),
            load_balancer_source_ranges=(" 100.101.0.0/16",), endpoints=(E("10.180.0.1", 80),))
    st = render(snap(sp))
    assert st.ipset(rd.LOAD_BALANCER_SOURCE_CIDR).entries == ("1.2.3.4,tcp:80,100.101.0.0/16",)
    assert st.ipset(rd.LOAD_BALANCER_SOURCE_IP).entries == ("1.2.3.4,tcp:80,1.2.3.4",)
    assert "KUBE-IPVS-OUT-FILTER" not in chain_summary(st.restore)


def test_accept_ipvs_traffic():
    svcs = [SP("ns1", f"svc{i}", "p80", "TCP", f"10.20.30.4{i}", 80, node_port=3000 + i,
               external_ips=(f"50.60.70.8{i}",), load_balancer_ips=(f"1.2.3.{i}",),
               endpoints=(E(f"10.180.0.{i}", 80),)) for i in range(1, 3)]
    chains = chain_summary(render(snap(*svcs)).restore)
    assert chains["KUBE-SERVICES"] == [
        ("RETURN", "", "127.0.0.0/8"), ("KUBE-LOAD-BALANCER", "KUBE-LOAD-BALANCER", ""),
        ("KUBE-MARK-MASQ", "KUBE-CLUSTER-IP", ""), ("KUBE-MARK-MASQ", "KUBE-EXTERNAL-IP", ""),
        ("ACCEPT", "KUBE-EXTERNAL-IP", ""), ("ACCEPT", "KUBE-EXTERNAL-IP", ""),
        ("KUBE-NODE-PORT", "", ""), ("ACCEPT", "KUBE-CLUSTER-IP", ""), ("ACCEPT", "KUBE-LOAD-BALANCER", "")]


# --- TestExternalIPs, affinity, schedulers -------------------------------------------------

def test_external_ips_ipv4_proxier():
    sp = SP("ns1", "svc1", "p80", "UDP", "10.20.30.41", 80,
            external_ips=("50.60.70.81", "2012::51", "127.0.0.1"), endpoints=(E("10.180.0.1", 80),))
    st = render(snap(sp))
    assert set(vs_map(st)) == {"10.20.30.41:80/UDP", "50.60.70.81:80/UDP", "127.0.0.1:80/UDP"}
    assert st.ipset(rd.EXTERNAL_IP).entries == ("127.0.0.1,udp:80", "50.60.70.81,udp:80")


def test_external_ip_on_a_node_interface_is_not_bound():
    sp = SP("ns1", "svc1", "p80", "TCP", "10.20.30.41", 80, external_ips=("100.101.102.103", "50.60.70.81"),
            endpoints=(E("10.180.0.1", 80),))
    st = render(snap(sp))
    assert st.bind_addresses == ("10.20.30.41", "50.60.70.81")
    assert st.ipset(rd.IPVS_IPS).entries == ("10.20.30.41", "50.60.70.81")


def test_session_affinity_is_a_persistent_service():
    sp = SP("ns1", "svc1", "p80", "TCP", "10.20.30.41", 80, affinity_timeout=10800,
            endpoints=(E("10.180.0.1", 80),))
    v = render(snap(sp)).virtual_servers[0]
    assert (v.flags, v.timeout) == (rd.FLAG_PERSISTENT, 10800)


def test_mh_sets_the_source_hash_flag_and_annotation_overrides():
    a = SP("ns1", "a", "", "TCP", "10.20.30.41", 80)
    b = SP("ns1", "b", "", "TCP", "10.20.30.42", 80, ipvs_scheduler="lc")
    st = render(snap(a, b), scheduler="mh")
    got = {v.ip: (v.scheduler, v.flags) for v in st.virtual_servers}
    assert got == {"10.20.30.41": ("mh", rd.FLAG_SOURCE_HASH), "10.20.30.42": ("lc", 0)}


def test_real_servers_sorted_as_strings_and_terminating_fallback():
    sp = SP("ns1", "svc1", "p80", "TCP", "10.20.30.41", 80, endpoints=(
        E("10.0.1.2", 80), E("10.0.1.10", 80), E("10.0.1.3", 80, ready=False, serving=False, terminating=True)))
    assert vs_map(render(snap(sp)))["10.20.30.41:80/TCP"][3] == ["10.0.1.10:80", "10.0.1.2:80"]
    only_terminating = SP("ns1", "svc1", "p80", "TCP", "10.20.30.41", 80, endpoints=(
        E("10.0.1.3", 80, ready=False, serving=True, terminating=True),))
    assert vs_map(render(snap(only_terminating)))["10.20.30.41:80/TCP"][3] == ["10.0.1.3:80"]


def test_loop_back_holds_every_local_endpoint():
    sp = SP("ns1", "svc1", "p80", "TCP", "10.20.30.41", 80, endpoints=(
        E("10.180.0.1", 80, node=HOST), E("10.180.0.2", 80, node=HOST, ready=False, serving=False),
        E("10.180.1.1", 80, node="other")))
    assert render(snap(sp)).ipset(rd.LOOP_BACK).entries == (
        "10.180.0.1,tcp:80,10.180.0.1", "10.180.0.2,tcp:80,10.180.0.2")


# --- TestCreateAndLinkKubeChain / TestDismissLocalhostRuleExist / whole text -----------------

def test_chains_declared_exactly():
    text = render(snap()).restore
    assert [l for l in text.splitlines() if l.startswith(("*", ":"))] == [
        "*nat", ":KUBE-SERVICES - [0:0]", ":KUBE-POSTROUTING - [0:0]", ":KUBE-NODE-PORT - [0:0]",
        ":KUBE-LOAD-BALANCER - [0:0]", ":KUBE-MARK-MASQ - [0:0]",
        "*filter", ":KUBE-FORWARD - [0:0]", ":KUBE-NODE-PORT - [0:0]", ":KUBE-PROXY-FIREWALL - [0:0]",
        ":KUBE-SOURCE-RANGES-FIREWALL - [0:0]", ":KUBE-IPVS-FILTER - [0:0]", ":KUBE-IPVS-OUT-FILTER - [0:0]"]
    assert text.splitlines()[6] == "-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN"
    assert [(j.table, j.builtin, j.chain) for j in rd.JUMP_RULES][-1] == ("filter", "OUTPUT", "KUBE-IPVS-OUT-FILTER")


def test_seventeen_sets_with_types():
    sets = render(snap()).ipsets
    assert len(sets) == 17 and all(not s.entries for s in sets)
    assert {s.name: s.type for s in sets}["KUBE-NODE-PORT-SCTP-HASH"] == "hash:ip,port"
    assert all(len(s.name) <= 31 for s in sets)


GOLDEN_HOSTNAMES = """\
*nat
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-LOAD-BALANCER - [0:0]
:KUBE-MARK-MASQ - [0:0]
-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN
-A KUBE-POSTROUTING -m comment --comment "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose" -m set --match-set KUBE-LOOP-BACK dst,dst,src -j MASQUERADE
-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT
-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
COMMIT
*filter
:KUBE-FORWARD - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SOURCE-RANGES-FIREWALL - [0:0]
:KUBE-IPVS-FILTER - [0:0]
:KUBE-IPVS-OUT-FILTER - [0:0]
-A KUBE-SOURCE-RANGES-FIREWALL -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-NODE-PORT -m comment --comment "Kubernetes health check node port" -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT
-A KUBE-IPVS-FILTER -m set --match-set KUBE-LOAD-BALANCER dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j RETURN
-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT
COMMIT
"""


def test_hostnames_shape_whole_state():
    eps = tuple(E(f"10.244.{i}.2", 9376, node=f"node{i}") for i in (1, 2, 3))
    sp = SP("default", "hostnames", "", "TCP", "10.96.0.10", 80, endpoints=eps)
    st = render(ProxySnapshot("node1", "172.18.0.2", "10.244.0.0/16", (sp,)))
    assert st.restore == GOLDEN_HOSTNAMES
    assert st.virtual_servers == (VS("10.96.0.10", 80, "TCP", "rr", 0, 0, tuple(RS(e.ip, 9376) for e in eps)),)
    assert st.bind_addresses == ("10.96.0.10",)
    assert st.ipset(rd.CLUSTER_IP).entries == ("10.96.0.10,tcp:80",)
    assert st.ipset(rd.LOOP_BACK).entries == ("10.244.1.2,tcp:9376,10.244.1.2",)


def test_masquerade_all_and_no_detector_forms():
    sp = SP("ns1", "svc1", "p80", "TCP", "10.20.30.41", 80)
    assert "--match-set KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ" in render(snap(sp)).restore
    assert "--match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ" in render(snap(sp), masquerade_all=True).restore
