"""The cluster DNS for real: dnsmasq in a server namespace, queries over UDP and TCP from a
client namespace (stdlib wire format below), live updates with their latency, two replicas
updated in turn, and getent through a pod's (and a node's) resolv.conf."""

import os
import random
import socket
import struct
import subprocess
import threading
import time

import pytest

from minikp.controller.endpoints import Address, ServiceEndpoints
from minikp.dns.dnsmasq import Dnsmasq
from minikp.dns.records import build_records, host_resolv_conf, resolv_conf
from minikp.nsenter import in_netns, popen_in
from minikp.proxy.snapshot import Endpoint
from minikp.scenario.model import (ClientPlan, ClusterConfig, ClusterPlan, PodPlan, PodTemplate,
                                   Service, ServicePlan, ServicePort)

SERVER, SERVER2, CLIENT = ("minikp-test-dns-server", "minikp-test-dns-server2",
                           "minikp-test-dns-client")
# (namespace, server address, client-side address, veth names) of each DNS "pod"
LINKS = [(SERVER, "10.250.0.1", "10.250.0.2", "dns0", "dns1"),
         (SERVER2, "10.250.0.129", "10.250.0.130", "dns2", "dns3")]
SERVER_IP, SERVER2_IP = LINKS[0][1], LINKS[1][1]
A, CNAME, PTR, AAAA, SRV = 1, 5, 12, 28, 33
NOERROR, NXDOMAIN, REFUSED = 0, 3, 5


# --- a tiny DNS client -------------------------------------------------------------------

def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def read_name(msg, pos):
    labels, jumped, end = [], False, pos
    while True:
        n = msg[pos]
        if n & 0xC0 == 0xC0:
            if not jumped:
                end = pos + 2
            pos, jumped = struct.unpack("!H", msg[pos:pos + 2])[0] & 0x3FFF, True
            continue
        if n == 0:
            return ".".join(labels), (end if jumped else pos + 1)
        labels.append(msg[pos + 1:pos + 1 + n].decode())
        pos += 1 + n


def parse(msg, qid):
    ident, flags, qd, an, _ns, _ar = struct.unpack("!6H", msg[:12])
    assert ident == qid
    pos = 12
    for _ in range(qd):
        _, pos = read_name(msg, pos)
        pos += 4
    answers = []
    for _ in range(an):
        name, pos = read_name(msg, pos)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", msg[pos:pos + 10])
        pos += 10
        rdata = msg[pos:pos + rdlen]
        if rtype == A:
            data = socket.inet_ntoa(rdata)
        elif rtype in (CNAME, PTR):
            data = read_name(msg, pos)[0]
        elif rtype == SRV:
            prio, weight, port = struct.unpack("!HHH", rdata[:6])
            data = (prio, weight, port, read_name(msg, pos + 6)[0])
        else:
            data = rdata
        answers.append((name.lower(), rtype, data))
        pos += rdlen
    return flags & 0xF, answers


def query(name, qtype=A, tcp=False, server=SERVER_IP, timeout=2.0):
    """One query from the client namespace; UDP on a connected socket, so that a server
    that is not listening shows at once (ICMP port unreachable → ConnectionRefusedError)."""
    qid = random.randrange(65536)
    msg = (struct.pack("!6H", qid, 0x0100, 1, 0, 0, 0) + encode_name(name)
           + struct.pack("!HH", qtype, 1))
    with in_netns(f"/run/netns/{CLIENT}"):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
    with s:
        s.settimeout(timeout)
        s.connect((server, 53))
        if tcp:
            s.sendall(struct.pack("!H", len(msg)) + msg)
            buf = b""
            while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
                chunk = s.recv(4096)
                if not chunk:
                    raise ConnectionResetError("connection closed before the answer")
                buf += chunk
            reply = buf[2:]
        else:
            s.send(msg)
            reply = s.recv(4096)
    return parse(reply, qid)


def values(name, qtype=A, tcp=False):
    rcode, answers = query(name, qtype, tcp)
    assert rcode == NOERROR, (name, rcode)
    return sorted(d for _, t, d in answers if t == qtype)


# --- the cluster this test serves --------------------------------------------------------

def make_plan():
    services = [
        ServicePlan(Service("default", "web", ports=[ServicePort(80, name="http")]), "10.96.0.20"),
        ServicePlan(Service("prod", "db", cluster_ip="None",
                            ports=[ServicePort(5432, name="pg")]), "None"),
        ServicePlan(Service("default", "ext", type="ExternalName",
                            external_name="db.example.test"), ""),
        ServicePlan(Service("default", "out", type="ExternalName",
                            external_name="www.example.org"), ""),
    ]
    pods = [PodPlan("default", "web-1", "node-1", "10.244.1.5", "Pod", "web-1", PodTemplate()),
            PodPlan("prod", "db-0", "node-1", "10.244.1.6", "Pod", "db-0",
                    PodTemplate(hostname="db-0", subdomain="db")),
            PodPlan("prod", "db-1", "node-1", "10.244.2.7", "Pod", "db-1", PodTemplate())]
    eps = {"default/web": ServiceEndpoints([Address("10.244.1.5")],
                                           {"http": [Endpoint("10.244.1.5", 80)]}),
           "prod/db": ServiceEndpoints([Address("10.244.1.6", hostname="db-0"),
                                        Address("10.244.2.7")],
                                       {"pg": [Endpoint("10.244.1.6", 5432),
                                               Endpoint("10.244.2.7", 5432)]})}
    clients = [ClientPlan("client-1", "172.18.0.100", ["db.example.test"])]
    return ClusterPlan(ClusterConfig(), [], pods, services, clients, dns_ip="10.96.0.10"), eps


def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True)


def stop_and_check(server):
    pid = server.pid
    server.stop()
    assert not server.running()
    if pid:  # ended by its PID and reaped
        assert not os.path.exists(f"/proc/{pid}")


@pytest.fixture
def world():
    """The client namespace and two DNS server namespaces, each linked to it by a veth."""
    names = [CLIENT] + [link[0] for link in LINKS]
    for ns in names:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    try:
        for ns in names:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            # every refused query gets its ICMP port unreachable (default: 6, then 1/s), so a
            # closed port shows as refused, not as a lost query
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
        for ns, ip, peer_ip, dev, peer in LINKS:
            sh("ip", "-n", ns, "link", "add", dev, "type", "veth", "peer", "name", peer,
               "netns", CLIENT)
            sh("ip", "-n", ns, "addr", "add", f"{ip}/25", "dev", dev)
            sh("ip", "-n", CLIENT, "addr", "add", f"{peer_ip}/25", "dev", peer)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", CLIENT, "link", "set", peer, "up")
        yield
    finally:
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture
def dns(world, tmp_path):
    server = Dnsmasq(f"/run/netns/{SERVER}", str(tmp_path / "dns"), SERVER_IP)
    try:
        yield server
    finally:
        stop_and_check(server)


@pytest.fixture
def replicas(world, tmp_path):
    servers = [Dnsmasq(f"/run/netns/{ns}", str(tmp_path / ns), ip) for ns, ip, *_ in LINKS]
    try:
        yield servers
    finally:
        for server in servers:
            stop_and_check(server)


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_records_over_the_wire(dns, tcp):
    plan, eps = make_plan()
    dns.update(build_records(plan, eps))  # before start: start serves these
    dns.start()
    assert dns.running() and dns.pid
    assert values("web.default.svc.cluster.local", tcp=tcp) == ["10.96.0.20"]
    assert values("db.prod.svc.cluster.local", tcp=tcp) == ["10.244.1.6", "10.244.2.7"]
    assert values("db-0.db.prod.svc.cluster.local", tcp=tcp) == ["10.244.1.6"]
    rcode, answers = query("ext.default.svc.cluster.local", tcp=tcp)
    assert rcode == NOERROR
    assert ("ext.default.svc.cluster.local", CNAME, "db.example.test") in answers
    assert ("db.example.test", A, "172.18.0.100") in answers
    assert values("_http._tcp.web.default.svc.cluster.local", SRV, tcp) == \
        [(0, 100, 80, "web.default.svc.cluster.local")]
    assert values("web.default.svc.cluster.local", SRV, tcp) == \
        [(0, 100, 80, "web.default.svc.cluster.local")]  # bare name: every port
    assert values("_pg._tcp.db.prod.svc.cluster.local", SRV, tcp) == \
        [(0, 50, 5432, "10-244-2-7.db.prod.svc.cluster.local"),
         (0, 50, 5432, "db-0.db.prod.svc.cluster.local")]
    assert values("10-244-1-5.default.pod.cluster.local", tcp=tcp) == ["10.244.1.5"]
    # endpoint names answer for a ClusterIP service too, and name the endpoint's PTR
    assert values("10-244-1-5.web.default.svc.cluster.local", tcp=tcp) == ["10.244.1.5"]
    assert values("5.1.244.10.in-addr.arpa", PTR, tcp) == \
        ["10-244-1-5.web.default.svc.cluster.local"]
    assert values("20.0.96.10.in-addr.arpa", PTR, tcp) == ["web.default.svc.cluster.local"]
    assert values("6.1.244.10.in-addr.arpa", PTR, tcp) == ["db-0.db.prod.svc.cluster.local"]
    assert values("100.0.18.172.in-addr.arpa", PTR, tcp) == ["db.example.test"]
    assert values("client-1", tcp=tcp) == ["172.18.0.100"]
    # an ExternalName to a name nobody knows: the CNAME alone, as CoreDNS without upstream
    rcode, answers = query("out.default.svc.cluster.local", tcp=tcp)
    assert (rcode, answers) == (NOERROR, [("out.default.svc.cluster.local", CNAME,
                                           "www.example.org")])
    # a known name without that type: NODATA, not NXDOMAIN
    assert query("web.default.svc.cluster.local", AAAA, tcp) == (NOERROR, [])
    t0 = time.monotonic()
    for name in ("nope.default.svc.cluster.local", "www.example.org", "99.99.99.10.in-addr.arpa"):
        assert query(name, PTR if "arpa" in name else A, tcp)[0] in (NXDOMAIN, REFUSED), name
    assert query("nope.default.svc.cluster.local", A, tcp)[0] == NXDOMAIN
    assert time.monotonic() - t0 < 1.0  # no upstream to wait for


def test_start_with_no_records(dns):
    dns.start()
    assert query("web.default.svc.cluster.local")[0] == NXDOMAIN


def timed_update(dns, records, label, ready):
    """Update and measure until a query from the client sees the change."""
    restarts = dns.restarts
    t0 = time.monotonic()
    dns.update(records)
    returned = time.monotonic() - t0
    assert ready(), label
    seen = time.monotonic() - t0
    how = "new process" if dns.restarts > restarts else "SIGHUP"
    print(f"\nDNS update latency ({label}, {how}): update() {returned * 1000:.1f} ms, "
          f"answer seen after {seen * 1000:.1f} ms")


def test_updates_without_restarting_the_namespace(dns):
    plan, eps = make_plan()
    dns.start()
    assert query("web.default.svc.cluster.local")[0] == NXDOMAIN
    timed_update(dns, build_records(plan, eps), "first records",
                 lambda: values("web.default.svc.cluster.local") == ["10.96.0.20"])
    first_pid = dns.pid

    # a new pod (hosts only: SIGHUP, same process)
    plan.pods.append(PodPlan("default", "web-2", "node-1", "10.244.1.9", "Pod", "web-2",
                             PodTemplate()))
    assert not dns.needs_restart(build_records(plan, eps))
    timed_update(dns, build_records(plan, eps), "pod added",
                 lambda: values("10-244-1-9.default.pod.cluster.local") == ["10.244.1.9"])
    assert dns.pid == first_pid

    # service ClusterIP change (hosts only)
    plan.services[0] = ServicePlan(plan.services[0].service, "10.96.0.21")
    timed_update(dns, build_records(plan, eps), "service changed",
                 lambda: values("web.default.svc.cluster.local") == ["10.96.0.21"]
                 and values("21.0.96.10.in-addr.arpa", PTR) == ["web.default.svc.cluster.local"])
    assert query("20.0.96.10.in-addr.arpa", PTR)[0] == NXDOMAIN
    assert dns.pid == first_pid

    # endpoint turns not ready: its A record and its SRV record go (SRV: process replaced)
    eps["prod/db"].addresses[1] = Address("10.244.2.7", ready=False)
    assert dns.needs_restart(build_records(plan, eps))
    timed_update(dns, build_records(plan, eps), "endpoint not ready",
                 lambda: values("db.prod.svc.cluster.local") == ["10.244.1.6"]
                 and values("_pg._tcp.db.prod.svc.cluster.local", SRV)
                 == [(0, 100, 5432, "db-0.db.prod.svc.cluster.local")])
    assert not os.path.exists(f"/proc/{first_pid}")  # the old process was ended and reaped

    # a new ready endpoint with a hostname joins the headless service
    plan.pods.append(PodPlan("prod", "db-2", "node-1", "10.244.2.9", "Pod", "db-2",
                             PodTemplate(hostname="db-2", subdomain="db")))
    eps["prod/db"].addresses.append(Address("10.244.2.9", hostname="db-2"))
    eps["prod/db"].ports["pg"].append(Endpoint("10.244.2.9", 5432))
    timed_update(dns, build_records(plan, eps), "endpoint added",
                 lambda: values("db.prod.svc.cluster.local") == ["10.244.1.6", "10.244.2.9"]
                 and values("db-2.db.prod.svc.cluster.local") == ["10.244.2.9"]
                 and values("9.2.244.10.in-addr.arpa", PTR) == ["db-2.db.prod.svc.cluster.local"]
                 and len(values("_pg._tcp.db.prod.svc.cluster.local", SRV)) == 2)

    # an ExternalName points elsewhere (CNAME: process replaced)
    ext = plan.services[2].service
    ext.external_name = "client-1"
    timed_update(dns, build_records(plan, eps), "ExternalName changed",
                 lambda: query("ext.default.svc.cluster.local")[1]
                 == [("ext.default.svc.cluster.local", CNAME, "client-1"),
                     ("client-1", A, "172.18.0.100")])
    second_pid = dns.pid

    # service added with a named port (a new SRV line: the process is replaced)
    plan.services.append(ServicePlan(Service("default", "api", ports=[ServicePort(8080, name="h")]),
                                     "10.96.0.30"))
    timed_update(dns, build_records(plan, eps), "service added",
                 lambda: values("api.default.svc.cluster.local") == ["10.96.0.30"]
                 and values("_h._tcp.api.default.svc.cluster.local", SRV)
                 == [(0, 100, 8080, "api.default.svc.cluster.local")])
    assert dns.running() and dns.pid != second_pid

    # service removed
    plan.services = [s for s in plan.services if s.service.name != "web"]
    timed_update(dns, build_records(plan, eps), "service removed",
                 lambda: query("web.default.svc.cluster.local")[0] == NXDOMAIN
                 and query("_http._tcp.web.default.svc.cluster.local", SRV)[0] == NXDOMAIN)
    assert values("api.default.svc.cluster.local") == ["10.96.0.30"]


class Poller(threading.Thread):
    """Queries one replica as fast as it can; records (sent, done, outcome) per query:
    "ok", "refused" (nothing listening: ICMP port unreachable) or "lost" (no answer)."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server, self.samples, self.halt = server, [], threading.Event()

    def run(self):
        while not self.halt.is_set():
            t0 = time.monotonic()
            try:
                rcode = query("web.default.svc.cluster.local", server=self.server, timeout=0.05)[0]
                outcome = "ok" if rcode == NOERROR else f"rcode {rcode}"
            except ConnectionRefusedError:
                outcome = "refused"
            except OSError:
                outcome = "lost"
            self.samples.append((t0, time.monotonic(), outcome))

    def stop(self):
        self.halt.set()
        self.join(5)
        return self.samples


def closed_windows(samples):
    """Merge runs of refused queries into windows [first sent, last done]."""
    windows, current = [], None
    for t0, t1, outcome in samples:
        if outcome == "refused":
            current = [current[0] if current else t0, t1]
        elif current:
            windows.append(current)
            current = None
    return windows + ([current] if current else [])


def test_replicas_updated_in_turn_one_always_answers(replicas):
    """Hosts-only updates (SIGHUP) never miss a query; updates that need a new process
    (SRV/CNAME) close one replica's port for a few ms, one replica after the other."""
    plan, eps = make_plan()
    for d in replicas:
        d.update(build_records(plan, eps))
        d.start()
    pollers = [Poller(SERVER_IP), Poller(SERVER2_IP)]
    for p in pollers:
        p.start()
    try:
        time.sleep(0.02)
        for i in range(5):  # pods come and go: hosts file only
            plan.pods.append(PodPlan("default", f"extra-{i}", "node-1", f"10.244.3.{i + 1}",
                                     "Pod", f"extra-{i}", PodTemplate()))
            for d in replicas:
                d.update(build_records(plan, eps))
        time.sleep(0.06)  # a query lost now would still be waiting for its answer
        sighup = [list(p.samples) for p in pollers]
        for i in range(5):  # a service with a named port comes and goes: new SRV lines
            if i % 2 == 0:
                plan.services.append(ServicePlan(
                    Service("default", "api", ports=[ServicePort(8080, name="h")]), "10.96.0.30"))
            else:
                plan.services.pop()
            for d in replicas:
                d.update(build_records(plan, eps))
        time.sleep(0.02)
    finally:
        samples = [p.stop() for p in pollers]
    assert all(d.reloads >= 5 and d.restarts >= 5 for d in replicas)
    for got in sighup:
        assert len(got) > 10 and {o for _, _, o in got} == {"ok"}
    windows = [closed_windows(s) for s in samples]
    for a0, a1 in windows[0]:
        for b0, b1 in windows[1]:
            assert a1 < b0 or b1 < a0, "both replicas were closed at the same moment"
    for server, s, w in zip((SERVER_IP, SERVER2_IP), samples, windows):
        lost = sum(o == "lost" for _, _, o in s)
        longest = max((b - a for a, b in w), default=0) * 1000
        print(f"\nreplica {server}: {len(s)} queries, {len(w)} closed windows over 5 restarts "
              f"(longest {longest:.1f} ms), {lost} queries lost in flight")
        assert {o for _, _, o in s} <= {"ok", "refused", "lost"}
        assert query("_h._tcp.api.default.svc.cluster.local", SRV, server=server)[1]
        assert values("10-244-3-5.default.pod.cluster.local") == ["10.244.3.5"]


def test_getent_through_pod_resolv_conf(dns, tmp_path):
    plan, eps = make_plan()
    dns.update(build_records(plan, eps))
    dns.start()
    conf = tmp_path / "resolv.conf"
    conf.write_text(resolv_conf("default", SERVER_IP, "cluster.local"))
    host_conf = tmp_path / "host-resolv.conf"
    host_conf.write_text(host_resolv_conf(SERVER_IP, "cluster.local"))

    def getent(name, resolv=conf):
        p = popen_in(f"/run/netns/{CLIENT}", ["getent", "hosts", name], resolv_conf=str(resolv),
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, _ = p.communicate(timeout=10)
        return p.returncode, out.split()

    assert getent("web")[1][:2] == ["10.96.0.20", "web.default.svc.cluster.local"]
    assert getent("db.prod")[1][0] in ("10.244.1.6", "10.244.2.7")  # other namespace
    assert getent("ext")[1][0] == "172.18.0.100"  # ExternalName → client host
    assert getent("db")[0] != 0  # `db` lives in prod, not in this pod's namespace
    assert getent("db.example.test")[1][0] == "172.18.0.100"  # an outside name, searched last
    # a node or client: only the cluster domain is searched
    assert getent("web.default.svc", host_conf)[1][0] == "10.96.0.20"
    assert getent("web", host_conf)[0] != 0
    assert getent("db.example.test", host_conf)[1][0] == "172.18.0.100"
    # the host's own resolv.conf was not touched by the bind mount
    assert SERVER_IP not in open("/etc/resolv.conf").read()


@pytest.mark.parametrize("held", [False, True], ids=["just-closed", "held-open"])
def test_restart_after_a_tcp_connection_never_finds_the_port_taken(dns, held):
    """Each TCP connection gets a forked dnsmasq child holding the listening socket until
    it exits, which is after its parent's SIGTERM (it is signalled, not waited for). A
    successor released at that moment failed to bind port 53 (issue 9.6: "failed to create
    listening socket ... Address already in use", about 1 `up` in 60, whose readiness check
    is a TCP connect). Restart right after a connection, many times: never a failure."""
    plan, eps = make_plan()
    ext = plan.services[2].service
    dns.update(build_records(plan, eps))
    dns.start()
    for i in range(60):
        with in_netns(f"/run/netns/{CLIENT}"):
            s = socket.socket()
        s.connect((SERVER_IP, 53))  # as the supervisor's readiness check does
        if not held:
            s.close()
        ext.external_name = f"db{i}.example.test"  # a new CNAME: a new process
        assert dns.needs_restart(build_records(plan, eps))
        dns.update(build_records(plan, eps))
        s.close()
        assert values("ext.default.svc.cluster.local", CNAME) == [f"db{i}.example.test"]
    assert dns.restarts == 60
