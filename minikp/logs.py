"""`minikp logs [NS/]POD [-c CONTAINER] [-f]`, kubectl-shaped, for every runtime:

- a Docker pod's container: the engine's log of it (stdout and stderr);
- a command container: its output file (STATE/pods/NS_POD.CONTAINER.log);
- a DNS container (coredns images): dnsmasq's log (STATE/pods/NS_POD/dnsmasq.log);
- a built-in server: it writes nothing, so nothing is shown (as a quiet container's).

Pure: pick_container. Kernel edge: stream.
"""

from __future__ import annotations

import os
import sys
import time

from minikp import names
from minikp.errors import InputError
from minikp.workloads.images import is_dns_image

FOLLOW_POLL_S = 0.2


def pick_container(pod: dict, container: str | None) -> dict:
    """The container `-c` names, else the first (kubectl's default container)."""
    cs = pod["spec"]["containers"]
    if container is None:
        return cs[0]
    for c in cs:
        if c["name"] == container:
            return c
    m = pod["metadata"]
    raise InputError(f'container "{container}" is not valid for pod "{m["name"]}"; choose one '
                     "of: [" + " ".join(c["name"] for c in cs) + "]", field="-c")


def stream(cluster: str, st: dict, namespace: str, pod_name: str, container: str | None,
           follow: bool, out=None) -> None:
    from minikp.docker.runtime import find_container
    out = out or sys.stdout.buffer
    pod = next((p for p in st["pods"] if p["metadata"]["name"] == pod_name
                and p["metadata"]["namespace"] == namespace), None)
    if pod is None:
        raise InputError(f'pods "{pod_name}" not found in namespace "{namespace}"', field="POD")
    c = pick_container(pod, container)
    ct = find_container(cluster, f"{namespace}/{pod_name}", c["name"])
    if ct is not None:
        for chunk in ct.logs(stream=True, follow=follow):
            out.write(chunk)
            out.flush()
        return
    base = names.cluster_path(cluster, "pods", f"{namespace}_{pod_name}")
    path = os.path.join(base, "dnsmasq.log") if is_dns_image(c["image"]) \
        else f"{base}.{c['name']}.log"
    _file(path, follow, out, os.path.dirname(base))


def _file(path: str, follow: bool, out, alive_dir: str) -> None:
    """The file's content (none if it does not exist: a built-in server writes nothing);
    with `follow`, then what is appended, until interrupted or the cluster goes."""
    pos = 0
    while True:
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                data = f.read()
                pos = f.tell()
        except FileNotFoundError:
            data = b""
        if data:
            out.write(data)
            out.flush()
        if not follow or not os.path.isdir(alive_dir):
            return
        time.sleep(FOLLOW_POLL_S)
