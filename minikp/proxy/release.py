"""Which kube-proxy release minikp models: the one small place that reads it.

The Cluster document's `spec.kubernetesVersion` (or `up --kubernetes-version`) becomes
ClusterConfig.kubernetes_version; without it minikp models 1.33. Everything that differs by
release (the iptables rule layout, UDP conntrack cleanup, the periodic full sync, the
apiVersions served) asks `release_of(config)`.
"""

from __future__ import annotations

from minikp.errors import InputError

DEFAULT = "1.33"
# Every minor release since the iptables proxier's first (1.1): each maps to the rule layout
# in effect then (minikp.proxy.iptables.layout; docs/releases.md says which changed what).
KNOWN: tuple[tuple[int, int], ...] = tuple((1, m) for m in range(1, 34))


def known_text() -> str:
    return ", ".join(f"{a}.{b}" for a, b in KNOWN)


# proxy modes that came after the iptables proxier: the first release that had each
MODE_SINCE = {"ipvs": (1, 8), "nftables": (1, 29)}


def mode_problem(mode: str, version: str) -> str | None:
    """Why kube-proxy `version` could not run proxy mode `mode`, or None."""
    since = MODE_SINCE.get(mode)
    if since and parse_release(version) < since:
        return (f"kube-proxy {version} has no {mode} mode (it came in {since[0]}.{since[1]}): use "
                f"mode iptables, or a kubernetesVersion from {since[0]}.{since[1]}")
    return None


def check_release(text) -> str:
    """A kubernetesVersion minikp models, as "1.N"; else InputError listing the known ones."""
    release = parse_release(text)
    if release not in KNOWN:
        raise InputError(f'"{text}": minikp does not model Kubernetes {release[0]}.{release[1]}; '
                         f"known: {known_text()}", field="kubernetesVersion")
    return f"{release[0]}.{release[1]}"


def parse_release(text: str) -> tuple[int, int]:
    """"1.33", "v1.33" or "v1.33.2" -> (1, 33)."""
    parts = str(text).strip().lstrip("v").split(".")
    try:
        major, minor = int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        raise InputError(f'"{text}": expected a Kubernetes release such as "1.33"; known: '
                         f"{known_text()}", field="kubernetesVersion") from None
    return major, minor


def release_of(config) -> tuple[int, int]:
    """The modelled kube-proxy release of a ClusterConfig (or anything with its attributes)."""
    return parse_release(getattr(config, "kubernetes_version", None) or DEFAULT)
