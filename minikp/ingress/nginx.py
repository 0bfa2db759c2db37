"""One controller pod's real nginx (Debian's /usr/sbin/nginx): its files on the host and its
process in the pod's sandbox (the pod runtime "ingress-nginx", workloads/runtime.py, starts
and stops it; the ingress controller reconfigures it).

The pod's config directory (next to its logs in the cluster's state dir; the fake
certificate in it) is bound at /etc/nginx in the sandbox, as ingress-nginx keeps
/etc/nginx/nginx.conf; nginx runs in the foreground as the sandbox's PID 1 (`daemon off`), its log lines in the pod's log. A new configuration is
written (each file replaced whole, by rename) and the master is sent SIGHUP (what `nginx -s
reload` does): it starts workers with the new configuration and lets the old ones finish
their requests, so a reload fails none. configure() returns once the new workers run and the
old ones are gone (until then an old worker may still accept a connection: a client would
see the old routes), or after RELOAD_WAIT_S if a long request keeps one.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass

from minikp.errors import OperationError
from minikp.ingress.render import FAKE_CERT, Paths, Rendered
from minikp.workloads import sandbox as sandboxes
from minikp.workloads.commands import start_command

NGINX = "nginx"
RELOAD_WAIT_S = 3.0
PATHS = Paths()  # inside the sandbox


def fake_certificate(path: str) -> None:
    """ingress-nginx's default certificate for hosts without one: self-signed, made once."""
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    r = subprocess.run(["openssl", "req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-days", "365", "-keyout", tmp, "-out", tmp,
                        "-subj", "/O=Acme Co/CN=Kubernetes Ingress Controller Fake Certificate"],
                       capture_output=True, text=True)
    if r.returncode:
        raise OperationError(f"openssl could not make the ingress controller's fake certificate: "
                             f"{r.stderr.strip()[-200:]}")
    os.replace(tmp, path)


def _write(path: str, content: str) -> bool:
    """Replace `path` with `content` (by rename: nginx never reads half a file); True if it changed."""
    try:
        with open(path) as f:
            if f.read() == content:
                return False
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(content)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return True


def _children(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return {int(x) for x in f.read().split()}
    except OSError:
        return set()


@dataclass
class Nginx:
    """A running controller pod's nginx; the pod runtime's handle, shaped like the command
    runtime's (workloads/runtime.py: started when ports 80 and 443 accept)."""

    proc: subprocess.Popen
    conf_dir: str  # on the host; /etc/nginx in the sandbox
    netns: str
    ip: str
    log_path: str
    tcp_ports: tuple[int, ...] = (80, 443)

    def configure(self, rendered: Rendered) -> bool:
        """Write `rendered`; if it changed, reload (SIGHUP to the master) and wait until only
        workers of the new configuration run. True if it reloaded."""
        if not write(self.conf_dir, rendered) or self.proc.poll() is not None:
            return False
        old = _children(self.proc.pid)
        os.kill(self.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_WAIT_S
        while time.monotonic() < deadline:
            now = _children(self.proc.pid)
            if now - old and not now & old:  # new workers run, the old ones finished
                break
            time.sleep(0.01)
        return True


def write(conf_dir: str, rendered: Rendered) -> bool:
    """The configuration's files; True if any changed. Certificates first: the new
    nginx.conf may name them."""
    changed = False
    for rel, content in sorted(rendered.files.items()):
        changed |= _write(os.path.join(conf_dir, rel), content)
    return _write(os.path.join(conf_dir, "nginx.conf"), rendered.conf) or changed


def start(netns: str, ip: str, sb: sandboxes.Sandbox, base: str, rendered: Rendered | None) -> Nginx:
    """nginx as PID 1 of the container's sandbox `sb`, its configuration in `base`.nginx/
    (bound at /etc/nginx), its log in `base`.log."""
    conf_dir, log_path = f"{base}.nginx", f"{base}.log"
    fake_certificate(os.path.join(conf_dir, FAKE_CERT))
    write(conf_dir, rendered or Rendered(""))
    sb = dataclasses.replace(sb, mounts=[*sb.mounts, sandboxes.Mount(conf_dir, PATHS.conf_dir,
                                                                      read_only=True)])
    proc = start_command(netns, [NGINX, "-e", "stderr", "-c", f"{PATHS.conf_dir}/nginx.conf",
                                 "-g", "daemon off;"], log_path=log_path, sandbox=sb)
    return Nginx(proc, conf_dir, netns, ip, log_path)


def remove(h: Nginx) -> None:
    """The configuration of a pod that has gone."""
    shutil.rmtree(h.conf_dir, ignore_errors=True)
