"""The workshop walkthrough's commands as an attendee types them (issue 12): `trace` follows
the packet to the node that received it and counts only its packets, `curl` honours the URL
scheme, and the posts' tools (nslookup, dig, ping) work inside `minikp exec`."""

import re

import pytest

from conftest import Cluster, minikp

LOADBALANCER = "scenarios/loadbalancer.yaml"
HOSTNAMES = "scenarios/hostnames.yaml"


@pytest.fixture(scope="module")
def lb():
    name = "mkt-workshop-lb"
    minikp("up", LOADBALANCER, "--name", name)
    try:
        yield Cluster(name, LOADBALANCER)
    finally:
        minikp("down", "--name", name, check=False)


@pytest.fixture(scope="module")
def hostnames():
    name = "mkt-workshop-hn"
    minikp("up", HOSTNAMES, "--name", name)
    try:
        yield Cluster(name, HOSTNAMES)
    finally:
        minikp("down", "--name", name, check=False)


def legs(out: str) -> dict[str, dict[str, list[tuple[str, str, int, str]]]]:
    """trace's output: {leg title: {node: [(table, chain, packets, rule), ...]}}."""
    parsed, leg, node = {}, None, None
    for line in out.splitlines():
        if line.endswith("):") and not line.startswith(" "):
            leg = line.rsplit(" (", 1)[0]
            parsed[leg] = {}
        elif m := re.match(r"  through node (\S+):$", line):
            node = m.group(1)
            parsed[leg][node] = []
        elif m := re.match(r"    (\w+)\s+(\S+)\s+(\d+) pkt  (.*)$", line):
            parsed[leg][node].append((m.group(1), m.group(2), int(m.group(3)), m.group(4)))
    return parsed


def test_trace_of_a_blocked_client_shows_the_firewall_drop_on_the_node_it_reached(lb):
    r = lb.cli("trace", "--from", "client/blocked", "--to", "172.18.255.200:80", check=False)
    assert r.returncode == 1 and "failed:" in r.stdout, r.stdout
    [connection] = legs(r.stdout).values()
    drops = [(node, rule) for node, hits in connection.items() for t, chain, _, rule in hits
             if chain == "KUBE-PROXY-FIREWALL" and rule.endswith("-j DROP")]
    assert drops, r.stdout
    # the node listed first is the one whose rules dropped it
    assert next(iter(connection)) == drops[0][0], r.stdout


def test_trace_of_an_allowed_client_lists_fw_svc_sep_in_order_counting_only_its_packets(lb):
    out = lb.cli("trace", "--from", "client/allowed", "--to", "172.18.255.200:80").stdout
    [connection] = legs(out).values()
    node, hits = next(iter(connection.items()))
    chains = [chain for _, chain, _, _ in hits]
    fw = chains.index(next(c for c in chains if c.startswith("KUBE-FW-")))
    ext = chains.index(next(c for c in chains if c.startswith("KUBE-EXT-")))
    svc = chains.index(next(c for c in chains if c.startswith("KUBE-SVC-")))
    sep = chains.index(next(c for c in chains if c.startswith("KUBE-SEP-")))
    assert chains.index("KUBE-SERVICES") < fw < ext < svc < sep, out
    # nat rules see a connection's first packet only: exactly one, nothing else counted
    assert all(n == 1 for t, _, n, _ in hits if t == "nat"), out
    # a TCP connect and close sends at most 4 packets one way (SYN, ACK, FIN, ACK); the
    # replies are not counted (before: KUBE-FORWARD 6 pkt)
    assert max(n for _, _, n, _ in hits) <= 4, out
    assert "answer: connected" in out


def test_trace_to_a_name_shows_the_dns_lookup_apart(hostnames):
    out = hostnames.cli("trace", "--from", "pod/app=curl", "--to", "hostnames:80").stdout
    parsed = legs(out)
    dns, connection = parsed.values()
    assert list(parsed)[0] == "DNS lookup of hostnames"
    dns_rules = [rule for hits in dns.values() for _, _, _, rule in hits]
    conn_rules = [rule for hits in connection.values() for _, _, _, rule in hits]
    assert any("kube-system/kube-dns:dns" in r for r in dns_rules), out
    assert not any("hostnames" in r for r in dns_rules), out
    assert not any("kube-dns" in r for r in conn_rules), out
    assert any("default/hostnames:http -> " in r for r in conn_rules), out


def test_curl_sends_udp_urls_over_udp(hostnames):
    out = hostnames.cli("curl", "udp://hostnames:80", "--from", "pod/app=curl", "-c", "60").stdout
    assert "60 answered, 0 failed" in out, out
    # the Service's UDP port goes to the same pods: their names come back over UDP (60
    # random picks miss one of 3 pods with odds 3·(2/3)^60 ≈ 1e-10; 20 missed one in a CI run)
    assert out.count("hostnames-") == 3, out
    # a DNS server gets a datagram (no TCP connection): no answer to a non-DNS payload
    r = hostnames.cli("curl", "udp://10.96.0.10:53", "--from", "pod/app=curl", "-c", "1",
                      "--timeout", "0.5", check=False)
    assert r.returncode == 1 and "timed out" in r.stdout, r.stdout


def test_curl_dns_prints_the_answers_and_https_says_the_backend_has_no_tls(hostnames):
    ip = hostnames.svc("hostnames")["spec"]["clusterIP"]
    out = hostnames.cli("curl", "dns://hostnames", "--from", "pod/app=curl", "-c", "1").stdout
    assert "1 answered, 0 failed" in out and f"\n  {ip}  " in out, out
    r = hostnames.cli("curl", "https://hostnames:80/", "--from", "pod/app=curl", "-c", "1",
                      check=False)
    assert r.returncode == 1 and "hostnames:80 does not speak TLS" in r.stdout, r.stdout
    assert minikp("curl", "--name", hostnames.name, "gopher://x/",
                  check=False).returncode == 2


def test_the_posts_nslookup_dig_and_ping_work_inside_pods(hostnames):
    ip = hostnames.svc("hostnames")["spec"]["clusterIP"]
    out = hostnames.cli("exec", "pod/app=curl", "--", "nslookup", "hostnames").stdout
    assert "Name:\thostnames.default.svc.cluster.local" in out and f"Address: {ip}" in out, out
    out = hostnames.cli("exec", "pod/app=curl", "--", "dig", "+short",
                        "hostnames.default.svc.cluster.local").stdout
    assert out.strip() == ip
    # a ClusterIP is a set of rules for TCP/UDP ports, not a host: it does not answer ping
    r = hostnames.cli("exec", "pod/app=curl", "--", "ping", "-c", "1", "-W", "1", ip, check=False)
    assert r.returncode != 0 and "100% packet loss" in r.stdout, r.stdout
    # a pod IP does
    pod_ip = hostnames.pods("hostnames-")[0]["status"]["podIP"]
    assert hostnames.cli("exec", "pod/app=curl", "--", "ping", "-c", "1", "-W", "1",
                         pod_ip).returncode == 0


def test_rules_watch_prints_what_each_sync_changed(hostnames):
    import os
    import signal
    import subprocess
    import sys
    import time

    out_path = f"/tmp/{hostnames.name}-rules-watch.out"

    def wait_for(text, after=0):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(out_path) as f:
                got = f.read()
            if text in got[after:]:
                return got
            assert p.poll() is None, got
            time.sleep(0.1)
        raise AssertionError(f"no {text!r} in:\n{got}")

    with open(out_path, "w") as out:
        p = subprocess.Popen([sys.executable, "-m", "minikp.cli", "rules", "node-1", "--name",
                              hostnames.name, "--table", "nat", "--watch"], stdout=out,
                             stderr=subprocess.STDOUT, start_new_session=True)
    try:
        first = wait_for("COMMIT")
        assert "default/hostnames:http -> " in first
        hostnames.cli("scale", "deployment", "hostnames", "--replicas", "4")
        got = wait_for("\n  + -A KUBE-SVC-", len(first))
        changes = got[len(first):]
        assert "partial sync" in changes and "hostnames" in changes, changes
        # the new endpoint's chain, and the probabilities rewritten for four endpoints
        assert "  + :KUBE-SEP-" in changes and "--probability 0.25000000000" in changes, changes
        assert "  - -A KUBE-SVC-" in changes and "\n  *nat\n" in changes, changes
    finally:
        os.killpg(p.pid, signal.SIGINT)
        p.wait(10)
        os.unlink(out_path)
        hostnames.cli("scale", "deployment", "hostnames", "--replicas", "3")


def test_up_shows_its_progress_plain_when_piped_and_redrawn_on_a_terminal():
    import os
    import pty
    import subprocess
    import sys

    name = "mkt-workshop-progress"
    try:
        out = minikp("up", HOSTNAMES, "--name", name).stdout.splitlines()
        assert out[:4] == ["nodes: 2 built", "pods: 6/6 ready", "proxies: 2/2 synced",
                           "DNS: 2/2 ready"], out
        assert out[-1].startswith(f'cluster "{name}" is up in '), out
    finally:
        minikp("down", "--name", name, check=False)
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([sys.executable, "-m", "minikp.cli", "up", HOSTNAMES, "--name", name],
                             stdout=slave, stderr=slave, stdin=subprocess.DEVNULL)
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the terminal's other end closed: `up` is done
                break
            if not chunk:
                break
            seen += chunk
        assert p.wait(120) == 0, seen
    finally:
        os.close(master)
        minikp("down", "--name", name, check=False)
    text = seen.decode()
    # one line redrawn in place as the counts advance, then the summary on a clean line
    assert "\r\x1b[K[pods] nodes 2/2, pods ready 3/6" in text, text
    assert "\r\x1b[K[proxies] nodes 2/2, pods ready 6/6, proxies synced 1/2" in text, text
    assert "\r\x1b[K" + f'cluster "{name}" is up in ' in text, text
    assert "nodes: 2 built" not in text


def test_kube_dns_metrics_port_counts_the_dns_pods_queries(hostnames):
    import re as _re

    dns_pods = [p["status"]["podIP"] for p in hostnames.get("pods")
                if p["metadata"]["namespace"] == "kube-system"]
    assert len(dns_pods) == 2

    def scrape(ip):
        [r] = hostnames.probe("pod/app=curl", "http", f"http://{ip}:9153/metrics")
        assert r["ok"], r
        return r["body"]

    def total(name, label):
        n = 0
        for ip in dns_pods:
            m = _re.search(rf'^{name}{{[^}}]*{label}[^}}]*}} (\d+)$', scrape(ip), _re.M)
            n += int(m.group(1)) if m else 0
        return n

    before = (total("coredns_dns_requests_total", 'type="A"'),
              total("coredns_cache_hits_total", 'type="success"'))
    hostnames.cli("curl", "dns://hostnames", "--from", "pod/app=curl", "-c", "6")
    after = (total("coredns_dns_requests_total", 'type="A"'),
             total("coredns_cache_hits_total", 'type="success"'))
    assert after[0] - before[0] >= 6 and after[1] - before[1] >= 6, (before, after)
    # through the Service's third port, as Prometheus would scrape it
    [r] = hostnames.probe("pod/app=curl", "http", "http://10.96.0.10:9153/metrics")
    assert r["ok"] and "# TYPE coredns_dns_requests_total counter" in r["body"], r


IPTABLES_COMMANDS = ("iptables", "iptables-save", "iptables-restore",
                     "ip6tables", "ip6tables-save", "ip6tables-restore")


def host_iptables_view() -> dict:
    """What `iptables` means on the host: where each command leads, what it says it is, and
    the host's mounts (a shadowing mount leaking out of an exec would show here)."""
    import os
    import shutil
    import subprocess

    view = {}
    for c in IPTABLES_COMMANDS:
        path = shutil.which(c)
        view[c] = (path, path and os.path.realpath(path),
                   os.path.islink(f"/etc/alternatives/{c}") and os.readlink(f"/etc/alternatives/{c}"))
    view["version"] = subprocess.run(["iptables", "--version"], capture_output=True, text=True).stdout
    with open("/proc/self/mountinfo") as f:
        view["mounts"] = sorted(line.split()[4] for line in f)
    return view


def test_the_posts_iptables_commands_inside_a_node_show_what_the_proxy_wrote(hostnames):
    before = host_iptables_view()
    r = hostnames.cli("exec", "node/node-1", "--", "iptables-save", "-t", "nat")
    assert ":KUBE-SERVICES - [0:0]" in r.stdout and "-A KUBE-SVC-" in r.stdout, r.stdout
    assert "Warning" not in r.stdout + r.stderr, r.stdout + r.stderr
    r = hostnames.cli("exec", "node/node-1", "--", "iptables", "-t", "nat", "-nvL")
    assert "Chain KUBE-SERVICES (2 references)" in r.stdout, r.stdout
    assert "incompatible" not in r.stdout + r.stderr, r.stdout + r.stderr
    r = hostnames.cli("exec", "node/node-1", "--", "sh", "-c", "iptables-save | grep hostnames")
    assert '--comment "default/hostnames:http cluster IP"' in r.stdout, r.stdout
    # the same for IPv6 and restore (a no-op input: the table stays as it was)
    assert hostnames.cli("exec", "node/node-1", "--", "ip6tables", "-t", "nat", "-nL").returncode == 0
    hostnames.cli("exec", "node/node-1", "--", "sh", "-c",
                  "iptables-save -t filter | iptables-restore --test")
    # the other backend keeps its own name inside the node
    r = hostnames.cli("exec", "node/node-1", "--", "iptables-nft", "--version")
    assert "nf_tables" in r.stdout, r.stdout
    r = hostnames.cli("exec", "node/node-1", "--", "no-such-tool", check=False)
    assert r.returncode == 2 and "no-such-tool: command not found" in r.stderr, r.stderr
    # and nothing of this reached the host: its iptables, alternatives and mounts
    assert host_iptables_view() == before


def test_kubectls_everyday_get_and_describe_verbs(hostnames):
    rows = lambda out: [line.split() for line in out.splitlines()]  # noqa: E731
    for alias in ("deploy", "deployment", "deployments"):
        got = rows(hostnames.cli("get", alias).stdout)
        assert got[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], got
        assert got[1][:4] == ["hostnames", "3/3", "3", "3"], got
    got = rows(hostnames.cli("get", "deploy", "-A", "-o", "wide").stdout)
    assert ["kube-system", "coredns", "2/2", "2", "2"] == got[1][:5], got
    assert got[2][-3:] == ["hostnames", "registry.k8s.io/serve_hostname", "app=hostnames"], got
    [rs] = [r for r in rows(hostnames.cli("get", "rs").stdout)[1:]]
    assert rs[0].startswith("hostnames-") and rs[1:4] == ["3", "3", "3"], rs
    assert [r[:2] for r in rows(hostnames.cli("get", "ns").stdout)] == [
        ["NAME", "STATUS"], ["default", "Active"], ["kube-system", "Active"]]
    blocks = hostnames.cli("get", "all").stdout.split("\n\n")
    assert [b.splitlines()[1].split("/")[0] for b in blocks] == [
        "pod", "service", "deployment.apps", "replicaset.apps"], blocks
    assert "No resources found in nowhere namespace." in hostnames.cli(
        "get", "all", "-n", "nowhere").stderr

    # describe, with the object's recent events from the cluster's log
    hostnames.cli("scale", "deployment", "hostnames", "--replicas", "4")
    try:
        out = hostnames.cli("describe", "deploy", "hostnames").stdout
        assert "Replicas:               4 desired | 4 updated | 4 total | 4 available" in out, out
        assert f"NewReplicaSet:   {rs[0]} (4/4 replicas created)" in out, out
        assert "ScalingReplicaSet  " in out and f"Scaled up replica set {rs[0]} to 4" in out, out
        out = hostnames.cli("describe", "svc", "hostnames").stdout
        endpoints = re.search(r"^Endpoints:\s+(\S+)", out, re.M).group(1)
        assert endpoints.count(":9376") == 3 and "+ 1 more..." in out, out
        assert "EndpointsChanged" in out and "default/hostnames: 4 ready" in out, out
        pod = hostnames.pods("hostnames-")[0]["metadata"]["name"]
        out = hostnames.cli("describe", "pod", pod).stdout
        assert f"Controlled By:  ReplicaSet/{rs[0]}" in out and "Scheduled" in out, out
        assert out.count("default-scheduler") == 1, out  # its own events only
        out = hostnames.cli("describe", "node", "node-1").stdout
        assert re.search(r"^  Normal  +ProxySynced .* kube-proxy +proxy node-1: ", out, re.M), out
        assert "proxy node-2" not in out, out
    finally:
        hostnames.cli("scale", "deployment", "hostnames", "--replicas", "3")
    r = hostnames.cli("describe", "deploy", "nope", check=False)
    assert r.returncode == 1 and 'deployments.apps "nope" not found' in r.stderr, r.stderr
    r = hostnames.cli("describe", "ingress", "x", check=False)
    assert r.returncode == 1 and 'ingresses.networking.k8s.io "x" not found' in r.stderr, r.stderr
    assert hostnames.cli("describe", "cronjob", "x", check=False).returncode == 2
