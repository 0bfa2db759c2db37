"""The WorkloadServer with real sockets inside real namespaces: one thread serving many
pods; keep-alive and pipelining over a real connection; many concurrent clients; remove()
closing listeners and live connections; bind errors reaching the caller; memory per
socket. Namespaces are `minikp-mkt-fabwl-...`."""

import socket
import threading
import time

import pytest

from minikp import names
from minikp.fabric import netns, teardown
from minikp.fabric.rtnl import Rtnl
from minikp.nsenter import in_netns
from minikp.workloads.images import HTTP, NAME, Listener
from minikp.workloads.server import WorkloadServer

CLUSTER = "mkt-fabwl"


@pytest.fixture
def pods():
    """Two bare pod namespaces with lo up (traffic over 127.0.0.1 inside each)."""
    teardown.destroy_cluster(CLUSTER)
    paths = []
    try:
        for pod in ("a", "b"):
            path = netns.create(names.pod_netns(CLUSTER, "default", pod))
            paths.append(path)
            with Rtnl(path) as rtnl:
                rtnl.link_up(1)
        yield paths
    finally:
        teardown.destroy_cluster(CLUSTER)
    assert netns.names(names.netns_prefix(CLUSTER)) == []


@pytest.fixture
def server():
    s = WorkloadServer()
    s.start()
    try:
        yield s
    finally:
        s.stop()


def connect(path, port, timeout=2.0):
    with in_netns(path):
        return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_responses(sock, n):
    """Read n complete responses (Content-Length framed) from a keep-alive connection."""
    data, out = b"", []
    while len(out) < n:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0]
                         .split(b":")[1])
            if len(rest) >= length:
                out.append((head, rest[:length]))
                data = rest[length:]
                continue
        chunk = sock.recv(65536)
        assert chunk, "server closed early"
        data += chunk
    return out, data


def test_each_pod_answers_with_its_own_name_in_its_own_namespace(pods, server):
    a, b = pods
    server.add("a", a, "pod-a", [Listener("TCP", 8080, HTTP), Listener("UDP", 8080, NAME)])
    server.add("b", b, "pod-b", [Listener("TCP", 8080, HTTP)])  # same port, other namespace
    for path, name in ((a, "pod-a"), (b, "pod-b")):
        with connect(path, 8080) as s:
            s.sendall(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
            [(head, body)], _ = read_responses(s, 1)
            assert head.startswith(b"HTTP/1.1 200 OK") and body == name.encode() + b"\n"
    with in_netns(a):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with u:
        u.settimeout(2)
        for _ in range(3):
            u.sendto(b"?", ("127.0.0.1", 8080))
            assert u.recv(100).decode().strip() == "pod-a"
    assert sorted(server.keys()) == ["a", "b"]


def test_keep_alive_pipelining_and_close(pods, server):
    a, _ = pods
    server.add("a", a, "pod-a", [Listener("TCP", 80, HTTP)])
    with connect(a, 80) as s:
        s.sendall(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
        got, rest = read_responses(s, 2)
        assert [body for _, body in got] == [b"pod-a\n", b"pod-a\n"] and rest == b""
        s.sendall(b"GET /3 HTTP/1.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):  # the server closes after answering
            data += chunk
        assert data.endswith(b"\r\n\r\npod-a\n") and b"Connection: close" in data


def test_a_client_that_reads_slowly_gets_every_answer(pods, server):
    """Answers bigger than the socket buffer wait in the server (EVENT_WRITE), in order."""
    a, _ = pods
    netns.write_sysctl(a, "net.ipv4.tcp_wmem", "4096 16384 16384")  # small send buffers
    server.add("a", a, "pod-a", [Listener("TCP", 80, HTTP)])
    with connect(a, 80) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        n = 20000
        sender = threading.Thread(target=s.sendall, args=(b"GET / HTTP/1.1\r\n\r\n" * n,))
        sender.start()
        time.sleep(0.3)  # let the server fill the buffers while nobody reads
        got, rest = read_responses(s, n)
        sender.join()
        assert len(got) == n and rest == b"" and all(b == b"pod-a\n" for _, b in got)


def test_many_concurrent_clients_do_not_block_each_other(pods, server):
    a, _ = pods
    server.add("a", a, "pod-a", [Listener("TCP", 80, HTTP)])
    # a client that sends half a request and stalls must not hold up anyone else
    stalled = connect(a, 80)
    stalled.sendall(b"GET / HTT")
    socks = [connect(a, 80) for _ in range(300)]
    try:
        for s in socks:
            s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        for s in socks:
            [(_, body)], _ = read_responses(s, 1)
            assert body == b"pod-a\n"
        assert server.connections() >= 301
    finally:
        for s in socks:
            s.close()
        stalled.close()


def test_remove_closes_listeners_and_live_connections(pods, server):
    a, _ = pods
    server.add("a", a, "pod-a", [Listener("TCP", 80, HTTP)])
    live = connect(a, 80)
    live.sendall(b"GET / HTTP/1.1\r\n\r\n")
    read_responses(live, 1)
    server.remove("a")
    live.settimeout(2)
    assert live.recv(100) == b""  # closed by the server
    live.close()
    with pytest.raises(ConnectionRefusedError):
        connect(a, 80).close()
    server.remove("a")  # idempotent


def test_bind_errors_reach_the_caller_and_leave_nothing_open(pods, server):
    a, _ = pods
    with in_netns(a):
        taken = socket.socket()
    taken.bind(("0.0.0.0", 9000))
    taken.listen()
    with taken:
        with pytest.raises(OSError):
            server.add("a", a, "pod-a", [Listener("TCP", 9001, HTTP), Listener("TCP", 9000, HTTP)])
        assert server.keys() == []
    with pytest.raises(ConnectionRefusedError):  # 9001 was closed again
        connect(a, 9001).close()


def test_two_thousand_listeners_cost_little_memory(pods, server):
    a, _ = pods

    def rss_kb():
        with open("/proc/self/status") as f:
            return int(next(l for l in f if l.startswith("VmRSS")).split()[1])

    before = rss_kb()
    t = time.perf_counter()
    for i in range(1000):
        server.add(f"p{i}", a, f"pod-{i}", [Listener("TCP", 20000 + i, HTTP),
                                            Listener("UDP", 20000 + i, NAME)])
    took = time.perf_counter() - t
    grew = (rss_kb() - before) / 1024
    print(f"\n2000 listeners: {took * 1000:.0f} ms to add, RSS +{grew:.1f} MB")
    assert grew < 50
    with connect(a, 20999) as s:
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert read_responses(s, 1)[0][0][1] == b"pod-999\n"
    server.stop()  # closes everything
    assert server.keys() == []
    with pytest.raises(ConnectionRefusedError):
        connect(a, 20500).close()


def test_add_and_remove_before_start_and_from_other_threads(pods):
    a, b = pods
    s = WorkloadServer()
    try:
        s.add("a", a, "pod-a", [Listener("TCP", 80, HTTP)])  # before start: queued directly
        s.start()
        errors = []

        def worker(i):
            try:
                s.add(f"t{i}", b, f"t{i}", [Listener("TCP", 1000 + i, HTTP)])
                s.remove(f"t{i}")
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert s.keys() == ["a"]
        with connect(a, 80) as c:
            c.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
            data = c.recv(4096)
            assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"\r\n\r\n")  # no body
    finally:
        s.stop()
