"""`minikp test FILE`: build the scenario, run its `checks` then its `steps` (checks and
changes: delete, scale, apply, wait; exec: a command in a node, pod or client with its
expected exit code and output), print a pass/fail table, always tear down.
Exit 0 only when every check passed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass

from minikp import state, tables
from minikp.checks import Check, evaluate, parse_check
from minikp.errors import InputError

STEP_KINDS = ("check", "delete", "scale", "apply", "wait", "exec")


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
        elif kind == "wait" and not isinstance(arg, (int, float)):
            raise InputError("wait takes seconds, e.g. `wait: 1.5`", file=where, field=f"steps[{i}].wait")
        elif kind == "scale":
            wk = next((k for k in ("deployment", "replicaset") if k in (arg or {})), None)
            if wk is None or not isinstance(arg.get("replicas"), int):
                raise InputError("scale takes {deployment: NAME, replicas: N}", file=where,
                                 field=f"steps[{i}].scale")
            arg = {"kind": wk, "name": arg[wk], "replicas": arg["replicas"],
                   "namespace": arg.get("namespace", "default")}
        steps.append((kind, arg))
    return steps


def run_check(cluster: str, check: Check) -> tuple[bool, str]:
    from minikp.client import probe

    st = state.read(cluster)
    host = state.find_host(cluster, st, check.source)
    results = probe(cluster, host, check.mode, check.target, check.count, check.timeout)
    return evaluate(check, results, host.ip)


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
            if kind == "check":
                ok, detail = run_check(cluster, arg)
                failed += not ok
                rows.append([arg.name, "PASS" if ok else "FAIL", detail])
                print(f"{'PASS' if ok else 'FAIL'}  {arg.name}: {detail}", flush=True)
            elif kind == "exec":
                ok, detail = run_exec(cluster, arg)
                failed += not ok
                rows.append([arg.name, "PASS" if ok else "FAIL", detail])
                print(f"{'PASS' if ok else 'FAIL'}  {arg.name}: {detail}", flush=True)
            elif kind == "wait":
                time.sleep(float(arg))
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
