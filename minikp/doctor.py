"""`minikp doctor`: what this machine can run. Every kernel probe happens in a throwaway
network namespace, never in the host's."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

from minikp import names
from minikp.nsenter import run_in
from minikp.proxy.base import kernel_gaps


def _probe_netns():
    name = f"{names.PREFIX}doctor-{uuid.uuid4().hex[:8]}"
    from pyroute2 import netns
    netns.create(name)
    return name


# Every nft feature kube-proxy's nftables mode writes, in its own forms: verdict maps with
# concatenated keys, numgen load balancing, fib, dynamic timeout sets updated from the
# packet path, reject, masquerade fully-random, base chains at its priorities.
NFTABLES_PROBE = """add table ip minikp-doctor
add chain ip minikp-doctor filter-input { type filter hook input priority -110 ; }
add chain ip minikp-doctor nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip minikp-doctor nat-postrouting { type nat hook postrouting priority 100 ; }
add chain ip minikp-doctor reject-chain
add rule ip minikp-doctor reject-chain reject
add set ip minikp-doctor affinity { type ipv4_addr ; flags dynamic,timeout ; timeout 10s ; }
add chain ip minikp-doctor endpoint
add rule ip minikp-doctor endpoint update @affinity { ip saddr }
add rule ip minikp-doctor endpoint meta l4proto tcp dnat to 10.244.0.2:80
add chain ip minikp-doctor service
add rule ip minikp-doctor service ip saddr @affinity goto endpoint
add rule ip minikp-doctor service numgen random mod 1 vmap { 0 : goto endpoint }
add map ip minikp-doctor service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }
add element ip minikp-doctor service-ips { 10.96.0.1 . tcp . 80 : goto service }
add rule ip minikp-doctor nat-prerouting ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip minikp-doctor nat-prerouting fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap { tcp . 30000 : goto service }
add rule ip minikp-doctor filter-input ct state new ip daddr . meta l4proto . th dport vmap { 10.96.0.2 . tcp . 80 : goto reject-chain }
add rule ip minikp-doctor nat-postrouting mark and 0x4000 == 0 return
add rule ip minikp-doctor nat-postrouting masquerade fully-random
"""


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
        gaps = kernel_gaps("ipvs", path)  # every scheduler
        out.append(("IPVS", not gaps, "available with every scheduler (mode ipvs)" if not gaps
                    else "mode ipvs needs " + "; ".join(gaps)))
        if shutil.which("nft"):
            r = run_in(path, ["nft", "-f", "-"], input=NFTABLES_PROBE)
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
    for tool, pkg in (("dnsmasq", "dnsmasq-base"), ("conntrack", "conntrack"), ("ip", "iproute2"),
                      ("ipvsadm", "ipvsadm"), ("ipset", "ipset"),
                      ("nginx", "nginx"), ("openssl", "openssl")):  # the ingress controller's
        found = shutil.which(tool)
        out.append((tool, bool(found), found or f"not installed (apt-get install {pkg})"))
    out.append(_modes(dict((name, ok) for name, ok, _ in out)))
    out.append(_docker_runtime())
    return out


def _modes(ok: dict[str, bool]) -> tuple[str, bool, str]:
    """Which proxy modes this kernel runs, from the checks above (userspace writes iptables
    rules too)."""
    iptables = ok.get("iptables legacy", False) or ok.get("iptables nft", False)
    can = {"iptables": iptables, "nftables": ok.get("nftables", False),
           "ipvs": ok.get("IPVS", False) and iptables, "userspace": iptables}
    yes, no = [m for m, v in can.items() if v], [m for m, v in can.items() if not v]
    return ("proxy modes", bool(yes), ", ".join(yes) + (f" (not {', '.join(no)}: see above)" if no else ""))


def _docker_runtime() -> tuple[str, bool, str]:
    """Docker pods (minikp.dev/runtime: docker) need DOCKER_HOST's engine or dockerd, which
    minikp starts privately when a cluster has one."""
    from minikp.docker import engine
    host = engine.external_host()
    if host:
        return ("docker", True, f"Docker pods use DOCKER_HOST={host}")
    dockerd = shutil.which("dockerd")
    if not dockerd:
        return ("docker", False, "dockerd not installed (optional, for pods with "
                                 "minikp.dev/runtime: docker: apt-get install docker.io)")
    r = subprocess.run([dockerd, "--version"], capture_output=True, text=True)
    return ("docker", True, f"{r.stdout.strip()}: Docker pods run on minikp's private engine "
                            f"({engine.RUN_DIR}), started when needed")
