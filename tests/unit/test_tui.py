"""The dashboard without root: the pure views over a recorded cluster (state.json and node-2's
`iptables-save -c` after 12 requests to hostnames), and screenshots of the main screens at
80×24 compared with stored SVGs (pytest-textual-snapshot; `--snapshot-update` rewrites them
after a deliberate change)."""

import json
import os
import time

import pytest

from minikp.proxy.iptables.paths import service_paths
from minikp.tui import view
from minikp.tui.app import MinikpApp
from minikp.tui.source import FixedSource

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "tui")
STATE = json.load(open(os.path.join(HERE, "state.json")))
RULES = {"node-2": open(os.path.join(HERE, "node-2.iptables-save-c.txt")).read()}
EVENTS = [
    {"seq": 1, "time": 1764680050, "type": "PodCreated", "message": "pod default/curl on node-2 (10.244.2.4)"},
    {"seq": 2, "time": 1764680050, "type": "EndpointsChanged", "message": "endpoints updated (initial)"},
    {"seq": 3, "time": 1764680051, "type": "ProxySynced", "message": "proxy node-2: full sync in 9.1 ms (initial)", "node": "node-2"},
]


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def app():
    return MinikpApp(FixedSource(STATE, RULES, lambda node, svc: service_paths(RULES.get(node, ""), svc),
                                 EVENTS), "tuix")


def test_service_path_from_the_kernel_counters():
    http, udp = service_paths(RULES["node-2"], "default/hostnames")
    assert (http.port, http.chain, http.hits) == ("http", "KUBE-SVC-AC2ON6IKLZPGXVMV", 12)
    assert [(f.kind, f.address, f.hits) for f in http.frontends] == [("cluster IP", "10.96.29.98:80/tcp", 12)]
    assert [(b.endpoint, b.rule, round(b.share, 3), b.hits) for b in http.branches] == [
        ("10.244.1.3:9376", "p 0.33333333349", 0.333, 5),
        ("10.244.1.4:9376", "p 0.50000000000", 0.333, 4),
        ("10.244.2.3:9376", "the rest", 0.333, 3)]
    assert udp.port == "udp" and udp.hits == 0 and len(udp.branches) == 3
    assert service_paths(RULES["node-2"], "default/nothing") == []
    # a name that merely starts like another Service's is not that Service
    assert service_paths(RULES["node-2"], "default/hostname") == []


def test_sync_diff_ignores_counters_and_comments():
    before = "# Generated\n[3:180] -A KUBE-SVC-X -j KUBE-SEP-A\n:KUBE-SEP-A - [0:0]\n"
    after = "# Generated later\n[9:540] -A KUBE-SVC-X -j KUBE-SEP-A\n:KUBE-SEP-A - [5:0]\n-A KUBE-SVC-X -j KUBE-SEP-B\n"
    assert view.sync_diff(before, after) == ["+-A KUBE-SVC-X -j KUBE-SEP-B"]


def test_tree_lists_nodes_with_their_pods_services_and_deployments():
    groups = {label.split(" ")[0]: children for label, _, children in view.tree(STATE)}
    node2 = next(c for label, _, c in groups["nodes"] if label.startswith("node-2"))
    assert [d for _, d, _ in node2] == [("pod", "kube-system", "coredns-78ffc9477-2c28v"),
                                       ("pod", "default", "hostnames-58b4b494b7-f22fv"),
                                       ("pod", "default", "curl")]
    assert [label for label, _, _ in groups["services"]] == [
        "kubernetes ClusterIP", "kube-system/kube-dns ClusterIP", "hostnames ClusterIP"]
    assert sorted(label for label, _, _ in groups["deployments"]) == [
        "hostnames 3/3", "kube-system/coredns 2/2"]


def test_a_recorded_cluster_refuses_changes_and_says_so():
    import asyncio

    async def run():
        a = app()
        async with a.run_test(size=(80, 24)) as pilot:
            await pilot.press("down", "down", "enter", "down", "d")  # node-1's first pod
            await pilot.pause(0.3)
            return [n.message for n in a._notifications]
    messages = asyncio.run(run())
    assert any("cannot be changed" in m for m in messages), messages


def test_snapshot_main_screen(snap_compare):
    assert snap_compare(app(), terminal_size=(80, 24))


def test_snapshot_service_path(snap_compare):
    assert snap_compare(app(), terminal_size=(80, 24), press=["down"] * 8)


def test_snapshot_node_rules(snap_compare):
    assert snap_compare(app(), terminal_size=(80, 24), press=["down"] * 3 + ["n"])


def test_snapshot_help_light(snap_compare):
    assert snap_compare(app(), terminal_size=(80, 24), press=["t", "question_mark"])
