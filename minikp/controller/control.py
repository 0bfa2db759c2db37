"""The supervisor's control socket (/run/minikp/<cluster>/control.sock, root only): one JSON
request line in, one JSON answer line out; `watch` keeps the connection and streams events.

Server: ControlServer(path, handler, events) runs in a thread of the supervisor.
Client: request(cluster, op, **args) and watch(cluster) for the CLI.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time

from minikp import names
from minikp.errors import InputError, OperationError


def socket_path(cluster: str) -> str:
    return names.cluster_path(cluster, "control.sock")


class EventLog:
    """What happened, in order: pod created/ready/failed, endpoints changed, proxy synced.

    Every event gets the next sequence number when emitted, but is published (seen by
    since() and watchers) only by publish(upto): the supervisor publishes after writing the
    state file that reflects it, so a reader that sees event N finds state.json at N or later.
    """

    def __init__(self, keep: int = 5000):
        self.items: list[dict] = []  # published
        self.pending: list[dict] = []  # emitted, waiting for the state that reflects them
        self.keep = keep
        self.cond = threading.Condition()
        self.seq = 0  # the last sequence number given out
        self.listener = None  # called with each event as it is emitted (`up`'s progress)

    def emit(self, kind: str, message: str, **fields) -> dict:
        with self.cond:
            self.seq += 1
            ev = {"seq": self.seq, "time": time.time(), "type": kind, "message": message, **fields}
            self.pending.append(ev)
            if self.listener is not None:  # in order, one at a time (node syncs run in threads)
                self.listener(ev)
        return ev

    def publish(self, upto: int) -> None:
        """Publish every pending event up to sequence number `upto`."""
        with self.cond:
            n = next((i for i, e in enumerate(self.pending) if e["seq"] > upto), len(self.pending))
            if not n:
                return
            self.items += self.pending[:n]
            del self.pending[:n]
            del self.items[:-self.keep]
            self.cond.notify_all()

    def since(self, seq: int, timeout: float | None = None) -> list[dict]:
        with self.cond:
            if timeout and (not self.items or self.items[-1]["seq"] <= seq):
                self.cond.wait(timeout)
            return [e for e in self.items if e["seq"] > seq]


class ControlServer:
    def __init__(self, path: str, handler, events: EventLog):
        self.path, self.handler, self.events = path, handler, events
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o077)  # root only: the socket changes the cluster
        try:
            self.sock.bind(path)
        finally:
            os.umask(old)
        self.sock.listen(16)
        self.closed = False
        threading.Thread(target=self._accept, daemon=True, name="control").start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rw") as f:
            try:
                req = json.loads(f.readline() or "{}")
                if req.get("op") == "watch":
                    seq = int(req.get("since", 0))
                    while not self.closed:
                        for ev in self.events.since(seq, timeout=1.0):
                            f.write(json.dumps(ev) + "\n")
                            seq = ev["seq"]
                        f.flush()
                    return
                try:
                    answer = {"ok": True, "result": self.handler(req.get("op"), req.get("args", {}))}
                except (InputError, OperationError) as e:
                    answer = {"ok": False, "exit": e.exit_code, "error": str(e)}
                f.write(json.dumps(answer) + "\n")
                f.flush()
            except (OSError, ValueError):
                return

    def close(self) -> None:
        self.closed = True
        self.sock.close()


def _connect(cluster: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(socket_path(cluster))
    except (FileNotFoundError, ConnectionRefusedError):
        s.close()
        raise OperationError(f'cluster "{cluster}" is not up (its supervisor does not answer)') from None
    return s


def request(cluster: str, op: str, timeout: float = 300, **args):
    with _connect(cluster) as s:
        s.settimeout(timeout)
        s.sendall((json.dumps({"op": op, "args": args}) + "\n").encode())
        with s.makefile() as f:
            line = f.readline()
    if not line:
        raise OperationError(f"the supervisor of {cluster} closed the connection during {op}")
    answer = json.loads(line)
    if not answer["ok"]:
        cls = InputError if answer.get("exit") == 2 else OperationError
        raise cls(answer["error"])
    return answer["result"]


def watch(cluster: str, since: int = 0, stop: threading.Event | None = None):
    """Events after `since`, as they come, until the supervisor goes or `stop` is set (looked
    at twice a second, so a front end's reading thread can end)."""
    with _connect(cluster) as s:
        s.sendall((json.dumps({"op": "watch", "since": since}) + "\n").encode())
        s.settimeout(0.5 if stop is not None else None)
        buf = b""
        while not (stop is not None and stop.is_set()):
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                return
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
                yield json.loads(line)
