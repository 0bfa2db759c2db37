"""Each node's kube-proxy loop (minikp.controller.proxyloop) with a recording proxier and
minikp's clock moved by hand: batching, retry after a failed sync, pause/kill/restart."""

import pytest

from minikp import clock
from minikp.controller.proxyloop import NodeProxy
from minikp.errors import InputError
from minikp.proxy.base import SyncResult
from minikp.proxy.options import ProxyOptions


class Recorder:
    RUNNER_MAX_INTERVAL_S = 3600.0

    def __init__(self):
        self.synced, self.need_full, self.closed = [], True, False

    def sync(self, snapshot):
        full, self.need_full = self.need_full, False
        self.synced.append((snapshot, full))
        return SyncResult(full=full, duration_s=0.001, changed=set())

    def close(self):
        self.closed = True


@pytest.fixture
def node(monkeypatch):
    monkeypatch.setattr(clock, "_offset", 0.0)
    events, made = [], []

    def make():
        made.append(Recorder())
        return made[-1]

    np = NodeProxy("node-1", make, lambda: "snap", lambda kind, msg, **f: events.append((kind, msg)),
                   ProxyOptions(sync_period_s=30.0, min_sync_period_s=1.0))
    return np, events, made


def kinds(events):
    return [k for k, _ in events]


def test_burst_then_batched(node):
    np, events, made = node
    for _ in range(4):
        np.request("change")
    assert len(made[0].synced) == 2 and np.waiting()
    assert kinds(events).count("ProxySyncDeferred") == 2
    clock.advance(1.0)
    np.tick()
    assert len(made[0].synced) == 3 and not np.waiting()


def test_failed_sync_retried_after_sync_period_and_full(node):
    np, events, made = node
    np.request("up")
    np.act("fail-next-sync")
    np.request("scale")
    assert kinds(events)[-1] == "ProxySyncFailed" and len(made[0].synced) == 1
    clock.advance(29.0)
    np.tick()
    assert len(made[0].synced) == 1
    clock.advance(1.0)
    np.tick()
    assert made[0].synced[-1] == ("snap", True)  # the retry is a full sync


def test_pause_resume_kill_restart(node):
    np, events, made = node
    np.request("up")
    np.act("pause")
    np.request("scale")
    clock.advance(7200)
    np.tick()
    assert len(made[0].synced) == 1  # a stopped process syncs nothing
    np.act("resume")
    assert len(made[0].synced) == 2
    np.act("kill")
    assert made[0].closed
    with pytest.raises(InputError):
        np.act("resume")
    np.request("scale")
    assert len(made[0].synced) == 2
    np.act("restart")
    assert len(made) == 2 and made[1].synced == [("snap", True)]


def test_max_interval_syncs_with_nothing_changed(node):
    np, events, made = node
    np.request("up")
    clock.advance(3600.0)
    np.tick()
    assert len(made[0].synced) == 2 and "periodic" in events[-1][1]


def test_what_follows_a_sync_sees_only_applied_snapshots(node):
    """kube-proxy updates its health server after the rules are written, so a load balancer
    never sends a connection to a node for an endpoint its rules do not have yet."""
    np, events, made = node
    np.synced = lambda snap: events.append(("Applied", snap))
    np.request("up")
    assert events[-1] == ("Applied", "snap") and kinds(events)[-2] == "ProxySynced"
    np.act("fail-next-sync")
    np.request("scale")
    assert kinds(events)[-1] == "ProxySyncFailed" and kinds(events).count("Applied") == 1
    np.act("pause")
    np.request("scale")
    assert kinds(events).count("Applied") == 1  # a stopped process updates nothing
