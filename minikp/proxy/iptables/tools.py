"""Running iptables' own tools inside a node's namespace: any argv (raising on failure),
iptables-restore fed as its input is produced, and iptables-save, the kernel's word on what
is programmed (rules, and per-rule counters)."""

from __future__ import annotations

import contextlib
import fcntl
import signal
import subprocess
import tempfile
from collections.abc import Iterable

from minikp.errors import OperationError
from minikp.nsenter import popen_in, run_in
from minikp.proxy.iptables.backend import binary


def run(netns_path: str, argv: list[str], input: str | None = None, check: bool = True):
    res = run_in(netns_path, argv, input=input)
    if check and res.returncode != 0:
        raise OperationError(f"{' '.join(argv[:6])}: exit {res.returncode}: {res.stderr.strip()[:2000]}")
    return res


CHUNK = 1 << 16  # bytes per write: few syscalls, yet the restore starts parsing early
PIPE_SIZE = 1 << 20  # the default pipe-max-size: the render runs ahead while restore parses


def restore(netns_path: str, argv: list[str], lines: Iterable[str]) -> str:
    """Run iptables-restore `argv` with `lines` as its input, written in chunks as they are
    produced, so the restore parses while the rest is still being rendered. Raises like run
    on failure; returns the whole input."""
    written: list[str] = []
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: no deadlock on a full stderr
        # `-w N` arms alarm(N) as restore takes the xtables lock and leaves it armed once the
        # lock is held (xshared.c xtables_lock); its SIGALRM would interrupt a read waiting
        # for input still being rendered, which fgets takes for the end ("COMMIT expected").
        # kube-proxy writes its whole buffer at once and never meets it. A child starts with
        # its parent thread's blocked signals: the alarm stays pending, harmless. The price:
        # a restore waiting for a lock someone else holds waits past N seconds.
        unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        try:
            proc = popen_in(netns_path, argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
        try:
            fcntl.fcntl(proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:  # an unprivileged caller above pipe-max-size: the default pipe still works
            pass
        def send(buf: list[str]) -> None:
            written.append("\n".join(buf) + "\n")
            proc.stdin.write(written[-1].encode())

        try:
            buf: list[str] = []
            size = 0
            for line in lines:
                buf.append(line)
                size += len(line) + 1
                if size >= CHUNK:
                    send(buf)
                    buf, size = [], 0
            if buf:
                send(buf)
            proc.stdin.close()
        except BrokenPipeError:  # restore stopped reading (a bad line): its exit status says why
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        except BaseException:  # the render failed: no half-written table may be committed
            proc.kill()
            proc.wait()
            raise
        if proc.wait() != 0:
            err.seek(0)
            raise OperationError(f"{' '.join(argv[:6])}: exit {proc.returncode}: "
                                 f"{err.read().decode(errors='replace').strip()[:2000]}")
    return "".join(written)


def save(netns_path: str, backend: str, table: str | None = None, counters: bool = False) -> str:
    """The kernel's own iptables-save output, from inside the namespace."""
    argv = [binary(backend, "save")] + (["-c"] if counters else []) + (["-t", table] if table else [])
    return run(netns_path, argv).stdout
