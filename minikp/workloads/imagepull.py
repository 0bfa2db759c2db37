"""An image that cannot be had, as the kubelet treats it (pure): the pod stays Pending, its
container waiting with reason ErrImagePull right after a failed pull, then ImagePullBackOff
while the kubelet's image back-off runs (10 s doubling to 5 min, as crash-loop restarts:
restarts.delay_s); when it is over the pull is tried again.

- PullBackoff(image): failed(now, reason) after each failed pull; due(now): time to try
  again; waiting(now): the container's state.waiting ({reason, message}).
"""

from __future__ import annotations

from dataclasses import dataclass

from minikp.workloads.restarts import delay_s

# How long ErrImagePull shows before ImagePullBackOff: the kubelet's next pod sync after a
# failed pull (which finds the back-off running) comes within seconds.
ERR_SHOWN_S = 2.0


def failed_message(image: str, reason: str) -> str:
    """The kubelet's Failed event and ErrImagePull message."""
    return f'Failed to pull image "{image}": {reason}'


@dataclass
class PullBackoff:
    image: str
    failures: int = 0
    reason: str = ""  # the engine's, of the last failed pull
    failed_at: float = 0.0
    next_try: float = 0.0

    def failed(self, now: float, reason: str) -> float:
        """A pull failed: when to try again."""
        self.failures += 1
        self.reason, self.failed_at = reason, now
        self.next_try = now + delay_s(self.failures)
        return self.next_try

    def due(self, now: float) -> bool:
        return now >= self.next_try

    def waiting(self, now: float) -> dict:
        if now - self.failed_at < ERR_SHOWN_S:
            return {"reason": "ErrImagePull", "message": failed_message(self.image, self.reason)}
        return {"reason": "ImagePullBackOff",
                "message": f'Back-off pulling image "{self.image}": {self.reason}'}
