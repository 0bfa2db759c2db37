"""The node's wanted ipvs state kept as the sum of its service ports' shares (pure).

Desired.replace(port key, PortState | None) swaps one port's share and says what changed:
the virtual servers it touched, the set entries and kube-ipvs0 addresses that appeared or
disappeared (reference counted: two ports may share an address or an entry). A partial sync
replaces only the ports whose ServicePortInfo changed, so its work follows the change, not
the number of services.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from minikp.proxy.ipvs.render import SET_NAMES, PortState, VirtualServer


@dataclass
class Delta:
    vs_keys: set[tuple] = field(default_factory=set)
    entries_added: set[tuple[str, str]] = field(default_factory=set)
    entries_removed: set[tuple[str, str]] = field(default_factory=set)
    bind_added: set[str] = field(default_factory=set)
    bind_removed: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.vs_keys or self.entries_added or self.entries_removed
                    or self.bind_added or self.bind_removed)


def _note(into: set, undo: set, item) -> None:
    """Record a change, or cancel the opposite one made earlier in the same delta."""
    if item in undo:
        undo.discard(item)
    else:
        into.add(item)


class Desired:
    def __init__(self) -> None:
        self.ports: dict[tuple, PortState] = {}
        self.vs: dict[tuple, VirtualServer] = {}
        self._vs_owners: dict[tuple, dict[tuple, VirtualServer]] = {}  # key -> {port: its VS}
        self.entry_refs: Counter[tuple[str, str]] = Counter()
        self.bind_refs: Counter[str] = Counter()
        self.set_sizes: Counter[str] = Counter()
        self._no_node_access: dict[tuple, tuple] = {}  # only the ports that have some

    def replace(self, key: tuple, new: PortState | None, delta: Delta | None = None) -> Delta:
        delta = delta if delta is not None else Delta()
        old = self.ports.pop(key, None)
        self._no_node_access.pop(key, None)
        if old is not None:
            for v in old.virtual_servers:
                delta.vs_keys.add(v.key)
                owners = self._vs_owners[v.key]
                owners.pop(key, None)
                if owners:  # another port asks for the same address:port: the latest wins
                    self.vs[v.key] = next(reversed(owners.values()))
                else:
                    del self.vs[v.key], self._vs_owners[v.key]
            for e in old.entries:
                self.entry_refs[e] -= 1
                if not self.entry_refs[e]:
                    del self.entry_refs[e]
                    self.set_sizes[e[0]] -= 1
                    _note(delta.entries_removed, delta.entries_added, e)
            for ip in old.bind:
                self.bind_refs[ip] -= 1
                if not self.bind_refs[ip]:
                    del self.bind_refs[ip]
                    _note(delta.bind_removed, delta.bind_added, ip)
        if new is not None:
            self.ports[key] = new
            if new.lb_no_node_access:
                self._no_node_access[key] = new.lb_no_node_access
            for v in new.virtual_servers:
                delta.vs_keys.add(v.key)
                self.vs[v.key] = v
                self._vs_owners.setdefault(v.key, {})[key] = v
            for e in new.entries:
                if not self.entry_refs[e]:
                    self.set_sizes[e[0]] += 1
                    _note(delta.entries_added, delta.entries_removed, e)
                self.entry_refs[e] += 1
            for ip in new.bind:
                if not self.bind_refs[ip]:
                    _note(delta.bind_added, delta.bind_removed, ip)
                self.bind_refs[ip] += 1
        return delta

    def entries(self, set_name: str) -> set[str]:
        return {e for (s, e) in self.entry_refs if s == set_name}

    def non_empty(self) -> dict[str, bool]:
        return {name: self.set_sizes[name] > 0 for name in SET_NAMES}

    def lb_no_node_access(self) -> list[tuple[str, str, int]]:
        return [x for k in sorted(self._no_node_access) for x in self._no_node_access[k]]
