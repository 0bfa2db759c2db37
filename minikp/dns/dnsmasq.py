"""One dnsmasq process serving the cluster DNS inside a DNS pod's network namespace.

Everything it reads or writes is in `workdir`: dnsmasq.conf (CNAME/SRV lines), hosts (A and
PTR records), dnsmasq.log. It never reads the host's resolv.conf or /etc/hosts (checked with
strace: it opens only its workdir files, the libraries, /etc/passwd+group for --user, locale
files), writes no pid or lease file, and has no upstream server: a name it does not know gets
NXDOMAIN at once.

update() rewrites the files and returns once dnsmasq logged that it read the new hosts file:
- only the hosts file changed (A/PTR: pods, ClusterIPs, headless endpoints): SIGHUP, the
  same process re-reads it in place; no query is lost (measured: ~3 ms per update).
- CNAME/SRV lines changed (read only at start): the process is replaced in the same
  namespace. The successor is spawned first, already inside the namespace, waiting on a pipe
  (/bin/sh `read`); the old one is ended by PID; then the successor execs dnsmasq. The port
  is closed for ~5-10 ms (dnsmasq cannot share its TCP port with a successor) and a query
  queued in the old process at that instant is lost, so callers with several replicas update
  them one after the other (update() returns only when the new process answers): one
  replica always answers. Measured: ~10 ms per update.
  Each TCP query is served by a forked child that holds the listening socket too; the old
  process only signals its children as it exits, so the successor is released once port 53
  can be bound again (else it fails "Address already in use", issue 9.6).
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time

from minikp.dns.records import DnsRecords
from minikp.errors import OperationError
from minikp.nsenter import in_netns, popen_in

READY_TIMEOUT = 5.0
DNSMASQ = "/usr/sbin/dnsmasq"  # Debian dnsmasq-base
# Waits in the namespace until a line arrives on stdin, then becomes dnsmasq (same PID);
# exits without starting it if the pipe closes first (the parent died).
_GATE = ["/bin/sh", "-c", 'read _ && exec "$0" "$@"']


def _write_atomic(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class Dnsmasq:
    def __init__(self, netns_path: str, workdir: str, listen_ip: str):
        self.netns_path, self.workdir, self.listen_ip = netns_path, workdir, listen_ip
        self.conf_path = os.path.join(workdir, "dnsmasq.conf")
        self.hosts_path = os.path.join(workdir, "hosts")
        self.log_path = os.path.join(workdir, "dnsmasq.log")
        self.records = DnsRecords()
        self.proc: subprocess.Popen | None = None
        self.restarts = 0  # how many updates needed a new process (for diagnostics)
        self.reloads = 0  # how many updates were a SIGHUP
        self._conf_text: str | None = None  # what the running process was started with

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def argv(self) -> list[str]:
        binary = DNSMASQ if os.path.exists(DNSMASQ) else "dnsmasq"
        return [binary, "--keep-in-foreground", f"--conf-file={self.conf_path}",
                "--no-resolv", "--no-hosts", "--no-poll", f"--addn-hosts={self.hosts_path}",
                "--bind-interfaces", f"--listen-address={self.listen_ip},127.0.0.1",
                "--port=53", "--user=root", "--group=root", "--pid-file=",
                f"--log-facility={self.log_path}",
                "--log-queries=extra"]  # each query and its answer: dns/metrics.py counts them

    def conf_text(self, records: DnsRecords | None = None) -> str:
        records = records or self.records
        domain = records.domain
        lines = [
            "# written by minikp: the cluster DNS records dnsmasq reads at start",
            # No upstream: every name not found locally is answered NXDOMAIN right away
            # (the cluster domain and reverse zones, and outside names alike).
            "local=/#/",
            f"local=/{domain}/",
            "local=/in-addr.arpa/",
            "local-ttl=5",  # the TTL CoreDNS' kubernetes plugin gives its records
            *records.config_lines(),
        ]
        return "\n".join(lines) + "\n"

    def _write(self) -> tuple[bool, bool]:
        """Write both files; return (hosts changed, conf changed vs the running process)."""
        os.makedirs(self.workdir, exist_ok=True)
        hosts = self.records.hosts_text()
        try:
            with open(self.hosts_path) as f:
                hosts_changed = f.read() != hosts
        except FileNotFoundError:
            hosts_changed = True
        if hosts_changed:
            _write_atomic(self.hosts_path, hosts)
        conf = self.conf_text()
        conf_changed = conf != self._conf_text
        if conf_changed:
            _write_atomic(self.conf_path, conf)
        return hosts_changed, conf_changed

    def _log_size(self) -> int:
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def _read_logged(self, since: int) -> bool:
        """Has dnsmasq logged a read of the hosts file after byte `since` of its log?"""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f"read {self.hosts_path}".encode() in f.read()
        except FileNotFoundError:
            return False

    def _wait_read(self, since: int) -> None:
        """Wait until dnsmasq logged a new read of the hosts file: it then answers with it
        (it logs after loading, and its sockets are bound before the first load)."""
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._read_logged(since):
            if not self.running():
                raise OperationError(f"dnsmasq in {self.netns_path} exited with "
                                     f"{self.proc.returncode}: {self._log_tail()}")
            if time.monotonic() > deadline:
                raise OperationError(f"dnsmasq in {self.netns_path} did not load its records "
                                     f"within {READY_TIMEOUT}s: {self._log_tail()}")
            time.sleep(0.001)

    def _wait_port_free(self) -> None:
        """Wait until no process listens on TCP port 53 of our addresses: the old
        process's TCP children (forked per connection, signalled as it exits) are gone."""
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            held = [ip for ip in (self.listen_ip, "127.0.0.1") if not self._tcp_port_free(ip)]
            if not held:
                return
            if time.monotonic() > deadline:
                raise OperationError(f"port 53 of {', '.join(held)} in {self.netns_path} is "
                                     f"still in use {READY_TIMEOUT}s after the old dnsmasq ended")
            time.sleep(0.001)

    def _tcp_port_free(self, ip: str) -> bool:
        with in_netns(self.netns_path):
            s = socket.socket()
        with s:
            # as dnsmasq binds: connections in TIME_WAIT do not count, a listener does
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((ip, 53))
            except OSError as e:
                if e.errno != errno.EADDRINUSE:
                    raise
                return False
        return True

    def _log_tail(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return " | ".join(f.read().splitlines()[-5:])
        except FileNotFoundError:
            return "(no log)"

    def _spawn(self) -> subprocess.Popen:
        """A successor, already in the namespace, that becomes dnsmasq when released."""
        return popen_in(self.netns_path, _GATE + self.argv(), stdin=subprocess.PIPE,
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def _run(self, successor: subprocess.Popen, predecessor: subprocess.Popen | None) -> None:
        """End the predecessor (if any), release the successor, wait until it answers."""
        before = self._log_size()
        if predecessor is not None:
            _end(predecessor)
        self.proc = successor
        self._conf_text = self.conf_text()
        try:
            if predecessor is not None:
                self._wait_port_free()
            successor.stdin.write(b"go\n")
            successor.stdin.close()
            self._wait_read(before)
        except (OSError, OperationError) as e:
            err = ""
            if successor.poll() is not None and successor.stderr:
                err = successor.stderr.read().decode(errors="replace").strip()
            self.stop()
            raise OperationError(f"{e} {err}".strip()) from None

    def start(self) -> None:
        if self.running():
            return
        self._write()
        self._run(self._spawn(), None)

    def needs_restart(self, records: DnsRecords) -> bool:
        """Would update(records) replace the running process (CNAME/SRV changed)? A caller
        can then take this replica out of the kube-dns endpoints first, as a rolling update
        would, so that no query reaches it while its port is closed."""
        return self.running() and self.conf_text(records) != self._conf_text

    def update(self, records: DnsRecords) -> None:
        """Serve `records` from now on (before start: the records start will serve)."""
        self.records = records
        if not self.running():
            return
        hosts_changed, conf_changed = self._write()
        if conf_changed:
            self.restarts += 1
            successor = self._spawn()
            predecessor, self.proc = self.proc, None
            self._run(successor, predecessor)
        elif hosts_changed:
            self.reloads += 1
            before = self._log_size()
            os.kill(self.proc.pid, signal.SIGHUP)
            self._wait_read(before)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        self._conf_text = None
        if proc is not None:
            _end(proc)


def _end(proc: subprocess.Popen) -> None:
    """End one dnsmasq (or its waiting successor) by PID and reap it."""
    if proc.stdin and not proc.stdin.closed:
        proc.stdin.close()  # a successor still waiting exits on EOF
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.stderr:
        proc.stderr.close()
