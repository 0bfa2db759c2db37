"""Old kube-proxy layouts in a real namespace: the proxier of release R loads R's rules with
iptables-restore, `iptables-save` prints back the lines of that era's posts byte for byte
(../shared/notes/kube-proxy-history.md §4, the Kubernetes debug-service docs), and a
connection to the ClusterIP reaches the endpoints through them."""

import socket
import subprocess
import threading
import uuid

import pytest

from minikp.nsenter import in_netns, run_in
from minikp.proxy.iptables.sync import IptablesProxier, save
from minikp.proxy.snapshot import Endpoint as E, ProxySnapshot, ServicePortInfo as SP

EP_IPS = ("10.244.1.7", "10.244.2.3", "10.244.3.6")
HOSTNAMES = SP("default", "hostnames", "", "TCP", "10.0.1.175", 80,
               endpoints=tuple(E(ip, 9376) for ip in EP_IPS))
SNAP = ProxySnapshot("node-1", "10.180.255.254", "10.244.0.0/16", (HOSTNAMES,))


@pytest.fixture
def netns():
    """The endpoints' addresses on lo, a server on :9376 answering with the address it was
    reached at, and a route to the ClusterIP."""
    name = f"minikp-test-rel-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    path = f"/run/netns/{name}"
    try:
        run_in(path, ["ip", "link", "set", "lo", "up"], check=True)
        for ip in EP_IPS:
            run_in(path, ["ip", "addr", "add", f"{ip}/32", "dev", "lo"], check=True)
        run_in(path, ["ip", "link", "add", "kp0", "type", "veth", "peer", "name", "kp1"], check=True)
        run_in(path, ["ip", "link", "set", "kp1", "up"], check=True)
        run_in(path, ["ip", "addr", "add", "10.180.255.254/16", "dev", "kp0"], check=True)
        run_in(path, ["ip", "link", "set", "kp0", "up"], check=True)
        run_in(path, ["ip", "route", "add", "10.0.0.0/16", "dev", "kp0"], check=True)
        with in_netns(path):
            server = socket.socket()
        server.bind(("0.0.0.0", 9376))
        server.listen(16)
        threading.Thread(target=_serve, args=(server,), daemon=True).start()
        yield path
        server.close()
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _serve(server):
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.sendall(conn.getsockname()[0].encode())


def reached(path, count=30) -> set[str]:
    seen = set()
    for _ in range(count):
        with in_netns(path):
            c = socket.create_connection(("10.0.1.175", 80), timeout=2)
        with c:
            seen.add(c.recv(64).decode())
    return seen


def service_lines(path) -> list[str]:
    keep = ("-A KUBE-SEP", "-A KUBE-SVC", "-A KUBE-SERVICES", "-A KUBE-MARK-MASQ", "-A KUBE-POSTROUTING",
            '-A POSTROUTING -m comment --comment "kubernetes service traffic')
    return [line for line in save(path, "legacy", "nat").splitlines() if line.startswith(keep)]


SEP_1_1 = {ip: h for ip, h in zip(EP_IPS, ("WNBA2IHDGP2BOBGZ", "X3P2623AGDH6CDF3", "57KPRZ3JQVENLNBR"))}


def old_seps(mark):
    out = []
    for ip, h in sorted(SEP_1_1.items(), key=lambda kv: kv[1]):
        out += [f'-A KUBE-SEP-{h} -s {ip}/32 -m comment --comment "default/hostnames:" -j {mark}',
                f'-A KUBE-SEP-{h} -p tcp -m comment --comment "default/hostnames:" -m tcp -j DNAT '
                f"--to-destination {ip}:9376"]
    return out


CAPTURE_OLD = ('-A KUBE-SERVICES -d 10.0.1.175/32 -p tcp -m comment --comment "default/hostnames: cluster IP" '
               "-m tcp --dport 80 -j KUBE-SVC-NWV5X2332I4OT4T3")
TAIL = ('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule '
        'in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')
SVC_OLD = ['-A KUBE-SVC-NWV5X2332I4OT4T3 -m comment --comment "default/hostnames:" -m statistic --mode random '
           "--probability 0.33332999982 -j KUBE-SEP-WNBA2IHDGP2BOBGZ",
           '-A KUBE-SVC-NWV5X2332I4OT4T3 -m comment --comment "default/hostnames:" -m statistic --mode random '
           "--probability 0.50000000000 -j KUBE-SEP-X3P2623AGDH6CDF3",
           '-A KUBE-SVC-NWV5X2332I4OT4T3 -m comment --comment "default/hostnames:" -j KUBE-SEP-57KPRZ3JQVENLNBR']
MASQ_1_2 = ["-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
            '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -m mark '
            "--mark 0x4000/0x4000 -j MASQUERADE"]
NOT_LOCAL_1_16 = ('-A KUBE-SERVICES ! -s 10.244.0.0/16 -d 10.0.1.175/32 -p tcp -m comment --comment '
                  '"default/hostnames: cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ')

# save form, as iptables-save prints it (chains by name, rules in order)
EXPECTED = {
    (1, 1): ['-A POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -m mark --mark '
             "0x4d415351 -j MASQUERADE",
             *old_seps("MARK --set-xmark 0x4d415351/0xffffffff"), CAPTURE_OLD, TAIL, *SVC_OLD],
    (1, 2): [*MASQ_1_2, *old_seps("KUBE-MARK-MASQ"), CAPTURE_OLD, TAIL, *SVC_OLD],
    (1, 16): [MASQ_1_2[0], MASQ_1_2[1] + " --random-fully", *old_seps("KUBE-MARK-MASQ"),
              NOT_LOCAL_1_16, CAPTURE_OLD, TAIL, *SVC_OLD],
}


SEP_1_19 = {ip: h for ip, h in zip(EP_IPS, ("IQV2T7WZFFJMSXMA", "VVQPNQCRNAQTZLWG", "PR3FG6SU5SIGDY7O"))}
NOT_LOCAL_1_19 = ('! -s 10.244.0.0/16 -d 10.0.1.175/32 -p tcp -m comment --comment "default/hostnames cluster IP" '
                  "-m tcp --dport 80 -j KUBE-MARK-MASQ")


def colonless(masq_in_svc: bool) -> list[str]:
    """1.19-1.23: no colon (other hashes), 10-digit probabilities, the xor-mark POSTROUTING."""
    svc = "KUBE-SVC-YN5D6RYVEVZOH44Q"
    out = ["-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
           "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
           "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
           '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE '
           "--random-fully"]
    for ip, h in sorted(SEP_1_19.items(), key=lambda kv: kv[1]):
        out += [f'-A KUBE-SEP-{h} -s {ip}/32 -m comment --comment "default/hostnames" -j KUBE-MARK-MASQ',
                f'-A KUBE-SEP-{h} -p tcp -m comment --comment "default/hostnames" -m tcp -j DNAT '
                f"--to-destination {ip}:9376"]
    out += [] if masq_in_svc else [f"-A KUBE-SERVICES {NOT_LOCAL_1_19}"]
    out += ['-A KUBE-SERVICES -d 10.0.1.175/32 -p tcp -m comment --comment "default/hostnames cluster IP" '
            f"-m tcp --dport 80 -j {svc}", TAIL]
    out += [f"-A {svc} {NOT_LOCAL_1_19}"] if masq_in_svc else []
    probabilities = (" -m statistic --mode random --probability 0.33333333349",
                     " -m statistic --mode random --probability 0.50000000000", "")
    return out + [f'-A {svc} -m comment --comment "default/hostnames"{p} -j KUBE-SEP-{SEP_1_19[ip]}'
                  for ip, p in zip(EP_IPS, probabilities)]


EXPECTED[(1, 19)] = colonless(masq_in_svc=False)
EXPECTED[(1, 22)] = colonless(masq_in_svc=True)


@pytest.mark.parametrize("release", sorted(EXPECTED))
def test_an_old_release_saves_back_as_its_posts_print_it_and_traffic_flows(netns, release):
    IptablesProxier(netns, "legacy", release=release).sync(SNAP)
    assert service_lines(netns) == EXPECTED[release]
    assert reached(netns) == set(EP_IPS)  # every endpoint, through the old rules


@pytest.mark.parametrize("release", [(1, 4), (1, 9), (1, 15), (1, 19), (1, 21), (1, 22), (1, 23)])
def test_every_old_layout_loads_and_carries_traffic(netns, release):
    sp = SP("default", "hostnames", "", "TCP", "10.0.1.175", 80, node_port=30080, external_ips=("10.0.9.9",),
            load_balancer_ips=("10.0.9.10",), affinity_timeout=0,
            endpoints=HOSTNAMES.endpoints)
    empty = SP("default", "empty", "", "TCP", "10.0.1.176", 80, node_port=30081)
    local = SP("default", "local", "", "TCP", "10.0.1.177", 80, node_port=30082, load_balancer_ips=("10.0.9.11",),
               load_balancer_source_ranges=("192.168.0.0/24",), external_policy_local=True,
               health_check_node_port=30000, affinity_timeout=600,
               endpoints=(E("10.244.1.7", 9376, node="node-1"), E("10.244.9.9", 9376, node="b")))
    proxier = IptablesProxier(netns, "legacy", release=release)
    proxier.sync(ProxySnapshot("node-1", "10.180.255.254", "10.244.0.0/16", (sp, empty, local)))
    assert reached(netns) == set(EP_IPS)
    # a second, unchanged sync (the next period) and one dropping a service: stale chains go
    result = proxier.sync(ProxySnapshot("node-1", "10.180.255.254", "10.244.0.0/16", (HOSTNAMES,)))
    assert result.full and not any(c.startswith(("KUBE-FW-", "KUBE-XLB-")) for c in chains(netns))
    assert reached(netns, 6) <= set(EP_IPS)


def chains(path) -> list[str]:
    return [line[1:].split()[0] for line in save(path, "legacy", "nat").splitlines() if line.startswith(":")]


def test_before_1_17_no_canary_and_a_flush_is_repaired_by_the_next_sync(netns):
    proxier = IptablesProxier(netns, "legacy", release=(1, 16))
    proxier.sync(SNAP)
    assert "KUBE-PROXY-CANARY" not in save(netns, "legacy")
    run_in(netns, ["iptables-legacy", "-t", "nat", "-F"], check=True)
    run_in(netns, ["iptables-legacy", "-t", "nat", "-X"], check=True)
    assert proxier.flushed()
    proxier.sync(SNAP)
    assert service_lines(netns) == EXPECTED[(1, 16)]


def test_up_kubernetes_version_reaches_every_node_proxy(cluster_factory):
    """The flag goes through `up` to the supervisor: the nodes write 1.15's rules, report
    kube-proxy v1.15, and the old post's objects come up (extensions/v1beta1 Deployment)."""
    c = cluster_factory("""
        apiVersion: extensions/v1beta1
        kind: Deployment
        metadata: {name: hostnames}
        spec:
          replicas: 2
          selector: {matchLabels: {app: hostnames}}
          template:
            metadata: {labels: {app: hostnames}}
            spec:
              containers: [{name: hostnames, image: k8s.gcr.io/serve_hostname}]
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: hostnames}
        spec:
          selector: {app: hostnames}
          ports: [{protocol: TCP, port: 80, targetPort: 9376}]
        """, name="mkt-release-flag", args=("--kubernetes-version", "1.15", "--nodes", "2"))
    nat = c.cli("rules", "node-2", "--table", "nat").stdout
    assert '-A KUBE-SVC-NWV5X2332I4OT4T3 -m comment --comment "default/hostnames:" -m statistic --mode ' \
           "random --probability 0.50000000000 -j KUBE-SEP-" in nat
    assert "KUBE-PROXY-CANARY" not in c.cli("rules", "node-2", "--table", "mangle").stdout
    assert {n["status"]["nodeInfo"]["kubeProxyVersion"] for n in c.get("nodes")} == {"v1.15"}
    assert sorted(set(c.answers("node/node-1", f"http://{c.svc('hostnames')['spec']['clusterIP']}/", 20))) \
        == sorted(p["metadata"]["name"] for p in c.pods("hostnames"))


@pytest.fixture
def netns2():
    name = f"minikp-test-rel-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.mark.parametrize("release", [(1, 1), (1, 9), (1, 16), (1, 23)])
def test_fresh_node_base_restore_equals_ensure_rule_commands(netns, netns2, release):
    """The one-restore start of a fresh node leaves what that release's one-by-one
    EnsureChain/EnsureRule commands (and kubelet's chains) leave, 1.1's appended SNAT rule too."""
    from tests.kernel.test_iptables_sync import tables

    run_in(netns2, ["iptables-legacy", "-t", "nat", "-N", "KUBE-OLD"], check=True)  # not fresh: slow path
    for path in (netns, netns2):
        IptablesProxier(path, "legacy", release=release).sync(SNAP)
    run_in(netns2, ["iptables-legacy", "-t", "nat", "-X", "KUBE-OLD"], check=True)
    assert tables(save(netns, "legacy")) == tables(save(netns2, "legacy"))
