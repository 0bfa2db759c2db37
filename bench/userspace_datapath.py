"""Userspace datapath: the same ClusterIP request through kube-proxy's userspace proxy
(minikp.proxy.userspace) and through iptables DNAT (minikp.proxy.iptables), beside the pod IP.

One node namespace with a pod bridge and two pods: `web` (the built-in HTTP workload,
minikp.workloads.server, as in a cluster) and `wrk`, which runs `wrk` against
(a) the pod IP, (b) the ClusterIP with iptables-mode rules, (c) the ClusterIP with
userspace-mode rules and proxy, each twice: keep-alive connections (wrk's default), and one
connection per request (`Connection: close`, as `minikp curl` and most probes do). The proxy's
event loop and the workload server run in this process, as both run in the supervisor.

    python3 bench/userspace_datapath.py [--seconds 5] [--rounds 3] [--json OUT]
Needs root and wrk (scripts/bench.sh installs it).
"""

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import summary  # noqa: E402
from datapath import parse_wrk  # noqa: E402
from minikp.fabric.netns import write_sysctl  # noqa: E402
from minikp.fabric.node import NODE_SYSCTLS  # noqa: E402
from minikp.nsenter import run_in  # noqa: E402
from minikp.proxy.iptables.sync import IptablesProxier  # noqa: E402
from minikp.proxy.snapshot import Endpoint, ProxySnapshot, ServicePortInfo  # noqa: E402
from minikp.proxy.userspace.proxier import UserspaceProxier  # noqa: E402
from minikp.workloads.images import HTTP, Listener  # noqa: E402
from minikp.workloads.server import WorkloadServer  # noqa: E402

PREFIX = "minikp-userspace-bench"
NODE_IP, GATEWAY, CLUSTER_IP = "192.168.78.2", "10.78.0.1", "10.96.78.10"
WEB_IP, WRK_IP = "10.78.0.10", "10.78.0.20"
SERVICE = ServicePortInfo("default", "web", "", "TCP", CLUSTER_IP, 80, endpoints=(Endpoint(WEB_IP, 9376),))
SNAPSHOT = ProxySnapshot("node-1", NODE_IP, "10.78.0.0/16", (SERVICE,))


def _ip(path, *argv):
    res = run_in(path, ["ip", *argv]) if path else subprocess.run(["ip", *argv], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"ip {' '.join(argv)}: {res.stderr}")


class Topology:
    """node (eth0 addressed, cni0 bridge) + pods web and wrk on the bridge."""

    def __init__(self, tag):
        self.names = {k: f"{PREFIX}-{tag}-{k}" for k in ("node", "web", "wrk")}
        self.paths = {k: f"/run/netns/{v}" for k, v in self.names.items()}

    def __enter__(self):
        try:
            for name in self.names.values():
                _ip(None, "netns", "add", name)
            node = self.paths["node"]
            _ip(node, "link", "set", "lo", "up")
            for key, value in NODE_SYSCTLS.items():  # what a minikp node sets (pod traffic through iptables)
                write_sysctl(node, key, value)
            _ip(node, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
            _ip(node, "addr", "add", f"{NODE_IP}/24", "dev", "eth0")
            for dev in ("eth0", "eth1"):
                _ip(node, "link", "set", dev, "up")
            _ip(node, "route", "add", "default", "via", "192.168.78.1")
            _ip(node, "link", "add", "cni0", "type", "bridge")
            _ip(node, "addr", "add", f"{GATEWAY}/24", "dev", "cni0")
            _ip(node, "link", "set", "cni0", "up")
            for i, (pod, ip) in enumerate((("web", WEB_IP), ("wrk", WRK_IP))):
                _ip(node, "link", "add", f"veth{i}", "type", "veth", "peer", "name", "eth0",
                    "netns", self.names[pod])
                _ip(node, "link", "set", f"veth{i}", "master", "cni0", "up")
                _ip(self.paths[pod], "link", "set", "lo", "up")
                _ip(self.paths[pod], "addr", "add", f"{ip}/24", "dev", "eth0")
                _ip(self.paths[pod], "link", "set", "eth0", "up")
                _ip(self.paths[pod], "route", "add", "default", "via", GATEWAY)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for name in self.names.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _wrk(t, url, seconds, connections, close):
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if close:
        argv[1:1] = ["-H", "Connection: close"]
    cp = subprocess.run(["ip", "netns", "exec", t.names["wrk"], *argv], capture_output=True, text=True,
                        timeout=seconds + 60)
    return parse_wrk(cp.stdout)


def _curl(t, url):
    return subprocess.run(["ip", "netns", "exec", t.names["wrk"], "curl", "-s", "-m", "3", url],
                          capture_output=True, text=True).stdout.strip()


PATHS = (("pod IP", "iptables", f"http://{WEB_IP}:9376/"),
         ("ClusterIP, iptables mode", "iptables", f"http://{CLUSTER_IP}/"),
         ("ClusterIP, userspace mode", "userspace", f"http://{CLUSTER_IP}/"))


def measure(workloads, tag, mode, url, seconds, connections, close):
    """One wrk run in fresh namespaces: one connection per request leaves thousands of
    TIME_WAIT sockets behind, which would slow the next run down if it shared them."""
    with Topology(tag) as t:
        workloads.add(tag, t.paths["web"], "web", [Listener("TCP", 9376, HTTP)])
        proxier = (IptablesProxier(t.paths["node"], "legacy") if mode == "iptables"
                   else UserspaceProxier(t.paths["node"], "legacy"))
        try:
            proxier.sync(SNAPSHOT)
            if _curl(t, url) != "web":
                raise RuntimeError(f"{mode}: {url} did not answer 'web'")
            return _wrk(t, url, seconds, connections, close)
        finally:
            if mode == "userspace":
                proxier.close()
            workloads.remove(tag)


def bench_userspace_datapath(seconds=5, rounds=3, connections=16, log=print):
    workloads = WorkloadServer()
    workloads.start()
    runs = {}
    try:
        for i in range(rounds):  # interleaved, so drift hits every path alike
            for label, mode, url in PATHS:
                for close in (False, True):
                    key = f"{label} ({'connection per request' if close else 'keep-alive'})"
                    r = measure(workloads, f"r{i}", mode, url, seconds, connections, close)
                    runs.setdefault(key, {"url": url, "runs": []})["runs"].append(r)
                    log(f"  {key:<58} {r['rps'] or 0:>9.0f} req/s  p50 {r['p50_ms'] or 0:.3f} ms"
                        f"  p99 {r['p99_ms'] or 0:.3f} ms  errors {r['socket_errors'] + r['non_2xx']}")
    finally:
        workloads.stop()
    out = {"seconds": seconds, "connections": connections, "paths": {}}
    for key, v in runs.items():
        rs = v["runs"]
        out["paths"][key] = {
            "url": v["url"], "runs": rs,
            "rps": summary([r["rps"] for r in rs if r["rps"] is not None]),
            "p50_ms": summary([r["p50_ms"] for r in rs if r["p50_ms"] is not None]),
            "p99_ms": summary([r["p99_ms"] for r in rs if r["p99_ms"] is not None]),
            "errors": sum(r["socket_errors"] + r["non_2xx"] for r in rs)}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    res = bench_userspace_datapath(a.seconds, a.rounds)
    text = json.dumps(res, indent=1)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
