"""The LoadBalancer stub: where each LoadBalancer address is routed (from every client,
ECMP over the chosen nodes, as MetalLB's BGP mode or a cloud load balancer spreads it).

externalTrafficPolicy Cluster: every node. Local: the nodes whose kube-proxy health server
(proxy/healthcheck.py, on the Service's healthCheckNodePort) answered 200 at the last check,
as a cloud load balancer's health checks decide. The checks run every
`spec.networking.loadBalancerHealthCheckInterval` (1 s by default), so a node that lost its
last ready endpoint is drained within about one interval, not at once: meanwhile its
kube-proxy still sends connections to its terminating endpoints.

Pure: targets, wanted_routes, LoadBalancerChecks (results and when to check).
Kernel edge: http_status, one check from a host's network namespace.
"""

from __future__ import annotations

import socket

from minikp.nsenter import in_netns


def targets(services, nodes) -> list[tuple[str, str, str, int]]:
    """(lb ip, node name, node ip, healthCheckNodePort) to check: every node for every
    externalTrafficPolicy Local LoadBalancer Service that has an address."""
    return [(sp.load_balancer_ip, n.name, n.ip, sp.health_check_node_port)
            for sp in services
            if sp.load_balancer_ip and sp.health_check_node_port
            and sp.service.external_traffic_policy == "Local"
            for n in nodes]


def wanted_routes(services, nodes, healthy: dict[tuple[str, str], bool]) -> dict[str, list[str]]:
    """lb ip → the nodes it is routed to."""
    out = {}
    for sp in services:
        if not sp.load_balancer_ip:
            continue
        if sp.service.external_traffic_policy == "Local" and sp.health_check_node_port:
            out[sp.load_balancer_ip] = [n.name for n in nodes
                                        if healthy.get((sp.load_balancer_ip, n.name))]
        else:
            out[sp.load_balancer_ip] = [n.name for n in nodes]
    return out


class LoadBalancerChecks:
    """The last result of every (lb ip, node) health check and when the next round is due."""

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self.healthy: dict[tuple[str, str], bool] = {}
        self.next_at = 0.0

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def unchecked(self, wanted: list[tuple[str, str, str, int]]) -> list:
        """Targets never checked (a new Service): a load balancer checks them first."""
        return [t for t in wanted if (t[0], t[1]) not in self.healthy]

    def record(self, results: dict[tuple[str, str], bool], now: float | None = None) -> bool:
        """Store results (of a full round when `now` is given: the next is due an interval
        later); True when a node's health changed."""
        changed = any(self.healthy.get(k) != v for k, v in results.items())
        self.healthy.update(results)
        if now is not None:
            self.healthy = {k: v for k, v in self.healthy.items() if k in results}
            self.next_at = now + self.interval_s
        return changed


def http_status(netns: str, ip: str, port: int, timeout: float = 1.0) -> int | None:
    """GET / on ip:port from a socket made in `netns`: the status code, None if no answer."""
    with in_netns(netns):
        s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect((ip, port))
        s.sendall(f"GET / HTTP/1.1\r\nHost: {ip}:{port}\r\nUser-Agent: minikp-lb\r\n"
                  "Connection: close\r\n\r\n".encode())
        status = s.recv(64).split(b" ", 2)
        return int(status[1]) if len(status) >= 2 and status[1].isdigit() else None
    except OSError:
        return None
    finally:
        s.close()


def check(netns: str, wanted: list[tuple[str, str, str, int]]) -> dict[tuple[str, str], bool]:
    return {(ip, node): http_status(netns, node_ip, port) == 200
            for ip, node, node_ip, port in wanted}
