"""How a deleted pod goes away: the kubelet's termination and what the EndpointSlice
controller publishes meanwhile.

A deleted pod is Terminating at once (deletionTimestamp set): its endpoint stays in every
EndpointSlice with ready=false, serving=<its readiness>, terminating=true, so that kube-proxy
can still send a connection to it when a node has nothing better (ProxyTerminatingEndpoints,
GA in 1.28), while health checks and new connections turn away. Then, as the kubelet's
killContainer does:

  1. run every container's lifecycle.preStop (exec, httpGet, sleep), at most the grace
     period (terminationGracePeriodSeconds, 30 s by default; `delete --grace-period N`);
  2. SIGTERM the workload with what is left of the grace period, but never less than 2 s
     (the kubelet's minimumGracePeriodInSeconds);
  3. SIGKILL it if it is still running then.
The pod object goes once its workload is gone. Grace period 0 is "now": no preStop,
SIGTERM and SIGKILL at once.

Pure: grace_period, pre_stop_hooks, stop_timeout, terminating_state, Termination.
Kernel edge: Stopper, the thread that carries out steps 1-3 for one pod; run_hook.
The ReplicaSet does not wait: it counts only pods that are not terminating, so the
replacement is made at once (changes.delete).
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field

from minikp.controller.endpoints import PodState
from minikp.controller.probes import run_probe
from minikp.scenario.model import Handler, PodPlan, Probe

MINIMUM_GRACE_S = 2  # kubelet: "always give containers a minimal shutdown window"


def grace_period(pod: PodPlan, override: int | None = None) -> int:
    """The grace period of this deletion: `--grace-period` if given, else the pod's
    terminationGracePeriodSeconds."""
    return pod.template.termination_grace_period_seconds if override is None else override


def pre_stop_hooks(pod: PodPlan) -> list[tuple[str, Handler]]:
    return [(c.name, c.pre_stop) for c in pod.template.containers if c.pre_stop]


def stop_timeout(grace_s: float, pre_stop_s: float) -> float:
    """How long SIGTERM gets before SIGKILL, after preStop hooks took `pre_stop_s`."""
    if grace_s <= 0:
        return 0.0
    return max(grace_s - pre_stop_s, MINIMUM_GRACE_S)


def terminating_state(before: PodState) -> PodState:
    """A deleted pod keeps its readiness (the endpoint's serving condition) and is terminating
    (so not ready in the EndpointSlice; endpoints.compute_endpoints says how)."""
    return PodState(ready=before.ready, terminating=True, running=before.running)


@dataclass
class Termination:
    """One pod's termination, as the supervisor follows it."""

    pod: PodPlan
    reason: str
    grace_s: int
    started: float  # time.monotonic()
    deleted_at: str  # metadata.deletionTimestamp
    hooks: list[tuple[str, Handler]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    outcome: str = ""  # how the workload ended, for the event

    @classmethod
    def begin(cls, pod: PodPlan, reason: str, now: float, deleted_at: str,
              override: int | None = None) -> "Termination":
        grace = grace_period(pod, override)
        return cls(pod, reason, grace, now, deleted_at, pre_stop_hooks(pod) if grace > 0 else [])


# ---- kernel edge ---------------------------------------------------------------------------


def run_hook(handler: Handler, pod: PodPlan, netns: str, resolv_conf: str, timeout: float,
             stop: threading.Event, sandbox=None, pid1: int | None = None) -> bool:
    """One preStop handler, at most `timeout` seconds: exec in the container's sandbox and
    httpGet to the pod IP run as the kubelet's probes do (probes.run_probe); sleep waits."""
    if handler.sleep_seconds is not None:
        stop.wait(min(handler.sleep_seconds, timeout))
        return True
    probe = Probe(http_get=handler.http_get, exec_command=handler.exec_command,
                  timeout_seconds=max(timeout, 0.01))
    return run_probe(probe, pod, netns, pod.hostname, resolv_conf, sandbox=sandbox, pid1=pid1)


class Stopper(threading.Thread):
    """Steps 1-3 for one pod. `run_hook(container, handler, timeout) -> bool`;
    `stop_workload(timeout) -> exit code | None`: SIGTERM, at most `timeout` s, then SIGKILL
    (workloads.runtime's PodWorkloads.stop: a container command is PID 1 of its sandbox, and
    a PID 1 without a SIGTERM handler ignores it, as in a container; built-in workloads and
    dnsmasq end at once); `emit(type, message)`."""

    def __init__(self, term: Termination, run_hook, stop_workload, emit):
        super().__init__(daemon=True, name=f"stop-{term.pod.name}")
        self.term, self.run_hook, self.stop_workload, self.emit = (
            term, run_hook, stop_workload, emit)

    def run(self) -> None:
        t = self.term
        try:
            t0 = time.monotonic()
            self.pre_stop(t)
            timeout = stop_timeout(t.grace_s, time.monotonic() - t0)
            self.emit("Killing", f"Stopping pod {t.pod.namespace}/{t.pod.name} with a grace "
                      f"period of {timeout:.0f}s" if timeout else
                      f"Killing pod {t.pod.namespace}/{t.pod.name} (grace period 0)")
            t.outcome = outcome(self.stop_workload(timeout), timeout)
        finally:
            t.done.set()

    def pre_stop(self, t: Termination) -> None:
        """Every container's hook at once (the kubelet stops containers in parallel)."""
        threads = [threading.Thread(target=self._hook, args=(c, h, t.grace_s), daemon=True)
                   for c, h in t.hooks]
        for th in threads:
            th.start()
        for th in threads:
            th.join(max(0.0, t.started + t.grace_s - time.monotonic()))

    def _hook(self, container: str, handler: Handler, timeout: float) -> None:
        what = ("sleep" if handler.sleep_seconds is not None else
                "exec" if handler.exec_command else "httpGet")
        ok = self.run_hook(container, handler, timeout)
        pod = f"{self.term.pod.namespace}/{self.term.pod.name}"
        if ok:
            self.emit("PreStopHook", f"pod {pod} container {container}: preStop {what} done")
        else:
            self.emit("FailedPreStopHook", f"pod {pod} container {container}: preStop {what} "
                      "failed")


def outcome(exit_code: int | None, timeout: float) -> str:
    """How the workload ended, for the PodDeleted event."""
    if exit_code is None:
        return "stopped"
    if exit_code == -signal.SIGKILL:
        return "killed (SIGKILL)" + (" when the grace period ran out" if timeout else "")
    return f"exited ({exit_code}) after SIGTERM"
