"""Inside a node, the plain `iptables`, `iptables-save`, `iptables-restore` and `ip6tables*`
commands are the backend its proxy wrote with, as on a real node where kube-proxy and the
admin's shell use the same iptables. The host's alternatives are not touched: `minikp exec
node/X` lays, in its own mount namespace only, a read-only directory of symlinks over the
directory holding those commands (an overlay whose lower layers are the links, then the
directory itself), so every other command there stays the host's.

- layers(links, which) -> {directory: {name: target}}: where each name must be shadowed (pure).
- overlays(cluster, links) -> [(lower, directory)]: the symlink directories, written once
  in the cluster's state directory (they go with `down`), for nsenter.enter(overlays=).
  `links` is the node's proxier's shell_commands() (minikp.proxy.base).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

from minikp import names


def layers(links: dict[str, str], which=shutil.which) -> dict[str, dict[str, str]]:
    """Group name -> target links by the directory where PATH finds the name today (the
    one a shell would run), or, for a name not installed, the directory of its target."""
    out: dict[str, dict[str, str]] = {}
    for name, target in links.items():
        found = which(name)
        out.setdefault(os.path.realpath(os.path.dirname(found or target)), {})[name] = target
    return out


def overlays(cluster: str, links: dict[str, str]) -> list[tuple[str, str]]:
    """[(directory of links, directory to lay it over)] that make each name of `links`
    run its target; [] for no links."""
    if not links:
        return []
    # named by what they hold: a cluster whose settings change gets new directories
    root = names.cluster_path(cluster, "commands", _digest(links))
    out = []
    for directory, group in sorted(layers(links).items()):
        lower = os.path.join(root, directory.strip("/").replace("/", "+") or "root")
        if not os.path.isdir(lower):
            _write_links(lower, group)
        out.append((lower, directory))
    return out


def _digest(links: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(links, sort_keys=True).encode()).hexdigest()[:12]


def _write_links(lower: str, links: dict[str, str]) -> None:
    """Made beside and renamed into place: two execs at once never see half a directory."""
    tmp = f"{lower}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for name, target in links.items():
        os.symlink(target, os.path.join(tmp, name))
    try:
        os.rename(tmp, lower)
    except OSError:  # another exec made it first
        shutil.rmtree(tmp, ignore_errors=True)
