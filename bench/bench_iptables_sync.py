"""Benchmark: how long the embedded iptables proxy takes to program a node.

For 1,000 and 10,000 services x 5 endpoints (ClusterIP, TCP), on both backends, in
throwaway namespaces (minikp-bench-ipt-*), medians over --repeats runs:
- render: minikp building the full restore text, cold caches (pure Python);
- bare restore: `iptables-<backend>-restore --noflush --counters` of that text into a fresh
  netns: the floor any proxy writing this ruleset pays;
- full sync: IptablesProxier.sync on a fresh netns (render + canary chains + jump rules via
  -C/-I + nfacct counters + `iptables-save -t nat` + one restore);
- partial sync: one endpoint of one service removed/added back on the programmed node.
A configuration whose bare restore exceeds --cap seconds is reported as "> cap" and skipped.

Usage: python3 bench/bench_iptables_sync.py [--out docs/benchmarks-iptables.md]
       [--sizes 1000,10000] [--repeats 5] [--cap 300]
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import replace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minikp import KUBE_PROXY_VERSION  # noqa: E402
from minikp.nsenter import run_in  # noqa: E402
from minikp.proxy.iptables import names, render as rd  # noqa: E402
from minikp.proxy.iptables.sync import IptablesProxier  # noqa: E402
from minikp.proxy.snapshot import Endpoint, ProxySnapshot, ServicePortInfo  # noqa: E402


def snapshot(n: int, eps: int = 5) -> ProxySnapshot:
    svcs = []
    for i in range(n):
        endpoints = tuple(Endpoint(f"10.{100 + (i * eps + j) // 65536}.{((i * eps + j) // 256) % 256}."
                                   f"{(i * eps + j) % 256}", 8080, node=f"n{j}") for j in range(eps))
        svcs.append(ServicePortInfo(f"ns{i % 50}", f"svc{i}", "http", "TCP",
                                    f"172.{16 + i // 65536}.{(i // 256) % 256}.{i % 256}", 80,
                                    endpoints=endpoints))
    return ProxySnapshot("n0", "192.168.0.2", "10.0.0.0/8", tuple(svcs))


class Netns:
    def __init__(self):
        self.name = f"minikp-bench-ipt-{uuid.uuid4().hex[:8]}"
        self.path = f"/run/netns/{self.name}"

    def __enter__(self):
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        return self.path

    def __exit__(self, *exc):
        subprocess.run(["ip", "netns", "del", self.name], check=False)


def cold() -> None:
    rd.plan.cache_clear()
    names._hash.cache_clear()


def median(xs):
    return statistics.median(xs) if xs else None


def bench(n: int, backend: str, repeats: int, cap: float) -> dict:
    snap = snapshot(n)
    row = {"services": n, "backend": backend, "runs": repeats}
    renders = []
    for _ in range(repeats):
        cold()
        t = time.monotonic()
        text = rd.render(snap)
        renders.append(time.monotonic() - t)
    row["render_s"], row["lines"] = median(renders), text.count("\n")
    bare = []
    for _ in range(repeats):
        with Netns() as path:
            argv = [f"iptables-{backend}-restore", "--noflush", "--counters"]
            t = time.monotonic()
            try:
                run_in(path, argv, input=text, timeout=cap, check=True)
            except subprocess.TimeoutExpired:
                row["capped"] = True
                break
            bare.append(time.monotonic() - t)
    row["bare_restore_s"] = median(bare)
    if row.get("capped"):
        row["runs"] = 1
        return row
    fulls, partials = [], []
    first = snap.services[0]
    fewer = replace(snap, services=(replace(first, endpoints=first.endpoints[1:]),) + snap.services[1:])
    for i in range(repeats):
        with Netns() as path:
            cold()
            proxier = IptablesProxier(path, backend)
            fulls.append(proxier.sync(snap).duration_s)
            if i == repeats - 1:  # partial syncs on the last programmed node
                for k in range(repeats):
                    res = proxier.sync(fewer if k % 2 == 0 else snap)
                    assert not res.full and res.changed == {first.service_key}
                    partials.append(res.duration_s)
                    row["partial_lines"] = res.lines
    row["sync_full_s"], row["sync_partial_s"] = median(fulls), median(partials)
    return row


def fmt(v, row, cap, step="bare"):
    if v is None:
        if not row.get("capped"):
            return "—"
        return f"> {cap:.0f} (cap)" if step == "bare" else "not run"
    return f"{v:.3f}" if v < 1 else f"{v:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/benchmarks-iptables.md")
    ap.add_argument("--cap", type=float, default=300.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--note", action="append", default=[], help="extra line for the report")
    ap.add_argument("--json", help="also write the rows here (make bench reads them for its goals)")
    args = ap.parse_args()
    rows = []
    for n in [int(x) for x in args.sizes.split(",")]:
        for backend in ("legacy", "nft"):
            row = bench(n, backend, args.repeats, args.cap)
            print(row, flush=True)
            rows.append(row)
    lines = [
        "# iptables proxy sync benchmark",
        "",
        f"`bench/bench_iptables_sync.py`: kube-proxy {KUBE_PROXY_VERSION} rules for N services x 5",
        f"endpoints (ClusterIP, TCP) in one node namespace; kernel {os.uname().release},",
        f"iptables 1.8.9. Seconds, median of the runs shown (each kernel step capped at {args.cap:.0f} s).",
        "",
        "* render: minikp building the full restore text, cold caches (pure Python).",
        "* bare restore: `iptables-<backend>-restore --noflush --counters` of that text into a fresh",
        "  netns: the floor for any proxy that writes this ruleset.",
        "* full sync: IptablesProxier.sync on a fresh netns: render + nfacct counters + one",
        "  `iptables-save` (no KUBE chain yet: canaries and jump rules in one restore) +",
        "  `iptables-save -t nat` (stale chains) + the restore.",
        "* partial sync: one endpoint of one service removed or added back on the programmed node:",
        "  only that service's chains plus the top-level chains are written, as kube-proxy does;",
        "  above 1,000 endpoints (large-cluster mode) the stale-chain `iptables-save` runs at most",
        "  once per syncPeriod (30 s).",
        "",
        "| services | backend | runs | restore lines | render | bare restore | full sync | partial sync (lines) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        partial = fmt(r.get("sync_partial_s"), r, args.cap, "sync")
        if r.get("partial_lines"):
            partial += f" ({r['partial_lines']})"
        lines.append(f"| {r['services']} | {r['backend']} | {r['runs']} | {r['lines']} | "
                     f"{fmt(r['render_s'], r, args.cap)} | {fmt(r['bare_restore_s'], r, args.cap)} | "
                     f"{fmt(r.get('sync_full_s'), r, args.cap, 'sync')} | {partial} |")
    for note in args.note:
        lines += ["", note]
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cap_s": args.cap, "rows": rows}, f, indent=1)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
