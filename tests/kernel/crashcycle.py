"""Crash cycles and the leftover census, shared by the reliability tier
(test_reliability_names.py) and `make soak` (tests/soak.py).

A crash cycle: `minikp up` through the real CLI, SIGKILL the supervisor by its PID (no
Python state survives), `minikp down`, then count what is left of the cluster: namespaces,
their mounts, processes that ran in them, the supervisor, the state directory. The host's own
links, routes, rules and firewall are compared separately (host_view) around many cycles.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from minikp import names  # noqa: E402

# Two nodes, a client, pods of each kind: built-in workloads, a command (a real process in
# the pod's namespace that outlives a SIGKILLed supervisor), and the DNS pods (dnsmasq).
SCENARIO = """\
apiVersion: minikp.dev/v1alpha1
kind: Cluster
spec:
  nodes: 2
  clients: [outside]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: registry.k8s.io/serve_hostname, ports: [{containerPort: 9376}]}
---
apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  containers: [{name: c, image: busybox, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 9376}]
"""


def big_scenario(replicas: int) -> str:
    """A multi-pod scenario whose build takes long enough to be caught halfway."""
    return SCENARIO.replace("replicas: 4", f"replicas: {replicas}")


def cli(*args, timeout=180, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "minikp.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, **kw)


def _run(*argv) -> str:
    r = subprocess.run(argv, capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else f"<{argv[0]} exited {r.returncode}>"


def host_view() -> dict:
    """The host namespace as minikp must leave it: links, addresses, routes, policy rules,
    the firewall (both iptables backends, counters left out: traffic changes them)."""
    view = {"links": _run("ip", "-o", "link"), "addresses": _run("ip", "-o", "addr"),
            "routes": _run("ip", "route", "show", "table", "all"), "rules": _run("ip", "rule")}
    for tool in ("iptables-legacy-save", "iptables-nft-save"):
        text = _run(tool)
        view[tool] = "\n".join(re.sub(r"\[\d+:\d+\]", "", line) for line in text.splitlines()
                               if not line.startswith("#"))
    return view


def netns_of(cluster: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(names.NETNS_DIR)
                      if n.startswith(names.netns_prefix(cluster)))
    except FileNotFoundError:
        return []


def netns_inodes(cluster: str) -> set[int]:
    out = set()
    for n in netns_of(cluster):
        try:
            out.add(os.stat(names.netns_path(n)).st_ino)
        except FileNotFoundError:
            pass
    return out


def pids_in(inodes: set[int]) -> list[int]:
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino in inodes and not _zombie(int(pid)):
                pids.append(int(pid))
        except OSError:
            pass
    return pids


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def census(cluster: str, inodes: set[int], supervisor_pid: int | None = None) -> dict:
    """What is left of `cluster`; every list is empty when nothing is."""
    prefix = os.path.join(names.NETNS_DIR, names.netns_prefix(cluster))
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if line.split()[4].startswith(prefix)]
    alive = supervisor_pid is not None and os.path.exists(f"/proc/{supervisor_pid}") \
        and not _zombie(supervisor_pid)
    return {"namespaces": netns_of(cluster), "mounts": mounts, "processes": pids_in(inodes),
            "supervisor": [supervisor_pid] if alive else [],
            "state files": [names.state_dir(cluster)] if os.path.exists(names.state_dir(cluster))
            else []}


def supervisor_pid(cluster: str) -> int:
    with open(os.path.join(names.state_dir(cluster), "state.json")) as f:
        return json.load(f)["supervisorPid"]


def crash_cycle(cluster: str, scenario_path: str) -> tuple[float, dict]:
    """up, SIGKILL the supervisor, down; returns the seconds it took and the census."""
    t0 = time.monotonic()
    r = cli("up", scenario_path, "--name", cluster)
    if r.returncode != 0:
        raise AssertionError(f"up exited {r.returncode}: {r.stderr}")
    pid, inodes = supervisor_pid(cluster), netns_inodes(cluster)
    if not pids_in(inodes):
        raise AssertionError("no process runs in the cluster's namespaces: nothing to orphan")
    fd = os.pidfd_open(pid)
    try:
        signal.pidfd_send_signal(fd, signal.SIGKILL)
    finally:
        os.close(fd)
    deadline = time.monotonic() + 5
    while not _zombie(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    r = cli("down", "--name", cluster)
    if r.returncode != 0 or "deleted" not in r.stdout:
        raise AssertionError(f"down after SIGKILL exited {r.returncode}: {r.stdout}{r.stderr}")
    return time.monotonic() - t0, census(cluster, inodes, pid)


def race_once(path: str, name: str, trigger) -> str:
    """`up` in the background, `down` once `trigger()` returns; both finished, the outcome
    must be one of: "stopped" (down stopped the up, which exits 1 saying so), "waited" (the
    up had finished; down removed the cluster), "before" (down found nothing yet and said
    "not found"; the up went ahead, and is removed here). Anything else raises."""
    up = subprocess.Popen([sys.executable, "-m", "minikp.cli", "up", path, "--name", name],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        trigger()
        d = cli("down", "--name", name)
        out, err = up.communicate(timeout=120)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    if d.returncode == 0:
        assert f'cluster "{name}" deleted' in d.stdout, d.stdout
        assert up.returncode == 0 or "stopped" in err, (up.returncode, err)
        assert netns_of(name) == [] and not os.path.exists(names.state_dir(name)), \
            "down said deleted, and the cluster is there"
        return "stopped" if up.returncode else "waited"
    assert d.returncode == 1 and "not found" in d.stderr, (d.returncode, d.stderr)
    assert up.returncode == 0, err  # down came first: the up went ahead
    assert cli("down", "--name", name).returncode == 0
    return "before"
