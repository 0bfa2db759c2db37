"""Live changes to a running cluster, as the supervisor applies them: delete (pods,
Deployments, ReplicaSets, Services, Ingresses), scale, and apply (add or change Services and
workloads, like `kubectl apply` without --prune). Each touches only what changed; the
endpoints, every node's proxy (partial sync) and the DNS then follow.

scale and apply are planned whole and checked on a copy of the allocator before anything
is touched: a refused change (exit 2) changes nothing. A Deployment's new template is
rolled out as its strategy says (rollout.py): RollingUpdate starts new pods and waits
until they are Ready before old ones leave the endpoints and stop; Recreate stops all
old pods, then starts the new ones.

Changes see the cluster through LiveCluster (the supervisor implements it): the objects it
follows (records.ClusterObjects) and a few actions; apply takes the file as the CLI loaded
it (minikp.scenario.handover) and loads only a bare path itself."""

from __future__ import annotations

import copy
import dataclasses
import os

from typing import Protocol

from minikp.controller import rollout
from minikp.controller.records import ClusterObjects
from minikp.errors import InputError
from minikp.ingress import install as ingress_install

WORKLOAD_KINDS = {"deployment": "Deployment", "deploy": "Deployment", "replicaset": "ReplicaSet",
                  "rs": "ReplicaSet"}


def parse_ref(spec) -> dict:
    """`{"kind", "name", "namespace"}` from a dict or "kind/name", "kind/ns/name",
    "pod/label=value" (the first pod with that label)."""
    if isinstance(spec, dict):
        return {"namespace": "default", **spec}
    kind, _, rest = str(spec).partition("/")
    ns, _, name = rest.rpartition("/")
    if not name:
        raise InputError(f'"{spec}": expected KIND/NAME (pod, deployment, replicaset, svc)')
    return {"kind": kind, "name": name, "namespace": ns or "default"}


class LiveCluster(Protocol):
    """The narrow view live changes have of a running cluster (the supervisor implements
    it): the objects it follows, and the few actions that change what runs."""

    objects: ClusterObjects

    def start_pods(self, pods, reason: str, until_ready: bool = False) -> None: ...
    def stop_pods(self, pods, reason: str, grace: int | None = None,
                  wait: bool = False) -> None: ...  # graceful: Terminating, then gone
    def resync(self, reason: str) -> None: ...  # endpoints, every node's proxy, DNS
    def force_unready(self, pod, fail: bool) -> None: ...
    def namespaces_added(self) -> None: ...  # their resolv.conf
    def emit(self, kind: str, message: str, **fields) -> None: ...  # an event


def grace_of(spec) -> int | None:
    """`--grace-period` as kubectl takes it: seconds, 0 = now, -1 (or none) = the pod's own."""
    grace = spec.get("gracePeriod") if isinstance(spec, dict) else None
    if grace is None:
        return None
    if isinstance(grace, bool) or not isinstance(grace, int) or grace < -1:
        raise InputError(f"--grace-period {grace!r}: must be seconds >= 0, or -1 for the "
                         "pod's terminationGracePeriodSeconds")
    return None if grace == -1 else grace


def delete(live: LiveCluster, spec) -> str:
    ref = parse_ref(spec)
    kind = ref["kind"].lower()
    grace = grace_of(spec)
    if kind in ("pod", "pods", "po"):
        pod = live.objects.find_pod(ref["namespace"], ref["name"])
        again = f"{pod.namespace}/{pod.name}" in live.objects.terminating
        live.stop_pods([pod], "deleted", grace)  # Terminating now; it goes in a thread
        workload = live.objects.workload(pod.owner_kind, pod.namespace, pod.owner_name)
        if workload is not None and workload.kind != "Pod" and not again:
            # its ReplicaSet replaces it at once: a Terminating pod is not a replica
            live.start_pods(live.objects.allocator.plan_pods(workload, count=1),
                            f"replacing {pod.name}")
        return f'pod "{pod.name}" deleted'
    if kind in WORKLOAD_KINDS or kind == "pod":
        wkind = WORKLOAD_KINDS[kind]
        w = live.objects.workload(wkind, ref["namespace"], ref["name"])
        if w is None:
            raise InputError(f'{kind} "{ref["name"]}" not found in namespace "{ref["namespace"]}"')
        live.stop_pods(live.objects.pods_of(wkind, w.namespace, w.name), f"{kind} deleted", grace)
        live.objects.workloads.remove(w)
        live.resync(f"{kind} {w.name} deleted")
        return f'{wkind.lower()}.apps "{w.name}" deleted'
    if kind in ("svc", "service", "services"):
        sp = live.objects.service(ref["namespace"], ref["name"])
        if sp is None:
            raise InputError(f'services "{ref["name"]}" not found in namespace "{ref["namespace"]}"')
        live.objects.services.remove(sp)
        live.objects.allocator.release_service(sp)
        live.resync(f"service {ref['name']} deleted")
        return f'service "{ref["name"]}" deleted'
    if kind in ("ingress", "ingresses", "ing"):
        o = next((o for o in live.objects.stored if (o.kind, o.namespace, o.name)
                  == ("Ingress", ref["namespace"], ref["name"])), None)
        if o is None:
            raise InputError(f'ingresses.networking.k8s.io "{ref["name"]}" not found in namespace '
                             f'"{ref["namespace"]}"')
        live.objects.stored.remove(o)
        live.resync(f"ingress {ref['name']} deleted")  # the controller's nginx drops its routes
        return f'ingress.networking.k8s.io "{ref["name"]}" deleted'
    raise InputError(f'cannot delete "{kind}"; valid: pod, deployment, replicaset, svc, ingress')


def scale(live: LiveCluster, spec) -> str:
    ref = parse_ref(spec)
    kind = WORKLOAD_KINDS.get(ref["kind"].lower())
    replicas = spec.get("replicas") if isinstance(spec, dict) else None
    if kind is None or not isinstance(replicas, int) or replicas < 0:
        raise InputError("scale takes {kind: deployment|replicaset, name, replicas >= 0}")
    w = live.objects.workload(kind, ref["namespace"], ref["name"])
    if w is None:
        raise InputError(f'{ref["kind"]} "{ref["name"]}" not found in namespace "{ref["namespace"]}"')
    steps = [("replicas", w, replicas), *_scale_steps(live, w, replicas),
             ("resync", f"scaled {w.name} to {replicas}")]
    _check(live, steps)
    _carry_out(live, steps)
    return f'{kind.lower()}.apps "{w.name}" scaled to {replicas}'


def readiness(live: LiveCluster, spec) -> str:
    """Make a pod's readiness fail, or recover: a workshop's stand-in for a failing probe."""
    ref = parse_ref(spec)
    pod = live.objects.find_pod(ref["namespace"], ref["name"])
    ready = spec.get("ready") if isinstance(spec, dict) else None
    if not isinstance(ready, bool):
        raise InputError("readiness takes {name, namespace, ready: true|false}")
    live.force_unready(pod, not ready)
    return f'pod "{pod.name}" readiness {"recovered" if ready else "made to fail"}'


# ---- apply: plan the whole change, check it on a copy, then carry it out ------------------
#
# A change is a list of steps. _check walks them on a copy of the allocator, so that every
# name and address the change needs is known to be free before anything is touched: a
# refused change (exit 2) changes nothing. _carry_out then walks the same steps for real;
# the allocator is deterministic, so they get what the check saw.
#
#   ("namespaces", [ns])             add namespaces (and their resolv.conf)
#   ("service", old_plan|None, svc)  replace or add a Service (allocates its addresses)
#   ("slices", [slice])              replace or add user-given EndpointSlices
#   ("workload", old|None, new)      the workload object the cluster follows from now on
#   ("replicas", w, n)               w.replicas = n
#   ("start", w, count, until_ready) start count new pods of w, wait until they answer (and,
#                                    in a rollout, until their readiness probes pass)
#   ("stop", [pod], reason, wait)    graceful deletion (Terminating, then gone; `wait`: gone
#                                    before the next step, for Recreate and reused names)
#   ("resync", reason)               endpoints, every node's proxy, DNS
#   ("stored", old|None, obj)        replace or add a kind minikp only keeps and lists


def apply(live: LiveCluster, spec) -> str:
    """`spec`: a file's path, or {"file", "scenario"}: the file as the CLI loaded and
    checked it (against the live nodes), not loaded again."""
    from minikp.scenario.load import check_cluster_unchanged, load_scenario

    if isinstance(spec, dict):
        path, new = spec["file"], spec["scenario"]
    else:
        path = spec
        if not os.path.exists(path):
            raise InputError(f"{path}: no such file")
        new = load_scenario([path], cluster=live.objects.config)  # checked against the live nodes
    check_cluster_unchanged(live.objects.config, new)  # a Cluster document may only restate it
    if not ingress_install.installed(live.objects.scenario):  # the first Ingress brings its controller
        new = ingress_install.with_controller(new)
    steps, report = plan_apply(live, new, os.path.basename(path))
    _check(live, steps)
    _carry_out(live, steps)
    return "\n".join(report)


def plan_apply(live: LiveCluster, new, label: str) -> tuple[list, list[str]]:
    """The steps that take the live cluster to `new` (objects not named stay), and what
    `kubectl apply` would print. Reads the live cluster and `new`, changes neither."""
    steps, report = [], []
    fresh = [ns for ns in new.namespaces if ns not in live.objects.plan.namespaces]
    if fresh:
        steps.append(("namespaces", fresh))
    for svc in new.services:
        old = live.objects.service(svc.namespace, svc.name)
        if old is not None and _same(old.service, svc):
            report.append(f"service/{svc.name} unchanged")
            continue
        steps.append(("service", old, _updated_service(old, svc)))
        report.append(f"service/{svc.name} {'configured' if old else 'created'}")
    if new.endpoint_slices:
        steps.append(("slices", list(new.endpoint_slices)))
    for w in new.workloads:
        old = live.objects.workload(w.kind, w.namespace, w.name)
        what = f"{w.kind.lower()}{'.apps' if w.kind != 'Pod' else ''}/{w.name}"
        verb, more = _workload_change(live, old, w)
        steps.extend(more)
        report.append(f"{what} {verb}")
    for o in new.stored:  # kinds minikp keeps and lists only, by kind/namespace/name
        old = next((x for x in live.objects.stored
                    if (x.kind, x.namespace, x.name) == (o.kind, o.namespace, o.name)), None)
        group = o.api_version.rpartition("/")[0]  # kubectl names a kind outside core with its group
        what = f"{o.kind.lower()}{'.' + group if group else ''}/{o.name}"
        if old is not None and old.manifest == o.manifest:
            report.append(f"{what} unchanged")
            continue
        steps.append(("stored", old, o))
        report.append(f"{what} {'configured' if old else 'created'}")
    if steps:
        steps.append(("resync", f"apply {label}"))
    return steps, report


def _updated_service(old, svc):
    """`svc` as it replaces `old`: the ClusterIP stays (immutable in Kubernetes), and so do
    the nodePorts of ports that stay. A copy: the loaded object is left as it was."""
    svc = copy.deepcopy(svc)
    if old is None:
        return svc
    old_ip = old.cluster_ip
    if old_ip not in ("", "None") and svc.type != "ExternalName":
        if svc.cluster_ip and svc.cluster_ip != old_ip:
            raise InputError(f'"{svc.cluster_ip}": field is immutable (it is {old_ip})',
                             file=svc.source.file, line=svc.source.line, kind="Service",
                             name=svc.name, field="spec.clusterIP")
        svc.cluster_ip = old_ip
    by_port = {(p.port, p.protocol): old.node_ports.get(i) for i, p in enumerate(old.service.ports)}
    for p in svc.ports:
        if not p.node_port and by_port.get((p.port, p.protocol)) \
                and svc.type in ("NodePort", "LoadBalancer"):
            p.node_port = by_port[(p.port, p.protocol)]
    return svc


def _workload_change(live: LiveCluster, old, w) -> tuple[str, list]:
    """How `w` replaces `old`: unchanged, scaled, or a new template rolled out as its
    strategy says (a Deployment; a ReplicaSet or bare Pod is recreated)."""
    if old is None:
        return "created", [("workload", None, w), ("start", w, w.replicas, False)]
    if _same(old, w):
        return "unchanged", []
    pods = live.objects.pods_of(old.kind, old.namespace, old.name)
    if _same(dataclasses.replace(old, replicas=w.replicas, strategy=w.strategy), w):
        verb = "scaled" if old.replicas != w.replicas else "configured"
        return verb, [("workload", old, w), *_scale_steps(live, old, w.replicas, w)]
    reason = f"{w.kind} {w.name} changed"
    steps = [("workload", old, w)]
    if w.kind != "Deployment":
        # the old pods are gone before the new ones come (a bare Pod's name comes back)
        return "configured", steps + [("stop", pods, reason, True), ("start", w, w.replicas, False)]
    leaving = pods[::-1]  # the newest go first
    for start, stop in rollout.rounds(w.strategy, len(pods), w.replicas):
        if start:
            steps.append(("start", w, start, True))
        if stop:
            # Recreate: the old pods are gone before the new ones come
            steps.append(("stop", leaving[:stop], reason, w.strategy.type == "Recreate"))
            leaving = leaving[stop:]
    return "configured", steps


def _scale_steps(live: LiveCluster, w, replicas: int, new=None) -> list:
    """Start or stop pods of `w` (as `new`, the same template) to have `replicas`."""
    pods = live.objects.pods_of(w.kind, w.namespace, w.name)
    if replicas > len(pods):
        return [("start", new or w, replicas - len(pods), False)]
    if replicas < len(pods):
        return [("stop", pods[replicas:][::-1], f"scaled {w.name} to {replicas}", False)]  # newest first
    return []


def _check(live: LiveCluster, steps) -> None:
    """Walk the steps' allocations on a copy of the allocator: InputError if any name or
    address they need is taken or there is no room for a pod; the cluster is untouched."""
    trial = live.objects.allocator.clone()
    for step in steps:
        if step[0] == "service":
            _, old, svc = step
            if old is not None:
                trial.release_service(old)
            trial.plan_service(svc)
        elif step[0] == "start":
            trial.plan_pods(step[1], count=step[2])
        elif step[0] == "stop":
            for pod in step[1]:
                trial.release_pod(pod)


def _carry_out(live: LiveCluster, steps) -> None:
    plan, allocator = live.objects.plan, live.objects.allocator
    for step in steps:
        kind = step[0]
        if kind == "namespaces":
            plan.namespaces.extend(step[1])
            live.namespaces_added()
        elif kind == "service":
            _, old, svc = step
            if old is not None:
                plan.services.remove(old)
                allocator.release_service(old)
            plan.services.append(allocator.plan_service(svc))
            live.objects.created_at(f"svc/{svc.namespace}/{svc.name}")
        elif kind == "slices":
            given = {(s.namespace, s.name) for s in step[1]}
            plan.endpoint_slices = [s for s in plan.endpoint_slices
                                    if (s.namespace, s.name) not in given] + step[1]
        elif kind == "workload":
            _, old, new = step
            workloads = live.objects.workloads
            if old is None:
                workloads.append(new)
            else:
                workloads[workloads.index(old)] = new
        elif kind == "replicas":
            step[1].replicas = step[2]
        elif kind == "start":
            _, w, count, until_ready = step
            pods = allocator.plan_pods(w, count=count)
            live.start_pods(pods, f"{w.kind} {w.name}: {count} new", until_ready)
            replica_sets_scaled(live, pods, "up")
        elif kind == "stop":
            live.stop_pods(step[1], step[2], wait=step[3])
            replica_sets_scaled(live, step[1], "down")
        elif kind == "resync":
            live.resync(step[1])
        elif kind == "stored":
            _, old, obj = step
            if old is not None:
                live.objects.stored.remove(old)
            live.objects.stored.append(obj)


def replica_sets_scaled(live: LiveCluster, pods, way: str) -> None:
    """The Deployment controller's events: "Scaled up replica set web-5d4f8 to 2" (with the
    Deployment, "ns/name", for `describe deploy`)."""
    for (ns, rs), p in {(p.namespace, p.replica_set): p for p in pods if p.replica_set}.items():
        n = sum(q.replica_set == rs and q.namespace == ns for q in live.objects.pods
                if f"{q.namespace}/{q.name}" not in live.objects.terminating)
        live.emit("ScalingReplicaSet", f"Scaled {way} replica set {rs} to {n}",
                        deployment=f"{p.namespace}/{p.owner_name}")


def _same(a, b) -> bool:
    strip = lambda o: {k: v for k, v in dataclasses.asdict(o).items() if k != "source"}  # noqa: E731
    return strip(a) == strip(b)

