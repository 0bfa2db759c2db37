"""`make soak`: the long run of the reliability tier's crash cycles (as root).

    python3 tests/soak.py [--cycles 100] [--races 20] [--doc docs/reliability.md]

Runs CYCLES crash cycles (up through the CLI, SIGKILL the supervisor by its PID, down, count
leftovers: namespaces, mounts, processes, the supervisor, state files), compares the host's
links, addresses, routes, rules and firewall before and after, runs RACES `down`-racing-`up`
tries, and writes the figures to the doc's "## Crash cycles" section (other sections, such as
churn figures, are kept). Exit 1 if anything was left or changed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import os
import platform
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernel"))

from crashcycle import (ROOT, SCENARIO, big_scenario, cli, crash_cycle, host_view,  # noqa: E402
                        race_once)

HEADING = "## Crash cycles"
KERNEL_TESTS_LOCK = "/run/minikp-kernel-tests.lock"  # take turns with kernel test runs


def replace_section(doc: str, heading: str, body: str) -> str:
    """`doc` with the section under `heading` (up to the next `## `) replaced by body, or
    body appended as a new section."""
    lines = doc.splitlines()
    if heading not in lines:
        head = doc.rstrip("\n") + "\n\n" if doc.strip() else "# Reliability\n\n"
        return head + heading + "\n\n" + body.rstrip("\n") + "\n"
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "\n".join(lines[end:])
    return "\n".join(lines[:start + 1]) + "\n\n" + body.rstrip("\n") + "\n" + \
        ("\n" + tail + "\n" if tail else "")


def soak(cycles: int, races: int, workdir: str) -> tuple[str, bool]:
    scenario = os.path.join(workdir, "scenario.yaml")
    with open(scenario, "w") as f:
        f.write(SCENARIO)
    name = "mkt-soak"
    cli("down", "--name", name)
    before = host_view()
    times, left = [], {}
    for i in range(cycles):
        seconds, census = crash_cycle(name, scenario)
        times.append(seconds)
        for kind, items in census.items():
            left[kind] = left.get(kind, 0) + len(items)
        if any(census.values()):
            print(f"cycle {i + 1}: left {census}", flush=True)
        if (i + 1) % 10 == 0:
            print(f"{i + 1}/{cycles} cycles, {statistics.mean(times):.2f} s each", flush=True)
    host_same = host_view() == before

    big = os.path.join(workdir, "big.yaml")
    with open(big, "w") as f:
        f.write(big_scenario(120))
    outcomes: dict[str, int] = {}
    race_failures = 0
    for i in range(races):
        delay = (0.05, 0.2, 0.5, 1.0)[i % 4]
        try:
            o = race_once(big, "mkt-soak-race", lambda: time.sleep(delay))
        except AssertionError as e:
            o, race_failures = "failed", race_failures + 1
            print(f"race {i + 1}: {e}", flush=True)
        outcomes[o] = outcomes.get(o, 0) + 1
    cli("down", "--name", "mkt-soak-race")

    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    leftovers = sum(left.values())
    ok = leftovers == 0 and host_same and race_failures == 0
    body = f"""Measured by `make soak` (tests/soak.py) on {dt.date.today()}, kernel
{platform.release()}, {os.cpu_count()} CPUs. Each cycle: `minikp up` of a 2-node scenario
(4 built-in web pods, a `sleep` command pod, 2 DNS pods with dnsmasq, a client), SIGKILL of
the supervisor by its PID (its pods' processes are orphaned, its namespaces stay), then
`minikp down`, then a census of what is left of the cluster.

| figure | value |
|---|---|
| crash cycles | {cycles} |
| leftovers found (namespaces, mounts, processes, supervisors, state dirs) | {leftovers} ({", ".join(f"{k} {v}" for k, v in left.items())}) |
| host links, addresses, routes, rules, iptables (legacy and nft) | {"unchanged" if host_same else "CHANGED"} |
| time per cycle (up + kill + down): mean / median / p95 / max | {statistics.mean(times):.2f} / {statistics.median(times):.2f} / {p95:.2f} / {max(times):.2f} s |
| `down` racing `up` (122 pods; down after 0.05-1 s) | {races} tries: {", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))} |

Race outcomes: "stopped" = `down` stopped the `up` halfway (the up exits 1 saying so),
"waited" = the up had finished and `down` removed the cluster, "before" = `down` ran before
the `up` held the cluster lock ("not found"), "failed" = anything else, e.g. `down` said
deleted and the cluster was there, or the `up` failed without saying it was stopped (must be
0). The reliability tier (tests/kernel/test_reliability_names.py) runs
the same cycle 10 times in `make test`.
"""
    return body, ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--races", type=int, default=20)
    ap.add_argument("--doc", default=os.path.join(ROOT, "docs", "reliability.md"))
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("soak: needs root (network namespaces)", file=sys.stderr)
        return 1
    with open(KERNEL_TESTS_LOCK, "w") as lock, tempfile.TemporaryDirectory() as workdir:
        fcntl.flock(lock, fcntl.LOCK_EX)
        body, ok = soak(a.cycles, a.races, workdir)
    doc = open(a.doc).read() if os.path.exists(a.doc) else ""
    with open(a.doc, "w") as f:
        f.write(replace_section(doc, HEADING, body))
    print(body)
    print(f"written to {a.doc}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
