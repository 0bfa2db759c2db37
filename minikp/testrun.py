"""`minikp test FILE`: build the scenario, run its `checks` then its `steps`, print a
pass/fail table, always tear down. Exit 0 only when every check passed.

Steps (docs/minikp-test.md): check; delete, scale, apply, wait; exec (a command in a node, pod
or client with its expected exit code and output); rules (lines present/absent in `minikp
rules NODE`); conntrack (a node's entries); proxy (pause|resume|kill|restart|fail-next-sync a
node's kube-proxy); freeze/thaw (SIGSTOP/SIGCONT a pod's workload); loss (drop a share of a
pod's or node's packets; netem delay/reorder); clock (advance minikp's clock).
Parsing is pure (parse_steps); the supervisor does the faults (minikp.controller.faults)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass

from minikp import state, tables
from minikp.checks import Check, evaluate, parse_check
from minikp.errors import InputError

STEP_KINDS = ("check", "delete", "scale", "apply", "wait", "exec", "rules", "conntrack", "proxy",
              "freeze", "thaw", "loss", "clock")
PROXY_ACTIONS = ("pause", "resume", "kill", "restart", "fail-next-sync")


@dataclass(frozen=True)
class ExecStep:
    """`exec: {name, in: node/N | pod/... | client/N, command: [...], expect: {exitCode,
    output, absent}}`: passes when the exit code matches (default 0), `output` is in the
    command's stdout+stderr and `absent` is not."""

    name: str
    target: str
    command: tuple[str, ...]
    exit_code: int = 0
    output: str = ""
    absent: str = ""


def parse_exec(arg, where: str, field: str) -> ExecStep:
    def bad(msg):
        return InputError(msg, file=where, field=field)
    if not isinstance(arg, dict):
        raise bad("exec takes {name, in: node/NAME, command: [...], expect: {exitCode, output, absent}}")
    unknown = set(arg) - {"name", "in", "command", "expect"}
    if unknown:
        raise bad(f"unknown key {sorted(unknown)[0]!r}; expected name, in, command, expect")
    target, cmd, expect = arg.get("in"), arg.get("command"), arg.get("expect") or {}
    if not isinstance(target, str) or "/" not in target:
        raise bad("in: a target such as node/node-1, pod/NAME or client/NAME")
    if not isinstance(cmd, list) or not cmd or not all(isinstance(c, (str, int)) for c in cmd):
        raise bad("command: a non-empty list of words, e.g. [conntrack, -L, -p, udp]")
    if not isinstance(expect, dict) or set(expect) - {"exitCode", "output", "absent"}:
        raise bad("expect: {exitCode: N, output: TEXT, absent: TEXT}")
    code = expect.get("exitCode", 0)
    if isinstance(code, bool) or not isinstance(code, int):
        raise bad(f"expect.exitCode: {code!r}: must be an integer")
    text = {k: expect.get(k, "") for k in ("output", "absent")}
    for k, v in text.items():
        if not isinstance(v, str):
            raise bad(f"expect.{k}: {v!r}: must be a string")
    return ExecStep(str(arg.get("name") or " ".join(map(str, cmd))), target,
                    tuple(str(c) for c in cmd), code, text["output"], text["absent"])


def _mapping(arg, where: str, field: str, keys: set, required: set, usage: str) -> dict:
    if not isinstance(arg, dict):
        raise InputError(f"takes {usage}", file=where, field=field)
    unknown = set(arg) - keys
    if unknown:
        raise InputError(f"unknown key {sorted(unknown)[0]!r}; expected {', '.join(sorted(keys))}",
                         file=where, field=f"{field}.{sorted(unknown)[0]}")
    missing = required - set(arg)
    if missing:
        raise InputError(f"{sorted(missing)[0]} is required: {usage}", file=where,
                         field=f"{field}.{sorted(missing)[0]}")
    for k in set(arg) & {"name", "node", "pod", "namespace", "table", "action"}:
        if not isinstance(arg[k], str) or not arg[k]:
            raise InputError(f"{arg[k]!r}: must be a name (a string)", file=where, field=f"{field}.{k}")
    return arg


def _texts(v, where: str, field: str) -> tuple[str, ...]:
    v = [v] if isinstance(v, str) else v
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise InputError(f"{v!r}: a line of text or a list of them", file=where, field=field)
    return tuple(v)


def _seconds(v, where: str, field: str, lo: float = 0.0) -> float:
    """Seconds as a number or a Go duration (500ms, 30s, 1m, 1h)."""
    from minikp.scenario.load import go_seconds

    v = go_seconds(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < lo:
        raise InputError(f"{v!r}: a duration of at least {lo:g}s, such as 3600s, 1h or 250ms",
                         file=where, field=field)
    return float(v)


def parse_rules(arg, where: str, field: str) -> dict:
    """rules: {name, node, table, present: LINE(S), absent: LINE(S)}"""
    a = _mapping(arg, where, field, {"name", "node", "table", "present", "absent"}, {"node"},
                 "{node: NODE, table: nat, present: TEXT or [..], absent: TEXT or [..]}")
    if not {"present", "absent"} & set(a):
        raise InputError("give present: and/or absent: (text of rule lines)", file=where, field=f"{field}.present")
    return {"name": a.get("name") or f"rules of {a['node']}", "node": a["node"], "table": a.get("table"),
            "present": _texts(a.get("present", []), where, f"{field}.present"),
            "absent": _texts(a.get("absent", []), where, f"{field}.absent")}


def judge_rules(step: dict, text: str) -> tuple[bool, str]:
    """Every `present` text is in some line, no `absent` text is in any (pure)."""
    lines = text.splitlines()
    missing = [t for t in step["present"] if not any(t in line for line in lines)]
    found = [t for t in step["absent"] if any(t in line for line in lines)]
    problems = [f"no line has {t!r}" for t in missing] + [f"a line has {t!r}" for t in found]
    return not problems, "; ".join(problems) or f"{len(lines)} lines as expected"


def parse_conntrack(arg, where: str, field: str) -> tuple[dict, ExecStep]:
    """conntrack: {name, node, filter: [-p, udp, ...], expect: {entries, output, absent}}:
    `conntrack -L FILTER` in the node; `entries` is how many flows it lists."""
    a = _mapping(arg, where, field, {"name", "node", "filter", "expect"}, {"node", "expect"},
                 "{node: NODE, filter: [-p, udp, --orig-dst, IP], expect: {entries: N, output, absent}}")
    flt = a.get("filter", [])
    if not isinstance(flt, list) or not all(isinstance(w, (str, int)) for w in flt):
        raise InputError("filter: a list of conntrack -L options, e.g. [-p, udp, --orig-dst, 10.96.0.10]",
                         file=where, field=f"{field}.filter")
    expect = a["expect"]
    if not isinstance(expect, dict) or not expect or set(expect) - {"entries", "output", "absent"}:
        raise InputError("expect: {entries: N, output: TEXT, absent: TEXT}", file=where, field=f"{field}.expect")
    entries = expect.get("entries")
    if entries is not None and (isinstance(entries, bool) or not isinstance(entries, int) or entries < 0):
        raise InputError(f"{entries!r}: a number of flows (0 or more)", file=where, field=f"{field}.expect.entries")
    cmd = ["conntrack", "-L", *map(str, flt)]
    ex = parse_exec({"name": a.get("name") or " ".join(cmd), "in": f"node/{a['node']}", "command": cmd,
                     "expect": {k: v for k, v in expect.items() if k != "entries"}}, where, field)
    return {"entries": entries}, ex


def count_flows(out: str) -> int:
    """Flow lines of `conntrack -L` (its summary line goes to stderr, but not always)."""
    return sum(1 for line in out.splitlines() if line.startswith(("tcp ", "udp ", "icmp ", "sctp ")))


def parse_fault(kind: str, arg, where: str, field: str) -> dict:
    """proxy, freeze, thaw, loss, clock: the spec the supervisor's op of that name takes."""
    if kind == "proxy":
        a = _mapping(arg, where, field, {"node", "action"}, {"node", "action"},
                     "{node: NODE, action: " + "|".join(PROXY_ACTIONS) + "}")
        if a["action"] not in PROXY_ACTIONS:
            raise InputError(f"{a['action']!r}: valid: {', '.join(PROXY_ACTIONS)}", file=where, field=f"{field}.action")
        return dict(a)
    if kind in ("freeze", "thaw"):
        return dict(_mapping(arg, where, field, {"pod", "namespace"}, {"pod"}, "{pod: NAME, namespace: NS}"))
    if kind == "clock":
        a = _mapping(arg, where, field, {"advance"}, {"advance"}, "{advance: 3600s}")
        return {"advance": _seconds(a["advance"], where, f"{field}.advance", lo=0.001)}
    a = _mapping(arg, where, field, {"pod", "namespace", "node", "percent", "delay", "reorder"}, set(),
                 "{pod: NAME | node: NAME, percent: 0-100, delay: 100ms, reorder: 25}")
    if ("pod" in a) == ("node" in a):
        raise InputError("give one of pod: or node:", file=where, field=f"{field}.pod")
    spec = {k: a[k] for k in ("pod", "namespace", "node") if k in a}
    for k in ("percent", "reorder"):
        if k in a:
            v = a[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 100:
                raise InputError(f"{v!r}: a percentage 0-100", file=where, field=f"{field}.{k}")
            spec[k] = float(v)
    if "delay" in a:
        spec["delay"] = _seconds(a["delay"], where, f"{field}.delay")
    if "reorder" in spec and "delay" not in spec:
        raise InputError("reorder needs a delay (netem reorders by sending some packets at once)",
                         file=where, field=f"{field}.reorder")
    if not {"percent", "delay"} & set(spec):
        raise InputError("give percent: (and/or delay:)", file=where, field=f"{field}.percent")
    return spec


def judge_exec(step: ExecStep, code: int, out: str) -> tuple[bool, str]:
    """Pass/fail and the detail shown in the table (pure)."""
    problems = []
    if code != step.exit_code:
        problems.append(f"exit {code}, expected {step.exit_code}")
    if step.output and step.output not in out:
        problems.append(f"no {step.output!r} in the output")
    if step.absent and step.absent in out:
        problems.append(f"{step.absent!r} in the output")
    return (not problems, "; ".join(problems) or f"exit {code}")


def run_exec(cluster: str, step: ExecStep) -> tuple[bool, str]:
    r = subprocess.run([sys.executable, "-m", "minikp.cli", "exec", step.target, "--name", cluster,
                        "--", *step.command], capture_output=True, text=True, timeout=60)
    return judge_exec(step, r.returncode, r.stdout + r.stderr)


def parse_steps(raw_steps: list, where: str) -> list[tuple[str, object]]:
    steps = []
    for i, raw in enumerate(raw_steps or []):
        if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in STEP_KINDS:
            raise InputError(f"each step is one of {', '.join(STEP_KINDS)}", file=where,
                             field=f"steps[{i}]")
        kind, arg = next(iter(raw.items()))
        if kind == "check":
            arg = parse_check(arg, where)
        elif kind == "exec":
            arg = parse_exec(arg, where, f"steps[{i}].exec")
        elif kind == "rules":
            arg = parse_rules(arg, where, f"steps[{i}].rules")
        elif kind == "conntrack":
            arg = parse_conntrack(arg, where, f"steps[{i}].conntrack")
        elif kind in ("proxy", "freeze", "thaw", "loss", "clock"):
            arg = parse_fault(kind, arg, where, f"steps[{i}].{kind}")
        elif kind == "wait":
            arg = _seconds(arg, where, f"steps[{i}].wait")
        elif kind == "scale":
            wk = next((k for k in ("deployment", "replicaset") if k in (arg or {})), None)
            if wk is None or not isinstance(arg.get("replicas"), int):
                raise InputError("scale takes {deployment: NAME, replicas: N}", file=where,
                                 field=f"steps[{i}].scale")
            arg = {"kind": wk, "name": arg[wk], "replicas": arg["replicas"],
                   "namespace": arg.get("namespace", "default")}
        steps.append((kind, arg))
    return steps


def run_rules(cluster: str, step: dict) -> tuple[bool, str]:
    argv = [sys.executable, "-m", "minikp.cli", "rules", step["node"], "--name", cluster]
    r = subprocess.run(argv + (["--table", step["table"]] if step["table"] else []),
                       capture_output=True, text=True, timeout=60)
    if r.returncode:
        return False, f"minikp rules exited {r.returncode}: {r.stderr.strip()[:200]}"
    return judge_rules(step, r.stdout)


def run_conntrack(cluster: str, step: tuple[dict, ExecStep]) -> tuple[bool, str]:
    extra, ex = step
    r = subprocess.run([sys.executable, "-m", "minikp.cli", "exec", ex.target, "--name", cluster,
                        "--", *ex.command], capture_output=True, text=True, timeout=60)
    ok, detail = judge_exec(ex, r.returncode, r.stdout + r.stderr)
    n = count_flows(r.stdout)
    if extra["entries"] is not None and n != extra["entries"]:
        return False, f"{n} flows, expected {extra['entries']}" + ("" if ok else f"; {detail}")
    return ok, f"{n} flows" + ("" if ok else f"; {detail}")


def run_check(cluster: str, check: Check) -> tuple[bool, str]:
    from minikp.client import probe

    st = state.read(cluster)
    host = state.find_host(cluster, st, check.source)
    results = probe(cluster, host, check.mode, check.target, check.count, check.timeout)
    return evaluate(check, results, host.ip)


JUDGED = {"check": run_check, "exec": run_exec, "rules": run_rules, "conntrack": run_conntrack}


def step_name(kind: str, arg) -> str:
    """The name a judged step has in the table."""
    if kind == "rules":
        return arg["name"]
    return arg[1].name if kind == "conntrack" else arg.name


def run_test(path: str, cluster: str, start, stop) -> int:
    """`start(files)` brings the cluster up, `stop()` tears it down (the CLI's own)."""
    from minikp.controller.control import request
    from minikp.scenario.load import load_scenario

    scenario = load_scenario([path])
    checks = [parse_check(c, path) for c in scenario.cluster.checks]
    steps = parse_steps(scenario.cluster.steps, path)
    if not checks and not steps:
        raise InputError("nothing to test: add `checks:` (or `steps:`) to the Cluster document",
                         file=path, field="checks")
    rows, failed = [], 0
    t0 = time.monotonic()
    start([path])
    try:
        plan = [("check", c) for c in checks] + steps
        for kind, arg in plan:
            if kind in JUDGED:
                name = step_name(kind, arg)
                ok, detail = JUDGED[kind](cluster, arg)
                failed += not ok
                rows.append([name, "PASS" if ok else "FAIL", detail])
                print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)
            elif kind == "wait":
                time.sleep(arg)
            else:
                if kind == "apply":
                    arg = os.path.join(os.path.dirname(os.path.abspath(path)), arg)
                result = request(cluster, kind, spec=arg)
                if kind in ("delete", "scale", "apply"):  # until Terminating pods are gone
                    from minikp.client import wait_pods_gone
                    wait_pods_gone(cluster)
                print(f"step  {kind} {arg}: {result}", flush=True)
    finally:
        stop()
    print()
    print(tables.render(["CHECK", "RESULT", "DETAIL"], rows))
    print(f"\n{len(rows) - failed} passed, {failed} failed ({time.monotonic() - t0:.1f}s)")
    return 1 if failed else 0
