"""Which rules real packets crossed: parse `iptables-save -c` (the kernel's own per-rule
packet counters) before and after some traffic, and list the rules whose counters grew, in
the order a packet meets them. No simulation: only counters the kernel kept.

- read_counters(netns_path, backend) -> Counters
- parse_counters(save_text) -> Counters
- hits(before, after) -> [(table, chain, rule_text, packets)], in traversal order: hooks
  PREROUTING, INPUT, FORWARD, OUTPUT, POSTROUTING (every path a packet takes visits them in
  this relative order); per hook the tables by netfilter priority (raw, mangle, nat, filter;
  nat last where it does SNAT); inside a built-in chain, rule by rule, descending into a user
  chain right after the jump rule that grew. Grown rules no jump reaches come last.
"""

from __future__ import annotations

import re

from minikp.proxy.iptables.tools import save

_COUNTED = re.compile(r"^\[(\d+):(\d+)\] (-A (\S+).*)$")
_TARGET = re.compile(r" -[jg] (\S+)")
HOOKS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")
_TABLES_AT = {
    "PREROUTING": ("raw", "mangle", "nat"),
    "INPUT": ("mangle", "filter", "nat"),
    "FORWARD": ("mangle", "filter"),
    "OUTPUT": ("raw", "mangle", "nat", "filter"),
    "POSTROUTING": ("mangle", "nat"),
}
TABLE_ORDER = ("raw", "mangle", "nat", "filter")

Counters = dict[str, dict[str, list[tuple[str, int]]]]  # table -> chain -> [(rule, packets)]


def parse_counters(save_text: str) -> Counters:
    """{table: {chain: [(rule_text, packets), ...]}}; rule_text is the "-A CHAIN ..." line."""
    out: Counters = {}
    table = None
    for line in save_text.splitlines():
        if line.startswith("*"):
            table = line[1:]
            out[table] = {}
        elif line.startswith(":") and table:
            out[table].setdefault(line[1:].split(" ", 1)[0], [])
        elif table and (m := _COUNTED.match(line)):
            out[table].setdefault(m.group(4), []).append((m.group(3), int(m.group(1))))
    return out


def read_counters(netns_path: str, backend: str) -> Counters:
    return parse_counters(save(netns_path, backend, counters=True))


def _grown(before: Counters, after: Counters) -> dict[tuple[str, str], list[int]]:
    """Per (table, chain): packets gained by each rule (by position among equal texts)."""
    out = {}
    for table, chains in after.items():
        for chain, rules in chains.items():
            old: dict[tuple[str, int], int] = {}
            seen: dict[str, int] = {}
            for text, pk in before.get(table, {}).get(chain, []):
                old[(text, seen.get(text, 0))] = pk
                seen[text] = seen.get(text, 0) + 1
            seen = {}
            gains = []
            for text, pk in rules:
                n = seen.get(text, 0)
                seen[text] = n + 1
                gains.append(pk - old.get((text, n), 0))
            out[(table, chain)] = gains
    return out


def hits(before: Counters, after: Counters) -> list[tuple[str, str, str, int]]:
    """(table, chain, rule_text, packets gained) for each rule whose packet counter grew,
    in traversal order; new rules count from 0."""
    grown = _grown(before, after)
    out: list[tuple[str, str, str, int]] = []
    done: set[tuple[str, str, int]] = set()

    def walk(table: str, chain: str, depth: int = 0) -> None:
        rules = after.get(table, {}).get(chain, [])
        for i, (text, _) in enumerate(rules):
            gain = grown[(table, chain)][i]
            if gain <= 0 or (table, chain, i) in done:
                continue
            done.add((table, chain, i))
            out.append((table, chain, text, gain))
            m = _TARGET.search(text)
            if m and m.group(1) in after.get(table, {}) and depth < 32:
                walk(table, m.group(1), depth + 1)

    for hook in HOOKS:
        for table in _TABLES_AT[hook]:
            if hook in after.get(table, {}):
                walk(table, hook)
    # Rules reached some other way (e.g. from chains we could not follow), table by table.
    for table in sorted(after, key=lambda t: TABLE_ORDER.index(t) if t in TABLE_ORDER else len(TABLE_ORDER)):
        for chain in after[table]:
            walk(table, chain)
    return out
