"""The cluster lock, STATE_ROOT/<cluster>/lock: whoever holds it may build or remove the
cluster. `up` takes it first thing and hands it to the supervisor, which holds it for its
life; `down` takes it before removing anything, after asking the holders to stop. So a `down`
never reports a cluster deleted while an `up` of it goes on.

The file records "PID ROLE" (up, supervisor, down) of its last taker, for messages and for
`up` to wait out a `down`. Holders are found exactly, as the processes with the lock's inode
open (an flock belongs to the open file, shared by every process that inherited it).

StopOnSignal turns SIGTERM/SIGINT into a Stopped exception in the main thread while a
cluster is coming up (so that `down` can stop an `up` halfway), and into a mere request
once it is up (the supervisor then shuts down in its own time).

The lock file is removed (with its directory) by whoever holds the lock; a taker that finds
its file unlinked after flock() took a stale inode, and tries again.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import threading
import time

from minikp import names


def lock_path(cluster: str) -> str:
    return names.cluster_path(cluster, "lock")


def try_lock(cluster: str, role: str) -> int | None:
    """The lock's fd (close-on-exec), or None if someone holds it."""
    path = lock_path(cluster)
    while True:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:  # the directory went between the two calls
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if _same_file(fd, path):
            record(fd, role)
            return fd
        os.close(fd)  # its holder removed the file while we waited: a stale inode


def wait_lock(cluster: str, role: str, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while True:
        fd = try_lock(cluster, role)
        if fd is not None or time.monotonic() >= deadline:
            return fd
        time.sleep(0.02)


def record(fd: int, role: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {role}\n".encode(), 0)


def holder_role(cluster: str) -> str:
    """The role the last taker wrote ("" if none)."""
    try:
        with open(lock_path(cluster)) as f:
            return f.read().split()[1]
    except (OSError, IndexError):
        return ""


def _same_file(fd: int, path: str) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _holds(pid: int, path: str, ident: tuple[int, int]) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != path:
                continue
            st = os.stat(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == ident:
            return True
    return False


def holders(cluster: str) -> list[int]:
    """PIDs (other than ours) that have the lock file open."""
    path = lock_path(cluster)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return []
    ident, me = (st.st_dev, st.st_ino), os.getpid()
    return [int(p) for p in os.listdir("/proc")
            if p.isdigit() and int(p) != me and _holds(int(p), path, ident)]


def signal_holders(cluster: str, sig: int) -> int:
    """Send `sig` to every holder, through a pidfd checked to still hold the lock (no PID
    reuse between finding and signalling). Returns how many were signalled."""
    path = lock_path(cluster)
    sent = 0
    for pid in holders(cluster):
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            continue
        try:
            st = os.stat(path)
            if _holds(pid, path, (st.st_dev, st.st_ino)):
                signal.pidfd_send_signal(fd, sig)
                sent += 1
        except (OSError, ProcessLookupError):
            pass
        finally:
            os.close(fd)
    return sent


def release_unused(cluster: str, fd: int) -> None:
    """Give up a lock taken for an `up` that made nothing: its directory goes too if it holds
    nothing but the lock (a crashed cluster's leftovers stay for `down`)."""
    from minikp.fabric.teardown import cluster_netns

    d = names.state_dir(cluster)
    try:
        unused = set(os.listdir(d)) <= {"lock"} and not cluster_netns(cluster)
    except FileNotFoundError:
        unused = False
    if unused:
        shutil.rmtree(d, ignore_errors=True)
    os.close(fd)


class Stopped(BaseException):
    """A signal asked this process to stop while it was bringing a cluster up. A
    BaseException, as KeyboardInterrupt is, so that no `except Exception` swallows it."""


class StopOnSignal:
    """SIGTERM and SIGINT: `requested` is set; while `raising`, the first one also raises
    Stopped in the main thread, and `forward()` is called for every one once not raising."""

    def __init__(self):
        self.requested = threading.Event()
        self.raising = True
        self.forward = None
        self._previous = {}

    def install(self) -> "StopOnSignal":
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self)
        return self

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def __call__(self, signum, frame):
        self.requested.set()
        if self.raising:
            self.raising = False  # a second signal must not interrupt the clean-up
            raise Stopped(signal.Signals(signum).name)
        if self.forward is not None:
            self.forward()
