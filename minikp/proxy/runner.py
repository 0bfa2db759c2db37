"""kube-proxy's BoundedFrequencyRunner (pkg/util/async/bounded_frequency_runner.go, as 1.33
uses it), without its goroutine: the caller's loop calls tick() often, and the runner calls
`fn` when kube-proxy's would.

- run() (Run: something changed): fn runs now if the token bucket (qps 1/minInterval, `burst`
  tokens, full at start) has a token; otherwise the timer is pulled in to lastRun+minInterval,
  so a burst of changes makes one sync (minSyncPeriod batching).
- the timer fires maxInterval after the last run even with nothing changed (iptables: an hour,
  where 1.33's proxier makes it a forced full sync; ipvs/nftables: syncPeriod).
- retry_after(interval) (RetryAfter: a sync failed): the timer fires within `interval`
  (kube-proxy passes syncPeriod).

Pure: time comes from `clock` (minikp.clock.now by default; tests pass their own)."""

from __future__ import annotations

from minikp import clock as minikp_clock

BURST_SYNCS = 2  # every proxier's burstSyncs


class BoundedFrequencyRunner:
    def __init__(self, fn, min_interval: float, max_interval: float, burst: int = BURST_SYNCS,
                 clock=minikp_clock.now) -> None:
        if max_interval < min_interval:  # the Go constructor panics
            raise ValueError(f"maxInterval {max_interval} < minInterval {min_interval}")
        self.fn, self.min_interval, self.max_interval = fn, min_interval, max_interval
        self.burst, self.clock = burst, clock
        now = clock()
        self.tokens, self._refilled = float(burst), now
        self.last_run = float("-inf")
        self.timer = now + max_interval  # when the timer fires next
        self._retry: float | None = None
        self.waiting = False  # a run() was refused: fn runs when the timer fires

    def _accept(self, now: float) -> bool:
        """The token bucket's TryAccept; minInterval 0 means no limit (nullLimiter)."""
        if self.min_interval <= 0:
            return True
        self.tokens = min(self.burst, self.tokens + (now - self._refilled) / self.min_interval)
        self._refilled = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def _try_run(self) -> bool:
        now = self.clock()
        if self._accept(now):
            self._retry, self.waiting = None, False
            self.fn()  # may call retry_after
            self.last_run = self.clock()  # as Go's: the timer restarts when fn returns
            self.timer = min(self.last_run + self.max_interval, self._retry or float("inf"))
            return True
        self.timer = min(self.timer, self.last_run + self.min_interval)
        self.waiting = True
        return False

    def run(self) -> bool:
        """Run(): True when fn ran now; False when it will at the (pulled-in) timer."""
        return self._try_run()

    def tick(self) -> bool:
        """The loop's turn: fn runs if the timer has fired (and the bucket allows)."""
        return self.clock() >= self.timer and self._try_run()

    def retry_after(self, interval: float) -> None:
        at = self.clock() + interval
        self._retry = min(self._retry or at, at)  # seen when fn returns, if fn called it
        self.timer = min(self.timer, at)
