"""UDP conntrack cleanup after a sync, the same in every proxy mode, as the modelled
kube-proxy release does it (kube-proxy-history.md §7):

- up to 1.31, event based (`commands`): from the previous and the new snapshot, `conntrack -D`
  for endpoints that stopped serving, deleted service ports and 0 -> >0 transitions. A flow
  that no event names (a lost event, a flow made by hand) is never cleaned.
- from 1.32, a reconciler (`stale_flow_commands`, pkg/proxy/conntrack/cleanup.go
  CleanStaleEntries): after a sync in which some UDP service port's endpoints changed
  (`cleanup_required`, EndpointsMap.Update's ConntrackCleanupRequired), list the node's UDP
  flows and delete those whose original destination is a UDP frontend (clusterIP, LB or
  external IP with the port, or *:nodePort) and whose reply source is not a serving endpoint
  of it. Its known gap, kubernetes#139628 (1.32 until the 1.37 fix #139629): a service port
  with no serving endpoint is skipped, so flows to its removed endpoints survive; deleted
  services are never matched either (#141371).

The policies are pure; `cleanup` is the kernel edge every proxy mode calls after a sync:
`cleanup(netns_path, prev, cur, release) -> (argv run, errors)`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from minikp.fabric.netns import read_sysctl
from minikp.nsenter import run_in
from minikp.proxy.snapshot import ProxySnapshot, ServicePortInfo

RECONCILER_SINCE = (1, 32)  # #127318

NO_FLOWS = "0 flow entries have been deleted"  # conntrack's exit 1 that is not an error


def _udp_ports(snapshot: ProxySnapshot) -> dict[tuple[str, str], ServicePortInfo]:
    return {(sp.port_name_string, sp.protocol): sp for sp in snapshot.services if sp.protocol == "UDP"}


def _frontends(sp: ServicePortInfo) -> list[str]:
    return [sp.cluster_ip, *sp.external_ips, *sp.load_balancer_ips]


def commands(prev: ProxySnapshot | None, cur: ProxySnapshot) -> list[list[str]]:
    """kube-proxy ≤1.31's event-based UDP cleanup (1.28: pkg/proxy/conntrack/cleanup.go,
    endpoints.go detectStaleConntrackEntries):
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
    return _unique(cmds)


def _unique(cmds: list[list[str]]) -> list[list[str]]:
    seen: set[tuple[str, ...]] = set()
    return [c for c in cmds if not (tuple(c) in seen or seen.add(tuple(c)))]


# --- 1.32+: the reconciler --------------------------------------------------------------

@dataclass(frozen=True)
class Flow:
    """One conntrack entry: the original direction's destination and the reply's source
    (for a DNATed flow, the endpoint that answers)."""

    protocol: str  # "udp", "tcp", ...
    orig_src: str
    orig_dst: str
    orig_dport: int
    reply_src: str


def parse_flows(text: str) -> list[Flow]:
    """`conntrack -L` output (one entry a line; the first src/dst/dport are the original
    direction, the second src the reply's) -> flows. Lines it cannot read are skipped."""
    flows = []
    for line in text.splitlines():
        words = line.split()
        if not words or "=" in words[0]:
            continue
        keys: dict[str, list[str]] = {}
        for w in words:
            k, eq, v = w.partition("=")
            if eq:
                keys.setdefault(k, []).append(v)
        try:
            flows.append(Flow(words[0], keys["src"][0], keys["dst"][0], int(keys["dport"][0]),
                              keys["src"][1]))
        except (KeyError, IndexError, ValueError):
            continue
    return flows


def _serving_ips(sp: ServicePortInfo) -> set[str]:
    return {e.ip for e in sp.endpoints if e.serving}


def cleanup_required(prev: ProxySnapshot | None, cur: ProxySnapshot) -> bool:
    """ConntrackCleanupRequired: some UDP service port's endpoints changed since the last
    successful sync (at start every UDP port with endpoints counts as changed)."""
    old = {k: sp.endpoints for k, sp in _udp_ports(prev).items()} if prev else {}
    new = {k: sp.endpoints for k, sp in _udp_ports(cur).items()}
    return any(old.get(k, ()) != new.get(k, ()) for k in old.keys() | new.keys())


def stale_flow_commands(flows: list[Flow], cur: ProxySnapshot) -> list[list[str]]:
    """CleanStaleEntries: the `conntrack -D` filters for UDP flows to a frontend whose reply
    source is not a serving endpoint. Service ports without a serving endpoint are skipped
    (the #139628 gap of 1.32 and later, until 1.37)."""
    by_frontend: dict[tuple[str, int], set[str]] = {}
    by_node_port: dict[int, set[str]] = {}
    for sp in _udp_ports(cur).values():
        serving = _serving_ips(sp)
        if not serving:  # "a Service without endpoints does not require to clean" (#139628)
            continue
        for ip in _frontends(sp):
            by_frontend[(ip, sp.port)] = serving
        if sp.node_port:
            by_node_port[sp.node_port] = serving
    cmds = []
    for f in flows:
        if f.protocol != "udp":
            continue
        serving = by_frontend.get((f.orig_dst, f.orig_dport))
        if serving is not None and f.reply_src not in serving:
            cmds.append(["conntrack", "-D", "-p", "udp", "--orig-dst", f.orig_dst,
                         "--dport", str(f.orig_dport), "--reply-src", f.reply_src])
        serving = by_node_port.get(f.orig_dport)
        if serving is not None and f.reply_src not in serving:
            cmds.append(["conntrack", "-D", "-p", "udp", "--dport", str(f.orig_dport),
                         "--reply-src", f.reply_src])
    return _unique(cmds)


def flow_count(netns_path: str) -> int | None:
    """How many conntrack entries the namespace holds (None: not known)."""
    try:
        return int(read_sysctl(netns_path, "net.netfilter.nf_conntrack_count"))
    except (OSError, ValueError):
        return None


def list_flows(netns_path: str) -> list[Flow]:
    """The node's UDP conntrack entries (kube-proxy lists them over netlink). An empty
    table (a fresh node's first sync) is read from its count: the same empty answer without
    starting `conntrack -L`, which cost each node's first sync ~12 ms."""
    if flow_count(netns_path) == 0:
        return []
    return parse_flows(run_in(netns_path, ["conntrack", "-L", "-p", "udp"]).stdout)


def narrowed(prev: ProxySnapshot | None, cur: ProxySnapshot, changed: list[tuple] | None):
    """(prev, cur) holding only the ports in `changed` [(old, new)], or as given when it is
    None: `commands` and `cleanup_required` compare port by port, so they answer the same."""
    if changed is None or prev is None:
        return prev, cur
    return (replace(prev, services=tuple(o for o, _ in changed if o is not None)),
            replace(cur, services=tuple(n for _, n in changed if n is not None)))


def cleanup(netns_path: str, prev: ProxySnapshot | None, cur: ProxySnapshot,
            release: tuple[int, int], changed: list[tuple] | None = None) -> tuple[list[list[str]], list[str]]:
    """After a successful sync from `prev` to `cur`: the modelled release's UDP cleanup,
    run in the node's namespace. Returns (conntrack argv run, failures). `changed`, when the
    caller knows it: the (old, new) ServicePortInfo of every port that differs (None: absent
    on that side); the events and the need for the reconciler then come from those alone,
    the same answer without a pass over every port."""
    prev, diff = narrowed(prev, cur, changed)
    if release < RECONCILER_SINCE:
        cmds = commands(prev, diff)
    elif cleanup_required(prev, diff):
        cmds = stale_flow_commands(list_flows(netns_path), cur)
    else:
        cmds = []
    return cmds, clear(netns_path, cmds)


def clear(netns_path: str, cmds: list[list[str]]) -> list[str]:
    """Run the commands in the namespace; the failures, as kube-proxy would log them."""
    errors = []
    for argv in cmds:
        res = run_in(netns_path, argv)
        # kube-proxy only logs failures; "0 flow entries" (exit 1) is not one.
        if res.returncode != 0 and NO_FLOWS not in res.stderr + res.stdout:
            errors.append(f"{' '.join(argv)}: {res.stderr.strip()}")
    return errors
