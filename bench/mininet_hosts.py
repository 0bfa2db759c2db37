"""One timed Mininet bring-up and teardown: N hosts over K Linux-bridge switches.

The baseline minikp's scale numbers are compared with. Runs under Debian's
/usr/bin/python3 (the interpreter the `mininet` package installs for), inside a
network namespace the caller created (see bench/scale.py), so every bridge,
veth and host namespace Mininet makes hangs off that namespace and never off the
host's own network. Prints one JSON object:

    {"hosts": N, "switches": K, "build_s": .., "start_s": .., "up_s": .., "stop_s": ..,
     "pss_mb": ..}

build_s = Mininet(topo, switch=LinuxBridge, controller=None, build=True);
start_s = net.start(); up_s = build_s + start_s; stop_s = net.stop();
pss_mb = proportional set size of every process Mininet started (host and switch
shells), read from /proc/PID/smaps_rollup before the stop.
"""
import argparse
import json
import os
import resource
import sys
import time

from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.nodelib import LinuxBridge
from mininet.topo import LinearTopo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import pss_kb  # noqa: E402  (stdlib only: fine under Debian's python3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, required=True)
    ap.add_argument("--switches", type=int, default=10)
    a = ap.parse_args()
    # Each host holds a pty and pipes; 1,000 hosts exceed the default 1,024 descriptors.
    # (Mininet's own fixLimits() would also rewrite host-wide sysctls, so it is not used.)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    setLogLevel("error")
    per_switch = max(1, a.hosts // a.switches)
    topo = LinearTopo(k=a.switches, n=per_switch)
    out = {"hosts": per_switch * a.switches, "switches": a.switches}
    net = None
    try:
        t0 = time.perf_counter()
        net = Mininet(topo=topo, switch=LinuxBridge, controller=None, build=True)
        t1 = time.perf_counter()
        net.start()
        t2 = time.perf_counter()
        out.update(build_s=t1 - t0, start_s=t2 - t1, up_s=t2 - t0)
        pids = [n.pid for n in net.hosts + net.switches if getattr(n, "pid", None)]
        out["pss_mb"] = sum(pss_kb(p) for p in pids) / 1024.0
        out["processes"] = len(pids)
        t3 = time.perf_counter()
        net.stop()
        net = None
        out["stop_s"] = time.perf_counter() - t3
    finally:
        if net is not None:
            net.stop()
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
