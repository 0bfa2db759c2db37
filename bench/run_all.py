"""Runs the minikp benchmarks and writes docs/benchmarks.md (+ bench/results.json).

    python3 bench/run_all.py                      # the full set (about 40 minutes on 2 CPUs)
    python3 bench/run_all.py --sizes 10:1 100:1 --datapath-seconds 2   # a quick smoke run
    python3 bench/run_all.py --render-only        # re-render the doc and figures from results.json
    python3 bench/run_all.py --keep --skip-scale ...   # measure some parts, keep the others stored
Needs root, Mininet (Debian package), wrk, matplotlib; scripts/bench.sh and setup.sh install them.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout's minikp

from common import PY, REPO, machine_info  # noqa: E402
from report import read_optional, render  # noqa: E402

RESULTS = os.path.join(REPO, "bench", "results.json")
DOC = os.path.join(REPO, "docs", "benchmarks.md")
NOTES = os.path.join(REPO, "bench", "notes.md")  # hand-written analysis, copied into the doc
IPTABLES_DOC = os.path.join(REPO, "docs", "benchmarks-iptables.md")
NFTABLES_DOC = os.path.join(REPO, "docs", "benchmarks-nftables.md")
IPVS_DOC = os.path.join(REPO, "docs", "benchmarks-ipvs.md")
FIGURES = os.path.join(REPO, "docs", "figures")
DATAPATH_MODES = ("iptables", "nftables", "userspace")  # ipvs: no IPVS in this kernel


def fabric_floor(pods):
    cp = subprocess.run([PY, os.path.join(REPO, "bench", "fabric_floor.py"), str(pods)],
                        cwd=REPO, text=True, capture_output=True, timeout=600)
    if cp.returncode != 0:
        raise RuntimeError(f"fabric_floor.py {pods} failed:\n{cp.stderr[-3000:]}")
    return json.loads(cp.stdout.strip().splitlines()[-1])


def proxy_sync(cap):
    """bench_iptables_sync.py writes docs/benchmarks-iptables.md; its rows feed the goals."""
    out = os.path.join(tempfile.mkdtemp(prefix="minikp-bench-"), "sync.json")
    note = ("Why `iptablesBackend: auto` picks legacy: the same restore text loads much faster "
            "through iptables-legacy-restore (x_tables swaps one table blob) than through "
            "iptables-nft-restore, whose cost grows much faster than linearly with the number of "
            "chains (a separate single run of the 10,000-service text took 456 s with nft). At "
            "10,000 services a partial sync with legacy still re-writes the whole nat table blob: "
            "the x_tables floor, which kube-proxy pays too.")
    subprocess.run([PY, os.path.join(REPO, "bench", "bench_iptables_sync.py"), "--cap", str(cap),
                    "--repeats", "3", "--out", IPTABLES_DOC, "--json", out, "--note", note],
                   cwd=REPO, check=True, timeout=3600)
    with open(out) as f:
        return json.load(f)


def nftables_sync(repeats=3):
    """bench_nftables_sync.py writes docs/benchmarks-nftables.md (copied into the report)."""
    out = os.path.join(tempfile.mkdtemp(prefix="minikp-bench-"), "nft-sync.json")
    subprocess.run([PY, os.path.join(REPO, "bench", "bench_nftables_sync.py"), "--repeats", str(repeats),
                    "--out", NFTABLES_DOC, "--json", out], cwd=REPO, check=True, timeout=3600)
    with open(out) as f:
        return json.load(f)


def json_of(script, *args, timeout=3600):
    """Run bench/SCRIPT with --json FILE; what it wrote."""
    out = os.path.join(tempfile.mkdtemp(prefix="minikp-bench-"), "out.json")
    subprocess.run([PY, os.path.join(REPO, "bench", script), *args, "--json", out], cwd=REPO, check=True,
                   timeout=timeout)
    with open(out) as f:
        return json.load(f)


def log(msg):
    print(msg, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="*", default=["10:5", "100:5", "200:5", "1000:3"],
                    help="PODS:RUNS pairs (default: 10:5 100:5 200:5 1000:3)")
    ap.add_argument("--datapath-seconds", type=int, default=5)
    ap.add_argument("--datapath-rounds", type=int, default=3)
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--skip-datapath", action="store_true")
    ap.add_argument("--skip-userspace", action="store_true")
    ap.add_argument("--skip-fabric", action="store_true")
    ap.add_argument("--skip-sync", action="store_true")
    ap.add_argument("--skip-nftables-sync", action="store_true")
    ap.add_argument("--skip-validation", action="store_true")
    ap.add_argument("--sync-repeats", type=int, default=3, help="runs of each nftables/userspace sync step")
    ap.add_argument("--sync-cap", type=float, default=60.0,
                    help="seconds any one iptables step may take (nft at 10,000 services does not finish)")
    ap.add_argument("--skip-ipvs-sync", action="store_true")
    ap.add_argument("--ipvs-from", help="a bench_ipvs_sync.py --json file to use instead of running the VM")
    ap.add_argument("--skip-userspace-sync", action="store_true")
    ap.add_argument("--skip-datapath-modes", action="store_true")
    ap.add_argument("--render-only", action="store_true", help="no measuring: the doc and figures from results.json")
    ap.add_argument("--keep", action="store_true", help="start from results.json: skipped parts keep their numbers")
    ap.add_argument("--cluster-prefix", default="bench", help="names of the per-mode datapath clusters start so")
    a = ap.parse_args()

    if a.render_only:
        res = stored()
    else:
        if os.geteuid() != 0:
            sys.exit("bench: needs root (network namespaces)")
        today = datetime.date.today().isoformat()
        if a.keep:  # the stored parts keep their machine and date; the new ones are listed
            res = Saved(stored())
            res["updates"] = res.get("updates", []) + [{"date": today, "machine": machine_info(),
                                                        "argv": sys.argv[1:]}]
        else:
            res = Saved(machine=machine_info(), date=today)
        if not a.skip_scale:
            from scale import bench_lab, bench_scale
            sizes = [tuple(int(x) for x in s.split(":")) for s in a.sizes]
            log(f"bench: bring-up/teardown, minikp vs Mininet: {', '.join(a.sizes)} (pods:runs)")
            res["scale"] = bench_scale(sizes, log=log)
            log("bench: the hostnames lab's up")
            res["lab"] = bench_lab(log=log)
        if not a.skip_fabric:
            log("bench: fabric floor (namespaces + links only, no workloads or rules)")
            res["fabric"] = [fabric_floor(n) for n in (100, 1000)]
            for f in res["fabric"]:
                log(f"  {f['pods']:>5} pods: nodes {f['nodes_s']:.2f}s, pods {f['pods_s']:.2f}s "
                    f"({f['per_pod_ms']:.1f} ms/pod), destroy {f['destroy_s']:.2f}s")
        if not a.skip_datapath:
            from datapath import bench_datapath
            log("bench: datapath (wrk)")
            res["datapath"] = bench_datapath(seconds=a.datapath_seconds, rounds=a.datapath_rounds, log=log)
        if not a.skip_datapath_modes:
            from datapath import bench_datapath
            res["datapath_modes"] = {}
            for mode in DATAPATH_MODES:
                if mode == "iptables" and not a.skip_datapath:
                    continue  # the main datapath run above is iptables mode's
                log(f"bench: datapath in {mode} mode (wrk)")
                res["datapath_modes"][mode] = bench_datapath(
                    seconds=a.datapath_seconds, rounds=a.datapath_rounds, log=log, proxy_mode=mode,
                    cluster=f"{a.cluster_prefix}dp-{mode[:5]}")
        if not a.skip_userspace:
            from userspace_datapath import bench_userspace_datapath
            log("bench: userspace datapath (wrk: ClusterIP through the userspace proxy vs iptables)")
            res["userspace_datapath"] = bench_userspace_datapath(
                seconds=a.datapath_seconds, rounds=a.datapath_rounds, log=log)
        if not a.skip_validation:
            from validation import bench_validation
            log("bench: validating large scenarios (load + plan, no kernel)")
            res["validation"] = bench_validation(log=log)
        # last: deleting namespaces that held 230,000 nft rules keeps the kernel busy for a while
        if not a.skip_sync:
            log("bench: iptables proxy sync (1,000 and 10,000 services x 5 endpoints, both backends)")
            res["sync"] = proxy_sync(a.sync_cap)
        if not a.skip_ipvs_sync:
            log("bench: ipvs proxy sync beside iptables (in the VM tier when this kernel has no IPVS)")
            if a.ipvs_from:  # a stored run of the VM (it takes long): its doc re-rendered
                with open(a.ipvs_from) as f:
                    res["ipvs_sync"] = json.load(f)
                subprocess.run([PY, os.path.join(REPO, "bench", "bench_ipvs_sync.py"), "--from-json", a.ipvs_from,
                                "--out", IPVS_DOC], cwd=REPO, check=True, capture_output=True)
            else:
                res["ipvs_sync"] = json_of("bench_ipvs_sync.py", "--out", IPVS_DOC)
        if not a.skip_userspace_sync:
            log("bench: userspace proxy sync (1,000 and 10,000 services x 5 endpoints)")
            res["userspace_sync"] = json_of("bench_userspace_sync.py", "--repeats", str(a.sync_repeats))
        if not a.skip_nftables_sync:
            log("bench: nftables proxy sync (1,000 and 10,000 services x 5 endpoints)")
            res["nftables_sync"] = nftables_sync(a.sync_repeats)
        res = dict(res)  # what follows is for the doc only
    res["notes_md"] = read_optional(NOTES)
    res["iptables_md"] = read_optional(IPTABLES_DOC)
    res["nftables_md"] = read_optional(NFTABLES_DOC)
    res["ipvs_md"] = read_optional(IPVS_DOC)
    from figures import draw
    res["figures"] = draw(res, FIGURES)
    with open(DOC, "w") as f:
        f.write(render(res))
    log(f"bench: wrote {os.path.relpath(DOC, REPO)} and {os.path.relpath(RESULTS, REPO)}")


class Saved(dict):
    """The results, written to results.json as each part lands: a part that fails late (the
    VM, say) leaves the earlier parts' numbers, for a --keep run of the rest."""

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        with open(RESULTS, "w") as f:
            json.dump(self, f, indent=1, default=str)


def stored():
    with open(RESULTS) as f:
        return json.load(f, object_hook=lambda d: {int(k) if k.isdigit() else k: v for k, v in d.items()})


if __name__ == "__main__":
    main()
