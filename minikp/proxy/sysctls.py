"""The conntrack sysctls kube-proxy sets at start (cmd/kube-proxy/app/conntrack.go), applied
in the NODE's namespace only.

kube-proxy writes nf_conntrack_max = max(maxPerCore * CPUs, min) and the TCP/UDP timeouts,
each only when its option is > 0 and the value differs. The timeouts are per network
namespace and are set; nf_conntrack_max is read-only outside the host's namespace (the
kernel keeps one table size per host), so minikp computes it (`conntrack_max`) but never
writes it: the host is not minikp's to change."""

from __future__ import annotations

import os

from minikp.nsenter import in_netns
from minikp.proxy.options import ConntrackOptions

BASE = "/proc/sys/net/netfilter"


def conntrack_max(opts: ConntrackOptions, cpus: int | None = None) -> int:
    """getConntrackMax: 0 when maxPerCore is 0 (leave the kernel's value)."""
    if opts.max_per_core <= 0:
        return 0
    return max(opts.max_per_core * (cpus or os.cpu_count() or 1), opts.min)


def wanted(opts: ConntrackOptions) -> dict[str, int]:
    """sysctl name -> value for the per-netns timeouts kube-proxy would set (pure)."""
    pairs = {
        "nf_conntrack_tcp_timeout_established": opts.tcp_established_timeout_s,
        "nf_conntrack_tcp_timeout_close_wait": opts.tcp_close_wait_timeout_s,
        "nf_conntrack_udp_timeout": opts.udp_timeout_s,
        "nf_conntrack_udp_timeout_stream": opts.udp_stream_timeout_s,
    }
    return {k: v for k, v in pairs.items() if v > 0}


def apply(netns_path: str, opts: ConntrackOptions) -> dict[str, int]:
    """Write the per-netns timeouts that differ; returns what was written."""
    written = {}
    with in_netns(netns_path):
        for name, value in wanted(opts).items():
            path = f"{BASE}/{name}"
            try:
                with open(path) as f:
                    if int(f.read().strip()) == value:
                        continue
                with open(path, "w") as f:
                    f.write(str(value))
                written[name] = value
            except OSError:  # no conntrack module in this kernel: kube-proxy logs and goes on
                continue
    return written
