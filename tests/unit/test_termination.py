"""The termination model (controller/termination.py): a deleted pod's endpoint conditions,
its grace period, preStop hooks, SIGTERM and SIGKILL, with real processes (no root)."""

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from minikp.controller.endpoints import PodState, compute_endpoints
from minikp.controller.termination import (MINIMUM_GRACE_S, Stopper, Termination, grace_period,
                                           stop_timeout, terminating_state)
from minikp.errors import InputError
from minikp.workloads.runtime import CommandRuntime, ProcessHandle
from minikp.scenario.load import load_scenario
from minikp.scenario.model import (Container, ContainerPort, Handler, PodPlan, PodTemplate,
                                   Service, ServicePlan, ServicePort)


def pod(grace=30, hooks=()):
    cs = [Container("c", "img", [ContainerPort(80)]),
          *(Container(f"h{i}", "img", pre_stop=h) for i, h in enumerate(hooks))]
    t = PodTemplate(labels={"app": "web"}, containers=cs, termination_grace_period_seconds=grace)
    return PodPlan("default", "web-1", "node-1", "10.244.1.5", "Deployment", "web", t)


def test_a_terminating_endpoint_is_not_ready_but_serving_while_it_was_ready():
    svc = ServicePlan(Service("default", "web", selector={"app": "web"}, ports=[ServicePort(80)]),
                      "10.96.0.9")
    for before, serving in ((PodState(ready=True), True), (PodState(ready=False), False)):
        st = terminating_state(before)
        e = compute_endpoints([svc], [pod()], {"default/web-1": st})["default/web"]
        (a,) = e.addresses
        assert (a.ready, a.serving, a.terminating) == (False, serving, True)
        (ep,) = e.ports[""]
        assert (ep.ready, ep.serving, ep.terminating) == (False, serving, True)


def test_grace_period_the_override_wins_and_zero_skips_pre_stop():
    p = pod(grace=12, hooks=[Handler(sleep_seconds=1)])
    assert grace_period(p) == 12 and grace_period(p, 3) == 3
    assert Termination.begin(p, "deleted", 0.0, "t").hooks == [("h0", Handler(sleep_seconds=1))]
    assert Termination.begin(p, "deleted", 0.0, "t", override=0).hooks == []


def test_sigterm_gets_what_pre_stop_left_but_at_least_two_seconds():
    assert stop_timeout(30, 5) == 25
    assert stop_timeout(30, 29.5) == MINIMUM_GRACE_S
    assert stop_timeout(0, 0) == 0  # grace period 0: SIGKILL at once


def stopper(grace, proc=None, hooks=(), run_hook=None):
    """A Stopper that stops `proc` as the command runtime does (None: a built-in workload,
    whose stop time is noted)."""
    events, stopped = [], []

    def stop_workload(timeout):
        stopped.append(time.monotonic())
        if proc is None:
            return None
        CommandRuntime().stop(ProcessHandle(proc, "", "", [], ""), timeout)
        return proc.returncode

    term = Termination.begin(pod(grace, hooks), "deleted", time.monotonic(), "t")
    s = Stopper(term, run_hook or (lambda c, h, t: True), stop_workload,
                lambda kind, msg: events.append((kind, msg)))
    return term, s, events, stopped


def python(code):
    """A real workload; returns once it said its signal handling is in place."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code) + "\nprint('up', flush=True)"
                             "\ntime.sleep(60)"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "up\n"
    return proc


def test_a_workload_that_handles_sigterm_exits_then():
    proc = python("""
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))""")
    term, s, events, builtin = stopper(30, proc)
    t0 = time.monotonic()
    s.start()
    assert term.done.wait(10) and time.monotonic() - t0 < 5
    assert term.outcome == "exited (0) after SIGTERM" and proc.returncode == 0 and builtin


def test_a_workload_that_ignores_sigterm_is_killed_when_the_grace_period_runs_out():
    proc = python("""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)""")
    term, s, events, _ = stopper(1, proc)  # 1 s, raised to the kubelet's 2 s minimum
    t0 = time.monotonic()
    s.start()
    assert term.done.wait(10)
    took = time.monotonic() - t0
    assert MINIMUM_GRACE_S - 0.1 < took < MINIMUM_GRACE_S + 2
    assert term.outcome.startswith("killed (SIGKILL)") and proc.returncode == -9
    assert any(k == "Killing" for k, _ in events)


def test_grace_period_zero_ends_it_at_once_without_pre_stop():
    proc = python("import time")
    ran = []
    term, s, _, _ = stopper(30, proc, [Handler(sleep_seconds=5)], lambda *a: ran.append(a) or True)
    term.grace_s, term.hooks = 0, []  # as Termination.begin(..., override=0) makes it
    t0 = time.monotonic()
    s.start()
    assert term.done.wait(5) and time.monotonic() - t0 < 1 and proc.returncode < 0 and not ran


def test_pre_stop_runs_before_sigterm_and_is_cut_at_the_grace_period():
    order = []
    stop = threading.Event()

    def run_hook(container, handler, timeout):
        order.append(("hook", container, timeout))
        stop.wait(handler.sleep_seconds)  # a hook longer than the grace period
        return True

    term, s, events, builtin = stopper(1, None, [Handler(sleep_seconds=30)], run_hook)
    t0 = time.monotonic()
    s.start()
    assert term.done.wait(10)
    stop.set()
    assert 0.9 < builtin[0] - t0 < 2.5  # SIGTERM once the grace period cut the hook short
    assert order == [("hook", "h0", 1)]


def test_failed_pre_stop_is_an_event_and_termination_goes_on():
    term, s, events, builtin = stopper(5, None, [Handler(exec_command=["false"])],
                                       lambda *a: False)
    s.start()
    assert term.done.wait(5) and builtin
    assert any(k == "FailedPreStopHook" and "exec" in m for k, m in events)


POD_YAML = """
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  terminationGracePeriodSeconds: 7
  hostNetwork: true
  containers:
  - name: c
    image: busybox
    lifecycle:
      preStop: HOOK
"""


@pytest.mark.parametrize("hook,want", [
    ("{sleep: {seconds: 3}}", Handler(sleep_seconds=3)),
    ("{exec: {command: [sh, -c, 'echo bye']}}", Handler(exec_command=["sh", "-c", "echo bye"])),
    ("{httpGet: {path: /drain, port: 8080}}", Handler(http_get=("/drain", 8080))),
])
def test_the_loader_reads_pre_stop_grace_and_host_network(tmp_path, hook, want):
    f = tmp_path / "p.yaml"
    f.write_text(POD_YAML.replace("HOOK", hook))
    s = load_scenario([str(f)])
    t = s.workloads[0].template
    assert (t.termination_grace_period_seconds, t.host_network, t.containers[0].pre_stop) == (
        7, True, want)
    assert not [w for w in s.warnings if "lifecycle" in w or "hostNetwork" in w
                or "terminationGrace" in w]


@pytest.mark.parametrize("hook,field", [
    ("{sleep: {seconds: 3}, exec: {command: [x]}}", "lifecycle.preStop"),
    ("{exec: {command: []}}", "lifecycle.preStop.exec.command"),
    ("{httpGet: {port: 0}}", "lifecycle.preStop.httpGet.port"),
    ("{sleep: {}}", "lifecycle.preStop.sleep.seconds"),
])
def test_bad_pre_stop_names_file_and_field(tmp_path, hook, field):
    f = tmp_path / "p.yaml"
    f.write_text(POD_YAML.replace("HOOK", hook))
    with pytest.raises(InputError) as e:
        load_scenario([str(f)])
    assert e.value.exit_code == 2 and "p.yaml" in str(e.value) and field in str(e.value)


def test_the_load_balancer_health_check_interval(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("apiVersion: minikp.dev/v1alpha1\nkind: Cluster\nspec:\n  networking:\n"
                 "    loadBalancerHealthCheckInterval: 500ms\n")
    assert load_scenario([str(f)]).cluster.lb_health_check_interval_s == 0.5
    f.write_text(f.read_text().replace("500ms", "never"))
    with pytest.raises(InputError) as e:
        load_scenario([str(f)])
    assert "spec.networking.loadBalancerHealthCheckInterval" in str(e.value)


def test_a_host_network_pod_gets_its_nodes_address_and_no_pod_address(tmp_path):
    from minikp.scenario.plan import plan_cluster

    f = tmp_path / "p.yaml"
    f.write_text(POD_YAML.replace("HOOK", "{sleep: {seconds: 1}}")
                 + "---\n" + POD_YAML.replace("name: p}", "name: q}").replace(
                     "hostNetwork: true", "hostNetwork: false").replace("HOOK", "{sleep: {seconds: 1}}"))
    plan = plan_cluster(load_scenario([str(f)]))
    by_name = {p.name: p for p in plan.pods}
    node_ip = {n.name: n.ip for n in plan.nodes}
    assert by_name["p"].ip == node_ip[by_name["p"].node]
    assert by_name["q"].ip.startswith("10.244.")
