"""The dashboard: a tree of the cluster on the left, the selected object on the right (a
Service's path through a node's proxy with live hit counters, a node's rules and what its last
sync changed, a pod), the supervisor's events at the bottom. Keys (and the footer, by mouse)
change the cluster; `?` lists them.

Data arrives by the supervisor's event sequence (a thread follows the stream); the only timer
reads the selected Service's counters once a second while one is shown.
"""

from __future__ import annotations

import subprocess
import threading
import time

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, RichLog, Static, Tree

from minikp.tui import view

COUNTER_PERIOD_S = 1.0  # while the counters move
COUNTER_IDLE_PERIOD_S = 3.0  # after two readings without a change (a dump costs ~40 ms at 1,000 services)
DEFAULT_OPEN = {("group", "nodes"), ("group", "services")}
HELP = """\
[b]minikp tui[/b] — select with the arrows or the mouse; Enter/click expands

  d  delete the selected pod (its ReplicaSet replaces it)
  +  -  scale the selected Deployment (or the selected pod's) up or down
  s  send requests to the selected Service from a pod or client, watch them spread
  r  make the selected pod's readiness fail, or recover
  x  open a shell in the selected pod, node or client (the dashboard waits)
  a  apply a file to the cluster
  n  show the Service's path through the next node
  t  light / dark      ?  this help      q  quit"""


class Prompt(ModalScreen[str]):
    """One line of input; Enter answers, Escape cancels."""

    BINDINGS = [("escape", "dismiss('')", "Cancel")]
    DEFAULT_CSS = """
    Prompt { align: center middle; }
    Prompt > Vertical { width: 76; height: auto; border: round $accent; padding: 0 1;
                        background: $surface; }
    """

    def __init__(self, question: str, value: str = ""):
        super().__init__()
        self.question, self.value = question, value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            yield Input(value=self.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())


class Help(ModalScreen[None]):
    BINDINGS = [("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    Help { align: center middle; }
    Help > Static { width: 78; height: auto; border: round $accent; padding: 0 1;
                    background: $surface; }
    """

    def compose(self) -> ComposeResult:
        yield Static(HELP)


class MinikpApp(App):
    TITLE = "minikp"
    CSS = """
    #tree { width: 32%; min-width: 24; border: round $primary; }
    #main { border: round $secondary; }
    #events { height: 7; border: round $panel; }
    """
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("d", "delete_pod", "Delete"),
        Binding("plus", "scale(1)", "Scale+", key_display="+"),
        Binding("minus", "scale(-1)", "Scale-", key_display="-"),
        Binding("s", "send", "Send"),
        Binding("r", "readiness", "Ready"),
        Binding("x", "shell", "Shell"),
        Binding("a", "apply", "Apply"),
        Binding("n", "next_node", "Node"),
        Binding("t", "toggle_theme", "Theme", show=False),
    ]

    def __init__(self, source, cluster: str = "minikp"):
        super().__init__()
        self.source, self.cluster = source, cluster
        self.st: dict = source.state()
        self.selected: tuple | None = None
        self.node = self.st["nodes"][0]["metadata"]["name"] if self.st["nodes"] else ""
        self.seq = 0
        self.not_ready: set[tuple[str, str]] = set()  # pods whose readiness we made fail
        self.last_rules: dict[str, str] = {}
        self.diffs: dict[str, list[str]] = {}
        self.stopping = threading.Event()
        self.reload_due = False
        self.synced: set[str] = set()  # nodes whose proxy synced since the last reload
        self.counters_at = 0.0  # when the shown Service's counters were last read
        self.quiet_reads = 0  # readings in a row that found them unchanged
        self.last_hits: list = []

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Tree(f"cluster {self.cluster}", id="tree")
            with VerticalScroll(id="main"):
                yield Static(id="detail")
        yield RichLog(id="events", max_lines=500, wrap=False, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.fill_tree()
        self.query_one("#tree", Tree).focus()
        log = self.query_one("#events", RichLog)
        for ev in self.source.events()[-50:]:
            log.write(self.event_line(ev))
            self.seq = max(self.seq, ev.get("seq", 0))
        self.show()
        if self.source.live:
            self.follow_events()
            self.set_interval(COUNTER_PERIOD_S, self.refresh_counters)

    # ---- the tree ---------------------------------------------------------------------
    def fill_tree(self) -> None:
        """Make the tree show self.st, touching only what changed: a scale at 1,000 pods
        relabels or re-lists one node's pods instead of rebuilding a thousand rows."""
        t = self.query_one("#tree", Tree)
        if not t.root.children:
            t.root.expand()

        def sync(parent, items):
            have = list(parent.children)
            if [n.data for n in have] != [d for _, d, _ in items]:
                parent.remove_children()
                have = []
                for label, data, children in items:
                    if children or data[0] in ("group", "node"):
                        have.append(parent.add(label, data=data, expand=data in DEFAULT_OPEN))
                    else:
                        have.append(parent.add_leaf(label, data=data))
            for node, (label, _, children) in zip(have, items):
                if str(node.label) != label:
                    node.set_label(label)
                if children or node.allow_expand:
                    sync(node, children)
        sync(t.root, view.tree(self.st))

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted) -> None:
        if event.node.data and event.node.data[0] != "group":
            self.selected = event.node.data
            if self.selected[0] == "node":
                self.node = self.selected[1]
            self.show()

    # ---- the detail pane --------------------------------------------------------------
    def show(self) -> None:
        detail = self.query_one("#detail", Static)
        sel = self.selected
        if sel is None:
            detail.update(Text("select a Service to see its path through a node's proxy, "
                               "a node for its rules, a pod for its state   (? for help)"))
        elif sel[0] == "svc":
            self.show_service()
        elif sel[0] == "node":
            rules = self.source.rules(sel[1])
            self.last_rules.setdefault(sel[1], rules)
            head = Text(f"{sel[1]}: its proxy's rules ({self.st.get('proxyMode')}), "
                        "as the kernel's own tools print them\n", style="bold")
            detail.update(head + view.rules(rules, self.diffs.get(sel[1], [])))
        elif sel[0] == "pod":
            pod = self.find("pods", sel[1], sel[2])
            detail.update(Text(view.pod_label(pod) + f"\nnode {pod['spec'].get('nodeName')}"
                               if pod else "(gone)"))
        else:
            detail.update(Text(" ".join(sel)))

    def show_service(self) -> None:
        _, ns, name = self.selected
        pods_by_ip = {p["status"].get("podIP"): p["metadata"]["name"] for p in self.st["pods"]}
        svc = self.find("services", ns, name)
        if svc is None:
            self.query_one("#detail", Static).update(Text(f"service {ns}/{name} is gone"))
            return
        paths = self.source.paths(self.node, f"{ns}/{name}")
        hits = [(p.port, p.hits) for p in paths]
        self.quiet_reads = self.quiet_reads + 1 if hits == self.last_hits else 0
        self.last_hits, self.counters_at = hits, time.monotonic()
        self.query_one("#detail", Static).update(
            view.service_path(svc, self.node, paths, pods_by_ip, self.st["proxyMode"]))

    def refresh_counters(self) -> None:
        """The shown Service's counters: every second while they move, every few seconds
        once they stand still (reading them dumps the node's whole nat table)."""
        if not (self.selected and self.selected[0] == "svc"):
            return
        period = COUNTER_IDLE_PERIOD_S if self.quiet_reads >= 2 else COUNTER_PERIOD_S
        if time.monotonic() - self.counters_at >= period - 0.05:
            self.show_service()

    def find(self, kind: str, ns: str, name: str) -> dict | None:
        return next((o for o in self.st[kind] if o["metadata"]["name"] == name
                     and o["metadata"].get("namespace") == ns), None)

    # ---- events -----------------------------------------------------------------------
    @staticmethod
    def event_line(ev: dict) -> Text:
        t = time.strftime("%H:%M:%S", time.localtime(ev["time"])) if "time" in ev else ""
        style = {"PodFailed": "red", "PodDeleted": "yellow", "PodReady": "green",
                 "ProxySynced": "cyan", "EndpointsChanged": "magenta"}.get(ev["type"], "")
        return Text.assemble((f"{t} ", "dim"), (f"{ev['type']:16s} ", style), ev["message"])

    @work(thread=True, exclusive=True, group="events")
    def follow_events(self) -> None:
        for ev in self.source.watch(self.seq, self.stopping):
            ev["received"] = time.time()
            self.call_from_thread(self.on_cluster_event, ev)

    def on_unmount(self) -> None:
        self.stopping.set()  # the event thread ends within half a second

    def on_cluster_event(self, ev: dict) -> None:
        """Log the event now; re-read the state once for a burst of events (the supervisor
        wrote it before publishing them)."""
        self.seq = ev.get("seq", self.seq)
        self.query_one("#events", RichLog).write(self.event_line(ev))
        if ev["type"] == "ProxySynced" and ev.get("node") in self.last_rules:
            self.synced.add(ev["node"])
        if not self.reload_due:
            self.reload_due = True
            self.call_later(self.reload)

    def reload(self) -> None:
        self.reload_due = False
        for node in self.synced:
            now = self.source.rules(node)
            self.diffs[node] = view.sync_diff(self.last_rules[node], now)
            self.last_rules[node] = now
        self.synced.clear()
        self.st = self.source.state()
        self.fill_tree()
        self.show()

    # ---- actions ----------------------------------------------------------------------
    def notify_result(self, what: str, fn, *args) -> None:
        try:
            self.notify(str(fn(*args)).splitlines()[0][:200] or what, title=what)
        except Exception as e:  # noqa: BLE001 - the cluster said no: show why, keep running
            self.notify(str(e)[:300], title=f"{what} failed", severity="error")

    def selected_pod(self) -> tuple[str, str] | None:
        if self.selected and self.selected[0] == "pod":
            return self.selected[1], self.selected[2]
        self.notify("select a pod first", severity="warning")
        return None

    def action_help(self) -> None:
        self.push_screen(Help())

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def action_next_node(self) -> None:
        nodes = [n["metadata"]["name"] for n in self.st["nodes"]]
        if nodes:
            self.node = nodes[(nodes.index(self.node) + 1) % len(nodes)] if self.node in nodes else nodes[0]
            self.show()

    @work(thread=True, group="actions")
    def action_delete_pod(self) -> None:
        pod = self.call_from_thread(self.selected_pod)
        if pod:
            self.call_from_thread(self.notify, f"deleting pod {pod[1]}…")
            self.notify_result("delete", self.source.delete_pod, *pod)

    def deployment_of(self) -> tuple[str, str, int] | None:
        sel = self.selected
        if sel and sel[0] == "pod":
            pod = self.find("pods", sel[1], sel[2])
            owner = next((o["name"] for o in (pod or {"metadata": {}})["metadata"]
                          .get("ownerReferences", []) if o.get("kind") == "ReplicaSet"), None)
            sel = ("deploy", sel[1], owner.rsplit("-", 1)[0]) if owner else None
        if not sel or sel[0] != "deploy":
            self.notify("select a Deployment or one of its pods first", severity="warning")
            return None
        desired = next((d for ns, n, _, d in view.deployments(self.st) if (ns, n) == sel[1:]), 0)
        return sel[1], sel[2], desired

    @work(thread=True, group="actions")
    def action_scale(self, by: int) -> None:
        dep = self.call_from_thread(self.deployment_of)
        if dep:
            ns, name, desired = dep
            self.notify_result("scale", self.source.scale, "deployment", ns, name, max(0, desired + by))

    @work(thread=True, group="actions")
    def action_readiness(self) -> None:
        pod = self.call_from_thread(self.selected_pod)
        if pod:
            fail = pod not in self.not_ready
            (self.not_ready.add if fail else self.not_ready.discard)(pod)
            self.notify_result("readiness", self.source.set_ready, *pod, not fail)

    def default_sender(self) -> str:
        for p in self.st["pods"]:
            if p["metadata"].get("labels", {}).get("app") == "curl":
                return f"{p['metadata']['namespace']}/{p['metadata']['name']}"
        if self.st["clients"]:
            return f"client/{self.st['clients'][0]['name']}"
        return f"node/{self.node}"

    def action_send(self) -> None:
        if not (self.selected and self.selected[0] == "svc"):
            self.notify("select a Service first", severity="warning")
            return
        svc = self.find("services", self.selected[1], self.selected[2])
        port = (svc["spec"].get("ports") or [{"port": 80}])[0]
        scheme = "udp" if port.get("protocol") == "UDP" else "http"
        url = f"{scheme}://{svc['spec'].get('clusterIP')}:{port['port']}/"
        self.push_screen(Prompt("send: FROM COUNT URL  (FROM: pod, client/NAME, node/NAME)",
                                f"{self.default_sender()} 60 {url}"), self.send_answer)

    def send_answer(self, answer: str) -> None:
        parts = answer.split()
        if len(parts) == 3 and parts[1].isdigit():
            self.send(parts[0], parts[2], int(parts[1]))
        elif answer:
            self.notify("expected: FROM COUNT URL", severity="warning")

    @work(thread=True, group="actions")
    def send(self, source: str, url: str, count: int) -> None:
        """Requests from `source`; the path then shows the node that source's traffic goes
        through (a pod's or node's own)."""
        try:
            node = client_node(self.st, source)
        except Exception:  # noqa: BLE001 - an unknown source: the send below says why
            node = None
        if node:
            self.node = node
        self.quiet_reads = 0  # counters are about to move: read them every second

        def run():
            results = self.source.send(source, url, count)
            self.call_from_thread(self.show)  # the counters now, not at the next tick
            ok = sum(r["ok"] for r in results)
            return f"{count} requests from {source}: {ok} answered, {count - ok} failed"
        self.notify_result("send", run)

    def action_apply(self) -> None:
        self.push_screen(Prompt("apply file:"), lambda path: path and self.apply_file(path))

    @work(thread=True, group="actions")
    def apply_file(self, path: str) -> None:
        self.notify_result("apply", self.source.apply, path)

    def action_shell(self) -> None:
        sel = self.selected
        if not sel or sel[0] not in ("pod", "node", "client"):
            self.notify("select a pod, node or client first", severity="warning")
            return
        target = f"{sel[1]}/{sel[2]}" if sel[0] == "pod" else f"{sel[0]}/{sel[1]}"
        with self.suspend():
            subprocess.call(self.source.shell_argv(target))
        self.refresh()


def client_node(st: dict, source: str) -> str | None:
    """The node whose proxy handles traffic from `source` (a pod's node, a node itself)."""
    kind, _, rest = source.partition("/")
    if kind == "node":
        return rest
    ns, name = (kind, rest) if rest else ("default", kind)
    return next((p["spec"].get("nodeName") for p in st["pods"]
                 if (p["metadata"]["namespace"], p["metadata"]["name"]) == (ns, name)), None)


def run(cluster: str) -> int:
    from minikp.tui.source import LiveSource
    MinikpApp(LiveSource(cluster), cluster).run()
    return 0
