"""Benchmark: the userspace proxy's sync, for the every-mode table of docs/benchmarks.md.

For N ClusterIP services x 5 endpoints (snapshot() of bench_iptables_sync), in a throwaway
namespace (minikp-bench-us-*), medians over --repeats:
- full sync: UserspaceProxier.sync on a fresh node: N proxy sockets opened (one listener per
  service port, as kube-proxy's userspace mode) and the KUBE-PORTALS rules restored;
- one-endpoint change: one endpoint of one service removed / added back (the round robin's
  list only: no socket, no rule changes).
Usage: python3 bench/bench_userspace_sync.py [--sizes 1000 10000] [--repeats 3] [--json FILE]
Needs root. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_iptables_sync import snapshot  # noqa: E402
from bench_ipvs_sync import Netns, changes  # noqa: E402
from minikp.proxy.userspace.proxier import UserspaceProxier  # noqa: E402


def bench(n: int, repeats: int) -> dict:
    snap = snapshot(n)
    _first, fewer = changes(snap)
    row = {"services": n, "endpoints": 5 * n, "runs": repeats}
    with Netns("us") as path:
        proxier = UserspaceProxier(path, "legacy")
        try:
            row["sync_full_s"] = proxier.sync(snap).duration_s
            partial = []
            for k in range(repeats):
                res = proxier.sync(fewer if k % 2 == 0 else snap)
                assert not res.full and not res.errors, res
                partial.append(res.duration_s)
            row["sync_partial_s"] = statistics.median(partial)
        finally:
            proxier.close()
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="write {rows} here")
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        rows.append(bench(n, args.repeats))
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
