"""Live changes to a running cluster, as the supervisor applies them: delete (pods,
Deployments, ReplicaSets, Services), scale, and apply (add or change Services and
workloads, like `kubectl apply` without --prune). Each touches only what changed; the
endpoints, every node's proxy (partial sync) and the DNS then follow in one resync."""

from __future__ import annotations

import dataclasses
import os

from minikp.controller.objects import now
from minikp.errors import InputError

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


def _pods_of(sup, kind: str, namespace: str, name: str):
    return [p for p in sup.plan.pods if p.namespace == namespace and p.owner_kind == kind
            and p.owner_name == name]


def _workload(sup, kind: str, namespace: str, name: str):
    for w in sup.scenario.workloads:
        if (w.kind, w.namespace, w.name) == (kind, namespace, name):
            return w
    return None


def _find_pod(sup, ref):
    name, ns = ref["name"], ref["namespace"]
    for p in sup.plan.pods:
        if p.namespace != ns:
            continue
        if "=" in name:
            k, _, v = name.partition("=")
            if p.labels.get(k) == v:
                return p
        elif p.name == name:
            return p
    raise InputError(f'pods "{name}" not found in namespace "{ns}"')


def delete(sup, spec) -> str:
    ref = parse_ref(spec)
    kind = ref["kind"].lower()
    if kind in ("pod", "pods", "po"):
        pod = _find_pod(sup, ref)
        sup.stop_pod(pod, "deleted")
        workload = _workload(sup, pod.owner_kind, pod.namespace, pod.owner_name)
        if workload is not None and workload.kind != "Pod":  # its ReplicaSet replaces it
            sup.start_pods(sup.plan.allocator.plan_pods(workload, count=1), f"replacing {pod.name}")
        else:
            sup.resync(f"pod {pod.name} deleted")
        return f'pod "{pod.name}" deleted'
    if kind in WORKLOAD_KINDS or kind == "pod":
        wkind = WORKLOAD_KINDS[kind]
        w = _workload(sup, wkind, ref["namespace"], ref["name"])
        if w is None:
            raise InputError(f'{kind} "{ref["name"]}" not found in namespace "{ref["namespace"]}"')
        for pod in _pods_of(sup, wkind, w.namespace, w.name):
            sup.stop_pod(pod, f"{kind} deleted")
        sup.scenario.workloads.remove(w)
        sup.resync(f"{kind} {w.name} deleted")
        return f'{wkind.lower()}.apps "{w.name}" deleted'
    if kind in ("svc", "service", "services"):
        sp = _service(sup, ref["namespace"], ref["name"])
        if sp is None:
            raise InputError(f'services "{ref["name"]}" not found in namespace "{ref["namespace"]}"')
        sup.plan.services.remove(sp)
        sup.plan.allocator.release_service(sp)
        sup.resync(f"service {ref['name']} deleted")
        return f'service "{ref["name"]}" deleted'
    raise InputError(f'cannot delete "{kind}"; valid: pod, deployment, replicaset, svc')


def _service(sup, namespace, name):
    return next((sp for sp in sup.plan.services
                 if (sp.service.namespace, sp.service.name) == (namespace, name)), None)


def scale(sup, spec) -> str:
    ref = parse_ref(spec)
    kind = WORKLOAD_KINDS.get(ref["kind"].lower())
    replicas = spec.get("replicas") if isinstance(spec, dict) else None
    if kind is None or not isinstance(replicas, int) or replicas < 0:
        raise InputError("scale takes {kind: deployment|replicaset, name, replicas >= 0}")
    w = _workload(sup, kind, ref["namespace"], ref["name"])
    if w is None:
        raise InputError(f'{ref["kind"]} "{ref["name"]}" not found in namespace "{ref["namespace"]}"')
    _scale_to(sup, w, replicas)
    return f'{kind.lower()}.apps "{w.name}" scaled to {replicas}'


def readiness(sup, spec) -> str:
    """Make a pod's readiness fail, or recover: a workshop's stand-in for a failing probe."""
    pod = _find_pod(sup, parse_ref(spec))
    ready = spec.get("ready") if isinstance(spec, dict) else None
    if not isinstance(ready, bool):
        raise InputError("readiness takes {name, namespace, ready: true|false}")
    sup.force_unready(pod, not ready)
    return f'pod "{pod.name}" readiness {"recovered" if ready else "made to fail"}'


def _scale_to(sup, w, replicas: int) -> None:
    pods = _pods_of(sup, w.kind, w.namespace, w.name)
    w.replicas = replicas
    if replicas > len(pods):
        sup.start_pods(sup.plan.allocator.plan_pods(w, count=replicas - len(pods)),
                       f"scaling {w.name} to {replicas}")
    elif replicas < len(pods):
        for pod in pods[replicas:][::-1]:  # the newest go first
            sup.stop_pod(pod, f"scaled {w.name} to {replicas}")
        sup.resync(f"scaled {w.name} to {replicas}")


def _same(a, b) -> bool:
    strip = lambda o: {k: v for k, v in dataclasses.asdict(o).items() if k != "source"}  # noqa: E731
    return strip(a) == strip(b)


def apply(sup, path: str) -> str:
    from minikp.scenario.load import load_scenario

    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    new = load_scenario([path])
    out = []
    for ns in new.namespaces:
        if ns not in sup.plan.namespaces:
            sup.plan.namespaces.append(ns)
    sup.write_resolv_confs()
    for svc in new.services:
        old = _service(sup, svc.namespace, svc.name)
        if old is not None and _same(old.service, svc):
            out.append(f"service/{svc.name} unchanged")
            continue
        if old is not None:
            # an update keeps the ClusterIP (immutable in Kubernetes) and the nodePorts
            if not svc.cluster_ip and old.cluster_ip not in ("", "None"):
                svc.cluster_ip = old.cluster_ip
            by_port = {(p.port, p.protocol): old.node_ports.get(i)
                       for i, p in enumerate(old.service.ports)}
            for p in svc.ports:
                if not p.node_port and by_port.get((p.port, p.protocol)) \
                        and svc.type in ("NodePort", "LoadBalancer"):
                    p.node_port = by_port[(p.port, p.protocol)]
            sup.plan.services.remove(old)
            sup.plan.allocator.release_service(old)
        sup.plan.services.append(sup.plan.allocator.plan_service(svc))
        sup.created.setdefault(f"svc/{svc.namespace}/{svc.name}", now())
        out.append(f"service/{svc.name} {'configured' if old else 'created'}")
    sup.plan.endpoint_slices = [s for s in sup.plan.endpoint_slices
                                if (s.namespace, s.name) not in {(n.namespace, n.name) for n in new.endpoint_slices}]
    sup.plan.endpoint_slices.extend(new.endpoint_slices)
    for w in new.workloads:
        old = _workload(sup, w.kind, w.namespace, w.name)
        label = f"{w.kind.lower()}{'.apps' if w.kind != 'Pod' else ''}/{w.name}"
        if old is not None and _same(old, w):
            out.append(f"{label} unchanged")
            continue
        if old is not None and _same(dataclasses.replace(old, replicas=w.replicas), w):
            _scale_to(sup, old, w.replicas)
            out.append(f"{label} scaled")
            continue
        if old is not None:  # a new template: replace every pod (the Recreate strategy)
            for pod in _pods_of(sup, old.kind, old.namespace, old.name):
                sup.stop_pod(pod, f"{w.kind} {w.name} changed")
            sup.scenario.workloads.remove(old)
        sup.scenario.workloads.append(w)
        sup.start_pods(sup.plan.allocator.plan_pods(w), f"apply {w.name}")
        out.append(f"{label} {'configured' if old else 'created'}")
    sup.resync(f"apply {os.path.basename(path)}")
    return "\n".join(out)
