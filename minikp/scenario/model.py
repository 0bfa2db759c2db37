"""The scenario as plain data: what the user asked for (Scenario) and what minikp allocated
for it (ClusterPlan). Loading fills the first, planning the second; nothing here touches
the kernel. Field names follow the Kubernetes API in snake_case.

Classes:
  Source           where an object came from (file, line) for error messages
  ContainerPort, Probe, Handler, Container, PodTemplate
  SecurityContext, Volume, VolumeMount, EnvVar, EnvFromSource   what the pod sandbox honours
  ConfigMap        data for envFrom / configMapKeyRef
  DeploymentStrategy   RollingUpdate (maxSurge, maxUnavailable) or Recreate
  Workload         a Deployment, ReplicaSet or bare Pod (replicas=1, kind="Pod")
  ServicePort, Service
  SliceEndpoint, EndpointSlice   user-given endpoints for selector-less Services
  StoredObject     a kind minikp keeps and lists but does not act on (ConfigMap, ...)
  NodeSpec, ClientSpec, ClusterConfig   the `Cluster` document, every field defaulted
  Scenario         everything loaded from the files
  NodePlan, PodPlan, ServicePlan, ClientPlan, ClusterPlan   allocated names and addresses
"""

from __future__ import annotations

from dataclasses import dataclass, field

from minikp.proxy.options import ProxyOptions
from minikp.proxy.release import DEFAULT as DEFAULT_RELEASE


@dataclass(frozen=True)
class Source:
    file: str
    line: int = 0


@dataclass
class ContainerPort:
    container_port: int
    protocol: str = "TCP"  # TCP | UDP | SCTP
    name: str = ""


@dataclass
class Probe:
    """A readinessProbe: exactly one of http_get (path, port), tcp_socket (port), exec_command."""

    http_get: tuple[str, int | str] | None = None
    tcp_socket: int | str | None = None
    exec_command: list[str] | None = None
    initial_delay_seconds: int = 0
    period_seconds: int = 10
    timeout_seconds: int = 1
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass
class Handler:
    """A lifecycle hook (lifecycle.preStop): exactly one of exec_command, http_get (path,
    port), sleep_seconds, as the kubelet runs them."""

    exec_command: list[str] | None = None
    http_get: tuple[str, int | str] | None = None
    sleep_seconds: int | None = None


@dataclass
class SecurityContext:
    """A pod's or a container's securityContext (None: not set there). The container's
    settings win over the pod's, as in Kubernetes."""

    run_as_user: int | None = None
    run_as_group: int | None = None
    privileged: bool | None = None
    read_only_root_filesystem: bool | None = None
    allow_privilege_escalation: bool | None = None
    capabilities_add: list[str] = field(default_factory=list)
    capabilities_drop: list[str] = field(default_factory=list)
    privileged_at: Source | None = None  # where `privileged: true` was written


@dataclass
class Volume:
    """A pod volume: an emptyDir (shared by the pod's containers, gone with the pod) or a
    hostPath (that host path, exactly)."""

    name: str
    kind: str  # emptyDir | hostPath
    path: str = ""  # hostPath.path
    host_path_type: str = ""  # hostPath.type: "" (no check), Directory, DirectoryOrCreate...
    medium: str = ""  # emptyDir.medium ("" or Memory: both are memory here)


@dataclass
class VolumeMount:
    name: str
    mount_path: str
    read_only: bool = False
    sub_path: str = ""


@dataclass
class EnvVar:
    """One `env` entry: a value, or valueFrom a fieldRef / configMapKeyRef."""

    name: str
    value: str = ""
    field_path: str = ""  # valueFrom.fieldRef.fieldPath
    config_map: str = ""  # valueFrom.configMapKeyRef.name
    config_map_key: str = ""
    optional: bool = False


@dataclass
class EnvFromSource:
    config_map: str
    prefix: str = ""
    optional: bool = False


@dataclass
class Container:
    name: str
    image: str = ""
    ports: list[ContainerPort] = field(default_factory=list)
    command: list[str] | None = None
    args: list[str] | None = None
    readiness_probe: Probe | None = None
    security_context: SecurityContext = field(default_factory=SecurityContext)
    volume_mounts: list[VolumeMount] = field(default_factory=list)
    env: list[EnvVar] = field(default_factory=list)
    env_from: list[EnvFromSource] = field(default_factory=list)
    pre_stop: Handler | None = None  # lifecycle.preStop


@dataclass
class PodTemplate:
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    containers: list[Container] = field(default_factory=list)
    hostname: str = ""
    subdomain: str = ""
    node_name: str = ""  # spec.nodeName: pin to a node
    node_selector: dict[str, str] = field(default_factory=dict)
    security_context: SecurityContext = field(default_factory=SecurityContext)
    volumes: list[Volume] = field(default_factory=list)
    enable_service_links: bool = True
    restart_policy: str = "Always"  # Always | OnFailure | Never
    termination_grace_period_seconds: int = 30  # as Kubernetes defaults it
    host_network: bool = False  # in the node's namespace, with the node's address


@dataclass
class DeploymentStrategy:
    """A Deployment's spec.strategy: how a template change replaces its pods."""

    type: str = "RollingUpdate"  # RollingUpdate | Recreate
    max_surge: int | str = "25%"  # an int or "N%" of the replicas, rounded up
    max_unavailable: int | str = "25%"  # an int or "N%" of the replicas, rounded down


@dataclass
class Workload:
    kind: str  # Deployment | ReplicaSet | Pod
    namespace: str
    name: str
    template: PodTemplate
    replicas: int = 1
    selector: dict[str, str] = field(default_factory=dict)  # matchLabels (or the Pod's labels)
    source: Source = Source("<builtin>")
    strategy: DeploymentStrategy = field(default_factory=DeploymentStrategy)  # Deployments only
    pod_ip: str = ""  # a bare Pod from a cluster dump: its status.podIP, kept (not allocated)


@dataclass
class ServicePort:
    port: int
    protocol: str = "TCP"
    name: str = ""
    target_port: int | str = 0  # 0 means "same as port"; a string names a containerPort
    node_port: int = 0  # 0 means "allocate" for NodePort/LoadBalancer services
    app_protocol: str = ""


@dataclass
class Service:
    namespace: str
    name: str
    type: str = "ClusterIP"  # ClusterIP | NodePort | LoadBalancer | ExternalName
    selector: dict[str, str] | None = None  # None: selector-less (endpoints given by the user)
    ports: list[ServicePort] = field(default_factory=list)
    cluster_ip: str = ""  # "" = allocate; "None" = headless
    external_ips: list[str] = field(default_factory=list)
    load_balancer_ip: str = ""  # spec.loadBalancerIP: a requested address from the pool
    load_balancer_source_ranges: list[str] = field(default_factory=list)
    external_traffic_policy: str = "Cluster"  # Cluster | Local
    internal_traffic_policy: str = "Cluster"
    session_affinity: str = "None"  # None | ClientIP
    session_affinity_timeout: int = 10800
    external_name: str = ""
    health_check_node_port: int = 0  # allocated for LoadBalancer + externalTrafficPolicy Local
    publish_not_ready_addresses: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    ipvs_scheduler: str = ""  # annotation minikp.dev/ipvs-scheduler (minikp's own): "" = the cluster's
    endpoints_from_slices: bool = False  # a cluster dump's: the dump's EndpointSlices, not the selector
    source: Source = Source("<builtin>")

    @property
    def headless(self) -> bool:
        return self.cluster_ip == "None"


@dataclass
class SliceEndpoint:
    addresses: list[str]
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    hostname: str = ""
    node_name: str = ""
    zone: str = ""


@dataclass
class EndpointSlice:
    """An EndpointSlice, or an Endpoints object converted to one, for a selector-less Service."""

    namespace: str
    name: str
    service_name: str
    ports: list[ContainerPort] = field(default_factory=list)  # name, port, protocol
    endpoints: list[SliceEndpoint] = field(default_factory=list)
    source: Source = Source("<builtin>")


@dataclass
class ConfigMap:
    namespace: str
    name: str
    data: dict[str, str] = field(default_factory=dict)
    source: Source = Source("<builtin>")


@dataclass
class StoredObject:
    """A real Kubernetes object minikp keeps and lists but does not act on (ConfigMap, ...)."""

    api_version: str
    kind: str
    namespace: str  # "" for cluster-scoped kinds
    name: str
    manifest: dict  # as given
    source: Source = Source("<builtin>")
    model: object = None  # what minikp reads of it: scenario/ingress.py's Ingress, TLSSecret, ...


@dataclass
class NodeSpec:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    ip: str = ""  # given (a cluster dump's InternalIP); "" = the next address of the node subnet
    pod_cidr: str = ""  # given (a cluster dump's podCIDR); "" = the next /24 of the pod subnet


@dataclass
class ClientSpec:
    name: str
    hostnames: list[str] = field(default_factory=list)
    command: list[str] | None = None  # default: serve HTTP on port 80 with the client's name


@dataclass
class ClusterConfig:
    name: str = "minikp"
    nodes: list[NodeSpec] = field(default_factory=lambda: [NodeSpec("node-1")])
    proxy_mode: str = "iptables"
    kubernetes_version: str = DEFAULT_RELEASE  # spec.kubernetesVersion: kube-proxy's rule layout, apiVersions
    ipvs_scheduler: str = "rr"
    iptables_backend: str = "auto"  # auto | legacy | nft
    sync_period_s: float = 30.0  # KubeProxyConfiguration iptables.syncPeriod: canary checks
    proxy_options: ProxyOptions = field(default_factory=ProxyOptions)  # spec.proxy, as kube-proxy spells it
    pod_subnet: str = "10.244.0.0/16"
    service_subnet: str = "10.96.0.0/12"
    node_subnet: str = "172.18.0.0/16"
    load_balancer_pool: tuple[str, str] = ("172.18.255.200", "172.18.255.250")
    lb_health_check_interval_s: float = 1.0  # spec.networking.loadBalancerHealthCheckInterval
    cluster_domain: str = "cluster.local"
    runtime: str = "builtin"  # builtin | docker: the pods' default (minikp.dev/runtime overrides)
    clients: list[ClientSpec] = field(default_factory=list)
    ingress: str = ""  # spec.ingress: "nginx" installs the ingress controller without an Ingress
    checks: list[dict] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)
    source: Source = Source("<defaults>")


@dataclass
class Scenario:
    cluster: ClusterConfig
    namespaces: list[str] = field(default_factory=lambda: ["default", "kube-system"])
    workloads: list[Workload] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    endpoint_slices: list[EndpointSlice] = field(default_factory=list)
    config_maps: list[ConfigMap] = field(default_factory=list)
    stored: list[StoredObject] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


# ---- the plan: names and addresses minikp allocated ------------------------------------


@dataclass
class NodePlan:
    name: str
    ip: str  # on the node network
    pod_cidr: str  # this node's /24 of the pod subnet
    gateway_ip: str  # the cni0 bridge address: first host of pod_cidr
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class PodPlan:
    namespace: str
    name: str
    node: str
    ip: str
    owner_kind: str  # Deployment | ReplicaSet | Pod (the workload that made it)
    owner_name: str
    template: PodTemplate
    replica_set: str = ""  # for Deployment pods: <deployment>-<pod-template-hash>
    template_hash: str = ""

    @property
    def labels(self) -> dict[str, str]:
        labels = dict(self.template.labels)
        if self.template_hash:
            labels["pod-template-hash"] = self.template_hash
        return labels

    @property
    def hostname(self) -> str:
        return self.template.hostname or self.name


@dataclass
class ServicePlan:
    service: Service
    cluster_ip: str  # "None" for headless, "" for ExternalName
    node_ports: dict[int, int] = field(default_factory=dict)  # index in service.ports → nodePort
    load_balancer_ip: str = ""
    health_check_node_port: int = 0


@dataclass
class ClientPlan:
    name: str
    ip: str
    hostnames: list[str] = field(default_factory=list)
    command: list[str] | None = None


@dataclass
class ClusterPlan:
    config: ClusterConfig
    nodes: list[NodePlan]
    pods: list[PodPlan]
    services: list[ServicePlan]
    clients: list[ClientPlan]
    endpoint_slices: list[EndpointSlice] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    dns_ip: str = ""  # the kube-dns ClusterIP (tenth address of the service subnet)
    allocator: object = field(default=None, repr=False, compare=False)  # plan.Allocator
