"""The state kube-proxy's ipvs mode wants in one node (pure): snapshot -> IpvsState.

Target: kube-proxy KUBE_PROXY_VERSION (1.33), pkg/proxy/ipvs/proxier.go syncProxyRules and
writeIptablesRules, IPv4, masquerade bit 14 (mark 0x4000), nodePortAddresses unset (NodePorts
on every node address), the ClusterCIDR local-traffic detector (the snapshot's cluster_cidr;
"" = no detector, the form upstream's test fixture uses).

- virtual servers: one per service port and frontend (ClusterIP, each external IP, each
  LoadBalancer VIP, NodePort on each node address), with the scheduler, FlagPersistent +
  timeout for ClientIP affinity, FlagSourceHash for mh, and masquerading real servers of
  weight 1 chosen as syncEndpoint chooses them (Local policy: local endpoints, else the cluster
  ones, #97081);
- bind addresses: what kube-ipvs0 holds (ClusterIPs; external and LB IPs not on another
  interface of the node);
- ipsets: the 17 sets of ipsetInfo with their types, comments and entries (Entry.String());
- restore: the iptables-restore input (`*nat` chains + rules, then `*filter`), and
  JUMP_RULES, the built-in -> KUBE jumps ensured outside the restore.

Services are visited sorted by port name where kube-proxy follows Go map order (random).
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field

from minikp import KUBE_PROXY_VERSION
from minikp.proxy.categorize import categorize, source_ranges
from minikp.proxy.snapshot import ProxySnapshot, ServicePortInfo
from minikp.scenario.load import IPVS_SCHEDULERS

TARGET_VERSION = KUBE_PROXY_VERSION
MASQ_MARK = "0x4000"
DUMMY_DEVICE = "kube-ipvs0"
DEFAULT_SCHEDULER = "rr"
# The schedulers a scenario may name (spec.proxy.ipvs.scheduler, and minikp's own per-Service
# annotation minikp.dev/ipvs-scheduler, which arrives as ServicePortInfo.ipvs_scheduler).
SCHEDULERS = IPVS_SCHEDULERS
FLAG_PERSISTENT = 0x1  # IP_VS_SVC_F_PERSISTENT
FLAG_HASHED = 0x2  # set by the kernel on every service; masked out when compared
FLAG_SOURCE_HASH = 0x10  # kube-proxy's name; the kernel's IP_VS_SVC_F_SCHED_MH_PORT: mh hashes
#                          the source port with the address, so one client's connections spread

# Set names and types (pkg/proxy/ipvs/ipset.go), in ipsetInfo order.
LOOP_BACK = "KUBE-LOOP-BACK"
CLUSTER_IP = "KUBE-CLUSTER-IP"
EXTERNAL_IP = "KUBE-EXTERNAL-IP"
EXTERNAL_IP_LOCAL = "KUBE-EXTERNAL-IP-LOCAL"
LOAD_BALANCER = "KUBE-LOAD-BALANCER"
LOAD_BALANCER_FW = "KUBE-LOAD-BALANCER-FW"
LOAD_BALANCER_LOCAL = "KUBE-LOAD-BALANCER-LOCAL"
LOAD_BALANCER_SOURCE_IP = "KUBE-LOAD-BALANCER-SOURCE-IP"
LOAD_BALANCER_SOURCE_CIDR = "KUBE-LOAD-BALANCER-SOURCE-CIDR"
NODE_PORT_TCP = "KUBE-NODE-PORT-TCP"
NODE_PORT_LOCAL_TCP = "KUBE-NODE-PORT-LOCAL-TCP"
NODE_PORT_UDP = "KUBE-NODE-PORT-UDP"
NODE_PORT_LOCAL_UDP = "KUBE-NODE-PORT-LOCAL-UDP"
NODE_PORT_SCTP = "KUBE-NODE-PORT-SCTP-HASH"
NODE_PORT_LOCAL_SCTP = "KUBE-NODE-PORT-LOCAL-SCTP-HASH"
HEALTH_CHECK_NODE_PORT = "KUBE-HEALTH-CHECK-NODE-PORT"
IPVS_IPS = "KUBE-IPVS-IPS"

HASH_IP, HASH_IP_PORT, HASH_IP_PORT_IP, HASH_IP_PORT_NET, BITMAP_PORT = (
    "hash:ip", "hash:ip,port", "hash:ip,port,ip", "hash:ip,port,net", "bitmap:port")

SET_INFO: tuple[tuple[str, str, str], ...] = (
    (LOOP_BACK, HASH_IP_PORT_IP, "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose"),
    (CLUSTER_IP, HASH_IP_PORT, "Kubernetes service cluster ip + port for masquerade purpose"),
    (EXTERNAL_IP, HASH_IP_PORT, "Kubernetes service external ip + port for masquerade and filter purpose"),
    (EXTERNAL_IP_LOCAL, HASH_IP_PORT, "Kubernetes service external ip + port with externalTrafficPolicy=local"),
    (LOAD_BALANCER, HASH_IP_PORT, "Kubernetes service lb portal"),
    (LOAD_BALANCER_FW, HASH_IP_PORT, "Kubernetes service load balancer ip + port for load balancer with sourceRange"),
    (LOAD_BALANCER_LOCAL, HASH_IP_PORT, "Kubernetes service load balancer ip + port with externalTrafficPolicy=local"),
    (LOAD_BALANCER_SOURCE_IP, HASH_IP_PORT_IP, "Kubernetes service load balancer ip + port + source IP for packet filter purpose"),
    (LOAD_BALANCER_SOURCE_CIDR, HASH_IP_PORT_NET, "Kubernetes service load balancer ip + port + source cidr for packet filter purpose"),
    (NODE_PORT_TCP, BITMAP_PORT, "Kubernetes nodeport TCP port for masquerade purpose"),
    (NODE_PORT_LOCAL_TCP, BITMAP_PORT, "Kubernetes nodeport TCP port with externalTrafficPolicy=local"),
    (NODE_PORT_UDP, BITMAP_PORT, "Kubernetes nodeport UDP port for masquerade purpose"),
    (NODE_PORT_LOCAL_UDP, BITMAP_PORT, "Kubernetes nodeport UDP port with externalTrafficPolicy=local"),
    (NODE_PORT_SCTP, HASH_IP_PORT, "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'"),
    (NODE_PORT_LOCAL_SCTP, HASH_IP_PORT, "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'"),
    (HEALTH_CHECK_NODE_PORT, BITMAP_PORT, "Kubernetes health check node port"),
    (IPVS_IPS, HASH_IP, "Addresses on the ipvs interface"),
)
SET_NAMES = tuple(name for name, _, _ in SET_INFO)
_COMMENT = {name: comment for name, _, comment in SET_INFO}

# ipsetWithIptablesChain: (set, table, from chain, to, match type, protocol match), in order.
_SET_RULES = (
    (LOOP_BACK, "nat", "KUBE-POSTROUTING", "MASQUERADE", "dst,dst,src", ""),
    (LOAD_BALANCER, "nat", "KUBE-SERVICES", "KUBE-LOAD-BALANCER", "dst,dst", ""),
    (LOAD_BALANCER_LOCAL, "nat", "KUBE-LOAD-BALANCER", "RETURN", "dst,dst", ""),
    (NODE_PORT_LOCAL_TCP, "nat", "KUBE-NODE-PORT", "RETURN", "dst", "tcp"),
    (NODE_PORT_TCP, "nat", "KUBE-NODE-PORT", "KUBE-MARK-MASQ", "dst", "tcp"),
    (NODE_PORT_LOCAL_UDP, "nat", "KUBE-NODE-PORT", "RETURN", "dst", "udp"),
    (NODE_PORT_UDP, "nat", "KUBE-NODE-PORT", "KUBE-MARK-MASQ", "dst", "udp"),
    (NODE_PORT_LOCAL_SCTP, "nat", "KUBE-NODE-PORT", "RETURN", "dst,dst", "sctp"),
    (NODE_PORT_SCTP, "nat", "KUBE-NODE-PORT", "KUBE-MARK-MASQ", "dst,dst", "sctp"),
    (LOAD_BALANCER_FW, "filter", "KUBE-PROXY-FIREWALL", "KUBE-SOURCE-RANGES-FIREWALL", "dst,dst", ""),
    (LOAD_BALANCER_SOURCE_CIDR, "filter", "KUBE-SOURCE-RANGES-FIREWALL", "RETURN", "dst,dst,src", ""),
    (LOAD_BALANCER_SOURCE_IP, "filter", "KUBE-SOURCE-RANGES-FIREWALL", "RETURN", "dst,dst,src", ""),
)

# iptablesChains, in order: declared in the restore (and ensured with -N first).
NAT_CHAINS = ("KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-NODE-PORT", "KUBE-LOAD-BALANCER", "KUBE-MARK-MASQ")
FILTER_CHAINS = ("KUBE-FORWARD", "KUBE-NODE-PORT", "KUBE-PROXY-FIREWALL", "KUBE-SOURCE-RANGES-FIREWALL",
                 "KUBE-IPVS-FILTER", "KUBE-IPVS-OUT-FILTER")


@dataclass(frozen=True)
class JumpRule:
    table: str
    builtin: str
    chain: str
    comment: str

    @property
    def args(self) -> tuple[str, ...]:
        return ("-m", "comment", "--comment", self.comment, "-j", self.chain)


# iptablesJumpChain: each is prepended (-C, then -I) on every sync when missing.
JUMP_RULES = (
    JumpRule("nat", "OUTPUT", "KUBE-SERVICES", "kubernetes service portals"),
    JumpRule("nat", "PREROUTING", "KUBE-SERVICES", "kubernetes service portals"),
    JumpRule("nat", "POSTROUTING", "KUBE-POSTROUTING", "kubernetes postrouting rules"),
    JumpRule("filter", "FORWARD", "KUBE-FORWARD", "kubernetes forwarding rules"),
    JumpRule("filter", "INPUT", "KUBE-NODE-PORT", "kubernetes health check rules"),
    JumpRule("filter", "INPUT", "KUBE-PROXY-FIREWALL", "kube-proxy firewall rules"),
    JumpRule("filter", "FORWARD", "KUBE-PROXY-FIREWALL", "kube-proxy firewall rules"),
    JumpRule("filter", "INPUT", "KUBE-IPVS-FILTER", "kubernetes ipvs access filter"),
    JumpRule("filter", "OUTPUT", "KUBE-IPVS-OUT-FILTER", "kubernetes ipvs access filter"),
)


@dataclass(frozen=True, order=True)
class RealServer:
    ip: str
    port: int
    weight: int = 1  # forwarding is always Masq

    def __str__(self) -> str:  # RealServer.String(), the key syncEndpoint compares
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class VirtualServer:
    ip: str
    port: int
    protocol: str  # TCP | UDP | SCTP
    scheduler: str = DEFAULT_SCHEDULER
    flags: int = 0
    timeout: int = 0  # persistence seconds (FlagPersistent)
    real_servers: tuple[RealServer, ...] = ()
    service: str = field(default="", compare=False)  # "ns/name:port", for people reading

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.ip, self.protocol, self.port)

    @property
    def settings(self) -> tuple[str, int, int]:
        """What VirtualServer.Equal compares beyond the key: a difference means an update."""
        return (self.scheduler, self.flags & ~FLAG_HASHED, self.timeout)

    def __str__(self) -> str:  # VirtualServer.String()
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{host}:{self.port}/{self.protocol}"


@dataclass(frozen=True)
class IPSet:
    name: str
    type: str
    comment: str
    entries: tuple[str, ...] = ()  # sorted Entry.String() forms


@dataclass(frozen=True)
class IpvsState:
    virtual_servers: tuple[VirtualServer, ...]
    bind_addresses: tuple[str, ...]  # kube-ipvs0's addresses (sorted)
    ipsets: tuple[IPSet, ...]  # ipsetInfo order
    restore: str  # iptables-restore input

    def ipset(self, name: str) -> IPSet:
        return next(s for s in self.ipsets if s.name == name)

    def virtual_server(self, ip: str, protocol: str, port: int) -> VirtualServer | None:
        return next((v for v in self.virtual_servers if v.key == (ip, protocol, port)), None)


def valid_for_set(ip: str) -> bool:
    """netlinkHandle.isValidForSet for IPv4: loopback addresses are not node addresses."""
    addr = ipaddress.ip_address(ip)
    return addr.version == 4 and not addr.is_loopback


def _entry_ip_port(ip: str, proto: str, port: int) -> str:
    return f"{ip},{proto}:{port}"


def _contains(cidr: str, ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def _chosen_endpoints(sp: ServicePortInfo, node: str, only_local: bool) -> tuple[RealServer, ...]:
    """syncEndpoint's choice: Local policy takes the local endpoints, or the cluster ones
    when there are none (#97081: ipvs mode never drops for lack of local endpoints)."""
    cat = categorize(sp, node)
    eps = (cat.local or cat.cluster) if only_local else cat.cluster
    return tuple(sorted({RealServer(e.ip, e.port) for e in eps}, key=str))


def _ipv4(ip: str) -> bool:
    """The IPv4 proxier sees only its family's external and LB IPs (ServiceChangeTracker)."""
    try:
        return ipaddress.ip_address(ip).version == 4
    except ValueError:
        return False


@dataclass(frozen=True)
class PortState:
    """What one service port adds to the node's wanted state: the unit of a partial sync."""
    virtual_servers: tuple[VirtualServer, ...]
    entries: tuple[tuple[str, str], ...]  # (set name, entry), KUBE-IPVS-IPS included
    bind: tuple[str, ...]  # addresses for kube-ipvs0
    lb_no_node_access: tuple[tuple[str, str, int], ...]  # (VIP, proto, port) for KUBE-IPVS-OUT-FILTER


@functools.lru_cache(maxsize=1 << 16)  # a sync of N ports recomputes only those that changed
def port_state(sp: ServicePortInfo, node: str, node_ip: str, addrs: tuple[str, ...], scheduler: str) -> PortState:
    """One service port's share of syncProxyRules' loop body. addrs: the node's valid
    addresses outside kube-ipvs0 (sorted), where NodePorts listen and external/LB IPs are
    not bound again."""
    proto = sp.protocol.lower()
    entries: list[tuple[str, str]] = []
    vss: list[VirtualServer] = []
    bind: list[str] = []
    no_node_access: list[tuple[str, str, int]] = []
    for e in sp.endpoints:  # hairpin: every local endpoint, whatever its state
        if e.node and e.node == node:
            entries.append((LOOP_BACK, f"{e.ip},{proto}:{e.port},{e.ip}"))
    sched = sp.ipvs_scheduler or scheduler or DEFAULT_SCHEDULER
    flags = (FLAG_PERSISTENT if sp.affinity_timeout else 0) | (FLAG_SOURCE_HASH if sched == "mh" else 0)

    def vs(ip: str, port: int, only_local: bool) -> None:
        vss.append(VirtualServer(ip, port, sp.protocol, sched, flags, sp.affinity_timeout,
                                 _chosen_endpoints(sp, node, only_local), sp.port_name_string))

    entries.append((CLUSTER_IP, _entry_ip_port(sp.cluster_ip, proto, sp.port)))
    vs(sp.cluster_ip, sp.port, sp.internal_policy_local)
    bind.append(sp.cluster_ip)

    for ip in filter(_ipv4, sp.external_ips):
        entries.append((EXTERNAL_IP_LOCAL if sp.external_policy_local else EXTERNAL_IP,
                        _entry_ip_port(ip, proto, sp.port)))
        vs(ip, sp.port, sp.external_policy_local)
        if ip not in addrs:  # already on another interface of the node: not bound again
            bind.append(ip)

    for ip in filter(_ipv4, sp.load_balancer_ips):
        entry = _entry_ip_port(ip, proto, sp.port)
        entries.append((LOAD_BALANCER, entry))
        if sp.external_policy_local:
            entries.append((LOAD_BALANCER_LOCAL, entry))
        cidrs = [str(n) for n in source_ranges(sp)]
        if cidrs:
            entries.append((LOAD_BALANCER_FW, entry))
            entries += [(LOAD_BALANCER_SOURCE_CIDR, f"{entry},{cidr}") for cidr in cidrs]
            if any(_contains(c, node_ip) for c in cidrs):
                entries.append((LOAD_BALANCER_SOURCE_IP, f"{entry},{ip}"))
            else:  # #119656: the node itself must not reach a VIP it is not allowed to
                no_node_access.append((ip, proto, sp.port))
        vs(ip, sp.port, sp.external_policy_local)
        if ip not in addrs:
            bind.append(ip)

    if sp.node_port and addrs:
        if proto == "sctp":
            np = [_entry_ip_port(ip, proto, sp.node_port) for ip in addrs]
            entries += [(NODE_PORT_SCTP, e) for e in np]
            if sp.external_policy_local:
                entries += [(NODE_PORT_LOCAL_SCTP, e) for e in np]
        else:
            up = proto.upper()
            entries.append((f"KUBE-NODE-PORT-{up}", str(sp.node_port)))
            if sp.external_policy_local:
                entries.append((f"KUBE-NODE-PORT-LOCAL-{up}", str(sp.node_port)))
        for ip in addrs:
            vs(ip, sp.node_port, sp.external_policy_local)

    if sp.health_check_node_port:
        entries.append((HEALTH_CHECK_NODE_PORT, str(sp.health_check_node_port)))
    entries += [(IPVS_IPS, ip) for ip in bind]
    return PortState(tuple(vss), tuple(entries), tuple(bind), tuple(no_node_access))


def node_addresses_for(snapshot: ProxySnapshot, node_addresses) -> tuple[str, ...]:
    """The valid node addresses, sorted (default: the node IP alone)."""
    given = node_addresses if node_addresses is not None else (snapshot.node_ip,)
    return tuple(sorted({a for a in given if valid_for_set(a)}, key=ipaddress.ip_address))


def port_key(sp: ServicePortInfo) -> tuple[str, str, str, str]:
    """What identifies a service port (kube-proxy's ServicePortName + protocol); its order
    is port_name_string's."""
    return (sp.namespace, sp.name, sp.port_name, sp.protocol)


def render(snapshot: ProxySnapshot, *, scheduler: str = DEFAULT_SCHEDULER,
           node_addresses: tuple[str, ...] | None = None, masquerade_all: bool = False,
           random_fully: bool = True) -> IpvsState:
    """The whole wanted state at once. node_addresses: the node's local addresses outside
    kube-ipvs0 (nodeAddressSet); default: the node IP alone. A service port's own
    ipvs_scheduler (minikp's annotation) wins over `scheduler`."""
    addrs = node_addresses_for(snapshot, node_addresses)
    sets: dict[str, set[str]] = {name: set() for name in SET_NAMES}
    vss: list[VirtualServer] = []
    bind: set[str] = set()
    lb_no_node_access: list[tuple[str, str, int]] = []
    for sp in sorted(snapshot.services, key=port_key):
        ps = port_state(sp, snapshot.node_name, snapshot.node_ip, addrs, scheduler)
        vss += ps.virtual_servers
        for name, entry in ps.entries:
            sets[name].add(entry)
        bind.update(ps.bind)
        lb_no_node_access += ps.lb_no_node_access
    ipsets = tuple(IPSet(name, typ, comment, tuple(sorted(sets[name]))) for name, typ, comment in SET_INFO)
    text = iptables_restore({s.name: bool(s.entries) for s in ipsets}, snapshot.cluster_cidr,
                            lb_no_node_access, masquerade_all=masquerade_all, random_fully=random_fully)
    vss.sort(key=lambda v: (ipaddress.ip_address(v.ip).packed, v.protocol, v.port))
    return IpvsState(tuple(vss), tuple(sorted(bind, key=ipaddress.ip_address)), ipsets, text)


def _c(name: str) -> str:
    return f'"{_COMMENT[name]}"'  # IPSet.getComment(): the comment in double quotes


def iptables_restore(non_empty: dict[str, bool], cluster_cidr: str,
                     lb_no_node_access: list[tuple[str, str, int]], *, masquerade_all: bool = False,
                     random_fully: bool = True) -> str:
    """writeIptablesRules: natChains, natRules, filterChains, filterRules."""
    nat = ["-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN"]
    flt: list[str] = []
    for name, table, src, dst, match, proto in _SET_RULES:
        if non_empty[name]:
            p = f"-p {proto} " if proto else ""
            (flt if table == "filter" else nat).append(
                f"-A {src} {p}-m comment --comment {_c(name)} -m set --match-set {name} {match} -j {dst}")
    if non_empty[CLUSTER_IP]:
        head = f"-A KUBE-SERVICES -m comment --comment {_c(CLUSTER_IP)} -m set --match-set {CLUSTER_IP}"
        if masquerade_all:
            nat.append(f"{head} dst,dst -j KUBE-MARK-MASQ")
        elif cluster_cidr:
            nat.append(f"{head} dst,dst ! -s {cluster_cidr} -j KUBE-MARK-MASQ")
        else:  # no detector: masquerade node-originated traffic sourced from a VIP
            nat.append(f"{head} src,dst -j KUBE-MARK-MASQ")
    for name, masq in ((EXTERNAL_IP, True), (EXTERNAL_IP_LOCAL, False)):
        if non_empty[name]:
            head = f"-A KUBE-SERVICES -m comment --comment {_c(name)} -m set --match-set {name} dst,dst"
            if masq:
                nat.append(f"{head} -j KUBE-MARK-MASQ")
            nat.append(f"{head} -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT")
            nat.append(f"{head} -m addrtype --dst-type LOCAL -j ACCEPT")
    nat.append("-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT")
    nat.append("-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ")
    flt.append("-A KUBE-SOURCE-RANGES-FIREWALL -j DROP")
    for ip, proto, port in lb_no_node_access:
        flt.append(f"-A KUBE-IPVS-OUT-FILTER -s {ip} -m ipvs --vaddr {ip} --vproto {proto} --vport {port} -j DROP")
    for name in (CLUSTER_IP, LOAD_BALANCER):  # acceptIPVSTraffic
        if non_empty[name]:
            nat.append(f"-A KUBE-SERVICES -m set --match-set {name} dst,dst -j ACCEPT")
    flt += [
        f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT',
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        f"-A KUBE-NODE-PORT -m comment --comment {_c(HEALTH_CHECK_NODE_PORT)} -m set --match-set {HEALTH_CHECK_NODE_PORT} dst -j ACCEPT",
        f"-A KUBE-IPVS-FILTER -m set --match-set {LOAD_BALANCER} dst,dst -j RETURN",
        f"-A KUBE-IPVS-FILTER -m set --match-set {CLUSTER_IP} dst,dst -j RETURN",
        f"-A KUBE-IPVS-FILTER -m set --match-set {EXTERNAL_IP} dst,dst -j RETURN",
        f"-A KUBE-IPVS-FILTER -m set --match-set {EXTERNAL_IP_LOCAL} dst,dst -j RETURN",
        f"-A KUBE-IPVS-FILTER -m set --match-set {HEALTH_CHECK_NODE_PORT} dst -j RETURN",
        f"-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set {IPVS_IPS} dst -j REJECT",
    ]
    nat += [
        f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
        f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK}",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE'
        + (" --random-fully" if random_fully else ""),
        f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK}",
    ]
    lines = (["*nat"] + [f":{c} - [0:0]" for c in NAT_CHAINS] + nat + ["COMMIT"]
             + ["*filter"] + [f":{c} - [0:0]" for c in FILTER_CHAINS] + flt + ["COMMIT"])
    return "\n".join(lines) + "\n"
