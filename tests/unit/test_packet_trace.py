"""The pure half of minikp.proxy.iptables.packet_trace: the kernel's TRACE log prefixes and
turning them into the rules a traced packet met, in order, with packets per rule."""

from minikp.proxy.iptables.packet_trace import chain_rules, parse_prefix, rule_hits

SAVE = """*nat
:PREROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-X - [0:0]
-A PREROUTING -j KUBE-SERVICES
-A KUBE-SERVICES -d 10.96.0.5/32 -p tcp -j KUBE-SVC-X
-A KUBE-SVC-X -j DNAT --to-destination 10.244.1.2:80
COMMIT
*filter
:FORWARD DROP [0:0]
:KUBE-FORWARD - [0:0]
-A FORWARD -j KUBE-FORWARD
-A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
COMMIT
"""


def test_parse_prefix():
    assert parse_prefix("TRACE: nat:KUBE-SVC-X:rule:3 ") == ("nat", "KUBE-SVC-X", "rule", 3)
    assert parse_prefix("TRACE: filter:FORWARD:policy:2 ") == ("filter", "FORWARD", "policy", 2)
    assert parse_prefix("something else") is None


def test_rule_hits_in_order_with_packets_per_rule_and_without_the_tracing_itself():
    events = [("raw", "PREROUTING", "rule", 1), ("mangle", "PREROUTING", "policy", 1),
              ("nat", "PREROUTING", "rule", 1), ("nat", "KUBE-SERVICES", "rule", 1),
              ("nat", "KUBE-SVC-X", "rule", 1), ("filter", "FORWARD", "rule", 1),
              ("filter", "KUBE-FORWARD", "return", 2), ("filter", "FORWARD", "policy", 2),
              # the second packet: nat is not consulted again
              ("raw", "PREROUTING", "rule", 1), ("filter", "FORWARD", "rule", 1),
              ("filter", "KUBE-FORWARD", "rule", 1)]
    assert rule_hits(events, chain_rules(SAVE)) == [
        ("nat", "PREROUTING", "-A PREROUTING -j KUBE-SERVICES", 1),
        ("nat", "KUBE-SERVICES", "-A KUBE-SERVICES -d 10.96.0.5/32 -p tcp -j KUBE-SVC-X", 1),
        ("nat", "KUBE-SVC-X", "-A KUBE-SVC-X -j DNAT --to-destination 10.244.1.2:80", 1),
        ("filter", "FORWARD", "-A FORWARD -j KUBE-FORWARD", 2),
        ("filter", "FORWARD", "policy DROP", 1),
        ("filter", "KUBE-FORWARD",
         "-A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", 1),
    ]
