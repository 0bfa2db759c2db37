"""`minikp test FILE`: build the scenario, run its `checks` then its `steps` (checks and
changes: delete, scale, apply, wait), print a pass/fail table, always tear down.
Exit 0 only when every check passed."""

from __future__ import annotations

import os
import time

from minikp import state, tables
from minikp.checks import Check, evaluate, parse_check
from minikp.errors import InputError

STEP_KINDS = ("check", "delete", "scale", "apply", "wait")


def parse_steps(raw_steps: list, where: str) -> list[tuple[str, object]]:
    steps = []
    for i, raw in enumerate(raw_steps or []):
        if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in STEP_KINDS:
            raise InputError(f"each step is one of {', '.join(STEP_KINDS)}", file=where,
                             field=f"steps[{i}]")
        kind, arg = next(iter(raw.items()))
        if kind == "check":
            arg = parse_check(arg, where)
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
            elif kind == "wait":
                time.sleep(float(arg))
            else:
                if kind == "apply":
                    arg = os.path.join(os.path.dirname(os.path.abspath(path)), arg)
                result = request(cluster, kind, spec=arg)
                print(f"step  {kind} {arg}: {result}", flush=True)
    finally:
        stop()
    print()
    print(tables.render(["CHECK", "RESULT", "DETAIL"], rows))
    print(f"\n{len(rows) - failed} passed, {failed} failed ({time.monotonic() - t0:.1f}s)")
    return 1 if failed else 0
