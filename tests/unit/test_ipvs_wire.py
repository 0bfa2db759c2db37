"""minikp.proxy.ipvs.wire's struct-encoded messages are byte for byte what pyroute2 encodes
for the same request (its IPVSService/IPVSDest and ipset message classes)."""

import pytest
from pyroute2.netlink.generic import ipvs as genl
from pyroute2.netlink.nfnetlink import NFNL_SUBSYS_IPSET
from pyroute2.netlink.nfnetlink.ipset import IPSET_CMD_ADD, ipset_msg

from minikp.proxy.ipvs import wire
from minikp.proxy.ipvs.apply import _L4, _dest, _svc, _svc_key
from minikp.proxy.ipvs.render import RealServer as RS, VirtualServer as VS

def ipset_data(set_type: str, entry: str) -> list:
    """IPSET_ATTR_DATA's attributes for an Entry.String() form (what pyroute2's add sends)."""
    def ip(attr: str, value: str) -> list:
        return [attr, {"attrs": [["IPSET_ATTR_IPADDR_IPV4", value]]}]
    if set_type == "bitmap:port":
        return [["IPSET_ATTR_PORT", int(entry)]]
    parts = entry.split(",")
    attrs = [ip("IPSET_ATTR_IP_FROM", parts[0])]
    if len(parts) > 1:
        proto, port = parts[1].split(":")
        attrs += [["IPSET_ATTR_PORT", int(port)], ["IPSET_ATTR_PROTO", _L4[proto]]]
    if len(parts) > 2:
        addr, _, cidr = parts[2].partition("/")
        attrs.append(ip("IPSET_ATTR_IP2", addr))
        if cidr:
            attrs.append(["IPSET_ATTR_CIDR2", int(cidr)])
    return attrs


FAMILY = 0x22  # the generic netlink id the kernel gave "IPVS" (any number here)


def pyroute2_bytes(msg, seq, kind, flags):
    msg["header"].update(type=kind, flags=flags, sequence_number=seq, pid=0)
    msg.encode()
    return bytes(msg.data)


def ipvs(cmd, attrs, seq):
    m = genl.ipvsmsg()
    m["cmd"], m["version"], m["attrs"] = cmd, genl.GENL_VERSION, attrs
    return pyroute2_bytes(m, seq, FAMILY, wire.CREATE)


@pytest.mark.parametrize("vs", [VS("10.96.0.1", 80, "TCP"), VS("10.96.0.2", 53, "UDP", "sh", 0x1, 10800),
                                VS("192.168.0.2", 30080, "SCTP", "mh", 0x10)])
def test_new_service(vs):
    want = ipvs(genl.IPVS_CMD_NEW_SERVICE, [("IPVS_CMD_ATTR_SERVICE", _svc(vs).dump_nla())], 7)
    assert wire.ipvs_service_msg(7, FAMILY, vs) == want


@pytest.mark.parametrize("key,rs", [(("10.96.0.1", "TCP", 80), RS("10.244.1.2", 9376)),
                                    (("192.168.0.2", "UDP", 30053), RS("10.244.2.3", 53, 0))])
def test_new_dest(key, rs):
    want = ipvs(genl.IPVS_CMD_NEW_DEST, [("IPVS_CMD_ATTR_SERVICE", _svc_key(key).dump_key()),
                                         ("IPVS_CMD_ATTR_DEST", _dest(rs.ip, rs.port, rs.weight).dump_nla())], 9)
    assert wire.ipvs_dest_msg(9, FAMILY, key, rs) == want


@pytest.mark.parametrize("set_type,entry", [
    ("hash:ip", "10.96.0.1"), ("hash:ip,port", "10.96.0.1,tcp:80"), ("hash:ip,port,ip", "10.244.1.2,udp:53,10.244.1.2"),
    ("hash:ip,port,net", "1.2.3.4,sctp:80,10.0.0.0/8"), ("bitmap:port", "30080")])
def test_ipset_add(set_type, entry):
    m = ipset_msg()
    m["nfgen_family"] = 2
    m["attrs"] = [["IPSET_ATTR_PROTOCOL", 7], ["IPSET_ATTR_SETNAME", "KUBE-LOOP-BACK"],
                  ["IPSET_ATTR_DATA", {"attrs": ipset_data(set_type, entry)}]]
    want = pyroute2_bytes(m, 3, IPSET_CMD_ADD | (NFNL_SUBSYS_IPSET << 8), wire.NLM_F_REQUEST | wire.NLM_F_ACK)
    assert wire.ipset_add_msg(3, 7, "KUBE-LOOP-BACK", set_type, entry) == want


@pytest.mark.parametrize("cmd", [genl.IPVS_CMD_SET_DEST, genl.IPVS_CMD_DEL_DEST])
def test_set_and_del_dest(cmd):
    key, rs = ("10.96.0.1", "TCP", 80), RS("10.244.1.2", 9376, 0)
    m = genl.ipvsmsg()
    m["cmd"], m["version"] = cmd, genl.GENL_VERSION
    m["attrs"] = [("IPVS_CMD_ATTR_SERVICE", _svc_key(key).dump_key()),
                  ("IPVS_CMD_ATTR_DEST", _dest(rs.ip, rs.port, rs.weight).dump_nla())]
    want = pyroute2_bytes(m, 4, FAMILY, wire.NLM_F_REQUEST | wire.NLM_F_ACK)
    assert wire.ipvs_dest_msg(4, FAMILY, key, rs, cmd) == want


def test_get_dests_request_and_reply():
    m = genl.ipvsmsg()
    m["cmd"], m["version"] = genl.IPVS_CMD_GET_DEST, genl.GENL_VERSION
    m["attrs"] = [("IPVS_CMD_ATTR_SERVICE", _svc_key(("10.96.0.1", "UDP", 53)).dump_key())]
    assert wire.ipvs_get_dests_msg(5, FAMILY, ("10.96.0.1", "UDP", 53)) == pyroute2_bytes(m, 5, FAMILY, wire.NLM_F_REQUEST | wire.NLM_F_DUMP)
    replies = []
    for ip, port, weight, active, inactive in [("10.244.1.2", 9376, 1, 2, 3), ("10.244.2.3", 53, 0, 0, 7)]:
        r = genl.ipvsmsg()  # as the kernel answers: the address as a 16-byte nf_inet_addr
        r["cmd"], r["version"] = genl.IPVS_CMD_NEW_DEST, genl.GENL_VERSION
        r["attrs"] = [("IPVS_CMD_ATTR_DEST", {"attrs": [
            ("IPVS_DEST_ATTR_ADDR_FAMILY", 2), ("IPVS_DEST_ATTR_ADDR", ip), ("IPVS_DEST_ATTR_PORT", port),
            ("IPVS_DEST_ATTR_FWD_METHOD", 0), ("IPVS_DEST_ATTR_WEIGHT", weight),
            ("IPVS_DEST_ATTR_ACTIVE_CONNS", active), ("IPVS_DEST_ATTR_INACT_CONNS", inactive)]})]
        replies.append(pyroute2_bytes(r, 5, FAMILY, 2))
    assert wire.parse_dests(replies) == [("10.244.1.2", 9376, 1, 2, 3), ("10.244.2.3", 53, 0, 0, 7)]


def test_ipset_del():
    from pyroute2.netlink.nfnetlink.ipset import IPSET_CMD_DEL
    m = ipset_msg()
    m["nfgen_family"] = 2
    m["attrs"] = [["IPSET_ATTR_PROTOCOL", 7], ["IPSET_ATTR_SETNAME", "KUBE-LOOP-BACK"],
                  ["IPSET_ATTR_DATA", {"attrs": ipset_data("hash:ip,port,ip", "10.244.1.2,tcp:80,10.244.1.2")}]]
    want = pyroute2_bytes(m, 6, IPSET_CMD_DEL | (NFNL_SUBSYS_IPSET << 8), wire.NLM_F_REQUEST | wire.NLM_F_ACK)
    assert wire.ipset_add_msg(6, 7, "KUBE-LOOP-BACK", "hash:ip,port,ip", "10.244.1.2,tcp:80,10.244.1.2",
                              cmd=wire.IPSET_CMD_DEL) == want
