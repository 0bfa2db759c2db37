"""The nftables proxier against the real kernel: each test gets throwaway namespaces
(minikp-nftables-test-*): a node, a pod namespace holding the endpoint addresses with a tiny
TCP server that answers "<endpoint ip> <client ip>", and an outside client on the node's LAN.

    client (192.168.0.100) --- node (192.168.0.2 | 10.180.0.254) --- pod (10.180.0.1..9)
"""

import socket
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import replace

import pytest

from minikp.errors import OperationError
from minikp.nsenter import in_netns, popen_in, run_in
from minikp.proxy.nftables import names, render as rd
from minikp.proxy.nftables.sync import NftablesProxier, list_table, nft
from minikp.proxy.snapshot import Endpoint as E, ProxySnapshot, ServicePortInfo as SP

NODE, NODE_IP, CLIENT_IP = "node-a", "192.168.0.2", "192.168.0.100"
POD_IPS = [f"10.180.0.{i}" for i in range(1, 10)]

SERVER = textwrap.dedent("""
    import socket, threading
    def serve(port):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port)); s.listen(64)
        while True:
            c, peer = s.accept()
            c.sendall(f"{c.getsockname()[0]} {peer[0]}".encode()); c.close()
    for p in (80, 8080):
        threading.Thread(target=serve, args=(p,), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()
""")


def sh(path, *argv):
    run_in(path, list(argv), check=True)


@pytest.fixture
def lab():
    tag = uuid.uuid4().hex[:6]
    ns = {k: f"minikp-nftables-test-{tag}-{k}" for k in ("node", "pod", "client")}
    paths = {k: f"/run/netns/{v}" for k, v in ns.items()}
    server = None
    try:
        for name in ns.values():
            subprocess.run(["ip", "netns", "add", name], check=True)
        node, pod, client = paths["node"], paths["pod"], paths["client"]
        for p in paths.values():
            sh(p, "ip", "link", "set", "lo", "up")
        sh(node, "ip", "link", "add", "to-pod", "type", "veth", "peer", "name", "eth0", "netns", ns["pod"])
        sh(node, "ip", "link", "add", "to-client", "type", "veth", "peer", "name", "eth0", "netns", ns["client"])
        sh(node, "ip", "addr", "add", "10.180.0.254/24", "dev", "to-pod")
        sh(node, "ip", "addr", "add", f"{NODE_IP}/24", "dev", "to-client")
        for dev in ("to-pod", "to-client"):
            sh(node, "ip", "link", "set", dev, "up")
        sh(node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh(node, "ip", "route", "add", "172.30.0.0/16", "dev", "to-pod")  # for the node's own sockets
        for ip in POD_IPS:
            sh(pod, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        sh(pod, "ip", "link", "set", "eth0", "up")
        sh(pod, "ip", "route", "add", "default", "via", "10.180.0.254")
        sh(client, "ip", "addr", "add", f"{CLIENT_IP}/24", "dev", "eth0")
        sh(client, "ip", "link", "set", "eth0", "up")
        sh(client, "ip", "route", "add", "default", "via", NODE_IP)
        server = popen_in(pod, [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
        assert server.stdout.readline().strip() == "ready"
        yield paths
    finally:
        if server is not None:
            server.kill()
            server.wait()
        for name in ns.values():
            subprocess.run(["ip", "netns", "del", name], check=False)


def ask(path, ip, port, timeout=1.0):
    """One TCP connection from inside `path`: "<endpoint> <source seen>", or the error."""
    with in_netns(path):
        s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect((ip, port))
        return s.recv(100).decode()
    except ConnectionRefusedError:
        return "REFUSED"
    except (socket.timeout, TimeoutError):
        return "TIMEOUT"
    finally:
        s.close()


def answers(path, ip, port, n=20):
    return {ask(path, ip, port) for _ in range(n)}


def snap(*svcs):
    return ProxySnapshot(NODE, NODE_IP, "10.180.0.0/16", tuple(svcs))


CLUSTERIP = SP("ns1", "svc1", "http", "TCP", "172.30.0.41", 80,
               endpoints=(E("10.180.0.1", 80, node=NODE), E("10.180.0.2", 80, node="b")))
NODEPORT = SP("ns2", "np", "", "TCP", "172.30.0.42", 80, node_port=30080,
              endpoints=(E("10.180.0.3", 8080, node=NODE), E("10.180.0.4", 8080, node="b")))
LB = SP("ns3", "lb", "", "TCP", "172.30.0.43", 80, node_port=30081, load_balancer_ips=("5.6.7.8",),
        load_balancer_source_ranges=("192.168.0.0/24",), affinity_timeout=10800,
        endpoints=(E("10.180.0.5", 80, node=NODE), E("10.180.0.6", 80, node="b")))
EMPTY = SP("ns4", "empty", "", "TCP", "172.30.0.44", 80, node_port=30082, external_ips=("192.168.99.44",))
LOCAL = SP("ns5", "local", "", "TCP", "172.30.0.45", 80, node_port=30083, external_policy_local=True,
           endpoints=(E("10.180.0.7", 80, node=NODE), E("10.180.0.8", 80, node="b")))
DNS = SP("ns6", "dns", "dns", "UDP", "172.30.0.46", 53, endpoints=(E("10.180.0.9", 53, node=NODE),))
RICH = snap(CLUSTERIP, NODEPORT, LB, EMPTY, LOCAL, DNS)


def chain_rules(listing):
    """{chain: [rule, ...]} from `nft list table` output (type/policy lines left out)."""
    out, chain = {}, None
    for line in listing.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "chain" and words[2] == "{":
            chain = words[1]
            out[chain] = []
        elif line.strip() == "}":
            chain = None
        elif chain and line.strip() and not line.strip().startswith(("type ", "comment ")):
            out[chain].append(line.strip())
    return out


def rendered_rules(text):
    out = {}
    for line in text.splitlines():
        if line.startswith("add rule "):
            out.setdefault(line.split()[4], []).append(line)
    return out


def test_full_sync_programs_what_was_rendered(lab):
    proxier = NftablesProxier(lab["node"], service_cidrs=("172.30.0.0/16",))
    result = proxier.sync(RICH)
    assert result.full and result.transaction.startswith('add table ip kube-proxy { comment "rules for kube-proxy" ; }')
    listing = list_table(lab["node"])
    assert proxier.rules_text() == listing
    kernel = chain_rules(listing)
    want = rendered_rules(result.transaction)
    assert set(kernel) == {l.split()[4] for l in result.transaction.splitlines() if l.startswith("add chain ")}
    for chain, rules in want.items():
        # The kernel holds exactly the rendered rules of every chain (base chains: the last
        # flush wins, so the count is the rendered count).
        assert len(kernel[chain]) == len(rules), chain
    sv = names.service_chain(CLUSTERIP)
    assert "ip daddr 172.30.0.41 tcp dport 80 ip saddr != 10.180.0.0/16 jump mark-for-masquerade" in kernel[sv]
    assert any(r.startswith("numgen random mod 2 vmap { 0 : goto endpoint-") for r in kernel[sv])
    assert 'ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"' in kernel["cluster-ips-check"]
    assert "masquerade fully-random" in kernel["masquerading"]
    assert "type filter hook input priority -110; policy accept;" in listing
    assert "172.30.0.44 . tcp . 80 comment \"ns4/empty\" : goto reject-chain" in listing
    assert f"set {names.affinity_set(LB, LB.endpoints[0])} {{" in listing
    # The range holds the node IP, so the VIP is admitted too (the kernel sorts the set).
    assert "ip saddr != { 5.6.7.8, 192.168.0.0/24 } drop" in kernel[names.firewall_chain(LB)]
    # Nothing changed: no transaction at all.
    again = proxier.sync(RICH)
    assert not again.full and again.changed == set() and again.transaction == ""
    assert chain_rules(list_table(lab["node"])) == kernel


def test_partial_sync_rewrites_only_the_changed_service(lab):
    proxier = NftablesProxier(lab["node"])
    proxier.sync(RICH)
    for sp in (CLUSTERIP, NODEPORT):  # markers behind the proxy's back
        nft(lab["node"], ["add", "rule", "ip", "kube-proxy", names.service_chain(sp), "counter",
                          "comment", f'"marker-{sp.name}"'])
    np2 = replace(NODEPORT, endpoints=NODEPORT.endpoints + (E("10.180.0.9", 8080, node="b"),))
    result = proxier.sync(snap(CLUSTERIP, np2, LB, EMPTY, LOCAL, DNS))
    assert not result.full and result.changed == {"ns2/np"}
    assert {l.split()[4] for l in result.transaction.splitlines() if " chain " in l} == \
        {names.service_chain(np2), names.external_chain(np2)} | {names.endpoint_chain(np2, e) for e in np2.endpoints}
    listing = list_table(lab["node"])
    assert "marker-svc1" in listing and "marker-np" not in listing
    assert "dnat to 10.180.0.9:8080" in listing
    assert answers(lab["client"], NODE_IP, 30080, 40) >= {f"10.180.0.{i} 10.180.0.254" for i in (3, 4, 9)}


def test_stale_chains_are_flushed_then_deleted(lab):
    proxier = NftablesProxier(lab["node"], stale_chain_delay_s=0.0)
    proxier.sync(RICH)
    gone = {names.service_chain(CLUSTERIP)} | {names.endpoint_chain(CLUSTERIP, e) for e in CLUSTERIP.endpoints}
    result = proxier.sync(snap(NODEPORT, LB, EMPTY, LOCAL, DNS))
    assert set(result.stale_chains) == gone
    kernel = chain_rules(list_table(lab["node"]))
    assert all(kernel[c] == [] for c in gone)  # flushed, not yet deleted
    assert "172.30.0.41" not in list_table(lab["node"])
    result = proxier.sync(snap(NODEPORT, LB, EMPTY, LOCAL, DNS))
    assert set(result.deleted_chains) == gone and result.transaction == ""
    assert not gone & set(chain_rules(list_table(lab["node"])))
    # An affinity service losing an endpoint: its set goes at once.
    lb1 = replace(LB, endpoints=LB.endpoints[:1])
    result = proxier.sync(snap(NODEPORT, lb1, EMPTY, LOCAL, DNS))
    assert f"delete set ip kube-proxy {names.affinity_set(LB, LB.endpoints[1])}" in result.transaction
    assert names.affinity_set(LB, LB.endpoints[1]) not in list_table(lab["node"])


def test_leftover_chains_found_by_a_full_sync(lab):
    NftablesProxier(lab["node"]).sync(RICH)
    # A new process (kube-proxy restarted) with fewer services: it lists the kernel's chains.
    nft(lab["node"], ["add", "table", "ip", "other"])  # other tables' chains are not ours
    nft(lab["node"], ["add", "chain", "ip", "other", "a/b"])
    proxier = NftablesProxier(lab["node"], stale_chain_delay_s=0.0)
    result = proxier.sync(snap(NODEPORT))
    assert result.full and names.service_chain(CLUSTERIP) in result.stale_chains
    assert "a/b" not in result.stale_chains
    assert "delete chain ip kube-proxy nat-prerouting" in result.transaction  # base chains recreated
    assert f"delete set ip kube-proxy {names.affinity_set(LB, LB.endpoints[0])}" in result.transaction
    proxier.sync(snap(NODEPORT))
    assert "/" not in "".join(c for c in chain_rules(list_table(lab["node"])) if "ns2/np" not in c)


def test_table_gone_means_flushed_and_a_full_resync(lab):
    proxier = NftablesProxier(lab["node"])
    proxier.sync(RICH)
    assert not proxier.flushed()
    nft(lab["node"], ["delete", "table", "ip", "kube-proxy"])
    assert proxier.flushed() and list_table(lab["node"]) == ""
    result = proxier.sync(RICH)
    assert result.full and not proxier.flushed()
    assert answers(lab["client"], NODE_IP, 30080) <= {"10.180.0.3 10.180.0.254", "10.180.0.4 10.180.0.254"}


def test_failed_transaction_forces_a_full_sync(lab):
    proxier = NftablesProxier(lab["node"])
    proxier.sync(RICH)
    # Someone removes an element: the partial sync's delete of it fails, as in kube-proxy.
    nft(lab["node"], ["delete", "element", "ip", "kube-proxy", "service-ips", "{ 172.30.0.41 . tcp . 80 }"])
    result = proxier.sync(snap(replace(CLUSTERIP, endpoints=()), NODEPORT, LB, EMPTY, LOCAL, DNS))
    assert result.full and not proxier.need_full
    assert ask(lab["client"], "172.30.0.41", 80) == "REFUSED"
    # A full sync the kernel refuses raises and leaves the next one full too.
    proxier.service_cidrs = ("not-a-cidr",)  # options changed: full sync, with a bad rule
    with pytest.raises(OperationError):
        proxier.sync(RICH)
    assert proxier.need_full
    proxier.service_cidrs = ()
    assert proxier.sync(RICH).full


# --- real packets -----------------------------------------------------------------------

@pytest.fixture
def programmed(lab):
    sh(lab["client"], "ip", "route", "add", "172.30.0.0/16", "via", NODE_IP)
    sh(lab["client"], "ip", "route", "add", "5.6.7.8/32", "via", NODE_IP)
    proxier = NftablesProxier(lab["node"], service_cidrs=("172.30.0.0/16",))
    proxier.sync(RICH)
    return lab, proxier


def test_cluster_ip_from_outside_the_cluster_and_from_the_node(programmed):
    lab, _ = programmed
    # An off-cluster source is masqueraded (to the node's address towards the pod).
    assert answers(lab["client"], "172.30.0.41", 80) == {"10.180.0.1 10.180.0.254", "10.180.0.2 10.180.0.254"}
    assert {a.split()[0] for a in answers(lab["node"], "172.30.0.41", 80)} == {"10.180.0.1", "10.180.0.2"}
    # A port the ClusterIP does not serve is rejected; an unallocated ClusterIP dropped.
    assert ask(lab["client"], "172.30.0.41", 81) == "REFUSED"
    assert ask(lab["client"], "172.30.9.9", 80) == "TIMEOUT"


def test_node_port(programmed):
    lab, _ = programmed
    assert answers(lab["client"], NODE_IP, 30080) == {"10.180.0.3 10.180.0.254", "10.180.0.4 10.180.0.254"}


def test_load_balancer_source_ranges(programmed):
    lab, proxier = programmed
    # ClientIP affinity: every connection from the client sticks to one endpoint.
    got = answers(lab["client"], "5.6.7.8", 80, 10)
    assert len(got) == 1 and got <= {"10.180.0.5 10.180.0.254", "10.180.0.6 10.180.0.254"}
    proxier.sync(snap(CLUSTERIP, NODEPORT, replace(LB, load_balancer_source_ranges=("203.0.113.0/25",)),
                      EMPTY, LOCAL, DNS))
    assert ask(lab["client"], "5.6.7.8", 80) == "TIMEOUT"
    assert ask(lab["client"], NODE_IP, 30081) != "TIMEOUT"  # NodePorts bypass source ranges


def test_no_endpoints_rejects(programmed):
    lab, _ = programmed
    assert ask(lab["client"], "172.30.0.44", 80) == "REFUSED"
    assert ask(lab["client"], NODE_IP, 30082) == "REFUSED"
    # The node must have a route for the external IP, or it answers "unreachable" first.
    sh(lab["node"], "ip", "route", "add", "192.168.99.0/24", "dev", "to-pod")
    assert ask(lab["client"], "192.168.99.44", 80) == "REFUSED"
    assert ask(lab["node"], "172.30.0.44", 80) == "REFUSED"


def test_external_traffic_policy_local(programmed):
    lab, proxier = programmed
    # Only the local endpoint, and the client's own address is kept.
    assert answers(lab["client"], NODE_IP, 30083) == {f"10.180.0.7 {CLIENT_IP}"}
    # The ClusterIP still spreads over both.
    assert {a.split()[0] for a in answers(lab["client"], "172.30.0.45", 80)} == {"10.180.0.7", "10.180.0.8"}
    # No local endpoint: external traffic is dropped.
    proxier.sync(snap(CLUSTERIP, NODEPORT, LB, EMPTY, replace(LOCAL, endpoints=LOCAL.endpoints[1:]), DNS))
    assert ask(lab["client"], NODE_IP, 30083) == "TIMEOUT"


def _udp_flow_to_dns(lab) -> None:
    with in_netns(lab["client"]):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"x", ("172.30.0.46", 53))
    s.close()
    time.sleep(0.1)
    assert "src=10.180.0.9" in run_in(lab["node"], ["conntrack", "-L", "-p", "udp"]).stdout


def test_udp_conntrack_cleanup_per_event_up_to_1_31(programmed):
    lab, proxier = programmed
    proxier.release = (1, 31)  # kube-proxy <= 1.31: flows of a removed endpoint go at once
    _udp_flow_to_dns(lab)
    result = proxier.sync(snap(CLUSTERIP, NODEPORT, LB, EMPTY, LOCAL, replace(DNS, endpoints=())))
    assert ["conntrack", "-D", "--orig-dst", "172.30.0.46", "--dst-nat", "10.180.0.9", "-p", "udp"] \
        in result.conntrack and result.conntrack_errors == []
    assert "src=10.180.0.9" not in run_in(lab["node"], ["conntrack", "-L", "-p", "udp"]).stdout


def test_udp_service_scaled_to_zero_keeps_its_flow_in_1_33(programmed):
    """1.32+ reconcile instead, and skip a service port without serving endpoints
    (kubernetes#139628): the stale flow stays, as in 1.33."""
    lab, proxier = programmed
    assert proxier.release == (1, 33)
    _udp_flow_to_dns(lab)
    result = proxier.sync(snap(CLUSTERIP, NODEPORT, LB, EMPTY, LOCAL, replace(DNS, endpoints=())))
    assert result.conntrack == [] and result.conntrack_errors == []
    assert "src=10.180.0.9" in run_in(lab["node"], ["conntrack", "-L", "-p", "udp"]).stdout


def test_trace_names_the_rules_a_packet_met(programmed):
    lab, proxier = programmed
    before = proxier.counters()
    assert ask(lab["client"], "172.30.0.41", 80).startswith("10.180.0.")
    after = proxier.counters()
    hits = proxier.hits(before, after)
    chains = [c for _, c, _, _ in hits]
    assert "nat-prerouting" in chains and "services" in chains
    assert chains.index("services") < chains.index(names.service_chain(CLUSTERIP))
    assert any(c.startswith("endpoint-") and "dnat to" in r for _, c, r, _ in hits)
    assert "minikp-trace" not in run_in(lab["node"], ["nft", "list", "tables"]).stdout
