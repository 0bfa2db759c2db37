"""What the dashboard shows, from plain data (pure: no Textual, no kernel).

- tree(state) -> [(label, data, [children...])]: cluster → nodes → pods, clients, services,
  deployments.
- service_path(service, node, paths, pods_by_ip, mode) -> a Rich renderable: each service port's
  frontends and its endpoints with the rule that picks them, their share, live hits and a bar.
- rules(text, diff) -> Rich Text: the node's rules as the kernel printed them, highlighted, after
  what the last sync changed.
- sync_diff(before, after) -> [lines]: a unified diff of two rule dumps, counters ignored.
"""

from __future__ import annotations

import difflib
import re

from rich.console import Group
from rich.table import Table
from rich.text import Text

from minikp.proxy.paths import PortPath

BAR = 10


def _ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in pod["status"].get("conditions", []))


def pod_label(pod: dict) -> str:
    m, st = pod["metadata"], pod["status"]
    phase = "Terminating" if m.get("deletionTimestamp") else st.get("phase", "?")
    return f"{m['name']} {'1/1' if _ready(pod) else '0/1'} {phase} {st.get('podIP', '')}"


def pod_short(pod: dict) -> str:
    """For the tree: the pod's name, ready mark and address."""
    m, st = pod["metadata"], pod["status"]
    mark = "✗" if st.get("phase") == "Failed" else "✓" if _ready(pod) else "…"
    return f"{mark} {_ns_name(m)} {st.get('podIP', '')}"


def _ns_name(meta: dict) -> str:
    ns = meta.get("namespace", "default")
    return meta["name"] if ns == "default" else f"{ns}/{meta['name']}"


def ports_text(svc: dict) -> str:
    """kubectl's PORT(S): 80:30080/TCP,53/UDP."""
    return ",".join(f"{p['port']}{':' + str(p['nodePort']) if p.get('nodePort') else ''}"
                    f"/{p.get('protocol', 'TCP')}" for p in svc["spec"].get("ports", []))


def service_label(svc: dict) -> str:
    return f"{_ns_name(svc['metadata'])} {svc['spec']['type']}"


def service_summary(svc: dict) -> str:
    spec = svc["spec"]
    lb = ",".join(i.get("ip", "") for i in svc.get("status", {}).get("loadBalancer", {}).get("ingress", []))
    return "  ".join(x for x in (spec["type"], spec.get("clusterIP", ""), ports_text(svc),
                                 lb and f"LB {lb}") if x)


def deployments(state: dict) -> list[tuple[str, str, int, int]]:
    """(namespace, name, ready, desired) from the pods' owners: the objects are not stored,
    their pods are (and a Deployment with 0 pods reports through state["deployments"] when the
    supervisor writes it)."""
    seen: dict[tuple[str, str], list[int]] = {}
    for d in state.get("deployments", []):
        seen[(d["metadata"]["namespace"], d["metadata"]["name"])] = [0, d["spec"].get("replicas", 0)]
    for p in state["pods"]:
        for o in p["metadata"].get("ownerReferences", []):
            if o.get("kind") != "ReplicaSet":
                continue
            key = (p["metadata"]["namespace"], o["name"].rsplit("-", 1)[0])
            counts = seen.setdefault(key, [0, 0])
            counts[0] += _ready(p)
            if not state.get("deployments"):
                counts[1] += 1
    return [(ns, name, r, d) for (ns, name), (r, d) in sorted(seen.items())]


def tree(state: dict) -> list:
    pods_on: dict[str, list] = {}
    for p in state["pods"]:
        pods_on.setdefault(p["spec"].get("nodeName", ""), []).append(p)
    nodes = [(f"{n['metadata']['name']} {n['status']['addresses'][0]['address']}",
              ("node", n["metadata"]["name"]),
              [(pod_short(p), ("pod", p["metadata"]["namespace"], p["metadata"]["name"]), [])
               for p in pods_on.get(n["metadata"]["name"], [])])
             for n in state["nodes"]]
    clients = [(f"{c['name']} {c['ip']}", ("client", c["name"]), []) for c in state["clients"]]
    services = [(service_label(s),
                 ("svc", s["metadata"]["namespace"], s["metadata"]["name"]), [])
                for s in state["services"]]
    deps = [(f"{_ns_name({'namespace': ns, 'name': name})} {r}/{d}", ("deploy", ns, name), []) for ns, name, r, d in deployments(state)]
    return [(f"nodes ({len(nodes)})", ("group", "nodes"), nodes),
            (f"clients ({len(clients)})", ("group", "clients"), clients),
            (f"services ({len(services)})", ("group", "services"), services),
            (f"deployments ({len(deps)})", ("group", "deployments"), deps)]


def service_path(svc: dict, node: str, paths: list[PortPath], pods_by_ip: dict[str, str],
                 mode: str):
    head = Text.assemble((_ns_name(svc["metadata"]), "bold"), f"  {service_summary(svc)}\n",
                         (f"through {node}'s proxy ({mode}; n: next node)", "dim"))
    if not paths:
        return Group(head, Text("  no rules for this Service on this node (no ports, "
                                "ExternalName, or headless)", style="dim"))
    parts = [head]
    for path in paths:
        total = path.hits
        parts.append(Text.assemble(("port ", "dim"), (path.port or "(unnamed)", "bold"),
                                   (f"  {total} new connections", "dim")))
        for f in path.frontends:
            parts.append(Text(f"{f.kind} {f.address} → {f.via} {f.hits} pkt", style="cyan"))
        table = Table(box=None, padding=(0, 1, 0, 0), show_header=True, header_style="dim",
                      expand=True)
        table.add_column("endpoint", no_wrap=True, overflow="ellipsis", ratio=1, min_width=8)
        table.add_column("picked by", no_wrap=True, overflow="ellipsis", max_width=17)
        table.add_column("share", no_wrap=True, justify="right")
        table.add_column("hits", no_wrap=True, justify="right")
        table.add_column("", no_wrap=True, width=BAR)
        for b in path.branches:
            ip = b.endpoint.rpartition(":")[0]
            frac = b.hits / total if total else 0.0
            fill = round(BAR * frac)
            who = f"{pods_by_ip[ip]} {b.endpoint}" if ip in pods_by_ip else b.endpoint
            table.add_row(who, b.rule, f"{b.share:.0%}", str(b.hits),
                          Text("█" * fill + "░" * (BAR - fill), style="green"))
        if not path.branches:
            table.add_row("(no endpoints)", "", "", "", "")
        parts.append(table)
    return Group(*parts)


_CHAIN = re.compile(r"(KUBE-[A-Z0-9-]+)")
_VERDICT = re.compile(r"-j (DROP|REJECT)\b")
_COUNTERS = re.compile(r"^\[\d+:\d+\] |(?<=\[)\d+:\d+(?=\]$)")


def rules(text: str, diff: list[str]) -> Text:
    out = Text()
    if diff:
        out.append("the last sync changed:\n", style="bold")
        for line in diff:
            out.append(line + "\n", style="green" if line.startswith("+") else
                       "red" if line.startswith("-") else "dim")
        out.append("\n")
    for line in text.splitlines():
        t = Text(line + "\n", style="dim" if line.startswith(("#", "COMMIT")) else "")
        if line.startswith("*"):
            t.stylize("bold yellow")
        t.highlight_regex(_CHAIN, "cyan")
        t.highlight_regex(_VERDICT, "bold red")
        t.highlight_regex(r"-j DNAT --to-destination \S+", "green")
        out.append_text(t)
    return out


def sync_diff(before: str, after: str) -> list[str]:
    strip = lambda s: [_COUNTERS.sub("", line) for line in s.splitlines()  # noqa: E731
                       if not line.startswith("#")]
    return [line for line in difflib.unified_diff(strip(before), strip(after), lineterm="", n=0)
            if not line.startswith(("---", "+++", "@@"))]
