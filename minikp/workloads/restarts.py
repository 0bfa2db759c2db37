"""restartPolicy as the kubelet applies it (pure): when a container that exited starts again.

- should_restart(policy, exit_code): Always restarts every exit, OnFailure a non-zero one,
  Never none.
- Backoff: the kubelet's crash-loop back-off: the first restart at once, then 10 s doubling
  to 5 min; a container that ran 10 min (twice the cap) without exiting starts over at 10 s.
  While it waits the container's reason is CrashLoopBackOff.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_S = 10.0
MAX_S = 300.0
RESET_AFTER_S = 2 * MAX_S


def should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def delay_s(restarts: int) -> float:
    """How long to wait before restart number `restarts` + 1."""
    if restarts <= 0:
        return 0.0
    return min(INITIAL_S * 2 ** (restarts - 1), MAX_S)


@dataclass
class Backoff:
    """One container's restarts: `exited(now)` says when it may start again."""

    restarts: int = 0
    started_at: float = 0.0
    waiting_until: float | None = None  # set while in CrashLoopBackOff

    def exited(self, now: float) -> float:
        if self.started_at and now - self.started_at >= RESET_AFTER_S:
            self.restarts = 0  # it ran long enough: the back-off starts over
        self.waiting_until = now + delay_s(self.restarts)
        return self.waiting_until

    def due(self, now: float) -> bool:
        return self.waiting_until is not None and now >= self.waiting_until

    def restarted(self, now: float) -> None:
        self.restarts += 1
        self.started_at, self.waiting_until = now, None
