"""How a pod's containers run: the PodRuntime protocol, the built-in runtimes, and the one
place that chooses among them.

- PodRuntime: start(ctx, container) -> handle; started(h); exited(h); exit_code(h);
  stop(h, grace_s); logs(h) -> [log file paths]; freeze(h, frozen) (SIGSTOP/SIGCONT, for
  `minikp test`'s freeze/thaw steps). A handle is the runtime's own object; a
  runtime keeps no state of its own, so one instance serves every cluster's pods.
- the runtimes: "builtin" (the one-process WorkloadServer serves the container's ports,
  images.listeners_for), "command" (the container's command as PID 1 of its sandbox,
  commands.start_command), "dns" (dnsmasq for the cluster DNS, and its metrics port 9153),
  "ingress-nginx" (Debian's nginx for ingress-nginx's controller image, ingress/nginx.py).
- RUNTIMES: name → runtime. A runtime that needs per-cluster state (docker: the cluster's
  engine and pause containers) is named in CLUSTER_RUNTIMES and added by the supervisor.
- choose(pod, container, cluster_runtime): the runtime's name — the pod's annotation
  `minikp.dev/runtime`, else a DNS image → "dns", ingress-nginx's controller image →
  "ingress-nginx", else the Cluster's `spec.runtime: docker`, else a command → "command",
  anything else → "builtin".
- PodWorkloads: one pod's containers, each with its runtime and handle: what the supervisor
  keeps per pod (started when every container is, exited when any has).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from minikp.dns.dnsmasq import Dnsmasq
from minikp.dns.metrics import MetricsServer
from minikp.errors import InputError
from minikp.ingress import nginx
from minikp.ingress.install import is_controller_image
from minikp.nsenter import in_netns
from minikp.scenario.model import Container, PodPlan
from minikp.workloads.commands import start_command
from minikp.workloads.images import is_dns_image, listeners_for
from minikp.workloads.podenv import command_argv

RUNTIME_ANNOTATION = "minikp.dev/runtime"
STOP_GRACE_S = 2.0  # SIGTERM, then this long, then SIGKILL


@dataclass
class PodContext:
    """What a runtime may use to start one pod's container: the pod, its network namespace,
    where its logs go (`logbase` + ".<container>.log", or the directory `logbase`), the
    shared built-in server, the container's sandbox, and the DNS records known so far."""

    key: str  # namespace/name
    pod: PodPlan
    netns: str
    logbase: str
    server: Any = None  # workloads.server.WorkloadServer
    sandbox_of: Callable = None  # container → workloads.sandbox.Sandbox
    dns_records: Callable = lambda: None  # () → dns.records.DnsRecords | None
    ingress_config: Callable = lambda: None  # () → ingress.render.Rendered | None
    cluster_runtime: str = "builtin"  # the Cluster's spec.runtime


class PodRuntime(Protocol):
    def start(self, ctx: PodContext, container: Container) -> Any: ...
    def started(self, handle) -> bool: ...  # listening: its ports accept connections
    def exited(self, handle) -> bool: ...
    def exit_code(self, handle) -> int | None: ...  # None while running (or unknown)
    def stop(self, handle, grace_s: float = STOP_GRACE_S) -> None: ...
    def logs(self, handle) -> list[str]: ...  # log files, oldest first
    def freeze(self, handle, frozen: bool) -> None: ...  # stopped, but its sockets stay open


def port_open(netns: str, ip: str, port: int, timeout: float = 0.2) -> bool:
    with in_netns(netns):
        s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect((ip, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    """A running process and its children (commands start in their own session)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        os.kill(proc.pid, sig)


# ---- builtin: one process serves every pod's sockets ---------------------------------------

@dataclass
class ServedHandle:
    server: Any
    key: str  # pod key/container name, the server's key


class BuiltinRuntime:
    def start(self, ctx, container):
        h = ServedHandle(ctx.server, f"{ctx.key}/{container.name}")
        listeners = listeners_for(container)
        if listeners:
            ctx.server.add(h.key, ctx.netns, ctx.pod.name, listeners)
        return h

    def started(self, h):
        return True  # the server listens as soon as the sockets are added

    def exited(self, h):
        return False

    def exit_code(self, h):
        return None

    def stop(self, h, grace_s=STOP_GRACE_S):
        h.server.remove(h.key)

    def freeze(self, h, frozen: bool) -> None:
        h.server.freeze(h.key, frozen)  # stops serving as a SIGSTOPped process would

    def logs(self, h):
        return []


# ---- command: the container's own process --------------------------------------------------

@dataclass
class ProcessHandle:
    proc: subprocess.Popen
    netns: str
    ip: str
    tcp_ports: list[int]
    log_path: str


class CommandRuntime:
    def start(self, ctx, container):
        sb = ctx.sandbox_of(container)
        log_path = f"{ctx.logbase}.{container.name}.log"
        proc = start_command(ctx.netns, command_argv(container, sb.env), log_path=log_path,
                             sandbox=sb)
        ports = [p.container_port for p in container.ports if p.protocol == "TCP"]
        return ProcessHandle(proc, ctx.netns, ctx.pod.ip, ports, log_path)

    def started(self, h):
        return all(port_open(h.netns, h.ip, p) for p in h.tcp_ports)

    def exited(self, h):
        return h.proc.poll() is not None

    def exit_code(self, h):
        return h.proc.poll()

    def stop(self, h, grace_s=STOP_GRACE_S):
        if h.proc.poll() is None:
            h.proc.terminate()
            try:
                h.proc.wait(grace_s)
            except subprocess.TimeoutExpired:  # the grace period is over
                h.proc.kill()
                h.proc.wait()

    def logs(self, h):
        return [h.log_path]

    def freeze(self, h, frozen: bool) -> None:
        signal_group(h.proc, signal.SIGSTOP if frozen else signal.SIGCONT)

    def pid(self, h) -> int | None:
        """PID 1 of the container, while it runs (exec probes join its namespaces)."""
        return h.proc.pid if h.proc.poll() is None else None


# ---- dns: dnsmasq answers for CoreDNS / kube-dns images --------------------------------------

@dataclass
class DnsHandle:
    dnsmasq: Dnsmasq
    metrics: MetricsServer
    netns: str
    ip: str


class DnsRuntime:
    def start(self, ctx, container):
        os.makedirs(ctx.logbase, exist_ok=True)
        d = Dnsmasq(ctx.netns, ctx.logbase, ctx.pod.ip)
        records = ctx.dns_records()
        if records is not None:
            d.update(records)
        d.start()
        m = MetricsServer(ctx.netns, ctx.pod.ip, d.log_path)
        m.start()
        return DnsHandle(d, m, ctx.netns, ctx.pod.ip)

    def started(self, h):
        return h.dnsmasq.running() and port_open(h.netns, h.ip, 53)

    def exited(self, h):
        return not h.dnsmasq.running()

    def exit_code(self, h):
        return None

    def stop(self, h, grace_s=STOP_GRACE_S):
        h.dnsmasq.stop()
        h.metrics.stop()

    def freeze(self, h, frozen: bool) -> None:
        if h.dnsmasq.proc is not None:
            signal_group(h.dnsmasq.proc, signal.SIGSTOP if frozen else signal.SIGCONT)

    def logs(self, h):
        return [h.dnsmasq.log_path]


# ---- ingress-nginx: a real nginx for ingress-nginx's controller image -----------------------

class IngressNginxRuntime(CommandRuntime):
    def start(self, ctx, container):
        return nginx.start(ctx.netns, ctx.pod.ip, ctx.sandbox_of(container),
                           f"{ctx.logbase}.{container.name}", ctx.ingress_config())

    def stop(self, h, grace_s=STOP_GRACE_S):
        super().stop(h, grace_s)
        nginx.remove(h)


# runtimes a supervisor adds per cluster (they hold the cluster's engine): docker, made by
# minikp/docker/runtime.py's DockerRuntime
CLUSTER_RUNTIMES = ("docker",)
RUNTIMES: dict[str, PodRuntime] = {
    "builtin": BuiltinRuntime(), "command": CommandRuntime(), "dns": DnsRuntime(),
    "ingress-nginx": IngressNginxRuntime()}


def choose(pod: PodPlan | None, container: Container, cluster_runtime: str = "builtin") -> str:
    """The one place that decides which runtime runs a container: the pod's annotation, else
    the cluster DNS's own (dns), ingress-nginx's controller image (ingress-nginx), else the
    Cluster's spec.runtime when it is not the default (docker: its pods run their real
    image), else by the container (command, builtin)."""
    named = pod.template.annotations.get(RUNTIME_ANNOTATION) if pod is not None else None
    if named:
        valid = (*RUNTIMES, *CLUSTER_RUNTIMES)
        if named not in valid:
            raise InputError(f'pod "{pod.name}": annotation {RUNTIME_ANNOTATION}: "{named}" is '
                             "not a pod runtime; valid: " + ", ".join(valid))
        return named
    if is_dns_image(container.image):
        return "dns"
    if is_controller_image(container.image):
        return "ingress-nginx"
    if cluster_runtime in CLUSTER_RUNTIMES:
        return cluster_runtime
    if container.command:
        return "command"
    return "builtin"


@dataclass
class PodWorkloads:
    """Every container of one pod, with the runtime that runs it and its handle."""

    parts: list[tuple[str, Container, Any]] = field(default_factory=list)  # (runtime, c, handle)
    runtimes: dict = field(default_factory=lambda: RUNTIMES, repr=False)

    @classmethod
    def start(cls, ctx: PodContext, runtimes: dict | None = None) -> PodWorkloads:
        """Start each container with its runtime; if one fails, those started stop again."""
        w = cls(runtimes=runtimes if runtimes is not None else RUNTIMES)
        try:
            for c in ctx.pod.template.containers:
                name = choose(ctx.pod, c, ctx.cluster_runtime)
                w.parts.append((name, c, w.runtimes[name].start(ctx, c)))
        except BaseException:
            w.stop()
            raise
        return w

    def _each(self):
        return ((self.runtimes[name], c, h) for name, c, h in self.parts)

    def started(self) -> bool:
        return all(rt.started(h) for rt, _, h in self._each())

    def exited(self) -> bool:
        return any(rt.exited(h) for rt, _, h in self._each())

    def exit_code(self) -> int | None:
        return next((rt.exit_code(h) for rt, _, h in self._each() if rt.exited(h)), None)

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        for rt, _, h in self._each():
            rt.stop(h, grace_s)

    def logs(self) -> list[str]:
        return [p for rt, _, h in self._each() for p in rt.logs(h)]

    def pid1(self) -> int | None:
        """A running container process of the pod (exec probes join its namespaces)."""
        return next((pid for rt, _, h in self._each() if hasattr(rt, "pid")
                     for pid in [rt.pid(h)] if pid is not None), None)

    def ingress_servers(self) -> list[nginx.Nginx]:
        """The pod's nginx processes, which follow the cluster's Ingresses."""
        return [h for _, _, h in self.parts if isinstance(h, nginx.Nginx)]

    def freeze(self, frozen: bool) -> None:
        """SIGSTOP (or SIGCONT) every container: `minikp test`'s freeze/thaw steps."""
        for rt, _, h in self._each():
            rt.freeze(h, frozen)

    def dns_servers(self) -> list[Dnsmasq]:
        """The pod's dnsmasq processes, which follow the cluster's records."""
        return [h.dnsmasq for _, _, h in self.parts if isinstance(h, DnsHandle)]
