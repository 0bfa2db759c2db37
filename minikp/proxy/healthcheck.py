"""kube-proxy's service health server (pkg/proxy/healthcheck/service_health.go): for every
Service with a healthCheckNodePort (externalTrafficPolicy Local LoadBalancers), HTTP on that
port of the node answers whether this node has a ready endpoint of it, so that a cloud load
balancer sends traffic only to such nodes:

    HTTP/1.1 200 OK  (503 Service Unavailable when localEndpoints is 0)
    Content-Type: application/json
    X-Content-Type-Options: nosniff

    {
    	"service": {
    		"namespace": "default",
    		"name": "web"
    	},
    	"localEndpoints": 1,
    	"serviceProxyHealthy": true
    }

localEndpoints counts the distinct IPs of this node's READY endpoints (LocalReadyEndpoints):
a terminating endpoint still serves connections kube-proxy sends it, but the health check
fails once a node has only terminating ones, and the load balancer drains the node.

Pure: served, response. Kernel edge: HealthServer, one per
node, one thread serving every port from sockets made in the node's network namespace.
"""

from __future__ import annotations

import selectors
import socket
import threading

from minikp.nsenter import in_netns


def served(snapshot) -> tuple[dict[str, int], dict[str, int]]:
    """What a node's health server answers once its proxier applied `snapshot`: "namespace/
    name" → healthCheckNodePort, and "namespace/name" → how many distinct ready endpoint IPs
    it has on this node (a Service with 10.0.0.1:80 and 10.0.0.1:443 has one)."""
    ports, local = {}, {}
    for s in snapshot.services:
        key = f"{s.namespace}/{s.name}"
        if s.health_check_node_port:
            ports[key] = s.health_check_node_port
        ips = {e.ip for e in s.endpoints if e.ready and e.node == snapshot.node_name}
        if ips:
            local.setdefault(key, set()).update(ips)
    return ports, {k: len(v) for k, v in local.items()}


def body(key: str, count: int, proxy_healthy: bool = True) -> str:
    namespace, _, name = key.partition("/")
    return ("{\n\t\"service\": {\n"
            f"\t\t\"namespace\": \"{namespace}\",\n\t\t\"name\": \"{name}\"\n\t}},\n"
            f"\t\"localEndpoints\": {count},\n"
            f"\t\"serviceProxyHealthy\": {'true' if proxy_healthy else 'false'}\n}}")


def response(key: str, count: int, proxy_healthy: bool = True) -> bytes:
    ok = count != 0 and proxy_healthy
    text = body(key, count, proxy_healthy).encode()
    return (f"HTTP/1.1 {'200 OK' if ok else '503 Service Unavailable'}\r\n"
            "Content-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
            f"Content-Length: {len(text)}\r\nConnection: close\r\n\r\n").encode() + text


class HealthServer:
    """One node's health server: sync(*served(snapshot)) after each proxy sync opens and closes
    the listeners (on every address of the node, as kube-proxy's default) and sets the
    counts they answer with."""

    def __init__(self, netns_path: str):
        self.netns_path = netns_path
        self.counts: dict[str, int] = {}
        self.listeners: dict[str, tuple[int, socket.socket]] = {}  # key → (port, socket)
        self.sel = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.wake_r, self.wake_w = socket.socketpair()
        self.sel.register(self.wake_r, selectors.EVENT_READ, None)
        self.closed = False
        self.paused = False
        self.thread = threading.Thread(target=self._loop, daemon=True, name="healthcheck")
        self.thread.start()

    def sync(self, ports: dict[str, int], counts: dict[str, int]) -> list[str]:
        """Returns the problems (a port that could not be opened), as kube-proxy's event
        FailedToStartServiceHealthcheck says them."""
        problems = []
        with self.lock:
            self.counts = dict(counts)
            for key, (port, s) in list(self.listeners.items()):
                if ports.get(key) != port:
                    if not self.paused:
                        self.sel.unregister(s)
                    s.close()
                    del self.listeners[key]
            for key, port in ports.items():
                if key in self.listeners:
                    continue
                try:
                    s = self._listen(port)
                except OSError as e:
                    problems.append(f"failed to start healthcheck {key} on port {port}: {e}")
                    continue
                self.listeners[key] = (port, s)
                if not self.paused:
                    self.sel.register(s, selectors.EVENT_READ, key)
        self.wake_w.send(b"x")
        return problems

    def pause(self, paused: bool) -> None:
        """Its kube-proxy stopped (SIGSTOP) or went on: the listeners stay open, so the kernel
        still completes a checker's handshake, but nothing accepts it until resumed."""
        with self.lock:
            if paused != self.paused:
                self.paused = paused
                for key, (_, s) in self.listeners.items():
                    if paused:
                        self.sel.unregister(s)
                    else:
                        self.sel.register(s, selectors.EVENT_READ, key)
        self.wake_w.send(b"x")

    def _listen(self, port: int) -> socket.socket:
        with in_netns(self.netns_path):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
            s.listen(64)
            s.setblocking(False)
        except OSError:
            s.close()
            raise
        return s

    def _loop(self) -> None:
        while not self.closed:  # epoll allows sync() to change the selector meanwhile
            for skey, _ in self.sel.select(1.0):
                if skey.data is None:
                    self.wake_r.recv(4096)
                    continue
                try:
                    conn, _ = skey.fileobj.accept()
                except OSError:
                    continue
                self._answer(conn, skey.data)

    def _answer(self, conn: socket.socket, key: str) -> None:
        """Read the request head (a health checker's is short), answer, close."""
        with conn:
            conn.settimeout(1.0)
            try:
                head = b""
                while b"\r\n\r\n" not in head and b"\n\n" not in head and len(head) < 8192:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                conn.sendall(response(key, self.counts.get(key, 0)))
            except OSError:
                pass

    def close(self) -> None:
        self.closed = True
        self.wake_w.send(b"x")
        self.thread.join(2)
        with self.lock:
            for _, s in self.listeners.values():
                s.close()
            self.listeners.clear()
        self.sel.close()
        self.wake_r.close()
        self.wake_w.close()
