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
            r = run_in(path, ["nft", "add", "table", "ip", "minikp-doctor"])
            out.append(("nftables", r.returncode == 0, "nft works" if r.returncode == 0 else r.stderr.strip()))
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
    for tool, pkg in (("dnsmasq", "dnsmasq-base"), ("conntrack", "conntrack"), ("ip", "iproute2"),
                      ("ipvsadm", "ipvsadm"), ("ipset", "ipset")):
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
