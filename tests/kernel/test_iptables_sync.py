"""The iptables proxier against the real kernel: each test gets its own throwaway network
namespace (minikp-test-ipt-*), programmed with iptables-legacy and iptables-nft."""

import socket
import subprocess
import time
import uuid
from dataclasses import replace

import pytest

from minikp.errors import OperationError
from minikp.nsenter import in_netns, run_in
from minikp.proxy.iptables import names
from minikp.proxy.iptables.backend import resolve_backend
from minikp.proxy.iptables.sync import IptablesProxier, save
from minikp.proxy.iptables.trace import hits, read_counters
from minikp.proxy.snapshot import Endpoint as E, ProxySnapshot, ServicePortInfo as SP

NODE = "node-a"
BACKENDS = ["legacy", "nft"]


@pytest.fixture
def netns():
    name = f"minikp-test-ipt-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    path = f"/run/netns/{name}"
    try:
        run_in(path, ["ip", "link", "set", "lo", "up"], check=True)
        # Somewhere for DNATed packets to go: a veth pair (no dummy module on this kernel)
        # owning the pod and service ranges.
        run_in(path, ["ip", "link", "add", "kp0", "type", "veth", "peer", "name", "kp1"], check=True)
        run_in(path, ["ip", "link", "set", "kp1", "up"], check=True)
        run_in(path, ["ip", "addr", "add", "10.180.255.254/16", "dev", "kp0"], check=True)
        run_in(path, ["ip", "link", "set", "kp0", "up"], check=True)
        run_in(path, ["ip", "route", "add", "172.30.0.0/16", "dev", "kp0"], check=True)
        yield path
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


CLUSTERIP = SP("ns1", "svc1", "p80", "TCP", "172.30.0.41", 80,
               endpoints=(E("10.180.0.1", 80, node=NODE), E("10.180.0.2", 80, node="b"),
                          E("10.180.0.3", 80, node="b")))
LB = SP("ns2", "lb", "", "TCP", "172.30.0.42", 80, node_port=30080, load_balancer_ips=("5.6.7.8",),
        load_balancer_source_ranges=("192.168.0.0/24",), external_policy_local=True,
        health_check_node_port=30000, affinity_timeout=10800,
        endpoints=(E("10.180.0.4", 80, node=NODE), E("10.180.0.5", 80, node="b")))
DNS = SP("ns3", "dns", "dns", "UDP", "172.30.0.43", 53, external_ips=("192.168.99.1",), node_port=30053,
         endpoints=(E("10.180.0.6", 53, node=NODE), E("10.180.0.7", 53, node="b")))
SCTP = SP("ns4", "sctp", "", "SCTP", "172.30.0.44", 9999, internal_policy_local=True,
          endpoints=(E("10.180.0.8", 9999, node=NODE),))
EMPTY = SP("ns5", "empty", "", "TCP", "172.30.0.45", 80, node_port=30081)
NOLOCAL = SP("ns6", "nolocal", "", "TCP", "172.30.0.46", 80, node_port=30082, external_policy_local=True,
             endpoints=(E("10.180.0.9", 80, node="b"),))


def snap(*svcs):
    return ProxySnapshot(NODE, "192.168.0.2", "10.180.0.0/16", tuple(svcs))


RICH = snap(CLUSTERIP, LB, DNS, SCTP, EMPTY, NOLOCAL)


def ipt(path, backend, *args, check=True):
    res = run_in(path, [f"iptables-{backend}", *args])
    if check:
        assert res.returncode == 0, res.stderr
    return res


@pytest.mark.parametrize("backend", BACKENDS)
def test_rich_snapshot_is_accepted_and_saved_back(netns, backend):
    proxier = IptablesProxier(netns, backend)
    result = proxier.sync(RICH)
    assert result.full and result.lines > 50
    nat = save(netns, backend, "nat")
    assert "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000" in nat
    assert "--probability 0.33333333349 -j KUBE-SEP-" in nat
    assert "--probability 0.50000000000 -j KUBE-SEP-" in nat
    assert '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' in nat
    assert "-j MASQUERADE --random-fully" in nat
    assert "-m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-" in nat
    assert f"-A {names.svl_chain(SCTP)} " in nat and "-p sctp" in nat
    filt = save(netns, backend, "filter")
    assert '"ns5/empty has no endpoints"' in filt and "-j REJECT --reject-with icmp-port-unreachable" in filt
    assert '"ns6/nolocal has no local endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 30082 -j DROP' in filt
    assert '--comment "ns2/lb health check node port" -m tcp --dport 30000 -j ACCEPT' in filt
    # Prepended jumps: the last one installed comes first in INPUT.
    inputs = [line for line in filt.splitlines() if line.startswith("-A INPUT")]
    assert inputs[0] == "-A INPUT -j KUBE-FIREWALL"
    assert "KUBE-PROXY-CANARY" in save(netns, backend, "mangle")
    # A second sync with nothing changed rewrites no service chain.
    again = proxier.sync(RICH)
    assert not again.full and again.changed == set() and again.stale_chains == []
    assert save(netns, backend, "nat").count(":KUBE-SEP-") == nat.count(":KUBE-SEP-")


@pytest.mark.parametrize("backend", BACKENDS)
def test_partial_sync_rewrites_only_the_changed_service(netns, backend):
    proxier = IptablesProxier(netns, backend)
    proxier.sync(RICH)
    # Marker rules behind the proxy's back: a rewritten chain loses its marker.
    for sp in (CLUSTERIP, LB):
        ipt(netns, backend, "-t", "nat", "-A", names.svc_chain(sp), "-m", "comment", "--comment",
            f"marker-{sp.name}")
    lb2 = replace(LB, endpoints=LB.endpoints + (E("10.180.0.10", 80, node=NODE),))
    result = proxier.sync(snap(CLUSTERIP, lb2, DNS, SCTP, EMPTY, NOLOCAL))
    assert not result.full and result.changed == {"ns2/lb"}
    nat = save(netns, backend, "nat")
    assert "marker-svc1" in nat and "marker-lb" not in nat
    assert "--to-destination 10.180.0.10:80" in nat
    assert "--probability 0.33333333349 -j KUBE-SEP-" in nat


@pytest.mark.parametrize("backend", BACKENDS)
def test_stale_chains_are_deleted(netns, backend):
    proxier = IptablesProxier(netns, backend)
    proxier.sync(RICH)
    gone = [names.svc_chain(CLUSTERIP), names.sep_chain(CLUSTERIP, CLUSTERIP.endpoints[0])]
    assert all(f":{c} " in save(netns, backend, "nat") for c in gone)
    result = proxier.sync(snap(LB, DNS, SCTP, EMPTY, NOLOCAL))
    assert not result.full and set(gone) <= set(result.stale_chains)
    nat = save(netns, backend, "nat")
    assert not any(c in nat for c in gone) and "ns1/svc1" not in nat
    assert f":{names.svc_chain(LB)} " in nat


@pytest.mark.parametrize("backend", BACKENDS)
def test_flushed_behind_our_back_triggers_full_resync(netns, backend):
    proxier = IptablesProxier(netns, backend)
    proxier.sync(RICH)
    for table in ("mangle", "nat", "filter"):
        ipt(netns, backend, "-t", table, "-F")
        ipt(netns, backend, "-t", table, "-X")
    assert "KUBE" not in save(netns, backend)
    result = proxier.sync(RICH)
    assert result.full
    nat = save(netns, backend, "nat")
    assert f"-A {names.svc_chain(CLUSTERIP)} " in nat and "-A PREROUTING" in nat
    assert "KUBE-PROXY-CANARY" in save(netns, backend, "mangle")


@pytest.mark.parametrize("backend", BACKENDS)
def test_failed_restore_forces_full_sync(netns, backend):
    proxier = IptablesProxier(netns, backend)
    proxier.sync(RICH)
    # A stale-looking chain still referenced from a built-in chain cannot be deleted.
    ipt(netns, backend, "-t", "nat", "-N", "KUBE-SVC-STALESTALESTALE")
    ipt(netns, backend, "-t", "nat", "-A", "PREROUTING", "-j", "KUBE-SVC-STALESTALESTALE")
    with pytest.raises(OperationError):
        proxier.sync(RICH)
    assert proxier.need_full
    ipt(netns, backend, "-t", "nat", "-D", "PREROUTING", "-j", "KUBE-SVC-STALESTALESTALE")
    result = proxier.sync(RICH)
    assert result.full and "KUBE-SVC-STALESTALESTALE" in result.stale_chains
    assert "STALESTALE" not in save(netns, backend, "nat")


def _send_udp(path, dst, port, count=3):
    with in_netns(path):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("10.180.255.254", 0))
        for _ in range(count):
            s.sendto(b"x", (dst, port))
    finally:
        s.close()


def _flows(path):
    return run_in(path, ["conntrack", "-L", "-p", "udp"]).stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_udp_conntrack_cleanup_and_trace(netns, backend):
    proxier = IptablesProxier(netns, backend, release=(1, 31))  # the event-based cleanup
    one = replace(DNS, endpoints=DNS.endpoints[1:])  # only 10.180.0.7
    proxier.sync(snap(one))
    before = read_counters(netns, backend)
    _send_udp(netns, "172.30.0.43", 53)
    after = read_counters(netns, backend)
    hit = hits(before, after)
    chains = [(t, c) for t, c, _, _ in hit]
    assert ("nat", "OUTPUT") in chains and ("nat", "KUBE-SERVICES") in chains
    assert ("nat", names.sep_chain(one, one.endpoints[0])) in chains
    sep = names.sep_chain(one, one.endpoints[0])
    order = [(t, c) for t, c, _, _ in hit]
    assert order.index(("nat", "OUTPUT")) < order.index(("nat", "KUBE-SERVICES")) \
        < order.index(("nat", names.svc_chain(one))) < order.index(("nat", sep))
    dnat = [r for t, c, r, n in hit if "DNAT" in r]
    assert dnat and "--to-destination 10.180.0.7:53" in dnat[0]
    assert "src=10.180.0.7" in _flows(netns)  # the DNATed flow exists
    # The endpoint goes away: its flow must be deleted, or replies would stick to it.
    result = proxier.sync(snap(replace(DNS, endpoints=DNS.endpoints[:1])))
    assert ["conntrack", "-D", "--orig-dst", "172.30.0.43", "--dst-nat", "10.180.0.7", "-p", "udp"] \
        in result.conntrack
    assert result.conntrack_errors == []
    assert "src=10.180.0.7" not in _flows(netns)
    # 0 -> >0 endpoints: flows to the service IP (e.g. cached REJECT) are cleared.
    proxier.sync(snap(replace(DNS, endpoints=())))
    result = proxier.sync(snap(DNS))
    assert ["conntrack", "-D", "--orig-dst", "172.30.0.43", "-p", "udp"] in result.conntrack
    assert result.conntrack_errors == []


def _inject_flow(path, svc_ip, port, endpoint_ip, sport=40000):
    """A DNATed UDP flow made by hand, as a lost event would leave it."""
    run_in(path, ["conntrack", "-I", "-p", "udp", "-s", "10.180.255.254", "-d", svc_ip,
                  "--sport", str(sport), "--dport", str(port), "-r", endpoint_ip, "-q", "10.180.255.254",
                  "--reply-port-src", str(port), "--reply-port-dst", str(sport), "-t", "120"], check=True)


def test_a_render_slower_than_the_lock_wait_is_restored_whole(netns):
    """`iptables-restore -w 5` arms a 5 s alarm as it takes the xtables lock and leaves it
    armed; a streamed input still being rendered then would be cut at the alarm (the
    interrupted read looks like EOF: "COMMIT expected"). Seen in the VM, where a 10,000-
    service render takes longer than 5 s."""
    from minikp.proxy.iptables.sync import WAIT_FLAGS
    from minikp.proxy.iptables.tools import restore

    def slow():
        yield from ("*nat", ":KUBE-SLOW - [0:0]")
        yield from (f":KUBE-SLOW-{i} - [0:0]" for i in range(4000))  # more than one chunk: sent
        time.sleep(6)
        yield from ("-A KUBE-SLOW -j RETURN", "COMMIT")

    restore(netns, ["iptables-legacy-restore", *WAIT_FLAGS, "--noflush"], slow())
    assert "-A KUBE-SLOW -j RETURN" in save(netns, "legacy", "nat")


def test_an_empty_conntrack_table_is_listed_without_starting_conntrack(netns, monkeypatch):
    """A fresh node's table is empty: its count says so, and `conntrack -L` is not run."""
    from minikp.proxy import conntrack
    spawned = []
    real_run_in = conntrack.run_in
    monkeypatch.setattr(conntrack, "run_in", lambda *a, **kw: spawned.append(a) or real_run_in(*a, **kw))
    assert conntrack.flow_count(netns) == 0
    assert conntrack.list_flows(netns) == [] and spawned == []
    _inject_flow(netns, "172.30.0.43", 53, "10.180.0.7")
    assert conntrack.flow_count(netns) == 1
    assert [(f.orig_dst, f.reply_src) for f in conntrack.list_flows(netns)] == [("172.30.0.43", "10.180.0.7")]
    assert len(spawned) == 1


@pytest.mark.parametrize("release,deleted", [((1, 33), True), ((1, 31), False)])
def test_reconciler_deletes_a_stale_flow_no_event_named(netns, release, deleted):
    """1.32+ lists the table: a flow to a removed endpoint of a service that still has
    endpoints goes at the next sync with a UDP endpoint change (kubernetes#125467); ≤1.31
    only deletes flows of the endpoints an event just removed, so a lost event stays lost."""
    proxier = IptablesProxier(netns, "legacy", release=release)
    proxier.sync(snap(DNS))
    one = replace(DNS, endpoints=DNS.endpoints[:1])  # 10.180.0.7 removed
    proxier.sync(snap(one))
    _inject_flow(netns, "172.30.0.43", 53, "10.180.0.7")
    _inject_flow(netns, "172.30.0.43", 53, "10.180.0.6", sport=40001)  # to a serving endpoint
    assert "src=10.180.0.7" in _flows(netns)
    # No UDP endpoint changed: ConntrackCleanupRequired is false, nothing is listed.
    assert proxier.sync(snap(one)).conntrack == []
    grown = replace(DNS, endpoints=(*one.endpoints, E("10.180.0.8", 53, node="b")))
    result = proxier.sync(snap(grown))
    assert result.conntrack_errors == []
    assert ("src=10.180.0.7" not in _flows(netns)) is deleted
    assert "src=10.180.0.6" in _flows(netns)  # serving: kept
    if deleted:
        assert ["conntrack", "-D", "-p", "udp", "--orig-dst", "172.30.0.43", "--dport", "53",
                "--reply-src", "10.180.0.7"] in result.conntrack


@pytest.mark.parametrize("release,kept", [((1, 33), True), ((1, 31), False)])
def test_udp_service_scaled_to_zero_keeps_its_flow_from_1_32(netns, release, kept):
    """kubernetes#139628: the reconciler skips a service port without serving endpoints, so
    a one-way sender's flow to the last endpoint survives (1.32 until 1.37); ≤1.31's
    DeletedUDPEndpoints path deleted it."""
    proxier = IptablesProxier(netns, "legacy", release=release)
    one = replace(DNS, endpoints=DNS.endpoints[1:])  # only 10.180.0.7
    proxier.sync(snap(one))
    with in_netns(netns):
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sender.bind(("10.180.255.254", 0))
        sender.sendto(b"x", ("172.30.0.43", 53))  # one way: the flow stays [UNREPLIED]
        assert "src=10.180.0.7" in _flows(netns)
        result = proxier.sync(snap(replace(DNS, endpoints=())))
        assert result.conntrack_errors == []
        try:  # the sender goes on: still DNATed to the gone pod, or rejected as it should be
            sender.sendto(b"x", ("172.30.0.43", 53))
            rejected = False
        except PermissionError:  # filter OUTPUT's "has no endpoints" REJECT
            rejected = True
        assert rejected is not kept
        assert ("src=10.180.0.7" in _flows(netns)) is kept
    finally:
        sender.close()


def test_resolve_backend():
    assert resolve_backend("auto") == "legacy"
    assert resolve_backend("nft") == "nft"
    with pytest.raises(OperationError):
        resolve_backend("ipvs")


@pytest.mark.parametrize("backend", BACKENDS)
def test_nfacct_counters_and_restore_flags(netns, backend):
    proxier = IptablesProxier(netns, backend)
    assert proxier._restore_argv == [f"iptables-{backend}-restore", "-w", "5", "-W", "100000",
                                     "--noflush", "--counters"]
    proxier.sync(snap(CLUSTERIP, DNS))
    assert proxier.nfacct  # this kernel has nfnetlink_acct: kube-proxy 1.33 counts with it
    filt = save(netns, backend, "filter")
    assert "-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name  ct_state_invalid_dropped_pkts -j DROP" in filt
    nat = save(netns, backend, "nat")
    assert (f'-A KUBE-NODEPORTS -d 127.0.0.0/8 -p udp -m comment --comment "ns3/dns:dns" -m udp --dport 30053 '
            f"-m nfacct --nfacct-name  localhost_nps_accepted_pkts -j {names.ext_chain(DNS)}") in nat
    assert "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0" in nat
    # A second full sync (new proxier, same netns) finds the counters already there.
    assert IptablesProxier(netns, backend).sync(snap(CLUSTERIP, DNS)).full


@pytest.mark.parametrize("backend", BACKENDS)
def test_partial_sync_restore_input_names_only_the_changed_service(netns, backend):
    proxier = IptablesProxier(netns, backend)
    proxier.sync(RICH)
    lb2 = replace(LB, endpoints=LB.endpoints[:1])
    result = proxier.sync(snap(CLUSTERIP, lb2, DNS, SCTP, EMPTY, NOLOCAL))
    declared = {line[1:].split()[0] for line in result.restore_input.splitlines() if line.startswith(":")}
    per_service = {c for c in declared if names.is_service_chain(c)}
    gone = names.sep_chain(LB, LB.endpoints[1])
    assert per_service == {names.ext_chain(LB), names.fw_chain(LB), names.svc_chain(LB), names.svl_chain(LB),
                           names.sep_chain(LB, LB.endpoints[0]), gone}
    assert f"-X {gone}" in result.restore_input and result.stale_chains == [gone]
    nat = save(netns, backend, "nat")
    assert gone not in nat and f":{names.svc_chain(CLUSTERIP)} " in nat  # untouched chains stay


@pytest.mark.parametrize("backend", BACKENDS)
def test_large_cluster_defers_stale_chain_cleanup(netns, backend):
    eps = tuple(E(f"10.181.{i // 250}.{i % 250 + 1}", 80, node="b") for i in range(1001))
    big = SP("ns7", "big", "", "TCP", "172.30.0.47", 80, endpoints=eps)
    proxier = IptablesProxier(netns, backend)
    assert proxier.sync(snap(big, CLUSTERIP)).stale_chains == []
    result = proxier.sync(snap(big))  # svc1 deleted, but large-cluster mode: no iptables-save yet
    assert result.stale_chains == [] and f":{names.svc_chain(CLUSTERIP)} " in save(netns, backend, "nat")
    proxier.sync_period_s = 0.0  # a syncPeriod later
    result = proxier.sync(snap(big))
    assert names.svc_chain(CLUSTERIP) in result.stale_chains
    assert names.svc_chain(CLUSTERIP) not in save(netns, backend, "nat")


def test_tcp_be_liberal_netns_gets_no_invalid_drop(netns):
    with in_netns(netns):  # the sysctl is per netns; kube-proxy reads it once at start
        with open("/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal", "w") as f:
            f.write("1")
    proxier = IptablesProxier(netns, "legacy")
    assert proxier.tcp_liberal
    proxier.sync(RICH)
    filt = save(netns, "legacy", "filter")
    assert "INVALID" not in filt and '"kubernetes forwarding rules"' in filt


@pytest.fixture
def netns2():
    name = f"minikp-test-ipt-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fresh_namespace_base_restore_equals_ensure_rule_commands(netns, netns2, backend):
    """A fresh node gets its chains and jump rules in one restore; it must leave exactly
    what kube-proxy's one-by-one EnsureChain/EnsureRule commands leave."""
    ipt(netns2, backend, "-t", "mangle", "-N", "KUBE-PROXY-CANARY")  # not fresh: slow path
    for path in (netns, netns2):
        IptablesProxier(path, backend).sync(RICH)
    assert tables(save(netns, backend)) == tables(save(netns2, backend))


def tables(text):
    """iptables-save output as {table: (sorted chain names, rules in order)}: the order of
    tables depends on which one the kernel loaded first."""
    out = {}
    for block in text.split("*")[1:]:
        lines = block.splitlines()
        out[lines[0]] = (sorted(l.split()[0] for l in lines if l.startswith(":")),
                         [l for l in lines if l.startswith("-")])
    return out


class _Clock:
    """minikp's clock, advanced by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize("release,full", [((1, 33), True), ((1, 32), False)])
def test_periodic_full_sync_repairs_drift_after_an_hour_from_1_33(netns, release, full):
    """kubernetes#129128/#129329: a rule deleted behind kube-proxy's back (the canary still
    there) is put back by 1.33's hourly full sync; 1.32 only does partial syncs."""
    clock = _Clock()
    proxier = IptablesProxier(netns, "legacy", release=release, clock=clock)
    proxier.sync(snap(CLUSTERIP))
    svc = names.svc_chain(CLUSTERIP)
    ipt(netns, "legacy", "-t", "nat", "-F", svc)  # drift a partial sync never rewrites
    clock.now += 3599
    assert not proxier.sync(snap(CLUSTERIP)).full
    clock.now += 2
    result = proxier.sync(snap(CLUSTERIP))
    assert result.full is full
    assert (f"-A {svc} " in save(netns, "legacy", "nat")) is full


def test_conntrack_options_set_in_the_node_namespace_only(netns):
    """spec.proxy.conntrack timeouts are written once, by the node's kube-proxy's first sync,
    in the node's namespace; the host's values stay as they were."""
    from minikp.controller.proxyloop import NodeProxy
    from minikp.proxy.options import ConntrackOptions, ProxyOptions

    def read(name, path=None):
        with in_netns(path) if path else open("/dev/null"):
            with open(f"/proc/sys/net/netfilter/{name}") as f:
                return int(f.read())

    host_before = read("nf_conntrack_udp_timeout")
    opts = ProxyOptions(conntrack=ConntrackOptions(udp_timeout_s=host_before + 7,
                                                   tcp_close_wait_timeout_s=1234))
    proxy = NodeProxy("n", lambda: IptablesProxier(netns, "legacy"), lambda: RICH,
                      lambda *a, **k: None, opts)
    proxy.request("start")
    assert read("nf_conntrack_udp_timeout", netns) == host_before + 7
    assert read("nf_conntrack_tcp_timeout_close_wait", netns) == 1234
    assert read("nf_conntrack_udp_timeout") == host_before


@pytest.mark.parametrize("backend", BACKENDS)
def test_streamed_restore_commits_whole_tables_only(netns, backend):
    """tools.restore writes lines as they come: a bad line fails like a whole-text restore,
    and a render that fails midway leaves no table half-written."""
    from minikp.proxy.iptables.tools import restore

    argv = [f"iptables-{backend}-restore", "--noflush"]
    with pytest.raises(OperationError, match="exit"):
        restore(netns, argv, iter(["*filter", ":KUBE-A - [0:0]", "-A KUBE-NOPE -j ACCEPT", "COMMIT"]))

    many = [f"-A KUBE-C -s 10.1.{i // 250}.{i % 250} -j ACCEPT" for i in range(20000)]  # > one chunk

    def failing():
        yield from ["*nat", ":KUBE-C - [0:0]", *many]
        raise RuntimeError("render bug")

    with pytest.raises(RuntimeError):
        restore(netns, argv, failing())
    text = save(netns, backend)
    assert "KUBE-A" not in text and "KUBE-C" not in text
    whole = ["*nat", ":KUBE-C - [0:0]", *many, "COMMIT"]
    assert restore(netns, argv, iter(whole)) == "\n".join(whole) + "\n"
    assert save(netns, backend, "nat").count("-A KUBE-C ") == 20000
