"""A Service's path in userspace mode from `iptables-save -c -t nat` (save form as the kernel
prints the rules rules.py writes): portal frontends with their counters, one proxy branch."""

from minikp.proxy.userspace.paths import service_paths

SAVE = """*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-NODEPORT-CONTAINER - [0:0]
:KUBE-NODEPORT-HOST - [0:0]
:KUBE-PORTALS-CONTAINER - [0:0]
:KUBE-PORTALS-HOST - [0:0]
[12:720] -A PREROUTING -m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-CONTAINER
[5:300] -A KUBE-NODEPORT-CONTAINER -p tcp -m comment --comment "default/web:http" -m tcp --dport 30080 -j REDIRECT --to-ports 36783
[1:60] -A KUBE-NODEPORT-HOST -p tcp -m comment --comment "default/web:http" -m tcp --dport 30080 -j DNAT --to-destination 172.18.0.2:36783
[7:420] -A KUBE-PORTALS-CONTAINER -d 10.96.0.20/32 -p tcp -m comment --comment "default/web:http" -m tcp --dport 80 -j REDIRECT --to-ports 36783
[2:120] -A KUBE-PORTALS-CONTAINER -d 203.0.113.7/32 -p tcp -m comment --comment "default/web:http" -m tcp --dport 80 -m physdev ! --physdev-is-in -j REDIRECT --to-ports 36783
[1:60] -A KUBE-PORTALS-CONTAINER -d 203.0.113.7/32 -p tcp -m comment --comment "default/web:http" -m tcp --dport 80 -m addrtype --dst-type LOCAL -j REDIRECT --to-ports 36783
[4:240] -A KUBE-PORTALS-CONTAINER -d 198.51.100.9/32 -p tcp -m comment --comment "default/web:http" -m tcp --dport 80 -j REDIRECT --to-ports 36783
[3:180] -A KUBE-PORTALS-CONTAINER -d 10.96.0.20/32 -p udp -m comment --comment "default/web:dns" -m udp --dport 53 -j REDIRECT --to-ports 40001
[9:540] -A KUBE-PORTALS-CONTAINER -d 10.96.0.30/32 -p tcp -m comment --comment "default/webby" -m tcp --dport 80 -j REDIRECT --to-ports 40002
[2:120] -A KUBE-PORTALS-HOST -d 10.96.0.20/32 -p tcp -m comment --comment "default/web:http" -m tcp --dport 80 -j DNAT --to-destination 172.18.0.2:36783
[0:0] -A KUBE-PORTALS-HOST -d 203.0.113.7/32 -p tcp -m comment --comment "default/web:http" -m tcp --dport 80 -m addrtype --dst-type LOCAL -j DNAT --to-destination 172.18.0.2:36783
[0:0] -A KUBE-PORTALS-HOST -d 198.51.100.9/32 -p tcp -m comment --comment "default/web:http" -m tcp --dport 80 -j DNAT --to-destination 172.18.0.2:36783
[0:0] -A KUBE-PORTALS-HOST -d 10.96.0.20/32 -p udp -m comment --comment "default/web:dns" -m udp --dport 53 -j DNAT --to-destination 172.18.0.2:40001
COMMIT
"""


def test_frontends_per_port_with_the_kernels_counters():
    http, dns = service_paths(SAVE, "default/web")
    assert (http.service, http.port, http.chain) == ("default/web", "http", "proxy :36783")
    assert [(f.kind, f.address, f.via, f.hits) for f in http.frontends] == [
        ("cluster IP", "10.96.0.20:80/tcp", "KUBE-PORTALS-CONTAINER/KUBE-PORTALS-HOST", 9),
        ("external IP", "203.0.113.7:80/tcp", "KUBE-PORTALS-CONTAINER/KUBE-PORTALS-HOST", 3),
        ("loadbalancer IP", "198.51.100.9:80/tcp", "KUBE-PORTALS-CONTAINER/KUBE-PORTALS-HOST", 4),
        ("node port", ":30080/tcp", "KUBE-NODEPORT-CONTAINER/KUBE-NODEPORT-HOST", 6)]
    assert [(b.endpoint, b.via, b.share, b.hits) for b in http.branches] == [
        ("172.18.0.2:36783", "userspace proxy", 1.0, 22)]
    assert (dns.port, dns.chain, [f.kind for f in dns.frontends]) == ("dns", "proxy :40001", ["cluster IP"])


def test_an_unnamed_port_is_named_by_its_number_and_prefixes_do_not_match():
    (webby,) = service_paths(SAVE, "default/webby")
    assert (webby.port, webby.chain, webby.hits) == ("80", "proxy :40002", 9)
    assert service_paths(SAVE, "default/we") == []
