"""Golden tests for the iptables-restore text the embedded proxy writes (kube-proxy 1.33
format). Chain hashes are the ones upstream's proxier_test.go uses (ns2/svc2:p80 ->
GNZBNJ2PO5MGZ6GT, ns3/svc3:p80 -> X27LE4BHSL4DOUIK, ns5/svc5:p80 -> NUKIZ6OKUXPJNT4C, ...).
Per-service goldens list only the lines beyond the static skeleton, in output order."""

from dataclasses import replace

from minikp.proxy.iptables import names
from minikp import KUBE_PROXY_VERSION
from minikp.proxy.iptables import render as render_module
from minikp.proxy.iptables.render import JUMP_RULES, active_nat_chains, probability, render
from minikp.proxy.changes import by_service, changed_services
from minikp.proxy.conntrack import commands as conntrack_commands
from minikp.proxy.options import ProxyOptions
from minikp.proxy.iptables.sync import chains_in
from minikp.proxy.snapshot import Endpoint as E, ProxySnapshot, ServicePortInfo as SP

NODE = "test-hostname"


def snap(*svcs):
    return ProxySnapshot(NODE, "192.168.0.2", "10.0.0.0/8", tuple(svcs))


SKELETON = set(render(snap()).splitlines())


def extra_lines(text):
    return "".join(line + "\n" for line in text.splitlines() if line not in SKELETON)


GOLDEN_CLUSTERIP = """\
*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-FIREWALL - [0:0]
-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
:KUBE-SEP-A6IB6ZRNSXM7OKSA - [0:0]
:KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
:KUBE-SEP-NCL6FYGPWRSR7RFS - [0:0]
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.10:80" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-A6IB6ZRNSXM7OKSA
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-SXIVWICOYRO3J4NJ
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.9:80" -j KUBE-SEP-NCL6FYGPWRSR7RFS
-A KUBE-SEP-A6IB6ZRNSXM7OKSA -m comment --comment ns1/svc1:p80 -s 10.180.0.10 -j KUBE-MARK-MASQ
-A KUBE-SEP-A6IB6ZRNSXM7OKSA -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.10:80
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
-A KUBE-SEP-NCL6FYGPWRSR7RFS -m comment --comment ns1/svc1:p80 -s 10.180.0.9 -j KUBE-MARK-MASQ
-A KUBE-SEP-NCL6FYGPWRSR7RFS -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.9:80
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
COMMIT
"""

GOLDEN_NODEPORT = """\
:KUBE-EXT-X27LE4BHSL4DOUIK - [0:0]
:KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
:KUBE-SEP-OYPFS5VJICHGATKP - [0:0]
-A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
-A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j KUBE-EXT-X27LE4BHSL4DOUIK
-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-EXT-X27LE4BHSL4DOUIK -m comment --comment "masquerade traffic for ns3/svc3:p80 external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-X27LE4BHSL4DOUIK -j KUBE-SVC-X27LE4BHSL4DOUIK
-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.3:80" -j KUBE-SEP-OYPFS5VJICHGATKP
-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
"""

GOLDEN_LB = """\
-A KUBE-PROXY-FIREWALL -m comment --comment "ns5/svc5:p80 traffic not accepted by KUBE-FW-NUKIZ6OKUXPJNT4C" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP
:KUBE-EXT-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-FW-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-SVC-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-SEP-TGTSLJDSI6KB7NCB - [0:0]
-A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 -j KUBE-SVC-NUKIZ6OKUXPJNT4C
-A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 loadbalancer IP" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j KUBE-FW-NUKIZ6OKUXPJNT4C
-A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp --dport 3004 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-EXT-NUKIZ6OKUXPJNT4C -m comment --comment "masquerade traffic for ns5/svc5:p80 external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-NUKIZ6OKUXPJNT4C -j KUBE-SVC-NUKIZ6OKUXPJNT4C
-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 203.0.113.0/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 192.168.0.0/24 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 5.6.7.8 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL"
-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.5:80" -j KUBE-SEP-TGTSLJDSI6KB7NCB
-A KUBE-SEP-TGTSLJDSI6KB7NCB -m comment --comment ns5/svc5:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ
-A KUBE-SEP-TGTSLJDSI6KB7NCB -m comment --comment ns5/svc5:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
"""

GOLDEN_ETP_LOCAL = """\
-A KUBE-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
:KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]
:KUBE-SVC-GNZBNJ2PO5MGZ6GT - [0:0]
:KUBE-SVL-GNZBNJ2PO5MGZ6GT - [0:0]
:KUBE-SEP-5XYCQX5AID3ESMKN - [0:0]
:KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]
-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
-A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -j KUBE-SVL-GNZBNJ2PO5MGZ6GT
-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.22:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-5XYCQX5AID3ESMKN
-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-RS4RBKLTHTF2IUXJ
-A KUBE-SVL-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-RS4RBKLTHTF2IUXJ
-A KUBE-SEP-5XYCQX5AID3ESMKN -m comment --comment ns2/svc2:p80 -s 10.180.0.22 -j KUBE-MARK-MASQ
-A KUBE-SEP-5XYCQX5AID3ESMKN -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.22:80
-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
"""

GOLDEN_ITP_LOCAL = """\
:KUBE-SVL-A2PEVXD55OHK2IVW - [0:0]
:KUBE-SEP-WOVZ7FYWLOFVMYSJ - [0:0]
-A KUBE-SERVICES -m comment --comment "ns1/svc1 cluster IP" -m udp -p udp -d 172.30.0.41 --dport 53 -j KUBE-SVL-A2PEVXD55OHK2IVW
-A KUBE-SVL-A2PEVXD55OHK2IVW -m comment --comment "ns1/svc1 cluster IP" -m udp -p udp -d 172.30.0.41 --dport 53 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVL-A2PEVXD55OHK2IVW -m comment --comment "ns1/svc1 -> 10.180.0.1:53" -j KUBE-SEP-WOVZ7FYWLOFVMYSJ
-A KUBE-SEP-WOVZ7FYWLOFVMYSJ -m comment --comment ns1/svc1 -s 10.180.0.1 -j KUBE-MARK-MASQ
-A KUBE-SEP-WOVZ7FYWLOFVMYSJ -m comment --comment ns1/svc1 -m udp -p udp -j DNAT --to-destination 10.180.0.1:53
"""

GOLDEN_AFFINITY = """\
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
:KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
:KUBE-SEP-LXVODXWDISEETFEF - [0:0]
-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m recent --name KUBE-SEP-SXIVWICOYRO3J4NJ --rcheck --seconds 10800 --reap -j KUBE-SEP-SXIVWICOYRO3J4NJ
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.2:80" -m recent --name KUBE-SEP-LXVODXWDISEETFEF --rcheck --seconds 10800 --reap -j KUBE-SEP-LXVODXWDISEETFEF
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-SXIVWICOYRO3J4NJ
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.2:80" -j KUBE-SEP-LXVODXWDISEETFEF
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m recent --name KUBE-SEP-SXIVWICOYRO3J4NJ --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
-A KUBE-SEP-LXVODXWDISEETFEF -m comment --comment ns1/svc1:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-LXVODXWDISEETFEF -m comment --comment ns1/svc1:p80 -m recent --name KUBE-SEP-LXVODXWDISEETFEF --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
"""

GOLDEN_NO_ENDPOINTS = """\
-A KUBE-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT
-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 192.168.99.66 --dport 80 -j REJECT
-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 6.6.6.6 --dport 80 -j REJECT
-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3006 -j REJECT
"""

GOLDEN_NO_LOCAL = """\
-A KUBE-SERVICES -m comment --comment "ns7/svc7:p80 has no local endpoints" -m tcp -p tcp -d 172.30.0.47 --dport 80 -j DROP
-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns7/svc7:p80 has no local endpoints" -m tcp -p tcp -d 7.7.7.7 --dport 80 -j DROP
-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns7/svc7:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3007 -j DROP
-A KUBE-NODEPORTS -m comment --comment "ns7/svc7:p80 health check node port" -m tcp -p tcp --dport 30007 -j ACCEPT
:KUBE-EXT-KPEMU3PDPRCEMWRI - [0:0]
:KUBE-SVC-KPEMU3PDPRCEMWRI - [0:0]
:KUBE-SEP-HZXTC6EBGJZ64CAL - [0:0]
-A KUBE-SERVICES -m comment --comment "ns7/svc7:p80 loadbalancer IP" -m tcp -p tcp -d 7.7.7.7 --dport 80 -j KUBE-EXT-KPEMU3PDPRCEMWRI
-A KUBE-NODEPORTS -m comment --comment ns7/svc7:p80 -m tcp -p tcp --dport 3007 -j KUBE-EXT-KPEMU3PDPRCEMWRI
-A KUBE-EXT-KPEMU3PDPRCEMWRI -m comment --comment "pod traffic for ns7/svc7:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-KPEMU3PDPRCEMWRI
-A KUBE-EXT-KPEMU3PDPRCEMWRI -m comment --comment "masquerade LOCAL traffic for ns7/svc7:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
-A KUBE-EXT-KPEMU3PDPRCEMWRI -m comment --comment "route LOCAL traffic for ns7/svc7:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-KPEMU3PDPRCEMWRI
-A KUBE-SVC-KPEMU3PDPRCEMWRI -m comment --comment "ns7/svc7:p80 -> 10.180.0.7:80" -j KUBE-SEP-HZXTC6EBGJZ64CAL
-A KUBE-SEP-HZXTC6EBGJZ64CAL -m comment --comment ns7/svc7:p80 -s 10.180.0.7 -j KUBE-MARK-MASQ
-A KUBE-SEP-HZXTC6EBGJZ64CAL -m comment --comment ns7/svc7:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.7:80
"""

GOLDEN_TERMINATING = """\
:KUBE-SVC-VK45GYZPQDXRLYPJ - [0:0]
:KUBE-SEP-ZK7OPVRVDAKFVHXH - [0:0]
-A KUBE-SERVICES -m comment --comment "ns8/svc8 cluster IP" -m sctp -p sctp -d 172.30.0.48 --dport 80 -j KUBE-SVC-VK45GYZPQDXRLYPJ
-A KUBE-SVC-VK45GYZPQDXRLYPJ -m comment --comment "ns8/svc8 cluster IP" -m sctp -p sctp -d 172.30.0.48 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-VK45GYZPQDXRLYPJ -m comment --comment "ns8/svc8 -> 10.180.0.8:80" -j KUBE-SEP-ZK7OPVRVDAKFVHXH
-A KUBE-SEP-ZK7OPVRVDAKFVHXH -m comment --comment ns8/svc8 -s 10.180.0.8 -j KUBE-MARK-MASQ
-A KUBE-SEP-ZK7OPVRVDAKFVHXH -m comment --comment ns8/svc8 -m sctp -p sctp -j DNAT --to-destination 10.180.0.8:80
"""

CLUSTERIP = SP("ns1", "svc1", "p80", "TCP", "172.30.0.41", 80,
               endpoints=(E("10.180.0.1", 80), E("10.180.0.10", 80), E("10.180.0.9", 80)))
NODEPORT = SP("ns3", "svc3", "p80", "TCP", "172.30.0.43", 80, node_port=3003,
              endpoints=(E("10.180.0.3", 80, node="other"),))
LB = SP("ns5", "svc5", "p80", "TCP", "172.30.0.45", 80, node_port=3004, load_balancer_ips=("5.6.7.8",),
        load_balancer_source_ranges=(" 203.0.113.0/25", "192.168.0.0/24"),
        endpoints=(E("10.180.0.5", 80, node="other"),))
ETP_LOCAL = SP("ns2", "svc2", "p80", "TCP", "172.30.0.42", 80, node_port=3001,
               external_ips=("192.168.99.22",), load_balancer_ips=("1.2.3.4",), external_policy_local=True,
               health_check_node_port=30000,
               endpoints=(E("10.180.0.2", 80, node=NODE), E("10.180.0.22", 80, node="other")))
ITP_LOCAL = SP("ns1", "svc1", "", "UDP", "172.30.0.41", 53, internal_policy_local=True,
               endpoints=(E("10.180.0.1", 53, node=NODE), E("10.180.2.1", 53, node="other")))
AFFINITY = SP("ns1", "svc1", "p80", "TCP", "172.30.0.41", 80, affinity_timeout=10800,
              endpoints=(E("10.180.0.1", 80), E("10.180.0.2", 80)))
NO_ENDPOINTS = SP("ns6", "svc6", "p80", "TCP", "172.30.0.46", 80, node_port=3006,
                  external_ips=("192.168.99.66",), load_balancer_ips=("6.6.6.6",),
                  endpoints=(E("10.180.0.6", 80, ready=False, serving=False),))
NO_LOCAL = SP("ns7", "svc7", "p80", "TCP", "172.30.0.47", 80, node_port=3007, load_balancer_ips=("7.7.7.7",),
              external_policy_local=True, internal_policy_local=True, health_check_node_port=30007,
              endpoints=(E("10.180.0.7", 80, node="other"),))
TERMINATING = SP("ns8", "svc8", "", "SCTP", "172.30.0.48", 80,
                 endpoints=(E("10.180.0.8", 80, ready=False, serving=True, terminating=True),
                            E("10.180.0.9", 80, ready=False, serving=False, terminating=True)))


def test_chain_hashes_match_upstream():
    assert names._hash("ns1/svc1:p80tcp") == "XPGD46QRK7WJZT7O"
    assert names._hash("ns1/svc1:p80tcp10.180.0.1:80") == "SXIVWICOYRO3J4NJ"
    assert names.svc_chain(SP("ns1", "svc1", "", "TCP", "1.1.1.1", 80)) == "KUBE-SVC-AQI2S6QIMU7PVVRP"
    k8s = SP("default", "kubernetes", "https", "TCP", "10.96.0.1", 443)
    assert names.svc_chain(k8s) == "KUBE-SVC-NPX46M4PTMTKRN6Y"
    assert names.sep_chain(k8s, E("192.168.205.145", 6443)) == "KUBE-SEP-UUBFDOGZKSZ6QOBE"
    dns = SP("kube-system", "kube-dns", "dns", "UDP", "10.96.0.10", 53)
    assert names.svc_chain(dns) == "KUBE-SVC-TCOU7JCQXEZGVUNU"
    jtest = SP("default", "jtest", "", "TCP", "10.96.0.2", 8080)
    assert names.ext_chain(jtest) == "KUBE-EXT-FXJ34XFJ55FJZHFP"
    assert names.sep_chain(jtest, E("10.244.2.17", 8080)) == "KUBE-SEP-FWCNVWTS6ZPOZ3BF"


def test_probability_strings():
    assert [probability(n) for n in (3, 2, 4, 5, 6, 1000)] == [
        "0.3333333333", "0.5000000000", "0.2500000000", "0.2000000000", "0.1666666667", "0.0010000000"]


def test_clusterip_three_endpoints_full_text():
    assert render(snap(CLUSTERIP)) == GOLDEN_CLUSTERIP


def test_without_random_fully():
    text = render(snap(CLUSTERIP), random_fully=False)
    assert '-j MASQUERADE\n' in text and "--random-fully" not in text


def test_nodeport():
    assert extra_lines(render(snap(NODEPORT))) == GOLDEN_NODEPORT


def test_loadbalancer_source_ranges():
    # node IP 192.168.0.2 is inside 192.168.0.0/24, so the LB IP itself is allowed too.
    assert extra_lines(render(snap(LB))) == GOLDEN_LB


def test_lb_source_range_without_node_ip_has_no_vip_rule():
    text = render(snap(replace(LB, load_balancer_source_ranges=("203.0.113.0/25",))))
    assert "-s 5.6.7.8 -j" not in text and "-s 203.0.113.0/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C" in text


def test_external_traffic_policy_local():
    assert extra_lines(render(snap(ETP_LOCAL))) == GOLDEN_ETP_LOCAL


def test_internal_traffic_policy_local():
    assert extra_lines(render(snap(ITP_LOCAL))) == GOLDEN_ITP_LOCAL


def test_session_affinity():
    assert extra_lines(render(snap(AFFINITY))) == GOLDEN_AFFINITY


def test_no_endpoints_reject():
    assert extra_lines(render(snap(NO_ENDPOINTS))) == GOLDEN_NO_ENDPOINTS


def test_no_local_endpoints_drop():
    assert extra_lines(render(snap(NO_LOCAL))) == GOLDEN_NO_LOCAL


def test_terminating_fallback():
    assert extra_lines(render(snap(TERMINATING))) == GOLDEN_TERMINATING


def test_ready_endpoints_win_over_terminating():
    svc = replace(TERMINATING, endpoints=TERMINATING.endpoints + (E("10.180.0.99", 80),))
    text = render(snap(svc))
    assert "--to-destination 10.180.0.99:80" in text and "10.180.0.8:80" not in text


def test_multi_port_service_gets_one_chain_set_per_port():
    a = SP("ns1", "web", "http", "TCP", "172.30.0.50", 80, endpoints=(E("10.180.0.1", 8080),))
    b = SP("ns1", "web", "dns", "UDP", "172.30.0.50", 53, endpoints=(E("10.180.0.1", 53),))
    text = render(snap(a, b))
    assert names.svc_chain(a) != names.svc_chain(b)
    assert f"-m udp -p udp -d 172.30.0.50 --dport 53 -j {names.svc_chain(b)}" in text
    assert f"-m tcp -p tcp -d 172.30.0.50 --dport 80 -j {names.svc_chain(a)}" in text
    # services sorted: ns1/web:dns before ns1/web:http
    assert text.index('"ns1/web:dns cluster IP"') < text.index('"ns1/web:http cluster IP"')


def test_partial_sync_writes_only_changed_service_chains():
    full = render(snap(CLUSTERIP, NODEPORT))
    part = render(snap(CLUSTERIP, NODEPORT), changed={"ns3/svc3"})
    assert "KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]" in full
    # ns1/svc1's own chains are skipped; its capture rule in KUBE-SERVICES stays.
    assert ":KUBE-SVC-XPGD46QRK7WJZT7O" not in part and "-A KUBE-SVC-XPGD46QRK7WJZT7O" not in part
    assert "-A KUBE-SEP-SXIVWICOYRO3J4NJ" not in part
    assert "-j KUBE-SVC-XPGD46QRK7WJZT7O" in part
    capture = ('-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp '
               "-d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O\n")
    chain_lines = "".join(line for line in GOLDEN_NODEPORT.splitlines(True) if line.startswith(":"))
    rules = "".join(line for line in GOLDEN_NODEPORT.splitlines(True) if not line.startswith(":"))
    assert extra_lines(part) == chain_lines + capture + rules


def test_stale_chain_deletion_lines():
    text = render(snap(), changed=set(), stale_nat_chains=["KUBE-SVC-OLD", "KUBE-SEP-OLD"])
    nat = text.split("*nat\n", 1)[1]
    assert ":KUBE-SEP-OLD - [0:0]\n:KUBE-SVC-OLD - [0:0]\n" in nat
    assert "-X KUBE-SEP-OLD\n-X KUBE-SVC-OLD\n-A KUBE-SERVICES" in nat


def test_large_cluster_mode_drops_endpoint_comments():
    eps = tuple(E(f"10.1.{i // 250}.{i % 250}", 80) for i in range(1001))
    big = SP("ns1", "big", "", "TCP", "172.30.1.1", 80, endpoints=eps)
    text = render(snap(big))
    sep = names.sep_chain(big, eps[0])
    assert f"-A {sep} -s 10.1.0.0 -j KUBE-MARK-MASQ" in text
    assert f"-A {sep} -m tcp -p tcp -j DNAT --to-destination 10.1.0.0:80" in text
    assert " -> " not in text
    assert "--probability 0.0009990010 -j" in text  # 1/1001 for the first endpoint
    assert '"ns1/big cluster IP"' in text  # capture/masquerade rules keep their comments
    small = render(snap(replace(big, endpoints=eps[:1000])))
    assert '"ns1/big -> 10.1.0.0:80"' in small


def test_jump_rules_order_and_text():
    first = JUMP_RULES[0]
    assert (first.table, first.builtin) == ("filter", "INPUT")
    assert first.args == ("-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment",
                          "kubernetes externally-visible service portals", "-j", "KUBE-EXTERNAL-SERVICES")
    nat = [(j.builtin, j.chain) for j in JUMP_RULES if j.table == "nat"]
    assert nat == [("OUTPUT", "KUBE-SERVICES"), ("PREROUTING", "KUBE-SERVICES"),
                   ("POSTROUTING", "KUBE-POSTROUTING")]


def test_active_chains_and_change_detection():
    s1 = snap(CLUSTERIP, NODEPORT)
    assert "KUBE-EXT-X27LE4BHSL4DOUIK" in active_nat_chains(s1)
    assert active_nat_chains(snap(NO_ENDPOINTS)) == set()
    s2 = snap(replace(CLUSTERIP, endpoints=CLUSTERIP.endpoints[:2]), NODEPORT, AFFINITY.__class__(
        "ns9", "new", "", "TCP", "172.30.0.99", 80))
    assert changed_services(by_service(s1), by_service(s2)) == {"ns1/svc1", "ns9/new"}
    assert changed_services(by_service(s2), by_service(snap(NODEPORT))) == {"ns1/svc1", "ns9/new"}


def test_chains_in_save_output():
    text = "*nat\n:PREROUTING ACCEPT [3:330]\n:KUBE-SVC-AB - [0:0]\n-A KUBE-SVC-AB -j X\nCOMMIT\n"
    assert chains_in(text) == ["PREROUTING", "KUBE-SVC-AB"]


# The canonical multi-service case (upstream TestOverallIPTablesRulesWithMultipleServices,
# adapted): every service's top-level rules, then its own chains, in syncProxyRules' order.
GOLDEN_MULTI = """\
*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-FIREWALL - [0:0]
-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBE-NODEPORTS -m comment --comment "ns2/svc2:p80 health check node port" -m tcp -p tcp --dport 30000 -j ACCEPT
-A KUBE-PROXY-FIREWALL -m comment --comment "ns5/svc5:p80 traffic not accepted by KUBE-FW-NUKIZ6OKUXPJNT4C" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j DROP
-A KUBE-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT
-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 192.168.99.66 --dport 80 -j REJECT
-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 6.6.6.6 --dport 80 -j REJECT
-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3006 -j REJECT
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
:KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
:KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]
:KUBE-SVC-GNZBNJ2PO5MGZ6GT - [0:0]
:KUBE-SVL-GNZBNJ2PO5MGZ6GT - [0:0]
:KUBE-SEP-5XYCQX5AID3ESMKN - [0:0]
:KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]
:KUBE-EXT-X27LE4BHSL4DOUIK - [0:0]
:KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
:KUBE-SEP-OYPFS5VJICHGATKP - [0:0]
:KUBE-EXT-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-FW-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-SVC-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-SEP-TGTSLJDSI6KB7NCB - [0:0]
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 external IP" -m tcp -p tcp -d 192.168.99.22 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 loadbalancer IP" -m tcp -p tcp -d 1.2.3.4 --dport 80 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
-A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -j KUBE-SVL-GNZBNJ2PO5MGZ6GT
-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.22:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-5XYCQX5AID3ESMKN
-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-RS4RBKLTHTF2IUXJ
-A KUBE-SVL-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-RS4RBKLTHTF2IUXJ
-A KUBE-SEP-5XYCQX5AID3ESMKN -m comment --comment ns2/svc2:p80 -s 10.180.0.22 -j KUBE-MARK-MASQ
-A KUBE-SEP-5XYCQX5AID3ESMKN -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.22:80
-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
-A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
-A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j KUBE-EXT-X27LE4BHSL4DOUIK
-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-EXT-X27LE4BHSL4DOUIK -m comment --comment "masquerade traffic for ns3/svc3:p80 external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-X27LE4BHSL4DOUIK -j KUBE-SVC-X27LE4BHSL4DOUIK
-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.3:80" -j KUBE-SEP-OYPFS5VJICHGATKP
-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
-A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 -j KUBE-SVC-NUKIZ6OKUXPJNT4C
-A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 loadbalancer IP" -m tcp -p tcp -d 5.6.7.8 --dport 80 -j KUBE-FW-NUKIZ6OKUXPJNT4C
-A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp --dport 3004 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-EXT-NUKIZ6OKUXPJNT4C -m comment --comment "masquerade traffic for ns5/svc5:p80 external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-NUKIZ6OKUXPJNT4C -j KUBE-SVC-NUKIZ6OKUXPJNT4C
-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 203.0.113.0/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 192.168.0.0/24 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 5.6.7.8 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
-A KUBE-FW-NUKIZ6OKUXPJNT4C -m comment --comment "other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL"
-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.5:80" -j KUBE-SEP-TGTSLJDSI6KB7NCB
-A KUBE-SEP-TGTSLJDSI6KB7NCB -m comment --comment ns5/svc5:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ
-A KUBE-SEP-TGTSLJDSI6KB7NCB -m comment --comment ns5/svc5:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
COMMIT
"""

ONE_EP = replace(CLUSTERIP, endpoints=CLUSTERIP.endpoints[:1])
MULTI = snap(ONE_EP, ETP_LOCAL, NODEPORT, LB, NO_ENDPOINTS)


def test_canonical_multi_service_full_text():
    assert render(MULTI) == GOLDEN_MULTI
    # Order of the snapshot's services does not matter: rules follow the sorted port names.
    assert render(snap(*reversed(MULTI.services))) == GOLDEN_MULTI


# Like upstream TestSyncProxyRulesRepeated: ns2/svc2 deleted (its chains are stale), ns3/svc3
# gained an endpoint, ns1/svc1 unchanged (only its KUBE-SERVICES rule is written).
GOLDEN_PARTIAL = """\
*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-FIREWALL - [0:0]
-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-EXT-X27LE4BHSL4DOUIK - [0:0]
:KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
:KUBE-SEP-OYPFS5VJICHGATKP - [0:0]
:KUBE-SEP-QWDKEFUM2O5ZNFM4 - [0:0]
:KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]
:KUBE-SEP-5XYCQX5AID3ESMKN - [0:0]
:KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]
:KUBE-SVC-GNZBNJ2PO5MGZ6GT - [0:0]
:KUBE-SVL-GNZBNJ2PO5MGZ6GT - [0:0]
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
-A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
-A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j KUBE-EXT-X27LE4BHSL4DOUIK
-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-EXT-X27LE4BHSL4DOUIK -m comment --comment "masquerade traffic for ns3/svc3:p80 external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-X27LE4BHSL4DOUIK -j KUBE-SVC-X27LE4BHSL4DOUIK
-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.3:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-OYPFS5VJICHGATKP
-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.4:80" -j KUBE-SEP-QWDKEFUM2O5ZNFM4
-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
-A KUBE-SEP-QWDKEFUM2O5ZNFM4 -m comment --comment ns3/svc3:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ
-A KUBE-SEP-QWDKEFUM2O5ZNFM4 -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80
-X KUBE-EXT-GNZBNJ2PO5MGZ6GT
-X KUBE-SEP-5XYCQX5AID3ESMKN
-X KUBE-SEP-RS4RBKLTHTF2IUXJ
-X KUBE-SVC-GNZBNJ2PO5MGZ6GT
-X KUBE-SVL-GNZBNJ2PO5MGZ6GT
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
COMMIT
"""


def test_repeated_partial_sync_exact_text():
    before = snap(ONE_EP, ETP_LOCAL, NODEPORT)
    svc3 = replace(NODEPORT, endpoints=NODEPORT.endpoints + (E("10.180.0.4", 80, node="other"),))
    after = snap(ONE_EP, svc3)
    changed = changed_services(by_service(before), by_service(after))
    assert changed == {"ns2/svc2", "ns3/svc3"}
    stale = sorted(active_nat_chains(before) - active_nat_chains(after))
    assert render(after, changed=changed, stale_nat_chains=stale) == GOLDEN_PARTIAL


def test_declared_chains_are_exactly_the_active_ones_and_every_jump_resolves():
    """upstream checkIPTablesRuleJumps: no jump to an undeclared chain, no unused chain."""
    everything = snap(ONE_EP, ETP_LOCAL, NODEPORT, LB, NO_ENDPOINTS, NO_LOCAL, ITP_LOCAL, TERMINATING,
                      replace(AFFINITY, name="aff"))
    nat = render(everything).split("*nat\n", 1)[1]
    declared = {line[1:].split()[0] for line in nat.splitlines() if line.startswith(":")}
    per_service = {c for c in declared if names.is_service_chain(c)}
    assert per_service == active_nat_chains(everything)
    targets = {line.split(" -j ")[1].split()[0] for line in nat.splitlines() if " -j " in line}
    builtin_targets = {"MARK", "MASQUERADE", "DNAT", "RETURN"}
    assert targets - builtin_targets <= declared
    assert per_service <= targets  # every per-service chain is jumped to


def test_target_version_recorded():
    assert KUBE_PROXY_VERSION == "1.33" and render_module.TARGET_VERSION == KUBE_PROXY_VERSION
    assert KUBE_PROXY_VERSION in render_module.__doc__ or "KUBE_PROXY_VERSION" in render_module.__doc__


def test_nfacct_counters_when_the_kernel_has_them():
    text = render(snap(NODEPORT, NO_ENDPOINTS), nfacct=True)
    assert ("-A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp -d 127.0.0.0/8 --dport 3003 "
            "-m nfacct --nfacct-name localhost_nps_accepted_pkts -j KUBE-EXT-X27LE4BHSL4DOUIK\n"
            "-A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 "
            "-j KUBE-EXT-X27LE4BHSL4DOUIK\n") in text
    assert "-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP\n" in text
    assert text.count("--nfacct-name") == 2  # no localhost rule for the service without endpoints


def test_tcp_be_liberal_drops_the_invalid_rule():
    text = render(snap(NODEPORT), tcp_liberal=True)
    assert "INVALID" not in text and '"kubernetes forwarding rules"' in text


def test_source_ranges_are_canonicalised():
    lb = replace(LB, load_balancer_source_ranges=(" 203.0.113.7/25 ", "bogus", "2001:db8::/64"))
    text = render(snap(lb))
    fw = [line for line in text.splitlines() if line.startswith("-A KUBE-FW-")]
    assert fw[0].endswith("-s 203.0.113.0/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C")
    assert len(fw) == 2  # one range (node IP not inside: no VIP rule) + the "other traffic" rule
    none_valid = render(snap(replace(LB, load_balancer_source_ranges=("bogus",))))
    assert "KUBE-FW-" not in none_valid  # no usable range: no firewall chain at all


def test_itp_local_without_local_endpoints_and_not_external():
    svc = replace(ITP_LOCAL, endpoints=(E("10.180.2.1", 53, node="other"),))
    assert extra_lines(render(snap(svc))) == (
        '-A KUBE-SERVICES -m comment --comment "ns1/svc1 has no local endpoints" -m udp -p udp '
        "-d 172.30.0.41 --dport 53 -j DROP\n")
    assert active_nat_chains(snap(svc)) == set()


def test_udp_conntrack_commands():
    dns = SP("kube-system", "dns", "dns", "UDP", "10.96.0.10", 53, node_port=30053, external_ips=("192.168.99.5",),
             endpoints=(E("10.180.0.1", 53), E("10.180.0.2", 53)))
    before = snap(dns, CLUSTERIP)
    after = snap(replace(dns, endpoints=dns.endpoints[:1]))
    # An endpoint gone: flows DNATed to it, via every frontend and the NodePort.
    assert conntrack_commands(before, after) == [
        ["conntrack", "-D", "-p", "udp", "--dport", "30053", "--dst-nat", "10.180.0.2"],
        ["conntrack", "-D", "--orig-dst", "10.96.0.10", "--dst-nat", "10.180.0.2", "-p", "udp"],
        ["conntrack", "-D", "--orig-dst", "192.168.99.5", "--dst-nat", "10.180.0.2", "-p", "udp"],
    ]
    # A serving endpoint that turns not-serving counts as gone; terminating+serving does not.
    not_serving = snap(replace(dns, endpoints=(dns.endpoints[0], E("10.180.0.2", 53, ready=False, serving=False))))
    assert conntrack_commands(before, not_serving) == conntrack_commands(before, after)
    draining = snap(replace(dns, endpoints=(dns.endpoints[0], E("10.180.0.2", 53, ready=False, terminating=True))))
    assert conntrack_commands(before, draining) == []
    # 0 -> >0 serving endpoints: every frontend IP, then the NodePort.
    empty = snap(replace(dns, endpoints=()))
    assert conntrack_commands(empty, after) == [
        ["conntrack", "-D", "--orig-dst", "10.96.0.10", "-p", "udp"],
        ["conntrack", "-D", "--orig-dst", "192.168.99.5", "-p", "udp"],
        ["conntrack", "-D", "-p", "udp", "--dport", "30053"],
    ]
    # A deleted UDP service port: its cluster IP only.
    assert conntrack_commands(after, snap(CLUSTERIP)) == [["conntrack", "-D", "--orig-dst", "10.96.0.10", "-p", "udp"]]
    assert conntrack_commands(None, after) == []
    assert conntrack_commands(after, after) == []
    assert conntrack_commands(snap(CLUSTERIP), snap(replace(CLUSTERIP, endpoints=()))) == []  # TCP: nothing


def test_chain_hash_is_base32_of_sha256():
    import base64
    import hashlib

    for text in ("ns1/svc1:p80tcp", "ns2/svc2:p80tcp10.180.0.1:80", "", "é/ü:x" * 40, "a" * 1000):
        want = base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]
        assert names._hash.__wrapped__(text) == want


def test_render_cache_reuses_unchanged_services_and_renders_the_same(monkeypatch):
    """A proxier's RenderCache: every sync's text equals an uncached render, and a service
    port equal to the last render's is not rendered again."""
    rendered = []
    real = render_module._chain_rules
    monkeypatch.setattr(render_module, "_chain_rules", lambda sp, *a: rendered.append(sp) or real(sp, *a))
    cache = render_module.RenderCache()
    base = snap(CLUSTERIP, NODEPORT, LB, ETP_LOCAL, NO_ENDPOINTS, NO_LOCAL, TERMINATING)
    moved = replace(NODEPORT, endpoints=NODEPORT.endpoints[:1] + (E("10.180.9.9", 80),))
    steps = [(base, None), (base, None), (snap(CLUSTERIP, moved, LB, ETP_LOCAL, NO_ENDPOINTS), {"ns3/svc3"}),
             (snap(CLUSTERIP, moved, LB, ETP_LOCAL, NO_ENDPOINTS), None)]
    counts = []
    for s, changed in steps:
        rendered.clear()
        text = "\n".join(render_module.render_lines(s, changed=changed, cache=cache)) + "\n"
        counts.append(len(rendered))
        rendered.clear()
        assert text == render(s, changed=changed)
    assert counts == [7, 0, 1, 0]
    assert set(cache.entries) == set(steps[-1][0].services)  # gone service ports are dropped
    # Other options (here the masquerade-all switch) render every service port again.
    rendered.clear()
    opts = ProxyOptions(masquerade_all=True)
    cached = render(steps[-1][0], options=opts, cache=cache)
    assert len(rendered) == 5 and cached == render(steps[-1][0], options=opts)
