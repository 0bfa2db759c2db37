"""Workloads that are processes: a container's `command` (+ `args`) and a client's command,
each started in its own container-like sandbox (sandbox.py) inside the host's network
namespace, output appended to a log file.

- start_command(netns_path, argv, hostname=, resolv_conf=, log_path=, sandbox=) -> Popen:
  argv as PID 1 of a new sandbox; `sandbox` (a pod's container, built by
  sandbox.pod_sandbox) defaults to Docker's capabilities with only PATH and HOSTNAME.
- start_client(server, netns_path, client, resolv_conf=, log_path=) -> Popen | None:
  the client's command (sandboxed like a pod: a client is a host outside the cluster, not
  the machine minikp runs on), or (no command) HTTP on port 80 with its name through the
  WorkloadServer.
"""

from __future__ import annotations

import shutil
import subprocess

from minikp.errors import OperationError
from minikp.scenario.model import ClientPlan
from minikp.workloads import sandbox as sandboxes
from minikp.workloads.images import client_listeners
from minikp.workloads.podenv import DEFAULT_PATH


def start_command(netns_path: str, argv: list[str], hostname: str | None = None,
                  resolv_conf: str | None = None, log_path: str | None = None,
                  sandbox: sandboxes.Sandbox | None = None) -> subprocess.Popen:
    """Start argv (no shell, as the kubelet does) in a sandbox. The process gets its own
    session so a terminal's Ctrl-C reaches the supervisor, not every pod."""
    if not argv:
        raise OperationError("container command is empty")
    sb = sandbox or sandboxes.default_sandbox(netns_path, hostname or "", resolv_conf or "")
    path = sb.env.get("PATH", DEFAULT_PATH)
    if shutil.which(argv[0], path=path) is None:
        raise OperationError(f"container command {argv[0]!r} not found (looked in PATH: {path})")
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        return sandboxes.start(sb, list(argv), stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        if log is not subprocess.DEVNULL:
            log.close()  # the child holds its own copy


def start_client(server, netns_path: str, client: ClientPlan, resolv_conf: str | None = None,
                 log_path: str | None = None) -> subprocess.Popen | None:
    if client.command:
        sb = sandboxes.default_sandbox(netns_path, client.name, resolv_conf or "", client.ip)
        return start_command(netns_path, client.command, log_path=log_path, sandbox=sb)
    server.add(f"client/{client.name}", netns_path, client.name, client_listeners())
    return None
