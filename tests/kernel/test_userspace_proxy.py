"""The userspace proxier against the real kernel: a node namespace with a pod bridge, pods
with real TCP/UDP servers, an outside client; real connections through the portal rules to
the proxy sockets and on to the pods. Namespaces are minikp-userspace-test-*, removed after
each test."""

import socket
import subprocess
import threading
import time
import uuid
from dataclasses import replace

import pytest

from minikp.nsenter import in_netns, run_in
from minikp.proxy.iptables.tools import save
from minikp.proxy.snapshot import Endpoint as E, ProxySnapshot, ServicePortInfo as SP
from minikp.proxy.userspace import eventloop
from minikp.proxy.userspace.proxier import UserspaceProxier

NODE_IP, CLIENT_IP, GATEWAY = "192.168.77.2", "192.168.77.3", "10.77.0.1"
PODS = {"pod-1": "10.77.0.11", "pod-2": "10.77.0.12", "pod-3": "10.77.0.13", "dead": "10.77.0.14"}
LIVE = ("pod-1", "pod-2", "pod-3")
TCP_PORT, UDP_PORT = 8080, 5353


def sh(path, *argv):
    res = run_in(path, list(argv)) if path else subprocess.run(list(argv), capture_output=True, text=True)
    assert res.returncode == 0, f"{argv}: {res.stderr}"


class Servers:
    """A TCP server (answers its pod name, then closes) and a UDP server (answers each
    datagram with its pod name) in each live pod; one thread each."""

    def __init__(self, paths):
        self.socks, self.threads = [], []
        self.stopping = threading.Event()
        for pod in LIVE:
            with in_netns(paths[pod]):
                t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            t.bind((PODS[pod], TCP_PORT))
            t.listen(128)
            u.bind((PODS[pod], UDP_PORT))
            self.socks += [t, u]
            for sock in (t, u):
                sock.settimeout(0.1)  # so the threads notice stop()
            for fn, s in ((self._tcp, t), (self._udp, u)):
                th = threading.Thread(target=fn, args=(s, pod.encode()), daemon=True)
                th.start()
                self.threads.append(th)

    def _tcp(self, s, name):
        while not self.stopping.is_set():
            try:
                conn, peer = s.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            with conn:
                conn.recv(1024)
                conn.sendall(name + b" " + peer[0].encode())

    def _udp(self, s, name):
        while not self.stopping.is_set():
            try:
                data, peer = s.recvfrom(4096)
                s.sendto(name, peer)
            except TimeoutError:
                continue
            except OSError:
                return

    def stop(self):
        self.stopping.set()
        for th in self.threads:
            th.join()
        for s in self.socks:
            s.close()


@pytest.fixture
def topo():
    """node (eth0 to an outside client, cni0 bridge with four pods) as the CNI bridge makes it."""
    tag = f"minikp-userspace-test-{uuid.uuid4().hex[:6]}"
    names = {k: f"{tag}-{k}" for k in ("node", "client", *PODS)}
    paths = {k: f"/run/netns/{v}" for k, v in names.items()}
    servers = None
    try:
        for n in names.values():
            sh(None, "ip", "netns", "add", n)
            sh(paths_of(n), "ip", "link", "set", "lo", "up")
        node = paths["node"]
        sh(node, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", names["client"])
        sh(node, "ip", "addr", "add", f"{NODE_IP}/24", "dev", "eth0")
        sh(node, "ip", "link", "set", "eth0", "up")
        sh(paths["client"], "ip", "addr", "add", f"{CLIENT_IP}/24", "dev", "eth0")
        sh(paths["client"], "ip", "link", "set", "eth0", "up")
        sh(node, "ip", "route", "add", "default", "via", CLIENT_IP)  # as a kind node's default route
        sh(node, "ip", "link", "add", "cni0", "type", "bridge")
        sh(node, "ip", "addr", "add", f"{GATEWAY}/24", "dev", "cni0")
        sh(node, "ip", "link", "set", "cni0", "up")
        for i, (pod, ip) in enumerate(PODS.items()):
            sh(node, "ip", "link", "add", f"veth{i}", "type", "veth", "peer", "name", "eth0", "netns", names[pod])
            sh(node, "ip", "link", "set", f"veth{i}", "master", "cni0", "up")
            sh(paths[pod], "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
            sh(paths[pod], "ip", "link", "set", "eth0", "up")
            sh(paths[pod], "ip", "route", "add", "default", "via", GATEWAY)
        servers = Servers(paths)
        yield paths
    finally:
        if servers:
            servers.stop()
        for n in names.values():
            subprocess.run(["ip", "netns", "del", n], capture_output=True)


def paths_of(name):
    return f"/run/netns/{name}"


@pytest.fixture
def proxier_factory():
    made = []

    def make(path, backend="legacy", **kw):
        p = UserspaceProxier(path, backend, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def eps(*pods, port=TCP_PORT):
    return tuple(E(PODS[p], port) for p in pods)


WEB = SP("default", "hostnames", "default", "TCP", "10.96.77.10", 80, endpoints=eps(*LIVE))
NODEPORT = SP("default", "np", "", "TCP", "10.96.77.11", 80, node_port=30080, endpoints=eps(*LIVE))
STICKY = SP("default", "sticky", "", "TCP", "10.96.77.12", 80, affinity_timeout=600, endpoints=eps(*LIVE))
DNS = SP("default", "dns", "dns", "UDP", "10.96.77.13", 53, endpoints=eps(*LIVE, port=UDP_PORT))
RETRY = SP("default", "retry", "", "TCP", "10.96.77.14", 80, endpoints=eps("pod-1", "dead", "pod-2", "pod-3"))


def snap(*svcs):
    return ProxySnapshot("node-a", NODE_IP, "10.77.0.0/16", tuple(svcs))


def tcp(path, ip, port, timeout=5.0):
    """One request: connect, send, read to EOF. The answering pod's name, or an ERROR."""
    with in_netns(path):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((ip, port))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        return data.decode()
    except OSError as e:
        return f"ERROR {e}"
    finally:
        s.close()


def udp(path, ip, port, timeout=3.0):
    """A connected UDP socket: the reply must come from the address we sent to."""
    with in_netns(path):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.connect((ip, port))
        s.send(b"hostname")
        return s.recv(4096).decode()
    except OSError as e:
        return f"ERROR {e}"
    finally:
        s.close()


def backends(answers):
    return [a.split()[0] for a in answers]


def test_cluster_ip_from_a_pod_round_robin_over_three(topo, proxier_factory):
    p = proxier_factory(topo["node"])
    r = p.sync(snap(WEB))
    assert r.full and r.opened == ["default/hostnames:default"]
    answers = [tcp(topo["pod-1"], "10.96.77.10", 80) for _ in range(60)]
    assert not [a for a in answers if a.startswith("ERROR")], answers
    got = backends(answers)
    assert {b: got.count(b) for b in LIVE} == {"pod-1": 20, "pod-2": 20, "pod-3": 20}
    # Round robin: each window of three consecutive requests covers all three pods.
    assert all(len(set(got[i:i + 3])) == 3 for i in range(0, 60, 3))
    # The pods see the proxy's address on the pod bridge, never the client pod's.
    assert {a.split()[1] for a in answers} == {GATEWAY}


def test_cluster_ip_from_the_node_itself(topo, proxier_factory):
    p = proxier_factory(topo["node"])
    p.sync(snap(WEB))
    got = backends(tcp(topo["node"], "10.96.77.10", 80) for _ in range(6))
    assert sorted(got) == sorted(LIVE * 2)


def test_node_port_from_outside_and_from_the_node(topo, proxier_factory):
    p = proxier_factory(topo["node"])
    p.sync(snap(NODEPORT))
    got = backends(tcp(topo["client"], NODE_IP, 30080) for _ in range(6))
    assert sorted(got) == sorted(LIVE * 2)
    assert backends([tcp(topo["node"], NODE_IP, 30080)])[0] in LIVE
    # claimNodePort: the node port itself is held by a listening socket of the proxier.
    out = run_in(topo["node"], ["ss", "-Hltn", "sport = :30080"]).stdout
    assert ":30080" in out


def test_rules_as_the_kernel_saves_them(topo, proxier_factory):
    p = proxier_factory(topo["node"])
    p.sync(snap(WEB, NODEPORT))
    port, np_port = p.proxy_port("default/hostnames:default"), p.proxy_port("default/np")
    nat = p.rules_text("nat")
    # The k8s debug-service page's userspace example, with this cluster's addresses.
    assert (f'-A KUBE-PORTALS-CONTAINER -d 10.96.77.10/32 -p tcp -m comment --comment "default/hostnames:default" '
            f"-m tcp --dport 80 -j REDIRECT --to-ports {port}") in nat
    assert (f'-A KUBE-PORTALS-HOST -d 10.96.77.10/32 -p tcp -m comment --comment "default/hostnames:default" '
            f"-m tcp --dport 80 -j DNAT --to-destination {NODE_IP}:{port}") in nat
    assert (f'-A KUBE-NODEPORT-CONTAINER -p tcp -m comment --comment "default/np" -m tcp --dport 30080 '
            f"-j REDIRECT --to-ports {np_port}") in nat
    pre = [l for l in nat.splitlines() if l.startswith("-A PREROUTING")]
    assert pre == ['-A PREROUTING -m comment --comment "handle ClusterIPs; NOTE: this must be before the NodePort rules" -j KUBE-PORTALS-CONTAINER',
                   '-A PREROUTING -m addrtype --dst-type LOCAL -m comment --comment "handle service NodePorts; NOTE: this must be the last rule in the chain" -j KUBE-NODEPORT-CONTAINER']
    filt = p.rules_text("filter")
    assert (f'-A KUBE-NODEPORT-NON-LOCAL -p tcp -m comment --comment "default/np" -m tcp --dport {np_port} '
            "-m state --state NEW -j ACCEPT") in filt
    assert p.describe() == "userspace (legacy)"


def test_session_affinity_pins_each_client(topo, proxier_factory):
    p = proxier_factory(topo["node"])
    p.sync(snap(STICKY))
    for pod in ("pod-1", "pod-2"):
        got = backends(tcp(topo[pod], "10.96.77.12", 80) for _ in range(10))
        assert len(set(got)) == 1, got
    # Two clients got different endpoints: the rotation moved on between them.
    a = backends([tcp(topo["pod-1"], "10.96.77.12", 80)])[0]
    b = backends([tcp(topo["pod-2"], "10.96.77.12", 80)])[0]
    assert a != b


def test_udp_sessions_round_robin_and_idle_out(topo, proxier_factory):
    p = proxier_factory(topo["node"], udp_timeout_s=0.3)
    p.sync(snap(DNS))
    answers = [udp(topo["pod-1"], "10.96.77.13", 53) for _ in range(6)]  # a new client port each
    assert sorted(answers) == sorted(LIVE * 2), answers
    from_node = udp(topo["node"], "10.96.77.13", 53)
    assert from_node in LIVE
    # One client socket, several datagrams: one session, one backend.
    with in_netns(topo["pod-2"]):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.connect(("10.96.77.13", 53))
    got = set()
    for _ in range(5):
        s.send(b"x")
        got.add(s.recv(100))
    s.close()
    assert len(got) == 1
    sock = p.ports["default/dns:dns"].sock
    deadline = time.monotonic() + 10
    while eventloop_sessions(p, sock) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert eventloop_sessions(p, sock) == 0  # every session timed out and was dropped


def eventloop_sessions(p, sock):
    async def count():
        return len(sock.sessions)
    return p._loop.run(count())


def test_a_dead_listed_endpoint_is_retried_and_every_request_succeeds(topo, proxier_factory):
    p = proxier_factory(topo["node"])
    p.sync(snap(RETRY))
    answers = [tcp(topo["pod-1"], "10.96.77.14", 80) for _ in range(40)]
    assert not [a for a in answers if a.startswith("ERROR")], answers
    got = backends(answers)
    assert set(got) == set(LIVE)
    stats = p.stats("default/retry")
    assert stats.failed_dials >= 5 and stats.gave_up == 0  # the dead pod was tried and skipped


def test_no_endpoints_closes_the_client(topo, proxier_factory):
    p = proxier_factory(topo["node"])
    p.sync(snap(replace(WEB, endpoints=())))
    answer = tcp(topo["pod-1"], "10.96.77.10", 80, timeout=3)
    assert answer == "" or answer.startswith("ERROR"), answer  # accepted, then closed
    assert p.stats("default/hostnames:default").gave_up >= 1


def test_endpoint_changes_keep_the_socket_config_changes_reopen_it(topo, proxier_factory):
    p = proxier_factory(topo["node"])
    p.sync(snap(WEB, DNS))
    port = p.proxy_port("default/hostnames:default")
    r = p.sync(snap(replace(WEB, endpoints=eps("pod-2")), DNS))
    assert not r.full and r.lines == 0 and r.changed == {"default/hostnames"}
    assert p.proxy_port("default/hostnames:default") == port
    assert set(backends(tcp(topo["pod-1"], "10.96.77.10", 80) for _ in range(4))) == {"pod-2"}
    r = p.sync(snap(replace(WEB, endpoints=eps("pod-2"), node_port=30090), DNS))
    assert r.closed == r.opened == ["default/hostnames:default"] and r.lines > 0
    assert p.proxy_port("default/hostnames:default") != port
    assert backends([tcp(topo["client"], NODE_IP, 30090)]) == ["pod-2"]
    # The UDP service goes away: its socket closes and its flows are cleared.
    r = p.sync(snap(replace(WEB, endpoints=eps("pod-2"), node_port=30090)))
    assert r.closed == ["default/dns:dns"] and r.conntrack == [["conntrack", "-D", "--orig-dst", "10.96.77.13", "-p", "udp"]]
    assert r.conntrack_errors == []
    assert "default/dns" not in save(topo["node"], "legacy", "nat")


@pytest.mark.parametrize("backend", ["legacy", "nft"])
def test_flushed_rules_are_noticed_and_rewritten(topo, proxier_factory, backend):
    p = proxier_factory(topo["node"], backend)
    assert not p.flushed()  # nothing synced yet, nothing to lose
    p.sync(snap(WEB))
    assert not p.flushed()
    sh(topo["node"], f"iptables-{backend}", "-t", "nat", "-F", "KUBE-PORTALS-CONTAINER")
    assert p.flushed()
    assert p.sync(snap(WEB)).full
    assert not p.flushed()
    assert backends([tcp(topo["pod-1"], "10.96.77.10", 80)])[0] in LIVE
    sh(topo["node"], f"iptables-{backend}", "-t", "nat", "-F")
    assert p.flushed() and p.sync(snap(WEB)).full
    assert backends([tcp(topo["pod-1"], "10.96.77.10", 80)])[0] in LIVE


def test_close_stops_every_socket_and_the_shared_loop(topo):
    a, b = UserspaceProxier(topo["node"], "legacy"), UserspaceProxier(topo["node"], "legacy")
    a.sync(snap(WEB))
    b.sync(snap(NODEPORT))
    assert a._loop is b._loop  # one event loop thread for every node
    loop = a._loop
    port = a.proxy_port("default/hostnames:default")
    a.close()
    assert loop.alive and backends([tcp(topo["client"], NODE_IP, 30080)])[0] in LIVE
    with pytest.raises(ConnectionRefusedError):
        with in_netns(topo["node"]):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    b.close()
    assert not loop.alive and eventloop._shared is None
    assert tcp(topo["client"], NODE_IP, 30080).startswith("ERROR")


def test_a_silent_endpoint_costs_a_dial_timeout_then_the_next_is_tried(topo, proxier_factory):
    """An address nobody answers for (no reset, just silence): the dial gives up after its
    first timeout (250 ms) and the next endpoint is tried; every request still succeeds."""
    silent = SP("default", "silent", "", "TCP", "10.96.77.15", 80,
                endpoints=(E("10.77.0.99", TCP_PORT), *eps("pod-1", "pod-2")))
    p = proxier_factory(topo["node"], shuffle=lambda lst: None)  # rotation: silent, pod-1, pod-2
    p.sync(snap(silent))
    answers = [tcp(topo["pod-3"], "10.96.77.15", 80) for _ in range(4)]
    assert sorted(backends(answers)) == ["pod-1", "pod-1", "pod-2", "pod-2"], answers
    stats = p.stats("default/silent")
    assert stats.failed_dials == 2 and stats.gave_up == 0  # requests 1 and 3 drew it first


@pytest.mark.parametrize("backend", ["legacy", "nft"])
def test_external_and_load_balancer_ips(topo, proxier_factory, backend):
    """An external IP that is a node address is held open and reached from outside (the
    physdev rule); a load-balancer IP gets a plain portal. Both kernels take the rules."""
    sh(topo["node"], "ip", "addr", "add", "192.168.77.50/32", "dev", "eth0")
    sp = replace(WEB, external_ips=("192.168.77.50",), load_balancer_ips=("198.51.100.9",))
    p = proxier_factory(topo["node"], backend)
    p.sync(snap(sp))
    port = p.proxy_port("default/hostnames:default")
    nat = p.rules_text("nat")
    assert (f'-A KUBE-PORTALS-CONTAINER -d 192.168.77.50/32 -p tcp -m comment --comment "default/hostnames:default" '
            f"-m tcp --dport 80 -m physdev ! --physdev-is-in -j REDIRECT --to-ports {port}") in nat
    assert (f'-A KUBE-PORTALS-HOST -d 192.168.77.50/32 -p tcp -m comment --comment "default/hostnames:default" '
            f"-m tcp --dport 80 -m addrtype --dst-type LOCAL -j DNAT --to-destination {NODE_IP}:{port}") in nat
    assert f"-A KUBE-PORTALS-CONTAINER -d 198.51.100.9/32 -p tcp" in nat
    assert "192.168.77.50:80" in run_in(topo["node"], ["ss", "-Hltn"]).stdout  # held: a local address
    assert backends([tcp(topo["client"], "192.168.77.50", 80)])[0] in LIVE


def test_udp_has_no_retry_a_dead_endpoint_ends_its_session(topo, proxier_factory):
    """A UDP "connect" cannot fail, so the first client drawn to the dead pod gets no answer;
    the ICMP port-unreachable ends that session, and the next client moves on."""
    dns = replace(DNS, endpoints=eps("dead", "pod-1", port=UDP_PORT))
    # An idle timeout far longer than the test: only the ICMP error can end the session.
    p = proxier_factory(topo["node"], shuffle=lambda lst: None, udp_timeout_s=60)  # rotation: dead, pod-1
    p.sync(snap(dns))
    assert udp(topo["pod-2"], "10.96.77.13", 53, timeout=1.0).startswith("ERROR")
    sock = p.ports["default/dns:dns"].sock
    deadline = time.monotonic() + 10
    while eventloop_sessions(p, sock) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert eventloop_sessions(p, sock) == 0
    assert udp(topo["pod-2"], "10.96.77.13", 53) == "pod-1"
    assert sock.stats.failed_dials == 0 and sock.stats.accepted == 2


def test_service_paths_live_and_from_a_rebuilt_proxier(topo, proxier_factory):
    p = proxier_factory(topo["node"])
    p.sync(snap(WEB))
    for _ in range(6):
        assert backends([tcp(topo["pod-1"], "10.96.77.10", 80)])[0] in LIVE
    (live,) = p.service_paths("default/hostnames")
    port = p.proxy_port("default/hostnames:default")
    assert (live.port, live.chain) == ("default", f"proxy :{port}")
    assert [(f.kind, f.address, f.hits) for f in live.frontends] == [("cluster IP", "10.96.77.10:80/tcp", 6)]
    assert sorted((b.endpoint, b.hits, round(b.share, 3)) for b in live.branches) == [
        (f"{PODS[pod]}:{TCP_PORT}", 2, 0.333) for pod in LIVE]
    # What `minikp tui` sees: a proxier rebuilt in another process knows only the kernel's side.
    (seen,) = UserspaceProxier(topo["node"], "legacy").service_paths("default/hostnames")
    assert [(b.endpoint, b.hits, b.share) for b in seen.branches] == [(f"{NODE_IP}:{port}", 6, 1.0)]
