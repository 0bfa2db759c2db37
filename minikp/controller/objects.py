"""Kubernetes-shaped objects (the dicts `kubectl get -o json` prints) for nodes, pods,
Deployments, ReplicaSets, Namespaces, services, Endpoints, EndpointSlices and the kinds
minikp only stores, from the plan and the live pod states (pure)."""

from __future__ import annotations

import datetime as dt
import hashlib

from minikp import KUBE_PROXY_VERSION
from minikp.controller.endpoints import PodState, ServiceEndpoints
from minikp.scenario.model import NodePlan, PodPlan, PodTemplate, ServicePlan, StoredObject, Workload
from minikp.scenario.plan import pod_template_hash, safe_encode


def now() -> str:
    """A creationTimestamp for an object made now (RFC 3339, seconds, UTC)."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(name, namespace=None, labels=None, created="", **extra):
    meta = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if created:
        meta["creationTimestamp"] = created
    if labels:
        meta["labels"] = dict(labels)
    meta.update(extra)
    return meta


def node_object(node: NodePlan, created: str, kube_proxy_version: str = KUBE_PROXY_VERSION) -> dict:
    """kube_proxy_version: the cluster's spec.kubernetesVersion, the release its proxies model."""
    labels = {"kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux", **node.labels}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": _meta(node.name, labels=labels, created=created),
        "spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr]},
        "status": {
            "addresses": [{"type": "InternalIP", "address": node.ip},
                          {"type": "Hostname", "address": node.name}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "nodeInfo": {"kubeProxyVersion": f"v{kube_proxy_version}", "kubeletVersion": "minikp",
                         "containerRuntimeVersion": "minikp://namespaces", "osImage": "minikp"},
        },
    }


def containers_of(template: PodTemplate) -> list[dict]:
    containers = []
    for c in template.containers:
        cont = {"name": c.name, "image": c.image}
        if c.ports:
            cont["ports"] = [{"containerPort": p.container_port, "protocol": p.protocol,
                              **({"name": p.name} if p.name else {})} for p in c.ports]
        if c.command:
            cont["command"] = list(c.command)
        if c.args:
            cont["args"] = list(c.args)
        containers.append(cont)
    return containers


def pod_object(pod: PodPlan, state: PodState, node_ip: str, created: str,
               deletion: tuple[str, int] | None = None, phase: str = "",
               containers: dict[str, dict] | None = None) -> dict:
    """`deletion`: (deletionTimestamp, grace period) of a Terminating pod. `containers`: what a
    runtime knows of each container (restartCount, state, containerID), by name."""
    containers = containers or {}
    owner = []
    if pod.owner_kind in ("Deployment", "ReplicaSet"):
        owner = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                  "name": pod.replica_set or pod.owner_name, "controller": True}]
    spec = {"nodeName": pod.node, "containers": containers_of(pod.template),
            "terminationGracePeriodSeconds": pod.template.termination_grace_period_seconds}
    if pod.template.host_network:
        spec["hostNetwork"] = True
    if pod.template.hostname:
        spec["hostname"] = pod.template.hostname
    if pod.template.subdomain:
        spec["subdomain"] = pod.template.subdomain
    ready = "True" if state.ready else "False"
    meta = _meta(pod.name, pod.namespace, pod.labels, created)
    if owner:
        meta["ownerReferences"] = owner
    if pod.template.annotations:
        meta["annotations"] = dict(pod.template.annotations)
    if state.terminating:
        meta["deletionTimestamp"] = deletion[0] if deletion else created
        if deletion:
            meta["deletionGracePeriodSeconds"] = deletion[1]
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec,
        "status": {
            "phase": phase or ("Running" if state.running else "Failed"),
            "podIP": pod.ip, "podIPs": [{"ip": pod.ip}], "hostIP": node_ip,
            "conditions": [{"type": "Ready", "status": ready},
                           {"type": "ContainersReady", "status": ready}],
            "containerStatuses": [{"name": c.name, "image": c.image, "ready": state.ready,
                                   "restartCount": 0, "started": state.running,
                                   **containers.get(c.name, {})}
                                  for c in pod.template.containers],
        },
    }


def _replica_counts(pods: list[PodPlan], states: dict[str, PodState]) -> dict:
    live = [p for p in pods if not states.get(f"{p.namespace}/{p.name}", PodState()).terminating]
    ready = sum(states.get(f"{p.namespace}/{p.name}", PodState(ready=False)).ready for p in live)
    return {"replicas": len(live), "readyReplicas": ready, "availableReplicas": ready}


def _template_object(template: PodTemplate, extra_labels: dict | None = None) -> dict:
    return {"metadata": {"labels": {**template.labels, **(extra_labels or {})}},
            "spec": {"containers": containers_of(template)}}


def deployment_object(w: Workload, pods: list[PodPlan], states: dict[str, PodState],
                      created: str) -> dict:
    """A Deployment with the status the deployment controller keeps: replicas (its pods),
    updatedReplicas (those of the current template), ready, available, unavailable."""
    mine = [p for p in pods if p.namespace == w.namespace and p.owner_kind == "Deployment"
            and p.owner_name == w.name]
    status = _replica_counts(mine, states)
    current = pod_template_hash(w.template)
    status["updatedReplicas"] = sum(p.template_hash == current for p in mine)
    status["unavailableReplicas"] = max(0, w.replicas - status["availableReplicas"])
    available = status["availableReplicas"] >= w.replicas
    strategy = {"type": w.strategy.type}
    if w.strategy.type == "RollingUpdate":
        strategy["rollingUpdate"] = {"maxSurge": w.strategy.max_surge,
                                     "maxUnavailable": w.strategy.max_unavailable}
    status["conditions"] = [
        {"type": "Available", "status": "True" if available else "False",
         "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable"},
        {"type": "Progressing", "status": "True",
         "reason": "NewReplicaSetAvailable" if status["updatedReplicas"] == status["replicas"]
         == w.replicas else "ReplicaSetUpdated"}]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": _meta(w.name, w.namespace, created=created,
                              annotations={"deployment.kubernetes.io/revision": "1"}),
            "spec": {"replicas": w.replicas, "selector": {"matchLabels": dict(w.selector)},
                     "strategy": strategy, "template": _template_object(w.template)},
            "status": status}


def replicaset_objects(w: Workload, pods: list[PodPlan], states: dict[str, PodState],
                       created: str) -> list[dict]:
    """A ReplicaSet workload as itself; a Deployment's: the one of its current template
    (desired: its replicas) and any older one that still has pods (a rollout's)."""
    if w.kind == "ReplicaSet":
        mine = [p for p in pods if p.namespace == w.namespace and p.owner_kind == "ReplicaSet"
                and p.owner_name == w.name]
        sets = [(w.name, "", w.replicas, mine, None)]
    elif w.kind == "Deployment":
        mine = [p for p in pods if p.namespace == w.namespace and p.owner_kind == "Deployment"
                and p.owner_name == w.name]
        current = pod_template_hash(w.template)
        hashes = dict.fromkeys([current] + [p.template_hash for p in mine])
        sets = [(f"{w.name}-{h}", h, w.replicas if h == current else
                 sum(p.template_hash == h for p in mine), [p for p in mine if p.template_hash == h],
                 w.name) for h in hashes]
    else:
        return []
    out = []
    for name, h, desired, rs_pods, owner in sets:
        extra = {"pod-template-hash": h} if h else {}
        meta = _meta(name, w.namespace, {**w.template.labels, **extra}, created)
        if owner:
            meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "Deployment",
                                        "name": owner, "controller": True}]
        template = w.template if h in ("", pod_template_hash(w.template)) else rs_pods[0].template
        out.append({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta,
                    "spec": {"replicas": desired,
                             "selector": {"matchLabels": {**w.selector, **extra}},
                             "template": _template_object(template, extra)},
                    "status": _replica_counts(rs_pods, states)})
    return out


def namespace_object(name: str, created: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": _meta(name, labels={"kubernetes.io/metadata.name": name}, created=created),
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def service_object(sp: ServicePlan, created: str) -> dict:
    svc = sp.service
    ports = []
    for i, p in enumerate(svc.ports):
        port = {"port": p.port, "protocol": p.protocol,
                "targetPort": p.target_port or p.port}
        if p.name:
            port["name"] = p.name
        if sp.node_ports.get(i):
            port["nodePort"] = sp.node_ports[i]
        ports.append(port)
    spec = {"type": svc.type, "ports": ports, "sessionAffinity": svc.session_affinity}
    if svc.selector:
        spec["selector"] = dict(svc.selector)
    if svc.type == "ExternalName":
        spec["externalName"] = svc.external_name
    else:
        spec["clusterIP"] = sp.cluster_ip
        spec["clusterIPs"] = [sp.cluster_ip]
        spec["internalTrafficPolicy"] = svc.internal_traffic_policy
    if svc.type in ("NodePort", "LoadBalancer"):
        spec["externalTrafficPolicy"] = svc.external_traffic_policy
    if svc.external_ips:
        spec["externalIPs"] = list(svc.external_ips)
    if svc.load_balancer_source_ranges:
        spec["loadBalancerSourceRanges"] = list(svc.load_balancer_source_ranges)
    if sp.health_check_node_port:
        spec["healthCheckNodePort"] = sp.health_check_node_port
    if svc.session_affinity == "ClientIP":
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": svc.session_affinity_timeout}}
    status = {"loadBalancer": {}}
    if sp.load_balancer_ip:
        status["loadBalancer"] = {"ingress": [{"ip": sp.load_balancer_ip, "ipMode": "VIP"}]}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": _meta(svc.name, svc.namespace, svc.labels, created),
            "spec": spec, "status": status}


def endpoints_object(sp: ServicePlan, eps: ServiceEndpoints, created: str) -> dict:
    """A v1 Endpoints object: ready addresses, notReadyAddresses, one subset per port set."""
    svc = sp.service
    by_pod_ports: dict[tuple, dict] = {}
    for addr in eps.addresses:
        ports = []
        for p in svc.ports:
            for e in eps.ports.get(p.name, []):
                if e.ip == addr.ip:
                    ports.append((p.name, e.port, p.protocol))
        subset = by_pod_ports.setdefault(tuple(ports), {"addresses": [], "notReadyAddresses": []})
        entry = {"ip": addr.ip}
        if addr.node:
            entry["nodeName"] = addr.node
        if addr.hostname:
            entry["hostname"] = addr.hostname
        if addr.pod:
            entry["targetRef"] = {"kind": "Pod", "name": addr.pod, "namespace": svc.namespace}
        subset["addresses" if addr.ready else "notReadyAddresses"].append(entry)
    subsets = []
    for ports, subset in by_pod_ports.items():
        s = {k: sorted(v, key=lambda a: a["ip"]) for k, v in subset.items() if v}
        s["ports"] = [{"port": port, "protocol": proto, **({"name": n} if n else {})}
                      for n, port, proto in ports]
        subsets.append(s)
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": _meta(svc.name, svc.namespace, svc.labels, created),
            "subsets": subsets}


def endpointslice_object(sp: ServicePlan, eps: ServiceEndpoints, created: str) -> dict:
    svc = sp.service
    ports = []
    for p in svc.ports:
        numbers = {e.port for e in eps.ports.get(p.name, [])}
        ports.append({"name": p.name, "protocol": p.protocol,
                      "port": numbers.pop() if len(numbers) == 1 else None})
    endpoints = []
    for a in eps.addresses:
        e = {"addresses": [a.ip], "conditions": {"ready": a.ready, "serving": a.serving,
                                                 "terminating": a.terminating}}
        if a.node:
            e["nodeName"] = a.node
        if a.hostname:
            e["hostname"] = a.hostname
        if a.pod:
            e["targetRef"] = {"kind": "Pod", "name": a.pod, "namespace": svc.namespace}
        endpoints.append(e)
    labels = {"kubernetes.io/service-name": svc.name,
              "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": _meta(slice_name(svc.namespace, svc.name), svc.namespace, labels, created),
            "addressType": "IPv4", "ports": ports, "endpoints": endpoints}


def slice_name(namespace: str, service: str) -> str:
    """`<service>-<5 chars>`: the endpointslice controller's generateName, made stable."""
    return f"{service}-{safe_encode(hashlib.sha256(f'{namespace}/{service}'.encode()).hexdigest())[:5]}"


def stored_object(o: StoredObject, created: str, status: dict | None = None) -> dict:
    """A stored kind (ConfigMap, Secret, Ingress, ...) as given, with the metadata the API
    server would add (and the status its controller wrote, if any)."""
    meta = dict(o.manifest.get("metadata") or {})
    meta.pop("namespace", None)
    meta.update(_meta(o.name, o.namespace or None, created=created))
    return {**o.manifest, "metadata": meta, **({"status": status} if status is not None else {})}
