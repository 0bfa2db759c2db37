"""What minikp knows of the Kubernetes API: which kinds exist in which apiVersion, what it does
with each kind, and every field it knows per object path — the one table the loader's strict
validation consults (as kubectl's default `--validate=strict` consults the OpenAPI schema).

A field's state:
  MODELLED  read and acted on by minikp
  WARN      a real Kubernetes field minikp does not model yet: accepted, with a warning that
            names FILE:LINE and the field (never silently ignored). Modelling one is a one-line
            change here from WARN to MODELLED, plus its parsing in load.py.
  SERVER    set by the API server (uid, status, ...): accepted and ignored as the API server
            ignores them on create
A field not in the table is an error: `unknown field "spec.typo"`. Paths are dotted; `[]` marks
the items of a list. The walker descends only into fields whose sub-fields are listed, so a
field listed without sub-fields takes any value (labels, annotations, opaque WARN fields)."""

from __future__ import annotations

MODELLED, WARN, SERVER = "modelled", "warn", "server"
M, W, S = MODELLED, WARN, SERVER

# ---- kinds -----------------------------------------------------------------------------------

ACTED = "acted"  # minikp builds it
STORED = "stored"  # accepted, kept and listed by `minikp get`, has no effect
UNHANDLED = "unhandled"  # a real kind minikp cannot handle: skipped with a warning

KINDS: dict[str, dict[str, str]] = {  # apiVersion -> kind -> what minikp does with it
    "v1": {"Pod": ACTED, "Service": ACTED, "Namespace": ACTED, "Endpoints": ACTED,
           "List": ACTED, "ConfigMap": STORED, "Secret": STORED, "ServiceAccount": STORED,
           "Node": UNHANDLED, "PersistentVolumeClaim": UNHANDLED, "PersistentVolume": UNHANDLED,
           "LimitRange": UNHANDLED, "ResourceQuota": UNHANDLED, "ReplicationController": UNHANDLED,
           "PodTemplate": UNHANDLED, "Event": UNHANDLED},
    "apps/v1": {"Deployment": ACTED, "ReplicaSet": ACTED, "StatefulSet": UNHANDLED,
                "DaemonSet": UNHANDLED, "ControllerRevision": UNHANDLED},
    "discovery.k8s.io/v1": {"EndpointSlice": ACTED},
    "networking.k8s.io/v1": {"Ingress": ACTED, "IngressClass": ACTED, "NetworkPolicy": STORED},
    "rbac.authorization.k8s.io/v1": {"Role": STORED, "RoleBinding": STORED,
                                     "ClusterRole": STORED, "ClusterRoleBinding": STORED},
    "batch/v1": {"Job": UNHANDLED, "CronJob": UNHANDLED},
    "autoscaling/v1": {"HorizontalPodAutoscaler": UNHANDLED},
    "autoscaling/v2": {"HorizontalPodAutoscaler": UNHANDLED},
    "policy/v1": {"PodDisruptionBudget": UNHANDLED},
    "storage.k8s.io/v1": {"StorageClass": UNHANDLED, "CSIDriver": UNHANDLED},
    "scheduling.k8s.io/v1": {"PriorityClass": UNHANDLED},
    "coordination.k8s.io/v1": {"Lease": UNHANDLED},
    "apiextensions.k8s.io/v1": {"CustomResourceDefinition": UNHANDLED},
    "admissionregistration.k8s.io/v1": {"ValidatingWebhookConfiguration": UNHANDLED,
                                        "MutatingWebhookConfiguration": UNHANDLED},
    "minikp.dev/v1alpha1": {"Cluster": ACTED},
}

# why a stored kind does nothing (printed as a warning); stored kinds not here are silent
STORED_NOTE = {"NetworkPolicy": "stored, not enforced: minikp has no network policy engine"}

# (apiVersion, kind) -> (the release that removed it, its replacement)
REMOVED: dict[tuple[str, str], tuple[str, str]] = {
    **{("extensions/v1beta1", k): ("1.16", "apps/v1") for k in ("Deployment", "ReplicaSet", "DaemonSet")},
    **{(g, k): ("1.16", "apps/v1") for g in ("apps/v1beta1", "apps/v1beta2")
       for k in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet")},
    ("extensions/v1beta1", "NetworkPolicy"): ("1.16", "networking.k8s.io/v1"),
    ("extensions/v1beta1", "Ingress"): ("1.22", "networking.k8s.io/v1"),
    ("networking.k8s.io/v1beta1", "Ingress"): ("1.22", "networking.k8s.io/v1"),
    ("networking.k8s.io/v1beta1", "IngressClass"): ("1.22", "networking.k8s.io/v1"),
    ("discovery.k8s.io/v1beta1", "EndpointSlice"): ("1.25", "discovery.k8s.io/v1"),
    ("batch/v1beta1", "CronJob"): ("1.25", "batch/v1"),
    ("policy/v1beta1", "PodDisruptionBudget"): ("1.25", "policy/v1"),
    ("autoscaling/v2beta1", "HorizontalPodAutoscaler"): ("1.25", "autoscaling/v2"),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler"): ("1.26", "autoscaling/v2"),
    **{("rbac.authorization.k8s.io/v1beta1", k): ("1.22", "rbac.authorization.k8s.io/v1")
       for k in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")},
    ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"): ("1.22", "apiextensions.k8s.io/v1"),
}

# (apiVersion, kind) -> the first release whose API server served it by default (kubernetes
# CHANGELOGs; before a group went beta-on-by-default it needed --runtime-config). Not listed:
# served since 1.1, the oldest release minikp models.
SERVED: dict[tuple[str, str], str] = {
    ("v1", "ConfigMap"): "1.2",
    **{("extensions/v1beta1", k): "1.2" for k in ("Deployment", "ReplicaSet", "DaemonSet")},
    ("extensions/v1beta1", "NetworkPolicy"): "1.3",
    ("apps/v1beta1", "StatefulSet"): "1.5", ("apps/v1beta1", "Deployment"): "1.6",
    **{("apps/v1beta2", k): "1.8" for k in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet")},
    **{("apps/v1", k): "1.9" for k in KINDS["apps/v1"]},
    ("networking.k8s.io/v1", "NetworkPolicy"): "1.7",
    ("networking.k8s.io/v1beta1", "Ingress"): "1.14",
    ("networking.k8s.io/v1beta1", "IngressClass"): "1.18",
    ("networking.k8s.io/v1", "Ingress"): "1.19", ("networking.k8s.io/v1", "IngressClass"): "1.19",
    ("discovery.k8s.io/v1beta1", "EndpointSlice"): "1.17",
    ("discovery.k8s.io/v1", "EndpointSlice"): "1.21",
    **{("rbac.authorization.k8s.io/v1beta1", k): "1.6" for k in KINDS["rbac.authorization.k8s.io/v1"]},
    **{("rbac.authorization.k8s.io/v1", k): "1.8" for k in KINDS["rbac.authorization.k8s.io/v1"]},
    ("batch/v1", "Job"): "1.2", ("batch/v1beta1", "CronJob"): "1.8", ("batch/v1", "CronJob"): "1.21",
    ("autoscaling/v1", "HorizontalPodAutoscaler"): "1.2",
    ("autoscaling/v2beta1", "HorizontalPodAutoscaler"): "1.8",
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler"): "1.12",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "1.23",
    ("policy/v1beta1", "PodDisruptionBudget"): "1.5", ("policy/v1", "PodDisruptionBudget"): "1.21",
    ("storage.k8s.io/v1", "StorageClass"): "1.6", ("storage.k8s.io/v1", "CSIDriver"): "1.18",
    ("scheduling.k8s.io/v1", "PriorityClass"): "1.14", ("coordination.k8s.io/v1", "Lease"): "1.14",
    ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"): "1.7",
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): "1.16",
    **{("admissionregistration.k8s.io/v1", k): "1.16"
       for k in KINDS["admissionregistration.k8s.io/v1"]},
}

# ---- fields ----------------------------------------------------------------------------------


def _under(prefix: str, fields: dict) -> dict:
    return {f"{prefix}.{k}": v for k, v in fields.items()}


OBJECT_META = {
    "name": M, "namespace": M, "labels": M, "annotations": M,
    "generateName": W, "ownerReferences": W, "finalizers": W,
    "uid": S, "resourceVersion": S, "creationTimestamp": S, "generation": S, "managedFields": S,
    "selfLink": S, "deletionTimestamp": S, "deletionGracePeriodSeconds": S,
}
TOP = {"apiVersion": M, "kind": M, "metadata": M, **_under("metadata", OBJECT_META), "status": S}

SECURITY_CONTEXT = {  # the pod's and the container's (a few of each are the other's only)
    "runAsUser": M, "runAsGroup": M, "runAsNonRoot": W, "seLinuxOptions": W, "seccompProfile": W,
    "appArmorProfile": W, "windowsOptions": W,
}
POD_SECURITY_CONTEXT = {**SECURITY_CONTEXT, "fsGroup": W, "fsGroupChangePolicy": W,
                        "supplementalGroups": W, "supplementalGroupsPolicy": W, "sysctls": W,
                        "seLinuxChangePolicy": W}
CONTAINER_SECURITY_CONTEXT = {
    **SECURITY_CONTEXT, "capabilities": M, "capabilities.add": M, "capabilities.drop": M,
    "readOnlyRootFilesystem": M, "privileged": M, "allowPrivilegeEscalation": M, "procMount": W,
}
PROBE = {
    "httpGet": M, "httpGet.path": M, "httpGet.port": M, "httpGet.host": W, "httpGet.scheme": W,
    "httpGet.httpHeaders": W, "tcpSocket": M, "tcpSocket.port": M, "tcpSocket.host": W,
    "exec": M, "exec.command": M, "grpc": W,
    "initialDelaySeconds": M, "periodSeconds": M, "timeoutSeconds": M, "successThreshold": M,
    "failureThreshold": M, "terminationGracePeriodSeconds": W,
}
HANDLER = {  # a lifecycle hook
    "exec": M, "exec.command": M, "httpGet": M, "httpGet.path": M, "httpGet.port": M,
    "httpGet.host": W, "httpGet.scheme": W, "httpGet.httpHeaders": W, "sleep": M,
    "sleep.seconds": M, "tcpSocket": W,
}
CONTAINER = {
    "name": M, "image": M, "command": M, "args": M,
    "ports": M, "ports[].containerPort": M, "ports[].protocol": M, "ports[].name": M,
    "ports[].hostPort": W, "ports[].hostIP": W,
    "readinessProbe": M, **_under("readinessProbe", PROBE),
    "env": M, "env[].name": M, "env[].value": M, "env[].valueFrom": M,
    "envFrom": M, "envFrom[].configMapRef": M, "envFrom[].secretRef": W, "envFrom[].prefix": M,
    "volumeMounts": M, "volumeMounts[].name": M, "volumeMounts[].mountPath": M,
    "volumeMounts[].readOnly": M, **{f"volumeMounts[].{k}": W for k in (
        "subPath", "subPathExpr", "mountPropagation", "recursiveReadOnly")},
    "securityContext": M, **_under("securityContext", CONTAINER_SECURITY_CONTEXT),
    "lifecycle": M, "lifecycle.preStop": M, **_under("lifecycle.preStop", HANDLER),
    "lifecycle.postStart": W, "lifecycle.stopSignal": W,
    "imagePullPolicy": W, "resources": W, "livenessProbe": W, "startupProbe": W,
    "workingDir": W, "stdin": W, "stdinOnce": W, "tty": W, "terminationMessagePath": W,
    "terminationMessagePolicy": W, "volumeDevices": W, "restartPolicy": W, "resizePolicy": W,
}
VOLUME = {"name": M, "emptyDir": M, "emptyDir.medium": M, "emptyDir.sizeLimit": W,
          "hostPath": M, "hostPath.path": M, "hostPath.type": M,
          **{k: W for k in ("configMap", "secret", "projected", "downwardAPI",
                            "persistentVolumeClaim", "csi", "ephemeral", "nfs", "image")}}
POD_SPEC = {
    "containers": M, **_under("containers[]", CONTAINER),
    "hostname": M, "subdomain": M, "nodeName": M, "nodeSelector": M,
    "securityContext": M, **_under("securityContext", POD_SECURITY_CONTEXT),
    "volumes": M, **_under("volumes[]", VOLUME),
    "initContainers": W, "ephemeralContainers": W, "hostNetwork": M, "hostPID": W, "hostIPC": W,
    "terminationGracePeriodSeconds": M, "restartPolicy": M, "dnsPolicy": W, "dnsConfig": W,
    "hostAliases": W, "affinity": W, "tolerations": W, "topologySpreadConstraints": W,
    "serviceAccountName": W, "serviceAccount": W, "automountServiceAccountToken": W,
    "imagePullSecrets": W, "priorityClassName": W, "priority": W, "schedulerName": W,
    "activeDeadlineSeconds": W, "enableServiceLinks": M, "preemptionPolicy": W,
    "runtimeClassName": W, "shareProcessNamespace": W, "setHostnameAsFQDN": W,
    "readinessGates": W, "overhead": W, "os": W, "resourceClaims": W, "schedulingGates": W,
    "hostUsers": W, "resources": W,
}
TEMPLATE = {"metadata": M, "metadata.labels": M, "metadata.annotations": M,
            "metadata.name": W, "metadata.namespace": W, "metadata.creationTimestamp": S,
            "spec": M, **_under("spec", POD_SPEC)}
SELECTOR = {"matchLabels": M, "matchExpressions": M}
REPLICA_SET_SPEC = {"replicas": M, "selector": M, **_under("selector", SELECTOR),
                    "template": M, **_under("template", TEMPLATE), "minReadySeconds": W}
SLICE_PORT = {"name": M, "port": M, "protocol": M, "appProtocol": W}
INGRESS_BACKEND = {"service": M, "service.name": M, "service.port": M, "service.port.number": M,
                   "service.port.name": M, "resource": M}  # resource: refused with a reason
# extensions/v1beta1 and networking.k8s.io/v1beta1 (served until 1.22): converted to v1 by
# scenario/ingress.py's to_v1
OLD_INGRESS_BACKEND = {"serviceName": M, "servicePort": M, "resource": M}


def _ingress_spec(default: str, backend: dict) -> dict:
    return {"ingressClassName": M, default: M, **_under(default, backend),
            "rules": M, "rules[].host": M, "rules[].http": M, "rules[].http.paths": M,
            "rules[].http.paths[].path": M, "rules[].http.paths[].pathType": M,
            "rules[].http.paths[].backend": M, **_under("rules[].http.paths[].backend", backend),
            "tls": M, "tls[].hosts": M, "tls[].secretName": M}


ENDPOINT_ADDRESS = {"ip": M, "hostname": M, "nodeName": M, "targetRef": W}

FIELDS: dict[str, dict[str, str]] = {  # kind -> path -> state
    "Pod": {**TOP, "spec": M, **_under("spec", POD_SPEC)},
    "Deployment": {**TOP, "spec": M, **_under("spec", REPLICA_SET_SPEC),
                   "spec.strategy": M, "spec.strategy.type": M, "spec.strategy.rollingUpdate": M,
                   "spec.strategy.rollingUpdate.maxSurge": M,
                   "spec.strategy.rollingUpdate.maxUnavailable": M,
                   "spec.revisionHistoryLimit": W, "spec.progressDeadlineSeconds": W,
                   "spec.paused": W},
    "ReplicaSet": {**TOP, "spec": M, **_under("spec", REPLICA_SET_SPEC)},
    "Service": {**TOP, "spec": M, **_under("spec", {
        "type": M, "selector": M, "clusterIP": M, "externalIPs": M, "externalName": M,
        "ports": M, "ports[].name": M, "ports[].protocol": M, "ports[].port": M,
        "ports[].targetPort": M, "ports[].nodePort": M, "ports[].appProtocol": M,
        "loadBalancerIP": M, "loadBalancerSourceRanges": M, "externalTrafficPolicy": M,
        "internalTrafficPolicy": M, "sessionAffinity": M, "sessionAffinityConfig": M,
        "sessionAffinityConfig.clientIP": M, "sessionAffinityConfig.clientIP.timeoutSeconds": M,
        "healthCheckNodePort": M, "publishNotReadyAddresses": M,
        "clusterIPs": W, "ipFamilies": W, "ipFamilyPolicy": W, "allocateLoadBalancerNodePorts": W,
        "loadBalancerClass": W, "trafficDistribution": W})},
    "Namespace": {**TOP, "spec": W, "spec.finalizers": W},
    "Endpoints": {**TOP, "subsets": M, "subsets[].addresses": M,
                  **_under("subsets[].addresses[]", ENDPOINT_ADDRESS),
                  "subsets[].notReadyAddresses": M,
                  **_under("subsets[].notReadyAddresses[]", ENDPOINT_ADDRESS),
                  "subsets[].ports": M, **_under("subsets[].ports[]", SLICE_PORT)},
    "EndpointSlice": {**TOP, "addressType": M, "endpoints": M, "endpoints[].addresses": M,
                      "endpoints[].conditions": M, "endpoints[].conditions.ready": M,
                      "endpoints[].conditions.serving": M, "endpoints[].conditions.terminating": M,
                      "endpoints[].hostname": M, "endpoints[].nodeName": M, "endpoints[].zone": M,
                      "endpoints[].targetRef": W, "endpoints[].hints": W,
                      "endpoints[].deprecatedTopology": W,
                      "ports": M, **_under("ports[]", SLICE_PORT)},
    "Cluster": {"apiVersion": M, "kind": M, "metadata": M, "metadata.name": M,
                "checks": M, "steps": M, "spec": M, **_under("spec", {
                    "nodes": M, "nodes[].name": M, "nodes[].labels": M, "kubernetesVersion": M,
                    "runtime": M,
                    "proxy": M, "proxy.mode": M, "proxy.ipvs": M, "proxy.ipvs.scheduler": M,
                    "proxy.iptablesBackend": M, "proxy.syncPeriod": M,
                    # kube-proxy's configuration, as it spells it (values checked by the loader)
                    "proxy.iptables": M, "proxy.iptables.syncPeriod": M,
                    "proxy.iptables.masqueradeAll": M, "proxy.iptables.localhostNodePorts": M,
                    "proxy.iptables.minSyncPeriod": W,  # read, not yet a rate limit
                    "proxy.nodePortAddresses": M, "proxy.conntrack": M, "proxy.clusterCIDR": M,
                    "proxy.detectLocalMode": M,
                    **{f"proxy.{k}": W for k in ("detectLocal", "nftables", "configSyncPeriod",
                                                 "minSyncPeriod", "masqueradeAll",
                                                 "localhostNodePorts")},
                    "networking": M, "networking.podSubnet": M, "networking.serviceSubnet": M,
                    "networking.nodeSubnet": M, "networking.loadBalancerPool": M,
                    "networking.clusterDomain": M, "networking.loadBalancerHealthCheckInterval": M,
                    "ingress": M,
                    "clients": M, "clients[].name": M, "clients[].hostnames": M,
                    "clients[].command": M})},
    "List": {"apiVersion": M, "kind": M, "items": M, "metadata": S},
    # stored kinds: their top-level fields; what is inside is kept as given
    "ConfigMap": {**TOP, "data": M, "binaryData": M, "immutable": M},
    "Secret": {**TOP, "data": M, "stringData": M, "type": M, "immutable": M},
    "ServiceAccount": {**TOP, "secrets": M, "imagePullSecrets": M,
                       "automountServiceAccountToken": M},
    "Ingress": {**TOP, "spec": M, **_under("spec", _ingress_spec("defaultBackend", INGRESS_BACKEND))},
    "Ingress v1beta1": {**TOP, "spec": M, **_under("spec", _ingress_spec("backend", OLD_INGRESS_BACKEND))},
    "IngressClass": {**TOP, "spec": M, "spec.controller": M, "spec.parameters": W},
    "NetworkPolicy": {**TOP, "spec": M},
    **{k: {**TOP, "rules": M, "aggregationRule": M} for k in ("Role", "ClusterRole")},
    **{k: {**TOP, "subjects": M, "roleRef": M} for k in ("RoleBinding", "ClusterRoleBinding")},
}

# (apiVersion, kind) -> its FIELDS table, where a removed apiVersion's shape differs from its kind's
SHAPES = {("extensions/v1beta1", "Ingress"): "Ingress v1beta1",
          ("networking.k8s.io/v1beta1", "Ingress"): "Ingress v1beta1"}


def schema(api_version, kind: str) -> str:
    """The FIELDS table that (apiVersion, kind) is checked against."""
    return SHAPES.get((api_version, kind), kind)


# the paths whose sub-fields are listed, and the shape they have: the walker descends into
# these only, and only when the value has that shape (else the loader says "must be a list")
_PARENTS = {kind: {p.rpartition(".")[0].removesuffix("[]"): p.rpartition(".")[0].endswith("[]")
                   for p in fields if "." in p}
            for kind, fields in FIELDS.items()}


def _release(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def kind_problem(api_version, kind, release: tuple[int, int] = (1, 33)) -> str | None:
    """Why (apiVersion, kind) is not a kind Kubernetes `release` serves, as kubectl says it,
    or None. A removed apiVersion is served by the releases before its removal."""
    if not isinstance(api_version, str) or not api_version:
        return "apiVersion: required, e.g. v1 or apps/v1"
    since = SERVED.get((api_version, kind))
    if since and release < _release(since):
        return (f"apiVersion: {api_version} {kind} was first served in Kubernetes {since}; "
                + _served_instead(kind, release))
    if (api_version, kind) in REMOVED:
        removed, use = REMOVED[(api_version, kind)]
        if release < _release(removed):
            return None
        return (f'apiVersion: {api_version} {kind} was removed in Kubernetes {removed}; '
                f'use apiVersion: {use} (or a Cluster spec.kubernetesVersion before {removed}: '
                f'this one is {release[0]}.{release[1]})')
    if kind in KINDS.get(api_version, {}):
        return None
    hint = [f"{kind} is {api}" for api, kinds in KINDS.items() if kind in kinds][:1]
    if not hint and isinstance(kind, str):
        hint = [f'did you mean "{k}" ({api})?' for api, kinds in KINDS.items() for k in kinds
                if k.lower() == kind.lower()][:1]
    return (f'no matches for kind "{kind}" in version "{api_version}"'
            + (f": {hint[0]}" if hint else ""))


def _served_instead(kind: str, release: tuple[int, int]) -> str:
    """The apiVersion `release` served `kind` as (the newest of them), or when it first came."""
    pairs = [(api, k) for api, kinds in KINDS.items() for k in kinds if k == kind]
    pairs += [p for p in REMOVED if p[1] == kind]
    since = {p: _release(SERVED.get(p, "1.1")) for p in pairs}
    served = [p for p in pairs if since[p] <= release
              and (p not in REMOVED or release < _release(REMOVED[p][0]))]
    shown = f"{release[0]}.{release[1]}"
    if served:
        return f"Kubernetes {shown} served {kind} as apiVersion: {max(served, key=since.get)[0]}"
    first = min(pairs, key=since.get)
    return (f"Kubernetes {shown} served no {kind} (first: {first[0]}, "
            f"in {since[first][0]}.{since[first][1]})")


def kind_exists(kind) -> bool:
    """Whether some apiVersion (current or removed) serves `kind`, spelled exactly so."""
    return any(kind in kinds for kinds in KINDS.values()) or any(k == kind for _, k in REMOVED)


def role(api_version: str, kind: str) -> str:
    """ACTED, STORED or UNHANDLED, for a kind kind_problem accepted (a removed apiVersion:
    as its replacement)."""
    if (api_version, kind) in REMOVED:
        return KINDS.get(REMOVED[(api_version, kind)][1], {}).get(kind, UNHANDLED)
    return KINDS[api_version][kind]


def check_fields(kind: str, doc, on_unknown, on_warn) -> None:
    """Walk `doc` against FIELDS[kind]: on_unknown(display_path, mapping, key) for a field not
    in the table, on_warn(display_path, mapping, key) for a non-empty WARN field (once per
    warned subtree). Iterative, so depth is bounded by the YAML loader's cap only."""
    fields, parents = FIELDS[kind], _PARENTS[kind]
    todo = [(doc, "", "", False)]  # mapping, its table path, its shown path (with indices)

    def shown(prefix, key):
        return f"{prefix}.{key}" if prefix else str(key)

    while todo:
        d, path, prefix, warned = todo.pop()
        for key, value in d.items():
            p = path + "." + key if path and isinstance(key, str) else key
            state = fields.get(p) if isinstance(key, str) else None
            if state is None:
                on_unknown(shown(prefix, key), d, key)
                continue
            w = warned
            if state == WARN and not warned and value is not None and value != {} and value != []:
                on_warn(shown(prefix, key), d, key)
                w = True
            items = parents.get(p)
            if items is None:
                continue
            if isinstance(value, dict) and not items:
                todo.append((value, p, shown(prefix, key), w))
            elif isinstance(value, list) and items:
                s = shown(prefix, key)
                for i, item in enumerate(value):
                    if isinstance(item, dict):
                        todo.append((item, p + "[]", f"{s}[{i}]", w))
