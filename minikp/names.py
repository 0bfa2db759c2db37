"""Names minikp gives to kernel objects and files, so that every piece can be found (and
removed) from the cluster name alone, and nothing of another cluster ever is.

- A cluster name is a DNS-1123 label (check_cluster_name); every verb checks `--name`.
- Namespaces are `minikp-<cluster>_<kind>...`: `_` is never part of a label, so the cluster
  a namespace belongs to is exact (cluster_of), never a guess from a prefix: "c5" owns
  `minikp-c5_node-node-1` and "c5-node" owns `minikp-c5-node_world`.
- Files live in STATE_ROOT/<cluster>/; cluster_path() is the one way to build such a path and
  refuses any that would leave that directory, so that no bug can remove outside it.

The length bound: interface names never contain the cluster name (link_name hashes the
host's key), so the limits are file names. A namespace name is at most
len("minikp-") + 63 + len("_client-") + 63 = 141 bytes (node and client names are labels;
a pod's is hashed at POD_NETNS_MAX), under NAME_MAX (255); the control socket
/run/minikp/<cluster>/control.sock is at most 88 bytes, under sun_path (108). A longer
MINIKP_STATE_ROOT lowers the bound for the socket: checked too.
"""

from __future__ import annotations

import hashlib
import os
import re

from minikp.errors import InputError, OperationError

STATE_ROOT = os.environ.get("MINIKP_STATE_ROOT", "/run/minikp")
NETNS_DIR = "/run/netns"
PREFIX = "minikp-"
SEP = "_"  # between the cluster name and the rest: a DNS-1123 label never contains it
MAX_CLUSTER_NAME = 63  # a DNS-1123 label; every derived name fits (see above)
POD_NETNS_MAX = 200  # netns names are file names: keep them well under NAME_MAX
UNIX_PATH_MAX = 107  # sun_path is 108 bytes with its terminating NUL
LONGEST_FILE = "control.sock"  # the longest name that must fit in sun_path

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def cluster_name_problem(name) -> str | None:
    """What is wrong with `name` as a cluster name, or None."""
    if not isinstance(name, str) or len(name) > MAX_CLUSTER_NAME or not _LABEL.match(name):
        shown = name if not isinstance(name, str) or len(name) <= 80 else name[:80] + "..."
        return (f'--name "{shown}": must be a DNS-1123 label: at most {MAX_CLUSTER_NAME} '
                "characters of a-z, 0-9 and '-', starting and ending with a letter or digit")
    sock = os.path.join(STATE_ROOT, name, LONGEST_FILE)
    if len(sock.encode()) > UNIX_PATH_MAX:
        return (f'--name "{name}": too long for MINIKP_STATE_ROOT={STATE_ROOT}: {sock} is '
                f"{len(sock.encode())} bytes, a socket path can have at most {UNIX_PATH_MAX}")
    return None


def check_cluster_name(name) -> str:
    problem = cluster_name_problem(name)
    if problem:
        raise InputError(problem)
    return name


def is_cluster_name(name) -> bool:
    return cluster_name_problem(name) is None


def cluster_path(cluster: str, *parts: str) -> str:
    """STATE_ROOT/<cluster>[/parts...], refused (exit 1) if it would resolve, through `..` or
    a symbolic link, to anything outside STATE_ROOT/<cluster>."""
    check_cluster_name(cluster)
    home = os.path.join(os.path.realpath(STATE_ROOT), cluster)
    path = os.path.join(home, *parts)
    real = os.path.realpath(path)
    if os.path.normpath(path) != real or not (real == home or real.startswith(home + os.sep)):
        raise OperationError(f"refusing {path}: it resolves to {real}, outside {home}")
    return path


def state_dir(cluster: str) -> str:
    return cluster_path(cluster)


def netns_prefix(cluster: str) -> str:
    """What every namespace of `cluster`, and no other's, starts with."""
    return f"{PREFIX}{check_cluster_name(cluster)}{SEP}"


def cluster_of(netns_name: str) -> str | None:
    """The cluster a namespace name belongs to, or None for one that is not a cluster's."""
    if not netns_name.startswith(PREFIX):
        return None
    cluster, sep, rest = netns_name[len(PREFIX):].partition(SEP)
    return cluster if sep and rest and is_cluster_name(cluster) else None


def world_netns(cluster: str) -> str:
    return f"{netns_prefix(cluster)}world"


def node_netns(cluster: str, node: str) -> str:
    return f"{netns_prefix(cluster)}node-{node}"


def client_netns(cluster: str, client: str) -> str:
    return f"{netns_prefix(cluster)}client-{client}"


def pod_netns(cluster: str, namespace: str, pod: str) -> str:
    head = f"{netns_prefix(cluster)}pod-"
    tail = f"{namespace}.{pod}"
    if len(head) + len(tail) > POD_NETNS_MAX:  # only the pod's part is shortened
        digest = hashlib.sha256(tail.encode()).hexdigest()[:12]
        tail = tail[: POD_NETNS_MAX - len(head) - 13] + "-" + digest
    return head + tail


def netns_path(name: str) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise OperationError(f'"{name}" is not a namespace name')
    return os.path.join(NETNS_DIR, name)


def link_name(kind: str, key: str) -> str:
    """A stable interface name (<= 15 chars), e.g. veth1a2b3c4d for a pod, as CNI plugins do."""
    return kind + hashlib.sha256(key.encode()).hexdigest()[: 15 - len(kind)][:8]
