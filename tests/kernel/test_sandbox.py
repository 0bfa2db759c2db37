"""Pods are sandboxed like containers: the escape catalogue, each attempt refused or harmless,
run through `minikp exec` in real sandboxes of a real cluster; what a privileged or a
NET_ADMIN pod declared it may do; volumes; exec probes in the sandbox; nothing left behind,
also after a SIGKILLed supervisor. Cluster names `mkt-sbx*`."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import minikp, netns_of

CLUSTER = "mkt-sbx"
HOST_SECRET = "MINIKP_SBX_HOST_SECRET"
CANARY = "/var/tmp/minikp-escape-canary"

INNOCENT = """
apiVersion: v1
kind: Pod
metadata: {name: innocent}
spec:
  containers:
  - name: c
    image: busybox
    command: [sh, -c, "touch /var/tmp/minikp-escape-canary; env > /var/tmp/minikp-escape-env; sleep 100000"]
"""

SCENARIO = """
apiVersion: minikp.dev/v1alpha1
kind: Cluster
spec:
  clients: [{name: outside, command: "sleep 100000"}]
---""" + INNOCENT + """
---
apiVersion: v1
kind: Pod
metadata: {name: neighbour}
spec:
  containers: [{name: c, image: busybox, command: [sleep, "424242"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: admin}
spec:
  containers:
  - name: c
    image: busybox
    command: [sleep, "100000"]
    securityContext: {capabilities: {add: [NET_ADMIN]}}
---
apiVersion: v1
kind: Pod
metadata: {name: privileged}
spec:
  containers:
  - name: c
    image: busybox
    command: [sleep, "100000"]
    securityContext:
      privileged: true
---
apiVersion: v1
kind: Pod
metadata: {name: restricted}
spec:
  securityContext: {runAsUser: 1000, runAsGroup: 1000}
  containers:
  - name: c
    image: busybox
    command: [sleep, "100000"]
    securityContext: {readOnlyRootFilesystem: true}
---
apiVersion: v1
kind: Pod
metadata: {name: volumes}
spec:
  volumes:
  - {name: shared, emptyDir: {}}
  - {name: data, hostPath: {path: HOSTDIR}}
  containers:
  - name: a
    image: busybox
    command: [sleep, "100000"]
    volumeMounts:
    - {name: shared, mountPath: /shared}
    - {name: data, mountPath: /data}
    - {name: data, mountPath: /var/run/data, readOnly: true}  # /var/run -> /run: the pod's
  - name: b
    image: busybox
    command: [sh, -c, "echo from-b > /shared/b; sleep 100000"]
    volumeMounts: [{name: shared, mountPath: /shared}]
---
apiVersion: v1
kind: Pod
metadata: {name: probed}
spec:
  containers:
  - name: c
    image: busybox
    command: [sleep, "100000"]
    readinessProbe:
      exec: {command: [test, -f, /tmp/ready]}
      periodSeconds: 1
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: builtin}
spec:
  replicas: 1
  selector: {matchLabels: {app: builtin}}
  template:
    metadata: {labels: {app: builtin}}
    spec:
      containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The scenario up, with a secret in the environment of `minikp up`."""
    d = tmp_path_factory.mktemp("sbx")
    hostdir = d / "hostdata"
    hostdir.mkdir()
    (hostdir / "from-host").write_text("hello")
    path = d / "s.yaml"
    path.write_text(SCENARIO.replace("HOSTDIR", str(hostdir)))
    for f in (CANARY, "/var/tmp/minikp-escape-env"):
        if os.path.exists(f):
            os.unlink(f)
    minikp("down", "--name", CLUSTER, check=False)
    os.environ[HOST_SECRET] = "s3cret"
    try:
        up = minikp("up", str(path), "--name", CLUSTER)
    finally:
        del os.environ[HOST_SECRET]
    try:
        yield {"up": up, "file": str(path), "hostdir": hostdir}
    finally:
        minikp("down", "--name", CLUSTER, check=False)
    assert netns_of(CLUSTER) == []


def sh(target, script, check=True):
    r = minikp("exec", "--name", CLUSTER, target, "--", "sh", "-c", script, check=False)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def status(target) -> dict:
    out = sh(target, "cat /proc/1/status").stdout
    return dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)


# ---- the "Done when" ----------------------------------------------------------


def test_innocent_leaves_nothing_on_the_host_and_sees_only_its_own(cluster):
    assert not os.path.exists(CANARY) and not os.path.exists("/var/tmp/minikp-escape-env")
    assert sh("innocent", f"ls {CANARY}").stdout.strip() == CANARY  # in its own layer
    env = dict(l.split("=", 1) for l in sh("innocent", "cat /var/tmp/minikp-escape-env").stdout.splitlines()
               if "=" in l)
    assert HOST_SECRET not in env and "HOME" not in env
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert env["HOSTNAME"] == "innocent" and env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    kubelet = {"PATH", "HOSTNAME", "PWD", "SHLVL", "_"}  # PWD, SHLVL, _: the shell's own
    assert all(k in kubelet or k.startswith("KUBERNETES_") for k in env), env
    st = status("innocent")
    for field in ("CapEff", "CapPrm", "CapInh", "CapBnd"):
        assert int(st[field], 16) == 0xA80425FB, (field, st[field])  # Docker's defaults
    assert int(st["CapAmb"], 16) == 0 and st["NoNewPrivs"].strip() == "1"
    ps = minikp("exec", "--name", CLUSTER, "innocent", "--", "ps", "-e", "-o", "pid=,comm=").stdout
    procs = [l.split() for l in ps.splitlines()]
    assert procs[0] == ["1", "sh"] and sorted(c for _, c in procs) == ["ps", "sh", "sleep"], ps


# ---- the escape catalogue: each refused or harmless -------------------------------------


def test_writing_host_paths_lands_in_the_pods_layer(cluster):
    sh("innocent", "echo pwned > /etc/minikp-escape && echo x >> /usr/bin/minikp-escape && "
                   "mkdir -p /var/lib/minikp-escape")
    for p in ("/etc/minikp-escape", "/usr/bin/minikp-escape", "/var/lib/minikp-escape"):
        assert not os.path.exists(p)
    # minikp's and the host's runtime directories are not there at all
    r = sh("innocent", "ls /run/netns /run/minikp", check=False)
    assert r.returncode != 0 and "No such file" in r.stderr


def test_reading_root_finds_nothing(cluster):
    assert os.listdir("/root")  # the host's has files
    assert sh("innocent", "ls -A /root /home").stdout.split() == ["/home:", "/root:"]


def test_entering_another_namespace_is_refused(cluster):
    for opt, ns in (("net", "net"), ("mount", "mnt"), ("pid", "pid"), ("uts", "uts")):
        r = sh("innocent", f"nsenter --{opt}=/proc/1/ns/{ns} true", check=False)
        assert r.returncode != 0 and "Operation not permitted" in r.stderr, (ns, r.stderr)
    r = sh("innocent", "unshare --net true", check=False)
    assert r.returncode != 0


def test_chroot_gets_no_further_than_the_pods_root(cluster):
    """The classic chroot escape (chroot into a subdirectory, then climb with ..) ends at the
    sandbox's root: the host's root is not in its mount namespace at all."""
    script = ("import os; os.makedirs('/tmp/j', exist_ok=True); fd = os.open('/', os.O_RDONLY); "
              "os.chroot('/tmp/j'); os.fchdir(fd); [os.chdir('..') for _ in range(64)]; "
              "os.chroot('.'); print(os.path.exists('/run/netns'), sorted(os.listdir('/root')))")
    r = minikp("exec", "--name", CLUSTER, "innocent", "--", "python3", "-c", script)
    assert r.stdout.strip() == "False []"


def test_mount_and_kernel_settings_are_refused(cluster):
    r = sh("innocent", "mount -t tmpfs x /mnt", check=False)
    assert r.returncode != 0 and "permission denied" in (r.stdout + r.stderr).lower()
    r = sh("innocent", "echo 3 > /proc/sys/vm/drop_caches", check=False)
    assert r.returncode != 0 and "Read-only" in r.stderr


INIT_MODULE = ("import ctypes; l = ctypes.CDLL(None, use_errno=True); "
               "print(l.init_module(b'', 0, b''), ctypes.get_errno())")


def test_module_load_is_refused(cluster):
    import errno
    host = subprocess.run([sys.executable, "-c", INIT_MODULE], capture_output=True, text=True)
    if host.stdout.split() == ["-1", str(errno.ENOSYS)]:
        pytest.skip("this kernel is built without loadable modules (init_module: ENOSYS), so "
                    "no process can load one; CAP_SYS_MODULE's absence is checked by CapBnd")
    r = minikp("exec", "--name", CLUSTER, "innocent", "--", "python3", "-c", INIT_MODULE)
    assert r.stdout.split() == ["-1", str(errno.EPERM)]


def test_killing_a_host_process_is_impossible(cluster):
    victim = subprocess.Popen(["sleep", "300"])
    try:
        r = sh("innocent", f"kill -9 {victim.pid}", check=False)
        assert r.returncode != 0
        r = sh("innocent", "kill -9 -1; true", check=False)  # every process it can see
        time.sleep(0.2)
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def test_the_hosts_environment_is_nowhere(cluster):
    # the supervisor got the secret (it was in the environment of `minikp up`)...
    st = minikp("get", "pods", "--name", CLUSTER)  # the cluster still answers after kill -1
    assert st.returncode == 0
    r = sh("innocent", f"cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c {HOST_SECRET}",
           check=False)
    assert r.stdout.strip() == "0"


def test_other_pods_processes_are_invisible(cluster):
    assert "424242" not in sh("innocent", "ps -ef").stdout
    assert "424242" in sh("neighbour", "ps -ef").stdout


def test_a_client_command_is_sandboxed_and_keeps_its_network(cluster):
    st = status("client/outside")
    assert int(st["CapEff"], 16) == 0xA80425FB and st["NoNewPrivs"].strip() == "1"
    out = sh("client/outside", "ps -e -o comm=; env; ip -4 -o addr show").stdout
    # its command (sh -c "sleep ...") and this exec's sh and ps: nothing of the host's
    lines = out.splitlines()
    comms = lines[:next(i for i, l in enumerate(lines) if "=" in l)]
    assert sorted(comms) == ["ps", "sh", "sh", "sleep"], out
    assert HOST_SECRET not in out and "KUBERNETES_" not in out  # outside the cluster
    assert "HOSTNAME=outside" in out and "172.18." in out  # on the node network


# ---- what a pod declared --------------------------------------------------------------------


def test_privileged_is_warned_and_gets_everything(cluster):
    line = next(i for i, l in enumerate(open(cluster["file"]).read().splitlines(), 1)
                if "privileged: true" in l)
    assert f'{cluster["file"]}:{line}: Pod "privileged": spec.containers[0].securityContext' \
           ".privileged: true" in cluster["up"].stderr
    own = int(open("/proc/self/status").read().split("CapBnd:\t")[1].split()[0], 16)
    st = status("privileged")
    assert int(st["CapEff"], 16) == own and st["NoNewPrivs"].strip() == "0"
    sh("privileged", "mount -t tmpfs x /mnt && touch /mnt/y && umount /mnt")


def test_a_declared_capability_works_and_only_in_the_pod(cluster):
    sh("admin", "ip link add sbx0 type veth peer name sbx1 && ip link show sbx0")
    assert "sbx0" not in subprocess.run(["ip", "link"], capture_output=True, text=True).stdout
    r = sh("innocent", "ip link add sbx0 type veth peer name sbx1", check=False)
    assert r.returncode != 0 and "Operation not permitted" in r.stderr


def test_run_as_user_and_read_only_root(cluster):
    assert sh("restricted", "id -u; id -g").stdout.split() == ["1000", "1000"]
    st = status("restricted")
    assert int(st["CapEff"], 16) == 0 and int(st["CapBnd"], 16) == 0xA80425FB
    r = sh("restricted", "touch /var/tmp/x", check=False)
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    sh("restricted", "touch /tmp/x")  # /tmp is its own tmpfs


def test_empty_dir_is_shared_and_host_path_is_exactly_the_declared_path(cluster):
    deadline = time.monotonic() + 5
    while sh("volumes", "cat /shared/b", check=False).stdout.strip() != "from-b":
        assert time.monotonic() < deadline, "container b's write never reached container a"
        time.sleep(0.1)
    assert sh("volumes", "cat /data/from-host").stdout == "hello"
    assert sh("volumes", "cat /run/data/from-host").stdout == "hello"
    assert "Read-only" in sh("volumes", "touch /run/data/x", check=False).stderr
    assert not os.path.exists("/run/data")  # not made on the host's /run
    sh("volumes", "echo back > /data/from-pod")
    assert (cluster["hostdir"] / "from-pod").read_text() == "back\n"
    # the test's own tmp directory (the hostPath's parent) is not there
    r = sh("volumes", f"ls {cluster['hostdir'].parent}", check=False)
    assert r.returncode != 0


def test_exec_into_a_builtin_pod_gets_a_fresh_sandbox(cluster):
    pod = next(l.split()[0] for l in minikp("get", "pods", "--name", CLUSTER).stdout.splitlines()
               if l.startswith("builtin-"))
    out = sh(pod, "ps -e -o pid=,comm=; echo $HOSTNAME $KUBERNETES_SERVICE_HOST; "
                  "grep CapEff /proc/self/status").stdout.split("\n")
    assert out[0].split() == ["1", "sh"] and out[1].split()[1] == "ps"
    assert out[2] == f"{pod} 10.96.0.1" and out[3].split()[1] == "00000000a80425fb"


def test_ctrl_c_ends_an_exec_whose_command_is_a_fresh_sandboxs_pid_1(cluster):
    """A PID 1 ignores SIGINT it does not handle; `minikp exec` ends it for the user."""
    pod = next(l.split()[0] for l in minikp("get", "pods", "--name", CLUSTER).stdout.splitlines()
               if l.startswith("builtin-"))
    cli = subprocess.Popen([sys.executable, "-m", "minikp.cli", "exec", "--name", CLUSTER, pod,
                            "--", "sleep", "100"])
    try:
        time.sleep(1.0)  # started
        cli.send_signal(signal.SIGINT)
        assert cli.wait(10) == 128 + signal.SIGKILL
    finally:
        cli.kill()
        cli.wait()


def test_an_exec_probe_runs_in_the_pods_sandbox(cluster):
    def ready():
        pods = minikp("get", "pods", "--name", CLUSTER, "-o", "json").stdout
        import json
        p = next(p for p in json.loads(pods)["items"] if p["metadata"]["name"] == "probed")
        return p["status"]["conditions"][0]["status"] == "True"
    assert not ready()
    sh("probed", "touch /tmp/ready")  # the sandbox's private /tmp: only the probe in it sees it
    deadline = time.monotonic() + 6
    while not ready():
        assert time.monotonic() < deadline, "the exec probe did not see /tmp/ready"
        time.sleep(0.2)


# ---- nothing left behind ---------------------------------------------------------------------


def mount_namespaces() -> set[int]:
    out = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            out.add(os.stat(f"/proc/{pid}/ns/mnt").st_ino)
        except (FileNotFoundError, PermissionError):
            pass
    return out


def test_down_after_a_sigkilled_supervisor_leaves_no_processes_or_mounts(tmp_path):
    name = "mkt-sbxkill"
    path = tmp_path / "s.yaml"
    path.write_text(INNOCENT)
    minikp("down", "--name", name, check=False)
    minikp("up", str(path), "--name", name)
    try:
        from minikp import names
        from minikp.workloads.sandbox import sandbox_pid1
        pid1 = sandbox_pid1(names.netns_path(names.pod_netns(name, "default", "innocent")))
        assert pid1 is not None
        mnt = os.stat(f"/proc/{pid1}/ns/mnt").st_ino
        assert mnt in mount_namespaces()
        import json
        sup = json.load(open(os.path.join(names.state_dir(name), "state.json")))["supervisorPid"]
        os.kill(sup, signal.SIGKILL)
    finally:
        minikp("down", "--name", name, check=False)
    def gone_or_zombie():  # a zombie waits for init, which reaps the dead supervisor's orphans
        try:
            return open(f"/proc/{pid1}/stat").read().rpartition(")")[2].split()[0] == "Z"
        except FileNotFoundError:
            return True
    assert gone_or_zombie()
    assert mnt not in mount_namespaces()  # the sandbox's mounts went with its last process
    assert netns_of(name) == []
    with open("/proc/self/mountinfo") as f:
        mounts = f.read()
    assert name not in mounts and "upperdir=/tmp/upper" not in mounts  # none reached the host
