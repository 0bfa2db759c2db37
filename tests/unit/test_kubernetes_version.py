"""spec.kubernetesVersion / --kubernetes-version: which releases minikp knows, and the
apiVersions a release still served (pure: no root)."""

import textwrap

import pytest

from minikp import cli, client
from minikp.errors import InputError
from minikp.proxy.release import KNOWN, check_release
from minikp.scenario.known import kind_problem
from minikp.scenario.load import load_scenario
from tests.unit.test_bad_inputs import no_lock

OLD_DEPLOYMENT = """
apiVersion: extensions/v1beta1
kind: Deployment
metadata: {name: hostnames}
spec:
  replicas: 1
  selector: {matchLabels: {app: hostnames}}
  template:
    metadata: {labels: {app: hostnames}}
    spec:
      containers: [{name: hostnames, image: minikp/hostname}]
"""


def write(tmp_path, text, name="s.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def cluster(version) -> str:
    return f'apiVersion: minikp.dev/v1alpha1\nkind: Cluster\nspec:\n  kubernetesVersion: "{version}"\n'


def test_every_minor_release_since_the_first_iptables_proxier_is_known():
    assert KNOWN[0] == (1, 1) and KNOWN[-1] == (1, 33) and len(KNOWN) == 33
    assert check_release("v1.16.15") == "1.16" and check_release("1.1") == "1.1"


@pytest.mark.parametrize("bad", ["1.34", "1.0", "2.1", "latest"])
def test_an_unknown_release_is_refused_listing_the_known_ones(bad):
    with pytest.raises(InputError) as e:
        check_release(bad)
    assert "known: 1.1, 1.2," in str(e.value) and "1.33" in str(e.value)


def test_the_cluster_document_sets_the_release_and_defaults_to_1_33(tmp_path):
    assert load_scenario([write(tmp_path, cluster("1.1"))]).cluster.kubernetes_version == "1.1"
    plain = "apiVersion: minikp.dev/v1alpha1\nkind: Cluster\nspec: {nodes: 1}\n"
    assert load_scenario([write(tmp_path, plain)]).cluster.kubernetes_version == "1.33"


def test_the_command_line_overrides_the_cluster_document(tmp_path):
    s = load_scenario([write(tmp_path, cluster("1.1"))], kubernetes_version="v1.19.3")
    assert s.cluster.kubernetes_version == "1.19"


def test_a_bad_version_in_the_cluster_document_names_file_line_and_field(tmp_path):
    path = write(tmp_path, cluster("1.99"))
    with pytest.raises(InputError) as e:
        load_scenario([path])
    assert str(e.value).startswith(f'{path}:4: Cluster "minikp": spec.kubernetesVersion: "1.99"')
    assert "known: 1.1," in str(e.value)


def test_up_with_an_unknown_version_exits_2_before_anything_is_made(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    monkeypatch.setattr(client, "start_cluster", lambda *a, **k: pytest.fail("got through"))
    no_lock(monkeypatch)
    rc = cli.main(["up", write(tmp_path, cluster("1.33")), "--name", "versions-u",
                   "--kubernetes-version", "1.40"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith('minikp: --kubernetes-version: "1.40"')
    assert "known: 1.1, 1.2" in err


def test_extensions_v1beta1_deployment_is_served_until_1_15_only(tmp_path):
    # the Cluster document comes after the Deployment: it is still read first
    path = write(tmp_path, OLD_DEPLOYMENT + "---\n" + cluster("1.15"))
    s = load_scenario([path])
    assert [w.kind for w in s.workloads] == ["Deployment"]
    with pytest.raises(InputError) as e:
        load_scenario([write(tmp_path, OLD_DEPLOYMENT + "---\n" + cluster("1.16"), "new.yaml")])
    assert "removed in Kubernetes 1.16; use apiVersion: apps/v1" in str(e.value)
    assert "this one is 1.16" in str(e.value)


def test_the_override_decides_the_apiversions_too(tmp_path):
    path = write(tmp_path, OLD_DEPLOYMENT)
    assert load_scenario([path], kubernetes_version="1.9").workloads
    with pytest.raises(InputError):
        load_scenario([path])  # 1.33 by default


def test_an_old_ingress_is_stored_as_the_current_one_is(tmp_path):
    ingress = ("apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: web}\n"
               "spec: {backend: {serviceName: web, servicePort: 80}}\n")  # valid in its own shape
    s = load_scenario([write(tmp_path, ingress + "---\n" + cluster("1.21"))])
    assert [(o.kind, o.manifest["apiVersion"]) for o in s.stored] == [("Ingress", "networking.k8s.io/v1")]


def test_nodes_report_the_modelled_kube_proxy_release():
    from minikp.controller.objects import node_object
    from minikp.scenario.model import NodePlan

    node = NodePlan("node-1", "172.18.0.2", "10.244.1.0/24", "10.244.1.1")
    assert node_object(node, "", "1.15")["status"]["nodeInfo"]["kubeProxyVersion"] == "v1.15"
    assert node_object(node, "")["status"]["nodeInfo"]["kubeProxyVersion"] == "v1.33"


def test_the_iptables_proxier_settings_carry_the_release(monkeypatch):
    """`minikp rules`/`trace` rebuild a node's proxier from the state's proxySettings."""
    from minikp.proxy.iptables import sync

    monkeypatch.setattr(sync, "resolve_backend", lambda b: "legacy")
    monkeypatch.setattr(sync, "read_tcp_liberal", lambda path: False)
    p = sync.IptablesProxier("/nonexistent", "auto", release=(1, 16))
    assert p.settings()["kubernetes_version"] == "1.16" and p.legacy
    assert not sync.IptablesProxier("/nonexistent", "auto").legacy


def test_an_unquoted_version_is_refused_since_yaml_reads_1_10_as_1_1(tmp_path):
    path = write(tmp_path, "apiVersion: minikp.dev/v1alpha1\nkind: Cluster\nspec:\n  kubernetesVersion: 1.10\n")
    with pytest.raises(InputError) as e:
        load_scenario([path])
    assert 'spec.kubernetesVersion: 1.1: must be a string: quote it, e.g. "1.10"' in str(e.value)


def test_a_proxy_mode_the_release_did_not_have_is_refused(tmp_path):
    path = write(tmp_path, cluster("1.28"))
    with pytest.raises(InputError) as e:
        load_scenario([path], proxy_mode="nftables")
    assert "kube-proxy 1.28 has no nftables mode (it came in 1.29)" in str(e.value)
    assert load_scenario([path], proxy_mode="ipvs").cluster.proxy_mode == "ipvs"
    with pytest.raises(InputError):
        load_scenario([path], proxy_mode="ipvs", kubernetes_version="1.7")


APPS_V1_DEPLOYMENT = OLD_DEPLOYMENT.replace("extensions/v1beta1", "apps/v1")


@pytest.mark.parametrize("release, used", [("1.8", "apps/v1beta2"), ("1.7", "apps/v1beta1"),
                                           ("1.5", "extensions/v1beta1")])
def test_an_apiversion_the_release_did_not_serve_yet_is_refused_naming_the_one_it_used(
        tmp_path, release, used):
    path = write(tmp_path, cluster(release) + "---\n" + APPS_V1_DEPLOYMENT)
    with pytest.raises(InputError) as e:
        load_scenario([path])
    assert f"apiVersion: apps/v1 Deployment was first served in Kubernetes 1.9; Kubernetes " \
           f"{release} served Deployment as apiVersion: {used}" in str(e.value)
    assert str(e.value).startswith(f"{path}:7")  # the Deployment's apiVersion line
    assert load_scenario([path], kubernetes_version="1.9").workloads


def test_a_kind_the_release_did_not_serve_at_all_says_when_it_came():
    assert kind_problem("apps/v1", "Deployment", (1, 1)) == (
        "apiVersion: apps/v1 Deployment was first served in Kubernetes 1.9; Kubernetes 1.1 "
        "served no Deployment (first: extensions/v1beta1, in 1.2)")
    assert kind_problem("extensions/v1beta1", "Deployment", (1, 2)) is None


@pytest.mark.parametrize("api, kind, since, release, used", [
    ("networking.k8s.io/v1", "Ingress", "1.19", (1, 18), "networking.k8s.io/v1beta1"),
    ("networking.k8s.io/v1beta1", "Ingress", "1.14", (1, 13), "extensions/v1beta1"),
    ("discovery.k8s.io/v1", "EndpointSlice", "1.21", (1, 20), "discovery.k8s.io/v1beta1"),
    ("networking.k8s.io/v1", "IngressClass", "1.19", (1, 18), "networking.k8s.io/v1beta1"),
    ("rbac.authorization.k8s.io/v1", "Role", "1.8", (1, 7), "rbac.authorization.k8s.io/v1beta1"),
])
def test_first_served_releases(api, kind, since, release, used):
    assert kind_problem(api, kind, release).endswith(
        f"first served in Kubernetes {since}; Kubernetes 1.{release[1]} served {kind} as apiVersion: {used}")
    assert kind_problem(api, kind, (1, int(since.split(".")[1]))) is None


def test_up_refuses_a_not_yet_served_apiversion_with_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    monkeypatch.setattr(client, "start_cluster", lambda *a, **k: pytest.fail("got through"))
    no_lock(monkeypatch)
    path = write(tmp_path, cluster("1.8") + "---\n" + APPS_V1_DEPLOYMENT)
    assert cli.main(["up", path, "--name", "oldblog-t"]) == 2
    assert "Kubernetes 1.8 served Deployment as apiVersion: apps/v1beta2" in capsys.readouterr().err
