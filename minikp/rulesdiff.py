"""What a sync changed in a node's rules, as `minikp rules NODE --watch` prints it (pure):
the lines of the proxy's own tool output (iptables-save) that went and came, per table.

- normalize(text) -> [lines]: without the tool's timestamps and packet counters, so that
  only the rules themselves compare.
- diff(before, after) -> [lines]: "*table" headers, then "- line" / "+ line"; [] when equal.
"""

from __future__ import annotations

import difflib
import re

_COUNTS = re.compile(r" \[\d+:\d+\]$")


def normalize(text: str) -> list[str]:
    return [_COUNTS.sub("", line) for line in text.splitlines()
            if line and not line.startswith("#")]


def diff(before: str, after: str) -> list[str]:
    old, new = normalize(before), normalize(after)
    out: list[str] = []
    table = ""
    shown = ""
    # the table each line belongs to, for a header above its changes
    where_old = _tables(old)
    where_new = _tables(new)
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        for k in range(i1, i2):
            table = where_old[k]
            if table != shown:
                out.append(f"*{table}")
                shown = table
            out.append(f"- {old[k]}")
        for k in range(j1, j2):
            table = where_new[k]
            if table != shown:
                out.append(f"*{table}")
                shown = table
            out.append(f"+ {new[k]}")
    return out


def _tables(lines: list[str]) -> list[str]:
    table, out = "", []
    for line in lines:
        if line.startswith("*"):
            table = line[1:]
        out.append(table)
    return out
