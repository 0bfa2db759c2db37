"""What one node's proxy knows, as kube-proxy's ServicePortMap + EndpointsMap would hold it:
one ServicePortInfo per (service, port), each with its endpoints. Pure, hashable data, so a
sync can tell exactly which service ports changed since the last one.

Headless and ExternalName services are not in a snapshot: kube-proxy writes nothing for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    node: str = ""  # the node the endpoint's pod runs on ("" = unknown, never local)
    ready: bool = True
    serving: bool = True
    terminating: bool = False

    def __str__(self) -> str:  # "ip:port", the sort key kube-proxy uses
        return f"{self.ip}:{self.port}"


def endpoint_string(ep: Endpoint) -> str:
    """net.JoinHostPort: IPv6 addresses in brackets (chain names, comments, DNAT targets)."""
    return f"[{ep.ip}]:{ep.port}" if ":" in ep.ip else f"{ep.ip}:{ep.port}"


@dataclass(frozen=True)
class ServicePortInfo:
    namespace: str
    name: str
    port_name: str
    protocol: str  # TCP | UDP | SCTP
    cluster_ip: str
    port: int
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    load_balancer_source_ranges: tuple[str, ...] = ()
    external_policy_local: bool = False
    internal_policy_local: bool = False
    affinity_timeout: int = 0  # seconds of ClientIP affinity; 0 = no affinity
    health_check_node_port: int = 0
    ipvs_scheduler: str = ""  # minikp.dev/ipvs-scheduler (minikp's own): "" = the node-wide one
    endpoints: tuple[Endpoint, ...] = field(default=())

    @property
    def port_name_string(self) -> str:
        """kube-proxy's ServicePortName.String(): "ns/name" or "ns/name:port"."""
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port_name}" if self.port_name else base

    @property
    def service_key(self) -> str:
        """The Service this port belongs to ("ns/name"): the unit of a partial sync."""
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ProxySnapshot:
    node_name: str
    node_ip: str
    cluster_cidr: str  # the pod subnet: kube-proxy's ClusterCIDR local-traffic detector
    services: tuple[ServicePortInfo, ...] = ()
