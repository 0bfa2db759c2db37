"""Names minikp gives to kernel objects and files, so that every piece can be found (and
removed) from the cluster name alone. Everything minikp creates carries the `minikp-` prefix."""

import hashlib
import os

STATE_ROOT = os.environ.get("MINIKP_STATE_ROOT", "/run/minikp")
NETNS_DIR = "/run/netns"
PREFIX = "minikp-"


def state_dir(cluster: str) -> str:
    return os.path.join(STATE_ROOT, cluster)


def netns_prefix(cluster: str) -> str:
    return f"{PREFIX}{cluster}-"


def world_netns(cluster: str) -> str:
    return f"{PREFIX}{cluster}-world"


def node_netns(cluster: str, node: str) -> str:
    return f"{PREFIX}{cluster}-node-{node}"


def client_netns(cluster: str, client: str) -> str:
    return f"{PREFIX}{cluster}-client-{client}"


def pod_netns(cluster: str, namespace: str, pod: str) -> str:
    name = f"{PREFIX}{cluster}-pod-{namespace}.{pod}"
    if len(name) > 200:  # netns names are file names; keep them well under NAME_MAX
        name = name[:180] + "-" + hashlib.sha256(name.encode()).hexdigest()[:12]
    return name


def netns_path(name: str) -> str:
    return os.path.join(NETNS_DIR, name)


def link_name(kind: str, key: str) -> str:
    """A stable interface name (<= 15 chars), e.g. veth1a2b3c4d for a pod, as CNI plugins do."""
    return kind + hashlib.sha256(key.encode()).hexdigest()[: 15 - len(kind)][:8]
