"""`make soak`, churn part: minutes of churn under load (as root).

    python3 tests/soak_churn.py [--minutes 3] [--doc docs/reliability.md]

Brings up the churn scenario of the reliability tier (tests/kernel/churn.py), keeps a
client sending requests through the web Service's ClusterIP, and runs churn rounds (delete
pods, scale up and down, change the Service's ports, roll out a new template) for MINUTES;
then writes the figures to the doc's "## Churn under load" section (other sections are
kept). Exit 1 if any request failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import os
import platform
import sys
import pathlib
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "kernel"))

from churn import SCENARIO, Load, churn_round, service, web  # noqa: E402
from conftest import Cluster, minikp  # noqa: E402
from soak import replace_section  # noqa: E402  (tests/soak.py: the crash cycles' part)

HEADING = "## Churn under load"
NAME = "mkt-soak-churn"
KERNEL_TESTS_LOCK = "/run/minikp-kernel-tests.lock"  # take turns with kernel test runs


def soak(minutes: float, workdir: str) -> tuple[str, bool]:
    path = os.path.join(workdir, "churn.yaml")
    with open(path, "w") as f:
        f.write(SCENARIO + web() + "---" + service())
    minikp("down", "--name", NAME, check=False)
    minikp("up", path, "--name", NAME)
    c = Cluster(NAME, path)
    rounds, t0 = 0, time.monotonic()
    try:
        ip = c.svc("web")["spec"]["clusterIP"]
        with Load(c, f"http://{ip}/") as load:
            while time.monotonic() - t0 < minutes * 60:
                churn_round(c, pathlib.Path(workdir), rounds)
                rounds += 1
                print(f"round {rounds}: {len(load.results)} requests, "
                      f"{len(load.failed())} failed", flush=True)
    finally:
        minikp("down", "--name", NAME, check=False)
    elapsed = time.monotonic() - t0
    failed = load.failed()
    body = f"""Measured by `make soak` (tests/soak_churn.py) on {dt.date.today()}, kernel
{platform.release()}, {os.cpu_count()} CPUs. A 2-node cluster with a 3-replica Deployment
behind a ClusterIP Service; a client sends HTTP requests through the ClusterIP all the time
(three threads of probe processes, 100 requests each, 2 ms apart) while churn rounds run
back to back. Each round: delete a pod, scale to 5, delete a pod, scale to 2, add (or take
away) a Service port, roll out a new template (RollingUpdate, default 25%/25%), scale to 3.

| figure | value |
|---|---|
| minutes of churn | {elapsed / 60:.1f} |
| churn rounds | {rounds} |
| requests sent | {len(load.results)} |
| failed requests | {len(failed)} |

The reliability tier (tests/kernel/test_reliability_churn.py) runs one round in `make test`.
"""
    if failed:
        body += "\nFirst failures: " + "; ".join(str(r) for r in failed[:3]) + "\n"
    return body, not failed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--doc", default=os.path.join(os.path.dirname(HERE), "docs", "reliability.md"))
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("soak: needs root (network namespaces)", file=sys.stderr)
        return 1
    with open(KERNEL_TESTS_LOCK, "w") as lock, tempfile.TemporaryDirectory() as workdir:
        fcntl.flock(lock, fcntl.LOCK_EX)
        body, ok = soak(a.minutes, workdir)
    doc = open(a.doc).read() if os.path.exists(a.doc) else ""
    with open(a.doc, "w") as f:
        f.write(replace_section(doc, HEADING, body))
    print(body)
    print(f"written to {a.doc}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
