"""The fabric with real namespaces and real packets: a 2-node cluster built from a hand-made
plan, pods and a client answering each other through the built-in workloads, LoadBalancer
routes, pod removal, teardown (also after the owner was SIGKILLed) and the host left as it
was. Cluster names start with `mkt-fab` so namespaces are `minikp-mkt-fab...`."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from minikp import names
from minikp.errors import OperationError
from minikp.fabric import Fabric, netns, teardown
from minikp.nsenter import in_netns, run_in
from minikp.scenario.model import (ClientPlan, ClusterConfig, ClusterPlan, Container,
                                   ContainerPort, NodePlan, PodPlan, PodTemplate)
from minikp.workloads.commands import start_client, start_command
from minikp.workloads.images import listeners_for
from minikp.workloads.server import WorkloadServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST_SYSCTLS = ["net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables",
                "net.ipv4.conf.all.route_localnet"]


def plan(cluster, nodes=2, pods_per_node=2, image="k8s.gcr.io/serve_hostname"):
    node_plans = [NodePlan(f"node-{i}", f"172.18.0.{i + 1}", f"10.244.{i}.0/24", f"10.244.{i}.1")
                  for i in range(1, nodes + 1)]
    tmpl = PodTemplate(labels={"app": "web"},
                       containers=[Container("web", image, [ContainerPort(9376)])])
    pods = [PodPlan("default", f"web-{n.name}-{j}", n.name, f"10.244.{i}.{10 + j}", "Pod",
                    f"web-{n.name}-{j}", tmpl)
            for i, n in enumerate(node_plans, 1) for j in range(pods_per_node)]
    return ClusterPlan(ClusterConfig(name=cluster), node_plans, pods, [],
                       [ClientPlan("outside", "172.18.0.100")])


def host_view():
    """What the host's own namespace looks like: links, routes, the sysctls we set."""
    run = lambda *a: subprocess.run(a, capture_output=True, text=True, check=True).stdout  # noqa
    return (run("ip", "-o", "link"), run("ip", "route"), run("ip", "rule"),
            {k: netns.read_sysctl(None, k) for k in HOST_SYSCTLS})


def ip_json(ns, *args):
    out = subprocess.run(["ip", "-j", "-n", ns, *args], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out or "[]")


def http_get(netns_path, ip, port, timeout=2.0):
    """One HTTP request from inside a namespace: (body, the client address the server saw)."""
    with in_netns(netns_path):
        s = socket.create_connection((ip, port), timeout=timeout)
    with s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    headers = dict(l.split(": ", 1) for l in head.decode().split("\r\n")[1:])
    assert head.startswith(b"HTTP/1.1 200 OK")
    return body.decode().strip(), headers["X-Minikp-Client"].rpartition(":")[0]


def udp_ask(netns_path, ip, port, timeout=2.0):
    with in_netns(netns_path):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with s:
        s.settimeout(timeout)
        s.sendto(b"hostname?\n", (ip, port))
        return s.recv(4096).decode()


@pytest.fixture(scope="module")
def cluster():
    """Two nodes, two serve_hostname pods per node, one client serving HTTP on 80."""
    name = "mkt-fab1"
    teardown.destroy_cluster(name)  # a leftover of an interrupted earlier run
    before = host_view()
    p = plan(name)
    fabric = Fabric(name, p)
    server = WorkloadServer()
    try:
        fabric.build()
        server.start()
        paths = {}
        for pod in p.pods:
            paths[pod.name] = fabric.add_pod(pod)
            server.add(pod.name, paths[pod.name], pod.name, listeners_for(pod.template.containers[0]))
        start_client(server, fabric.client_path("outside"), p.clients[0])
        yield fabric, server, p, paths
    finally:
        server.stop()
        fabric.destroy()
    assert netns.names(names.netns_prefix(name)) == []
    assert host_view() == before


def test_layout_matches_the_plan(cluster):
    fabric, _, p, _ = cluster
    n1, n2 = (names.node_netns("mkt-fab1", n) for n in ("node-1", "node-2"))
    addrs = {l["ifname"]: [(a["local"], a["prefixlen"]) for a in l["addr_info"] if a["family"] == "inet"]
             for l in ip_json(n1, "addr")}
    assert addrs["eth0"] == [("172.18.0.2", 16)]
    assert addrs["cni0"] == [("10.244.1.1", 24)]
    assert addrs["lo"] == [("127.0.0.1", 8)]
    pod_links = [l for l in ip_json(n1, "-d", "link", "show", "master", "cni0")]
    assert len(pod_links) == 2
    assert all(l["ifname"].startswith("veth") and len(l["ifname"]) == 12 for l in pod_links)
    assert all(l["linkinfo"]["info_slave_data"]["hairpin"] for l in pod_links)
    routes = {r["dst"]: r.get("gateway") for r in ip_json(n1, "route")}
    assert routes["10.244.2.0/24"] == "172.18.0.3"  # host-gw to the other node
    assert routes["default"] == "172.18.0.1"  # a dead-end gateway, as a kind node has: routes the node's own Service traffic
    for key in ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables",
                "net.ipv4.conf.all.route_localnet"):
        assert netns.read_sysctl(names.netns_path(n2), key) == "1"
    pod_ns = names.pod_netns("mkt-fab1", "default", "web-node-2-0")
    assert {l["ifname"] for l in ip_json(pod_ns, "link")} == {"lo", "eth0"}
    assert [(r["dst"], r["gateway"]) for r in ip_json(pod_ns, "route") if "gateway" in r] == [
        ("default", "10.244.2.1")]
    world = names.world_netns("mkt-fab1")
    ports = ip_json(world, "link", "show", "master", "br-nodes")
    assert len(ports) == 3  # two nodes and the client
    assert netns.read_sysctl(names.netns_path(world), "net.bridge.bridge-nf-call-iptables") == "0"
    client_routes = {r["dst"]: r.get("gateway") for r in ip_json(names.client_netns("mkt-fab1", "outside"), "route")}
    assert client_routes == {"10.244.1.0/24": "172.18.0.2", "10.244.2.0/24": "172.18.0.3",
                             "172.18.0.0/16": None, "10.96.0.0/12": None}  # ECMP via both nodes


def test_pods_answer_pods_on_the_same_and_the_other_node(cluster):
    fabric, _, p, paths = cluster
    for src in p.pods:
        for dst in p.pods:
            if src is not dst:
                # the answer names the pod and the pod saw the real source address (no NAT)
                assert http_get(paths[src.name], dst.ip, 9376) == (dst.name, src.ip)


def test_client_node_and_pod_reach_each_other(cluster):
    fabric, server, p, paths = cluster
    client = fabric.client_path("outside")
    pod = p.pods[3]  # on node-2
    assert http_get(client, pod.ip, 9376) == (pod.name, "172.18.0.100")
    assert http_get(paths[pod.name], "172.18.0.100", 80) == ("outside", pod.ip)
    assert http_get(fabric.node_path("node-1"), pod.ip, 9376) == (pod.name, "172.18.0.2")
    # something listening on a node answers the client on the node's IP
    server.add("node/node-1", fabric.node_path("node-1"), "node-1", listeners_for(
        Container("kubelet", "", [ContainerPort(10250)])))
    try:
        assert http_get(client, "172.18.0.2", 10250) == ("node-1", "172.18.0.100")
        assert http_get(paths[p.pods[0].name], "172.18.0.2", 10250)[0] == "node-1"
    finally:
        server.remove("node/node-1")


def test_serve_hostname_answers_udp_with_the_pod_name(cluster):
    _, _, p, paths = cluster
    assert udp_ask(paths[p.pods[0].name], p.pods[2].ip, 9376).strip() == p.pods[2].name
    assert udp_ask(paths[p.pods[2].name], p.pods[3].ip, 9376).strip() == p.pods[3].name


def test_a_command_pod_sees_its_hostname_resolv_conf_and_network(cluster, tmp_path):
    fabric, _, p, _ = cluster
    pod = PodPlan("default", "cmd-pod", "node-2", "10.244.2.50", "Pod", "cmd-pod",
                  PodTemplate(hostname="custom-host"))
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("search default.svc.cluster.local svc.cluster.local cluster.local\n"
                      "nameserver 10.96.0.10\noptions ndots:5\n")
    log = tmp_path / "cmd.log"
    path = fabric.add_pod(pod)
    try:
        proc = start_command(path, ["sh", "-c", "hostname; echo HOSTNAME=$HOSTNAME; "
                                    "cat /etc/resolv.conf; cat /proc/net/route"],
                             hostname=pod.hostname, resolv_conf=str(resolv), log_path=str(log))
        assert proc.wait(10) == 0
        out = log.read_text()
        assert out.splitlines()[0] == "custom-host"
        assert "HOSTNAME=custom-host" in out
        assert "nameserver 10.96.0.10" in out and "options ndots:5" in out
        assert "eth0\t00000000\t0102F40A" in out  # default via 10.244.2.1, in the pod's table
        assert socket.gethostname() != "custom-host"  # the host's name stays
        with open("/etc/resolv.conf") as f:
            assert "10.96.0.10" not in f.read()
    finally:
        fabric.remove_pod(pod.namespace, pod.name)
    with pytest.raises(OperationError, match="not found"):
        start_command(path, ["no-such-binary-minikp"])


def test_lb_routes_send_clients_to_the_nodes(cluster):
    fabric, server, p, _ = cluster
    client_ns = names.client_netns("mkt-fab1", "outside")
    lb = "172.18.255.200"
    fabric.add_lb_route(lb)
    [route] = [r for r in ip_json(client_ns, "route") if r["dst"] == lb]
    assert sorted(h["gateway"] for h in route["nexthops"]) == ["172.18.0.2", "172.18.0.3"]
    # only node-2 (e.g. the only one with local endpoints); make node-2 answer on the LB ip
    fabric.add_lb_route(lb, nodes=["node-2"])
    [route] = [r for r in ip_json(client_ns, "route") if r["dst"] == lb]
    assert route["gateway"] == "172.18.0.3"
    node2 = fabric.node_path("node-2")
    run_in(node2, ["ip", "addr", "add", f"{lb}/32", "dev", "lo"], check=True)
    server.add("lb", node2, "node-2-lb", listeners_for(Container("x", "", [ContainerPort(8080)])))
    try:
        assert http_get(fabric.client_path("outside"), lb, 8080) == ("node-2-lb", "172.18.0.100")
    finally:
        server.remove("lb")
        run_in(node2, ["ip", "addr", "del", f"{lb}/32", "dev", "lo"], check=True)
    fabric.remove_lb_route(lb)
    fabric.remove_lb_route(lb)  # idempotent
    assert [r for r in ip_json(client_ns, "route") if r["dst"] == lb] == []


def test_a_connection_stays_on_its_node_when_the_lb_address_moves(cluster):
    """A load balancer tracks connections: one opened through node-1 keeps going to node-1
    after the address is routed to node-2 only (as a cloud load balancer drains a node),
    while new connections go to node-2. Plain ECMP re-routing would send the open
    connection's next packets to node-2, whose pod answers them with a reset."""
    fabric, server, p, _ = cluster
    lb, client = "172.18.255.201", fabric.client_path("outside")
    for node in ("node-1", "node-2"):
        run_in(fabric.node_path(node), ["ip", "addr", "add", f"{lb}/32", "dev", "lo"], check=True)
        server.add(f"lb-{node}", fabric.node_path(node), f"{node}-lb",
                   listeners_for(Container("x", "", [ContainerPort(8080)])))
    try:
        fabric.add_lb_route(lb, nodes=["node-1"])
        with in_netns(client):
            s = socket.create_connection((lb, 8080), timeout=2.0)
        with s:
            fabric.add_lb_route(lb, nodes=["node-2"])
            assert http_get(client, lb, 8080)[0] == "node-2-lb"
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        assert data.endswith(b"node-1-lb\n"), data
    finally:
        fabric.remove_lb_route(lb)
        for node in ("node-1", "node-2"):
            server.remove(f"lb-{node}")
            run_in(fabric.node_path(node), ["ip", "addr", "del", f"{lb}/32", "dev", "lo"])


def test_remove_pod_cuts_it_off_and_others_keep_working(cluster):
    fabric, server, p, paths = cluster
    extra = PodPlan("default", "gone-soon", "node-1", "10.244.1.99", "Pod", "gone-soon",
                    p.pods[0].template)
    path = fabric.add_pod(extra)
    server.add("gone-soon", path, extra.name, listeners_for(extra.template.containers[0]))
    assert http_get(paths[p.pods[2].name], extra.ip, 9376)[0] == "gone-soon"
    # adding it again fails and leaves the existing pod working
    with pytest.raises(FileExistsError):
        fabric.add_pod(extra)
    with pytest.raises(OperationError, match="no node"):
        fabric.add_pod(PodPlan("default", "lost", "node-9", "10.244.9.9", "Pod", "lost",
                               extra.template))
    assert not os.path.exists(fabric.pod_path("default", "lost"))
    assert http_get(paths[p.pods[2].name], extra.ip, 9376)[0] == "gone-soon"
    server.remove("gone-soon")
    fabric.remove_pod("default", "gone-soon")
    fabric.remove_pod("default", "gone-soon")  # idempotent
    assert not os.path.exists(path)
    assert len(ip_json(names.node_netns("mkt-fab1", "node-1"), "link", "show", "master", "cni0")) == 2
    with pytest.raises(OSError):
        http_get(paths[p.pods[2].name], extra.ip, 9376, timeout=0.5)
    assert http_get(paths[p.pods[2].name], p.pods[0].ip, 9376)[0] == p.pods[0].name


def test_build_refuses_leftovers_and_touches_nothing():
    name = "mkt-fabdup"
    first = Fabric(name, plan(name, nodes=1, pods_per_node=0))
    try:
        first.build()
        with pytest.raises(OperationError, match="minikp down --name mkt-fabdup"):
            Fabric(name, plan(name, nodes=1, pods_per_node=0)).build()
        assert len(netns.names(names.netns_prefix(name))) == 3  # world, node, client intact
    finally:
        first.destroy()
    first.destroy()  # idempotent
    assert netns.names(names.netns_prefix(name)) == []


def test_cluster_names_that_extend_another_are_kept_apart():
    assert teardown.cluster_of("minikp-a_world") == "a"
    assert teardown.cluster_of("minikp-a-b_node-node-1") == "a-b"
    assert teardown.cluster_of("minikp-a_pod-default.web-1") == "a"
    assert teardown.cluster_of("other-world") is None
    short, longer = "mkt-fabx", "mkt-fabx-y"
    a = Fabric(short, plan(short, nodes=1, pods_per_node=1))
    b = Fabric(longer, plan(longer, nodes=1, pods_per_node=1))
    try:
        a.build()
        b.build()
        a.add_pod(a.plan.pods[0])
        b.add_pod(b.plan.pods[0])
        assert {short, longer} <= set(teardown.list_clusters())
        assert all(not n.startswith(names.netns_prefix(longer)) for n in teardown.cluster_netns(short))
        a.destroy()
        assert len(netns.names(names.netns_prefix(longer))) == 4  # the longer one untouched
        assert netns.names(names.netns_prefix(short)) == []
    finally:
        a.destroy()
        b.destroy()


OWNER = """
import sys, time
sys.path.insert(0, {root!r})
from test_fabric import plan
from minikp.fabric import Fabric
from minikp.workloads.commands import start_command
f = Fabric({name!r}, plan({name!r}, nodes=2, pods_per_node=1))
f.build()
pod = f.plan.pods[0]
path = f.add_pod(pod)
p = start_command(path, ["sleep", "300"], hostname=pod.name)
print(p.pid, flush=True)
time.sleep(300)
"""


def test_destroy_after_sigkill_finds_processes_by_their_namespace():
    name = "mkt-fabkill"
    teardown.destroy_cluster(name)
    before = host_view()
    os.makedirs(names.state_dir(name), exist_ok=True)
    owner = subprocess.Popen([sys.executable, "-c", OWNER.format(root=ROOT, name=name)],
                             stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": os.path.dirname(__file__)})
    try:
        sleep_pid = int(owner.stdout.readline())
        owner.send_signal(signal.SIGKILL)  # no Python state left anywhere
        owner.wait(5)
        assert os.path.exists(f"/proc/{sleep_pid}")
        assert len(netns.names(names.netns_prefix(name))) == 5
        assert name in teardown.list_clusters()
        t = time.monotonic()
        teardown.destroy_cluster(name)
        print(f"\ndestroy_cluster after SIGKILL: {(time.monotonic() - t) * 1000:.1f} ms")
        # the sleep was ended (it is the dead owner's orphan; init reaps it)
        deadline = time.monotonic() + 5
        while os.path.exists(f"/proc/{sleep_pid}") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not os.path.exists(f"/proc/{sleep_pid}") or open(
            f"/proc/{sleep_pid}/stat").read().rpartition(")")[2].split()[0] == "Z"
    finally:
        owner.kill()
        owner.wait()
        teardown.destroy_cluster(name)
    assert netns.names(names.netns_prefix(name)) == []
    assert not os.path.exists(names.state_dir(name))
    assert name not in teardown.list_clusters()
    assert host_view() == before
    teardown.destroy_cluster(name)  # idempotent on nothing


def test_add_pod_timing_for_100_pods():
    name = "mkt-fabperf"
    teardown.destroy_cluster(name)
    p = plan(name, nodes=2, pods_per_node=50)
    fabric = Fabric(name, p)
    server = WorkloadServer()
    try:
        t0 = time.perf_counter()
        fabric.build()
        t1 = time.perf_counter()
        paths = [fabric.add_pod(pod) for pod in p.pods]
        t2 = time.perf_counter()
        server.start()
        for pod, path in zip(p.pods, paths):
            server.add(pod.name, path, pod.name, listeners_for(pod.template.containers[0]))
        t3 = time.perf_counter()
        print(f"\nbuild {1000 * (t1 - t0):.1f} ms; add_pod {1000 * (t2 - t1) / len(paths):.2f} ms/pod; "
              f"workloads {1000 * (t3 - t2) / len(paths):.2f} ms/pod")
        last = p.pods[-1]
        assert http_get(paths[0], last.ip, 9376)[0] == last.name
    finally:
        server.stop()
        t4 = time.perf_counter()
        fabric.destroy()
        print(f"destroy {1000 * (time.perf_counter() - t4):.1f} ms")
    assert netns.names(names.netns_prefix(name)) == []


def test_a_failed_build_leaves_nothing():
    name = "mkt-fabfail"
    p = plan(name, nodes=2, pods_per_node=0)
    p.clients[0].ip = "172.18.0.999"  # the last thing built fails
    before = host_view()
    with pytest.raises(Exception):
        Fabric(name, p).build()
    assert netns.names(names.netns_prefix(name)) == []
    assert host_view() == before
