"""Entering network namespaces from Python: the one place that calls setns/unshare.

- in_netns(path): run a block of this thread with its network namespace switched (sockets
  created inside stay in that namespace after the block ends).
- popen_in(path, argv, hostname=, resolv_conf=): start a process in a namespace with its own
  hostname and /etc/resolv.conf, as `ip netns exec` does with /etc/netns/NAME/.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def _mount(src, target, fstype, flags) -> None:
    enc = lambda s: s.encode() if s else None  # noqa: E731
    _check(_libc.mount(enc(src), enc(target), enc(fstype), flags, None), f"mount {target}")


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


def enter(path: str, hostname: str | None = None, resolv_conf: str | None = None) -> None:
    """Move the calling process (normally a fresh child) into a namespace, for good."""
    fd = os.open(path, os.O_RDONLY)
    try:
        setns(fd)
    finally:
        os.close(fd)
    if hostname is None and resolv_conf is None:
        return
    unshare(CLONE_NEWNS | CLONE_NEWUTS)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    # /sys shows the interfaces of the namespace that mounts it, as `ip netns exec` arranges.
    with contextlib.suppress(OSError):
        _check(_libc.umount2(b"/sys", MNT_DETACH), "umount /sys")
        _mount("sysfs", "/sys", "sysfs", 0)
    if resolv_conf:
        _mount(resolv_conf, "/etc/resolv.conf", None, MS_BIND)
    if hostname:
        name = hostname.encode()[:64]
        _check(_libc.sethostname(name, len(name)), "sethostname")


def popen_in(path: str, argv: list[str], hostname: str | None = None,
             resolv_conf: str | None = None, **kwargs) -> subprocess.Popen:
    """Start argv inside the network namespace at `path` (and its own UTS/mount namespace
    when a hostname or resolv.conf is given)."""
    return subprocess.Popen(argv, preexec_fn=lambda: enter(path, hostname, resolv_conf), **kwargs)


def run_in(path: str, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run argv to completion inside the network namespace at `path`."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    return subprocess.run(argv, preexec_fn=lambda: enter(path), **kwargs)
