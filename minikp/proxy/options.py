"""kube-proxy's configuration options minikp models (KubeProxyConfiguration, v1alpha1
spellings in the Cluster document's spec.proxy), with kube-proxy's defaults.

Pure data: the loader fills it (minikp.scenario.load), the proxier renders from it, each
node's kube-proxy loop (minikp.controller.proxyloop) applies the conntrack sysctls
(minikp.proxy.sysctls) and times its syncs by it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

DETECT_LOCAL_MODES = ("ClusterCIDR",)  # the others need node/interface data minikp lacks yet


@dataclass(frozen=True)
class ConntrackOptions:
    """spec.proxy.conntrack (seconds; 0 = leave the kernel's value, as kube-proxy does)."""

    max_per_core: int = 32768
    min: int = 131072
    tcp_established_timeout_s: int = 86400  # 24h
    tcp_close_wait_timeout_s: int = 3600  # 1h
    udp_timeout_s: int = 0
    udp_stream_timeout_s: int = 0


@dataclass(frozen=True)
class ProxyOptions:
    sync_period_s: float = 30.0  # iptables.syncPeriod
    min_sync_period_s: float = 1.0  # iptables.minSyncPeriod
    masquerade_all: bool = False  # iptables.masqueradeAll
    localhost_node_ports: bool = True  # iptables.localhostNodePorts
    node_port_addresses: tuple[str, ...] = ()  # CIDRs or "primary"; () = every local address
    cluster_cidr: str = ""  # "" = the cluster's pod subnet
    detect_local_mode: str = "ClusterCIDR"
    conntrack: ConntrackOptions = field(default_factory=ConntrackOptions)


DEFAULT = ProxyOptions()


def node_port_ips(addresses: tuple[str, ...], node_ip: str) -> list[str] | None:
    """GetNodeIPs for nodePortAddresses: None = match every local address (unset); else the
    node's addresses (lo, then its uplink) inside one of the CIDRs, "primary" = the node IP."""
    if not addresses:
        return None
    ips = []
    for ip in ("127.0.0.1", node_ip):
        for cidr in addresses:
            if (cidr == "primary" and ip == node_ip) or (cidr != "primary" and _contains(cidr, ip)):
                ips.append(ip)
                break
    return ips


def _contains(cidr: str, ip: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
