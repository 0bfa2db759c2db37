"""A real node's saved rules against what minikp's proxy wrote in that node (pure), for
`minikp diff-rules NODE FILE`.

- file_format(text) -> "iptables" | "nft" | "ipvsadm" | None: which tool printed the file
  (iptables-save, `nft list ruleset`, `ipvsadm -Ln`).
- normalize(text, fmt) -> [lines]: kube-proxy's part only, without what a live node adds —
  counters, `#` comment lines, other owners' chains (kubelet's KUBE-IPTABLES-HINT and
  KUBE-KUBELET-CANARY, Docker's, the CNI's) — and ordered the way kube-proxy's own tests
  compare rules (pkg/proxy/iptables/proxier_test.go sortIPTablesRules): tables by name; chains
  KUBE-NODEPORTS, KUBE-SERVICES, the other KUBE-* by name, then the rest by name; the rules of
  KUBE-SERVICES and KUBE-NODEPORTS stably by the service name their comment starts with (the
  "must be the last rule" rule last), every other chain in its own order. nft: the
  `ip kube-proxy` table, chains/sets/maps by name, elements sorted, rules in order. ipvsadm:
  virtual servers and their real servers sorted, without the connection counts.
- compare(saved, ours, fmt, saved_name, ours_name) -> [lines]: a unified diff, [] when equal.
"""

from __future__ import annotations

import difflib
import re

from minikp.rulesdiff import normalize as without_counters

MAX_FILE_BYTES = 64 << 20  # a 20,000-Service node's iptables-save is about 40 MiB
# the proxy modes whose proxier writes what each format shows, and the format to ask it for
MODES = {"iptables": ("iptables", "ipvs", "userspace"), "nft": ("nftables",), "ipvsadm": ("ipvs",)}
KUBELET_CHAINS = ("KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY")
BUILTIN_CHAINS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")
_RULE_COUNTERS = re.compile(r"^\[\d+:\d+\] ")
_COMMENT = re.compile(r'--comment ("(?:[^"\\]|\\.)*"|\S+)')
_JUMP = re.compile(r" -[jg] (\S+)")


def file_format(text: str) -> str | None:
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith(("*", ":", "-A ")) or _RULE_COUNTERS.match(s):
            return "iptables"
        if s.startswith("table "):
            return "nft"
        if s.startswith(("IP Virtual Server", "Prot LocalAddress")):
            return "ipvsadm"
        return None
    return None


def normalize(text: str, fmt: str) -> list[str]:
    return {"iptables": _iptables, "nft": _nft, "ipvsadm": _ipvsadm}[fmt](text)


def compare(saved: str, ours: str, fmt: str, saved_name: str = "saved",
            ours_name: str = "minikp") -> list[str]:
    return list(difflib.unified_diff(normalize(saved, fmt), normalize(ours, fmt), saved_name,
                                     ours_name, lineterm="", n=2))


# ---- iptables-save --------------------------------------------------------------------------------


def _kube_proxy_chain(name: str) -> bool:
    return name.startswith("KUBE-") and name not in KUBELET_CHAINS


def _chain_order(name: str) -> tuple:
    return ({"KUBE-NODEPORTS": 0, "KUBE-SERVICES": 1}.get(name, 2 if name.startswith("KUBE-") else 3), name)


def _service_of(rule: str) -> str:
    """The service name a rule's comment starts with (up to a space or colon), as
    orderByCommentServiceName reads it."""
    m = _COMMENT.search(rule)
    if not m:
        return ""
    value = m.group(1).strip('"')
    return re.split(r"[ :]", value, maxsplit=1)[0]


def _iptables(text: str) -> list[str]:
    tables: dict[str, dict[str, list[str]]] = {}  # table -> chain -> its rules, in order
    declared: dict[str, set[str]] = {}
    table = ""
    for line in without_counters(text):
        line = _RULE_COUNTERS.sub("", line.strip())
        if line.startswith("*"):
            table = line[1:]
            tables.setdefault(table, {})
            declared.setdefault(table, set())
        elif line.startswith(":"):
            name = line[1:].split()[0]
            if _kube_proxy_chain(name):
                declared[table].add(name)
                tables[table].setdefault(name, [])
        elif line.startswith("-A "):
            chain = line.split()[1]
            jump = _JUMP.search(line)
            if _kube_proxy_chain(chain) or (chain in BUILTIN_CHAINS and jump
                                            and _kube_proxy_chain(jump.group(1))):
                tables[table].setdefault(chain, []).append(line)
    out = []
    for name in sorted(tables):
        chains = tables[name]
        if not chains:
            continue
        out.append(f"*{name}")
        order = sorted(chains, key=_chain_order)
        out += [f":{c}" for c in order if c in declared[name]]
        for c in order:
            rules = chains[c]
            if c in ("KUBE-SERVICES", "KUBE-NODEPORTS"):
                rules = sorted(rules, key=lambda r: ("must be the last rule" in r, _service_of(r)))
            out += rules
        out.append("COMMIT")
    return out


# ---- nft list ruleset ------------------------------------------------------------------------------


def _nft(text: str) -> list[str]:
    """The `table ip kube-proxy` block: each chain, set and map as a block of its lines, the
    blocks by name; elements (one set may print over several lines) as one sorted list."""
    lines = [re.sub(r"counter packets \d+ bytes \d+", "counter", l.strip())
             for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    blocks: dict[str, list[str]] = {}
    inside, depth, block, elements = False, 0, None, None
    for line in lines:
        if not inside:
            inside = line.startswith("table ip kube-proxy")
            depth = 1 if inside else 0
            continue
        if elements is not None:  # inside `elements = { ... }`
            elements += [e.strip() for e in line.rstrip("}").split(",") if e.strip()]
            if line.endswith("}"):
                block.append("elements = { " + ", ".join(sorted(elements)) + " }")
                elements = None
            continue
        if line.startswith("elements = {"):
            rest = line[len("elements = {"):]
            elements = [e.strip() for e in rest.rstrip("}").split(",") if e.strip()]
            if rest.endswith("}"):
                block.append("elements = { " + ", ".join(sorted(elements)) + " }")
                elements = None
            continue
        depth += line.count("{") - line.count("}")
        if depth <= 0:
            inside = False
            continue
        if depth == 2 and line.endswith("{"):
            block = blocks.setdefault(line, [])
        elif block is not None and depth >= 2:
            block.append(line)
    return [x for name in sorted(blocks) for x in (name, *blocks[name], "}")]


# ---- ipvsadm -Ln -----------------------------------------------------------------------------------


def _ipvsadm(text: str) -> list[str]:
    services: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        fields = line.split()
        if not fields or line.startswith(("IP Virtual Server", "Prot LocalAddress")) \
                or fields[:2] == ["->", "RemoteAddress:Port"]:
            continue
        if fields[0] == "->":  # a real server: address, forward method, weight (no counts)
            if current is not None:
                services[current].append("  -> " + " ".join(fields[1:4]))
        else:
            current = " ".join(fields)
            services.setdefault(current, [])
    return [x for s in sorted(services) for x in (s, *sorted(services[s]))]
