"""Strict validation's other half: known fields minikp does not model are accepted with a
warning naming FILE:LINE and the field (issue 19.3), server-set fields are accepted silently,
stored kinds are kept, and `apply` refuses a Cluster document that changes the cluster."""

import textwrap

import pytest

from minikp import cli, client
from minikp.errors import InputError
from minikp.scenario import known
from minikp.scenario.load import check_cluster_unchanged, load_scenario
from tests.unit.test_bad_inputs import no_lock


def load(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(textwrap.dedent(text))
    return load_scenario([str(p)]), str(p)


def test_unmodelled_service_fields_warn_with_file_line_and_field(tmp_path):
    s, path = load(tmp_path, """\
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec:
          ipFamilies: [IPv6]
          trafficDistribution: PreferClose
          allocateLoadBalancerNodePorts: false
          type: LoadBalancer
          ports: [{port: 80}]
        """)
    assert s.warnings == [
        f'{path}:5: Service "web": spec.ipFamilies: not modelled by minikp; ignored',
        f'{path}:6: Service "web": spec.trafficDistribution: not modelled by minikp; ignored',
        f'{path}:7: Service "web": spec.allocateLoadBalancerNodePorts: not modelled by minikp; ignored']
    assert s.services[0].type == "LoadBalancer"


def test_sandbox_fields_are_modelled_and_the_rest_warned_once_per_subtree(tmp_path):
    s, path = load(tmp_path, """\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: c}
        data: {k: v}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          securityContext: {runAsUser: 1000, runAsGroup: 1000, seccompProfile: {type: RuntimeDefault}}
          volumes:
          - {name: scratch, emptyDir: {}}
          - {name: host, hostPath: {path: /tmp, type: Directory}}
          containers:
          - name: a
            env: [{name: A, value: b}, {name: B, valueFrom: {configMapKeyRef: {name: c, key: k}}}]
            envFrom: [{configMapRef: {name: c}}]
            volumeMounts: [{name: scratch, mountPath: /scratch, subPath: x}]
            securityContext:
              capabilities: {add: [NET_ADMIN], drop: [ALL]}
              runAsUser: 0
              readOnlyRootFilesystem: true
              privileged: false
        """)
    fields = sorted(w.split(": ")[2] for w in s.warnings)
    assert fields == ["spec.containers[0].volumeMounts[0].subPath", "spec.securityContext.seccompProfile"]
    assert all(w.startswith(f'{path}:') and ': Pod "p": ' in w for w in s.warnings)
    assert [(m.name, m.data) for m in s.config_maps] == [("c", {"k": "v"})]


def test_empty_and_server_set_fields_are_silent(tmp_path):
    # what `kubectl create deployment --dry-run=client -o yaml` prints
    s, _ = load(tmp_path, """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          creationTimestamp: null
          labels: {app: web}
          name: web
        spec:
          replicas: 1
          selector: {matchLabels: {app: web}}
          strategy: {}
          template:
            metadata:
              creationTimestamp: null
              labels: {app: web}
            spec:
              containers:
              - image: nginx
                name: nginx
                resources: {}
        status: {}
        """)
    assert s.warnings == []


def test_flipping_a_field_to_modelled_silences_its_warning(tmp_path, monkeypatch):
    text = """\
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec: {ports: [{port: 80}], ipFamilyPolicy: SingleStack}
        """
    assert len(load(tmp_path, text)[0].warnings) == 1
    monkeypatch.setitem(known.FIELDS["Service"], "spec.ipFamilyPolicy", known.MODELLED)
    assert load(tmp_path, text)[0].warnings == []


def test_stored_kinds_are_kept_and_network_policy_warns(tmp_path):
    s, path = load(tmp_path, """\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: conf, namespace: team}
        data: {a: "1"}
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: deny}
        spec: {podSelector: {}}
        ---
        apiVersion: rbac.authorization.k8s.io/v1
        kind: ClusterRole
        metadata: {name: reader}
        rules: []
        """)
    assert [(o.kind, o.namespace, o.name) for o in s.stored] == [
        ("ConfigMap", "team", "conf"), ("NetworkPolicy", "default", "deny"), ("ClusterRole", "", "reader")]
    assert "team" in s.namespaces
    assert s.warnings == [f'{path}:6: NetworkPolicy "deny": stored, not enforced: minikp has no '
                          "network policy engine"]


def test_warnings_are_printed_by_up(tmp_path, capsys, monkeypatch):
    p = tmp_path / "s.yaml"
    p.write_text("apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent}\n---\n"
                 "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
                 "spec: {ports: [{port: 80}], ipFamilies: [IPv4]}\n")
    started = []
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    monkeypatch.setattr(client, "start_cluster", lambda *a, **k: started.append(a))
    no_lock(monkeypatch)
    monkeypatch.setattr(cli, "summary", lambda *a: "up")
    assert cli.main(["up", str(p), "--name", "relinput-unit"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [f'minikp: warning: {p}:1: DaemonSet "agent": skipped: minikp does not handle '
                   "DaemonSet; it builds Deployment, ReplicaSet, Pod, Service, Namespace, "
                   "Endpoints, EndpointSlice",
                   f'minikp: warning: {p}:8: Service "web": spec.ipFamilies: not modelled by '
                   "minikp; ignored"]
    assert len(started) == 1


CLUSTER = """\
    apiVersion: minikp.dev/v1alpha1
    kind: Cluster
    metadata: {name: demo}
    spec:
      nodes: 2
      networking: {podSubnet: 10.200.0.0/16}
    checks: [{from: node/node-1, request: "http://x/"}]
    """


def test_apply_accepts_a_cluster_document_that_restates_the_cluster(tmp_path):
    live, _ = load(tmp_path, CLUSTER)
    same, _ = load(tmp_path, CLUSTER.replace('checks: [{from: node/node-1, request: "http://x/"}]',
                                             "checks: []"))
    check_cluster_unchanged(live.cluster, same)  # checks are what `test` runs, not state
    renamed, _ = load(tmp_path, CLUSTER.replace("{name: demo}", "{name: other}"))
    check_cluster_unchanged(live.cluster, renamed)  # the running cluster's name is --name's
    no_cluster, _ = load(tmp_path, "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
    check_cluster_unchanged(live.cluster, no_cluster)


@pytest.mark.parametrize("old, new, field", [
    ("nodes: 2", "nodes: 3", "spec.nodes"),
    ("podSubnet: 10.200.0.0/16", "podSubnet: 10.201.0.0/16", "spec.networking.podSubnet"),
    ("nodes: 2", "nodes: [a, b]", "spec.nodes")])
def test_apply_refuses_a_cluster_document_that_changes_it(tmp_path, old, new, field):
    live, _ = load(tmp_path, CLUSTER)
    changed, path = load(tmp_path, CLUSTER.replace(old, new))
    with pytest.raises(InputError) as e:
        check_cluster_unchanged(live.cluster, changed)
    assert str(e.value).startswith(f'{path}:1: Cluster "{changed.cluster.name}": {field}: ')
    assert "apply cannot change a Cluster" in str(e.value)


def test_get_lists_stored_kinds_from_the_state():
    from minikp import tables
    st = {"pods": [], "stored": [
        {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1", "b": "2"},
         "metadata": {"name": "conf", "namespace": "team"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other", "namespace": "default"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "rules": [],
         "metadata": {"name": "reader"}}]}
    assert [o["metadata"]["name"] for o in client.objects(st, "ConfigMap", "team")] == ["conf"]
    assert [o["metadata"]["name"] for o in client.objects(st, "ConfigMap", None)] == ["conf", "other"]
    assert [o["metadata"]["name"] for o in client.objects(st, "ClusterRole", "default")] == ["reader"]
    assert tables.stored_table(client.objects(st, "ConfigMap", None), all_ns=True).splitlines() == [
        "NAMESPACE   NAME    DATA   AGE", "team        conf    2      <unknown>",
        "default     other   0      <unknown>"]
    assert cli.STORED_KINDS["netpol"] == "NetworkPolicy" and cli.STORED_KINDS["cm"] == "ConfigMap"
