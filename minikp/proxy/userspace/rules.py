"""The iptables rules kube-proxy's userspace proxier wrote (pure).

Target: the last release that shipped it, 1.25 (pkg/proxy/userspace/proxier.go; the mode was
removed in 1.26). The proxier did not render a ruleset: it ensured one rule at a time with
`iptables -C`/`-A` and deleted it with `-D` when a service port closed. The argument lists
below are the ones it passed, in its order:

- iptablesInit: the five chains and the jumps into them (JUMPS);
- iptablesCommonPortalArgs: `-m comment --comment S -p P -m P --dport N [-d IP/32]
  [-m physdev ! --physdev-is-in] [-m addrtype --dst-type LOCAL]`, S = ServicePortName.String();
- iptablesContainerPortalArgs: `-j REDIRECT --to-ports PROXYPORT` when the proxy listens on
  0.0.0.0 (the default bind address), else `-j DNAT --to-destination LISTENIP:PROXYPORT`;
- iptablesHostPortalArgs / iptablesHostNodePortArgs: always DNAT, to the host IP when the
  proxy listens on 0.0.0.0 (REDIRECT broke replies to local processes);
- iptablesNonLocalNodePortArgs: the filter ACCEPT, matching the *proxy* port;
- openPortal/openOnePortal/openNodePort: which rules one service port gets (portal_rules).

minikp writes the four nat chains and the filter chain in one iptables-restore per change
(render) rather than rule by rule: the same rules, applied atomically; rule order is the
snapshot's service order, where kube-proxy's was the order of events.
"""

from __future__ import annotations

from dataclasses import dataclass

from minikp.proxy.snapshot import ServicePortInfo

CONTAINER_PORTALS = "KUBE-PORTALS-CONTAINER"  # ClusterIP / external IPs, from pods (PREROUTING)
HOST_PORTALS = "KUBE-PORTALS-HOST"  # the same, from the node itself (OUTPUT)
CONTAINER_NODEPORTS = "KUBE-NODEPORT-CONTAINER"
HOST_NODEPORTS = "KUBE-NODEPORT-HOST"
NON_LOCAL_NODEPORTS = "KUBE-NODEPORT-NON-LOCAL"  # filter INPUT: accept redirected NodePorts
NAT_CHAINS = (CONTAINER_PORTALS, HOST_PORTALS, CONTAINER_NODEPORTS, HOST_NODEPORTS)
FILTER_CHAINS = (NON_LOCAL_NODEPORTS,)
ANY_IP = "0.0.0.0"  # --bind-address default: REDIRECT in the container chains


@dataclass(frozen=True)
class Jump:
    """A rule in a built-in chain, ensured with `iptables -C`, then `-I` (prepend) or `-A`."""
    table: str
    builtin: str
    position: str  # "-I" | "-A"
    args: tuple[str, ...]  # ends in -j CHAIN

    @property
    def chain(self) -> str:
        return self.args[-1]


_PORTALS_COMMENT = ("-m", "comment", "--comment",
                    "handle ClusterIPs; NOTE: this must be before the NodePort rules")
_NODEPORTS_MATCH = ("-m", "addrtype", "--dst-type", "LOCAL", "-m", "comment", "--comment",
                    "handle service NodePorts; NOTE: this must be the last rule in the chain")
_NON_LOCAL_COMMENT = ("-m", "comment", "--comment", "Ensure that non-local NodePort traffic can flow")

# iptablesInit, in its order.
JUMPS = (
    Jump("nat", "PREROUTING", "-I", _PORTALS_COMMENT + ("-j", CONTAINER_PORTALS)),
    Jump("nat", "OUTPUT", "-I", _PORTALS_COMMENT + ("-j", HOST_PORTALS)),
    Jump("nat", "PREROUTING", "-A", _NODEPORTS_MATCH + ("-j", CONTAINER_NODEPORTS)),
    Jump("nat", "OUTPUT", "-A", _NODEPORTS_MATCH + ("-j", HOST_NODEPORTS)),
    Jump("filter", "INPUT", "-I", _NON_LOCAL_COMMENT + ("-j", NON_LOCAL_NODEPORTS)),
)


@dataclass(frozen=True)
class Rule:
    table: str
    chain: str
    args: tuple[str, ...]


def common_args(sp: ServicePortInfo, dest_ip: str | None, dest_port: int, physdev: bool = False,
                dst_local: bool = False) -> list[str]:
    """iptablesCommonPortalArgs."""
    proto = sp.protocol.lower()
    args = ["-m", "comment", "--comment", sp.port_name_string, "-p", proto, "-m", proto,
            "--dport", str(dest_port)]
    if dest_ip is not None:
        args += ["-d", f"{dest_ip}/32"]  # utilproxy.ToCIDR
    if physdev:
        args += ["-m", "physdev", "!", "--physdev-is-in"]
    if dst_local:
        args += ["-m", "addrtype", "--dst-type", "LOCAL"]
    return args


def _any(ip: str) -> bool:
    return ip in (ANY_IP, "::")


def container_portal_args(sp, dest_ip, physdev, dst_local, dest_port, listen_ip, proxy_port) -> list[str]:
    """iptablesContainerPortalArgs."""
    args = common_args(sp, dest_ip, dest_port, physdev, dst_local)
    if _any(listen_ip):
        return args + ["-j", "REDIRECT", "--to-ports", str(proxy_port)]
    return args + ["-j", "DNAT", "--to-destination", f"{listen_ip}:{proxy_port}"]


def host_portal_args(sp, dest_ip, dst_local, dest_port, listen_ip, host_ip, proxy_port) -> list[str]:
    """iptablesHostPortalArgs."""
    to = host_ip if _any(listen_ip) else listen_ip
    args = common_args(sp, dest_ip, dest_port, False, dst_local)
    return args + ["-j", "DNAT", "--to-destination", f"{to}:{proxy_port}"]


def host_nodeport_args(sp, node_port, listen_ip, host_ip, proxy_port) -> list[str]:
    """iptablesHostNodePortArgs."""
    return host_portal_args(sp, None, False, node_port, listen_ip, host_ip, proxy_port)


def non_local_nodeport_args(sp, proxy_port) -> list[str]:
    """iptablesNonLocalNodePortArgs: the proxy port, not the node port, is what INPUT sees."""
    return common_args(sp, None, proxy_port) + ["-m", "state", "--state", "NEW", "-j", "ACCEPT"]


def portal_rules(sp: ServicePortInfo, proxy_port: int, host_ip: str, listen_ip: str = ANY_IP) -> list[Rule]:
    """Every rule openPortal installs for one service port, in its order: the ClusterIP, each
    external IP (isExternal: a physdev rule, a dst-LOCAL rule, a dst-LOCAL host rule), each
    load-balancer ingress IP, then the NodePort (container, host, non-local)."""
    out: list[Rule] = []

    def portal(ip: str, external: bool) -> None:
        port = sp.port
        out.append(Rule("nat", CONTAINER_PORTALS,
                        tuple(container_portal_args(sp, ip, external, False, port, listen_ip, proxy_port))))
        if external:
            out.append(Rule("nat", CONTAINER_PORTALS,
                            tuple(container_portal_args(sp, ip, False, True, port, listen_ip, proxy_port))))
        out.append(Rule("nat", HOST_PORTALS,
                        tuple(host_portal_args(sp, ip, external, port, listen_ip, host_ip, proxy_port))))

    portal(sp.cluster_ip, False)
    for ip in sp.external_ips:
        portal(ip, True)
    for ip in sp.load_balancer_ips:
        portal(ip, False)
    if sp.node_port:
        out.append(Rule("nat", CONTAINER_NODEPORTS, tuple(
            container_portal_args(sp, None, False, False, sp.node_port, listen_ip, proxy_port))))
        out.append(Rule("nat", HOST_NODEPORTS, tuple(
            host_nodeport_args(sp, sp.node_port, listen_ip, host_ip, proxy_port))))
        out.append(Rule("filter", NON_LOCAL_NODEPORTS, tuple(non_local_nodeport_args(sp, proxy_port))))
    return out


def restore_arg(arg: str) -> str:
    """An argument as iptables-restore reads it: quoted when it holds a space (and comments
    always, as iptables-save prints them)."""
    return f'"{arg}"' if " " in arg or arg == "" else arg


def rule_line(rule: Rule) -> str:
    args = list(rule.args)
    for i, a in enumerate(args):
        if i and args[i - 1] == "--comment":
            args[i] = f'"{a}"'
        else:
            args[i] = restore_arg(a)
    return f"-A {rule.chain} " + " ".join(args)


def render(portals: list[tuple[ServicePortInfo, int]], host_ip: str, listen_ip: str = ANY_IP) -> str:
    """iptables-restore input (for --noflush) that replaces the five userspace chains with
    the rules of `portals` (service port, its proxy port), in that order."""
    rules = [r for sp, port in portals for r in portal_rules(sp, port, host_ip, listen_ip)]
    lines = []
    for table, chains in (("nat", NAT_CHAINS), ("filter", FILTER_CHAINS)):
        lines.append(f"*{table}")
        lines += [f":{c} - [0:0]" for c in chains]
        lines += [rule_line(r) for r in rules if r.table == table]
        lines.append("COMMIT")
    return "\n".join(lines) + "\n"
