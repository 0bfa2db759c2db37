"""Which kube-proxy release minikp models: the one small place that reads it.

The Cluster document's `spec.kubernetesVersion` (another issue) becomes
ClusterConfig.kubernetes_version; until a cluster has it, minikp models 1.33. Everything that
differs by release (UDP conntrack cleanup, the periodic full sync) asks `release_of(config)`.
"""

from __future__ import annotations

from minikp.errors import InputError

DEFAULT = "1.33"


def parse_release(text: str) -> tuple[int, int]:
    """"1.33", "v1.33" or "v1.33.2" -> (1, 33)."""
    parts = str(text).strip().lstrip("v").split(".")
    try:
        major, minor = int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        raise InputError(f'"{text}": expected a Kubernetes release such as "1.33"',
                         field="kubernetesVersion") from None
    return major, minor


def release_of(config) -> tuple[int, int]:
    """The modelled kube-proxy release of a ClusterConfig (or anything with its attributes)."""
    return parse_release(getattr(config, "kubernetes_version", None) or DEFAULT)
