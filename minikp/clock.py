"""minikp's clock: monotonic seconds plus whatever `minikp test`'s `clock: {advance: 3600s}`
step added, so that timers of an hour (kube-proxy's periodic full sync, the sync runner's
maxInterval) can be tested without waiting. Only timers read it; timeouts of real I/O
(sockets, subprocesses) keep real time.

One clock per process (the supervisor's); `now` is what a timer takes as its clock."""

from __future__ import annotations

import threading
import time

_lock = threading.Lock()
_offset = 0.0


def now() -> float:
    return time.monotonic() + _offset


def advance(seconds: float) -> float:
    """Move the clock forward (never back: timers would fire twice); returns the new offset."""
    global _offset
    if seconds < 0:
        raise ValueError("the clock only moves forward")
    with _lock:
        _offset += seconds
        return _offset


def offset() -> float:
    return _offset
