"""The ipvs proxier against a real IPVS kernel: real namespaces, real virtual servers, real
packets. A node namespace (cni0 bridge, node address 192.168.0.2) with three serve_hostname
pods and a client pod, served by minikp's own workload server; each test adds its own
Service (fresh ClusterIP) and syncs the proxier with the whole snapshot.

These need IPVS; where the kernel has none (this project's dev/CI machines) they skip with
that reason, and tests/test_vm_tier.py runs them inside a VM with a stock Debian kernel.
"""

import contextlib
import socket
import subprocess
import time
import uuid
from dataclasses import replace

import pytest

from minikp.nsenter import in_netns, run_in
from minikp.proxy.ipvs import kernel as ipvs_kernel
from minikp.proxy.ipvs import render as rd
from minikp.proxy.snapshot import Endpoint as E, ProxySnapshot, ServicePortInfo as SP
from minikp.workloads.images import HTTP, NAME, Listener
from minikp.workloads.server import WorkloadServer

_probe = f"minikp-test-ipvs-probe-{uuid.uuid4().hex[:6]}"
subprocess.run(["ip", "netns", "add", _probe], check=True)
try:
    GAPS = ipvs_kernel.missing(f"/run/netns/{_probe}")
finally:
    subprocess.run(["ip", "netns", "del", _probe], check=False)
if GAPS:
    pytest.skip("kernel lacks IPVS (" + "; ".join(GAPS) + "): tests/test_vm_tier.py runs these "
                "in a VM", allow_module_level=True)

from minikp.proxy.ipvs.proxier import IpvsProxier  # noqa: E402

NODE, NODE_IP = "node-a", "192.168.0.2"
POD_CIDR = "10.244.0.0/16"
PODS = {"pod-a": "10.244.1.2", "pod-b": "10.244.1.3", "pod-c": "10.244.1.4"}
CLIENT_IP = "10.244.1.10"
_vips = iter(range(10, 250))


def ip(*args, ns=None):
    argv = ["ip", *(["-n", ns] if ns else []), *args]
    r = subprocess.run(argv, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(argv)}: {r.stderr}"


class Topology:
    def __init__(self):
        tag = uuid.uuid4().hex[:6]
        self.names = {k: f"minikp-test-ipvs-{tag}-{k}" for k in ["node", *PODS, "client"]}
        self.path = {k: f"/run/netns/{v}" for k, v in self.names.items()}
        self.node = self.names["node"]
        self.server = WorkloadServer()
        self.proxier = None
        self.services: list[SP] = []

    def build(self):
        for n in self.names.values():
            ip("netns", "add", n)
            ip("link", "set", "lo", "up", ns=n)
        ip("link", "add", "cni0", "type", "bridge", ns=self.node)
        ip("addr", "add", "10.244.1.1/24", "dev", "cni0", ns=self.node)
        ip("link", "set", "cni0", "up", ns=self.node)
        ip("link", "add", "eth0", "type", "veth", "peer", "name", "uplink", ns=self.node)
        ip("addr", "add", f"{NODE_IP}/24", "dev", "eth0", ns=self.node)
        ip("link", "set", "eth0", "up", ns=self.node)
        ip("link", "set", "uplink", "up", ns=self.node)
        for key, addr in [*PODS.items(), ("client", CLIENT_IP)]:
            ns = self.names[key]
            ip("link", "add", f"v-{key}", "type", "veth", "peer", "name", "eth0", "netns", ns, ns=self.node)
            ip("link", "set", f"v-{key}", "master", "cni0", "up", ns=self.node)
            ip("addr", "add", f"{addr}/24", "dev", "eth0", ns=ns)
            ip("link", "set", "eth0", "up", ns=ns)
            ip("route", "add", "default", "via", "10.244.1.1", ns=ns)
        run_in(self.path["node"], ["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"], check=True)
        self.server.start()
        for key in PODS:
            self.server.add(key, self.path[key], key, [Listener("TCP", 9376, HTTP), Listener("UDP", 9376, NAME)])
        self.proxier = IpvsProxier(self.path["node"], "auto")

    def teardown(self):
        if self.proxier:
            self.proxier.close()
        for key in PODS:
            if key in self.server.keys():
                self.server.remove(key)
        self.server.stop()
        for n in self.names.values():
            subprocess.run(["ip", "netns", "del", n], capture_output=True)

    def sync(self):
        return self.proxier.sync(ProxySnapshot(NODE, NODE_IP, POD_CIDR, tuple(self.services)))

    def add_service(self, **kw) -> SP:
        vip = f"10.96.0.{next(_vips)}"
        base = dict(namespace="default", name=f"svc-{vip.rsplit('.', 1)[1]}", port_name="", protocol="TCP",
                    cluster_ip=vip, port=80,
                    endpoints=tuple(E(a, 9376, node=NODE) for a in PODS.values()))
        sp = SP(**{**base, **kw})
        self.services.append(sp)
        return sp

    def replace_service(self, old: SP, new: SP) -> SP:
        self.services[self.services.index(old)] = new
        return new

    def get(self, host, port=80, timeout=3.0, sock=None, connected=False):
        """One HTTP request from the client pod; the name of the pod that answered."""
        with in_netns(self.path["client"]):
            s = sock or socket.socket()
        s.settimeout(timeout)
        try:
            if not connected:
                s.connect((host, port))
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            return data.split(b"\r\n\r\n", 1)[1].decode().strip()
        finally:
            s.close()

    def concurrent(self, host, n, port=80):
        """n connections opened together (each one active while the next is scheduled),
        then asked in turn: the pods they reached."""
        with in_netns(self.path["client"]):
            socks = [socket.socket() for _ in range(n)]
        for s in socks:
            s.settimeout(3.0)
            s.connect((host, port))
        return [self.get(host, port, sock=s, connected=True) for s in socks]

    def udp(self, host, port=80, timeout=3.0):
        with in_netns(self.path["client"]):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        try:
            s.sendto(b"hi", (host, port))
            return s.recvfrom(512)[0].decode().strip()
        finally:
            s.close()

    @contextlib.contextmanager
    def udp_flow(self):
        """One client UDP socket kept across calls (one conntrack flow): yields ask(host,
        port, timeout) -> the name of the pod that answered."""
        with in_netns(self.path["client"]):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

        def ask(host, port, timeout=3.0):
            s.settimeout(timeout)
            s.sendto(b"hi", (host, port))
            return s.recvfrom(512)[0].decode().strip()
        try:
            yield ask
        finally:
            s.close()

    def node_cmd(self, *argv):
        return run_in(self.path["node"], list(argv), check=True).stdout


@pytest.fixture(scope="module")
def topo():
    t = Topology()
    try:
        t.build()
        yield t
    finally:
        t.teardown()


def test_hostnames_shape(topo):
    """The issue's acceptance: 3 masquerading real servers, the ClusterIP on kube-ipvs0 and
    in KUBE-CLUSTER-IP, 60 requests reach all 3 pods."""
    sp = topo.add_service(name="hostnames")
    result = topo.sync()
    assert f"add vs {sp.cluster_ip}:80/TCP rr" in result.ops
    listing = topo.node_cmd("ipvsadm", "-Ln")
    assert f"TCP  {sp.cluster_ip}:80 rr" in listing
    for a in PODS.values():
        assert f"-> {a}:9376" in listing and "Masq    1" in listing
    assert f"inet {sp.cluster_ip}/32" in topo.node_cmd("ip", "-4", "addr", "show", "kube-ipvs0")
    assert f"{sp.cluster_ip},tcp:80" in topo.node_cmd("ipset", "list", rd.CLUSTER_IP)
    answers = [topo.get(sp.cluster_ip) for _ in range(60)]
    assert set(answers) == set(PODS) and all(answers.count(p) == 20 for p in PODS), answers


def test_second_sync_touches_nothing_and_one_endpoint_change_touches_one(topo):
    sp = topo.add_service()
    topo.sync()
    assert topo.sync().ops == []
    topo.replace_service(sp, replace(sp, endpoints=sp.endpoints[:2]))
    ops = topo.sync().ops
    # no connections are open: the leaving real server goes at once
    assert ops == [f"del rs {sp.cluster_ip}:80/TCP {PODS['pod-c']}:9376"], ops


HASHING = ("sh", "dh")  # one client (sh: its address), one VIP (dh): always the same pod
LOCALITY = ("lblc", "lblcr")  # the VIP's pod, until it has more active connections than its weight
IDLE_FIRST = ("sed", "nq")  # pick by active connections only: one at a time -> the same pod


@pytest.mark.parametrize("sched", rd.SCHEDULERS)
def test_scheduler(topo, sched):
    if sched != "rr" and ipvs_kernel.missing(topo.path["node"], (sched,)):
        pytest.skip(f"kernel has no ip_vs_{sched}")
    sp = topo.add_service(ipvs_scheduler=sched)
    topo.sync()
    assert f"TCP  {sp.cluster_ip}:80 {sched}" in topo.node_cmd("ipvsadm", "-Ln")
    one_at_a_time = [topo.get(sp.cluster_ip) for _ in range(12)]
    held = topo.concurrent(sp.cluster_ip, 3)
    if sched in HASHING:
        assert len(set(one_at_a_time)) == 1 and len(set(held)) == 1, (one_at_a_time, held)
    elif sched in LOCALITY:
        first = one_at_a_time[0]
        assert set(one_at_a_time) == {first} and held[:2] == [first, first] and held[2] != first, \
            (one_at_a_time, held)
    elif sched == "mh":  # kube-proxy's FlagSourceHash is MH_PORT: source address *and port*
        assert len(set(one_at_a_time)) > 1, one_at_a_time
    elif sched in IDLE_FIRST:
        assert len(set(one_at_a_time)) == 1 and sorted(held) == sorted(PODS), (one_at_a_time, held)
    else:  # rr wrr lc wlc: equal weights spread both ways
        assert set(one_at_a_time) == set(PODS) and sorted(held) == sorted(PODS), (one_at_a_time, held)
    if sched == "mh":
        vs = topo.proxier.kernel.virtual_servers()[(sp.cluster_ip, "TCP", 80)]
        assert vs.flags & rd.FLAG_SOURCE_HASH


def test_session_affinity_client_ip(topo):
    sp = topo.add_service(affinity_timeout=10800)
    topo.sync()
    assert "persistent 10800" in topo.node_cmd("ipvsadm", "-Ln", "-t", f"{sp.cluster_ip}:80")
    assert len({topo.get(sp.cluster_ip) for _ in range(9)}) == 1


def test_nodeport_on_node_addresses(topo):
    sp = topo.add_service(node_port=30080)
    topo.sync()
    listing = topo.node_cmd("ipvsadm", "-Ln")
    assert f"TCP  {NODE_IP}:30080 rr" in listing and "TCP  10.244.1.1:30080 rr" in listing
    assert "30080" in topo.node_cmd("ipset", "list", rd.NODE_PORT_TCP)
    assert set(topo.get(NODE_IP, 30080) for _ in range(9)) == set(PODS)
    topo.replace_service(sp, replace(sp, node_port=0))


def test_no_endpoints_is_refused(topo):
    sp = topo.add_service(endpoints=())
    topo.sync()
    assert f"TCP  {sp.cluster_ip}:80 rr" in topo.node_cmd("ipvsadm", "-Ln")
    with pytest.raises(ConnectionRefusedError):
        topo.get(sp.cluster_ip)


def test_udp_service(topo):
    sp = topo.add_service(protocol="UDP", port=53)
    topo.sync()
    assert {topo.udp(sp.cluster_ip, 53) for _ in range(6)} <= set(PODS)
    assert f"{sp.cluster_ip},udp:53" in topo.node_cmd("ipset", "list", rd.CLUSTER_IP)


def test_graceful_termination(topo):
    sp = topo.add_service(endpoints=(E(PODS["pod-a"], 9376, node=NODE),))
    topo.sync()
    key = (sp.cluster_ip, "TCP", 80)
    with in_netns(topo.path["client"]):
        held = socket.create_connection((sp.cluster_ip, 80), timeout=3)
    try:
        topo.replace_service(sp, sp := replace(sp, endpoints=(E(PODS["pod-b"], 9376, node=NODE),)))
        ops = topo.sync().ops
        assert f"weight 0 {sp.cluster_ip}:80/TCP {PODS['pod-a']}:9376" in ops
        rs = topo.proxier.kernel.real_servers(key)
        assert rs[f"{PODS['pod-a']}:9376"].weight == 0 and rs[f"{PODS['pod-b']}:9376"].weight == 1
        assert topo.get(sp.cluster_ip) == "pod-b"  # new connections avoid the leaving one
        assert topo.proxier.reap_terminating() == []  # still connected
    finally:  # an RST puts the IPVS connection in CLOSE (10 s), not TIME_WAIT (2 min)
        held.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        held.close()
    deadline = time.monotonic() + 60
    while topo.proxier.terminating and time.monotonic() < deadline:
        topo.proxier.reap_terminating()
        time.sleep(1)
    assert not topo.proxier.terminating
    assert list(topo.proxier.kernel.real_servers(key)) == [f"{PODS['pod-b']}:9376"]


def test_removed_service_goes_away_with_its_address(topo):
    sp = topo.add_service()
    topo.sync()
    topo.services.remove(sp)
    ops = topo.sync().ops
    assert f"del vs {sp.cluster_ip}:80/TCP" in ops and f"unbind {sp.cluster_ip}" in ops
    assert f"{sp.cluster_ip}:80" not in topo.node_cmd("ipvsadm", "-Ln")
    assert sp.cluster_ip not in topo.node_cmd("ip", "-4", "addr", "show", "kube-ipvs0")


def test_flushed_forces_a_full_sync_that_restores_everything(topo):
    sp = topo.add_service()
    topo.sync()
    iptables = f"iptables-{topo.proxier.backend}"
    topo.node_cmd("ipvsadm", "-C")
    topo.node_cmd(iptables, "-t", "nat", "-F", "KUBE-SERVICES")
    for builtin in ("PREROUTING", "OUTPUT"):
        topo.node_cmd(iptables, "-t", "nat", "-D", builtin, "-m", "comment", "--comment",
                      "kubernetes service portals", "-j", "KUBE-SERVICES")
    topo.node_cmd(iptables, "-t", "nat", "-X", "KUBE-SERVICES")
    assert topo.proxier.flushed()
    assert topo.sync().full
    assert set(topo.get(sp.cluster_ip) for _ in range(6)) == set(PODS)


def test_sysctls_in_the_node_namespace_only(topo):
    assert topo.node_cmd("sysctl", "-n", "net.ipv4.vs.conntrack").strip() == "1"
    assert topo.node_cmd("sysctl", "-n", "net.ipv4.vs.expire_nodest_conn").strip() == "1"
    assert topo.node_cmd("sysctl", "-n", "net.ipv4.vs.expire_quiescent_template").strip() == "1"


def test_rules_text_shows_the_kernel_tools(topo):
    text = topo.proxier.rules_text()
    for title in ("# ipvsadm -Ln", "# ipset list", "# iptables-"):
        assert title in text
    assert "Name: KUBE-CLUSTER-IP" in text and ":KUBE-IPVS-FILTER" in text
    assert "Conns" in topo.proxier.rules_text(fmt="stats")
    assert "pro expire state" in topo.proxier.rules_text(fmt="connections")
    assert topo.proxier.rules_text("nat", "iptables").startswith("# Generated by")


def test_trace_names_the_virtual_and_real_server(topo):
    sp = topo.add_service(endpoints=(E(PODS["pod-b"], 9376, node=NODE),))
    topo.sync()
    before = topo.proxier.counters()
    assert topo.get(sp.cluster_ip) == "pod-b"
    hits = topo.proxier.hits(before, topo.proxier.counters())
    ipvs = [h for h in hits if h[0] == "ipvs"]
    assert ipvs == [("ipvs", f"TCP  {sp.cluster_ip}:80 rr", f"-> {PODS['pod-b']}:9376 Masq", 1)]
    assert any(h[1] == "KUBE-SERVICES" and "KUBE-CLUSTER-IP dst,dst -j ACCEPT" in h[2] for h in hits), hits


def test_service_paths_show_frontends_and_real_servers(topo):
    sp = topo.add_service(name="paths", node_port=30070)
    topo.sync()
    [path] = topo.proxier.service_paths("default/paths")
    assert {f.kind for f in path.frontends} == {"cluster IP", "node port"}
    assert [b.endpoint for b in path.branches] == sorted(f"{a}:9376" for a in PODS.values())
    assert all(abs(b.share - 1 / 3) < 1e-9 for b in path.branches)
    topo.replace_service(sp, replace(sp, node_port=0))


def test_load_balancer_source_ranges(topo):
    allowed = topo.add_service(load_balancer_ips=("192.0.2.10",), load_balancer_source_ranges=(POD_CIDR,))
    denied = topo.add_service(load_balancer_ips=("192.0.2.11",), load_balancer_source_ranges=("203.0.113.0/24",))
    topo.sync()
    assert "192.0.2.10,tcp:80,10.244.0.0/16" in topo.node_cmd("ipset", "list", rd.LOAD_BALANCER_SOURCE_CIDR)
    assert set(topo.get("192.0.2.10") for _ in range(6)) == set(PODS)
    with pytest.raises((TimeoutError, socket.timeout)):
        topo.get("192.0.2.11", timeout=1.0)
    # the node (192.168.0.2) is outside both ranges: kube-proxy blocks it from the VIPs (#119656)
    save = topo.node_cmd(f"iptables-{topo.proxier.backend}-save", "-t", "filter")
    assert "-A KUBE-IPVS-OUT-FILTER -s 192.0.2.11/32 -m ipvs --vproto 6 --vaddr 192.0.2.11 --vport 80 -j DROP" \
        in save, save
    topo.services.remove(allowed)
    topo.services.remove(denied)


def test_external_ip(topo):
    sp = topo.add_service(external_ips=("198.18.0.10",))
    topo.sync()
    assert "inet 198.18.0.10/32" in topo.node_cmd("ip", "-4", "addr", "show", "kube-ipvs0")
    assert "198.18.0.10,tcp:80" in topo.node_cmd("ipset", "list", rd.EXTERNAL_IP)
    assert set(topo.get("198.18.0.10") for _ in range(6)) == set(PODS)
    topo.services.remove(sp)


def test_traffic_policies_local(topo):
    eps = (E(PODS["pod-a"], 9376, node=NODE), E(PODS["pod-b"], 9376, node="node-b"))
    internal = topo.add_service(internal_policy_local=True, endpoints=eps)
    external = topo.add_service(external_policy_local=True, node_port=30090, endpoints=eps)
    topo.sync()
    assert {topo.get(internal.cluster_ip) for _ in range(6)} == {"pod-a"}
    assert {topo.get(NODE_IP, 30090) for _ in range(6)} == {"pod-a"}
    assert {topo.get(external.cluster_ip) for _ in range(6)} == {"pod-a", "pod-b"}
    assert "30090" in topo.node_cmd("ipset", "list", rd.NODE_PORT_LOCAL_TCP)
    topo.services.remove(external)


@pytest.mark.parametrize("release", [(1, 31)], ids=["per-event-1.31"])
def test_udp_endpoint_leaving_clears_its_conntrack_entries(topo, release, monkeypatch):
    monkeypatch.setattr(topo.proxier, "release", release)
    sp = topo.add_service(protocol="UDP", port=5353, endpoints=(E(PODS["pod-c"], 9376, node=NODE),))
    topo.sync()
    assert topo.udp(sp.cluster_ip, 5353) == "pod-c"
    topo.replace_service(sp, replace(sp, endpoints=(E(PODS["pod-a"], 9376, node=NODE),)))
    result = topo.sync()
    assert ["conntrack", "-D", "--orig-dst", sp.cluster_ip, "--dst-nat", PODS["pod-c"], "-p", "udp"] \
        in result.conntrack
    assert result.conntrack_errors == []
    assert f"del rs {sp.cluster_ip}:5353/UDP {PODS['pod-c']}:9376" in result.ops  # UDP: at once
    assert topo.udp(sp.cluster_ip, 5353) == "pod-a"


def test_udp_reconciler_1_33_finds_ipvs_already_expired_the_flow(topo, monkeypatch):
    """1.33's ipvs proxier.go ends its sync as iptables mode does: `if
    endpointUpdateResult.ConntrackCleanupRequired { conntrack.CleanStaleEntries(...) }`. In
    ipvs mode the kernel comes first: deleting a real server with expire_nodest_conn=1 queues
    the expiry of its connections (kernel >= 5.9, the change made for kube-proxy), and with
    vs.conntrack=1 each takes its conntrack entry along. So the reconciler, listing the flows
    after the sync, finds none to pod-c; it still deletes a stale flow IPVS does not own (one
    made by hand, as a lost event would leave). The client's kept socket then reaches pod-a
    with its next datagram, none lost."""
    monkeypatch.setattr(topo.proxier, "release", (1, 33))
    sp = topo.add_service(protocol="UDP", port=5354, endpoints=(E(PODS["pod-c"], 9376, node=NODE),))
    topo.sync()
    with topo.udp_flow() as ask:
        assert ask(sp.cluster_ip, 5354) == "pod-c"
        flows = topo.node_cmd("conntrack", "-L", "-p", "udp")
        assert f"dst={sp.cluster_ip}" in flows and f"src={PODS['pod-c']}" in flows, flows
        gone_pod = "10.244.1.99"  # a stale flow no IPVS connection owns
        topo.node_cmd("conntrack", "-I", "-p", "udp", "-s", CLIENT_IP, "-d", sp.cluster_ip, "--sport", "40000",
                      "--dport", "5354", "-r", gone_pod, "-q", CLIENT_IP, "--reply-port-src", "9376",
                      "--reply-port-dst", "40000", "-t", "60")
        topo.replace_service(sp, replace(sp, endpoints=(E(PODS["pod-a"], 9376, node=NODE),)))
        result = topo.sync()
        assert f"del rs {sp.cluster_ip}:5354/UDP {PODS['pod-c']}:9376" in result.ops  # UDP: at once
        assert result.conntrack == [["conntrack", "-D", "-p", "udp", "--orig-dst", sp.cluster_ip, "--dport", "5354",
                                     "--reply-src", gone_pod]], flows
        assert result.conntrack_errors == []
        left = topo.node_cmd("conntrack", "-L", "-p", "udp")
        assert f"src={PODS['pod-c']}" not in left and f"src={gone_pod}" not in left, left
        assert ask(sp.cluster_ip, 5354, timeout=1.0) == "pod-a"


def test_sctp_virtual_server(topo):
    if ipvs_kernel.missing(topo.path["node"]) or not __import__("os").path.exists("/proc/net/sctp"):
        pytest.skip("kernel has no SCTP")
    sp = topo.add_service(protocol="SCTP", port=9999)
    topo.sync()
    assert f"SCTP {sp.cluster_ip}:9999 rr" in topo.node_cmd("ipvsadm", "-Ln")
    assert f"{sp.cluster_ip},sctp:9999" in topo.node_cmd("ipset", "list", rd.CLUSTER_IP)
