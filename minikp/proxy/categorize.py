"""Which endpoints a service port uses on one node, as every kube-proxy mode decides it
(pkg/proxy/topology.go CategorizeEndpoints, topology hints not modelled): ready endpoints,
else serving+terminating ones; cluster-wide and node-local sets by the internal and external
traffic policies. Pure."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from minikp.proxy.snapshot import Endpoint, ServicePortInfo, endpoint_string


def source_ranges(sp: ServicePortInfo) -> list[ipaddress.IPv4Network]:
    """loadBalancerSourceRanges as kube-proxy keeps them: trimmed, parsed, IPv4 (the service
    change tracker keeps the node's family); unparsable entries dropped."""
    out = []
    for cidr in sp.load_balancer_source_ranges:
        try:
            net = ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            continue
        if net.version == 4:
            out.append(net)
    return out


def externally_accessible(sp: ServicePortInfo) -> bool:
    return bool(sp.node_port or sp.external_ips or sp.load_balancer_ips)


def uses_cluster_endpoints(sp: ServicePortInfo) -> bool:
    # eTP=Local still needs cluster endpoints for the short-circuit rules.
    return not sp.internal_policy_local or externally_accessible(sp)


def uses_local_endpoints(sp: ServicePortInfo) -> bool:
    return sp.internal_policy_local or (sp.external_policy_local and externally_accessible(sp))


def is_local(ep: Endpoint, node: str) -> bool:
    return bool(ep.node) and ep.node == node


@dataclass(frozen=True)
class Categorized:
    cluster: tuple[Endpoint, ...]
    local: tuple[Endpoint, ...]
    reachable: tuple[Endpoint, ...]  # allLocallyReachableEndpoints
    any_endpoints: bool  # hasAnyEndpoints: usable endpoints on any node


def _serving_terminating(e: Endpoint) -> bool:
    return e.serving and e.terminating


def categorize(sp: ServicePortInfo, node: str) -> Categorized:
    eps = sorted(sp.endpoints, key=endpoint_string)  # byEndpoint: "ip:port" string order
    cluster: tuple[Endpoint, ...] = ()
    any_eps = False
    if uses_cluster_endpoints(sp):
        cluster = tuple(e for e in eps if e.ready)
        if not cluster:  # no ready endpoint anywhere: fall back to serving+terminating
            cluster = tuple(e for e in eps if _serving_terminating(e))
        any_eps = bool(cluster)
    if not uses_local_endpoints(sp):
        return Categorized(cluster, (), cluster, any_eps)
    any_eps = any_eps or any(e.ready or _serving_terminating(e) for e in eps)
    local = tuple(e for e in eps if is_local(e, node) and e.ready)
    if not local:
        local = tuple(e for e in eps if is_local(e, node) and _serving_terminating(e))
    if not uses_cluster_endpoints(sp):
        return Categorized((), local, local, any_eps)
    seen = {endpoint_string(e) for e in cluster}
    extra = tuple(e for e in local if endpoint_string(e) not in seen)
    reachable = tuple(sorted(cluster + extra, key=endpoint_string)) if extra else cluster
    return Categorized(cluster, local, reachable, any_eps)
