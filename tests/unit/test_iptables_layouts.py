"""kube-proxy's iptables layouts by release (pure): the change table, and the restore input
of the old layouts for the hostnames Service of the Kubernetes debug-service docs (ClusterIP
10.0.1.175:80 -> 9376, endpoints 10.244.1.7, 10.244.2.3, 10.244.3.6). The chain hashes and
probabilities are the ones those docs (and ../shared/notes/kube-proxy-history.md §4, checked by
an iptables-restore/-save round trip) print; tests/kernel/test_release_layouts.py loads them."""

import pytest

from minikp.proxy.iptables import render as rd, render_legacy as legacy
from minikp.proxy.iptables.layout import CHANGES, Layout, changed_in, layout_of
from minikp.proxy.options import ProxyOptions
from minikp.proxy.snapshot import Endpoint as E, ProxySnapshot, ServicePortInfo as SP

EPS = tuple(E(ip, 9376) for ip in ("10.244.3.6", "10.244.1.7", "10.244.2.3"))
HOSTNAMES = SP("default", "hostnames", "", "TCP", "10.0.1.175", 80, endpoints=EPS)
NAMED = SP("default", "hostnames", "http", "TCP", "10.0.1.175", 80, endpoints=EPS)


def snap(*svcs):
    return ProxySnapshot("node-1", "172.18.0.2", "10.244.0.0/16", tuple(svcs))


def nat_rules(text, prefix="-A KUBE-S"):
    nat = text[text.index("*nat"):]
    return [line for line in nat.splitlines() if line.startswith(prefix)]


def test_the_change_table_is_ordered_and_names_only_layout_fields():
    releases = [r for r, _ in CHANGES]
    assert releases == sorted(releases) and releases[0] == (1, 1)
    fields = {f for _, change in CHANGES for f in change}
    assert fields <= set(Layout.__dataclass_fields__)


def test_layout_of_folds_every_change_up_to_the_release():
    assert layout_of((1, 16)).probability_format == "%0.5f"
    assert layout_of((1, 17)).probability_format == "%0.10f"
    assert layout_of((1, 1)).inline_mark and not layout_of((1, 2)).inline_mark
    assert layout_of((1, 18)).postrouting == "single" and layout_of((1, 19)).postrouting == "xor"
    assert layout_of((1, 21)).cluster_ip_masq == "services" and layout_of((1, 22)).cluster_ip_masq == "svc"
    assert not layout_of((1, 23)).ext_chains and layout_of((1, 24)).ext_chains
    assert layout_of((1, 33)).nfacct and not layout_of((1, 30)).nfacct
    assert changed_in("colon_for_unnamed_port") == [((1, 19), False)]


@pytest.mark.parametrize("release, svc, seps", [
    ((1, 1), "NWV5X2332I4OT4T3", ("WNBA2IHDGP2BOBGZ", "X3P2623AGDH6CDF3", "57KPRZ3JQVENLNBR")),
    ((1, 16), "NWV5X2332I4OT4T3", ("WNBA2IHDGP2BOBGZ", "X3P2623AGDH6CDF3", "57KPRZ3JQVENLNBR")),
    ((1, 19), "YN5D6RYVEVZOH44Q", ("IQV2T7WZFFJMSXMA", "VVQPNQCRNAQTZLWG", "PR3FG6SU5SIGDY7O")),
])
def test_an_unnamed_port_hashes_with_the_colon_until_1_18(release, svc, seps):
    layout = layout_of(release)
    assert legacy.svc_chain(HOSTNAMES, layout) == "KUBE-SVC-" + svc
    ordered = legacy.endpoints(HOSTNAMES, layout)  # 10.244.1.7, .2.3, .3.6
    assert tuple(legacy.sep_chain(HOSTNAMES, e, layout)[9:] for e in ordered) == seps


def test_a_named_port_hashes_the_same_in_every_era():
    names = {legacy.svc_chain(NAMED, layout_of((1, m))) for m in (1, 10, 18, 19, 23)}
    assert names == {"KUBE-SVC-AC2ON6IKLZPGXVMV"}
    assert legacy.sep_chain(NAMED, EPS[0], layout_of((1, 5))) == "KUBE-SEP-5GGRLVM2FN4TZVAL"


def test_endpoint_order_is_the_ip_string_before_endpoint_slices():
    sp = SP("default", "x", "", "TCP", "10.0.0.1", 80, endpoints=(E("10.244.1.1", 80), E("10.244.1.10", 80)))
    assert [e.ip for e in legacy.endpoints(sp, layout_of((1, 18)))] == ["10.244.1.1", "10.244.1.10"]
    assert [e.ip for e in legacy.endpoints(sp, layout_of((1, 19)))] == ["10.244.1.10", "10.244.1.1"]


GOLDEN_1_1 = """\
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-SVC-NWV5X2332I4OT4T3 - [0:0]
:KUBE-SEP-WNBA2IHDGP2BOBGZ - [0:0]
:KUBE-SEP-X3P2623AGDH6CDF3 - [0:0]
:KUBE-SEP-57KPRZ3JQVENLNBR - [0:0]
-A KUBE-SERVICES -m comment --comment "default/hostnames: cluster IP" -m tcp -p tcp -d 10.0.1.175/32 --dport 80 -j KUBE-SVC-NWV5X2332I4OT4T3
-A KUBE-SVC-NWV5X2332I4OT4T3 -m comment --comment default/hostnames: -m statistic --mode random --probability 0.33333 -j KUBE-SEP-WNBA2IHDGP2BOBGZ
-A KUBE-SVC-NWV5X2332I4OT4T3 -m comment --comment default/hostnames: -m statistic --mode random --probability 0.50000 -j KUBE-SEP-X3P2623AGDH6CDF3
-A KUBE-SVC-NWV5X2332I4OT4T3 -m comment --comment default/hostnames: -j KUBE-SEP-57KPRZ3JQVENLNBR
-A KUBE-SEP-WNBA2IHDGP2BOBGZ -m comment --comment default/hostnames: -s 10.244.1.7/32 -j MARK --set-xmark 0x4d415351/0xffffffff
-A KUBE-SEP-WNBA2IHDGP2BOBGZ -m comment --comment default/hostnames: -m tcp -p tcp -j DNAT --to-destination 10.244.1.7:9376
-A KUBE-SEP-X3P2623AGDH6CDF3 -m comment --comment default/hostnames: -s 10.244.2.3/32 -j MARK --set-xmark 0x4d415351/0xffffffff
-A KUBE-SEP-X3P2623AGDH6CDF3 -m comment --comment default/hostnames: -m tcp -p tcp -j DNAT --to-destination 10.244.2.3:9376
-A KUBE-SEP-57KPRZ3JQVENLNBR -m comment --comment default/hostnames: -s 10.244.3.6/32 -j MARK --set-xmark 0x4d415351/0xffffffff
-A KUBE-SEP-57KPRZ3JQVENLNBR -m comment --comment default/hostnames: -m tcp -p tcp -j DNAT --to-destination 10.244.3.6:9376
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
COMMIT
"""


def test_1_1_golden_nat_only_inline_mark_five_digit_probabilities():
    assert legacy.render(snap(HOSTNAMES), layout_of((1, 1))) == GOLDEN_1_1


GOLDEN_1_16_FILTER = """\
*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x00004000/0x00004000 -j ACCEPT
-A KUBE-FORWARD -s 10.244.0.0/16 -m comment --comment "kubernetes forwarding conntrack pod source rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack pod destination rule" -d 10.244.0.0/16 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
"""


def test_1_16_golden():
    text = legacy.render(snap(HOSTNAMES), layout_of((1, 16)))
    assert text.startswith(GOLDEN_1_16_FILTER)
    assert nat_rules(text, "-A KUBE-") == [
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -m mark '
        "--mark 0x00004000/0x00004000 -j MASQUERADE --random-fully",
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x00004000/0x00004000",
        '-A KUBE-SERVICES -m comment --comment "default/hostnames: cluster IP" -m tcp -p tcp -d 10.0.1.175/32 '
        "--dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ",
        '-A KUBE-SERVICES -m comment --comment "default/hostnames: cluster IP" -m tcp -p tcp -d 10.0.1.175/32 '
        "--dport 80 -j KUBE-SVC-NWV5X2332I4OT4T3",
        "-A KUBE-SVC-NWV5X2332I4OT4T3 -m comment --comment default/hostnames: -m statistic --mode random "
        "--probability 0.33333 -j KUBE-SEP-WNBA2IHDGP2BOBGZ",
        "-A KUBE-SVC-NWV5X2332I4OT4T3 -m comment --comment default/hostnames: -m statistic --mode random "
        "--probability 0.50000 -j KUBE-SEP-X3P2623AGDH6CDF3",
        "-A KUBE-SVC-NWV5X2332I4OT4T3 -m comment --comment default/hostnames: -j KUBE-SEP-57KPRZ3JQVENLNBR",
        "-A KUBE-SEP-WNBA2IHDGP2BOBGZ -m comment --comment default/hostnames: -s 10.244.1.7/32 -j KUBE-MARK-MASQ",
        "-A KUBE-SEP-WNBA2IHDGP2BOBGZ -m comment --comment default/hostnames: -m tcp -p tcp -j DNAT "
        "--to-destination 10.244.1.7:9376",
        "-A KUBE-SEP-X3P2623AGDH6CDF3 -m comment --comment default/hostnames: -s 10.244.2.3/32 -j KUBE-MARK-MASQ",
        "-A KUBE-SEP-X3P2623AGDH6CDF3 -m comment --comment default/hostnames: -m tcp -p tcp -j DNAT "
        "--to-destination 10.244.2.3:9376",
        "-A KUBE-SEP-57KPRZ3JQVENLNBR -m comment --comment default/hostnames: -s 10.244.3.6/32 -j KUBE-MARK-MASQ",
        "-A KUBE-SEP-57KPRZ3JQVENLNBR -m comment --comment default/hostnames: -m tcp -p tcp -j DNAT "
        "--to-destination 10.244.3.6:9376",
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule '
        'in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
    ]


def test_1_19_postrouting_xor_and_colonless_names():
    text = legacy.render(snap(HOSTNAMES), layout_of((1, 19)))
    assert nat_rules(text, "-A KUBE-POSTROUTING") + nat_rules(text, "-A KUBE-MARK-MASQ") == [
        "-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x00004000",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE '
        "--random-fully",
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000"]
    assert "--probability 0.3333333333 -j KUBE-SEP-IQV2T7WZFFJMSXMA" in text
    assert '"kubernetes forwarding conntrack pod source rule" -m conntrack' in text and "-s 10.244.0.0/16 -m comment" not in text


def test_the_masquerade_rule_moves_into_the_svc_chain_in_1_22_and_loses_slash32_in_1_23():
    sp = SP("default", "hostnames", "", "TCP", "10.0.1.175", 80, node_port=30080, endpoints=EPS)
    for release, where, ip in (((1, 21), "KUBE-SERVICES", "10.0.1.175/32"),
                               ((1, 22), "KUBE-SVC-YN5D6RYVEVZOH44Q", "10.0.1.175/32"),
                               ((1, 23), "KUBE-SVC-YN5D6RYVEVZOH44Q", "10.0.1.175")):
        text = legacy.render(snap(sp), layout_of(release))
        masq = [line for line in text.splitlines() if "! -s 10.244.0.0/16 -j KUBE-MARK-MASQ" in line]
        assert masq == [f'-A {where} -m comment --comment "default/hostnames cluster IP" -m tcp -p tcp '
                        f"-d {ip} --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ"], release
        np_masq = "-m comment --comment default/hostnames -m tcp -p tcp --dport 30080 -j KUBE-MARK-MASQ"
        assert (f"-A KUBE-NODEPORTS {np_masq}" in text) == (release < (1, 22))
        assert (f"-A KUBE-SVC-YN5D6RYVEVZOH44Q {np_masq}" in text) == (release >= (1, 22))


def test_a_service_without_endpoints_by_era():
    empty = SP("default", "empty", "", "TCP", "10.0.0.9", 80, node_port=30081)
    one = legacy.render(snap(empty), layout_of((1, 1)))
    assert "KUBE-SVC-" in one and "REJECT" not in one  # empty SVC chain: packets fall through
    nine = legacy.render(snap(empty), layout_of((1, 9)))
    assert ":KUBE-SVC-" in nine and '"default/empty: has no endpoints" -m tcp -p tcp -d 10.0.0.9/32' in nine
    assert '-A KUBE-SERVICES -m comment --comment "default/empty: has no endpoints" -m addrtype ' \
           "--dst-type LOCAL -m tcp -p tcp --dport 30081 -j REJECT" in nine
    ten = legacy.render(snap(empty), layout_of((1, 10)))
    assert "KUBE-SVC-" not in ten and "-A KUBE-EXTERNAL-SERVICES -m comment --comment \"default/empty: has " \
        "no endpoints\" -m addrtype --dst-type LOCAL" in ten


def test_load_balancer_ips_go_through_kube_fw_from_1_4():
    lb = SP("default", "lb", "", "TCP", "10.0.0.8", 80, load_balancer_ips=("5.6.7.8",),
            load_balancer_source_ranges=("192.168.0.0/24",), endpoints=(E("10.244.1.1", 80),))
    three = legacy.render(snap(lb), layout_of((1, 3)))
    assert "KUBE-FW-" not in three and "--dport 80 -j KUBE-MARK-MASQ" in three
    fw = legacy.fw_chain(lb, layout_of((1, 4)))
    four = legacy.render(snap(lb), layout_of((1, 4)))
    assert [line for line in four.splitlines() if line.startswith(f"-A {fw}")] == [
        f'-A {fw} -m comment --comment "default/lb: loadbalancer IP" -j KUBE-MARK-MASQ',
        f'-A {fw} -m comment --comment "default/lb: loadbalancer IP" -s 192.168.0.0/24 -j '
        f"{legacy.svc_chain(lb, layout_of((1, 4)))}",
        f'-A {fw} -m comment --comment "default/lb: loadbalancer IP" -j KUBE-MARK-DROP']
    assert fw in legacy.active_nat_chains(snap(lb), layout_of((1, 4)))


def test_affinity_seconds_by_era():
    sp = SP("default", "s", "", "TCP", "10.0.0.7", 80, affinity_timeout=600, endpoints=(E("10.244.1.1", 80),))
    assert "--rcheck --seconds 180 --reap" in legacy.render(snap(sp), layout_of((1, 4)))
    assert "--rcheck --seconds 10800 --reap" in legacy.render(snap(sp), layout_of((1, 7)))
    assert "--rcheck --seconds 600 --reap" in legacy.render(snap(sp), layout_of((1, 8)))


def test_masquerade_all_before_cluster_cidr_existed():
    text = legacy.render(snap(HOSTNAMES), layout_of((1, 1)), options=ProxyOptions(masquerade_all=True))
    assert ('-A KUBE-SERVICES -m comment --comment "default/hostnames: cluster IP" -m tcp -p tcp '
            "-d 10.0.1.175/32 --dport 80 -j MARK --set-xmark 0x4d415351/0xffffffff") in text
    assert "! -s" not in legacy.render(snap(HOSTNAMES), layout_of((1, 2)))


def test_jumps_by_era():
    def jumps(release):
        return [(j.table, j.builtin, j.chain) for j in legacy.jump_rules(layout_of(release))]
    assert ("nat", "POSTROUTING", "") in jumps((1, 1)) and not [j for j in jumps((1, 1)) if j[0] == "filter"]
    assert ("filter", "INPUT", "KUBE-SERVICES") in jumps((1, 7))
    assert ("filter", "FORWARD", "KUBE-FORWARD") in jumps((1, 9))
    assert ("filter", "FORWARD", "KUBE-EXTERNAL-SERVICES") in jumps((1, 20))
    assert ("filter", "INPUT", "KUBE-SERVICES") not in jumps((1, 20))
    base = legacy.base_restore(layout_of((1, 1)))
    assert ('-A POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -m mark '
            "--mark 0x4d415351 -j MASQUERADE") in base
    assert "KUBE-PROXY-CANARY" not in base and "KUBE-PROXY-CANARY" in legacy.base_restore(layout_of((1, 17)))


def test_1_33_is_still_render_py():
    assert layout_of((1, 33)).ext_chains and rd.TARGET_VERSION == "1.33"


def test_external_traffic_policy_local_goes_through_kube_xlb_from_1_5():
    sp = SP("default", "lb", "", "TCP", "10.0.0.8", 80, node_port=30080, load_balancer_ips=("5.6.7.8",),
            external_policy_local=True, health_check_node_port=30000,
            endpoints=(E("10.244.1.1", 80, node="node-1"), E("10.244.2.1", 80, node="b")))
    layout = layout_of((1, 21))
    xlb, svc, fw = legacy.xlb_chain(sp, layout), legacy.svc_chain(sp, layout), legacy.fw_chain(sp, layout)
    text = legacy.render(snap(sp), layout)
    local_sep = legacy.sep_chain(sp, sp.endpoints[0], layout)
    assert [line for line in text.splitlines() if line.startswith(f"-A {xlb}")] == [
        f'-A {xlb} -m comment --comment "Redirect pods trying to reach external loadbalancer VIP to clusterIP" '
        f"-s 10.244.0.0/16 -j {svc}",
        f'-A {xlb} -m comment --comment "masquerade LOCAL traffic for default/lb LB IP" -m addrtype --src-type '
        "LOCAL -j KUBE-MARK-MASQ",
        f'-A {xlb} -m comment --comment "route LOCAL traffic for default/lb LB IP to service chain" -m addrtype '
        f"--src-type LOCAL -j {svc}",
        f'-A {xlb} -m comment --comment "Balancing rule 0 for default/lb" -j {local_sep}']
    assert f'-A {fw} -m comment --comment "default/lb loadbalancer IP" -j KUBE-MARK-MASQ' not in text
    assert f"--dport 30080 -s 127.0.0.0/8 -j KUBE-MARK-MASQ" in text and f"--dport 30080 -j {xlb}" in text
    assert '"default/lb health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT' in text
    elsewhere = legacy.render(ProxySnapshot("c", "172.18.0.4", "10.244.0.0/16", (sp,)), layout)
    assert f'-A {xlb} -m comment --comment "default/lb has no local endpoints" -j KUBE-MARK-DROP' in elsewhere
    assert "LOCAL traffic" not in legacy.render(snap(sp), layout_of((1, 14)))
    assert "KUBE-XLB-" not in legacy.render(snap(sp), layout_of((1, 4)))  # before OnlyLocal


def test_service_paths_read_an_old_layout():
    """The dashboard's paths: 1.16's masquerade rule in KUBE-SERVICES is no frontend."""
    from minikp.proxy.iptables.paths import service_paths

    save = """*nat
:KUBE-SERVICES - [0:0]
:KUBE-SVC-NWV5X2332I4OT4T3 - [0:0]
-A KUBE-SERVICES ! -s 10.244.0.0/16 -d 10.0.1.175/32 -p tcp -m comment --comment "default/hostnames: cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ
-A KUBE-SERVICES -d 10.0.1.175/32 -p tcp -m comment --comment "default/hostnames: cluster IP" -m tcp --dport 80 -j KUBE-SVC-NWV5X2332I4OT4T3
-A KUBE-SVC-NWV5X2332I4OT4T3 -m comment --comment "default/hostnames:" -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-WNBA2IHDGP2BOBGZ
-A KUBE-SVC-NWV5X2332I4OT4T3 -m comment --comment "default/hostnames:" -j KUBE-SEP-X3P2623AGDH6CDF3
COMMIT
"""
    counted = "\n".join("[0:0] " + line if line.startswith("-A") else line for line in save.splitlines())
    [path] = service_paths(counted, "default/hostnames")
    assert [f.via for f in path.frontends] == ["KUBE-SVC-NWV5X2332I4OT4T3"]
    assert [b.endpoint for b in path.branches] == ["KUBE-SEP-WNBA2IHDGP2BOBGZ", "KUBE-SEP-X3P2623AGDH6CDF3"]
