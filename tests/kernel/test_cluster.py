"""A whole cluster through the real CLI: bring-up, pods answering across nodes, Services
through the node proxies, exec, down leaving nothing behind (also after SIGKILL and after a
failed up), bad input creating nothing."""

import os
import signal
import time

import pytest

from conftest import minikp, netns_of

HOSTNAMES = """
apiVersion: minikp.dev/v1alpha1
kind: Cluster
spec:
  nodes: 2
  clients: [{name: outside}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: hostnames}
spec:
  replicas: 3
  selector: {matchLabels: {app: hostnames}}
  template:
    metadata: {labels: {app: hostnames}}
    spec:
      containers:
      - name: hostnames
        image: k8s.gcr.io/serve_hostname
        ports: [{containerPort: 9376}]
---
apiVersion: v1
kind: Service
metadata: {name: hostnames}
spec:
  type: NodePort
  selector: {app: hostnames}
  ports: [{port: 80, targetPort: 9376, nodePort: 30080}]
"""


def processes_in(cluster):
    """PIDs whose network namespace is one of the cluster's (by inode, as down finds them)."""
    inodes = set()
    for ns in netns_of(cluster):
        try:
            inodes.add(os.stat(f"/run/netns/{ns}").st_ino)
        except FileNotFoundError:
            pass
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino in inodes:
                pids.append(int(pid))
        except (FileNotFoundError, PermissionError):
            pass
    return pids


def assert_gone(name):
    assert netns_of(name) == []
    assert not os.path.exists(f"/run/minikp/{name}")


def test_pods_answer_across_nodes_and_through_the_service(cluster_factory):
    c = cluster_factory(HOSTNAMES)
    pods = c.pods("hostnames-")
    assert len(pods) == 3
    assert {p["spec"]["nodeName"] for p in pods} == {"node-1", "node-2"}  # spread
    names = {p["metadata"]["name"] for p in pods}
    for src in pods:
        for dst in pods:
            if src is dst:
                continue
            got = c.answers(src["metadata"]["name"], f"http://{dst['status']['podIP']}:9376/")
            assert got == [dst["metadata"]["name"]], (src["spec"]["nodeName"], dst["spec"]["nodeName"])
    # UDP on the same port answers with the pod name too
    dst = pods[0]
    udp = c.probe(pods[1]["metadata"]["name"], "udp", f"{dst['status']['podIP']}:9376")
    assert udp[0]["body"] == dst["metadata"]["name"]
    # the Service's ClusterIP from a pod, and its NodePort from outside, reach all three
    ip = c.svc("hostnames")["spec"]["clusterIP"]
    assert set(c.answers(pods[0]["metadata"]["name"], f"http://{ip}/", 40)) == names
    node_ip = c.get("nodes")[1]["status"]["addresses"][0]["address"]
    assert set(c.answers("client/outside", f"http://{node_ip}:30080/", 40)) == names
    # kubectl-shaped views of the same endpoints
    (sl,) = [s for s in c.get("endpointslices") if s["metadata"]["labels"]["kubernetes.io/service-name"] == "hostnames"]
    assert sl["metadata"]["name"].startswith("hostnames-") and len(sl["metadata"]["name"]) == len("hostnames-") + 5
    assert {e["targetRef"]["name"] for e in sl["endpoints"]} == names
    table = c.cli("get", "endpointslices").stdout
    assert table.split()[:5] == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"] and "9376" in table


def test_exec_gives_the_pods_network_hostname_and_resolv_conf(cluster_factory):
    c = cluster_factory(HOSTNAMES)
    pod = c.pods("hostnames-")[0]
    name = pod["metadata"]["name"]
    out = c.cli("exec", name, "--", "sh", "-c", "hostname; ip -4 -o addr show eth0; cat /etc/resolv.conf").stdout
    lines = out.splitlines()
    assert lines[0] == name
    assert pod["status"]["podIP"] in lines[1]
    assert "nameserver 10.96.0.10" in out and "search default.svc.cluster.local" in out
    node = c.cli("exec", "node/node-1", "--", "hostname").stdout.strip()
    assert node == "node-1"
    assert c.cli("exec", "nosuchpod", "--", "true", check=False).returncode == 2


def test_down_leaves_nothing_and_works_after_sigkill(cluster_factory):
    c = cluster_factory(HOSTNAMES)
    assert len(netns_of(c.name)) >= 1 + 2 + 1 + 3  # world, nodes, client, pods (+ dns pods)
    assert processes_in(c.name), "dnsmasq runs inside the DNS pods"
    with open(f"/run/minikp/{c.name}/lock") as f:  # "PID ROLE" of the lock's holder
        pid, role = f.read().split()
    assert role == "supervisor"
    pid = int(pid)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    leftovers = netns_of(c.name)
    assert leftovers
    minikp("down", "--name", c.name)
    assert_gone(c.name)
    assert processes_in(c.name) == []


def test_two_clusters_side_by_side_and_a_second_up_fails(cluster_factory, tmp_path):
    a = cluster_factory(HOSTNAMES, name="mkt-side-a")
    b = cluster_factory(HOSTNAMES, name="mkt-side-b")
    assert a.pods("hostnames-") and b.pods("hostnames-")
    again = minikp("up", a.path, "--name", a.name, check=False)
    assert again.returncode == 1 and "already up" in again.stderr
    assert a.answers("client/outside", "http://172.18.0.2:30080/")[0].startswith("hostnames-")


def test_bad_input_creates_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(HOSTNAMES.replace("port: 80,", "port: 70000,"))
    r = minikp("up", str(bad), "--name", "mkt-bad", check=False)
    assert r.returncode == 2
    assert "bad.yaml:" in r.stderr and 'Service "hostnames"' in r.stderr and "spec.ports[0].port" in r.stderr
    assert_gone("mkt-bad")
    r = minikp("up", str(bad), "--name", "mkt-bad", "--proxy-mode", "ipvs", check=False)
    assert r.returncode == 2


def test_a_failure_halfway_leaves_nothing(tmp_path):
    """A pod whose command does not exist, after the world, nodes and the other pods were
    built: up must fail with exit 1 and remove all of it."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text(HOSTNAMES + """
---
apiVersion: v1
kind: Pod
metadata: {name: zz-last}
spec: {containers: [{name: c, image: busybox, command: [/nonexistent/minikp-test-binary]}]}
""")
    name = "mkt-halfway"
    try:
        r = minikp("up", str(scenario), "--name", name, check=False)
        assert r.returncode == 1, r.stderr
        assert "minikp-test-binary" in r.stderr
        assert_gone(name)
    finally:
        minikp("down", "--name", name, check=False)


def test_done_when_bring_up_time(tmp_path):
    """The issue's 'done when' scenario: only a Deployment and a Service."""
    scenario = tmp_path / "plain.yaml"
    scenario.write_text(HOSTNAMES.split("---", 1)[1].replace("type: NodePort", "type: ClusterIP")
                        .replace(", nodePort: 30080", ""))
    t0 = time.monotonic()
    try:
        minikp("up", str(scenario), "--name", "mkt-plain")
        print(f"bring-up of 3 serve_hostname pods + DNS: {time.monotonic() - t0:.2f}s")
    finally:
        minikp("down", "--name", "mkt-plain", check=False)
    assert_gone("mkt-plain")


def test_rules_and_trace_go_through_the_clusters_proxier(cluster_factory):
    c = cluster_factory(HOSTNAMES)
    from minikp import state
    st = state.read(c.name)
    assert st["proxyMode"] == "iptables" and st["proxy"].startswith("iptables (")
    backend = st["proxySettings"]["iptables_backend"]
    assert backend in ("legacy", "nft") and st["proxy"] == f"iptables ({backend})"
    nat = c.cli("rules", "node-1", "--table", "nat").stdout
    assert nat.startswith("# Generated by iptables-save") and "*nat" in nat and "*filter" not in nat
    assert "KUBE-SVC-" in nat
    bad = c.cli("rules", "node-1", "--format", "nft", check=False)
    assert bad.returncode == 2 and "available: iptables" in bad.stderr
    assert c.cli("rules", "node-1", "--table", "bogus", check=False).returncode == 2
    assert c.cli("rules", "node-9", check=False).returncode == 2
    out = c.cli("trace", "--from", "client/outside", "--to", "172.18.0.2:30080").stdout
    assert "KUBE-NODEPORTS" in out and "KUBE-SEP-" in out and "answer: connected" in out


def test_ipvs_mode_on_a_kernel_without_ipvs_is_refused_in_one_line(tmp_path):
    """kube-proxy falls back to iptables mode; minikp says why it cannot run ipvs and stops."""
    if os.path.exists("/proc/net/ip_vs"):
        pytest.skip("this kernel has IPVS: ipvs mode runs (tests/kernel/test_ipvs*.py)")
    scenario = tmp_path / "s.yaml"
    scenario.write_text(HOSTNAMES)
    r = minikp("up", str(scenario), "--name", "mkt-noipvs", "--proxy-mode", "ipvs", check=False)
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1
    assert "ipvs proxy mode needs IPVS" in r.stderr and "fall back to iptables" in r.stderr
    assert_gone("mkt-noipvs")
