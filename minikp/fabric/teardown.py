"""Removing a cluster from what the kernel and /run show, with no Python state needed: it
works after the supervisor was SIGKILLed.

- destroy_cluster(cluster): (0) remove its Docker pods' containers (and give up its share of
  the engine), (1) end every process whose network namespace is one of the
  cluster's (found by namespace inode, ended by PID through a pidfd: SIGTERM, a short wait,
  SIGKILL; never the calling process), (2) remove every namespace of the cluster, the world
  last, (3) remove its state directory. Idempotent.
- list_clusters(): clusters that have a namespace or a state directory (for `down --all`).
- cluster_netns(cluster): the cluster's namespace names, exactly (names.netns_prefix ends in
  a character no cluster name has: "a" never owns a namespace of "a-b").
- register_open(cluster, close) / unregister_open: netlink sockets this process holds in the
  cluster's namespaces keep them alive; destroy_cluster closes them first.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time

from minikp import names
from minikp.fabric import netns

TERM_GRACE_S = 1.0

_open: dict[str, list] = {}
_open_lock = threading.Lock()


def register_open(cluster: str, close) -> None:
    with _open_lock:
        _open.setdefault(cluster, []).append(close)


def unregister_open(cluster: str, close) -> None:
    with _open_lock:
        if close in _open.get(cluster, []):
            _open[cluster].remove(close)


def cluster_of(netns_name: str) -> str | None:
    return names.cluster_of(netns_name)


def list_clusters() -> list[str]:
    """Clusters with a namespace or a state directory (other entries of the state root, and
    namespaces of other tools that merely start with `minikp-`, are not clusters)."""
    found = {c for c in map(names.cluster_of, netns.names(names.PREFIX)) if c}
    try:
        found.update(d for d in os.listdir(names.STATE_ROOT) if names.is_cluster_name(d)
                     and os.path.isdir(os.path.join(names.STATE_ROOT, d)))
    except FileNotFoundError:
        pass
    return sorted(found)


def cluster_netns(cluster: str) -> list[str]:
    """Exactly the cluster's namespaces: `minikp-<cluster>_...` (no other cluster's name can
    be followed by `_` there); pods and hosts first, the world last, so that a crash halfway
    leaves the world as a marker."""
    mine = netns.names(names.netns_prefix(cluster))
    return sorted(mine, key=lambda n: n == names.world_netns(cluster))


def destroy_cluster(cluster: str) -> None:
    from minikp.docker.runtime import remove_cluster as remove_docker_containers
    with _open_lock:
        closers = _open.pop(cluster, [])
    for close in closers:
        close()
    remove_docker_containers(cluster)  # its Docker pods' containers, by label; the engine's share
    ns_names = cluster_netns(cluster)
    end_processes_in(ns_names)
    for n in ns_names:
        netns.remove(n)
    shutil.rmtree(names.state_dir(cluster), ignore_errors=True)


def _ns_ids(ns_names: list[str]) -> set[tuple[int, int]]:
    ids = set()
    for n in ns_names:
        try:
            st = os.stat(names.netns_path(n))
        except FileNotFoundError:
            continue
        ids.add((st.st_dev, st.st_ino))
    return ids


def processes_in(ns_names: list[str]) -> list[int]:
    """PIDs (other than ours) whose network namespace is one of ns_names."""
    ids = _ns_ids(ns_names)
    if not ids:
        return []
    me, pids = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:  # gone, a zombie, or a kernel thread
            continue
        if (st.st_dev, st.st_ino) in ids:
            pids.append(int(entry))
    return pids


def end_processes_in(ns_names: list[str]) -> None:
    ids = _ns_ids(ns_names)
    fds = {}
    for pid in processes_in(ns_names):
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            continue
        # the pidfd pins this very process: check it is still in our namespace (no PID reuse)
        try:
            st = os.stat(f"/proc/{pid}/ns/net")
        except OSError:
            os.close(fd)
            continue
        if (st.st_dev, st.st_ino) in ids:
            fds[pid] = fd
        else:
            os.close(fd)
    try:
        _signal_all(fds, signal.SIGTERM)
        deadline = time.monotonic() + TERM_GRACE_S
        while time.monotonic() < deadline and any(_alive(pid) for pid in fds):
            time.sleep(0.01)
        _signal_all({p: fd for p, fd in fds.items() if _alive(p)}, signal.SIGKILL)
    finally:
        for fd in fds.values():
            os.close(fd)


def _signal_all(fds: dict[int, int], sig: int) -> None:
    for fd in fds.values():
        try:
            signal.pidfd_send_signal(fd, sig)
        except ProcessLookupError:
            pass


def _alive(pid: int) -> bool:
    """Running, i.e. not gone and not a zombie waiting for its parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")
