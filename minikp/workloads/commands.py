"""Workloads that are processes: a container's `command` (+ `args`) and a client's command,
started inside the host's namespace with its own hostname and /etc/resolv.conf (as
`ip netns exec` arranges with /etc/netns/NAME/), output appended to a log file.

- start_command(netns_path, argv, hostname=, resolv_conf=, log_path=) -> Popen
- start_client(server, netns_path, client, resolv_conf=, log_path=) -> Popen | None:
  the client's command, or (no command) HTTP on port 80 with its name through the
  WorkloadServer.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from minikp.errors import OperationError
from minikp.nsenter import popen_in
from minikp.scenario.model import ClientPlan
from minikp.workloads.images import client_listeners


def start_command(netns_path: str, argv: list[str], hostname: str | None = None,
                  resolv_conf: str | None = None, log_path: str | None = None
                  ) -> subprocess.Popen:
    """Start argv (no shell, as the kubelet does) in the namespace. The process gets its
    own session so a terminal's Ctrl-C reaches the supervisor, not every pod."""
    if not argv:
        raise OperationError("container command is empty")
    if shutil.which(argv[0]) is None:
        raise OperationError(f"container command {argv[0]!r} not found (looked in PATH: "
                             f"{os.environ.get('PATH', '')})")
    env = dict(os.environ)
    if hostname:
        env["HOSTNAME"] = hostname  # the kubelet sets it to the pod's hostname
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        return popen_in(netns_path, list(argv), hostname=hostname, resolv_conf=resolv_conf,
                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                        cwd="/", env=env, start_new_session=True, close_fds=True)
    finally:
        if log is not subprocess.DEVNULL:
            log.close()  # the child holds its own copy


def start_client(server, netns_path: str, client: ClientPlan, resolv_conf: str | None = None,
                 log_path: str | None = None) -> subprocess.Popen | None:
    if client.command:
        return start_command(netns_path, client.command, hostname=client.name,
                             resolv_conf=resolv_conf, log_path=log_path)
    server.add(f"client/{client.name}", netns_path, client.name, client_listeners())
    return None
