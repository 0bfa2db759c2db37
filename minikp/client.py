"""What a front end (the CLI now, a dashboard later) does besides parsing and printing,
against a running cluster's state.json and supervisor.

- node_proxier(cluster, st, node) -> Proxier: the node's proxier rebuilt from state.json,
  to read its rules and counters (building one changes nothing in the kernel).
"""

from __future__ import annotations

import dataclasses

from minikp import names
from minikp.errors import InputError
from minikp.proxy.base import Proxier, new_proxier
from minikp.scenario.model import ClusterConfig


def node_proxier(cluster: str, st: dict, node: str) -> Proxier:
    nodes = [n["metadata"]["name"] for n in st["nodes"]]
    if node not in nodes:
        raise InputError(f'no node "{node}"; nodes: ' + ", ".join(nodes), field="NODE")
    config = dataclasses.replace(ClusterConfig(proxy_mode=st["proxyMode"]), **st["proxySettings"])
    return new_proxier(st["proxyMode"], names.netns_path(names.node_netns(cluster, node)), config)
