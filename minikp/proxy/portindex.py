"""The last applied service ports by key, and which of them a new snapshot changed, found
without a Python-level pass over all of them (pure).

Why: at 10,000 service ports even one comparison per port costs milliseconds of Python (and
~30x that in the VM tier), more than the kernel work of a one-endpoint change. A snapshot
producer that hands over the same ServicePortInfo objects for unchanged ports (the proxy
snapshot is immutable: reuse is free) lets the index find the changed ones in C: halving
with tuple comparisons (which pass identical items without a Python call), or a set
difference of ids when ports came or went; only those are then compared by value. A producer that rebuilds every object still gets the right
answer, at one comparison per port.

PortIndex(key).reset(services) on a full sync, .update(services) on a partial one; both
return [(key, old, new)] for each port that differs (old/new None: added/removed). Keys are
unique within a snapshot (kube-proxy's ServicePortName + protocol).
"""

from __future__ import annotations

import operator
from itertools import compress
from typing import Callable, Hashable

from minikp.proxy.snapshot import ServicePortInfo

Change = tuple[Hashable, "ServicePortInfo | None", "ServicePortInfo | None"]


_LEAF = 16


def _differing(prev: tuple, cur: tuple) -> list[int]:
    """The positions where two tuples of the same length hold different objects. Where the
    objects are shared, by halving: a tuple's == runs in C and passes identical items
    without calling their __eq__, so an unchanged half costs a few microseconds; where
    they were rebuilt (a sample differs), one pass of `is not`."""
    n = len(cur)
    if n and any(prev[i] is not cur[i] for i in (0, n // 3, n // 2, 2 * n // 3, n - 1)):
        return list(compress(range(n), map(operator.is_not, prev, cur)))
    out: list[int] = []
    todo = [(0, n)]
    while todo:
        lo, hi = todo.pop()
        if hi - lo <= _LEAF:
            out += [i for i in range(lo, hi) if prev[i] is not cur[i]]
        elif prev[lo:hi] != cur[lo:hi]:
            mid = (lo + hi) // 2
            todo += [(mid, hi), (lo, mid)]
    return out


class PortIndex:
    def __init__(self, key: Callable[[ServicePortInfo], Hashable]) -> None:
        self.key = key
        self.ports: dict[Hashable, ServicePortInfo] = {}
        self._services: tuple[ServicePortInfo, ...] = ()  # kept alive: their ids stay unique

    def reset(self, services: tuple[ServicePortInfo, ...]) -> list[Change]:
        """Index every port anew: each of the old and new ones counts as changed."""
        old = self.ports
        self.ports = {self.key(sp): sp for sp in services}
        self._services = services
        return [(k, old.get(k), self.ports.get(k)) for k in old.keys() | self.ports.keys()]

    def _by_key(self, services: tuple[ServicePortInfo, ...]) -> list[Change]:
        old, self.ports = self.ports, {self.key(sp): sp for sp in services}
        out = []
        for k in old.keys() | self.ports.keys():
            was, new = old.get(k), self.ports.get(k)
            if was is not new and was != new:
                out.append((k, was, new))
        return out

    def update(self, services: tuple[ServicePortInfo, ...]) -> list[Change]:
        prev = self._services
        if services is prev:
            return []
        if len(services) == len(prev):  # in place (the usual endpoint change): by position
            at = _differing(prev, services)
            gone, came = [prev[i] for i in at], [services[i] for i in at]
        else:
            before, now = dict(zip(map(id, prev), prev)), dict(zip(map(id, services), services))
            gone = [before[i] for i in before.keys() - now.keys()]
            came = [now[i] for i in now.keys() - before.keys()]
        self._services = services
        if len(came) > len(services) // 2:  # mostly rebuilt objects: one pass by key is cheaper
            return self._by_key(services)
        was: dict[Hashable, ServicePortInfo | None] = {}
        for sp in gone:
            k = self.key(sp)
            if self.ports.get(k) is sp:
                was.setdefault(k, sp)
                del self.ports[k]
        for sp in came:
            k = self.key(sp)
            was.setdefault(k, self.ports.get(k))
            self.ports[k] = sp
        out = []
        for k, old in was.items():
            new = self.ports.get(k)
            if old is not new and old != new:
                out.append((k, old, new))
        return out
