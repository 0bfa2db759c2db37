"""Cluster names (issue 9.1, 9.2): what `--name` accepts, that every path built from it stays
in the state root, and that namespace ownership is exact, not a prefix guess."""

import os
import subprocess
import sys

import pytest

from minikp import names
from minikp.errors import InputError, OperationError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BAD = ["a/..", "a/../..", "..", ".", "a/b", "", "A", "a_b", "a.b", "-a", "a-", "a b", "a\0b",
       "x" * 64, "x" * 250, "é"]


@pytest.mark.parametrize("bad", BAD)
def test_bad_cluster_names_are_refused(bad):
    assert names.cluster_name_problem(bad).startswith("--name ")
    with pytest.raises(InputError, match="DNS-1123 label|too long"):
        names.check_cluster_name(bad)
    with pytest.raises(InputError):
        names.state_dir(bad)
    with pytest.raises(InputError):
        names.netns_prefix(bad)


@pytest.mark.parametrize("good", ["a", "c5", "c5-node", "relnames-x", "x" * 63, "0"])
def test_labels_are_cluster_names(good):
    assert names.check_cluster_name(good) == good
    assert names.state_dir(good) == os.path.join(os.path.realpath(names.STATE_ROOT), good)


def test_the_message_names_the_rule_and_truncates_a_long_name():
    msg = names.cluster_name_problem("y" * 5000)
    assert "DNS-1123 label" in msg and "at most 63 characters" in msg
    assert len(msg) < 300


def test_paths_cannot_leave_the_cluster_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(names, "STATE_ROOT", str(tmp_path))
    assert names.cluster_path("a", "pods", "x.log") == str(tmp_path / "a" / "pods" / "x.log")
    for parts in [("..",), ("..", "b"), ("pods", "..", "..", "b"), ("/etc",)]:
        with pytest.raises(OperationError, match="outside"):
            names.cluster_path("a", *parts)
    # a directory swapped for a symbolic link is refused too
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "b")
    with pytest.raises(OperationError, match="outside"):
        names.cluster_path("b", "state.json")


def test_a_long_state_root_lowers_the_bound_for_the_socket(monkeypatch):
    monkeypatch.setattr(names, "STATE_ROOT", "/" + "r" * 60)
    assert names.cluster_name_problem("x" * 30) is None
    assert "socket path" in names.cluster_name_problem("x" * 40)


def test_every_derived_name_fits_its_kernel_limit():
    c, label = "x" * 63, "y" * 63
    for n in (names.world_netns(c), names.node_netns(c, label), names.client_netns(c, label),
              names.pod_netns(c, label, "z" * 253)):
        assert len(n.encode()) <= 255 and "/" not in n
        assert names.cluster_of(n) == c
    assert len(names.pod_netns(c, label, "z" * 253)) <= names.POD_NETNS_MAX
    assert len(os.path.join("/run/minikp", c, "control.sock")) <= names.UNIX_PATH_MAX
    assert len(names.link_name("veth", "ns/" + "z" * 253)) <= 15


def test_ownership_is_exact_for_names_that_extend_each_other():
    mine, other = "c5", "c5-node"
    assert names.node_netns(mine, "node-1") == "minikp-c5_node-node-1"
    assert names.world_netns(other) == "minikp-c5-node_world"
    for n in (names.world_netns(other), names.node_netns(other, "node-1"),
              names.pod_netns(other, "default", "web-1")):
        assert not n.startswith(names.netns_prefix(mine))
        assert names.cluster_of(n) == other
    for n in (names.world_netns(mine), names.node_netns(mine, "node-1"),
              names.client_netns(mine, "c"), names.pod_netns(mine, "default", "web-1")):
        assert not n.startswith(names.netns_prefix(other))
        assert names.cluster_of(n) == mine


@pytest.mark.parametrize("n", ["minikp-doctor-1a2b3c4d", "minikp-test-ipt-1234", "other_world",
                               "minikp-_world", "minikp-A_world", "minikp-a_"])
def test_names_that_are_no_clusters(n):
    assert names.cluster_of(n) is None


@pytest.mark.parametrize("verb", [["up", "x.yaml"], ["down"], ["get", "pods"], ["exec", "p", "--", "true"],
                                  ["exec", "p", "--name", "a/..", "--", "true"],
                                  ["curl", "http://a/"], ["rules", "node-1"], ["events"],
                                  ["apply", "x.yaml"], ["scale", "deploy", "w", "--replicas", "1"],
                                  ["delete", "pod", "p"], ["test", "x.yaml"], ["doctor"],
                                  ["trace", "--from", "p", "--to", "1.2.3.4:80"]])
def test_every_verb_refuses_a_bad_name_with_exit_2(verb, tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "canary").write_text("")
    r = subprocess.run([sys.executable, "-m", "minikp.cli", verb[0], "--name", "a/..", *verb[1:]],
                       cwd=ROOT,
                       capture_output=True, text=True,
                       env={**os.environ, "MINIKP_STATE_ROOT": str(tmp_path)})
    assert r.returncode == 2, r
    assert '--name "a/..": must be a DNS-1123 label' in r.stderr
    assert "Traceback" not in r.stderr
    assert sorted(os.listdir(tmp_path)) == ["other"]
    assert (tmp_path / "other" / "canary").exists()
