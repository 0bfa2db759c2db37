"""UDP conntrack cleanup after a sync, the same in every proxy mode: kube-proxy 1.28's
pkg/proxy/conntrack commands (1.33 reconciles the same flows over netlink), computed from the
previous and the new snapshot (pure), then run inside the node's namespace."""

from __future__ import annotations

from minikp.nsenter import run_in
from minikp.proxy.snapshot import ProxySnapshot, ServicePortInfo

NO_FLOWS = "0 flow entries have been deleted"  # conntrack's exit 1 that is not an error


def _udp_ports(snapshot: ProxySnapshot) -> dict[tuple[str, str], ServicePortInfo]:
    return {(sp.port_name_string, sp.protocol): sp for sp in snapshot.services if sp.protocol == "UDP"}


def _frontends(sp: ServicePortInfo) -> list[str]:
    return [sp.cluster_ip, *sp.external_ips, *sp.load_balancer_ips]


def commands(prev: ProxySnapshot | None, cur: ProxySnapshot) -> list[list[str]]:
    """kube-proxy 1.28's UDP cleanup (pkg/proxy/conntrack/cleanup.go, endpoints.go
    detectStaleConntrackEntries), which 1.33 reconciles over netlink instead:
    - deleted UDP service ports: flows to their cluster IP;
    - newly active UDP service ports (0 -> >0 serving endpoints): flows to every frontend
      IP and the NodePort, which may hold a cached "no endpoint" decision;
    - UDP endpoints that were serving and no longer are (or are gone): flows DNATed to them,
      for service ports that still exist."""
    if prev is None:
        return []
    old, new = _udp_ports(prev), _udp_ports(cur)
    cmds: list[list[str]] = []
    for k in sorted(old.keys() - new.keys()):
        cmds.append(["conntrack", "-D", "--orig-dst", old[k].cluster_ip, "-p", "udp"])
    nodeports = []
    for k, nsp in sorted(new.items()):
        was = old.get(k)
        if any(e.serving for e in nsp.endpoints) and not (was and any(e.serving for e in was.endpoints)):
            cmds += [["conntrack", "-D", "--orig-dst", ip, "-p", "udp"] for ip in _frontends(nsp)]
            if nsp.node_port:
                nodeports.append(nsp.node_port)
    cmds += [["conntrack", "-D", "-p", "udp", "--dport", str(p)] for p in nodeports]
    for k, osp in sorted(old.items()):
        nsp = new.get(k)
        if nsp is None:
            continue
        now_serving = {str(e) for e in nsp.endpoints if e.serving}
        for ep in osp.endpoints:
            if not ep.serving or str(ep) in now_serving:
                continue
            if nsp.node_port:
                cmds.append(["conntrack", "-D", "-p", "udp", "--dport", str(nsp.node_port), "--dst-nat", ep.ip])
            cmds += [["conntrack", "-D", "--orig-dst", ip, "--dst-nat", ep.ip, "-p", "udp"]
                     for ip in _frontends(nsp)]
    seen: set[tuple[str, ...]] = set()
    return [c for c in cmds if not (tuple(c) in seen or seen.add(tuple(c)))]


def clear(netns_path: str, cmds: list[list[str]]) -> list[str]:
    """Run the commands in the namespace; the failures, as kube-proxy would log them."""
    errors = []
    for argv in cmds:
        res = run_in(netns_path, argv)
        # kube-proxy only logs failures; "0 flow entries" (exit 1) is not one.
        if res.returncode != 0 and NO_FLOWS not in res.stderr + res.stdout:
            errors.append(f"{' '.join(argv)}: {res.stderr.strip()}")
    return errors
