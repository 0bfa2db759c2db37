"""The UDP conntrack cleanup policies by release (pure: no kernel)."""

from dataclasses import replace

import pytest

from minikp.errors import InputError
from minikp.proxy import conntrack as ct
from minikp.proxy.release import parse_release, release_of
from minikp.proxy.snapshot import Endpoint as E, ProxySnapshot, ServicePortInfo as SP

DNS = SP("ns", "dns", "dns", "UDP", "10.96.0.10", 53, node_port=30053, external_ips=("192.168.9.9",),
         endpoints=(E("10.244.1.2", 53), E("10.244.2.3", 53)))
WEB = SP("ns", "web", "", "TCP", "10.96.0.20", 80, endpoints=(E("10.244.1.4", 80),))

LISTING = """\
udp      17 29 src=10.244.1.9 dst=10.96.0.10 sport=4000 dport=53 [UNREPLIED] src=10.244.9.9 dst=10.244.1.9 sport=53 dport=4000 mark=0 use=1
udp      17 29 src=10.244.1.9 dst=10.96.0.10 sport=4001 dport=53 src=10.244.1.2 dst=10.244.1.9 sport=53 dport=4001 mark=0 use=1
udp      17 29 src=10.244.1.9 dst=10.96.0.10 sport=4002 dport=54 [UNREPLIED] src=10.244.9.9 dst=10.244.1.9 sport=54 dport=4002 mark=0 use=1
udp      17 29 src=172.18.0.9 dst=172.18.0.2 sport=4003 dport=30053 [UNREPLIED] src=10.244.9.9 dst=172.18.0.2 sport=53 dport=4003 mark=0 use=1
tcp      6 431999 ESTABLISHED src=10.244.1.9 dst=10.96.0.20 sport=5000 dport=80 src=10.244.9.9 dst=10.244.1.9 sport=80 dport=5000 [ASSURED] mark=0 use=1
"""


def snap(*svcs):
    return ProxySnapshot("node-1", "172.18.0.2", "10.244.0.0/16", tuple(svcs))


def test_parse_flows_reads_original_destination_and_reply_source():
    flows = ct.parse_flows(LISTING + "garbage line\n")
    assert len(flows) == 5
    assert flows[0] == ct.Flow("udp", "10.244.1.9", "10.96.0.10", 53, "10.244.9.9")
    assert flows[4].protocol == "tcp"


def test_reconciler_deletes_flows_whose_reply_source_is_not_serving():
    cmds = ct.stale_flow_commands(ct.parse_flows(LISTING), snap(DNS, WEB))
    assert cmds == [
        ["conntrack", "-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--dport", "53", "--reply-src", "10.244.9.9"],
        ["conntrack", "-D", "-p", "udp", "--dport", "30053", "--reply-src", "10.244.9.9"],
    ]  # the serving endpoint's flow, the other port's flow and TCP are left alone


def test_reconciler_skips_a_service_port_without_serving_endpoints_139628():
    idle = replace(DNS, endpoints=(E("10.244.1.2", 53, ready=False, serving=False, terminating=True),))
    assert ct.stale_flow_commands(ct.parse_flows(LISTING), snap(idle)) == []


def test_cleanup_required_only_when_udp_endpoints_change():
    assert ct.cleanup_required(None, snap(DNS))
    assert not ct.cleanup_required(snap(DNS, WEB), snap(DNS, replace(WEB, endpoints=())))
    assert ct.cleanup_required(snap(DNS), snap(replace(DNS, endpoints=DNS.endpoints[:1])))
    assert ct.cleanup_required(snap(DNS), snap())
    assert not ct.cleanup_required(snap(DNS), snap(DNS))


def test_release_defaults_to_1_33_and_parses_kubernetes_spellings():
    class Cfg:
        pass
    assert release_of(Cfg()) == (1, 33)
    cfg = Cfg()
    cfg.kubernetes_version = "v1.31.4"
    assert release_of(cfg) == (1, 31)
    assert parse_release("1.28") == (1, 28)
    with pytest.raises(InputError):
        parse_release("latest")


def test_narrowed_to_the_changed_ports_gives_the_same_events_and_need():
    dns2 = replace(DNS, endpoints=DNS.endpoints[:1])
    gone = SP("ns", "old", "", "UDP", "10.96.0.30", 53, endpoints=(E("10.244.1.7", 53),))
    prev, cur = snap(DNS, WEB, gone), snap(dns2, WEB)
    changed = [(DNS, dns2), (gone, None)]
    p, c = ct.narrowed(prev, cur, changed)
    assert c.services == (dns2,) and p.services == (DNS, gone)
    assert ct.commands(p, c) == ct.commands(prev, cur) != []
    assert ct.cleanup_required(p, c) and not ct.cleanup_required(*ct.narrowed(prev, snap(DNS, WEB, gone), []))
    assert ct.narrowed(None, cur, changed) == (None, cur) and ct.narrowed(prev, cur, None) == (prev, cur)
