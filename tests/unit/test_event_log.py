"""The supervisor's event log: sequence numbers, and events published only once the state
that reflects them is written (publish), never at emit time."""

import threading

from minikp.controller.control import EventLog


def test_events_are_numbered_and_hidden_until_published():
    log = EventLog()
    a = log.emit("PodCreated", "pod a", pod="default/a")
    b = log.emit("PodReady", "pod a ready", pod="default/a")
    c = log.emit("ProxySynced", "node-1")
    assert (a["seq"], b["seq"], c["seq"]) == (1, 2, 3) and log.seq == 3
    assert log.since(0) == []
    log.publish(2)
    assert [e["seq"] for e in log.since(0)] == [1, 2]
    log.publish(3)
    assert [e["seq"] for e in log.since(1)] == [2, 3] and log.pending == []


def test_a_waiting_reader_wakes_on_publish_not_on_emit():
    log = EventLog()
    got = []
    reader = threading.Thread(target=lambda: got.extend(log.since(0, timeout=30)))
    reader.start()
    log.emit("PodCreated", "pod a")
    reader.join(0.2)
    assert reader.is_alive() and got == []  # emitted, not yet published
    log.publish(log.seq)
    reader.join(5)
    assert [e["type"] for e in got] == ["PodCreated"]


def test_keep_bounds_the_published_history():
    log = EventLog(keep=2)
    for i in range(5):
        log.emit("E", str(i))
    log.publish(5)
    assert [e["seq"] for e in log.since(0)] == [4, 5]
