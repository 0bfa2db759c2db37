"""rtnl.py's hand-made messages, byte for byte against pyroute2's encoding of the same
request (no root: nothing is sent)."""

import socket

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from minikp.fabric import rtnl


def pyroute2_bytes(msg, kind, flags, seq=7):
    msg["header"]["type"], msg["header"]["flags"], msg["header"]["sequence_number"] = kind, flags, seq
    msg.encode()
    return bytes(msg.data)


def test_veth_into_a_namespace():
    m = ifinfmsg()
    m["index"], m["flags"], m["change"] = 0, 1, 1
    m["attrs"] = [("IFLA_IFNAME", "veth1a2b3c4d"), ("IFLA_MASTER", 5),
                  ("IFLA_LINKINFO", {"attrs": [
                      ("IFLA_INFO_KIND", "veth"),
                      ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", {"attrs": [
                          ("IFLA_IFNAME", "eth0"), ("IFLA_NET_NS_FD", 9)]})]})]})]
    assert rtnl.veth_msg(7, "veth1a2b3c4d", 5, "eth0", 9) == pyroute2_bytes(m, 16, rtnl.CREATE)


def test_hairpin():
    m = ifinfmsg()
    m["index"] = 12
    m["attrs"] = [("IFLA_LINKINFO", {"attrs": [
        ("IFLA_INFO_SLAVE_KIND", "bridge"),
        ("IFLA_INFO_SLAVE_DATA", {"attrs": [("IFLA_BRPORT_MODE", 1)]})]})]
    assert rtnl.hairpin_msg(7, 12) == pyroute2_bytes(m, 16, 5)


def test_link_up():
    m = ifinfmsg()
    m["index"], m["flags"], m["change"] = 3, 1, 1
    assert rtnl.link_up_msg(7, 3) == pyroute2_bytes(m, 19, 5)


def test_addr_and_route():
    a = ifaddrmsg()
    a["family"], a["prefixlen"], a["index"] = socket.AF_INET, 24, 2
    a["attrs"] = [("IFA_LOCAL", "10.244.1.7"), ("IFA_ADDRESS", "10.244.1.7")]
    assert rtnl.addr_msg(7, 2, "10.244.1.7", 24) == pyroute2_bytes(a, 20, rtnl.CREATE)
    r = rtmsg()
    r["family"], r["table"], r["proto"], r["scope"], r["type"] = socket.AF_INET, 254, 3, 0, 1
    r["attrs"] = [("RTA_GATEWAY", "10.244.1.1")]
    assert rtnl.route_msg(7, "default", ["10.244.1.1"]) == pyroute2_bytes(r, 24, rtnl.CREATE)


@pytest.mark.parametrize("name", ["eth0", "veth1a2b3c4d", "a"])
def test_names_are_nul_terminated_and_padded(name):
    msg = rtnl.veth_msg(1, name, 1, "eth0", 3)
    assert len(msg) % 4 == 0 and name.encode() + b"\0" in msg


def test_bridge():
    m = ifinfmsg()
    m["index"], m["flags"], m["change"] = 0, 1, 1
    m["attrs"] = [("IFLA_IFNAME", "cni0"), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})]
    assert rtnl.bridge_msg(7, "cni0") == pyroute2_bytes(m, 16, rtnl.CREATE)


def test_link_del_by_name():
    m = ifinfmsg()
    m["attrs"] = [("IFLA_IFNAME", "veth1a2b3c4d")]
    assert rtnl.link_del_msg(7, "veth1a2b3c4d") == pyroute2_bytes(m, 17, 5)


def route(dst_len, attrs):
    r = rtmsg()
    r["family"], r["dst_len"], r["table"], r["proto"], r["scope"], r["type"] = \
        socket.AF_INET, dst_len, 254, 3, 0, 1
    r["attrs"] = attrs
    return r


def test_route_replace_delete_and_ecmp():
    r = route(24, [("RTA_DST", "10.244.2.0"), ("RTA_GATEWAY", "172.18.0.3")])
    assert rtnl.route_msg(7, "10.244.2.0/24", ["172.18.0.3"], rtnl.REPLACE) == \
        pyroute2_bytes(r, 24, rtnl.REPLACE)
    r = route(32, [("RTA_DST", "172.18.255.200")])
    assert rtnl.route_msg(7, "172.18.255.200/32", [], rtnl.ACKED, rtnl.RTM_DELROUTE) == \
        pyroute2_bytes(r, 25, 5)
    r = route(12, [("RTA_DST", "10.96.0.0"), ("RTA_MULTIPATH", [
        {"attrs": [("RTA_GATEWAY", gw)], "hops": 0, "flags": 0, "ifindex": 0}
        for gw in ("172.18.0.2", "172.18.0.3")])])
    assert rtnl.route_msg(7, "10.96.0.0/12", ["172.18.0.2", "172.18.0.3"], rtnl.REPLACE) == \
        pyroute2_bytes(r, 24, rtnl.REPLACE)


def test_route_in_a_table_above_255_and_its_fwmark_rule():
    from pyroute2.netlink.rtnl.fibmsg import fibmsg
    r = route(0, [("RTA_TABLE", 1001), ("RTA_GATEWAY", "172.18.0.2")])
    r["table"] = 0
    assert rtnl.route_msg(7, "default", ["172.18.0.2"], rtnl.REPLACE, rtnl.RTM_NEWROUTE, 1001) == \
        pyroute2_bytes(r, 24, rtnl.REPLACE)
    f = fibmsg()
    f["family"], f["table"], f["action"] = socket.AF_INET, 0, 1
    f["attrs"] = [("FRA_PRIORITY", 1001), ("FRA_FWMARK", 1001), ("FRA_TABLE", 1001)]
    assert rtnl.fwmark_rule_msg(7, 1001, 1001, 1001) == pyroute2_bytes(f, 32, rtnl.CREATE)
