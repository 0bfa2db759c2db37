"""How long `minikp up`/`apply` take to validate and plan a large scenario before touching the
kernel: N Services (with selectors, named ports) and N/10 Deployments in one file, loaded
and planned in a fresh process (import time excluded), the median of RUNS, wall clock and
CPU time (the machine may be shared). No root needed.

    python3 bench/validation.py                 # 1,000 and 20,000 Services, JSON on stdout
    python3 bench/validation.py --update        # also merge into bench/results.json
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import PY, REPO, summary  # noqa: E402

GOAL_S = 3.0  # issue 9.10: 20,000 Services in under 3 s
CHILD = """
import resource, sys, time
from minikp.scenario.load import load_scenario
from minikp.scenario.plan import plan_cluster
t, cpu = time.perf_counter(), time.process_time()
plan = plan_cluster(load_scenario([sys.argv[1]]))
print(time.perf_counter() - t, time.process_time() - cpu, len(plan.services), len(plan.pods),
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def scenario(services: int) -> str:
    out = ["apiVersion: minikp.dev/v1alpha1\nkind: Cluster\nspec: {nodes: 10}\n"]
    for i in range(services):
        out.append(f"apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n"
                   f"  labels: {{app: app-{i // 10}}}\nspec:\n  selector: {{app: app-{i // 10}}}\n"
                   "  ports:\n  - name: http\n    port: 80\n    targetPort: http\n"
                   "  - name: metrics\n    port: 9090\n")
        if i % 10 == 0:
            out.append(f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app-{i // 10}}}\n"
                       f"spec:\n  replicas: 1\n  selector: {{matchLabels: {{app: app-{i // 10}}}}}\n"
                       f"  template:\n    metadata: {{labels: {{app: app-{i // 10}}}}}\n    spec:\n"
                       "      containers:\n      - name: web\n        image: registry.k8s.io/serve_hostname\n"
                       "        ports: [{containerPort: 9376, name: http}]\n")
    return "---\n".join(out)


def bench_validation(sizes=(1000, 20000), runs=3, log=print) -> dict:
    res = {}
    with tempfile.TemporaryDirectory(prefix="minikp-bench-") as d:
        for n in sizes:
            path = os.path.join(d, f"{n}.yaml")
            with open(path, "w") as f:
                f.write(scenario(n))
            times, cpus, mem = [], [], 0
            for _ in range(runs):
                cp = subprocess.run([PY, "-c", CHILD, path], cwd=REPO, capture_output=True,
                                    text=True, check=True, timeout=600)
                secs, cpu, nsvc, npods, mb = cp.stdout.split()
                times.append(float(secs))
                cpus.append(float(cpu))
                mem = max(mem, int(mb))
            res[n] = {"seconds": summary(times), "cpu_seconds": summary(cpus), "bytes": os.path.getsize(path),
                      "services": int(nsvc), "pods": int(npods), "max_rss_mb": mem}
            log(f"  {n:>6} Services ({os.path.getsize(path) >> 10} KiB): "
                f"{res[n]['seconds']['median']:.2f} s ({res[n]['cpu_seconds']['median']:.2f} s CPU), "
                f"{mem} MB RSS")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 20000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--update", action="store_true", help="merge into bench/results.json")
    a = ap.parse_args()
    res = bench_validation(a.sizes, a.runs, log=lambda m: print(m, file=sys.stderr))
    if a.update:
        path = os.path.join(REPO, "bench", "results.json")
        with open(path) as f:
            all_res = json.load(f)
        all_res["validation"] = res
        with open(path, "w") as f:
            json.dump(all_res, f, indent=1, default=str)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
