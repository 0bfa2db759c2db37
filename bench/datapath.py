"""Datapath: wrk against ONE backend pod reached four ways, each from inside the cluster.

(a) pod IP directly and (b) the ClusterIP, both from the `wrk` pod on node-1;
(c) node-1's NodePort and (d) the LoadBalancer address, both from the client `load`.
The backend (`web`, one replica) is pinned to node-2, so every path crosses the node
network once; before timing, one curl per path checks the answer is that pod's name.
"""

import re
import subprocess
import tempfile
import os

from minikp.names import client_netns, pod_netns
from common import down_quietly, minikp, minikp_json, summary
from scenarios import datapath_scenario

CLUSTER = "benchdp"  # the default cluster name (bench_datapath(cluster=) picks another)
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text):
    """'1.23ms' -> 1.23 (milliseconds)."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def parse_wrk(out):
    """Requests/s, latency percentiles (ms), request and error counts from wrk --latency."""
    r = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(m.group(1)) if m else None
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.0+)?%\s+(\S+)", out, re.M)
        r[f"p{pct}_ms"] = _ms(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in", out)
    r["requests"] = int(m.group(1)) if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = sum(map(int, m.groups())) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non_2xx"] = int(m.group(1)) if m else 0
    return r


def _in_ns(netns, argv, timeout=60):
    return subprocess.run(["ip", "netns", "exec", netns, *argv], text=True,
                          capture_output=True, timeout=timeout)


def discover(cluster=CLUSTER):
    """Addresses of the backend four ways, and the namespaces to send from."""
    pods = minikp_json("get", "pods", "-A", "--name", cluster)["items"]
    web = next(p for p in pods if p["metadata"]["name"].startswith("web-"))
    wrk = next(p for p in pods if p["metadata"]["name"].startswith("wrk-"))
    svc = next(s for s in minikp_json("get", "svc", "--name", cluster)["items"]
               if s["metadata"]["name"] == "web")
    port = svc["spec"]["ports"][0]
    node_ip = "172.18.0.2"  # node-1, the first node address (SPEC: node IPs 172.18.0.2...)
    try:
        for n in minikp_json("get", "nodes", "--name", cluster)["items"]:
            if n["metadata"]["name"] == "node-1":
                node_ip = next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP")
    except Exception:
        pass
    lb = svc["status"]["loadBalancer"]["ingress"][0]["ip"]
    pod_ns = pod_netns(cluster, "default", wrk["metadata"]["name"])
    client_ns = client_netns(cluster, "load")
    return web["metadata"]["name"], {
        "pod IP (from pod)": (pod_ns, f"http://{web['status']['podIP']}:9376/"),
        "ClusterIP (from pod)": (pod_ns, f"http://{svc['spec']['clusterIP']}:{port['port']}/"),
        "NodePort (from client)": (client_ns, f"http://{node_ip}:{port['nodePort']}/"),
        "LoadBalancer (from client)": (client_ns, f"http://{lb}:{port['port']}/"),
    }


def bench_datapath(seconds=5, rounds=2, connections=16, threads=1, log=print, proxy_mode="", cluster=CLUSTER):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="bench-dp-", delete=False) as f:
        f.write(datapath_scenario(proxy_mode))
        path = f.name
    try:
        minikp("up", path, "--name", cluster, timeout=300)
        backend, paths = discover(cluster)
        for label, (ns, url) in paths.items():
            got = _in_ns(ns, ["curl", "-s", "-m", "3", url]).stdout.strip()
            if got != backend:
                raise RuntimeError(f"{label}: {url} from {ns} answered {got!r}, expected {backend!r}")
        runs = {label: [] for label in paths}
        for _ in range(rounds):  # interleave paths so drift hits them all alike
            for label, (ns, url) in paths.items():
                cp = _in_ns(ns, ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
                                 "--latency", url], timeout=seconds + 60)
                r = parse_wrk(cp.stdout)
                runs[label].append(r)
                log(f"  {label:<28} {url:<32} {r['rps'] or 0:>9.0f} req/s  p50 {r['p50_ms'] or 0:.3f} ms"
                    f"  p99 {r['p99_ms'] or 0:.3f} ms  errors {r['socket_errors'] + r['non_2xx']}")
        out = {"backend": backend, "seconds": seconds, "connections": connections,
               "threads": threads, "proxy_mode": proxy_mode or "iptables", "paths": {}}
        for label, rs in runs.items():
            out["paths"][label] = {
                "url": paths[label][1], "from": paths[label][0], "runs": rs,
                "rps": summary([r["rps"] for r in rs if r["rps"] is not None]),
                "p50_ms": summary([r["p50_ms"] for r in rs if r["p50_ms"] is not None]),
                "p99_ms": summary([r["p99_ms"] for r in rs if r["p99_ms"] is not None]),
                "errors": sum(r["socket_errors"] + r["non_2xx"] for r in rs)}
        return out
    finally:
        down_quietly(cluster)
        os.unlink(path)
