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
import select
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
        try:  # the file may have been removed by now: the holder still has it open
            if os.readlink(f"/proc/{pid}/fd/{fd}") not in (path, path + " (deleted)"):
                continue
            st = os.stat(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == ident:
            return True
    return False


def _ident(cluster: str) -> tuple[int, int] | None:
    try:
        st = os.stat(lock_path(cluster))
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def holders(cluster: str, ident: tuple[int, int] | None = None) -> list[int]:
    """PIDs (other than ours) that have the lock file open (the one now at its path, or the
    one identified by `ident`, (st_dev, st_ino), even if removed since)."""
    path, ident = lock_path(cluster), ident or _ident(cluster)
    if ident is None:
        return []
    me = os.getpid()
    return [int(p) for p in os.listdir("/proc")
            if p.isdigit() and int(p) != me and _holds(int(p), path, ident)]


def stop_holders(cluster: str, timeout: float, kill_after: float = 10) -> list[int]:
    """SIGTERM every process holding the lock and wait until each has exited, including
    holders that appear meanwhile (a supervisor an `up` was starting); SIGKILL those left
    after `timeout`. Signals go through a pidfd checked to still hold the lock (no PID reuse
    between finding and signalling). Returns the PIDs that would not end."""
    ident = _ident(cluster)
    if ident is None:
        return []
    waiting: dict[int, int] = {}  # pid → pidfd
    sig, deadline = signal.SIGTERM, time.monotonic() + timeout
    try:
        while True:
            for pid in holders(cluster, ident):
                if pid not in waiting:
                    fd = _pidfd_of_holder(cluster, pid, ident)
                    if fd is not None:
                        waiting[pid] = fd
                        _send(fd, sig)
            live = {p: fd for p, fd in waiting.items() if not _exited(fd)}
            if not live and not holders(cluster, ident):
                return []
            if time.monotonic() >= deadline:
                if sig == signal.SIGKILL:
                    return sorted(live)
                sig, deadline = signal.SIGKILL, time.monotonic() + kill_after
                for fd in live.values():
                    _send(fd, sig)
            select.select(list(live.values()), [], [], 0.05)
    finally:
        for fd in waiting.values():
            os.close(fd)


def _pidfd_of_holder(cluster: str, pid: int, ident: tuple[int, int]) -> int | None:
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    if _holds(pid, lock_path(cluster), ident):  # checked after pinning it: no PID reuse
        return fd
    os.close(fd)
    return None


def _send(pidfd: int, sig: int) -> None:
    try:
        signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        pass


def _exited(pidfd: int) -> bool:
    """A pidfd is readable once its process has exited (a zombie counts)."""
    return bool(select.select([pidfd], [], [], 0)[0])


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
