"""Which iptables userspace a node's proxy drives: "legacy" (x_tables) or "nft" (nf_tables
through iptables-nft), the argv of each tool for it, and what the plain names (`iptables`,
`iptables-save`, ...) must lead to inside a node for it (`command_links`)."""

from __future__ import annotations

import functools
import shutil

from minikp.errors import OperationError

BACKENDS = ("legacy", "nft")
FAMILIES = ("iptables", "ip6tables")
TOOLS = ("", "save", "restore")


def binary(backend: str, tool: str = "", family: str = "iptables") -> str:
    """binary("nft", "restore") -> "iptables-nft-restore"; tool "" is plain iptables."""
    return f"{family}-{backend}" + (f"-{tool}" if tool else "")


def command_links(backend: str, which=shutil.which) -> dict[str, str]:
    """{"iptables": "/usr/sbin/iptables-legacy", "iptables-save": ..., "ip6tables": ...}: the
    installed tool each plain name stands for with `backend`. Blog posts type the plain
    names; the host's alternatives may point them at the other backend, whose view of the
    kernel is empty (and warns) where this one wrote the rules."""
    links = {}
    for family in FAMILIES:
        for tool in TOOLS:
            path = which(binary(backend, tool, family))
            if path:
                links[family + (f"-{tool}" if tool else "")] = path
    return links


def available(backend: str) -> bool:
    return all(shutil.which(binary(backend, t)) for t in ("", "restore", "save"))


@functools.cache  # the installed tools do not change while minikp runs: resolve once
def resolve_backend(requested: str) -> str:
    """"auto" -> "legacy" when its binaries exist, else "nft"; an explicit backend passes
    through if its binaries exist."""
    # Why auto prefers legacy (bench/bench_iptables_sync.py, docs/benchmarks-iptables.md, this
    # machine, medians): the same kube-proxy restore text of N services x 5 endpoints loads
    # in 0.12 s (legacy) vs 1.35 s (nft) at 1,000 services, and 2.8 s vs 456 s at 10,000:
    # iptables-nft-restore's cost grows far faster than linearly with the number of chains,
    # while x_tables swaps one table blob. Partial syncs cost 0.12 s vs 0.08 s at 1,000, so
    # nft's small edge there does not pay for its full syncs.
    if requested == "auto":
        for candidate in BACKENDS:
            if available(candidate):
                return candidate
        raise OperationError("iptables: neither iptables-legacy nor iptables-nft is installed")
    if requested not in BACKENDS:
        raise OperationError(f"iptables backend {requested!r}: expected auto, legacy or nft")
    if not available(requested):
        raise OperationError(f"iptables backend {requested!r}: {binary(requested, 'restore')} not found")
    return requested
