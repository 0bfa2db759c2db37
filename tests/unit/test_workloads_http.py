"""The built-in HTTP answer: every request gets 200 and the name; keep-alive, pipelining,
HEAD, request bodies and HTTP/1.0 handled as a client expects."""

from minikp.workloads.server import MAX_HEADER, http_responses

NAME = b"web-7d9f-abcde"


def parse(raw: bytes):
    """Split a byte stream of responses to GET requests into (status, headers, body)."""
    out = []
    while raw:
        head, _, raw = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        n = int(headers["content-length"])
        body, raw = raw[:n], raw[n:]
        out.append((lines[0], headers, body))
    return out


def test_http11_keeps_the_connection_open_and_names_the_pod_and_client():
    buf = bytearray(b"GET /anything?x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
    out, close, bad = http_responses(buf, NAME, "10.244.1.5:40000")
    assert (close, bad, bytes(buf)) == (False, False, b"")
    [(status, headers, body)] = parse(out)
    assert status == "HTTP/1.1 200 OK"
    assert body == NAME + b"\n"
    assert headers["content-type"].startswith("text/plain")
    assert headers["x-minikp-client"] == "10.244.1.5:40000"
    assert headers["connection"] == "keep-alive"


def test_connection_close_and_http10_close_after_the_answer():
    for req in (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", b"GET / HTTP/1.0\r\n\r\n",
                b"GET /\r\n\r\n"):
        out, close, bad = http_responses(bytearray(req), NAME, "p")
        assert close and not bad
        assert parse(out)[0][1]["connection"] == "close"
    out, close, _ = http_responses(bytearray(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
                                   NAME, "p")
    assert not close


def test_pipelined_requests_are_answered_in_order_and_a_partial_one_waits():
    buf = bytearray(b"GET /1 HTTP/1.1\r\n\r\nHEAD /2 HTTP/1.1\r\n\r\nGET /3 HTT")
    out, close, bad = http_responses(buf, NAME, "p")
    assert (close, bad) == (False, False)
    assert bytes(buf) == b"GET /3 HTT"  # kept for the next read
    first, rest = out.split(b"\r\n\r\n", 1)
    assert rest.startswith(NAME + b"\n")
    second = rest[len(NAME) + 1:]
    assert second.startswith(b"HTTP/1.1 200 OK") and second.endswith(b"\r\n\r\n")  # HEAD: no body
    buf += b"P/1.1\r\n\r\n"
    out, _, _ = http_responses(buf, NAME, "p")
    assert out.endswith(NAME + b"\n") and buf == b""


def test_request_body_is_consumed_only_when_complete():
    buf = bytearray(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab")
    out, close, bad = http_responses(buf, NAME, "p")
    assert out == b"" and not close and not bad
    buf += b"cdeGET / HTTP/1.1\r\n\r\n"
    out, _, _ = http_responses(buf, NAME, "p")
    assert out.count(b"200 OK") == 2 and buf == b""


def test_garbage_and_oversized_headers_are_refused():
    _, close, bad = http_responses(bytearray(b"\r\n\r\n"), NAME, "p")
    assert close and bad
    _, close, bad = http_responses(bytearray(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"), NAME, "p")
    assert bad
    _, close, bad = http_responses(bytearray(b"G" * (MAX_HEADER + 1)), NAME, "p")
    assert bad
    _, close, bad = http_responses(bytearray(b"GET / HTTP/1.1\r\nX: y"), NAME, "p")
    assert not bad and not close  # just incomplete
