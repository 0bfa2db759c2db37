"""Live changes without root: Deployment strategies (parsing, budgets, rollout rounds), the
allocator's all-or-nothing pods and clones, and apply planned and checked on a copy."""

import copy
import dataclasses
import itertools
import textwrap
import types

import pytest

from minikp.controller import changes
from minikp.controller.records import ClusterObjects
from minikp.controller.rollout import budgets, rounds
from minikp.errors import InputError
from minikp.scenario.load import load_scenario
from minikp.scenario.model import DeploymentStrategy
from minikp.scenario.plan import plan_cluster

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  STRATEGY
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.k8s.io/serve_hostname, ports: [{containerPort: 9376}]}]
"""
SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: NAME}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 9376, nodePort: PORT}]
"""


def load(tmp_path, *docs, name="s.yaml"):
    p = tmp_path / name
    p.write_text("\n---\n".join(textwrap.dedent(d) for d in docs))
    return load_scenario([str(p)])


def deployment(strategy=""):
    return DEPLOY.replace("STRATEGY", strategy or "")


def service(name, port):
    return SERVICE.replace("NAME", name).replace("PORT", str(port))


# ---- strategies: parsing ------------------------------------------------------------------

def test_strategy_defaults_and_values(tmp_path):
    [w] = load(tmp_path, deployment()).workloads
    assert w.strategy == DeploymentStrategy("RollingUpdate", "25%", "25%")
    [w] = load(tmp_path, deployment("strategy: {rollingUpdate: {maxSurge: 2, maxUnavailable: 0%}}")).workloads
    assert w.strategy == DeploymentStrategy("RollingUpdate", 2, "0%")
    [w] = load(tmp_path, deployment("strategy: {type: Recreate}")).workloads
    assert w.strategy.type == "Recreate"


@pytest.mark.parametrize("strategy, expected", [
    ("strategy: {type: Rolling}",
     'spec.strategy.type: Unsupported value: "Rolling": supported values: "Recreate", "RollingUpdate"'),
    ("strategy: {type: Recreate, rollingUpdate: {maxSurge: 1}}",
     "spec.strategy.rollingUpdate: may not be specified when strategy `type` is 'Recreate'"),
    ("strategy: {rollingUpdate: {maxSurge: -1}}",
     "spec.strategy.rollingUpdate.maxSurge: -1: must be an integer >= 0 or a percentage"),
    ("strategy: {rollingUpdate: {maxSurge: 'lots'}}",
     "spec.strategy.rollingUpdate.maxSurge: 'lots': must be an integer >= 0 or a percentage"),
    ("strategy: {rollingUpdate: {maxUnavailable: 150%}}",
     'spec.strategy.rollingUpdate.maxUnavailable: "150%": must not be greater than 100%'),
    ("strategy: {rollingUpdate: {maxSurge: 0, maxUnavailable: 0%}}",
     "spec.strategy.rollingUpdate.maxUnavailable: may not be 0 when `maxSurge` is 0"),
    ("strategy: [RollingUpdate]", "spec.strategy: must be a mapping, not a list"),
])
def test_strategy_errors_name_file_line_and_field(tmp_path, strategy, expected):
    with pytest.raises(InputError) as e:
        load(tmp_path, deployment(strategy))
    assert e.value.exit_code == 2 and str(e.value).startswith(f"{tmp_path}/s.yaml:")
    assert f'Deployment "web": {expected}' in str(e.value)


# ---- strategies: budgets and rounds ---------------------------------------------------------

@pytest.mark.parametrize("surge, unavailable, replicas, expected", [
    ("25%", "25%", 3, (1, 0)),  # surge rounds up, unavailable down
    ("25%", "25%", 10, (3, 2)),
    ("25%", "25%", 1, (1, 0)),
    (0, "10%", 3, (0, 1)),  # both 0 after rounding: one may be unavailable
    (2, 1, 5, (2, 1)),
    ("100%", "0%", 4, (4, 0)),
])
def test_budgets_round_as_kubernetes(surge, unavailable, replicas, expected):
    assert budgets(DeploymentStrategy("RollingUpdate", surge, unavailable), replicas) == expected


def test_default_rollout_of_three_replaces_one_at_a_time():
    assert rounds(DeploymentStrategy(), 3, 3) == [(1, 1), (1, 1), (1, 1)]


def test_recreate_stops_every_old_pod_first():
    assert rounds(DeploymentStrategy("Recreate"), 3, 2) == [(0, 3), (2, 0)]
    assert rounds(DeploymentStrategy("Recreate"), 0, 2) == [(2, 0)]


def test_rollout_rounds_keep_both_budgets():
    for old_count, replicas, surge, unavailable in itertools.product(
            range(7), range(7), [0, 1, 2, "25%", "50%"], [0, 1, "25%", "100%"]):
        st = DeploymentStrategy("RollingUpdate", surge, unavailable)
        max_surge, max_unavailable = budgets(st, replicas)
        new, old = 0, old_count
        for start, stop in rounds(st, old, replicas):
            new += start
            assert new + old <= max(replicas + max_surge, old_count)  # never more pods than allowed
            old -= stop
            # every pod is Ready once started: never fewer than replicas - maxUnavailable
            assert old >= 0 and new + old >= min(replicas - max_unavailable, new + old + stop)
        assert (new, old) == (replicas, 0), (old_count, replicas, surge, unavailable)


# ---- the allocator ------------------------------------------------------------------------

def test_pods_that_do_not_fit_take_no_address_and_say_the_limit(tmp_path):
    scenario = load(tmp_path, deployment())
    plan = plan_cluster(scenario)
    web = next(w for w in scenario.workloads if w.name == "web")
    before = copy.deepcopy(plan.allocator.node_pod_ips)
    with pytest.raises(InputError) as e:
        plan.allocator.plan_pods(web, count=300)
    assert plan.allocator.node_pod_ips == before
    assert ('Deployment "web": spec.replicas: 300 more pods do not fit on the nodes it may use: '
            "node-1 has 248 free (its pod CIDR 10.244.1.0/24 holds 253 pods)") in str(e.value)
    assert len(plan.allocator.plan_pods(web, count=248)) == 248


def test_a_clone_allocates_without_touching_the_original(tmp_path):
    scenario = load(tmp_path, deployment(), service("web", 30080))
    plan = plan_cluster(scenario)
    before = copy.deepcopy(vars(plan.allocator))
    trial = plan.allocator.clone()
    assert trial.plan is plan.allocator.plan
    trial.plan_pods(scenario.workloads[-1], count=5)
    trial.release_service(plan.services[-1])
    assert vars(plan.allocator).keys() == before.keys()
    assert all(getattr(plan.allocator, k) == v for k, v in before.items() if k != "plan")


# ---- apply: planned whole, checked on a copy ---------------------------------------------------

def live(tmp_path):
    scenario = load(tmp_path, deployment(), service("web", 30080), name="live.yaml")
    objects = ClusterObjects(scenario, plan_cluster(scenario))
    return types.SimpleNamespace(objects=objects, scenario=objects.scenario, plan=objects.plan)


def test_a_colliding_apply_is_refused_by_the_check_and_changes_nothing(tmp_path):
    sup = live(tmp_path)
    before = copy.deepcopy((sup.scenario, sup.plan.services, sup.plan.pods, vars(sup.plan.allocator)))
    new = load(tmp_path, service("first", 30081), service("second", 30081))
    steps, report = changes.plan_apply(sup, new, "new.yaml")
    assert report == ["service/first created", "service/second created"]
    with pytest.raises(InputError, match='Service "second": spec.ports.0..nodePort: 30081: '
                                         "provided port is already allocated"):
        changes._check(sup, steps)
    assert copy.deepcopy((sup.scenario, sup.plan.services, sup.plan.pods,
                          vars(sup.plan.allocator))) == before


def test_a_template_change_is_rolled_out_in_rounds(tmp_path):
    sup = live(tmp_path)
    new = load(tmp_path, deployment().replace("{labels: {app: web}}", "{labels: {app: web, v: '2'}}"))
    steps, report = changes.plan_apply(sup, new, "new.yaml")
    assert report == ["deployment.apps/web configured"]
    assert [s[0] if s[0] != "start" else ("start", s[2]) for s in steps] == [
        "workload", ("start", 1), "stop", ("start", 1), "stop", ("start", 1), "stop", "resync"]
    old = [p for p in sup.plan.pods if p.owner_name == "web"]
    assert [p for s in steps if s[0] == "stop" for p in s[1]] == old[::-1]
    changes._check(sup, steps)  # fits


def test_a_changed_cluster_ip_is_immutable(tmp_path):
    sup = live(tmp_path)
    new = load(tmp_path, service("web", 30080).replace("spec:", "spec:\n  clusterIP: 10.96.0.77"))
    with pytest.raises(InputError, match=r'spec.clusterIP: "10.96.0.77": field is immutable'):
        changes.plan_apply(sup, new, "new.yaml")


def test_only_replicas_or_strategy_changed_keeps_the_pods(tmp_path):
    sup = live(tmp_path)
    new = load(tmp_path, deployment("strategy: {type: Recreate}").replace("replicas: 3", "replicas: 2"))
    steps, report = changes.plan_apply(sup, new, "new.yaml")
    assert report == ["deployment.apps/web scaled"]
    assert [s[0] for s in steps] == ["workload", "stop", "resync"] and len(steps[1][1]) == 1


def test_a_template_for_no_node_is_refused_with_its_place(tmp_path):
    sup = live(tmp_path)
    web = sup.scenario.workloads[-1]
    pinned = dataclasses.replace(web, template=dataclasses.replace(web.template, node_name="node-9"))
    with pytest.raises(InputError) as e:
        sup.plan.allocator.plan_pods(pinned, count=1)
    assert str(e.value) == (f"{tmp_path}/live.yaml:2: Deployment \"web\": "
                            "spec.template.spec.nodeName: no node matches its nodeName node-9")


def test_apply_checks_node_references_against_the_live_cluster(tmp_path):
    two = load(tmp_path, "apiVersion: minikp.dev/v1alpha1\nkind: Cluster\nspec: {nodes: 2}\n",
               name="live.yaml").cluster
    pinned = deployment().replace("    spec:\n      containers", "    spec:\n      nodeName: node-2\n      containers")
    with pytest.raises(InputError, match='"node-2": no such node; nodes: node-1'):
        load(tmp_path, pinned)  # on its own, a file describes a one-node cluster
    [w] = load_scenario([str(tmp_path / "s.yaml")], cluster=two).workloads
    assert w.template.node_name == "node-2"
