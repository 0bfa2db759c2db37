"""What the supervisor knows of a running cluster (pure data, no kernel).

- PodRecord: one per pod: its plan, network namespace, runtime handle (PodWorkloads),
  sandboxes, readiness probes, state (PodState, as the endpoint controller reads it),
  whether its readiness was made to fail by hand, when it was created, and its containers'
  restarts (back-off, why one is down) or the image it waits for.
- ClusterObjects: the objects the cluster follows, as live changes (changes.py) read and
  replace them: the plan (nodes, pods, Services, addresses, the allocator) and the
  scenario's workloads and stored kinds, with when each non-pod object was created.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from minikp import clock
from minikp.controller.endpoints import PodState
from minikp.controller.objects import now
from minikp.errors import InputError
from minikp.scenario.model import ClusterPlan, PodPlan, Scenario


def pod_key(pod: PodPlan) -> str:
    return f"{pod.namespace}/{pod.name}"


@dataclass
class PodRecord:
    pod: PodPlan
    netns: str = ""
    created: str = ""
    state: PodState = field(default_factory=lambda: PodState(ready=False))
    workloads: Any = None  # workloads.runtime.PodWorkloads, once started
    sandboxes: Any = None  # workloads.sandbox.PodSandboxes
    probes: list = field(default_factory=list)  # controller.probes.ProbeTracker
    forced_unready: bool = False  # readiness made to fail by hand
    ctx: Any = None  # workloads.runtime.PodContext: what its containers (re)start with
    restarts: dict = field(default_factory=dict)  # container name → workloads.restarts.Backoff
    exits: dict = field(default_factory=dict)  # container name → (reason, exit code) while down
    pull: Any = None  # workloads.imagepull.PullBackoff: an image it waits for (Pending)

    @property
    def key(self) -> str:
        return pod_key(self.pod)

    @property
    def live(self) -> bool:
        """Running and not on its way out: its probes run, its readiness may change."""
        return self.state.running and not self.state.terminating

    @property
    def phase(self) -> str:
        """Pending while it waits for an image; "" (from its state: Running or Failed)."""
        return "Pending" if self.pull is not None else ""

    def exited(self) -> bool:
        return self.workloads is not None and self.workloads.exited()

    def finished(self) -> bool:
        """A container exited that its restartPolicy does not start again: the pod failed."""
        return any(reason in ("Completed", "Error") and not self.restarts[name].waiting_until
                   for name, (reason, _) in self.exits.items())

    def restarting_now(self) -> bool:
        """A container waits out its back-off."""
        return any(b.waiting_until is not None for b in self.restarts.values())

    def restarting(self) -> bool:
        """A container exited and was (or will be) started again."""
        return any(b.waiting_until is not None or b.restarts for b in self.restarts.values())

    def container_statuses(self, now: float | None = None) -> dict[str, dict]:
        """restartCount and state of each container that has restarted or is down, as the
        kubelet reports them (containerStatuses)."""
        if self.pull is not None:  # no container started yet: each waits for the image
            waiting = self.pull.waiting(clock.now() if now is None else now)
            return {c.name: {"restartCount": 0, "state": {"waiting": waiting}}
                    for c in self.pod.template.containers}
        out = {}
        for name, b in self.restarts.items():
            st = {"running": {}}
            if name in self.exits:
                reason, code = self.exits[name]
                st = ({"waiting": {"reason": reason}} if b.waiting_until is not None
                      else {"terminated": {"reason": reason, "exitCode": code}})
            out[name] = {"restartCount": b.restarts, "state": st}
        return out


class ClusterObjects:
    def __init__(self, scenario: Scenario, plan: ClusterPlan):
        self.scenario, self.plan = scenario, plan
        self.created: dict[str, str] = {}  # "node/n", "svc/ns/name", "ns/x", "Kind/ns/name"
        self.terminating = {}  # keys of Terminating pods (the supervisor's terminations)

    @property
    def config(self):
        return self.plan.config

    @property
    def pods(self) -> list[PodPlan]:
        return self.plan.pods

    @property
    def services(self):
        return self.plan.services

    @property
    def allocator(self):
        return self.plan.allocator

    @property
    def workloads(self):
        return self.scenario.workloads

    @property
    def stored(self):
        return self.scenario.stored

    def created_at(self, key: str) -> str:
        return self.created.setdefault(key, now())

    def workload(self, kind: str, namespace: str, name: str):
        return next((w for w in self.scenario.workloads
                     if (w.kind, w.namespace, w.name) == (kind, namespace, name)), None)

    def pods_of(self, kind: str, namespace: str, name: str) -> list[PodPlan]:
        """The workload's pods that count: a Terminating pod is no longer one of its replicas."""
        return [p for p in self.plan.pods if p.namespace == namespace and p.owner_kind == kind
                and p.owner_name == name and pod_key(p) not in self.terminating]

    def service(self, namespace: str, name: str):
        return next((sp for sp in self.plan.services
                     if (sp.service.namespace, sp.service.name) == (namespace, name)), None)

    def find_pod(self, namespace: str, name: str) -> PodPlan:
        """By name, or "label=value": the first pod with that label (not Terminating, if one
        is not)."""
        for p in sorted(self.plan.pods, key=lambda p: pod_key(p) in self.terminating):
            if p.namespace != namespace:
                continue
            if "=" in name:
                k, _, v = name.partition("=")
                if p.labels.get(k) == v:
                    return p
            elif p.name == name:
                return p
        raise InputError(f'pods "{name}" not found in namespace "{namespace}"')
