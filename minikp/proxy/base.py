"""The seam every proxy mode plugs into: the Proxier protocol, what a sync reports, and the
one factory that picks a mode's proxier.

A mode is a folder under minikp/proxy/ whose proxier class implements Proxier and has a
`from_config(netns_path, config)` classmethod; adding one is that folder plus one line in
MODES. Nothing else in minikp switches on the mode.

- new_proxier(mode, node_netns_path, config) -> Proxier. `config` is the cluster's
  ClusterConfig (or an object with the same attributes); each mode reads what it needs
  (iptables: iptables_backend, sync_period_s). Building a proxier changes nothing in the
  kernel: the first sync does. So a CLI may rebuild one from state.json just to read rules.
- Proxier.settings() is what state.json records so that new_proxier(mode, path,
  ClusterConfig(**settings)) rebuilds an equal proxier (resolved, e.g. "auto" -> "legacy").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Protocol

from minikp.errors import InputError
from minikp.proxy.paths import PortPath
from minikp.proxy.snapshot import ProxySnapshot

# mode -> "module:Class"; imported only when that mode is asked for.
MODES = {
    "iptables": "minikp.proxy.iptables.sync:IptablesProxier",
    "nftables": "minikp.proxy.nftables.sync:NftablesProxier",
    "ipvs": "minikp.proxy.ipvs.proxier:IpvsProxier",
    "userspace": "minikp.proxy.userspace.proxier:UserspaceProxier",
}

# One rule a traced packet crossed: (table, chain, rule text as the kernel tool prints it,
# packets it gained).
Hit = tuple[str, str, str, int]


@dataclass
class SyncResult:
    """What one sync did. Modes subclass it for their own extras (e.g. the restore input)."""

    full: bool
    duration_s: float
    changed: set[str]  # service keys whose rules were (re)written; every one on a full sync
    conntrack: list[list[str]] = field(default_factory=list)  # conntrack argv run
    conntrack_errors: list[str] = field(default_factory=list)


class Proxier(Protocol):
    """One node's proxy in one mode, driving the real kernel in the node's namespace."""

    formats: tuple[str, ...]  # what `minikp rules --format` offers; the first is the default

    def sync(self, snapshot: ProxySnapshot) -> SyncResult:
        """Make the kernel match `snapshot`. The proxier decides full vs partial (first
        sync, after a failure or after flushed() would say True: full)."""
        ...

    def flushed(self) -> bool:
        """True when its rules were removed behind its back (the supervisor then resyncs)."""
        ...

    def rules_text(self, table: str | None = None, fmt: str | None = None) -> str:
        """The rules as the kernel's own tool prints them (iptables: iptables-save)."""
        ...

    def counters(self) -> Any:
        """Per-rule packet counters now, opaque to callers; compare two with hits()."""
        ...

    def hits(self, before: Any, after: Any) -> list[Hit]:
        """Rules whose counters grew between two counters() readings, in the order a
        packet meets them: what `minikp trace` prints."""
        ...

    def service_paths(self, service: str) -> list[PortPath]:
        """The path new connections to `service` ("ns/name") take through this node, per
        service port, with the kernel's counters per endpoint: what `minikp tui` draws."""
        ...

    # Optional, for modes that can follow single packets (iptables-legacy: TRACE):
    # packet_trace(proto, *, sport=None, dport=None) -> a context manager, or None when it
    # cannot here; after its `with` block, .hits() lists the rules only the matching packets
    # (their original direction) met, in order. `minikp trace` falls back to counters().

    def shell_commands(self) -> dict[str, str]:
        """What plain command names must run inside the node, as {name: installed tool}
        (iptables modes: `iptables*` -> the backend the proxy writes with), so that the
        posts' commands in `minikp exec node/...` see these rules; {}: the host's."""
        ...

    def describe(self) -> str:
        """A short human name, e.g. "iptables (legacy)": `up`'s summary, state.json."""
        ...

    def settings(self) -> dict[str, Any]:
        """ClusterConfig attributes that rebuild this proxier (see the module docstring)."""
        ...

    def close(self) -> None:
        """Release what the proxier holds besides kernel rules (threads, sockets); the
        supervisor calls it on shutdown, before the node's namespace goes."""
        ...


def _proxier_class(mode: str):
    """The only place that switches on the proxy mode."""
    target = MODES.get(mode)
    if target is None:
        raise InputError(f'"{mode}" is not implemented; available: ' + ", ".join(sorted(MODES)),
                         field="proxy mode")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def new_proxier(mode: str, node_netns_path: str, config) -> Proxier:
    return _proxier_class(mode).from_config(node_netns_path, config)


def kernel_gaps(mode: str, node_netns_path: str, config=None) -> list[str]:
    """What this kernel lacks for `mode`, probed in a namespace ([] = nothing): `up` refuses
    with them (exit 1), `doctor` lists them. A mode whose class has no kernel_gaps needs
    nothing beyond what `doctor` checks for every mode. `config` None: every option."""
    gaps = getattr(_proxier_class(mode), "kernel_gaps", None)
    return gaps(node_netns_path, config) if gaps else []


def housekeeping(proxier: Proxier) -> None:
    """A mode's periodic work between syncs, where it has any (ipvs: real servers whose
    connections drained leave, as kube-proxy's graceful termination does)."""
    work = getattr(proxier, "housekeeping", None)
    if work is not None:
        work()
