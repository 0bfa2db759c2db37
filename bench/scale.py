"""Bring-up and teardown of N pods on minikp vs N hosts on Mininet, pair by pair.

Each run is one pair measured back to back on the same machine: `minikp up` of a
generated scenario (N serve_hostname pods in Deployments of 10 with a Service each, over
10 nodes; `up` returns once every pod answers and every node's rules are programmed),
`minikp down`, then Mininet building N hosts over 10 Linux-bridge switches
(bench/mininet_hosts.py) in a throwaway network namespace.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from common import MININET_PY, REPO, down_quietly, minikp, minikp_json, summary
from memory import cluster_memory
from scenarios import scale_scenario

MN_NETNS = "minikpbench-mn"  # Mininet's switches and links live here, not in the host's netns


def run_mininet(hosts, switches=10):
    """One Mininet run in its own namespace; returns mininet_hosts.py's JSON."""
    subprocess.run(["ip", "netns", "add", MN_NETNS], check=True)
    try:
        cp = subprocess.run(["ip", "netns", "exec", MN_NETNS, MININET_PY,
                             os.path.join(REPO, "bench", "mininet_hosts.py"),
                             "--hosts", str(hosts), "--switches", str(switches)],
                            text=True, capture_output=True, timeout=900)
        if cp.returncode != 0:
            raise RuntimeError(f"mininet run failed ({cp.returncode}):\n{cp.stderr[-3000:]}")
        return json.loads(cp.stdout.strip().splitlines()[-1])
    finally:
        # Anything left in the namespace was started by this Mininet run: end it by PID.
        left = subprocess.run(["ip", "netns", "pids", MN_NETNS], text=True,
                              capture_output=True).stdout.split()
        for pid in left:
            try:
                os.kill(int(pid), 9)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", MN_NETNS], check=False)


def run_minikp(pods, cluster, measure_memory=False, verify=False):
    """One minikp up/down of `pods` pods; memory and a pod count while it is up."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix=f"bench-{pods}-", delete=False) as f:
        f.write(scale_scenario(pods))
        path = f.name
    out = {}
    try:
        up_s, cp = minikp("up", path, "--name", cluster, timeout=900)
        out["up_s"] = up_s
        out["up_summary"] = cp.stdout.strip().splitlines()[-1] if cp.stdout.strip() else ""
        if verify:
            items = minikp_json("get", "pods", "-A", "--name", cluster)["items"]
            out["pods_seen"] = len(items)
            out["pods_with_ip"] = sum(1 for p in items if p.get("status", {}).get("podIP"))
        if measure_memory:
            out["memory"] = cluster_memory(cluster)
        down_s, _ = minikp("down", "--name", cluster, timeout=900)
        out["down_s"] = down_s
    finally:
        if "down_s" not in out:
            down_quietly(cluster)
        os.unlink(path)
    return out


def settle(hosts):
    """The kernel frees deleted namespaces and their links asynchronously, holding the rtnl
    lock that the next run's netlink calls need: measured, a run right after 1,000 hosts were
    deleted took ~70% longer. Wait it out so neither side pays for the other's teardown."""
    time.sleep(2 + hosts / 100)


def bench_lab(scenario="scenarios/hostnames.yaml", runs=7, log=print):
    """`minikp up` of a lab sheet's scenario, as a workshop attendee starts it: wall clock
    until up returns (every pod answers, every node's rules programmed), then down."""
    ups = []
    for i in range(runs):
        cluster = "benchlab"
        try:
            up_s, _ = minikp("up", os.path.join(REPO, scenario), "--name", cluster, timeout=300)
        finally:
            down_quietly(cluster)
        ups.append(up_s)
        log(f"  {scenario} run {i + 1}/{runs}: up {up_s:.2f}s")
        settle(10)
    return {"scenario": scenario, "up": summary(ups)}


def bench_scale(sizes_runs, log=print):
    """sizes_runs: [(pods, runs), ...] -> {pods: {...}} with per-run pairs and summaries."""
    results = {}
    for pods, runs in sizes_runs:
        pairs = []
        for i in range(runs):
            cluster = f"bench{pods}"
            mk = run_minikp(pods, cluster, measure_memory=(i == 0 and pods == max(p for p, _ in sizes_runs)),
                            verify=(i == 0))
            settle(pods)
            mn = run_mininet(pods)
            settle(pods)
            pair = {"minikp": mk, "mininet": mn,
                    "up_ratio": mn["up_s"] / mk["up_s"],
                    "down_ratio": mn["stop_s"] / mk["down_s"]}
            pairs.append(pair)
            log(f"  {pods:>5} pods run {i + 1}/{runs}: minikp up {mk['up_s']:.2f}s down {mk['down_s']:.2f}s"
                f" | mininet up {mn['up_s']:.2f}s stop {mn['stop_s']:.2f}s"
                f" | up {pair['up_ratio']:.1f}x down {pair['down_ratio']:.1f}x")
        results[pods] = {
            "pairs": pairs,
            "minikp_up": summary([p["minikp"]["up_s"] for p in pairs]),
            "minikp_down": summary([p["minikp"]["down_s"] for p in pairs]),
            "mininet_up": summary([p["mininet"]["up_s"] for p in pairs]),
            "mininet_stop": summary([p["mininet"]["stop_s"] for p in pairs]),
            "up_ratio": summary([p["up_ratio"] for p in pairs]),
            "down_ratio": summary([p["down_ratio"] for p in pairs]),
            "memory": next((p["minikp"]["memory"] for p in pairs if "memory" in p["minikp"]), None),
            "mininet_pss_mb": pairs[0]["mininet"].get("pss_mb"),
            "pods_seen": pairs[0]["minikp"].get("pods_seen"),
        }
    return results


if __name__ == "__main__":
    sizes = [(int(a.split(":")[0]), int(a.split(":")[1])) for a in sys.argv[1:]] or [(10, 1)]
    print(json.dumps(bench_scale(sizes), indent=1, default=str))
