"""Faults and time, done by the supervisor for `minikp test`'s steps (control-socket ops):

- proxy {node, action}: pause|resume|kill|restart|fail-next-sync one node's kube-proxy
  (minikp.controller.proxyloop);
- clock {advance}: move minikp's clock (minikp.clock) and run the timers that fell due
  (the sync runner's maxInterval, the canary check), so an hour passes at once;
- freeze / thaw {pod, namespace}: SIGSTOP / SIGCONT the pod's processes (a built-in workload
  stops serving the same way); the pod stays Ready unless a readiness probe notices;
- loss {pod | node, percent, delay, reorder}: an iptables `statistic --mode random` DROP in
  that namespace (every kernel has it; percent 0 removes it); delay/reorder by netem, where
  the kernel has sch_netem.

Each op takes the step's spec (already checked by minikp.testrun) and returns a short text.
"""

from __future__ import annotations

from minikp import clock as minikp_clock
from minikp.errors import InputError, OperationError
from minikp.nsenter import run_in

LOSS_COMMENT = "minikp test: packet loss"
_loss: dict[str, list[list[str]]] = {}  # netns path -> the loss rules put there (one cluster per process)


def proxy(sup, spec: dict) -> str:
    with sup.lock:
        state = sup.proxy_loop.act(spec["node"], spec["action"])
        # its health server is part of the process: a stopped one answers nothing, a dead
        # one's ports are closed; a new one opens them at its first sync
        health = sup.health[spec["node"]]
        health.pause(state == "paused")
        if state == "killed":
            health.sync({}, {})
    return f"proxy on {spec['node']}: {spec['action']} ({state})"


def clock(sup, spec: dict) -> str:
    total = minikp_clock.advance(float(spec["advance"]))
    sup.events.emit("ClockAdvanced", f"minikp's clock advanced {spec['advance']:g}s "
                    f"({total:g}s ahead of real time)", seconds=spec["advance"])
    sup.proxy_loop.tick()  # timers now due fire before the answer
    sup.check_canaries()
    return f"clock +{spec['advance']:g}s"


def _record(sup, spec: dict):
    key = f"{spec.get('namespace', 'default')}/{spec['pod']}"
    rec = sup.records.get(key)
    if rec is None:
        raise InputError(f'no pod "{key}"', field="pod")
    return rec


def _freeze(sup, spec: dict, frozen: bool) -> str:
    rec = _record(sup, spec)
    if rec.workloads is not None:
        rec.workloads.freeze(frozen)
    sup.events.emit("PodFrozen" if frozen else "PodThawed",
                    f"pod {rec.key}: workload {'stopped (SIGSTOP)' if frozen else 'continued (SIGCONT)'}",
                    pod=rec.key)
    return f"{rec.key} {'frozen' if frozen else 'thawed'}"


def freeze(sup, spec: dict) -> str:
    return _freeze(sup, spec, True)


def thaw(sup, spec: dict) -> str:
    return _freeze(sup, spec, False)


def _loss_rules(percent: float, node: bool) -> list[list[str]]:
    """The rules for a share of packets dropped (pure): INPUT in a pod, INPUT and FORWARD in
    a node (its pods' traffic is forwarded)."""
    match = ["-m", "statistic", "--mode", "random", "--probability", f"{percent / 100:.4f}",
             "-m", "comment", "--comment", LOSS_COMMENT, "-j", "DROP"]
    return [[chain, *match] for chain in (("INPUT", "FORWARD") if node else ("INPUT",))]


def _links(path: str) -> list[str]:
    out = run_in(path, ["ip", "-o", "link", "show"]).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]
    return [n for n in names if n != "lo"]


def loss(sup, spec: dict) -> str:
    node = "node" in spec
    if node:
        if spec["node"] not in sup.proxy_loop.nodes:
            raise InputError(f'no node "{spec["node"]}"', field="node")
        path, where = sup.edge.node_path(spec["node"]), f"node/{spec['node']}"
    else:
        rec = _record(sup, spec)
        path, where = rec.netns, f"pod/{rec.key}"
    # the iptables the proxy writes with, where it has one (no mix of legacy and nft rules)
    ipt = next(iter(sup.proxiers.values())).shell_commands().get("iptables", "iptables")
    for rule in _loss.pop(path, []):
        run_in(path, [ipt, "-w", "5", "-D", *rule])
    rules = _loss_rules(float(spec.get("percent", 0)), node) if spec.get("percent") else []
    for rule in rules:
        r = run_in(path, [ipt, "-w", "5", "-I", *rule])
        if r.returncode:
            raise OperationError(f"{where}: {ipt} -I {' '.join(rule)}: {r.stderr.strip()}")
    _loss[path] = rules
    netem = [w for k in ("delay", "reorder") if spec.get(k) for w in
             ((k, f"{spec[k] * 1000:g}ms") if k == "delay" else (k, f"{spec[k]:g}%"))]
    for link in _links(path) if netem else []:
        r = run_in(path, ["tc", "qdisc", "replace", "dev", link, "root", "netem", *netem])
        if r.returncode:
            raise OperationError(f"{where}: netem is not available in this kernel ({r.stderr.strip()}); "
                                 "delay and reorder need sch_netem (the VM tier's kernel has it); "
                                 "packet loss (`percent`) works everywhere")
    sup.events.emit("LinkFault", f"{where}: {spec.get('percent', 0):g}% loss"
                    + (f", netem {' '.join(netem)}" if netem else ""), target=where)
    return f"{where}: {spec.get('percent', 0):g}% loss" + (f", {' '.join(netem)}" if netem else "")


OPS = {"proxy": proxy, "clock": clock, "freeze": freeze, "thaw": thaw, "loss": loss}
