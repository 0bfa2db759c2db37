"""`minikp doctor`: what this machine can run. Every kernel probe happens in a throwaway
network namespace, never in the host's."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

from minikp import names
from minikp.nsenter import run_in


def _probe_netns():
    name = f"{names.PREFIX}doctor-{uuid.uuid4().hex[:8]}"
    from pyroute2 import netns
    netns.create(name)
    return name


def _nftables_probe() -> str:
    """What nftables mode writes for a LoadBalancer Service with source ranges, ClientIP
    affinity and eTP Local: every nft feature the mode uses (verdict maps with concatenated
    keys, numgen, fib, dynamic timeout sets, masquerade fully-random, reject)."""
    from minikp.proxy.nftables import render
    from minikp.proxy.snapshot import Endpoint, ProxySnapshot, ServicePortInfo

    sp = ServicePortInfo("default", "probe", "", "TCP", "10.96.0.1", 80, node_port=30000,
                         load_balancer_ips=("192.0.2.1",), load_balancer_source_ranges=("198.51.100.0/24",),
                         external_policy_local=True, affinity_timeout=10,
                         endpoints=(Endpoint("10.244.0.2", 80, node="n"), Endpoint("10.244.1.2", 80)))
    snap = ProxySnapshot("n", "172.18.0.2", "10.244.0.0/16", (sp,))
    return render.full(snap, render.options_for(snap, ("10.96.0.0/12",)), first=True)[0]


def checks() -> list[tuple[str, bool, str]]:
    out = [("root", os.geteuid() == 0, "yes" if os.geteuid() == 0 else "run as root (sudo)")]
    if os.geteuid() != 0:
        return out
    try:
        ns = _probe_netns()
    except Exception as e:  # noqa: BLE001 - the reason is what the user needs
        return out + [("network namespaces", False, str(e))]
    path = names.netns_path(ns)
    try:
        out.append(("network namespaces", True, "can create and enter"))
        for backend in ("legacy", "nft"):
            binary = f"iptables-{backend}-restore"
            if not shutil.which(binary):
                out.append((f"iptables {backend}", False, f"{binary} not installed (apt-get install iptables)"))
                continue
            r = run_in(path, [binary, "--noflush"], input="*nat\n:KUBE-DOCTOR - [0:0]\n"
                       "-A KUBE-DOCTOR -m statistic --mode random --probability 0.5 -j RETURN\n"
                       "-A KUBE-DOCTOR -m recent --name X --rcheck --seconds 5 -j RETURN\nCOMMIT\n")
            out.append((f"iptables {backend}", r.returncode == 0,
                        "statistic, recent, comment matches work" if r.returncode == 0
                        else r.stderr.strip()))
        ipvs = os.path.exists("/proc/net/ip_vs") or run_in(path, ["sh", "-c", "test -e /proc/net/ip_vs"]).returncode == 0
        out.append(("IPVS", ipvs, "available" if ipvs else "kernel has no IPVS (CONFIG_IP_VS); "
                    "the ipvs proxy mode needs a kernel with it"))
        if shutil.which("nft"):
            r = run_in(path, ["nft", "-f", "-"], input=_nftables_probe())
            out.append(("nftables", r.returncode == 0, "kube-proxy's nftables table loads (mode nftables)"
                        if r.returncode == 0 else r.stderr.strip()[:300]))
        else:
            out.append(("nftables", False, "nft not installed (apt-get install nftables)"))
        with open("/proc/sys/net/bridge/bridge-nf-call-iptables") if os.path.exists(
                "/proc/sys/net/bridge/bridge-nf-call-iptables") else open(os.devnull) as f:
            brnf = f.read().strip()
        out.append(("br_netfilter", bool(brnf), "bridge-nf-call-iptables available" if brnf
                    else "load br_netfilter (modprobe br_netfilter)"))
    finally:
        from pyroute2 import netns
        netns.remove(ns)
    for tool, pkg in (("dnsmasq", "dnsmasq-base"), ("conntrack", "conntrack"), ("ip", "iproute2")):
        found = shutil.which(tool)
        out.append((tool, bool(found), found or f"not installed (apt-get install {pkg})"))
    docker = shutil.which("docker")
    if docker:
        r = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
        out.append(("docker", r.returncode == 0, f"engine {r.stdout.strip()}" if r.returncode == 0
                    else "client only, no engine running (optional: pods with minikp.dev/runtime: docker)"))
    else:
        out.append(("docker", False, "not installed (optional)"))
    return out
