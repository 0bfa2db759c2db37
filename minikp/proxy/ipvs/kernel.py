"""Can this kernel run ipvs mode? What kube-proxy's CanUseIPVSProxier checks, done over
netlink in a namespace (the node's, or a throwaway one for `doctor`):

- missing(netns_path, scheduler) -> list of the missing pieces, each a short phrase
  (IPVS itself, the scheduler's ip_vs_<name> module, the ipset netlink interface): `up`
  refuses with them (exit 1), `doctor` lists them.

The scheduler is checked as kube-proxy does: add and delete the dummy virtual server
198.51.100.0:20000/TCP (TEST-NET-2) with it, unless a virtual server already uses it.
"""

from __future__ import annotations

import os
import socket

from minikp.nsenter import in_netns

PROBE_VS = ("198.51.100.0", 20000)  # CanUseIPVSProxier's dummy VS


def _ipvs_socket(netns_path: str | None):
    from pyroute2 import IPVS
    if netns_path is None:
        return IPVS()
    with in_netns(netns_path):
        return IPVS()


def scheduler_works(ipvs, scheduler: str) -> bool:
    from pyroute2 import IPVSService
    from pyroute2.netlink.exceptions import NetlinkError
    for m in ipvs.service("dump"):
        if m.get_attr("IPVS_CMD_ATTR_SERVICE").get_attr("IPVS_SVC_ATTR_SCHED_NAME") == scheduler:
            return True
    probe = IPVSService(addr=PROBE_VS[0], port=PROBE_VS[1], protocol=socket.IPPROTO_TCP, sched_name=scheduler)
    try:
        ipvs.service("add", service=probe)
    except NetlinkError:
        return False
    ipvs.service("del", service=IPVSService(addr=PROBE_VS[0], port=PROBE_VS[1], protocol=socket.IPPROTO_TCP))
    return True


def missing(netns_path: str | None = None, schedulers: tuple[str, ...] = ("rr",)) -> list[str]:
    out = []
    try:
        ipvs = _ipvs_socket(netns_path)
    except Exception:  # noqa: BLE001 - no "IPVS" generic netlink family: no ip_vs at all
        out.append(f"IPVS (kernel {os.uname().release} has no ip_vs: CONFIG_IP_VS not set and no module)")
    else:
        try:
            for s in schedulers:
                if not scheduler_works(ipvs, s):
                    out.append(f"IPVS scheduler {s} (no ip_vs_{s} module)")
        finally:
            ipvs.close()
    try:
        from pyroute2.ipset import IPSet
        if netns_path is None:
            sock = IPSet()
        else:
            with in_netns(netns_path):
                sock = IPSet()
        try:
            sock.get_proto_version()
        finally:
            sock.close()
    except Exception:  # noqa: BLE001
        out.append("ipset (CONFIG_IP_SET: the ip_set netlink interface)")
    return out

