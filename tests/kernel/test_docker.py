"""Docker pods (minikp.dev/runtime: docker): real containers of minikp/serve-hostname behind a
Service, reached through ClusterIP, NodePort and LoadBalancer, restarted when killed from
outside, gone after `down`, with the host's network unchanged throughout."""

import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import netns_of

if shutil.which("dockerd") is None:
    pytest.skip("Docker pods need dockerd (Debian docker.io; scripts/setup.sh installs it)",
                allow_module_level=True)

from minikp.docker import engine, images  # noqa: E402
from minikp.docker.runtime import LABEL_CLUSTER  # noqa: E402

SCENARIO = """
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
  replicas: 2
  selector: {matchLabels: {app: hostnames}}
  template:
    metadata:
      labels: {app: hostnames}
      annotations: {minikp.dev/runtime: docker}
    spec:
      containers:
      - name: hostnames
        image: minikp/serve-hostname
        ports: [{containerPort: 9376, protocol: TCP}, {containerPort: 9376, protocol: UDP}]
        env: [{name: GREETING, value: "hello $(HOSTNAMES_SERVICE_HOST)"}]
---
apiVersion: v1
kind: Pod
metadata: {name: builtin-one, labels: {app: hostnames}}
spec:
  containers:
  - name: hostnames
    image: registry.k8s.io/serve_hostname
---
apiVersion: v1
kind: Service
metadata: {name: hostnames}
spec:
  type: LoadBalancer
  selector: {app: hostnames}
  ports:
  - {name: http, protocol: TCP, port: 80, targetPort: 9376}
  - {name: udp, protocol: UDP, port: 80, targetPort: 9376}
"""


def host_network():
    """What the host's network is: links, routes, forwarding sysctls, firewall."""
    def run(*argv):
        return subprocess.run(argv, capture_output=True, text=True).stdout

    sysctls = {k: open("/proc/sys/" + k.replace(".", "/")).read().strip()
               for k in ("net/ipv4/ip_forward", "net/ipv4/conf/all/forwarding",
                         "net/bridge/bridge-nf-call-iptables")
               if os.path.exists("/proc/sys/" + k)}
    links = [(l.split(":")[1].strip()) for l in run("ip", "-o", "link").splitlines()
             if "veth" not in l]  # other clusters' links come and go; ours are in namespaces
    rules = [l for l in run("iptables-save").splitlines() if not l.startswith(("#", ":"))]
    return {"links": sorted(links), "routes": run("ip", "route"), "sysctls": sysctls,
            "iptables": rules, "forward": run("iptables", "-S", "FORWARD").splitlines()[0]}


@pytest.fixture(scope="module", autouse=True)
def built_images():
    """The images the tests run, built (offline) if missing."""
    user = engine.process_user()
    client = engine.client(engine.acquire(user))
    try:
        images.ensure(client, ["pause", "serve-hostname"])
    finally:
        client.close()
        engine.release(user)


def docker_client():
    return engine.client(engine.Paths().host)


def hostnames(cluster, source, url, count):
    return {a for a in cluster.answers(source, url, count)}


def test_docker_pods_serve_through_every_service_type_and_come_back(cluster_factory):
    before = host_network()
    c = cluster_factory(SCENARIO, name="docker-kt")
    pods = {p["metadata"]["name"]: p for p in c.pods("hostnames")}
    docker_pods = sorted(pods)
    assert len(docker_pods) == 2
    svc = c.svc("hostnames")
    cip, lb = svc["spec"]["clusterIP"], svc["status"]["loadBalancer"]["ingress"][0]["ip"]
    node_port = svc["spec"]["ports"][0]["nodePort"]
    node_ip = c.get("nodes")[0]["status"]["addresses"][0]["address"]

    # the containers' own hostnames answer (the built-in pod's name too: both back it)
    want = set(docker_pods) | {"builtin-one"}
    for url in (f"http://{cip}/", f"http://{node_ip}:{node_port}/", f"http://{lb}/"):
        assert hostnames(c, "client/outside", url, 40) == want, url
    udp = [r["body"] for r in c.probe("client/outside", "udp", f"{cip}:80", 30) if r["ok"]]
    assert set(udp) == want

    # the container is the pod: its address, hostname, the kubelet's env and resolv.conf
    dc = docker_client()
    try:
        mine = dc.containers.list(filters={"label": f"{LABEL_CLUSTER}=docker-kt"})
        app = next(x for x in mine if x.labels["minikp.dev/container"] == "hostnames"
                   and x.labels["minikp.dev/pod"] == f"default/{docker_pods[0]}")
        out = app.exec_run(["sh", "-c", "hostname; ip -4 -o addr show eth0; echo $GREETING; "
                                        "cat /etc/resolv.conf"]).output.decode()
        assert out.splitlines()[0] == docker_pods[0]
        assert pods[docker_pods[0]]["status"]["podIP"] + "/" in out
        assert f"hello {cip}" in out
        assert "search default.svc.cluster.local" in out

        # exec joins the container (not the pause container); logs are the container's
        assert c.cli("exec", docker_pods[0], "--", "cat", "/etc/hostname").stdout.strip() \
            == docker_pods[0]
        assert "serving hostname (TCP, UDP) on port 9376" in c.cli("logs", docker_pods[0]).stdout

        # killed from outside: restarted (RESTARTS 1), back in the endpoints
        app.kill()
        deadline = time.time() + 20
        while time.time() < deadline:
            p = next(p for p in c.pods("hostnames") if p["metadata"]["name"] == docker_pods[0])
            cs = p["status"]["containerStatuses"][0]
            if cs["restartCount"] == 1 and p["status"]["conditions"][0]["status"] == "True":
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"not restarted and ready again: {json.dumps(p['status'])}")
        assert hostnames(c, "client/outside", f"http://{cip}/", 40) == want
        table = c.cli("get", "pods").stdout
        row = next(l for l in table.splitlines() if l.startswith(docker_pods[0]))
        assert row.split()[1:4] == ["1/1", "Running", "1"], table
    finally:
        dc.close()

    c.cli("down")
    assert netns_of("docker-kt") == []
    users = os.listdir(engine.Paths().users) if os.path.exists(engine.RUN_DIR) else []
    assert "docker-kt" not in users
    assert users or not os.path.exists(engine.RUN_DIR), "the private engine was not stopped"
    assert users or not any(p for p in os.listdir("/proc") if p.isdigit()
                   and _comm(p) in ("dockerd", "containerd-shim-runc-v2")
                   and engine.RUN_DIR in _cmdline(p))
    assert host_network() == before


def _comm(pid):
    try:
        return open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        return ""


def _cmdline(pid):
    try:
        return open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
    except OSError:
        return ""


PULLED = """
apiVersion: v1
kind: Pod
metadata: {name: pulled, labels: {app: pulled}, annotations: {minikp.dev/runtime: docker}}
spec:
  containers:
  - name: app
    image: %s
    ports: [{containerPort: 9376}]
"""


WAITING = PULLED + """---
apiVersion: v1
kind: Pod
metadata: {name: other, labels: {app: other}}
spec:
  containers: [{name: app, image: registry.k8s.io/serve_hostname, ports: [{containerPort: 9376}]}]
---
apiVersion: v1
kind: Service
metadata: {name: pulled}
spec:
  selector: {app: pulled}
  ports: [{port: 80, targetPort: 9376}]
"""


@pytest.fixture
def registry(tmp_path):
    """Debian's docker-registry on loopback (never the internet): pushes minikp/serve-hostname
    as 127.0.0.1:PORT/minikp-test/hostname:v1, then drops the local tag so that it must be
    pulled. Yields the registry's address and push(NAME): minikp/serve-hostname pushed as
    ADDRESS/minikp-test/NAME:v1 (an image that was missing becomes available)."""
    import socket
    import types
    if shutil.which("docker-registry") is None:
        pytest.skip("the pull path needs Debian's docker-registry (scripts/setup.sh installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "registry.yml"
    cfg.write_text(f"version: 0.1\nlog: {{level: error}}\nstorage:\n  filesystem: "
                   f"{{rootdirectory: {tmp_path}/data}}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen(["docker-registry", "serve", str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    user = engine.process_user()
    client = engine.client(engine.acquire(user))
    pushed = []

    def push(name):
        repo = f"127.0.0.1:{port}/minikp-test/{name}"
        client.images.get(images.tag("serve-hostname")).tag(repo, "v1")
        for _ in client.images.push(repo, tag="v1", stream=True, decode=True):
            pass
        client.images.remove(f"{repo}:v1")
        pushed.append(f"{repo}:v1")

    try:
        deadline = time.time() + 10
        while subprocess.run(["curl", "-sf", f"http://127.0.0.1:{port}/v2/"],
                             capture_output=True).returncode != 0:
            assert time.time() < deadline, "the registry did not start"
            time.sleep(0.1)
        push("hostname")
        yield types.SimpleNamespace(address=f"127.0.0.1:{port}", push=push)
    finally:
        for ref in pushed:
            try:
                client.images.remove(ref)
            except Exception:  # noqa: BLE001 - not pulled
                pass
        client.close()
        engine.release(user)
        proc.terminate()
        proc.wait()


def test_an_image_is_pulled(cluster_factory, registry):
    image = f"{registry.address}/minikp-test/hostname:v1"
    c = cluster_factory(PULLED % image, name="docker-pull")
    pod = c.pods("pulled")[0]
    assert pod["status"]["conditions"][0]["status"] == "True"
    assert c.answers("node/node-1", f"http://{pod['status']['podIP']}:9376/") == ["pulled"]
    assert f'pulled image "{image}"' in c.cli("events").stdout


def test_an_image_that_cannot_be_had_backs_off_until_it_can(tmp_path, registry):
    """As the kubelet: the pod stays Pending (ErrImagePull, then ImagePullBackOff) while
    `up` goes on and names it; once the image is in the registry the next try pulls it."""
    from conftest import Cluster, minikp
    missing = f"{registry.address}/minikp-test/later:v1"
    path = tmp_path / "waiting.yaml"
    path.write_text(WAITING % missing)
    c = Cluster("docker-pull", str(path))
    try:
        up = minikp("up", str(path), "--name", c.name)
        line = next(l for l in up.stdout.splitlines() if l.startswith("pod default/pulled not ready"))
        assert f'Failed to pull image "{missing}"' in line and "manifest unknown" in line, line
        assert c.pods("other")[0]["status"]["conditions"][0]["status"] == "True"
        pod = c.pods("pulled")[0]
        assert pod["status"]["phase"] == "Pending"
        assert pod["status"]["conditions"][0]["status"] == "False"
        eps = next(e for e in c.get("endpoints") if e["metadata"]["name"] == "pulled")
        assert not any(s.get("addresses") for s in eps.get("subsets", [])), eps  # not Ready
        assert f'Failed to pull image "{missing}": ' in c.cli("describe", "pod", "pulled").stdout
        time.sleep(3)  # the kubelet's next sync finds the back-off running
        table = c.cli("get", "pods").stdout
        assert any(l.startswith("pulled ") and "ImagePullBackOff" in l
                   for l in table.splitlines()), table

        registry.push("later")  # the next try (10 s after the first) pulls it
        deadline = time.time() + 30
        while c.pods("pulled")[0]["status"]["conditions"][0]["status"] != "True":
            assert time.time() < deadline, c.cli("get", "pods").stdout
            time.sleep(0.5)
        pod = c.pods("pulled")[0]
        assert pod["status"]["phase"] == "Running"
        assert c.answers("node/node-1", f"http://{pod['status']['podIP']}:9376/") == ["pulled"]
        ip = c.svc("pulled")["spec"]["clusterIP"]
        assert c.answers("node/node-1", f"http://{ip}/") == ["pulled"]
    finally:
        minikp("down", "--name", c.name, check=False)
    assert netns_of(c.name) == []


CRASHER = """
apiVersion: v1
kind: Pod
metadata: {name: crasher, annotations: {minikp.dev/runtime: %s}}
spec:
  containers:
  - name: app
    image: minikp/netbox
    command: [sh, -c, "echo run; exit 3"]
"""


@pytest.mark.parametrize("runtime", ["docker", "command"])
def test_a_crashing_container_backs_off_and_counts_its_restarts(cluster_factory, runtime):
    """restartPolicy Always (the default) for every runtime: the kubelet's back-off."""
    c = cluster_factory(CRASHER % runtime, name="docker-crash")  # up goes on: not Ready
    deadline = time.time() + 25
    while time.time() < deadline:
        row = next(l for l in c.cli("get", "pods").stdout.splitlines() if l.startswith("crasher"))
        if row.split()[2:4] == ["CrashLoopBackOff", "2"]:  # restarted twice, exited again
            break
        time.sleep(0.5)
    assert row.split()[1:4] == ["0/1", "CrashLoopBackOff", "2"]  # at once, then after 10 s
    # a Docker restart is a new container: its log is the current run's (kubectl logs);
    # a command's log file keeps every run
    assert c.cli("logs", "crasher").stdout.split() == ["run"] * (1 if runtime == "docker" else 3)

    if runtime != "docker":
        return
    # a SIGKILLed supervisor leaves its containers; `down` finds them by label
    from minikp import state
    os.kill(state.read("docker-crash")["supervisorPid"], 9)
    c.cli("down")
    dc = docker_client() if os.path.exists(engine.Paths().socket) else None
    if dc is not None:  # another user keeps the engine up: none of ours is left on it
        assert dc.containers.list(all=True, filters={"label": f"{LABEL_CLUSTER}=docker-crash"}) == []
        dc.close()
    assert netns_of("docker-crash") == []
