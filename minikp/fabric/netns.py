"""Named network namespaces, made in-process (no helper process, no `ip`), plus the two
things done *inside* one: a netlink socket and a sysctl write.

- ensure_run_dir(): /run/netns as a shared mount point, the state `ip netns add` leaves.
- create(name, sysctls) -> path: a new namespace bind-mounted at /run/netns/NAME (as
  iproute2 does), made by unshare() on this thread only, which then switches back. While
  inside it writes its sysctls, by default BASE_SYSCTLS: IPv6 off.
- adopt(name, pid): the same name for a namespace a process already has (a container's).
- remove(name): unmount and unlink; the kernel frees the namespace (and its links) once
  nothing holds it.
- names(prefix): the named namespaces whose name starts with prefix.
- write_sysctl(path, key, value): /proc/sys/net/... resolves against the netns of the
  *calling thread* (checked on this kernel), so a write inside in_netns() hits that
  namespace and leaves the host's value alone.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading

from minikp import names as _names
from minikp.nsenter import CLONE_NEWNET, in_netns, setns, unshare

MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_run_dir_ready = threading.Event()

# The cluster is IPv4-only. Without IPv6 no interface runs DAD, router solicitations or MLD:
# that background work made pod creation twice as slow at 1,000 pods.
BASE_SYSCTLS = {"net.ipv6.conf.all.disable_ipv6": 1, "net.ipv6.conf.default.disable_ipv6": 1}


def _mount(src: bytes, target: bytes, flags: int) -> int:
    return 0 if _libc.mount(src, target, b"none", flags, None) == 0 else ctypes.get_errno()


def ensure_run_dir() -> None:
    """Make /run/netns a shared mount point once per process, exactly as iproute2 does, so
    namespaces made here and by `ip netns add` behave the same for every tool."""
    if _run_dir_ready.is_set():
        return
    run_dir = _names.NETNS_DIR.encode()
    os.makedirs(_names.NETNS_DIR, exist_ok=True)
    if _mount(b"", run_dir, MS_SHARED | MS_REC) == errno.EINVAL:  # not a mount point yet
        err = _mount(run_dir, run_dir, MS_BIND | MS_REC)
        if err:
            raise OSError(err, f"bind mount {_names.NETNS_DIR}: {os.strerror(err)}")
        err = _mount(b"", run_dir, MS_SHARED | MS_REC)
        if err:
            raise OSError(err, f"make {_names.NETNS_DIR} shared: {os.strerror(err)}")
    _run_dir_ready.set()


def create(name: str, sysctls: dict | None = None) -> str:
    """Create the named namespace with BASE_SYSCTLS and then `sysctls` set; fails with
    FileExistsError if the name is taken."""
    ensure_run_dir()
    path = _names.netns_path(name)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        unshare(CLONE_NEWNET)  # this thread only: other threads keep their namespace
        try:
            err = _mount(b"/proc/thread-self/ns/net", path.encode(), MS_BIND)
            if not err:
                for key, value in {**BASE_SYSCTLS, **(sysctls or {})}.items():
                    _write_sysctl(key, value)
        finally:
            setns(own)
        if err:
            raise OSError(err, f"bind mount {path}: {os.strerror(err)}")
    except BaseException:
        remove(name)
        raise
    finally:
        os.close(own)
    return path


def adopt(name: str, pid: int, sysctls: dict | None = None) -> str:
    """Name the network namespace of process `pid` (a container's) as create() names a new
    one (`ip netns attach`), with BASE_SYSCTLS and `sysctls` set in it."""
    ensure_run_dir()
    path = _names.netns_path(name)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    try:
        err = _mount(f"/proc/{pid}/ns/net".encode(), path.encode(), MS_BIND)
        if err:
            raise OSError(err, f"bind mount {path}: {os.strerror(err)}")
        with in_netns(path):
            for key, value in {**BASE_SYSCTLS, **(sysctls or {})}.items():
                _write_sysctl(key, value)
    except BaseException:
        remove(name)
        raise
    return path


def remove(name: str) -> None:
    """Unmount and unlink /run/netns/NAME; a missing one is fine (idempotent)."""
    path = _names.netns_path(name)
    _libc.umount2(path.encode(), MNT_DETACH)
    _unlink(path)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def names(prefix: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(_names.NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def _write_sysctl(key: str, value: str | int) -> None:
    with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
        f.write(str(value))


def write_sysctl(path: str, key: str, value: str | int) -> None:
    """Write net sysctl `key` (dotted, e.g. net.ipv4.ip_forward) in the namespace at path."""
    with in_netns(path):
        _write_sysctl(key, value)


def read_sysctl(path: str | None, key: str) -> str:
    """Read a net sysctl in the namespace at path (None: this thread's own namespace)."""
    def read() -> str:
        with open("/proc/sys/" + key.replace(".", "/")) as f:
            return f.read().strip()
    if path is None:
        return read()
    with in_netns(path):
        return read()
