"""Resident memory of one running minikp cluster: the supervisor, its descendants and
every process living in one of the cluster's network namespaces, summed as PSS
(shared pages split between the processes mapping them) and as RSS."""

import os

from common import all_pids, comm, parent_pid, pss_kb, rss_kb

NETNS_DIR = "/run/netns"


def cluster_netns_inodes(cluster):
    """(dev, inode) of every /run/netns/minikp-<cluster>-* namespace."""
    prefix = f"minikp-{cluster}-"
    out = set()
    for name in os.listdir(NETNS_DIR):
        if name.startswith(prefix):
            try:
                st = os.stat(os.path.join(NETNS_DIR, name))
            except OSError:
                continue
            out.add((st.st_dev, st.st_ino))
    return out


def supervisor_pid(cluster):
    with open(f"/run/minikp/{cluster}/lock") as f:
        return int(f.read().split()[0])


def cluster_processes(cluster):
    """PIDs of everything the cluster runs: supervisor + descendants + processes in its netns."""
    inodes = {ino for _, ino in cluster_netns_inodes(cluster)}
    sup = supervisor_pid(cluster)
    pids = all_pids()
    parents = {p: parent_pid(p) for p in pids}
    mine = {sup}
    for p in pids:
        try:
            if os.stat(f"/proc/{p}/ns/net").st_ino in inodes:
                mine.add(p)
        except OSError:
            continue
    grew = True
    while grew:  # add descendants of anything already counted
        extra = {p for p, pp in parents.items() if pp in mine and p not in mine}
        mine |= extra
        grew = bool(extra)
    return sorted(p for p in mine if os.path.exists(f"/proc/{p}"))


def cluster_memory(cluster):
    """{'pss_mb', 'rss_mb', 'processes', 'by_command': {comm: [count, pss_mb]}}"""
    pids = cluster_processes(cluster)
    by = {}
    pss = rss = 0
    for p in pids:
        k, r = pss_kb(p), rss_kb(p)
        pss += k
        rss += r
        c = comm(p)
        n, m = by.get(c, (0, 0.0))
        by[c] = (n + 1, m + k / 1024)
    return {"pss_mb": pss / 1024, "rss_mb": rss / 1024, "processes": len(pids),
            "by_command": {c: [n, round(m, 1)] for c, (n, m) in sorted(by.items())}}
