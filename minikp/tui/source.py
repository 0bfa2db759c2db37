"""Where the dashboard's data comes from and where its actions go.

- LiveSource(cluster): a running cluster — state.json, the supervisor's event stream (by
  sequence number), each node's proxy read through the proxy seam, and the live changes the CLI
  makes (delete, scale, apply, readiness) through the control socket.
- FixedSource(state, rules, events): a recorded cluster, for screenshots and tests of the
  screens; its actions change nothing and say so.
"""

from __future__ import annotations

import os
import sys
from typing import Iterator

from minikp import state as statefile
from minikp.proxy.paths import PortPath


class LiveSource:
    live = True

    def __init__(self, cluster: str):
        self.cluster = cluster
        self._proxiers: dict[str, object] = {}

    def state(self) -> dict:
        return statefile.read(self.cluster)

    def events(self) -> list[dict]:
        from minikp.controller.control import request
        return request(self.cluster, "events")

    def watch(self, since: int) -> Iterator[dict]:
        from minikp.controller.control import watch
        return watch(self.cluster, since)

    def _proxier(self, node: str):
        from minikp.client import node_proxier
        if node not in self._proxiers:
            self._proxiers[node] = node_proxier(self.cluster, self.state(), node)
        return self._proxiers[node]

    def paths(self, node: str, service: str) -> list[PortPath]:
        return self._proxier(node).service_paths(service)

    def rules(self, node: str) -> str:
        return self._proxier(node).rules_text()

    def _request(self, op: str, spec) -> str:
        from minikp.controller.control import request
        return str(request(self.cluster, op, spec=spec))

    def delete_pod(self, namespace: str, name: str) -> str:
        return self._request("delete", {"kind": "pod", "name": name, "namespace": namespace})

    def scale(self, kind: str, namespace: str, name: str, replicas: int) -> str:
        return self._request("scale", {"kind": kind, "name": name, "namespace": namespace,
                                       "replicas": replicas})

    def set_ready(self, namespace: str, name: str, ready: bool) -> str:
        return self._request("readiness", {"name": name, "namespace": namespace, "ready": ready})

    def apply(self, path: str) -> str:
        from minikp.scenario.load import load_scenario
        load_scenario([path])  # bad input is refused here, before the cluster is touched
        return self._request("apply", os.path.abspath(path))

    def send(self, source: str, url: str, count: int) -> list[dict]:
        from minikp.client import probe
        host = statefile.find_host(self.cluster, self.state(), source)
        mode, target = ("udp", url[len("udp://"):]) if url.startswith("udp://") else ("http", url)
        return probe(self.cluster, host, mode, target, count, 2.0)

    def shell_argv(self, target: str) -> list[str]:
        return [sys.executable, "-m", "minikp.cli", "exec", target, "--name", self.cluster,
                "--", "sh", "-c", "exec bash -i 2>/dev/null || exec sh -i"]


class FixedSource:
    """A cluster frozen at one moment: its state.json, each node's `iptables-save -c`."""

    live = False

    def __init__(self, state: dict, rules: dict[str, str], events: list[dict] | None = None):
        self._state, self._rules, self._events = state, rules, events or []

    def state(self) -> dict:
        return self._state

    def events(self) -> list[dict]:
        return list(self._events)

    def watch(self, since: int) -> Iterator[dict]:
        return iter(())

    def paths(self, node: str, service: str) -> list[PortPath]:
        from minikp.proxy.iptables.paths import service_paths
        return service_paths(self._rules.get(node, ""), service)

    def rules(self, node: str) -> str:
        return self._rules.get(node, "")

    def _refuse(self, *_a, **_k) -> str:
        raise RuntimeError("a recorded cluster cannot be changed")

    delete_pod = scale = set_ready = apply = send = _refuse

    def shell_argv(self, target: str) -> list[str]:
        return ["true"]
