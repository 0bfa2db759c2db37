"""The cluster's state file (/run/minikp/<cluster>/state.json), written by the supervisor
after every change and read by the CLI verbs: Kubernetes-shaped objects plus what the CLI
needs to reach hosts. Also where a TARGET (`[NS/]POD`, `node/NAME`, `client/NAME`) lives."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from minikp import names
from minikp.errors import InputError, OperationError


def state_file(cluster: str) -> str:
    return names.cluster_path(cluster, "state.json")


def resolv_path(cluster: str, namespace: str | None) -> str:
    """resolv.conf for pods of `namespace`; None: the one for nodes and clients."""
    return names.cluster_path(cluster, "resolv", f"{namespace or '_hosts'}.conf")


def write(cluster: str, state: dict) -> None:
    path = state_file(cluster)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(state, f, indent=1)
    os.replace(tmp, path)


def read(cluster: str) -> dict:
    try:
        with open(state_file(cluster)) as f:
            return json.load(f)
    except FileNotFoundError:
        raise OperationError(f'cluster "{cluster}" is not up (no {state_file(cluster)}); '
                             f"start it with: minikp up FILE --name {cluster}") from None


@dataclass
class Host:
    """A place traffic or a command can start from."""

    kind: str  # pod | node | client
    name: str
    netns: str  # path
    hostname: str
    resolv_conf: str
    node: str  # the node whose proxy handles its traffic ("" for clients)
    ip: str
    namespace: str = ""  # a pod's


def find_host(cluster: str, state: dict, target: str) -> Host:
    """`[NS/]POD`, `node/NAME`, `client/NAME`, and, so that nobody needs generated pod
    names, `pod/KEY=VALUE` (the first ready pod with that label) or `deployment/[NS/]NAME`
    (its first ready pod)."""
    kind, _, rest = target.partition("/")
    pick = None
    if kind == "deployment":
        ns, _, dep = rest.rpartition("/")
        pick = lambda p: (p["metadata"]["namespace"] == (ns or "default") and any(  # noqa: E731
            o["name"].startswith(dep + "-") for o in p["metadata"].get("ownerReferences", [])))
    elif kind in ("pod", "pods") and "=" in rest:
        key, _, value = rest.partition("=")
        pick = lambda p: p["metadata"].get("labels", {}).get(key) == value  # noqa: E731
    if pick is not None:
        for p in state["pods"]:
            if pick(p) and p["status"]["conditions"][0]["status"] == "True":
                return find_host(cluster, state, f"{p['metadata']['namespace']}/{p['metadata']['name']}")
        raise InputError(f'"{target}" matches no ready pod', field="TARGET")
    if kind in ("node", "nodes") and rest:
        for n in state["nodes"]:
            if n["metadata"]["name"] == rest:
                ip = n["status"]["addresses"][0]["address"]
                return Host("node", rest, names.netns_path(names.node_netns(cluster, rest)),
                            rest, resolv_path(cluster, None), rest, ip)
        raise InputError(f'no node "{rest}"; nodes: '
                         + ", ".join(n["metadata"]["name"] for n in state["nodes"]), field="TARGET")
    if kind in ("client", "clients") and rest:
        for c in state["clients"]:
            if c["name"] == rest:
                return Host("client", rest, names.netns_path(names.client_netns(cluster, rest)),
                            rest, resolv_path(cluster, None), "", c["ip"])
        raise InputError(f'no client "{rest}"; clients: '
                         + (", ".join(c["name"] for c in state["clients"]) or "none"),
                         field="TARGET")
    namespace, pod = (kind, rest) if rest else ("default", kind)
    if namespace in ("pod", "pods"):
        namespace = "default"
    for p in state["pods"]:
        m = p["metadata"]
        if m["name"] == pod and m["namespace"] == namespace:
            netns = (names.node_netns(cluster, p["spec"]["nodeName"]) if p["spec"].get("hostNetwork")
                     else names.pod_netns(cluster, namespace, pod))  # hostNetwork: the node's
            return Host("pod", pod, names.netns_path(netns),
                        p["spec"].get("hostname") or pod, resolv_path(cluster, namespace),
                        p["spec"]["nodeName"], p["status"]["podIP"], namespace)
    raise InputError(f'no pod "{pod}" in namespace "{namespace}" (targets: [NS/]POD, '
                     "node/NAME, client/NAME; see `minikp get pods -A`)", field="TARGET")
