import pytest

from minikp.checks import evaluate, parse_check
from minikp.errors import InputError


def results(*bodies, client="10.0.0.9:1234"):
    return [{"ok": True, "body": b, "error": None, "client": client} if b else
            {"ok": False, "body": None, "error": "timed out"} for b in bodies]


def test_parse_and_distribution():
    c = parse_check({"from": "client/outside", "request": "http://hostnames/", "count": 4,
                     "expect": {"distinctBackends": 2, "failures": 0}}, "s.yaml")
    assert (c.mode, c.target, c.count) == ("http", "http://hostnames/", 4)
    ok, summary = evaluate(c, results("a", "b", "a", "b"))
    assert ok and "2 backends: a 2, b 2" in summary
    ok, summary = evaluate(c, results("a", "a", "a", None))
    assert not ok and "distinct backends 1 != 2" in summary and "failures 1 != 0" in summary


def test_expected_failure_and_source_ip():
    c = parse_check({"from": "p", "request": "tcp://10.96.0.5:80", "expect": {"fail": True}}, "s.yaml")
    assert c.target == "10.96.0.5:80"
    assert evaluate(c, results(None, None))[0]
    assert not evaluate(c, results("x"))[0]
    c = parse_check({"from": "p", "request": "http://x/", "expect": {"sourceIP": "original"}}, "s.yaml")
    assert evaluate(c, results("a", client="172.18.100.1:5"), "172.18.100.1")[0]
    assert not evaluate(c, results("a", client="10.244.1.1:5"), "172.18.100.1")[0]


def test_an_echo_answer_is_its_first_line_and_its_client_field_can_be_asked_for():
    """minikp/echo answers "pod: NAME", "client: IP:PORT" and the headers: the backend is the
    pod however the port and headers vary; `contains` asks for the client address seen."""
    def echo(ip, port):
        return f"pod: echo\nclient: {ip}:{port}\n\nGET / HTTP/1.1\nHost: x"

    c = parse_check({"from": "p", "request": "http://x/", "count": 3, "expect": {
        "backends": ["pod: echo"], "contains": "client: 172.18.100.1:"}}, "s.yaml")
    ok, summary = evaluate(c, results(*(echo("172.18.100.1", p) for p in (5, 6, 7))))
    assert ok and "1 backends: pod: echo 3" in summary, summary
    ok, summary = evaluate(c, results(echo("172.18.100.1", 5), echo("172.18.0.2", 6)))
    assert not ok and "an answer lacks 'client: 172.18.100.1:'" in summary


def test_bad_checks_name_the_field():
    with pytest.raises(InputError, match=r'check "c1": request: scheme "ftp" unknown'):
        parse_check({"name": "c1", "from": "p", "request": "ftp://x"}, "s.yaml")
    with pytest.raises(InputError, match=r"expect.bogus: unknown"):
        parse_check({"from": "p", "request": "http://x/", "expect": {"bogus": 1}}, "s.yaml")
    with pytest.raises(InputError, match=r"from: required"):
        parse_check({"request": "http://x/"}, "s.yaml")
