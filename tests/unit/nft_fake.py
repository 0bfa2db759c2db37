"""A small stand-in for knftables.Fake, so goldens can compare what kube-proxy's own tests
compare: the table a transaction leaves, dumped and normalised.

- Table.apply(text): run an `nft -f` transaction with Fake's semantics (re-adding a chain,
  set or map is a no-op; flushing or deleting a missing object, or deleting a missing
  element, is an error; re-adding an element replaces it). Raises on an error, and leaves
  the table unchanged (a transaction is atomic). Counts operations like NumOperations().
- Table.dump(): Fake.Dump()'s lines.
- normalise(text): assertNFTablesTransactionEqual's view: blank and # lines dropped; rules
  keep their order within a chain, everything else is a set.
"""

from __future__ import annotations

import copy
import re

_OBJ = re.compile(r"^(add|flush|delete) (table|chain|rule|set|map|element) ip kube-proxy ?(\S*)(.*)$")


class Table:
    def __init__(self) -> None:
        self.exists = False
        self.table_line = ""
        self.chains: dict[str, str] = {}  # name -> its add line
        self.rules: dict[str, list[str]] = {}
        self.sets: dict[str, str] = {}  # set/map name -> its add line
        self.elements: dict[str, dict[str, str]] = {}  # container -> key -> add line
        self.last_ops = 0

    def apply(self, text: str) -> None:
        saved = copy.deepcopy(self.__dict__)
        ops = 0
        try:
            for line in text.splitlines():
                if line.strip():
                    self._op(line.strip())
                    ops += 1
        except Exception:
            self.__dict__.update(saved)
            raise
        self.last_ops = ops

    def _op(self, line: str) -> None:
        m = _OBJ.match(line)
        if not m:
            raise ValueError(f"cannot parse: {line}")
        verb, kind, name, rest = m.groups()
        if kind == "table":
            if verb == "add":
                self.exists, self.table_line = True, line
            elif verb == "delete":
                self.__init__()
            return
        if not self.exists:
            raise KeyError(f"no table: {line}")
        if kind == "chain":
            if verb == "add":
                if name not in self.chains:
                    self.chains[name], self.rules[name] = line, []
            elif name not in self.chains:
                raise KeyError(f"no chain: {line}")
            elif verb == "flush":
                self.rules[name] = []
            else:
                ref = re.compile(rf"(?:goto|jump) {re.escape(name)}(?: |$)")
                if any(ref.search(r) for c, rs in self.rules.items() if c != name for r in rs) \
                        or any(ref.search(e) for es in self.elements.values() for e in es.values()):
                    raise ValueError(f"chain still referenced: {line}")
                del self.chains[name], self.rules[name]
        elif kind == "rule":
            if name not in self.chains:
                raise KeyError(f"no chain: {line}")
            for target in re.findall(r"(?:goto|jump) (\S+)", rest):
                if target not in self.chains:
                    raise KeyError(f"dangling reference to {target}: {line}")
            for ref in re.findall(r"@(\S+)", rest):
                if ref not in self.sets:
                    raise KeyError(f"dangling reference to @{ref}: {line}")
            self.rules[name].append(line)
        elif kind in ("set", "map"):
            if verb == "add":
                if name not in self.sets:
                    self.sets[name], self.elements[name] = line, {}
            elif name not in self.sets:
                raise KeyError(f"no {kind}: {line}")
            elif verb == "flush":
                self.elements[name] = {}
            else:
                del self.sets[name], self.elements[name]
        else:  # element
            if name not in self.sets:
                raise KeyError(f"no set or map: {line}")
            body = rest.strip()[1:-1].strip()
            key = re.split(r" comment | : ", body)[0]
            if verb == "add":
                for target in re.findall(r"(?:goto|jump) (\S+)", body):
                    if target not in self.chains:
                        raise KeyError(f"dangling reference to {target}: {line}")
                self.elements[name][key] = line
            elif key not in self.elements[name]:
                raise KeyError(f"no element: {line}")
            else:
                del self.elements[name][key]

    def dump(self) -> str:
        out = [self.table_line] if self.exists else []
        out += [self.chains[c] for c in sorted(self.chains)]
        out += [self.sets[s] for s in sorted(self.sets) if " set " in self.sets[s]]
        out += [self.sets[s] for s in sorted(self.sets) if " map " in self.sets[s]]
        for c in sorted(self.chains):
            out += self.rules[c]
        for s in self.elements:
            out += list(self.elements[s].values())
        return "\n".join(out) + "\n"

    def chain_rules(self, chain: str) -> list[str]:
        return [r.split(f" {chain} ", 1)[1] for r in self.rules[chain]]


def normalise(text: str) -> tuple[frozenset[str], dict[str, list[str]]]:
    lines = [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]
    others = frozenset(l for l in lines if not l.startswith("add rule "))
    rules: dict[str, list[str]] = {}
    for l in lines:
        if l.startswith("add rule "):
            chain = l.split()[4]
            rules.setdefault(chain, []).append(l)
    return others, rules
