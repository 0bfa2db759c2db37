"""The dashboard against a real cluster (the hostnames lab): headless with Textual's Pilot,
each action changes the cluster and the screen shows it; and once in a real terminal (tmux),
where the tree, a Service's path and a shell in a node appear."""

import asyncio
import io
import os
import shutil
import subprocess
import sys
import time

import pytest
from rich.console import Console

from minikp.tui.app import MinikpApp
from minikp.tui.source import LiveSource

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOSTNAMES = open(os.path.join(ROOT, "scenarios", "hostnames.yaml")).read()


def detail_text(app) -> str:
    out = Console(width=140, file=io.StringIO(), color_system=None)
    out.print(app.query_one("#detail").content)
    return out.file.getvalue()


async def select(pilot, data) -> None:
    app = pilot.app
    tree = app.query_one("#tree")

    def find(node):
        if node.data == data:
            return node
        for child in node.children:
            if (hit := find(child)):
                return hit
    node = find(tree.root)
    assert node is not None, f"{data} not in the tree"
    node.parent.expand()
    await pilot.pause(0.1)
    tree.move_cursor(node)
    await pilot.pause(0.1)
    assert app.selected == data, (app.selected, data)


async def until(pilot, cond, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.2)
        if cond():
            return
    raise AssertionError("the screen never showed it; notifications: "
                         + "; ".join(n.message for n in pilot.app._notifications))


def hostnames_pods(app):
    return [p for p in app.st["pods"] if p["metadata"]["name"].startswith("hostnames-")]


def test_every_action_changes_the_cluster_and_the_screen_follows(cluster_factory, tmp_path):
    c = cluster_factory(HOSTNAMES, name="mkt-tui")
    extra = tmp_path / "extra.yaml"
    extra.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: extra}\nspec:\n"
                     "  selector: {app: hostnames}\n  ports: [{port: 8080, targetPort: 9376}]\n")

    async def run():
        app = MinikpApp(LiveSource(c.name), c.name)
        async with app.run_test(size=(120, 40)) as pilot:
            # send 60 requests from the curl pod: the path shows them spread over 3 endpoints
            await select(pilot, ("svc", "default", "hostnames"))
            await pilot.press("s")
            await pilot.pause(0.2)
            await pilot.press("enter")
            await until(pilot, lambda: not [w for w in app.workers
                                            if w.group == "actions" and w.is_running])
            await until(pilot, lambda: "60 new connections" in detail_text(app))
            http = app.source.paths(app.node, "default/hostnames")[0]
            assert sum(b.hits for b in http.branches) == 60 and all(b.hits > 0 for b in http.branches)

            # make a pod's readiness fail: its endpoint leaves the path; recover: it comes back
            victim = hostnames_pods(app)[0]["metadata"]["name"]
            await select(pilot, ("pod", "default", victim))
            await pilot.press("r")
            await until(pilot, lambda: len(app.source.paths(app.node, "default/hostnames")[0].branches) == 2)
            await pilot.press("r")
            await until(pilot, lambda: len(app.source.paths(app.node, "default/hostnames")[0].branches) == 3)

            # delete it: a replacement appears in the tree, the old name is gone
            await pilot.press("d")
            await until(pilot, lambda: victim not in [p["metadata"]["name"] for p in hostnames_pods(app)]
                        and len(hostnames_pods(app)) == 3)
            tree_labels = str([str(n.label) for n in app.query_one("#tree")._tree_nodes.values()])
            assert victim not in tree_labels

            # scale the Deployment up by one
            await select(pilot, ("deploy", "default", "hostnames"))
            await pilot.press("plus")
            await until(pilot, lambda: len(hostnames_pods(app)) == 4)

            # apply a file: its Service shows in the tree
            await pilot.press("a")
            await pilot.pause(0.2)
            await pilot.press(*str(extra), "enter")
            await until(pilot, lambda: any(s["metadata"]["name"] == "extra" for s in app.st["services"]))
            await select(pilot, ("svc", "default", "extra"))
    asyncio.run(run())
    assert len(c.pods("hostnames-")) == 4
    assert c.svc("extra")["spec"]["clusterIP"]


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (scripts/setup.sh installs it)")
def test_in_a_real_terminal(cluster_factory):
    c = cluster_factory(HOSTNAMES, name="mkt-tui-tmux")
    session = f"minikp-test-{os.getpid()}"
    tmux = lambda *a: subprocess.run(["tmux", *a], capture_output=True, text=True, check=True)  # noqa: E731
    tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24",
         f"cd {ROOT} && {sys.executable} -m minikp.cli tui --name {c.name}")
    try:
        def screen():
            return tmux("capture-pane", "-p", "-t", session).stdout

        def wait_for(text, timeout=20):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if text in screen():
                    return
                time.sleep(0.2)
            raise AssertionError(f"{text!r} never appeared:\n{screen()}")

        wait_for("nodes (2)")
        wait_for("hostnames Clust")  # 80x24: the tree cuts long labels
        for _ in range(8):  # down to the hostnames Service (the tree's 8th line)
            tmux("send-keys", "-t", session, "Down")
        wait_for("KUBE-SVC-")
        tmux("send-keys", "-t", session, "Up", "Up", "Up", "Up", "Up", "Up")  # node-2
        wait_for("rules (iptables)")
        tmux("send-keys", "-t", session, "x")
        wait_for("#", timeout=10)
        tmux("send-keys", "-t", session, "hostname; exit", "Enter")
        wait_for("nodes (2)")
        tmux("send-keys", "-t", session, "q")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
