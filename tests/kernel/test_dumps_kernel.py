"""A real cluster's dump comes up with its own addresses, and diff-rules against the node's
saved iptables-save finds no differences; a changed rule file shows the change (root)."""

import os

import pytest

from conftest import Cluster, minikp

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DUMP = os.path.join(ROOT, "scenarios", "kind-dump.yaml")
SAVED = os.path.join(ROOT, "scenarios", "kind-dump.kind-worker.iptables-save")
NAME = "mkt-dumps"


@pytest.fixture(scope="module")
def kind():
    minikp("up", DUMP, "--name", NAME)
    try:
        yield Cluster(NAME, DUMP)
    finally:
        minikp("down", "--name", NAME, check=False)


def test_nodes_and_pods_keep_the_dumps_addresses(kind):
    nodes = {n["metadata"]["name"]: [a["address"] for a in n["status"]["addresses"]
                                     if a["type"] == "InternalIP"] for n in kind.get("nodes")}
    assert nodes == {"kind-control-plane": ["172.18.0.3"], "kind-worker": ["172.18.0.2"],
                     "kind-worker2": ["172.18.0.4"]}
    pods = {p["metadata"]["name"]: (p["spec"]["nodeName"], p["status"]["podIP"])
            for p in kind.get("pods")}
    assert pods["hostnames-5d8f7b9c6d-7m4xq"] == ("kind-worker", "10.244.1.2")
    assert pods["hostnames-5d8f7b9c6d-w9b5n"] == ("kind-worker2", "10.244.2.2")
    assert pods["coredns-674b8bbfcf-2xv8q"] == ("kind-control-plane", "10.244.0.2")
    # the pod answers at its own address, from another node
    assert kind.answers("node/kind-control-plane", "http://10.244.1.2:9376/") == [
        "hostnames-5d8f7b9c6d-7m4xq"]


def test_a_request_through_a_service_reaches_only_ready_endpoints(kind):
    answers = kind.answers("pod/app=web", "http://10.96.74.155/", count=40)
    assert set(answers) == {"hostnames-5d8f7b9c6d-7m4xq", "hostnames-5d8f7b9c6d-kq2zt",
                            "hostnames-5d8f7b9c6d-w9b5n"}  # not zj8fd: not ready in the dump


def test_diff_rules_against_the_saved_node_finds_no_differences(kind):
    r = kind.cli("diff-rules", "kind-worker", SAVED)
    assert r.stdout == "no differences\n"


def test_a_changed_rule_file_shows_the_difference(kind, tmp_path):
    with open(SAVED) as f:
        text = f.read()
    line = '--probability 0.50000000000 -j KUBE-SEP-FPA5UNNWICNUMPQL'
    assert line in text
    changed = tmp_path / "kind-worker.iptables-save"
    changed.write_text(text.replace(line, line.replace("0.50000000000", "0.25000000000")))
    r = kind.cli("diff-rules", "kind-worker", str(changed), check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"--- {changed}\n+++ minikp node kind-worker\n" in r.stdout
    assert [l[0] for l in r.stdout.splitlines() if "KUBE-SEP-FPA5UNNWICNUMPQL" in l
            and l[:1] in "+-"] == ["-", "+"]
    assert r.stdout.endswith("2 lines differ\n")


def test_diff_rules_refuses_a_file_of_another_proxy_mode(kind, tmp_path):
    nft = tmp_path / "ruleset.nft"
    nft.write_text("table ip kube-proxy {\n}\n")
    r = kind.cli("diff-rules", "kind-worker", str(nft), check=False)
    assert r.returncode == 2
    assert "nft output, but this cluster runs the proxy in iptables mode" in r.stderr


def test_the_lab_sheet_runs_as_printed():
    from pathlib import Path

    from test_docs_run import output_of, run_document

    ran = run_document(Path(ROOT) / "scenarios" / "kind-dump.md", "mkt-docs-dumps")
    assert output_of(ran, "sudo minikp diff-rules") == "no differences\n"
    assert "-d 10.96.100.7/32" in output_of(ran, "sudo minikp rules kind-worker")
    assert "10.96.100.7" in output_of(ran, "minikp get svc legacy")


def test_nftables_mode_compares_a_saved_ruleset_node_by_node(tmp_path):
    name = "mkt-dumps-nft"
    minikp("up", DUMP, "--name", name, "--proxy-mode", "nftables")
    try:
        saved = tmp_path / "kind-worker.nft"
        saved.write_text(minikp("rules", "--name", name, "kind-worker").stdout)
        assert minikp("diff-rules", "--name", name, "kind-worker", str(saved)).stdout == \
            "no differences\n"
        r = minikp("diff-rules", "--name", name, "kind-worker2", str(saved), check=False)
        assert r.returncode == 1  # each node accepts NodePorts at its own address only
        assert [l for l in r.stdout.splitlines() if l[:1] in "+-" and l[:3] not in ("---", "+++")] \
            == ["-elements = { 172.18.0.2 }", "+elements = { 172.18.0.4 }"]
    finally:
        minikp("down", "--name", name, check=False)
