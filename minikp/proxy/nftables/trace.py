"""`minikp trace` for nftables mode. kube-proxy's nft rules carry no counters, so a trace
marks packets instead: a table of minikp's own (`ip minikp-trace`, base chains at priority
-400 on prerouting and output) sets `meta nftrace`, and `nft monitor trace`, run inside the
node's namespace, reports every kube-proxy rule a marked packet matched.

- Tracer(netns_path).mark() -> lines seen so far (starts tracing on first use);
  .hits(before, after) -> the kube-proxy rules traced in between; .stop() ends it all.
- parse_hits(lines): pure, for `nft monitor trace` output.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import tempfile
import time

from minikp.nsenter import popen_in, run_in

TRACE_TABLE = "minikp-trace"
SETUP = f"""add table ip {TRACE_TABLE}
add chain ip {TRACE_TABLE} prerouting {{ type filter hook prerouting priority -400 ; }}
add chain ip {TRACE_TABLE} output {{ type filter hook output priority -400 ; }}
add rule ip {TRACE_TABLE} prerouting meta nftrace set 1
add rule ip {TRACE_TABLE} output meta nftrace set 1
"""
SETTLE_S = 0.3  # how long the monitor's output must stay unchanged before we read it


def parse_hits(lines: list[str]) -> list[tuple[str, str, str, int]]:
    """`trace id ID ip kube-proxy CHAIN rule RULE (verdict V)` lines -> (table, chain, rule,
    packets), first-met order; packets = distinct trace ids that matched the rule."""
    seen: dict[tuple[str, str], set[str]] = {}
    for line in lines:
        words = line.split()
        if len(words) < 8 or words[0] != "trace" or words[3:5] != ["ip", "kube-proxy"] or words[6] != "rule":
            continue
        rule = line.split(" rule ", 1)[1].rsplit(" (verdict ", 1)[0].strip()
        seen.setdefault((words[5], rule), set()).add(words[2])
    return [("kube-proxy", chain, rule, len(ids)) for (chain, rule), ids in seen.items()]


class Tracer:
    def __init__(self, netns_path: str) -> None:
        self.netns_path = netns_path
        self._proc: subprocess.Popen | None = None
        self._out: str | None = None

    def _lines(self) -> list[str]:
        with open(self._out) as f:
            return f.read().splitlines()

    def mark(self) -> int:
        if self._proc is None:
            fd, self._out = tempfile.mkstemp(prefix="minikp-nft-trace-")
            os.close(fd)
            with open(self._out, "w") as out:
                self._proc = popen_in(self.netns_path, ["nft", "monitor", "trace"], stdout=out,
                                      stderr=subprocess.DEVNULL)
            atexit.register(self.stop)  # a caller that dies mid-trace leaves no monitor behind
            time.sleep(SETTLE_S)  # the monitor subscribes before any packet is marked
            run_in(self.netns_path, ["nft", "-f", "-"], input=SETUP, check=True)
            return len(self._lines())
        n, deadline = len(self._lines()), time.monotonic() + 3.0
        while time.monotonic() < deadline:  # wait until the monitor has written everything
            time.sleep(SETTLE_S)
            m = len(self._lines())
            if m == n:
                break
            n = m
        return n

    def hits(self, before: int, after: int):
        return parse_hits(self._lines()[before:after]) if self._out else []

    def stop(self) -> None:
        if self._proc is not None:
            run_in(self.netns_path, ["nft", "delete", "table", "ip", TRACE_TABLE])
            self._proc.terminate()
            self._proc.wait(timeout=5)
            self._proc = None
        if self._out:
            os.unlink(self._out)
            self._out = None
