"""Entering namespaces from Python: the one place that calls setns/unshare and the other
raw process syscalls (mount, pivot_root, capset, prctl) a sandbox is built from.

- in_netns(path): run a block of this thread with its network namespace switched (sockets
  created inside stay in that namespace after the block ends).
- popen_in(path, argv, hostname=, resolv_conf=): start a process in a namespace with its own
  hostname and /etc/resolv.conf, as `ip netns exec` does with /etc/netns/NAME/ (nodes: they
  stay privileged); enter(..., overlays=) also lays read-only directories over others in
  that process's mount namespace (a node's `iptables*` commands: nodecommands.py).
- children_in_new_pidns() / children_in_pidns_of(pid): context managers that make the
  processes this thread forks inside the block start in a new PID namespace (as its PID 1)
  or in another process's.
- mount, umount, pivot_root, sethostname, drop_bounding, capset, clear_ambient,
  set_no_new_privs: thin, checked wrappers.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAP_VERSION_3 = 0x20080522
with open("/proc/sys/kernel/cap_last_cap") as _f:
    CAP_LAST = int(_f.read())

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def _mount(src, target, fstype, flags, data: str | None = None) -> None:
    enc = lambda s: s.encode() if s else None  # noqa: E731
    _check(_libc.mount(enc(src), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


mount = _mount


def umount(target: str, flags: int = MNT_DETACH) -> None:
    _check(_libc.umount2(target.encode(), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.pivot_root(new_root.encode(), put_old.encode()), "pivot_root")


def sethostname(hostname: str) -> None:
    name = hostname.encode()[:64]
    _check(_libc.sethostname(name, len(name)), "sethostname")


def _prctl(option: int, arg: int = 0, arg3: int = 0) -> None:
    _check(_libc.prctl(option, arg, arg3, 0, 0), f"prctl {option}")


def drop_bounding(keep_mask: int) -> None:
    """Drop from the bounding set every capability not in keep_mask (needs CAP_SETPCAP)."""
    for cap in range(CAP_LAST + 1):
        if not keep_mask >> cap & 1:
            _prctl(PR_CAPBSET_DROP, cap)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def capset(effective: int, permitted: int, inheritable: int) -> None:
    data = (_CapData * 2)()
    for i in range(2):
        data[i].effective = effective >> (32 * i) & 0xFFFFFFFF
        data[i].permitted = permitted >> (32 * i) & 0xFFFFFFFF
        data[i].inheritable = inheritable >> (32 * i) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(_CapHeader(_CAP_VERSION_3, 0)), data), "capset")


def clear_ambient() -> None:
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def set_no_new_privs() -> None:
    _prctl(PR_SET_NO_NEW_PRIVS, 1)


@contextlib.contextmanager
def _children_in_pidns(join):
    """Processes forked by this thread inside the block start in the PID namespace `join()`
    puts this thread's children in; afterwards they start in its own again."""
    own = os.open("/proc/thread-self/ns/pid", os.O_RDONLY)
    try:
        join()
        try:
            yield
        finally:
            setns(own, CLONE_NEWPID)
    finally:
        os.close(own)


def children_in_new_pidns():
    """Processes forked by this thread inside the block start in one new PID namespace (the
    first is its PID 1). Only this thread's later children are affected, and only until the
    block ends."""
    return _children_in_pidns(lambda: unshare(CLONE_NEWPID))


def children_in_pidns_of(pid: int):
    """Processes forked by this thread inside the block start in `pid`'s PID namespace."""
    def join():
        target = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY)
        try:
            setns(target, CLONE_NEWPID)
        finally:
            os.close(target)
    return _children_in_pidns(join)


@contextlib.contextmanager
def in_netns(path: str):
    """Switch this thread into the network namespace at `path` for the block."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(path, os.O_RDONLY)
    try:
        setns(target)
        yield
    finally:
        setns(own)
        os.close(own)
        os.close(target)


def enter(path: str, hostname: str | None = None, resolv_conf: str | None = None,
          overlays: list[tuple[str, str]] = ()) -> None:
    """Move the calling process (normally a fresh child) into a namespace, for good.
    overlays: (lower, directory) pairs: `lower`'s entries shadow `directory`'s, read-only,
    in the process's own mount namespace (never the host's: / is made private first)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        setns(fd)
    finally:
        os.close(fd)
    if hostname is None and resolv_conf is None and not overlays:
        return
    unshare(CLONE_NEWNS | CLONE_NEWUTS)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # /sys shows the interfaces of the namespace that mounts it, as `ip netns exec` arranges.
    with contextlib.suppress(OSError):
        _check(_libc.umount2(b"/sys", MNT_DETACH), "umount /sys")
        _mount("sysfs", "/sys", "sysfs", 0)
    if resolv_conf:
        _mount(resolv_conf, "/etc/resolv.conf", None, MS_BIND)
    for lower, directory in overlays:
        _mount("overlay", directory, "overlay", MS_RDONLY, f"lowerdir={lower}:{directory}")
    if hostname:
        sethostname(hostname)


def popen_in(path: str, argv: list[str], hostname: str | None = None,
             resolv_conf: str | None = None, **kwargs) -> subprocess.Popen:
    """Start argv inside the network namespace at `path` (and its own UTS/mount namespace
    when a hostname or resolv.conf is given).

    Only the network namespace: this thread switches into it and spawns from there (a
    child starts in its parent thread's namespace). Without a preexec_fn, subprocess uses
    vfork instead of fork + Python code in the child: measured in the supervisor's process,
    ~1.5-5 ms per spawn against ~11-16 ms. iptables-restore, iptables-save and conntrack
    run several times per node sync, so `up` pays it dozens of times."""
    if hostname is None and resolv_conf is None:
        with in_netns(path):
            return subprocess.Popen(argv, **kwargs)
    return subprocess.Popen(argv, preexec_fn=lambda: enter(path, hostname, resolv_conf), **kwargs)


def run_in(path: str, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run argv to completion inside the network namespace at `path` (spawned as popen_in
    does, by vfork from this thread switched into it)."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    with in_netns(path):
        return subprocess.run(argv, **kwargs)
