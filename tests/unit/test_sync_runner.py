"""The BoundedFrequencyRunner model, driven by a fake clock (minikp.proxy.runner)."""

import pytest

from minikp.proxy.runner import BoundedFrequencyRunner


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def runner(min_interval=1.0, max_interval=3600.0, burst=2):
    clock, runs = Clock(), []
    r = BoundedFrequencyRunner(lambda: runs.append(clock.t), min_interval, max_interval, burst, clock)
    return r, clock, runs


def test_burst_then_one_batched_run_at_min_interval():
    r, clock, runs = runner()
    assert r.run() and r.run()  # two tokens: both run at once
    clock.t += 0.1
    assert not r.run() and not r.run() and not r.run()  # batched
    assert r.waiting and runs == [1000.0, 1000.0]
    clock.t = 1000.9
    assert not r.tick()  # the timer fires at lastRun + minInterval
    clock.t = 1001.0
    assert r.tick() and runs[-1] == 1001.0 and not r.waiting
    assert len(runs) == 3


def test_min_interval_zero_never_limits():
    r, clock, runs = runner(min_interval=0.0)
    assert all(r.run() for _ in range(10)) and len(runs) == 10


def test_max_interval_runs_with_nothing_changed():
    r, clock, runs = runner(max_interval=3600.0)
    clock.t += 3599
    assert not r.tick()
    clock.t += 1
    assert r.tick() and len(runs) == 1
    clock.t += 3599
    assert not r.tick()  # the timer restarted at that run


def test_retry_after_a_failed_run_pulls_the_timer_in():
    r, clock, runs = runner(max_interval=3600.0)
    r.run()
    r.retry_after(30.0)
    clock.t += 29.9
    assert not r.tick()
    clock.t += 0.1
    assert r.tick() and len(runs) == 2
    r.retry_after(7200.0)  # never later than the timer already is
    assert r.timer == clock.t + 3600.0


def test_tokens_refill_at_one_per_min_interval():
    r, clock, runs = runner(min_interval=2.0, burst=2)
    r.run(), r.run()
    clock.t += 2.0
    assert r.run()  # one token back after minInterval
    assert not r.run()


def test_max_below_min_is_refused_as_the_go_constructor_does():
    with pytest.raises(ValueError):
        BoundedFrequencyRunner(lambda: None, 10.0, 5.0)


def test_retry_asked_during_the_run_survives_the_timer_restart():
    clock, runs = Clock(), []
    r = None

    def failing():
        runs.append(clock.t)
        r.retry_after(30.0)

    r = BoundedFrequencyRunner(failing, 1.0, 3600.0, 2, clock)
    r.run()
    assert r.timer == clock.t + 30.0
    clock.t += 30.0
    assert r.tick() and len(runs) == 2
