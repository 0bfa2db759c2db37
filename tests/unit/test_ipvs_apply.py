"""The pure half of ipvs mode's kernel edge: what a sync changes (syncService, syncEndpoint,
cleanLegacyService, syncIPSetEntries, graceful termination), ipset entry encoding both ways,
and the sysctls NewProxier sets."""

from types import SimpleNamespace


from minikp.proxy.ipvs.apply import KernelRS, diff_entries, diff_real_servers, drained, entry_string
from minikp.proxy.ipvs.proxier import sysctls
from minikp.proxy.ipvs.render import RealServer as RS


def test_desired_replace_yields_only_the_change():
    from minikp.proxy.ipvs.desired import Desired
    from minikp.proxy.ipvs.render import port_state
    from minikp.proxy.snapshot import Endpoint as E, ServicePortInfo as SP
    a = SP("ns", "a", "", "TCP", "10.96.0.1", 80, external_ips=("198.18.0.1",),
           endpoints=(E("10.244.1.2", 80, node="n1"),))
    b = SP("ns", "b", "", "TCP", "10.96.0.2", 80, external_ips=("198.18.0.1",))  # shares the external IP
    args = ("n1", "192.168.0.2", ("192.168.0.2",), "rr")
    d = Desired()
    first = d.replace(("a",), port_state(a, *args))
    d.replace(("b",), port_state(b, *args))
    assert first.bind_added == {"10.96.0.1", "198.18.0.1"}
    assert ("KUBE-LOOP-BACK", "10.244.1.2,tcp:80,10.244.1.2") in first.entries_added
    a2 = SP("ns", "a", "", "TCP", "10.96.0.1", 80, external_ips=("198.18.0.1",),
            endpoints=(E("10.244.1.3", 80, node="n2"),))
    delta = d.replace(("a",), port_state(a2, *args))
    assert delta.vs_keys == {("10.96.0.1", "TCP", 80), ("198.18.0.1", "TCP", 80)}
    assert delta.entries_removed == {("KUBE-LOOP-BACK", "10.244.1.2,tcp:80,10.244.1.2")}
    assert delta.entries_added == set() and not delta.bind_added and not delta.bind_removed
    gone = d.replace(("a",), None)
    assert gone.bind_removed == {"10.96.0.1"}  # 198.18.0.1 is still b's
    assert d.non_empty()["KUBE-EXTERNAL-IP"] and not d.non_empty()["KUBE-LOOP-BACK"]
    assert d.vs[("198.18.0.1", "TCP", 80)].service == "ns/b"


def test_real_servers():
    cur = {"10.1.0.1:80": KernelRS("10.1.0.1", 80, 1), "10.1.0.2:80": KernelRS("10.1.0.2", 80, 0, 1, 0),
           "10.1.0.3:80": KernelRS("10.1.0.3", 80, 5)}
    want = (RS("10.1.0.2", 80), RS("10.1.0.3", 80), RS("10.1.0.4", 80))
    add, back, reset, leaving = diff_real_servers(cur, want, terminating={"10.1.0.2:80"}, initial=False)
    assert add == [RS("10.1.0.4", 80)] and back == [RS("10.1.0.2", 80)] and reset == []
    assert [str(r) for r in leaving] == ["10.1.0.1:80"]
    # the first sync after a restart resets stray weights (Test_syncEndpoint_updateWeightsOnRestart)
    assert diff_real_servers(cur, want, set(), initial=True)[2] == [RS("10.1.0.2", 80), RS("10.1.0.3", 80)]
    # a real server already terminating is not "leaving" again
    assert diff_real_servers(cur, (), {"10.1.0.2:80"}, False)[3] == [cur["10.1.0.1:80"], cur["10.1.0.3:80"]]


def test_drained():
    assert drained(KernelRS("a", 1, 0, 0, 0), "TCP") and not drained(KernelRS("a", 1, 0, 0, 2), "TCP")
    assert drained(KernelRS("a", 1, 0, 5, 5), "UDP") and drained(KernelRS("a", 1, 0, 5, 5), "SCTP")


def test_entries():
    assert diff_entries({"a", "b"}, ("b", "c")) == (["c"], ["a"])


def _nla(**attrs):
    return SimpleNamespace(get_attr=lambda k: attrs.get(k))


def test_entry_strings_from_kernel_members():
    ip = lambda a: _nla(IPSET_ATTR_IPADDR_IPV4=a)  # noqa: E731
    assert entry_string("hash:ip,port,ip", _nla(IPSET_ATTR_IP_FROM=ip("10.0.0.1"), IPSET_ATTR_PROTO=17,
                                                 IPSET_ATTR_PORT_FROM=53, IPSET_ATTR_IP2=ip("10.0.0.1"))) \
        == "10.0.0.1,udp:53,10.0.0.1"
    assert entry_string("hash:ip,port,net", _nla(IPSET_ATTR_IP_FROM=ip("1.2.3.4"), IPSET_ATTR_PROTO=132,
                                                 IPSET_ATTR_PORT_FROM=80, IPSET_ATTR_IP2=ip("10.0.0.0"),
                                                 IPSET_ATTR_CIDR2=8)) == "1.2.3.4,sctp:80,10.0.0.0/8"
    assert entry_string("bitmap:port", _nla(IPSET_ATTR_PORT_FROM=3001)) == "3001"


def test_sysctls_follow_the_kernel_version():
    assert sysctls(release=(6, 1)) == {"net.ipv4.vs.conntrack": 1, "net.ipv4.vs.expire_nodest_conn": 1,
                                       "net.ipv4.vs.expire_quiescent_template": 1, "net.ipv4.ip_forward": 1}
    assert sysctls(release=(5, 4))["net.ipv4.vs.conn_reuse_mode"] == 0  # #93297
    assert "net.ipv4.vs.conn_reuse_mode" not in sysctls(release=(3, 10))
    assert sysctls(strict_arp=True, release=(6, 1))["net.ipv4.conf.all.arp_announce"] == 2


def test_connection_table_parsing():
    from minikp.proxy.ipvs.proxier import parse_connections
    text = ("Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n"
            "TCP 0AF4010A 9C40 0A60001E 0050 0AF40103 2490 TIME_WAIT        119\n"
            "UDP 0AF4010A 1F90 0A600025 14E9 0AF40104 2490 UDP              299\n")
    assert parse_connections(text) == {("TCP", "10.244.1.10:40000", "10.96.0.30:80", "10.244.1.3:9360"),
                                       ("UDP", "10.244.1.10:8080", "10.96.0.37:5353", "10.244.1.4:9360")}


def test_ipvs_proxier_implements_the_protocol_and_rebuilds_from_its_settings():
    import inspect

    from minikp.proxy import base
    from minikp.proxy.ipvs.proxier import IpvsProxier
    from minikp.scenario.model import ClusterConfig
    members = {n for n in vars(base.Proxier) if not n.startswith("_")} | set(base.Proxier.__annotations__)
    assert not {m for m in members if not hasattr(IpvsProxier, m)}
    assert inspect.ismethod(IpvsProxier.from_config) and IpvsProxier.formats[0] == "ipvs"
    # building one touches no kernel: a namespace that does not exist is fine until sync()
    p = IpvsProxier.from_config("/nonexistent", ClusterConfig(ipvs_scheduler="lc", iptables_backend="legacy"))
    assert p.settings() == {"iptables_backend": "legacy", "ipvs_scheduler": "lc"}
    again = IpvsProxier.from_config("/nonexistent", ClusterConfig(**p.settings()))
    assert again.settings() == p.settings() and again.describe() == "ipvs (scheduler lc, iptables legacy)"
    assert not again.flushed()  # nothing applied yet
    again.close()
