"""kube-proxy's options rendered as its proxier.go writes them (variants of the default
golden tests in test_iptables_render.py, which stay unchanged)."""

from minikp.proxy.iptables import names
from minikp.proxy.iptables.render import render
from minikp.proxy.options import ProxyOptions
from minikp.proxy.snapshot import Endpoint as E, ProxySnapshot, ServicePortInfo as SP

NP = SP("ns1", "svc1", "p80", "TCP", "172.30.0.41", 80, node_port=3001,
        endpoints=(E("10.180.0.1", 80, node="test-hostname"),))
TAIL = ('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be '
        'the last rule in this chain"')


def lines(**opts):
    snap = ProxySnapshot("test-hostname", "192.168.0.2", "10.0.0.0/8", (NP,))
    return render(snap, nfacct=True, options=ProxyOptions(**opts)).splitlines()


def test_defaults_render_as_before():
    assert lines() == render(ProxySnapshot("test-hostname", "192.168.0.2", "10.0.0.0/8", (NP,)),
                             nfacct=True).splitlines()


def test_masquerade_all_drops_the_local_detector_match():
    svc = names.svc_chain(NP)
    rule = (f'-A {svc} -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 '
            "--dport 80 {}-j KUBE-MARK-MASQ")
    assert rule.format("! -s 10.0.0.0/8 ") in lines()
    assert rule.format("") in lines(masquerade_all=True)


def test_cluster_cidr_option_replaces_the_pod_subnet():
    assert any("! -s 10.96.0.0/12 -j KUBE-MARK-MASQ" in l for l in lines(cluster_cidr="10.96.0.0/12"))


def test_localhost_node_ports_off():
    out = lines(localhost_node_ports=False)
    assert f"{TAIL} -m addrtype --dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS" in out
    assert not any("KUBE-FIREWALL" in l or "localhost_nps_accepted_pkts" in l for l in out)
    assert f"{TAIL} -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS" in lines()


def test_node_port_addresses_one_tail_rule_per_matching_node_ip():
    assert [l for l in lines(node_port_addresses=("127.0.0.0/8", "192.168.0.0/24")) if l.startswith(TAIL)] == [
        f"{TAIL} -d 127.0.0.1 -j KUBE-NODEPORTS", f"{TAIL} -d 192.168.0.2 -j KUBE-NODEPORTS"]
    assert [l for l in lines(node_port_addresses=("primary",), localhost_node_ports=False)
            if l.startswith(TAIL)] == [f"{TAIL} -d 192.168.0.2 -j KUBE-NODEPORTS"]
    assert [l for l in lines(node_port_addresses=("127.0.0.0/8",), localhost_node_ports=False)
            if l.startswith(TAIL)] == []


def test_nftables_mode_takes_masquerade_all_and_node_port_addresses():
    from types import SimpleNamespace

    from minikp.proxy.nftables.sync import NftablesProxier

    snap = ProxySnapshot("test-hostname", "192.168.0.2", "10.0.0.0/8", (NP,))
    config = SimpleNamespace(service_subnet="10.96.0.0/16", kubernetes_version="1.33",
                             proxy_options=ProxyOptions(masquerade_all=True,
                                                        node_port_addresses=("127.0.0.0/8", "192.168.0.0/24")))
    o = NftablesProxier.from_config("/nonexistent", config).options(snap)
    assert o.masquerade_all and o.nodeport_ips == ("192.168.0.2",)  # no localhost NodePorts in nftables
    other = SimpleNamespace(service_subnet="", proxy_options=ProxyOptions(node_port_addresses=("172.18.0.0/16",)))
    assert NftablesProxier.from_config("/nonexistent", other).options(snap).nodeport_ips == ()
    plain = NftablesProxier.from_config("/nonexistent", SimpleNamespace(service_subnet="10.96.0.0/16")).options(snap)
    assert not plain.masquerade_all and plain.nodeport_ips == ("192.168.0.2",)  # "primary" by default


def test_ipvs_mode_takes_masquerade_all():
    from types import SimpleNamespace

    from minikp.proxy.ipvs.proxier import IpvsProxier

    config = SimpleNamespace(iptables_backend="legacy", proxy_options=ProxyOptions(masquerade_all=True))
    assert IpvsProxier.from_config("/nonexistent", config).masquerade_all
    assert not IpvsProxier.from_config("/nonexistent", SimpleNamespace(iptables_backend="legacy")).masquerade_all
