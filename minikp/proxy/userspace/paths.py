"""A Service's path through one node in userspace mode, read from `iptables-save -c -t nat`
(pure). The kernel only sends a connection to the proxy socket (REDIRECT from pods, DNAT from
the node itself); the endpoint is chosen in the proxy, which the kernel never sees. So:

- frontends: the portal rules (KUBE-PORTALS-CONTAINER and -HOST: cluster IP, external IPs,
  load-balancer IPs; KUBE-NODEPORT-CONTAINER and -HOST: the node port), each with the new
  connections the kernel counted on its rules (in the nat table only a first packet counts);
- one branch: the proxy socket itself, taking every connection (share 1);
- chain: "proxy :PORT", the proxy port the rules send to.

The proxier in the supervisor can replace the branch with the endpoints its round robin picks
(proxier.UserspaceProxier.service_paths); a proxier rebuilt elsewhere (the TUI) has only this.

- service_paths(save_text, service) -> [PortPath], one per service port, in rule order.
"""

from __future__ import annotations

import re

from minikp.proxy.iptables.trace import parse_counters
from minikp.proxy.paths import Branch, Frontend, PortPath, port_of
from minikp.proxy.userspace import rules

_COMMENT = re.compile(r'--comment "?([^" ]*)"?')
_DEST = re.compile(r"-d (\S+?)(?:/32)? ")
_DPORT = re.compile(r"--dport (\d+)")
_PROTO = re.compile(r"-p (\w+)")
_TO_PORT = re.compile(r"(?:--to-ports |--to-destination \S+:)(\d+)")
_PROXY_HOST = re.compile(r"--to-destination (\S+):\d+")


def _get(rx: re.Pattern, rule: str) -> str:
    m = rx.search(rule)
    return m.group(1) if m else ""


def service_paths(save_text: str, service: str) -> list[PortPath]:
    nat = parse_counters(save_text).get("nat", {})
    ports: dict[str, dict] = {}  # port -> {"dport", "proxy", "host", "fronts": {address: front}}
    for chain in rules.NAT_CHAINS:  # portals first: a port's first address is its cluster IP
        for rule, packets in nat.get(chain, []):
            port = port_of(_get(_COMMENT, rule), service)
            if port is None:
                continue
            proto, dport = _get(_PROTO, rule), _get(_DPORT, rule)
            info = ports.setdefault(port, {"dport": dport, "proxy": "", "host": "", "fronts": {}})
            info["proxy"] = info["proxy"] or _get(_TO_PORT, rule)
            info["host"] = info["host"] or _get(_PROXY_HOST, rule)
            if chain in (rules.CONTAINER_NODEPORTS, rules.HOST_NODEPORTS):
                address, kind = f":{dport}/{proto}", "node port"
            else:
                address = f"{_get(_DEST, rule)}:{dport}/{proto}"
                kind = ("external IP" if "physdev" in rule or "addrtype" in rule else
                        "cluster IP" if not info["fronts"] else "loadbalancer IP")
            front = info["fronts"].setdefault(address, {"kind": kind, "vias": [], "hits": 0})
            if kind == "external IP":
                front["kind"] = kind
            if chain not in front["vias"]:
                front["vias"].append(chain)
            front["hits"] += packets
    out = []
    for port, info in ports.items():
        path = PortPath(service, port or info["dport"], f"proxy :{info['proxy']}")
        path.frontends = [Frontend(f["kind"], address, "/".join(f["vias"]), f["hits"])
                          for address, f in info["fronts"].items()]
        proxy = f"{info['host']}:{info['proxy']}" if info["host"] else f":{info['proxy']}"
        path.branches = [Branch(proxy, "userspace proxy", "the proxy picks the endpoint", 1.0,
                                sum(f.hits for f in path.frontends))]
        out.append(path)
    return out
