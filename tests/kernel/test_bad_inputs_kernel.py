"""The bad-input catalogue against the real CLI as root: a sample of tests/unit/test_bad_inputs.py
through `python -m minikp.cli up` (nothing created: no namespaces, no state directory) and
`apply` to a live cluster (its state, namespaces and rules unchanged), plus the refusals only
the live cluster can make (a Cluster document that changes it, an address already taken)."""

import json
import os
import re
import subprocess

import pytest

from minikp import names
from tests.kernel.conftest import minikp, netns_of
from tests.unit.test_bad_inputs import CASES, HOSTILE, marked

LIVE = """
apiVersion: minikp.dev/v1alpha1
kind: Cluster
spec: {nodes: 2}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.k8s.io/serve_hostname, ports: [{containerPort: 9376}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 9376}]
"""
SAMPLE = ("empty-file", "tab-indent", "duplicate-key-flattened", "kind-lowercase-service",
          "deployment-apps-v9", "ingress-extensions", "service-spec-typo", "container-typo",
          "capabilities-typo", "containers-mapping", "replicas-string", "port-too-big",
          "long-value-truncated", "selector-mismatch", "object-duplicate", "cluster-nodes-zero",
          "cluster-proxy-ebpf", "slice-bad-address", "clusterip-kube-dns", "too-many-pods")
HOSTILE_SAMPLE = ("alias-bomb-labels", "dev-zero", "fifo", "deep-flow-10000", "latin-1",
                  "utf16-no-bom")
BAD_UP = "mkt-badup"  # the cluster name every refused `up` would have made


def by_id(params, ids):
    found = {p.id: p for p in params}
    return [found[i] for i in ids]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    path = tmp_path_factory.mktemp("live") / "live.yaml"
    path.write_text(LIVE)
    minikp("down", "--name", BAD_UP, check=False)
    minikp("up", str(path), "--name", "mkt-badlive")
    yield "mkt-badlive"
    minikp("down", "--name", "mkt-badlive", check=False)


def snapshot(cluster: str) -> dict:
    """What a refused command must leave as it was: the state file (every object, address
    and endpoint), the cluster's namespaces and node-1's nat rules."""
    with open(os.path.join(names.state_dir(cluster), "state.json")) as f:
        st = json.load(f)
    st.pop("supervisorPid", None)
    nat = minikp("rules", "node-1", "--name", cluster, "--table", "nat").stdout
    nat = re.sub(r"\[\d+:\d+\]", "", nat)  # packet counters move with any traffic
    nat = "\n".join(l for l in nat.splitlines() if not l.startswith("#"))  # dated comments
    return {"state": st, "netns": sorted(netns_of(cluster)), "nat": nat}


def assert_refused(r, path, line, expect):
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert expect in r.stderr
    assert r.stderr.startswith(f"minikp: {path}:{line}: " if line else f"minikp: {path}"), r.stderr[:300]


def assert_nothing_made():
    assert netns_of(BAD_UP) == []
    assert not os.path.exists(names.state_dir(BAD_UP))


@pytest.mark.parametrize("text, expect, plan", by_id(CASES, SAMPLE))
def test_bad_input_up_creates_nothing_and_apply_changes_nothing(live, tmp_path, text, expect, plan):
    text, line = marked(text)
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    before = snapshot(live)
    assert_refused(minikp("up", str(path), "--name", BAD_UP, check=False), path, line, expect)
    assert_nothing_made()
    if not plan:  # the allocator's refusals of an apply: test_apply_refuses_what_the_plan_refuses
        r = minikp("apply", str(path), "--name", live, check=False)
        assert_refused(r, path, line, expect)
    assert snapshot(live) == before


@pytest.mark.parametrize("text, expect", [
    ("apiVersion: v1\nkind: Service\nmetadata: {name: other}\n"
     "spec: {clusterIP: 10.96.0.10, ports: [{port: 80}]}\n",
     'Service "other": spec.clusterIP: 10.96.0.10: provided IP is already allocated (to Service '
     "kube-system/kube-dns)"),
    (LIVE.split("---")[1].replace("name: web}\nspec:\n  replicas: 2", "name: big}\nspec:\n  replicas: 600"),
     'Deployment "big": spec.replicas: 600 more pods do not fit on the nodes it may use'),
])
def test_apply_refuses_what_the_plan_refuses(live, tmp_path, text, expect):
    """New objects that the live cluster's allocator refuses: exit 2 naming the file, line
    and object, and nothing changed."""
    path = tmp_path / "new.yaml"
    path.write_text(text)
    before = snapshot(live)
    r = minikp("apply", str(path), "--name", live, check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(f"minikp: {path}:") and expect in r.stderr, r.stderr
    assert snapshot(live) == before


@pytest.mark.parametrize("make, expect", by_id(HOSTILE, HOSTILE_SAMPLE))
def test_hostile_input_through_the_real_cli(live, tmp_path, make, expect):
    path, line = make(tmp_path)
    before = snapshot(live)
    for verb, name in (("up", BAD_UP), ("apply", live)):
        r = minikp(verb, path, "--name", name, check=False, timeout=60)
        assert_refused(r, path, line, expect)
    assert_nothing_made()
    assert snapshot(live) == before


def test_apply_refuses_a_cluster_document_that_changes_the_cluster(live, tmp_path):
    before = snapshot(live)
    changed = tmp_path / "changed.yaml"
    changed.write_text(LIVE.replace("nodes: 2", "nodes: 3"))
    r = minikp("apply", str(changed), "--name", live, check=False)
    assert_refused(r, changed, 2, 'Cluster "minikp": spec.nodes: 3 nodes')
    assert "apply cannot change a Cluster" in r.stderr
    assert snapshot(live) == before
    same = tmp_path / "same.yaml"
    same.write_text(LIVE)  # restating the cluster is fine: everything unchanged
    r = minikp("apply", str(same), "--name", live)
    assert "deployment.apps/web unchanged" in r.stdout and "service/web unchanged" in r.stdout


def test_stored_kinds_are_listed_by_get(live, tmp_path):
    p = tmp_path / "stored.yaml"
    p.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n"
                 "data: {mode: fast, level: '3'}\n---\napiVersion: networking.k8s.io/v1\n"
                 "kind: NetworkPolicy\nmetadata: {name: deny-all}\nspec: {podSelector: {}}\n")
    r = minikp("apply", str(p), "--name", live)
    assert "configmap/settings created" in r.stdout
    assert f"minikp: warning: {p}:6: NetworkPolicy \"deny-all\": stored, not enforced" in r.stderr
    table = minikp("get", "configmaps", "--name", live).stdout.splitlines()
    assert table[0].split() == ["NAME", "DATA", "AGE"] and table[1].split()[:2] == ["settings", "2"]
    cm = json.loads(minikp("get", "cm", "settings", "--name", live, "-o", "json").stdout)
    assert cm["data"] == {"mode": "fast", "level": "3"} and cm["metadata"]["namespace"] == "default"
    assert minikp("get", "netpol", "--name", live, "-o", "name").stdout.strip() == \
        "networkpolicy/deny-all"
    import yaml
    listed = yaml.safe_load(minikp("get", "networkpolicies", "--name", live, "-o", "yaml").stdout)
    assert [o["metadata"]["name"] for o in listed["items"]] == ["deny-all"]
    r = minikp("apply", str(p), "--name", live)
    assert "configmap/settings unchanged" in r.stdout


def test_warnings_are_printed_by_test(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("apiVersion: minikp.dev/v1alpha1\nkind: Cluster\nspec: {nodes: 1}\n"
                 "checks: [{name: dns, from: node/node-1, request: dns://kubernetes.default.svc.cluster.local}]\n"
                 "---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
                 "spec: {ports: [{port: 80}], trafficDistribution: PreferClose}\n")
    r = subprocess.run(["python3", "-m", "minikp.cli", "test", str(p), "--name", "mkt-badtest"],
                       capture_output=True, text=True, timeout=180)
    minikp("down", "--name", "mkt-badtest", check=False)
    assert f'minikp: warning: {p}:9: Service "web": spec.trafficDistribution: not modelled' in r.stderr
