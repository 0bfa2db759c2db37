"""What a front end (the CLI now, a dashboard later) does besides parsing and printing,
against a running cluster's state.json and supervisor.

- node_proxier(cluster, st, node) -> Proxier: the node's proxier rebuilt from state.json,
  to read its rules and counters (building one changes nothing in the kernel).
- probe(cluster, host, mode, target, ...) -> results: minikp.probe run inside a host.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

from minikp import names
from minikp.errors import InputError, OperationError
from minikp.proxy.base import Proxier, new_proxier
from minikp.scenario.model import ClusterConfig


def node_proxier(cluster: str, st: dict, node: str) -> Proxier:
    nodes = [n["metadata"]["name"] for n in st["nodes"]]
    if node not in nodes:
        raise InputError(f'no node "{node}"; nodes: ' + ", ".join(nodes), field="NODE")
    config = dataclasses.replace(ClusterConfig(proxy_mode=st["proxyMode"]), **st["proxySettings"])
    return new_proxier(st["proxyMode"], names.netns_path(names.node_netns(cluster, node)), config)


def probe(cluster: str, host, mode: str, target: str, count: int = 1, timeout: float = 2.0,
          interval: float = 0.0) -> list[dict]:
    """Run minikp.probe inside `host` (its network, hostname and resolv.conf)."""
    from minikp.nsenter import popen_in

    argv = [sys.executable, "-m", "minikp.probe", mode, target, "--count", str(count),
            "--timeout", str(timeout), "--interval", str(interval)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = popen_in(host.netns, argv, hostname=host.hostname, resolv_conf=host.resolv_conf,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = p.communicate()
    if p.returncode != 0:
        raise OperationError(f"probe from {host.kind}/{host.name} failed: {err.strip()}")
    return json.loads(out)["results"]
