"""The proxy sockets of one service port, served on the event loop, as kube-proxy 1.25's
pkg/proxy/userspace/proxysocket.go served them:

- TcpProxySocket: accept; pick an endpoint (loadbalancer); dial it with the timeouts
  250 ms, 500 ms, 1 s, 2 s, asking for the next endpoint after each failure with affinity
  ignored (sessionAffinityReset); if all four fail, close the client. Then copy both ways;
  when either side reaches EOF or fails, both are closed (Go's io.Copy, then Close on both).
- UdpProxySocket: one backend socket per client address, made on the client's first
  datagram (a UDP connect cannot fail for a dead endpoint, so the retry rarely applies);
  replies go back from the service socket; every datagram either way extends the idle
  timeout (--udp-timeout, default 250 ms), after which the session is dropped. An ICMP
  error on the backend socket (port unreachable) ends the session too.

Every outbound socket is created in the node's network namespace by `new_socket(type)`; the
listening socket arrives already bound there. All methods run on the loop thread.
"""

from __future__ import annotations

import asyncio
import collections
import socket

DIAL_TIMEOUTS_S = (0.25, 0.5, 1.0, 2.0)  # EndpointDialTimeouts
UDP_IDLE_TIMEOUT_S = 0.25  # --udp-timeout default
UDP_BUFFER = 4096  # "4KiB should be enough for most whole-packets"


class Stats:
    """What a proxy socket did, for tests and `minikp events`: counts only."""

    def __init__(self) -> None:
        self.accepted = 0
        self.failed_dials = 0  # each failed attempt, including those a retry recovered
        self.gave_up = 0  # clients closed: no endpoint, or every attempt failed
        self.connections = collections.Counter()  # endpoint -> connections (UDP: sessions) made


def _addr(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host, int(port)


class _Pipe(asyncio.Protocol):
    """One side of a proxied TCP connection; `peer` is the other side."""

    def __init__(self, owner: "TcpProxySocket") -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.peer: _Pipe | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if not self.peer.transport.is_closing():
            self.peer.transport.write(data)

    def eof_received(self):
        self.close_both()
        return False

    def connection_lost(self, exc) -> None:
        self.owner.pipes.discard(self)
        self.close_both()

    # Flow control: a peer that cannot keep up stops our reading.
    def pause_writing(self) -> None:
        if self.peer and self.peer.transport:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer and self.peer.transport:
            self.peer.transport.resume_reading()

    def close_both(self) -> None:
        for side in (self, self.peer):
            if side is not None and side.transport is not None:
                side.transport.close()  # sends what is buffered first


class _Client(_Pipe):
    """The accepted side: dials an endpoint before anything is read."""

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.owner.pipes.add(self)
        self.owner.stats.accepted += 1
        transport.pause_reading()
        peer = transport.get_extra_info("peername")
        self.task = asyncio.get_running_loop().create_task(self.owner.connect(self, peer[0]))

    def connection_lost(self, exc) -> None:
        if self.peer is None and not self.task.done():
            self.task.cancel()
        super().connection_lost(exc)


class TcpProxySocket:
    def __init__(self, key: str, listener: socket.socket, balancer, new_socket) -> None:
        self.key, self.listener, self.balancer, self.new_socket = key, listener, balancer, new_socket
        self.port = listener.getsockname()[1]
        self.server: asyncio.base_events.Server | None = None
        self.pipes: set[_Pipe] = set()
        self.stats = Stats()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _Client(self), sock=self.listener)

    async def dial(self, client_ip: str) -> socket.socket | None:
        """TryConnectEndpoints."""
        loop = asyncio.get_running_loop()
        reset = False
        for timeout in DIAL_TIMEOUTS_S:
            try:
                endpoint = self.balancer.next_endpoint(self.key, client_ip, reset)
            except LookupError:
                return None
            s = self.new_socket(socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                await asyncio.wait_for(loop.sock_connect(s, _addr(endpoint)), timeout)
                self.stats.connections[endpoint] += 1
                return s
            except (OSError, asyncio.TimeoutError):
                s.close()
                self.stats.failed_dials += 1
                reset = True
        return None

    async def connect(self, client: _Client, client_ip: str) -> None:
        s = await self.dial(client_ip)
        if s is None or client.transport.is_closing():
            self.stats.gave_up += s is None
            if s is not None:
                s.close()
            client.transport.close()
            return
        backend = _Pipe(self)
        try:
            await asyncio.get_running_loop().create_connection(lambda: backend, sock=s)
        except OSError:
            s.close()
            client.transport.close()
            return
        self.pipes.add(backend)
        backend.peer, client.peer = client, backend
        if client.transport.is_closing():
            backend.close_both()
        else:
            client.transport.resume_reading()

    def close(self) -> None:
        """Stop accepting and break every proxied connection."""
        if self.server is not None:
            self.server.close()
        else:
            self.listener.close()
        for pipe in list(self.pipes):
            if pipe.transport is not None:
                pipe.transport.abort()
        self.pipes.clear()


class _UdpSession:
    def __init__(self, owner: "UdpProxySocket", client: tuple, backend: socket.socket) -> None:
        self.owner, self.client, self.backend = owner, client, backend
        self.loop = asyncio.get_running_loop()
        self.last = self.loop.time()
        self.timer = self.loop.call_later(owner.timeout_s, self._expire)
        self.loop.add_reader(backend.fileno(), self._readable)

    def touch(self) -> None:
        self.last = self.loop.time()

    def _expire(self) -> None:
        idle = self.loop.time() - self.last
        if idle >= self.owner.timeout_s:
            self.close()
        else:
            self.timer = self.loop.call_later(self.owner.timeout_s - idle, self._expire)

    def send(self, data: bytes) -> None:
        try:
            self.backend.send(data)
            self.touch()
        except BlockingIOError:
            pass  # a full buffer drops the datagram, as the kernel would
        except OSError:
            self.close()

    def _readable(self) -> None:
        while True:
            try:
                data = self.backend.recv(UDP_BUFFER)
            except BlockingIOError:
                return
            except OSError:  # e.g. ECONNREFUSED: the endpoint's port is closed
                self.close()
                return
            self.touch()
            self.owner.reply(data, self.client)

    def close(self) -> None:
        if self.owner.sessions.get(self.client) is self:
            del self.owner.sessions[self.client]
        self.timer.cancel()
        self.loop.remove_reader(self.backend.fileno())
        self.backend.close()


class UdpProxySocket:
    def __init__(self, key: str, listener: socket.socket, balancer, new_socket,
                 timeout_s: float = UDP_IDLE_TIMEOUT_S) -> None:
        self.key, self.listener, self.balancer, self.new_socket = key, listener, balancer, new_socket
        self.port = listener.getsockname()[1]
        self.timeout_s = timeout_s
        self.sessions: dict[tuple, _UdpSession] = {}
        self.stats = Stats()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.listener.setblocking(False)
        self.loop.add_reader(self.listener.fileno(), self._readable)

    def _session(self, client: tuple) -> _UdpSession | None:
        """getBackendConn: a known client's session, or a new one (TryConnectEndpoints)."""
        session = self.sessions.get(client)
        if session is not None:
            return session
        self.stats.accepted += 1
        reset = False
        for _ in DIAL_TIMEOUTS_S:
            try:
                endpoint = self.balancer.next_endpoint(self.key, client[0], reset)
            except LookupError:
                break
            s = self.new_socket(socket.SOCK_DGRAM)
            s.setblocking(False)
            try:
                s.connect(_addr(endpoint))
            except OSError:
                s.close()
                self.stats.failed_dials += 1
                reset = True
                continue
            session = self.sessions[client] = _UdpSession(self, client, s)
            self.stats.connections[endpoint] += 1
            return session
        self.stats.gave_up += 1
        return None

    def _readable(self) -> None:
        for _ in range(64):  # bounded, so one busy port cannot starve the others
            try:
                data, client = self.listener.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error queued on the listener: nothing to do
            session = self._session(client)
            if session is not None:
                session.send(data)

    def reply(self, data: bytes, client: tuple) -> None:
        try:
            self.listener.sendto(data, client)
        except OSError:
            pass  # dropped, as a full socket buffer would drop it

    def close(self) -> None:
        for session in list(self.sessions.values()):
            session.close()
        if self.loop is not None:
            self.loop.remove_reader(self.listener.fileno())
        self.listener.close()
