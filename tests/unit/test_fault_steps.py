"""`minikp test`'s rules, conntrack, proxy, freeze/thaw, loss and clock steps and the kind of
failure in a check's expect: parsed with errors naming file and field, judged (pure)."""

import pytest

from minikp.checks import evaluate, failure_kind, parse_check
from minikp.controller.faults import _loss_rules
from minikp.errors import InputError
from minikp.testrun import count_flows, judge_rules, parse_steps


def one(step):
    [(kind, arg)] = parse_steps([step], "t.yaml")
    return kind, arg


def test_fault_steps_parsed_to_the_supervisors_specs():
    assert one({"proxy": {"node": "node-1", "action": "fail-next-sync"}}) == (
        "proxy", {"node": "node-1", "action": "fail-next-sync"})
    assert one({"clock": {"advance": "1h"}}) == ("clock", {"advance": 3600.0})
    assert one({"clock": {"advance": 90}}) == ("clock", {"advance": 90.0})
    assert one({"freeze": {"pod": "web-1"}}) == ("freeze", {"pod": "web-1"})
    assert one({"loss": {"node": "node-2", "percent": 30}}) == ("loss", {"node": "node-2", "percent": 30.0})
    assert one({"loss": {"pod": "a", "delay": "100ms", "reorder": 25}}) == (
        "loss", {"pod": "a", "delay": 0.1, "reorder": 25.0})
    assert one({"wait": "500ms"}) == ("wait", 0.5)


def test_rules_and_conntrack_steps():
    kind, r = one({"rules": {"node": "node-1", "table": "nat", "present": "KUBE-SVC", "absent": ["10.244.9.9"]}})
    assert r == {"name": "rules of node-1", "node": "node-1", "table": "nat", "present": ("KUBE-SVC",),
                 "absent": ("10.244.9.9",)}
    assert judge_rules(r, "-A KUBE-SERVICES -j KUBE-SVC-X\n") == (True, "1 lines as expected")
    ok, detail = judge_rules(r, "-A KUBE-SEP -d 10.244.9.9\n")
    assert not ok and "no line has 'KUBE-SVC'" in detail and "a line has '10.244.9.9'" in detail
    kind, (extra, ex) = one({"conntrack": {"node": "node-1", "filter": ["-p", "udp"], "expect": {"entries": 0}}})
    assert extra == {"entries": 0} and ex.target == "node/node-1" and ex.command == ("conntrack", "-L", "-p", "udp")
    out = ("udp      17 29 src=10.244.0.5 dst=10.96.0.10 sport=1 dport=53 [UNREPLIED] src=10.244.1.3\n"
           "conntrack v1.4.7 (conntrack-tools): 1 flow entries have been shown.\n")
    assert count_flows(out) == 1


@pytest.mark.parametrize("step, field, message", [
    ({"proxy": {"node": "node-1", "action": "stop"}}, "steps[0].proxy.action", "valid: pause, resume"),
    ({"proxy": {"action": "kill"}}, "steps[0].proxy.node", "node is required"),
    ({"clock": {"advance": "soon"}}, "steps[0].clock.advance", "a duration"),
    ({"clock": {"advance": -5}}, "steps[0].clock.advance", "at least"),
    ({"freeze": {"pod": 3}}, "steps[0].freeze.pod", "must be a name"),
    ({"loss": {"pod": "a", "node": "b", "percent": 5}}, "steps[0].loss.pod", "one of pod: or node:"),
    ({"loss": {"pod": "a", "percent": 150}}, "steps[0].loss.percent", "0-100"),
    ({"loss": {"pod": "a", "reorder": 10}}, "steps[0].loss.reorder", "needs a delay"),
    ({"loss": {"pod": "a"}}, "steps[0].loss.percent", "give percent"),
    ({"rules": {"node": "node-1"}}, "steps[0].rules.present", "present: and/or absent:"),
    ({"rules": {"node": "node-1", "present": [1]}}, "steps[0].rules.present", "a line of text"),
    ({"conntrack": {"node": "node-1", "expect": {"entries": -1}}}, "steps[0].conntrack.expect.entries", "0 or more"),
    ({"conntrack": {"node": "node-1", "expect": {"flows": 1}}}, "steps[0].conntrack.expect", "expect: {entries"),
    ({"wait": "later"}, "steps[0].wait", "a duration"),
])
def test_bad_steps_name_file_and_field(step, field, message):
    with pytest.raises(InputError) as e:
        parse_steps([step], "t.yaml")
    text = str(e.value)
    assert "t.yaml" in text and field in text and message in text and e.value.exit_code == 2, text


@pytest.mark.parametrize("error, kind", [
    ("[Errno 111] Connection refused", "refused"), ("timed out", "timeout"),
    ("<urlopen error timed out>", "timeout"), ("[Errno 104] Connection reset by peer", "reset"),
    ("[Errno 113] No route to host", "unreachable"),
    ("Remote end closed connection without response", "closed"), ("boom", "other")])
def test_failure_kinds(error, kind):
    assert failure_kind(error) == kind


def fails(*errors):
    return [{"ok": False, "body": None, "error": e} for e in errors]


def test_expect_error_kind():
    check = parse_check({"from": "client/c", "request": "tcp://10.96.0.1:80", "expect": {"error": "refused"}}, "t")
    assert evaluate(check, fails("[Errno 111] Connection refused"))[0]
    ok, detail = evaluate(check, fails("timed out"))
    assert not ok and "failures were timeout, expected refused" in detail
    ok, detail = evaluate(check, [{"ok": True, "body": "web-1", "error": None}])
    assert not ok and "no request failed" in detail
    some = parse_check({"from": "client/c", "request": "tcp://x:1", "expect": {"error": "timeout", "failures": 1}}, "t")
    assert evaluate(some, [{"ok": True, "body": "a", "error": None}] + fails("timed out"))[0]
    with pytest.raises(InputError) as e:
        parse_check({"from": "client/c", "request": "tcp://x:1", "expect": {"error": "slow"}}, "t")
    assert "expect.error" in str(e.value) and "refused, timeout" in str(e.value)


def test_loss_rules_drop_a_random_share():
    assert _loss_rules(30, node=False) == [["INPUT", "-m", "statistic", "--mode", "random", "--probability",
                                            "0.3000", "-m", "comment", "--comment", "minikp test: packet loss",
                                            "-j", "DROP"]]
    assert [r[0] for r in _loss_rules(5, node=True)] == ["INPUT", "FORWARD"]
