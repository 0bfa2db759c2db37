"""The path a Service's new connections take through one node's proxy, with the kernel's own
counters — what `minikp tui` draws, whatever the proxy mode. Each mode reads its kernel state
into these shapes (iptables: proxy/iptables/paths.py)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Branch:
    """One endpoint as the node's proxy picks it."""

    endpoint: str  # "10.244.1.3:9376"
    via: str  # the rule object that sends there: KUBE-SEP-…, a real server, an nft chain
    rule: str  # how it is picked, as the kernel prints it: "probability 0.33333333349"
    share: float  # the fraction of new connections it gets (0..1)
    hits: int  # new connections the kernel counted through it


@dataclass(frozen=True)
class Frontend:
    """Where connections enter: a cluster IP, a node port, a LoadBalancer or external IP."""

    kind: str  # "cluster IP" | "node port" | "loadbalancer IP" | "external IP"
    address: str  # "10.96.29.98:80/tcp", ":30080/tcp"
    via: str  # the chain or virtual server it enters
    hits: int


@dataclass
class PortPath:
    service: str  # "default/hostnames"
    port: str  # the port's name, or its number
    chain: str  # KUBE-SVC-… / virtual server / nft service chain
    frontends: list[Frontend] = field(default_factory=list)
    branches: list[Branch] = field(default_factory=list)

    @property
    def hits(self) -> int:
        return sum(b.hits for b in self.branches)


def port_of(comment: str, service: str) -> str | None:
    """The service port a kube-proxy rule comment names, for `service` ("ns/name"):
    'default/web:http cluster IP' -> 'http'; 'default/web' -> ''; another service -> None."""
    head = comment.split(" ", 1)[0]
    if head == service:
        return ""
    if head.startswith(service + ":"):
        return head[len(service) + 1:]
    return None
