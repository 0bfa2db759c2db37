"""Endpoints from pods, as the EndpointSlice controller computes them (pure).

For every Service with a selector: the pods in its namespace whose labels match, each with
its IP, node and readiness; every service port resolved to the pod's port (a named
targetPort looks up the pod's containerPort of that name; a pod without it is left out of
that port, as Kubernetes does). Selector-less Services take the user's EndpointSlices, and so
do a cluster dump's Services (the slices the dump's controller wrote).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from minikp.proxy.snapshot import Endpoint
from minikp.scenario.model import EndpointSlice, PodPlan, ServicePlan


@dataclass(frozen=True)
class Address:
    """One endpoint address of a Service (a pod, or an address from a user EndpointSlice)."""

    ip: str
    node: str = ""
    pod: str = ""  # pod name ("" when the address did not come from a pod)
    hostname: str = ""  # set when the pod's spec.subdomain names this Service (DNS records)
    ready: bool = True
    serving: bool = True
    terminating: bool = False


@dataclass
class ServiceEndpoints:
    addresses: list[Address] = field(default_factory=list)
    ports: dict[str, list[Endpoint]] = field(default_factory=dict)  # port name → endpoints


@dataclass(frozen=True)
class PodState:
    """What the controller knows of a pod's life, as the endpoint controller reads it."""

    ready: bool = False
    terminating: bool = False
    running: bool = True


def selects(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def resolve_target_port(pod: PodPlan, target, protocol: str, port: int) -> int | None:
    if isinstance(target, str) and target and not target.isdigit():
        for container in pod.template.containers:
            for cp in container.ports:
                if cp.name == target and cp.protocol == protocol:
                    return cp.container_port
        return None
    return int(target) or port


def compute_endpoints(services: list[ServicePlan], pods: list[PodPlan],
                      states: dict[str, PodState],
                      slices: list[EndpointSlice] = ()) -> dict[str, ServiceEndpoints]:
    """Endpoints of every Service, keyed "namespace/name". `states` is keyed "namespace/pod"."""
    result: dict[str, ServiceEndpoints] = {}
    for sp in services:
        svc = sp.service
        key = f"{svc.namespace}/{svc.name}"
        if svc.type == "ExternalName":
            continue
        eps = ServiceEndpoints(ports={p.name: [] for p in svc.ports})
        if svc.selector and not svc.endpoints_from_slices:
            for pod in pods:
                if pod.namespace != svc.namespace or not selects(svc.selector, pod.labels):
                    continue
                state = states.get(f"{pod.namespace}/{pod.name}", PodState())
                if not state.running or not pod.ip:
                    continue
                ready = (state.ready or svc.publish_not_ready_addresses) and not state.terminating
                serving = state.ready or svc.publish_not_ready_addresses
                hostname = pod.template.hostname if pod.template.subdomain == svc.name else ""
                eps.addresses.append(Address(pod.ip, pod.node, pod.name, hostname or "",
                                             ready, serving, state.terminating))
                for p in svc.ports:
                    number = resolve_target_port(pod, p.target_port, p.protocol, p.port)
                    if number is not None:
                        eps.ports[p.name].append(Endpoint(pod.ip, number, pod.node, ready,
                                                          serving, state.terminating))
        elif svc.selector is None or svc.endpoints_from_slices:
            for sl in slices:
                if sl.namespace != svc.namespace or sl.service_name != svc.name:
                    continue
                for e in sl.endpoints:
                    for ip in e.addresses:
                        eps.addresses.append(Address(ip, e.node_name, "", e.hostname,
                                                     e.ready, e.serving, e.terminating))
                        for p in svc.ports:
                            for sp_port in sl.ports:
                                if sp_port.name == p.name and sp_port.protocol == p.protocol:
                                    eps.ports[p.name].append(Endpoint(
                                        ip, sp_port.container_port, e.node_name,
                                        e.ready, e.serving, e.terminating))
        for lst in eps.ports.values():
            lst.sort(key=str)
        result[key] = eps
    return result


def changed_services(old: dict[str, ServiceEndpoints], new: dict[str, ServiceEndpoints]) -> list[str]:
    """The Services ("ns/name") whose endpoint addresses differ between two updates."""
    return [key for key in sorted(set(old) | set(new))
            if (old[key].addresses if key in old else None) != (new[key].addresses if key in new else None)]


def describe_changes(old: dict[str, ServiceEndpoints], new: dict[str, ServiceEndpoints]) -> str:
    """What an endpoints update changed, for the event people watch: each Service whose
    addresses changed with its ready count now, e.g. "default/web: 2 ready (of 3)"."""
    parts = []
    for key in changed_services(old, new):
        after = new.get(key)
        addrs = after.addresses if after else []
        ready = sum(a.ready for a in addrs)
        parts.append(f"{key}: {ready} ready" + (f" (of {len(addrs)})" if ready != len(addrs) else ""))
    return ", ".join(parts) or "unchanged"
