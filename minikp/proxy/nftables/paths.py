"""The path a Service's new connections take through one node in nftables mode, read from
`nft list table ip kube-proxy` (pure): frontends are the service-ips / service-nodeports
elements that lead to the service's chains, branches the `numgen random mod N` verdict map of
its service- (or local-) chain. kube-proxy's nft rules carry no counters, so hits are 0:
`minikp trace` (nft monitor trace) is how this mode shows a connection's way."""

from __future__ import annotations

import re

from minikp.proxy.paths import Branch, Frontend, PortPath

_VMAP = re.compile(r"(\d+) : goto (\S+?)(?:,|$| \})")


def chains(listing: str) -> dict[str, list[str]]:
    out, current = {}, None
    for line in listing.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "chain" and words[2] == "{":
            current = out.setdefault(words[1], [])
        elif line.strip() == "}":
            current = None
        elif current is not None and line.strip():
            current.append(line.strip())
    return out


def map_elements(listing: str, name: str) -> list[tuple[str, str]]:
    """(key, verdict target) pairs of a verdict map, however nft wraps its elements line."""
    m = re.search(rf"\bmap {re.escape(name)} \{{.*?elements = \{{(.*?)\}}\s*\n", listing, re.S)
    if not m:
        return []
    out = []
    for item in m.group(1).split(","):
        key, _, verdict = item.strip().partition(" : ")
        if verdict.startswith(("goto ", "jump ")):
            out.append((key.strip(), verdict.split()[1]))
    return out


def service_paths(listing: str, service: str) -> list[PortPath]:
    all_chains = chains(listing)
    ips, nodeports = map_elements(listing, "service-ips"), map_elements(listing, "service-nodeports")
    out = []
    for name in sorted(all_chains):
        prefix, _, rest = name.partition("-")
        if prefix not in ("service", "local") or "/" not in rest:
            continue
        base = rest.split("-", 1)[1]  # ns/name/proto/port
        ns, svc, proto, port = base.split("/", 3)
        if f"{ns}/{svc}" != service or (prefix == "local" and f"service-{rest}" in all_chains):
            continue
        ext = f"external-{rest}"
        path = PortPath(service, port, name)
        for key, target in ips:
            if target in (name, ext):
                ip, _, number = key.split(" . ")
                path.port = path.port or number
                kind = "cluster IP" if target == name else "external IP"
                path.frontends.append(Frontend(kind, f"{ip}:{number}/{proto}", target, 0))
        for key, target in nodeports:
            if target == ext:
                path.frontends.append(Frontend("node port", f":{key.split(' . ')[1]}/{proto}", target, 0))
        for rule in all_chains[name]:
            if rule.startswith("numgen random mod "):
                n = int(rule.split()[3])
                for i, chain in _VMAP.findall(rule):
                    ip, _, ep_port = chain.rsplit("__", 1)[1].rpartition("/")
                    ip = ip.replace(".", ":") if ip.count(".") != 3 else ip  # IPv6 names use "."
                    path.branches.append(Branch(f"{ip}:{ep_port}", chain, f"numgen random mod {n} = {i}",
                                                1 / n, 0))
        out.append(path)
    return out
