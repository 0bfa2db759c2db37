"""Per-node proxy snapshots from the plan and the endpoints (pure): the ServicePortMap and
EndpointsMap a kube-proxy on that node would hold."""

from __future__ import annotations

from minikp.controller.endpoints import ServiceEndpoints
from minikp.proxy.snapshot import ProxySnapshot, ServicePortInfo
from minikp.scenario.model import ClusterPlan, NodePlan


def build_snapshot(plan: ClusterPlan, node: NodePlan,
                   endpoints: dict[str, ServiceEndpoints]) -> ProxySnapshot:
    ports = []
    for sp in plan.services:
        svc = sp.service
        if svc.type == "ExternalName" or svc.headless or not sp.cluster_ip:
            continue  # kube-proxy writes nothing for these
        external = svc.type in ("NodePort", "LoadBalancer") or bool(svc.external_ips)
        eps = endpoints.get(f"{svc.namespace}/{svc.name}")
        for i, p in enumerate(svc.ports):
            ports.append(ServicePortInfo(
                namespace=svc.namespace, name=svc.name, port_name=p.name,
                protocol=p.protocol, cluster_ip=sp.cluster_ip, port=p.port,
                node_port=sp.node_ports.get(i, 0),
                external_ips=tuple(svc.external_ips),
                load_balancer_ips=(sp.load_balancer_ip,) if sp.load_balancer_ip else (),
                load_balancer_source_ranges=tuple(svc.load_balancer_source_ranges)
                if sp.load_balancer_ip else (),
                external_policy_local=external and svc.external_traffic_policy == "Local",
                internal_policy_local=svc.internal_traffic_policy == "Local",
                affinity_timeout=svc.session_affinity_timeout
                if svc.session_affinity == "ClientIP" else 0,
                health_check_node_port=sp.health_check_node_port,
                ipvs_scheduler=svc.ipvs_scheduler,
                endpoints=tuple(eps.ports.get(p.name, ())) if eps else (),
            ))
    ports.sort(key=lambda s: (s.port_name_string, s.protocol))
    return ProxySnapshot(node_name=node.name, node_ip=node.ip,
                         cluster_cidr=plan.config.pod_subnet, services=tuple(ports))
