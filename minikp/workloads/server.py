"""The built-in pod workloads, all served by ONE thread of the calling process.

Each pod's listening sockets are created inside the pod's network namespace (a socket keeps
the namespace it was made in), then served from a single selector loop with non-blocking
sockets, so a thousand pods cost a few thousand file descriptors, not a thousand processes.

- WorkloadServer.add(key, netns_path, name, listeners): open and serve the listeners
  (images.Listener) in that namespace, answering with `name`. Binding errors are raised here.
- WorkloadServer.remove(key): close them and every connection they accepted; returns once
  they are closed (so the pod's namespace can go away).
- start() / stop(): the serving thread.

HTTP: any request (any method, path, HTTP/1.0 or 1.1, keep-alive or close, pipelined) gets
`200`, text/plain body `<name>\\n`, and an `X-Minikp-Client: ip:port` header saying who the
workload saw connect (what `minikp curl` shows as the client). UDP: each datagram is answered
with the name, as serve_hostname does.
"""

from __future__ import annotations

import selectors
import socket
import sys
import threading
import time
import traceback
from collections import deque

from minikp.nsenter import in_netns
from minikp.workloads.images import HTTP, Listener

MAX_HEADER = 64 * 1024
ACCEPT_BATCH = 64
UDP_BATCH = 64
IDLE_TIMEOUT_S = 120.0
SWEEP_EVERY_S = 5.0
CALL_TIMEOUT_S = 10.0


class _Conn:
    """One accepted HTTP connection."""

    __slots__ = ("sock", "key", "name", "peer", "inbuf", "outbuf", "closing", "last", "writing")

    def __init__(self, sock, key, name, peer):
        self.sock, self.key, self.name, self.peer = sock, key, name, peer
        self.inbuf, self.outbuf = bytearray(), bytearray()
        self.closing = self.writing = False
        self.last = time.monotonic()


def http_responses(buf: bytearray, name: bytes, peer: str) -> tuple[bytes, bool, bool]:
    """Answer every complete request at the front of buf (consumed in place).
    Returns (response bytes, close after sending, malformed)."""
    out = bytearray()
    while True:
        end = buf.find(b"\r\n\r\n")
        sep = 4
        if end < 0:
            end, sep = buf.find(b"\n\n"), 2
        if end < 0:
            return bytes(out), False, len(buf) > MAX_HEADER
        lines = bytes(buf[:end]).decode("latin-1").splitlines()
        request = lines[0].split() if lines else []
        if len(request) < 2:
            return bytes(out), True, True
        method, version = request[0].upper(), (request[2] if len(request) > 2 else "HTTP/1.0")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip().lower()
        try:
            body_len = int(headers.get("content-length", "0"))
        except ValueError:
            return bytes(out), True, True
        if len(buf) < end + sep + body_len:
            return bytes(out), False, False  # wait for the request body
        del buf[: end + sep + body_len]
        conn_hdr = headers.get("connection", "")
        keep = ("keep-alive" in conn_hdr) if version.upper() == "HTTP/1.0" else ("close" not in conn_hdr)
        body = name + b"\n"
        out += (f"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nX-Minikp-Client: {peer}\r\n"
                f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n").encode()
        if method != "HEAD":
            out += body
        if not keep:
            return bytes(out), True, False


class WorkloadServer:
    def __init__(self):
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake",))
        self._listeners: dict[str, list[socket.socket]] = {}
        self._conns: dict[str, set[_Conn]] = {}
        self._data: dict[str, list] = {}  # key -> each listener's selector data
        self._frozen: set[str] = set()
        self._calls: deque = deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False

    # ---- public API --------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._loop, name="minikp-workloads",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        thread = self._thread
        if thread is not None:
            self._stopping = True
            self._wake()
            thread.join(CALL_TIMEOUT_S)
            self._thread = None
        for key in list(self._listeners):
            self._remove(key)

    def add(self, key: str, netns_path: str, name: str, listeners: list[Listener]) -> None:
        if key in self._listeners:
            self.remove(key)
        socks = []
        try:
            for lst in listeners:
                socks.append(self._open(netns_path, lst))
        except BaseException:
            for s in socks:
                s.close()
            raise
        data = [(("listen" if lst.kind == HTTP else "udp"), key, name.encode())
                for lst in listeners]
        self._call(lambda: self._register(key, socks, data))

    def remove(self, key: str) -> None:
        self._call(lambda: self._remove(key))

    def freeze(self, key: str, frozen: bool) -> None:
        """As SIGSTOP/SIGCONT would: frozen, the workload's sockets stay open (the kernel
        still completes handshakes into the backlog and queues datagrams) but nothing is
        accepted, read or answered; thawed, the queued work is served."""
        self._call(lambda: self._freeze(key, frozen))

    def keys(self) -> list[str]:
        return list(self._listeners)

    def connections(self) -> int:
        return sum(len(c) for c in self._conns.values())

    # ---- setup, run in the loop thread (or directly when it is not running) -------------
    @staticmethod
    def _open(netns_path: str, lst: Listener) -> socket.socket:
        kind = socket.SOCK_STREAM if lst.protocol == "TCP" else socket.SOCK_DGRAM
        with in_netns(netns_path):
            s = socket.socket(socket.AF_INET, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", lst.port))
            if kind == socket.SOCK_STREAM:
                s.listen(1024)
        except BaseException:
            s.close()
            raise
        return s

    def _register(self, key, socks, data) -> None:
        self._listeners[key] = socks
        self._data[key] = data
        self._conns.setdefault(key, set())
        for s, d in zip(socks, data):
            self._sel.register(s, selectors.EVENT_READ, d)

    def _freeze(self, key: str, frozen: bool) -> None:
        if key not in self._listeners or (key in self._frozen) == frozen:
            return
        socks = list(zip(self._listeners[key], self._data[key]))
        socks = [(s, d, selectors.EVENT_READ) for s, d in socks]
        socks += [(c.sock, ("conn", c), selectors.EVENT_READ | (selectors.EVENT_WRITE if c.outbuf else 0))
                  for c in self._conns.get(key, ())]
        for sock, data, events in socks:
            if frozen:
                self._sel.unregister(sock)
            else:
                self._sel.register(sock, events, data)
        (self._frozen.add if frozen else self._frozen.discard)(key)

    def _remove(self, key: str) -> None:
        self._freeze(key, False)
        self._frozen.discard(key)
        self._data.pop(key, None)
        for s in self._listeners.pop(key, []):
            self._sel.unregister(s)
            s.close()
        for conn in list(self._conns.pop(key, ())):
            self._close(conn)

    def _call(self, fn) -> None:
        """Run fn in the loop thread and wait for it (selector changes stay in one thread)."""
        thread = self._thread
        if thread is None or threading.current_thread() is thread or not thread.is_alive():
            fn()
            return
        done, box = threading.Event(), []

        def wrapped():
            try:
                fn()
            except BaseException as e:  # hand the error to the caller
                box.append(e)
            finally:
                done.set()

        with self._lock:
            self._calls.append(wrapped)
        self._wake()
        if not done.wait(CALL_TIMEOUT_S):
            raise TimeoutError("workload server did not answer")
        if box:
            raise box[0]

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except BlockingIOError:
            pass  # already a wake-up pending

    # ---- the loop ------------------------------------------------------------------------
    def _loop(self) -> None:
        next_sweep = time.monotonic() + SWEEP_EVERY_S
        while not self._stopping:
            for skey, events in self._sel.select(SWEEP_EVERY_S):
                data = skey.data
                try:
                    if data[0] == "wake":
                        self._drain_calls()
                    elif data[0] == "listen":
                        self._accept(skey.fileobj, data[1], data[2])
                    elif data[0] == "udp":
                        self._answer_udp(skey.fileobj, data[2])
                    else:
                        self._serve(data[1], events)
                except Exception:  # one bad socket must not stop every pod's workload
                    if not isinstance(sys.exc_info()[1], OSError):
                        traceback.print_exc()
                    if data[0] == "conn":
                        self._close(data[1])
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + SWEEP_EVERY_S
                for key, conns in self._conns.items():
                    if key in self._frozen:  # a stopped process closes nothing
                        continue
                    for conn in [c for c in conns if now - c.last > IDLE_TIMEOUT_S]:
                        self._close(conn)
        self._drain_calls()

    def _drain_calls(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        while True:
            with self._lock:
                if not self._calls:
                    return
                fn = self._calls.popleft()
            fn()

    def _accept(self, lsock, key, name) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                sock, addr = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(sock, key, name, f"{addr[0]}:{addr[1]}")
            self._conns.setdefault(key, set()).add(conn)
            self._sel.register(sock, selectors.EVENT_READ, ("conn", conn))

    @staticmethod
    def _answer_udp(usock, name) -> None:
        for _ in range(UDP_BATCH):
            try:
                _, addr = usock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            try:
                usock.sendto(name, addr)
            except OSError:
                pass  # e.g. the sender is unreachable; answer the next one

    def _serve(self, conn: _Conn, events: int) -> None:
        conn.last = time.monotonic()
        if events & selectors.EVENT_READ and not conn.closing:
            try:
                data = conn.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                data = None
            if data == b"":
                self._close(conn)
                return
            if data:
                conn.inbuf += data
                out, close, bad = http_responses(conn.inbuf, conn.name, conn.peer)
                conn.outbuf += out
                if close or bad:
                    conn.closing = True
                    conn.inbuf.clear()
        self._flush(conn)

    def _flush(self, conn: _Conn) -> None:
        if conn.outbuf:
            try:
                sent = conn.sock.send(conn.outbuf)
                del conn.outbuf[:sent]
            except (BlockingIOError, InterruptedError):
                pass
        if not conn.outbuf and conn.closing:
            self._close(conn)
            return
        want = selectors.EVENT_WRITE if conn.outbuf else selectors.EVENT_READ
        if conn.writing != bool(conn.outbuf):
            conn.writing = bool(conn.outbuf)
            self._sel.modify(conn.sock, want, ("conn", conn))

    def _close(self, conn: _Conn) -> None:
        conns = self._conns.get(conn.key)
        if conns is not None:
            conns.discard(conn)
        try:
            self._sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()
