"""A Service's path through one node's iptables rules, read from `iptables-save -c`:
KUBE-SERVICES / KUBE-NODEPORTS → KUBE-SVC-… (or KUBE-EXT-…) → KUBE-SEP-…, each branch with the
probability kube-proxy wrote and the packets the kernel counted on it. In the nat table only a
connection's first packet is seen, so a branch's packets are its new connections.

- service_paths(save_text, service) -> [PortPath], one per service port, in rule order.
"""

from __future__ import annotations

import re

from minikp.proxy.iptables.trace import parse_counters
from minikp.proxy.paths import Branch, Frontend, PortPath, port_of

_COMMENT = re.compile(r'--comment "([^"]*)"')
_TARGET = re.compile(r" -j (\S+)")
_DEST = re.compile(r" -d (\S+?)(?:/32)? ")
_DPORT = re.compile(r"--dport (\d+)")
_PROTO = re.compile(r" -p (\w+)")
_PROB = re.compile(r"--probability (\S+)")
_ENDPOINT = re.compile(r" -> (\S+)$")
_FRONT_KINDS = ("cluster IP", "external IP", "loadbalancer IP")


def _parts(rule: str) -> dict:
    get = lambda rx: (m.group(1) if (m := rx.search(rule)) else "")  # noqa: E731
    return {"comment": get(_COMMENT), "target": get(_TARGET), "dest": get(_DEST),
            "dport": get(_DPORT), "proto": get(_PROTO), "prob": get(_PROB)}


def _relevant(save_text: str, service: str) -> str:
    """Only the lines that can matter for `service`: its frontends and the chains they lead
    to (a 1,000-service dump is ~4,000 lines; parsing them all costs more than the dump)."""
    lines = save_text.splitlines()
    mine = [line for line in lines if f'"{service}' in line]
    chains = {m.group(1) for line in mine for m in [_TARGET.search(line)] if m}
    chains |= {line.split(" -A ", 1)[1].split(" ", 1)[0] for line in mine if " -A " in line}
    keep = [line for line in lines if line.startswith("*") or (
        " -A " in line and line.split(" -A ", 1)[1].split(" ", 1)[0] in chains)]
    return "\n".join(keep)


_MASQ_TARGETS = ("KUBE-MARK-MASQ", "MARK")  # MARK: 1.1's inline mark


def service_paths(save_text: str, service: str) -> list[PortPath]:
    nat = parse_counters(_relevant(save_text, service)).get("nat", {})
    paths: dict[str, PortPath] = {}

    def path_for(port: str, chain: str) -> PortPath:
        return paths.setdefault(port, PortPath(service, port, chain))

    for rule, packets in nat.get("KUBE-SERVICES", []):
        p = _parts(rule)
        port = port_of(p["comment"], service)
        kind = p["comment"].partition(" ")[2]
        if port is None or kind not in _FRONT_KINDS or p["target"] in _MASQ_TARGETS:
            continue  # (before 1.22 the masquerade rules sat here too)
        path = path_for(port, p["target"])
        path.frontends.append(Frontend(kind, f"{p['dest']}:{p['dport']}/{p['proto']}",
                                       p["target"], packets))
    for rule, packets in nat.get("KUBE-NODEPORTS", []):
        p = _parts(rule)
        port = port_of(p["comment"], service)
        if port is None or p["target"] in _MASQ_TARGETS:
            continue
        path_for(port, p["target"]).frontends.append(
            Frontend("node port", f":{p['dport']}/{p['proto']}", p["target"], packets))
    for path in paths.values():
        path.chain, path.branches = _branches(nat, path)
    return list(paths.values())


def _branches(nat: dict, path: PortPath) -> tuple[str, list[Branch]]:
    """The endpoint choice: the KUBE-SVC (or, for traffic policy Local, KUBE-SVL) chain that
    the frontends lead to, directly or through KUBE-EXT/KUBE-FW."""
    seen: set[str] = set()
    todo = [f.via for f in path.frontends]
    while todo:
        chain = todo.pop(0)
        if chain in seen or chain not in nat:
            continue
        seen.add(chain)
        rules = [(r, n, _parts(r)) for r, n in nat[chain]]
        picks = [(r, n, p) for r, n, p in rules if p["target"].startswith("KUBE-SEP-")]
        if picks:
            return chain, _shares(picks)
        todo.extend(p["target"] for _, _, p in rules
                    if p["target"].startswith(("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-XLB-")))
    return (path.frontends[0].via if path.frontends else ""), []


def _shares(picks) -> list[Branch]:
    """kube-proxy's probabilities are conditional (1/n, 1/(n-1), …, the last rule takes the
    rest): a branch's share is its probability times what the earlier ones left."""
    left, out = 1.0, []
    for rule, packets, p in picks:
        prob = float(p["prob"]) if p["prob"] else 1.0
        endpoint = (m.group(1) if (m := _ENDPOINT.search(p["comment"])) else p["target"])
        out.append(Branch(endpoint, p["target"],
                          f"p {p['prob']}" if p["prob"] else "the rest", left * prob, packets))
        left *= 1 - prob
    return out
