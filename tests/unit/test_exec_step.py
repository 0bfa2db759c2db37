"""`exec` steps of `minikp test`: parsed with errors naming the step, judged on exit code
and output (pure)."""

import pytest

from minikp.errors import InputError
from minikp.testrun import ExecStep, judge_exec, parse_steps


def test_exec_step_parsed():
    [(kind, step)] = parse_steps([{"exec": {"name": "flows", "in": "node/node-1",
                                            "command": ["conntrack", "-L", "-p", "udp"],
                                            "expect": {"absent": "src=10.244.9.9"}}}], "t.yaml")
    assert kind == "exec"
    assert step == ExecStep("flows", "node/node-1", ("conntrack", "-L", "-p", "udp"), 0, "", "src=10.244.9.9")


@pytest.mark.parametrize("arg, message", [
    ({"in": "node-1", "command": ["true"]}, "in: a target"),
    ({"in": "node/node-1", "command": []}, "command: a non-empty list"),
    ({"in": "node/node-1", "command": ["true"], "expect": {"exitcode": 1}}, "expect: {exitCode"),
    ({"in": "node/node-1", "command": ["true"], "expect": {"exitCode": "one"}}, "expect.exitCode"),
    ({"in": "node/node-1", "command": ["true"], "when": 1}, "unknown key 'when'"),
])
def test_bad_exec_steps_name_the_step(arg, message):
    with pytest.raises(InputError) as e:
        parse_steps([{"wait": 1}, {"exec": arg}], "t.yaml")
    assert "steps[1].exec" in str(e.value) and message in str(e.value) and e.value.exit_code == 2


def test_judge_exec():
    step = ExecStep("x", "node/n", ("true",), 1, "hello", "bye")
    assert judge_exec(step, 1, "hello world") == (True, "exit 1")
    ok, detail = judge_exec(step, 0, "bye")
    assert not ok and "exit 0, expected 1" in detail and "'hello'" in detail and "'bye' in" in detail
