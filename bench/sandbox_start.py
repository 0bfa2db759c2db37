"""What the pod sandbox costs: starting a command pod's process sandboxed (overlay root, PID,
mount, UTS, IPC namespaces, Docker's capabilities; minikp/workloads/sandbox.py) against the
way it started before (setns into the pod's network namespace, a private mount + UTS
namespace with resolv.conf and the hostname: nsenter.popen_in), and `exec` into a running
sandbox. Root; one throwaway network namespace (minikpbench-sbx).

    python3 bench/sandbox_start.py [--runs 50] [--alive 200] [--doc docs/benchmarks.md]

Prints JSON; with --doc, writes its section into that file (between its markers, so that
run_all.py's rewrite of the rest does not matter: bench.sh runs this after it).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import write_section  # noqa: E402  (bench/ is the script's own folder)

from minikp import nsenter  # noqa: E402
from minikp.workloads import sandbox  # noqa: E402

NETNS = "minikpbench-sbx"
BEGIN, END = "<!-- sandbox-start: begin -->", "<!-- sandbox-start: end -->"


def stats(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "runs": len(xs)}


def timed_runs(start, runs):
    """ms from the call to the process's exit, for `true` (start + exec + teardown)."""
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        p = start(["true"])
        assert p.wait() == 0
        out.append((time.perf_counter() - t) * 1000)
    return stats(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--alive", type=int, default=200)
    ap.add_argument("--doc")
    a = ap.parse_args()
    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    path = f"/run/netns/{NETNS}"
    tmp = tempfile.mkdtemp(prefix="minikp-bench-sbx-")
    resolv = os.path.join(tmp, "resolv.conf")
    with open(resolv, "w") as f:
        f.write("nameserver 10.96.0.10\n")
    sb = sandbox.default_sandbox(path, "bench-pod", resolv, "10.244.1.2")
    try:
        before = timed_runs(lambda argv: nsenter.popen_in(path, argv, hostname="bench-pod",
                                                          resolv_conf=resolv,
                                                          env=dict(os.environ)), a.runs)
        sandboxed = timed_runs(lambda argv: sandbox.start(sb, argv), a.runs)
        holder = sandbox.start(sb, ["sleep", "600"])
        time.sleep(0.1)
        joined = timed_runs(lambda argv: sandbox.join(holder.pid, argv), a.runs)
        holder.kill()
        holder.wait()
        t = time.perf_counter()
        procs = [sandbox.start(sb, ["sleep", "600"]) for _ in range(a.alive)]
        alive_up = time.perf_counter() - t
        t = time.perf_counter()
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
        alive_down = time.perf_counter() - t
    finally:
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)
    res = {"before_ms": before, "sandboxed_ms": sandboxed, "exec_ms": joined, "alive": a.alive,
           "alive_start_s": alive_up, "alive_kill_s": alive_down}
    print(json.dumps(res))
    if a.doc:
        write_doc(a.doc, res)


def fmt(s):
    return f"{s['median']:.1f} ({s['min']:.1f}–{s['max']:.1f})"


def write_doc(doc, r):
    n = r["alive"]
    section = f"""{BEGIN}
## Pod sandbox: start cost

`bench/sandbox_start.py`: a command started {r['sandboxed_ms']['runs']} times one after the
other in one pod network namespace, from the call to the process's exit (`true`: start, exec,
exit and the kernel's teardown of its namespaces), ms, median (min–max). *Before*: how command
pods started until the sandbox (setns into the pod's network namespace, a private mount + UTS
namespace for resolv.conf and the hostname). *Sandboxed*: the pod sandbox (overlay root on a
tmpfs layer, fresh proc/sys/dev, private /tmp /run, PID + mount + UTS + IPC namespaces, Docker's
capabilities, no_new_privs). *exec*: `minikp exec` into a running sandbox (joins its five
namespaces and credentials).

| start | ms |
|---|---:|
| before (no sandbox) | {fmt(r['before_ms'])} |
| sandboxed | {fmt(r['sandboxed_ms'])} |
| exec into a running sandbox | {fmt(r['exec_ms'])} |

{n} sandboxed `sleep` pods started one after the other in {r['alive_start_s']:.2f} s
({r['alive_start_s'] / n * 1000:.1f} ms each) and all SIGKILLed (their mounts freed by the
kernel) in {r['alive_kill_s']:.2f} s.
{END}"""
    write_section(doc, BEGIN, END, section)


if __name__ == "__main__":
    main()
