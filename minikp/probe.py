"""Traffic from inside a cluster host: `python -m minikp.probe MODE TARGET ...`, started by
the CLI inside a pod, node or client namespace (with its hostname and resolv.conf), so that
names resolve through the cluster DNS exactly as they would for a process in that pod.
Prints one JSON document: {"results": [{"ok", "body", "error", "client", "ms"}, ...]};
"client" is the source address the backend saw, when it says (built-in HTTP workloads do).

Modes: http URL (one new connection per request, like curl), https URL (the same over TLS;
the cluster has no CA, so like `curl -k` the certificate is not verified; a backend that does
not speak TLS is an error saying so), tcp HOST:PORT (connect), udp HOST:PORT (send a
datagram, wait for the answer), dns NAME (the resolver's answers: the addresses).
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import ssl
import sys
import time
import urllib.parse


def _split_hostport(target: str, default_port: int | None = None) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    if not host:
        if default_port is None:
            raise ValueError(f"{target!r}: expected HOST:PORT")
        return target, default_port
    return host, int(port)


CLIENT_HEADER = "X-Minikp-Client"  # the built-in HTTP workload's view of who connected


def http_once(url: str, timeout: float, tls: bool = False) -> str | tuple[str, str]:
    u = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    if tls:
        conn = http.client.HTTPSConnection(u.hostname, u.port or 443, timeout=timeout,
                                           context=_unverified_tls())
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
    try:
        if tls:
            _tls_handshake(conn, u)
        conn.request("GET", (u.path or "/") + (f"?{u.query}" if u.query else ""),
                     headers={"Connection": "close", "User-Agent": "minikp-curl"})
        resp = conn.getresponse()
        body = resp.read().decode(errors="replace").strip()
        if resp.status >= 400:
            raise OSError(f"HTTP {resp.status}: {body[:80]}")
        client = resp.getheader(CLIENT_HEADER)
        return (body, client) if client else body
    finally:
        conn.close()


def https_once(url: str, timeout: float) -> str | tuple[str, str]:
    return http_once(url, timeout, tls=True)


def _unverified_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False  # no cluster CA: like curl -k
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _tls_handshake(conn: http.client.HTTPSConnection, u) -> None:
    """Connect, then shake hands: a backend that answers the handshake in plain text, closes,
    or never answers it, while the TCP connection stood, is named as not speaking TLS."""
    where = f"{u.hostname}:{u.port or 443}"
    sock = socket.create_connection((conn.host, conn.port), conn.timeout)
    try:
        conn.sock = _unverified_tls().wrap_socket(sock, server_hostname=u.hostname)
    except (ssl.SSLError, ConnectionResetError, TimeoutError, socket.timeout) as e:
        sock.close()
        why = "no answer" if isinstance(e, (TimeoutError, socket.timeout)) else (
            getattr(e, "reason", None) or str(e) or type(e).__name__)
        raise OSError(f"{where} does not speak TLS (handshake: {why}); try http://") from None


SOURCE_PORT = 0  # --sport: a fixed source port, so that `minikp trace` can pick its packets


def tcp_once(target: str, timeout: float) -> str:
    host, port = _split_hostport(target)
    with socket.create_connection((host, port), timeout=timeout,
                                  source_address=("", SOURCE_PORT) if SOURCE_PORT else None) as s:
        return f"connected {s.getsockname()[0]} -> {s.getpeername()[0]}:{port}"


def udp_once(target: str, timeout: float) -> str:
    host, port = _split_hostport(target)
    addr = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)[0][4]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        if SOURCE_PORT:
            s.bind(("", SOURCE_PORT))
        s.sendto(b"hostname\n", addr)
        return s.recv(4096).decode(errors="replace").strip()


def dns_once(name: str, timeout: float) -> str:
    """The addresses the pod's resolver (its resolv.conf search list) answers, sorted; what
    `minikp test`'s DNS checks compare."""
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise OSError(f"{name}: {e.strerror}") from None
    return " ".join(sorted({i[4][0] for i in infos}))


MODES = {"http": http_once, "https": https_once, "tcp": tcp_once, "udp": udp_once,
         "dns": dns_once}


def run(mode: str, target: str, count: int, timeout: float, interval: float = 0.0) -> list[dict]:
    results = []
    for i in range(count):
        t0 = time.monotonic()
        try:
            answer = MODES[mode](target, timeout)
            body, client = answer if isinstance(answer, tuple) else (answer, "")
            results.append({"ok": True, "body": body, "error": None, "client": client})
        except (OSError, ValueError, http.client.HTTPException) as e:
            results.append({"ok": False, "body": None, "error": str(e) or type(e).__name__})
        results[-1]["ms"] = round((time.monotonic() - t0) * 1000, 2)
        if interval and i + 1 < count:
            time.sleep(interval)
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="minikp.probe")
    ap.add_argument("mode", choices=sorted(MODES))
    ap.add_argument("target")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--interval", type=float, default=0.0)
    ap.add_argument("--sport", type=int, default=0, help="tcp/udp: the source port")
    a = ap.parse_args(argv)
    global SOURCE_PORT
    SOURCE_PORT = a.sport
    json.dump({"results": run(a.mode, a.target, a.count, a.timeout, a.interval)}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
