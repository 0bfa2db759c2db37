"""The userspace proxier's iptables rules against kube-proxy 1.25's own argument lists
(pkg/proxy/userspace/proxier.go: iptablesInit, iptablesCommonPortalArgs,
iptablesContainerPortalArgs, iptablesHostPortalArgs, iptablesHostNodePortArgs,
iptablesNonLocalNodePortArgs, openPortal/openOnePortal/openNodePort). Upstream's
proxier_test.go states no rule text (it runs a fake iptables), so the expected lists below are
written out from those functions by hand, argument by argument."""

from minikp.proxy.snapshot import Endpoint as E, ServicePortInfo as SP
from minikp.proxy.userspace import rules

HOSTNAMES = SP("default", "hostnames", "default", "TCP", "10.0.1.175", 80,
               endpoints=(E("10.244.0.5", 9376),))
HOST_IP = "10.240.115.247"


def test_jumps_are_iptables_init():
    assert [(j.table, j.builtin, j.position, list(j.args)) for j in rules.JUMPS] == [
        ("nat", "PREROUTING", "-I", ["-m", "comment", "--comment",
                                     "handle ClusterIPs; NOTE: this must be before the NodePort rules",
                                     "-j", "KUBE-PORTALS-CONTAINER"]),
        ("nat", "OUTPUT", "-I", ["-m", "comment", "--comment",
                                 "handle ClusterIPs; NOTE: this must be before the NodePort rules",
                                 "-j", "KUBE-PORTALS-HOST"]),
        ("nat", "PREROUTING", "-A", ["-m", "addrtype", "--dst-type", "LOCAL", "-m", "comment", "--comment",
                                     "handle service NodePorts; NOTE: this must be the last rule in the chain",
                                     "-j", "KUBE-NODEPORT-CONTAINER"]),
        ("nat", "OUTPUT", "-A", ["-m", "addrtype", "--dst-type", "LOCAL", "-m", "comment", "--comment",
                                 "handle service NodePorts; NOTE: this must be the last rule in the chain",
                                 "-j", "KUBE-NODEPORT-HOST"]),
        ("filter", "INPUT", "-I", ["-m", "comment", "--comment", "Ensure that non-local NodePort traffic can flow",
                                   "-j", "KUBE-NODEPORT-NON-LOCAL"]),
    ]


def test_cluster_ip_portal_redirects_containers_and_dnats_the_host():
    got = rules.portal_rules(HOSTNAMES, 48577, HOST_IP)
    assert got == [
        rules.Rule("nat", "KUBE-PORTALS-CONTAINER", (
            "-m", "comment", "--comment", "default/hostnames:default", "-p", "tcp", "-m", "tcp",
            "--dport", "80", "-d", "10.0.1.175/32", "-j", "REDIRECT", "--to-ports", "48577")),
        rules.Rule("nat", "KUBE-PORTALS-HOST", (
            "-m", "comment", "--comment", "default/hostnames:default", "-p", "tcp", "-m", "tcp",
            "--dport", "80", "-d", "10.0.1.175/32", "-j", "DNAT", "--to-destination", "10.240.115.247:48577")),
    ]


def test_bound_to_one_ip_everything_is_dnat_to_it():
    got = rules.portal_rules(HOSTNAMES, 40000, HOST_IP, listen_ip="192.168.1.5")
    assert [r.args[-4:] for r in got] == [("-j", "DNAT", "--to-destination", "192.168.1.5:40000")] * 2


def test_unnamed_udp_port_comment_and_match():
    dns = SP("kube-system", "kube-dns", "", "UDP", "10.96.0.10", 53)
    (container, host) = rules.portal_rules(dns, 33333, "192.168.0.2")
    assert container.args[:10] == ("-m", "comment", "--comment", "kube-system/kube-dns",
                                   "-p", "udp", "-m", "udp", "--dport", "53")


def test_external_ip_gets_physdev_local_and_host_rules():
    sp = SP("ns", "web", "http", "TCP", "10.96.0.20", 80, external_ips=("203.0.113.7",))
    got = rules.portal_rules(sp, 41000, HOST_IP)
    head = ("-m", "comment", "--comment", "ns/web:http", "-p", "tcp", "-m", "tcp", "--dport", "80",
            "-d", "203.0.113.7/32")
    assert got[2:] == [
        rules.Rule("nat", "KUBE-PORTALS-CONTAINER",
                   head + ("-m", "physdev", "!", "--physdev-is-in", "-j", "REDIRECT", "--to-ports", "41000")),
        rules.Rule("nat", "KUBE-PORTALS-CONTAINER",
                   head + ("-m", "addrtype", "--dst-type", "LOCAL", "-j", "REDIRECT", "--to-ports", "41000")),
        rules.Rule("nat", "KUBE-PORTALS-HOST",
                   head + ("-m", "addrtype", "--dst-type", "LOCAL", "-j", "DNAT", "--to-destination",
                           "10.240.115.247:41000")),
    ]


def test_load_balancer_ingress_is_a_plain_portal():
    sp = SP("ns", "lb", "", "TCP", "10.96.0.21", 80, load_balancer_ips=("198.51.100.9",))
    got = rules.portal_rules(sp, 41001, HOST_IP)
    assert [(r.chain, r.args[10:12]) for r in got] == [
        ("KUBE-PORTALS-CONTAINER", ("-d", "10.96.0.21/32")), ("KUBE-PORTALS-HOST", ("-d", "10.96.0.21/32")),
        ("KUBE-PORTALS-CONTAINER", ("-d", "198.51.100.9/32")), ("KUBE-PORTALS-HOST", ("-d", "198.51.100.9/32"))]


def test_node_port_rules_and_the_non_local_accept_on_the_proxy_port():
    sp = SP("default", "web", "", "TCP", "10.96.0.30", 80, node_port=30080)
    got = rules.portal_rules(sp, 42000, "192.168.0.2")[2:]
    head = ("-m", "comment", "--comment", "default/web", "-p", "tcp", "-m", "tcp")
    assert got == [
        rules.Rule("nat", "KUBE-NODEPORT-CONTAINER", head + ("--dport", "30080", "-j", "REDIRECT", "--to-ports", "42000")),
        rules.Rule("nat", "KUBE-NODEPORT-HOST", head + ("--dport", "30080", "-j", "DNAT", "--to-destination",
                                                         "192.168.0.2:42000")),
        rules.Rule("filter", "KUBE-NODEPORT-NON-LOCAL", head + ("--dport", "42000", "-m", "state", "--state", "NEW",
                                                                 "-j", "ACCEPT")),
    ]


def test_render_replaces_the_five_chains_in_one_restore():
    sp = SP("default", "web", "", "TCP", "10.96.0.30", 80, node_port=30080)
    text = rules.render([(HOSTNAMES, 48577), (sp, 42000)], "192.168.0.2")
    assert text == (
        "*nat\n"
        ":KUBE-PORTALS-CONTAINER - [0:0]\n"
        ":KUBE-PORTALS-HOST - [0:0]\n"
        ":KUBE-NODEPORT-CONTAINER - [0:0]\n"
        ":KUBE-NODEPORT-HOST - [0:0]\n"
        '-A KUBE-PORTALS-CONTAINER -m comment --comment "default/hostnames:default" -p tcp -m tcp --dport 80 -d 10.0.1.175/32 -j REDIRECT --to-ports 48577\n'
        '-A KUBE-PORTALS-HOST -m comment --comment "default/hostnames:default" -p tcp -m tcp --dport 80 -d 10.0.1.175/32 -j DNAT --to-destination 192.168.0.2:48577\n'
        '-A KUBE-PORTALS-CONTAINER -m comment --comment "default/web" -p tcp -m tcp --dport 80 -d 10.96.0.30/32 -j REDIRECT --to-ports 42000\n'
        '-A KUBE-PORTALS-HOST -m comment --comment "default/web" -p tcp -m tcp --dport 80 -d 10.96.0.30/32 -j DNAT --to-destination 192.168.0.2:42000\n'
        '-A KUBE-NODEPORT-CONTAINER -m comment --comment "default/web" -p tcp -m tcp --dport 30080 -j REDIRECT --to-ports 42000\n'
        '-A KUBE-NODEPORT-HOST -m comment --comment "default/web" -p tcp -m tcp --dport 30080 -j DNAT --to-destination 192.168.0.2:42000\n'
        "COMMIT\n"
        "*filter\n"
        ":KUBE-NODEPORT-NON-LOCAL - [0:0]\n"
        '-A KUBE-NODEPORT-NON-LOCAL -m comment --comment "default/web" -p tcp -m tcp --dport 42000 -m state --state NEW -j ACCEPT\n'
        "COMMIT\n")


def test_render_of_nothing_still_empties_the_chains():
    assert rules.render([], "192.168.0.2").count(" - [0:0]") == 5
    assert "-A " not in rules.render([], "192.168.0.2")
