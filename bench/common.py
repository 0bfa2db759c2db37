"""Shared pieces of the benchmarks: statistics, the minikp CLI as a timed subprocess,
process memory (PSS) and the machine description that heads the report."""

import json
import os
import platform
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.environ.get("PY", "python3")  # the interpreter minikp is installed for
MININET_PY = "/usr/bin/python3"  # Debian's, which the mininet package installs for


def summary(values):
    """median, min, max of a list of numbers (None for an empty list)."""
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values)}


def minikp(*args, check=True, timeout=600, capture=True):
    """Run `python3 -m minikp.cli ARGS`; return (seconds, CompletedProcess)."""
    argv = [PY, "-m", "minikp.cli", *args]
    t0 = time.perf_counter()
    cp = subprocess.run(argv, cwd=REPO, text=True, timeout=timeout,
                        stdout=subprocess.PIPE if capture else None,
                        stderr=subprocess.PIPE if capture else None)
    dt = time.perf_counter() - t0
    if check and cp.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {cp.returncode}:\n{cp.stdout or ''}{cp.stderr or ''}")
    return dt, cp


def minikp_json(*args):
    _, cp = minikp(*args, "-o", "json")
    return json.loads(cp.stdout)


def down_quietly(cluster):
    """Teardown for finally blocks: never raises, reports a failure on stderr."""
    try:
        minikp("down", "--name", cluster, timeout=300)
    except Exception as e:  # a failed teardown must not hide the benchmark's own error
        print(f"bench: minikp down --name {cluster} failed: {e}", file=sys.stderr)


def pss_kb(pid):
    """Proportional set size of one process in kB from smaps_rollup (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def parent_pid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def machine_info():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])

    def version(argv):
        try:
            return subprocess.run(argv, text=True, capture_output=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "not installed"

    return {"nproc": os.cpu_count(), "cpu": model, "memory_gib": round(mem_kb / 1024 / 1024, 1),
            "kernel": platform.release(), "python": platform.python_version(),
            "iptables": version(["iptables", "--version"]),
            "wrk": _wrk_version(),
            "mininet": version([MININET_PY, "-c", "import mininet.net as n; print(n.VERSION)"])}


def _wrk_version():
    # `wrk --version` prints its banner and exits 1; keep the first line.
    try:
        cp = subprocess.run(["wrk", "--version"], text=True, capture_output=True)
        return (cp.stdout or cp.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        return "not installed"


def write_section(doc: str, begin: str, end: str, section: str) -> None:
    """Put `section` (which starts with `begin` and ends with `end`) into the markdown file
    `doc` in place of the one between those markers, or append it where there is none."""
    text = open(doc).read() if os.path.exists(doc) else ""
    if begin in text and end in text:
        text = text[:text.index(begin)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(doc, "w") as f:
        f.write(text)
