"""Scenario checks for `minikp test` (pure): what a check asks, and whether the answers the
probe brought back meet its `expect`.

A check:
  from: client/NAME | node/NAME | [NS/]POD | deployment/NAME | pod/LABEL=VALUE
  request: http://HOST[:PORT]/PATH | tcp://HOST:PORT | udp://HOST:PORT | dns://NAME
  count: N (default 1)   timeout: seconds (default 2)
  expect: {failures: N, distinctBackends: N, backends: [..] (an answer's first line names its
           backend), answer: "..", contains: ".." (in every answer, e.g. minikp/echo's
           "client: A.B.C.D:" line),
           addresses: N (how many addresses a dns:// answer holds),
           sourceIP: original | masqueraded | A.B.C.D, fail: true,
           error: refused | timeout | reset | unreachable | closed (how the requests fail:
                  every one, or `failures` of them, and each failure of that kind)}
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

from minikp.errors import InputError

EXPECT_KEYS = {"failures", "distinctBackends", "backends", "answer", "contains", "addresses",
               "sourceIP", "fail", "error"}
# the kind of failure -> what the probe's error text says (OSError / urllib / http.client)
FAILURE_KINDS = {"refused": ("Connection refused",), "timeout": ("timed out",),
                 "reset": ("Connection reset",), "unreachable": ("No route to host", "unreachable"),
                 "closed": ("closed connection", "RemoteDisconnected")}


def backend(body: str) -> str:
    """Who answered: the answer's first line (a hostname, or minikp/echo's "pod: NAME" above
    its client address and headers, which differ from request to request)."""
    return body.split("\n", 1)[0]


def failure_kind(error: str) -> str:
    """refused (REJECT, nothing listening), timeout (DROP, a stopped workload), reset,
    unreachable, closed; "other" when none of them."""
    return next((k for k, marks in FAILURE_KINDS.items() if any(m in error for m in marks)), "other")
CHECK_KEYS = {"name", "from", "request", "count", "timeout", "expect"}


@dataclass
class Check:
    name: str
    source: str
    mode: str  # http | tcp | udp | dns
    target: str  # what the probe gets: a URL, HOST:PORT or a name
    count: int = 1
    timeout: float = 2.0
    expect: dict = field(default_factory=dict)


def parse_check(raw: dict, where: str) -> Check:
    def bad(fieldname, msg):
        return InputError(msg, file=where, kind="check", name=raw.get("name", "") if isinstance(raw, dict) else "",
                          field=fieldname)

    if not isinstance(raw, dict):
        raise bad("", "a check must be a mapping with from, request and expect")
    unknown = set(raw) - CHECK_KEYS
    if unknown:
        raise bad(sorted(unknown)[0], f"unknown field; valid: {', '.join(sorted(CHECK_KEYS))}")
    for key in ("from", "request"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise bad(key, "required, a string")
    req = raw["request"]
    scheme, sep, rest = req.partition("://")
    if not sep:
        raise bad("request", f'"{req}": give a scheme: http://, tcp://, udp:// or dns://')
    if scheme not in ("http", "tcp", "udp", "dns"):
        raise bad("request", f'scheme "{scheme}" unknown; valid: http, tcp, udp, dns')
    expect = raw.get("expect") or {}
    if not isinstance(expect, dict):
        raise bad("expect", "must be a mapping")
    unknown = set(expect) - EXPECT_KEYS
    if unknown:
        raise bad(f"expect.{sorted(unknown)[0]}", f"unknown; valid: {', '.join(sorted(EXPECT_KEYS))}")
    if "error" in expect and expect["error"] not in FAILURE_KINDS:
        raise bad("expect.error", f"{expect['error']!r}: valid: {', '.join(FAILURE_KINDS)}")
    count = raw.get("count", 1)
    if not isinstance(count, int) or count < 1 or count > 10000:
        raise bad("count", "must be an integer 1-10000")
    name = raw.get("name") or f"{raw['from']} -> {req}"
    return Check(name, raw["from"], scheme, req if scheme == "http" else rest.rstrip("/"), count,
                 float(raw.get("timeout", 2.0)), expect)


def evaluate(check: Check, results: list[dict], original_ip: str = "") -> tuple[bool, str]:
    """Whether `results` (the probe's) meet the check's expectations, and a one-line summary."""
    ok_bodies = [r["body"] for r in results if r["ok"]]
    failures = len(results) - len(ok_bodies)
    dist = collections.Counter(backend(b) for b in ok_bodies)
    summary = (f"{len(ok_bodies)}/{len(results)} answered"
               + (f"; {len(dist)} backends: " + ", ".join(f"{b} {n}" for b, n in sorted(dist.items()))
                  if dist else "")
               + (f"; errors: {next(r['error'] for r in results if not r['ok'])}" if failures else ""))
    e = check.expect
    problems = []
    if "error" in e:
        kinds = collections.Counter(failure_kind(r["error"] or "") for r in results if not r["ok"])
        summary += "; failures: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) if kinds else ""
        if set(kinds) - {e["error"]}:
            problems.append(f"failures were {', '.join(sorted(kinds))}, expected {e['error']}")
        if "failures" not in e and ok_bodies:
            problems.append(f"expected every request to fail ({e['error']}), {len(ok_bodies)} answered")
        if not kinds and "failures" not in e:
            problems.append(f"no request failed, expected {e['error']}")
    elif e.get("fail"):
        if ok_bodies:
            problems.append(f"expected every request to fail, {len(ok_bodies)} answered")
    elif "failures" not in e and failures:
        problems.append(f"{failures} failed")
    if "failures" in e and failures != e["failures"]:
        problems.append(f"failures {failures} != {e['failures']}")
    if "distinctBackends" in e and len(dist) != e["distinctBackends"]:
        problems.append(f"distinct backends {len(dist)} != {e['distinctBackends']}")
    if "backends" in e and set(dist) != set(e["backends"]):
        problems.append(f"backends {sorted(dist)} != {sorted(e['backends'])}")
    if "answer" in e and any(b != str(e["answer"]) for b in ok_bodies):
        problems.append(f"answer {ok_bodies[:1]} != {e['answer']!r}")
    if "contains" in e and any(str(e["contains"]) not in b for b in ok_bodies):
        problems.append(f"an answer lacks {e['contains']!r}")
    if "addresses" in e and any(len(b.split()) != e["addresses"] for b in ok_bodies):
        problems.append(f"answer {ok_bodies[:1]} does not hold {e['addresses']} addresses")
    if "sourceIP" in e:
        seen = {r.get("client", "").rpartition(":")[0] for r in results if r["ok"]}
        want = e["sourceIP"]
        if want == "original":
            good = seen == {original_ip}
        elif want == "masqueraded":
            good = bool(seen) and original_ip not in seen
        else:
            good = seen == {want}
        if not good:
            problems.append(f"backends saw source {sorted(seen)}, expected {want}"
                            + (f" ({original_ip})" if want in ("original", "masqueraded") else ""))
        summary += f"; source seen: {', '.join(sorted(seen))}"
    return (not problems, summary + ("" if not problems else " — " + "; ".join(problems)))
