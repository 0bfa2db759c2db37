"""Readiness probes, as the kubelet runs them.

- ProbeTracker: the pure state machine. A pod starts not ready; after initialDelaySeconds a
  probe runs every periodSeconds; successThreshold consecutive successes make it ready,
  failureThreshold consecutive failures make it not ready again.
- run_probe: one real probe against the pod: httpGet (2xx/3xx is success) or tcpSocket from
  a socket made in the pod's network namespace to the pod IP, or exec of a command inside the
  pod's sandbox, as `kubectl exec` runs it (exit code 0 is success).
"""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass

from minikp.errors import OperationError
from minikp.nsenter import in_netns
from minikp.scenario.model import PodPlan, Probe
from minikp.workloads import sandbox as sandboxes


@dataclass
class ProbeTracker:
    probe: Probe
    started_at: float
    ready: bool = False
    successes: int = 0
    failures: int = 0
    next_at: float = 0.0

    def __post_init__(self):
        self.next_at = self.started_at + self.probe.initial_delay_seconds

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def record(self, ok: bool, now: float) -> bool:
        """Count one result; True when readiness changed."""
        self.next_at = now + self.probe.period_seconds
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if not self.ready and self.successes >= self.probe.success_threshold:
                self.ready = True
                return True
        else:
            self.failures, self.successes = self.failures + 1, 0
            if self.ready and self.failures >= self.probe.failure_threshold:
                self.ready = False
                return True
        return False


def container_port(pod: PodPlan, port) -> int | None:
    """A probe's port: a number, or the name of one of the pod's containerPorts."""
    if isinstance(port, int):
        return port
    for c in pod.template.containers:
        for p in c.ports:
            if p.name == port:
                return p.container_port
    return None


def run_probe(probe: Probe, pod: PodPlan, netns: str, hostname: str, resolv_conf: str,
              sandbox: sandboxes.Sandbox | None = None, pid1: int | None = None) -> bool:
    """`sandbox`: the pod's (default: Docker's defaults with its hostname and resolv.conf);
    `pid1`: its running command, whose namespaces an exec probe joins."""
    timeout = float(probe.timeout_seconds)
    if probe.exec_command:
        sb = sandbox or sandboxes.default_sandbox(netns, hostname, resolv_conf, pod.ip)
        try:
            p = sandboxes.exec_in(netns, sb, list(probe.exec_command), pid1=pid1,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        except (OSError, OperationError):
            return False
        try:
            return p.wait(timeout) == 0
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            return False
    port = container_port(pod, probe.http_get[1] if probe.http_get else probe.tcp_socket)
    if port is None:
        return False
    with in_netns(netns):
        s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect((pod.ip, port))
        if not probe.http_get:
            return True
        path = probe.http_get[0] or "/"
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {pod.ip}:{port}\r\nUser-Agent: kube-probe/1.33\r\n"
                  "Connection: close\r\n\r\n".encode())
        status = s.recv(64).split(b" ", 2)
        return len(status) >= 2 and status[1].isdigit() and 200 <= int(status[1]) < 400
    except OSError:
        return False
    finally:
        s.close()
