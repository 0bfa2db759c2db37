"""The Docker engine Docker pods run on: the one DOCKER_HOST names, else a private dockerd
that minikp starts, owns and stops.

A default dockerd changes the host's network (FORWARD policy DROP, ip_forward=1, a docker0
bridge, MASQUERADE rules). The private one is started with flags that leave the host alone
(PRIVATE_FLAGS: no iptables, no forwarding, no masquerade, no bridge, no userland proxy);
containers get no network from Docker at all: minikp plumbs the pod's.

- Runtime files (socket, pidfile, exec-root, log, users/) live in RUN_DIR
  (STATE_ROOT/_docker: not a cluster name, so no cluster verb ever touches it) and go when
  the engine stops. Images live in DATA_ROOT (/var/lib/minikp/docker, MINIKP_DOCKER_DATA),
  the engine's image cache: kept across runs so images are built once.
- Refcount by cluster: acquire(cluster) records the cluster in users/ (starting the engine
  if it is not running); release(cluster) removes it, and the last one out stops the engine
  by its PID. A user whose cluster has no state directory any more (its supervisor was
  SIGKILLed and `down` ran before this) does not keep the engine alive. A process that is
  no cluster (`make images`) holds it as `_pid-N` (process_user()).

Pure: dockerd_argv, live_users. Kernel edge: acquire, release, client, stop.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass

from minikp import names
from minikp.errors import OperationError

RUN_DIR = os.path.join(names.STATE_ROOT, "_docker")
DATA_ROOT = os.environ.get("MINIKP_DOCKER_DATA", "/var/lib/minikp/docker")
PRIVATE_FLAGS = ("--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none",
                 "--userland-proxy=false")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Paths:
    run: str = RUN_DIR
    data: str = DATA_ROOT

    @property
    def socket(self) -> str:
        return os.path.join(self.run, "docker.sock")

    @property
    def pidfile(self) -> str:
        return os.path.join(self.run, "dockerd.pid")

    @property
    def log(self) -> str:
        return os.path.join(self.run, "dockerd.log")

    @property
    def users(self) -> str:
        return os.path.join(self.run, "users")

    @property
    def host(self) -> str:
        return "unix://" + self.socket


def dockerd_argv(p: Paths) -> list[str]:
    return ["dockerd", *PRIVATE_FLAGS, "--data-root", p.data,
            "--exec-root", os.path.join(p.run, "exec"), "--pidfile", p.pidfile, "-H", p.host]


def live_users(users: list[str], alive) -> list[str]:
    """The users still holding the engine: those for which `alive(user)` (a cluster with a
    state directory, a process still running)."""
    return sorted(u for u in users if alive(u))


def external_host() -> str | None:
    """DOCKER_HOST, when the user points minikp at an engine of their own."""
    return os.environ.get("DOCKER_HOST") or None


# ---- the kernel edge ---------------------------------------------------------------------


@contextmanager
def _locked(p: Paths):
    """Starting, counting and stopping take turns: a lock on the state root directory
    itself (no lock file left behind when the engine is gone)."""
    os.makedirs(os.path.dirname(p.run), exist_ok=True)
    fd = os.open(os.path.dirname(p.run), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _pid(p: Paths) -> int | None:
    try:
        with open(p.pidfile) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    with open(f"/proc/{pid}/comm") as f:  # a reused PID is not our engine
        return pid if f.read().strip() == "dockerd" else None


def _ping(host: str) -> bool:
    import docker
    try:
        c = docker.DockerClient(base_url=host, timeout=2)
        try:
            return bool(c.ping())
        finally:
            c.close()
    except Exception:  # noqa: BLE001 - not up yet
        return False


def _start(p: Paths) -> None:
    if shutil.which("dockerd") is None:
        raise OperationError("Docker pods need the Docker engine: dockerd is not installed "
                             "(apt-get install docker.io, or set DOCKER_HOST to an engine)")
    os.makedirs(p.users, exist_ok=True)
    os.makedirs(p.data, exist_ok=True)
    log = open(p.log, "ab")
    proc = subprocess.Popen(dockerd_argv(p), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True)  # outlives the supervisor that started it
    log.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise OperationError(f"dockerd exited {proc.returncode} at start; see {p.log}")
        if os.path.exists(p.socket) and _ping(p.host):
            return
        time.sleep(0.1)
    proc.kill()
    raise OperationError(f"dockerd did not answer within {START_TIMEOUT_S:.0f}s; see {p.log}")


def process_user() -> str:
    """A user that is this process, not a cluster (`make images`): not a cluster name."""
    return f"_pid-{os.getpid()}"


def _user_alive(user: str) -> bool:
    if user.startswith("_pid-"):
        return os.path.exists(f"/proc/{user[5:]}")
    return os.path.isdir(os.path.join(names.STATE_ROOT, user))


def acquire(cluster: str, p: Paths = Paths()) -> str:
    """The engine's address for `cluster`'s Docker pods, starting a private one if needed."""
    host = external_host()
    if host:
        return host
    with _locked(p):
        if _pid(p) is None:
            _start(p)
        os.makedirs(p.users, exist_ok=True)
        open(os.path.join(p.users, cluster), "w").close()
    return p.host


def release(cluster: str, p: Paths = Paths()) -> bool:
    """`cluster` no longer needs the engine; stop the private engine if nobody else does.
    True if it was stopped. Idempotent; never touches an engine DOCKER_HOST names."""
    if external_host() or not os.path.isdir(p.run):
        return False
    with _locked(p):
        try:
            os.unlink(os.path.join(p.users, cluster))
        except FileNotFoundError:
            pass
        try:
            users = os.listdir(p.users)
        except FileNotFoundError:
            users = []
        alive = live_users(users, _user_alive)
        for gone in set(users) - set(alive):
            os.unlink(os.path.join(p.users, gone))
        if alive:
            return False
        stop(p)
        return True


def stop(p: Paths) -> None:
    """Stop the private engine by its PID (SIGTERM, then SIGKILL), then remove its runtime
    files (unmounting what containerd left mounted under them)."""
    pid = _pid(p)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    _unmount_under(p.run)
    shutil.rmtree(p.run, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _unmount_under(root: str) -> None:
    real = os.path.realpath(root) + "/"
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].encode().decode("unicode_escape") for line in f]
    for m in sorted((m for m in points if m.startswith(real)), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)


def client(host: str):
    import docker
    return docker.DockerClient(base_url=host, timeout=60)
