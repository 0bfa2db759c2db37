"""One node's userspace-mode proxy (kube-proxy 1.25's pkg/proxy/userspace Proxier), driving
the real kernel in the node's namespace; a minikp.proxy.base Proxier.

sync(snapshot), as mergeService/unmergeService/ensurePortals did it:
- each TCP/UDP service port gets a listening socket created INSIDE the node's namespace,
  bound to 0.0.0.0 on a kernel-chosen port (the default empty --proxy-port-range); SCTP is
  skipped ("SCTP is not supported for user space proxy");
- a port whose configuration changed (sameConfig: protocol, port, nodePort, cluster IP,
  external IPs, load-balancer IPs, affinity type) is closed and reopened on a new proxy port;
  a port that only changed endpoints keeps its socket and only the round robin changes;
- NodePorts, and portal IPs that are addresses of the node, are held open with a socket of
  their own (claimNodePort), so nothing else can take them;
- the portal rules (rules.py) are rewritten with ONE iptables-restore --noflush when the set
  of open ports changed, after the jumps into the five chains were ensured (iptablesInit);
- a removed UDP service port clears its flows: `conntrack -D --orig-dst CLUSTERIP -p udp`.
Sockets are served by the process-wide event loop thread (eventloop.py), so every node
shares one thread; close() stops this node's sockets and releases the loop. The first sync
raises the process's open-file limit to 64000, as NewProxier did.

API: UserspaceProxier(netns_path, backend, *, udp_timeout_s=0.25, listen_ip="0.0.0.0");
.sync(snapshot) -> UserspaceSyncResult; .flushed(); .rules_text(table); .counters()/.hits();
.service_paths(service); .describe(); .settings(); .close(). `stats(key)` reads one port's
counters (tests).
"""

from __future__ import annotations

import errno
import random
import resource
import socket
import time
from dataclasses import dataclass, field

from minikp.errors import InputError, OperationError
from minikp.nsenter import in_netns
from minikp.proxy import conntrack
from minikp.proxy.base import SyncResult
from minikp.proxy.paths import Branch, PortPath
from minikp.proxy.iptables import trace
from minikp.proxy.iptables.backend import binary, command_links, resolve_backend
from minikp.proxy.iptables.sync import WAIT_FLAGS
from minikp.proxy.iptables.tools import run, save
from minikp.proxy.snapshot import ProxySnapshot, ServicePortInfo
from minikp.proxy.userspace import eventloop, paths, rules
from minikp.proxy.userspace.loadbalancer import CLIENT_IP, NONE, RoundRobin
from minikp.proxy.userspace.proxysocket import UDP_IDLE_TIMEOUT_S, TcpProxySocket, UdpProxySocket

PROTOCOLS = ("TCP", "UDP")
OPEN_FILES = 64000  # NewProxier's setRLimit(64 * 1000): a socket per port and per connection


def raise_open_files_limit(want: int = OPEN_FILES) -> None:
    """Raise this process's open-file limit to `want` (never lower it), as kube-proxy did."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
        except (ValueError, OSError):  # not allowed to raise the hard limit: take what there is
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, hard), hard))


@dataclass
class UserspaceSyncResult(SyncResult):
    """`changed`: service keys whose sockets or endpoints changed."""
    opened: list[str] = field(default_factory=list)  # service ports given a new proxy socket
    closed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # ports that could not open (logged upstream)
    lines: int = 0  # lines of restore input (0: the rules did not change)
    restore_input: str = ""


def same_config(sp: ServicePortInfo) -> tuple:
    """What sameConfig compares: a change in any of it reopens the port."""
    return (sp.protocol, sp.port, sp.node_port, sp.cluster_ip, sp.external_ips, sp.load_balancer_ips,
            bool(sp.affinity_timeout))


@dataclass
class _Port:
    sp: ServicePortInfo  # as opened
    sock: TcpProxySocket | UdpProxySocket
    held: list[socket.socket]  # node port / local portal IPs held open

    @property
    def proxy_port(self) -> int:
        return self.sock.port


class UserspaceProxier:
    formats = ("iptables",)
    tables = ("nat", "filter")

    @classmethod
    def from_config(cls, netns_path: str, config) -> "UserspaceProxier":
        return cls(netns_path, config.iptables_backend,
                   udp_timeout_s=getattr(config, "udp_timeout_s", UDP_IDLE_TIMEOUT_S))

    def __init__(self, netns_path: str, backend: str, *, udp_timeout_s: float = UDP_IDLE_TIMEOUT_S,
                 listen_ip: str = rules.ANY_IP, shuffle=random.shuffle) -> None:
        self.netns_path = netns_path
        self.backend = resolve_backend(backend)
        self.udp_timeout_s = udp_timeout_s
        self.listen_ip = listen_ip
        self.balancer = RoundRobin(shuffle=shuffle)
        self.ports: dict[str, _Port] = {}  # port_name_string -> open port
        self.need_full = True
        self.synced = False
        self._expected: dict[str, int] = {}  # chain -> rule count last written
        self._loop: eventloop.EventLoopThread | None = None

    # --- sockets in the node's namespace --------------------------------------------------
    def _socket(self, kind: int) -> socket.socket:
        with in_netns(self.netns_path):
            return socket.socket(socket.AF_INET, kind)

    def _bound(self, protocol: str, ip: str, port: int) -> socket.socket:
        """newProxySocket: a TCP listener or a bound UDP socket on ip:port (0 = any port)."""
        tcp = protocol == "TCP"
        s = self._socket(socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
        try:
            if tcp:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Go's net.Listen
            s.bind((ip, port))
            if tcp:
                s.listen(socket.SOMAXCONN)
        except BaseException:
            s.close()
            raise
        return s

    def _hold(self, sp: ServicePortInfo) -> list[socket.socket]:
        """claimNodePort for the NodePort, and for each portal IP that is an address of this
        node (a bind to a non-local address fails with EADDRNOTAVAIL: not local, nothing to
        hold)."""
        held = []
        try:
            for ip in (sp.cluster_ip, *sp.external_ips, *sp.load_balancer_ips):
                try:
                    held.append(self._bound(sp.protocol, ip, sp.port))
                except OSError as e:
                    if e.errno != errno.EADDRNOTAVAIL:
                        raise
            if sp.node_port:
                held.append(self._bound(sp.protocol, rules.ANY_IP, sp.node_port))
        except BaseException:
            for s in held:
                s.close()
            raise
        return held

    def _open(self, sp: ServicePortInfo) -> _Port:
        held = self._hold(sp)
        try:
            listener = self._bound(sp.protocol, self.listen_ip, 0)
        except BaseException:
            for s in held:
                s.close()
            raise
        key = sp.port_name_string
        if sp.protocol == "TCP":
            sock = TcpProxySocket(key, listener, self.balancer, self._socket)
        else:
            sock = UdpProxySocket(key, listener, self.balancer, self._socket, self.udp_timeout_s)
        return _Port(sp, sock, held)

    # --- the loop side --------------------------------------------------------------------
    async def _apply(self, opened: dict[str, _Port], replaced: list[str],
                     want: dict[str, ServicePortInfo]) -> set[str]:
        """On the loop thread: serve new sockets, and bring the round robin up to date.
        A reopened port keeps its balancer state (rotation, affinity), as upstream's did:
        only a port that is gone is deleted. Returns the ports whose rotation was reset."""
        for key in replaced:
            self.ports.pop(key, None)
            if key not in want:
                self.balancer.delete_service(key)
        for key, port in opened.items():
            await port.sock.start()
            self.ports[key] = port
            sp = port.sp
            self.balancer.new_service(key, CLIENT_IP if sp.affinity_timeout else NONE, sp.affinity_timeout)
        reset = set()
        for key, sp in want.items():
            if self.balancer.set_endpoints(key, [str(e) for e in sp.endpoints if e.ready]):
                reset.add(key)
        self.balancer.cleanup_stale_sticky_sessions()
        return reset

    async def _stop(self, ports: list[_Port]) -> None:
        for port in ports:
            port.sock.close()
            for s in port.held:
                s.close()

    # --- iptables -------------------------------------------------------------------------
    def _ipt(self, *args: str, check: bool = True):
        return run(self.netns_path, [binary(self.backend), *WAIT_FLAGS, *args], check=check)

    def _ensure_jumps(self) -> None:
        """iptablesInit: EnsureChain (-N; exit 1 = exists) and EnsureRule (-C, then -I/-A)."""
        for table, chains in (("nat", rules.NAT_CHAINS), ("filter", rules.FILTER_CHAINS)):
            for chain in chains:
                res = self._ipt("-t", table, "-N", chain, check=False)
                if res.returncode not in (0, 1):
                    raise OperationError(f"iptables -N {chain} -t {table}: {res.stderr.strip()}")
        for jump in rules.JUMPS:
            if self._ipt("-t", jump.table, "-C", jump.builtin, *jump.args, check=False).returncode != 0:
                self._ipt("-t", jump.table, jump.position, jump.builtin, *jump.args)

    def _restore(self, text: str) -> None:
        run(self.netns_path, [binary(self.backend, "restore"), *WAIT_FLAGS, "--noflush"], input=text)

    # --- the Proxier protocol -------------------------------------------------------------
    def sync(self, snapshot: ProxySnapshot) -> UserspaceSyncResult:
        start = time.monotonic()
        if self._loop is None:
            raise_open_files_limit()
            self._loop = eventloop.acquire()
        full = self.need_full or self.flushed()
        want = {sp.port_name_string: sp for sp in snapshot.services if sp.protocol in PROTOCOLS}
        replaced = [k for k, p in self.ports.items() if k not in want or same_config(p.sp) != same_config(want[k])]
        reopened = [k for k in replaced if k in want]
        gone = [self.ports[k] for k in replaced if k not in want]
        if reopened:  # closePortal + stopProxy first: the NodePort must be free to claim again
            self._loop.run(self._stop([self.ports[k] for k in reopened]))
        opened: dict[str, _Port] = {}
        errors = []
        for key, sp in want.items():
            if key in self.ports and key not in replaced:
                continue
            try:
                opened[key] = self._open(sp)
            except OSError as e:  # upstream logs it and carries on with the other ports
                errors.append(f"{key}: {e}")
        reset = self._loop.run(self._apply(opened, replaced, want))
        text = ""
        try:
            if full or opened or replaced:
                portals = [(sp, self.ports[k].proxy_port) for k, sp in want.items() if k in self.ports]
                text = rules.render(portals, snapshot.node_ip, self.listen_ip)
                if full:
                    self._ensure_jumps()
                self._restore(text)
                self._expected = _rule_counts(text)
        except Exception:
            self.need_full = True
            raise
        finally:
            self._loop.run(self._stop(gone))  # after the rules stopped pointing at them
        self.need_full, self.synced = False, True
        # unmergeService: flows to a removed UDP service port's cluster IP.
        cmds = [["conntrack", "-D", "--orig-dst", p.sp.cluster_ip, "-p", "udp"]
                for p in gone if p.sp.protocol == "UDP"]
        changed = {_service_key(k) for k in [*opened, *replaced, *reset]}
        return UserspaceSyncResult(full=full, duration_s=time.monotonic() - start, changed=changed,
                                   conntrack=cmds, conntrack_errors=conntrack.clear(self.netns_path, cmds),
                                   opened=sorted(opened), closed=sorted(replaced), errors=errors,
                                   lines=text.count("\n"), restore_input=text)

    def flushed(self) -> bool:
        """Rules removed behind our back: a jump or a portal rule missing from the kernel."""
        if not self.synced:
            return False
        text = save(self.netns_path, self.backend)
        if any(f"-j {j.chain}" not in text for j in rules.JUMPS):
            return True
        return _rule_counts(text) != self._expected

    def rules_text(self, table: str | None = None, fmt: str | None = None) -> str:
        if fmt not in (None, *self.formats):
            raise InputError(f"{fmt}: userspace mode prints only: {', '.join(self.formats)}", field="--format")
        if table not in (None, *self.tables):
            raise InputError(f"{table}: expected one of {', '.join(self.tables)}", field="--table")
        return save(self.netns_path, self.backend, table)

    def counters(self):
        return trace.read_counters(self.netns_path, self.backend)

    def hits(self, before, after):
        return trace.hits(before, after)

    def service_paths(self, service: str) -> list[PortPath]:
        """The portal rules' counters (paths.py); in the process that runs the proxy, the one
        "proxy" branch is replaced by the endpoints its round robin picks, each with the
        connections (UDP: sessions) the proxy opened to it."""
        out = paths.service_paths(save(self.netns_path, self.backend, "nat", counters=True), service)
        if self._loop is not None:
            live = self._loop.run(self._live_branches(service))
            for path in out:
                path.branches = live.get(path.port, path.branches)
        return out

    async def _live_branches(self, service: str) -> dict[str, list[Branch]]:
        out = {}
        for key, port in self.ports.items():
            state = self.balancer.services.get(key)
            if _service_key(key) != service or state is None or not state.endpoints:
                continue
            rule = "round robin" + (f", ClientIP affinity {state.ttl_s} s" if state.affinity == CLIENT_IP else "")
            out[port.sp.port_name or str(port.sp.port)] = [
                Branch(ep, f"userspace proxy :{port.proxy_port}", rule, 1 / len(state.endpoints),
                       port.sock.stats.connections[ep]) for ep in sorted(state.endpoints)]
        return out

    def shell_commands(self) -> dict[str, str]:
        return command_links(self.backend)

    def describe(self) -> str:
        return f"userspace ({self.backend})"

    def settings(self) -> dict:
        return {"iptables_backend": self.backend}

    def proxy_port(self, key: str) -> int:
        """The proxy port of one service port ("ns/name[:port]")."""
        return self.ports[key].proxy_port

    def stats(self, key: str):
        return self.ports[key].sock.stats

    def close(self) -> None:
        """Close every socket of this node and release the event loop (the last proxier to
        close stops its thread). The rules stay, as kube-proxy left them on exit."""
        if self._loop is None:
            return
        self._loop.run(self._stop(list(self.ports.values())))
        self.ports.clear()
        eventloop.release(self._loop)
        self._loop = None
        self.need_full = True


def _service_key(port_key: str) -> str:
    return port_key.split(":", 1)[0]


def _rule_counts(text: str) -> dict[str, int]:
    """Rules per userspace chain in restore input or iptables-save output."""
    counts = dict.fromkeys(rules.NAT_CHAINS + rules.FILTER_CHAINS, 0)
    for line in text.splitlines():
        if line.startswith("-A "):
            chain = line.split(" ", 2)[1]
            if chain in counts:
                counts[chain] += 1
    return counts
