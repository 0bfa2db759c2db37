"""Where the dashboard's data comes from and where its actions go.

- LiveSource(cluster): a running cluster — state.json, the supervisor's event stream (by
  sequence number), each node's proxy read through the proxy seam, and the live changes the CLI
  makes (delete, scale, apply, readiness) through the control socket.
- FixedSource(state, rules, paths_of, events): a recorded cluster, for screenshots and tests of the
  screens; its actions change nothing and say so.
"""

from __future__ import annotations

import sys
from typing import Iterator

from minikp import client
from minikp.proxy.paths import PortPath


class LiveSource:
    live = True

    def __init__(self, cluster: str):
        self.cluster = cluster
        self._proxiers: dict[str, object] = {}

    def state(self) -> dict:
        return client.read_state(self.cluster)

    def events(self) -> list[dict]:
        return client.events(self.cluster)

    def watch(self, since: int, stop) -> Iterator[dict]:
        return client.watch_events(self.cluster, since, stop)

    def _proxier(self, node: str):
        if node not in self._proxiers:
            self._proxiers[node] = client.node_proxier(self.cluster, self.state(), node)
        return self._proxiers[node]

    def paths(self, node: str, service: str) -> list[PortPath]:
        return self._proxier(node).service_paths(service)

    def rules(self, node: str) -> str:
        return self._proxier(node).rules_text()

    def delete_pod(self, namespace: str, name: str) -> str:
        return client.delete(self.cluster, "pod", name, namespace)

    def scale(self, kind: str, namespace: str, name: str, replicas: int) -> str:
        return client.scale(self.cluster, kind, name, replicas, namespace)

    def set_ready(self, namespace: str, name: str, ready: bool) -> str:
        return client.set_readiness(self.cluster, name, ready, namespace)

    def apply(self, path: str) -> str:
        [scenario] = client.load_files([path], self.cluster)  # bad input: refused untouched
        return client.apply(self.cluster, path, scenario)

    def send(self, source: str, url: str, count: int) -> list[dict]:
        host = client.find_host(self.cluster, self.state(), source)
        mode, target = ("udp", url[len("udp://"):]) if url.startswith("udp://") else ("http", url)
        return client.probe(self.cluster, host, mode, target, count, 2.0)

    def shell_argv(self, target: str) -> list[str]:
        return [sys.executable, "-m", "minikp.cli", "exec", target, "--name", self.cluster,
                "--", "sh", "-c", "exec bash -i 2>/dev/null || exec sh -i"]


class FixedSource:
    """A cluster frozen at one moment: its state.json, each node's rules as the kernel printed
    them, and paths_of(node, service) -> [PortPath] read from those rules by the mode's reader."""

    live = False

    def __init__(self, state: dict, rules: dict[str, str], paths_of, events: list[dict] | None = None):
        self._state, self._rules, self._paths_of, self._events = state, rules, paths_of, events or []

    def state(self) -> dict:
        return self._state

    def events(self) -> list[dict]:
        return list(self._events)

    def watch(self, since: int, stop) -> Iterator[dict]:
        return iter(())

    def paths(self, node: str, service: str) -> list[PortPath]:
        return self._paths_of(node, service)

    def rules(self, node: str) -> str:
        return self._rules.get(node, "")

    def _refuse(self, *_a, **_k) -> str:
        raise RuntimeError("a recorded cluster cannot be changed")

    delete_pod = scale = set_ready = apply = send = _refuse

    def shell_argv(self, target: str) -> list[str]:
        return ["true"]
