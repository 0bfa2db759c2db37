"""Which services changed between two snapshots: the unit of every mode's partial sync
(kube-proxy's serviceUpdateResult.UpdatedServices ∪ endpointUpdateResult.UpdatedServices).
Pure."""

from __future__ import annotations

from minikp.proxy.snapshot import ProxySnapshot, ServicePortInfo


def by_service(snapshot: ProxySnapshot) -> dict[str, frozenset[ServicePortInfo]]:
    out: dict[str, set[ServicePortInfo]] = {}
    for sp in snapshot.services:
        out.setdefault(sp.service_key, set()).add(sp)
    return {k: frozenset(v) for k, v in out.items()}


def changed_services(prev: dict[str, frozenset], cur: dict[str, frozenset]) -> set[str]:
    """Service keys added, removed or with any port/endpoint difference."""
    return {k for k in prev.keys() | cur.keys() if prev.get(k) != cur.get(k)}


def services_to_write(prev: ProxySnapshot | None, cur: ProxySnapshot, full: bool) -> set[str]:
    """Every service of both snapshots on a full sync, else only the changed ones."""
    if full or prev is None:  # keys only: no hashing of every port and its endpoints
        return {sp.service_key for snap in (prev, cur) if snap for sp in snap.services}
    return changed_services(by_service(prev), by_service(cur))
