"""What a Docker pod costs against a built-in one: start-to-ready per pod (`minikp up` of a
Deployment of N serve-hostname pods, Docker runtime vs built-in, minus the same cluster with
no pods) and memory per Docker pod (RSS of its pause and app processes and their two
containerd shims). Root; clusters docker-bench-*; the images built first (not timed).

    python3 bench/docker_pods.py [--pods 10] [--doc docs/benchmarks.md]

Prints JSON; with --doc, writes its section into that file between its markers.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from common import write_section  # noqa: E402  (bench/ is the script's own folder)

from minikp.docker import engine, images  # noqa: E402
from minikp.docker.runtime import LABEL_CLUSTER  # noqa: E402

BEGIN, END = "<!-- docker-pods: begin -->", "<!-- docker-pods: end -->"
SCENARIO = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: %d
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}, annotations: {minikp.dev/runtime: %s}}
    spec:
      containers:
      - {name: web, image: minikp/serve-hostname, ports: [{containerPort: 9376}]}
"""


def cli(*args):
    return subprocess.run([sys.executable, "-m", "minikp.cli", *args], cwd=ROOT, check=True,
                          capture_output=True, text=True)


def up_seconds(name: str, pods: int, runtime: str, keep=False) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(SCENARIO % (pods, runtime) if pods else "apiVersion: v1\nkind: Namespace\n"
                "metadata: {name: bench}\n")
    try:
        t = time.perf_counter()
        cli("up", f.name, "--name", name)
        took = time.perf_counter() - t
    finally:
        os.unlink(f.name)
    if not keep:
        cli("down", "--name", name)
    return took


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def docker_memory(cluster: str) -> dict:
    """KiB per pod: its containers' first processes and their shims."""
    c = engine.client(engine.Paths().host)
    try:
        cts = c.containers.list(filters={"label": f"{LABEL_CLUSTER}={cluster}"})
        procs = shims = 0
        for ct in cts:
            pid = ct.attrs["State"]["Pid"]
            procs += rss_kib(pid)
            shims += rss_kib(ppid(pid))
        pods = len({ct.labels["minikp.dev/pod"] for ct in cts})
    finally:
        c.close()
    dockerd = int(open(engine.Paths().pidfile).read())
    return {"pods": pods, "containers": len(cts), "processes_kib": procs / pods,
            "shims_kib": shims / pods, "dockerd_kib": rss_kib(dockerd)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=10)
    ap.add_argument("--doc")
    a = ap.parse_args()
    user = engine.process_user()  # keeps the engine up between the runs
    client = engine.client(engine.acquire(user))
    try:
        images.ensure(client, ["pause", "serve-hostname"])
        base = up_seconds("docker-bench-0", 0, "builtin")
        builtin = up_seconds("docker-bench-b", a.pods, "builtin")
        docker = up_seconds("docker-bench-d", a.pods, "docker", keep=True)
        try:
            mem = docker_memory("docker-bench-d")
        finally:
            cli("down", "--name", "docker-bench-d")
    finally:
        client.close()
        engine.release(user)
    res = {"pods": a.pods, "empty_up_s": base, "builtin_up_s": builtin, "docker_up_s": docker,
           "builtin_per_pod_ms": (builtin - base) / a.pods * 1000,
           "docker_per_pod_ms": (docker - base) / a.pods * 1000, "memory": mem}
    print(json.dumps(res))
    if a.doc:
        write_doc(a.doc, res)


def write_doc(doc, r):
    m = r["memory"]
    section = f"""{BEGIN}
## Docker pods: start and memory

`bench/docker_pods.py`: `minikp up` of a Deployment of {r['pods']} `minikp/serve-hostname`
pods, until every pod is ready, with the built-in runtime and with Docker pods
(`minikp.dev/runtime: docker`, minikp's private engine already running, images built), minus
`up` of the same cluster with no pods ({r['empty_up_s']:.2f} s).

| runtime | `up` | per pod, start to ready |
|---|---:|---:|
| built-in | {r['builtin_up_s']:.2f} s | {r['builtin_per_pod_ms']:.0f} ms |
| Docker | {r['docker_up_s']:.2f} s | {r['docker_per_pod_ms']:.0f} ms |

Memory per Docker pod (RSS): its pause and app processes {m['processes_kib'] / 1024:.1f} MiB,
their two containerd shims {m['shims_kib'] / 1024:.1f} MiB; the engine (dockerd) {m['dockerd_kib'] / 1024:.0f} MiB
once. A built-in pod has no process of its own (its sockets live in the supervisor).
{END}"""
    write_section(doc, BEGIN, END, section)


if __name__ == "__main__":
    main()
