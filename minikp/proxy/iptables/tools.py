"""Running iptables' own tools inside a node's namespace: any argv (raising on failure) and
iptables-save, the kernel's word on what is programmed (rules, and per-rule counters)."""

from __future__ import annotations

from minikp.errors import OperationError
from minikp.nsenter import run_in
from minikp.proxy.iptables.backend import binary


def run(netns_path: str, argv: list[str], input: str | None = None, check: bool = True):
    res = run_in(netns_path, argv, input=input)
    if check and res.returncode != 0:
        raise OperationError(f"{' '.join(argv[:6])}: exit {res.returncode}: {res.stderr.strip()[:2000]}")
    return res


def save(netns_path: str, backend: str, table: str | None = None, counters: bool = False) -> str:
    """The kernel's own iptables-save output, from inside the namespace."""
    argv = [binary(backend, "save")] + (["-c"] if counters else []) + (["-t", table] if table else [])
    return run(netns_path, argv).stdout
