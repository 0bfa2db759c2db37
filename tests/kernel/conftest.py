"""Kernel tests: real namespaces, real iptables, real packets. They need root; without it
they are skipped with that reason (CI runs them as root)."""

import fcntl
import json
import os
import subprocess
import sys
import textwrap

import pytest

if os.geteuid() != 0:
    pytest.skip("kernel tests need root: they create network namespaces and program "
                "iptables inside them", allow_module_level=True)


@pytest.fixture(scope="session", autouse=True)
def one_kernel_run_at_a_time():
    """Kernel tests use fixed cluster names; runs from several checkouts on one machine take
    turns instead of tearing down each other's clusters."""
    with open("/run/minikp-kernel-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def minikp(*args, check=True, timeout=120):
    r = subprocess.run([sys.executable, "-m", "minikp.cli", *args], capture_output=True,
                       text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"minikp {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


class Cluster:
    """A cluster brought up through the real CLI, torn down by the fixture."""

    def __init__(self, name, path):
        self.name, self.path = name, path

    def cli(self, *args, **kw):
        return minikp(args[0], "--name", self.name, *args[1:], **kw)

    def get(self, kind, *extra):
        return json.loads(self.cli("get", kind, "-A", "-o", "json", *extra).stdout)["items"]

    def pods(self, prefix=""):
        return [p for p in self.get("pods") if p["metadata"]["name"].startswith(prefix)
                and p["metadata"]["namespace"] != "kube-system"]

    def svc(self, name, namespace="default"):
        return next(s for s in self.get("svc") if s["metadata"]["name"] == name
                    and s["metadata"]["namespace"] == namespace)

    def probe(self, source, mode, target, count=1, timeout=2.0):
        from minikp import state
        from minikp.client import probe
        st = state.read(self.name)
        return probe(self.name, state.find_host(self.name, st, source), mode, target, count, timeout)

    def answers(self, source, url, count=1):
        return [r["body"] if r["ok"] else f"ERROR {r['error']}"
                for r in self.probe(source, "http", url, count)]


@pytest.fixture
def cluster_factory(tmp_path, request):
    made = []

    def make(yaml_text, name=None, args=()):
        name = name or "mkt-" + request.node.name.replace("_", "")[:20].lower().rstrip("-")
        path = tmp_path / f"{name}.yaml"
        path.write_text(textwrap.dedent(yaml_text))
        made.append(name)
        minikp("up", str(path), "--name", name, *args)
        return Cluster(name, str(path))

    yield make
    for name in made:
        minikp("down", "--name", name, check=False)


def netns_of(cluster):
    from minikp import names
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [l.split()[0] for l in out.splitlines() if l.startswith(names.netns_prefix(cluster))]
