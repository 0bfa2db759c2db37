"""kubectl's everyday verbs in kubectl's shapes (issue 12 item 5), pure: the Deployment,
ReplicaSet and Namespace objects, the `get deploy|rs|ns|all` tables (and -o wide), and the
`describe` layouts with their Events table, aligned as kubectl's tabwriter aligns them."""

import dataclasses
import datetime as dt

from minikp import tables
from minikp.controller.endpoints import PodState
from minikp.controller.objects import (deployment_object, endpoints_object, namespace_object,
                                       pod_object, replicaset_objects, service_object)
from minikp.describe import describe, events_section, tabwrite
from minikp.scenario.model import (Container, ContainerPort, PodPlan, PodTemplate, Service,
                                   ServicePlan, ServicePort, Workload)
from minikp.scenario.plan import pod_template_hash

CREATED = "2026-12-02T18:00:00Z"
NOW = dt.datetime(2026, 12, 2, 18, 10, 0, tzinfo=dt.timezone.utc)
T0 = NOW.timestamp()


def web(image="nginx", replicas=3):
    t = PodTemplate(labels={"app": "web"},
                    containers=[Container("web", image, [ContainerPort(80, "TCP", "http")])])
    return Workload("Deployment", "default", "web", t, replicas, {"app": "web"})


def pods_of(w, n, node="node-1", first_ip=10):
    h = pod_template_hash(w.template)
    return [PodPlan("default", f"web-{h}-{i}", node, f"10.244.1.{first_ip + i}", "Deployment",
                    "web", w.template, f"web-{h}", h) for i in range(n)]


def test_a_deployment_mid_rollout_counts_its_pods_per_template():
    old, new = web("nginx:1"), web("nginx:2")
    pods = pods_of(old, 2) + pods_of(new, 2, first_ip=20)
    states = {f"default/{p.name}": PodState(ready=True) for p in pods}
    states[f"default/{pods[3].name}"] = PodState(ready=False)
    d = deployment_object(new, pods, states, CREATED)
    assert d["status"] | {"conditions": None} == {
        "replicas": 4, "readyReplicas": 3, "availableReplicas": 3, "updatedReplicas": 2,
        "unavailableReplicas": 0, "conditions": None}
    assert d["status"]["conditions"][1] == {"type": "Progressing", "status": "True",
                                            "reason": "ReplicaSetUpdated"}
    rs = replicaset_objects(new, pods, states, CREATED)
    h_new, h_old = pod_template_hash(new.template), pod_template_hash(old.template)
    # the current template's set first, desired = the Deployment's replicas; the old one
    # keeps its pods (desired: as many as it still has)
    assert [(r["metadata"]["name"], r["spec"]["replicas"], r["status"]["replicas"],
             r["status"]["readyReplicas"]) for r in rs] == [
        (f"web-{h_new}", 3, 2, 1), (f"web-{h_old}", 2, 2, 2)]
    assert rs[1]["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1"
    assert rs[0]["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": h_new}
    assert rs[0]["metadata"]["ownerReferences"][0]["kind"] == "Deployment"


def test_get_deploy_rs_ns_columns_and_wide():
    w = web()
    pods = pods_of(w, 3)
    states = {f"default/{p.name}": PodState(ready=i < 2) for i, p in enumerate(pods)}
    d = deployment_object(w, pods, states, CREATED)
    assert tables.deployments_table([d]).splitlines() == [
        "NAME   READY   UP-TO-DATE   AVAILABLE   AGE",
        f"web    2/3     3            2           {tables.age(CREATED)}"]
    wide = tables.deployments_table([d], wide=True, all_ns=True).splitlines()
    assert wide[0].split() == ["NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE",
                               "CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["web", "nginx", "app=web"]
    [rs] = replicaset_objects(w, pods, states, CREATED)
    assert tables.replicasets_table([rs]).splitlines()[0].split() == [
        "NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert tables.replicasets_table([rs]).splitlines()[1].split()[:4] == [
        f"web-{pod_template_hash(w.template)}", "3", "3", "2"]
    # kubectl prints a selector's labels sorted by key
    assert tables.replicasets_table([rs], wide=True).splitlines()[1].split()[-1] == \
        f"app=web,pod-template-hash={pod_template_hash(w.template)}"
    assert tables.namespaces_table([namespace_object("default", CREATED),
                                    namespace_object("kube-system", CREATED)]).splitlines() == [
        "NAME          STATUS   AGE", f"default       Active   {tables.age(CREATED)}",
        f"kube-system   Active   {tables.age(CREATED)}"]


def test_get_all_is_one_table_per_kind_with_resource_prefixes():
    w = web(replicas=1)
    pods = pods_of(w, 1)
    states = {f"default/{pods[0].name}": PodState(ready=True)}
    by_kind = {"pods": [pod_object(pods[0], states[f"default/{pods[0].name}"], "172.18.0.2", CREATED)],
               "services": [],
               "deployments": [deployment_object(w, pods, states, CREATED)],
               "replicasets": replicaset_objects(w, pods, states, CREATED)}
    blocks = tables.all_tables(by_kind).split("\n\n")
    assert [b.splitlines()[1].split()[0] for b in blocks] == [
        f"pod/{pods[0].name}", "deployment.apps/web", f"replicaset.apps/{pods[0].replica_set}"]
    assert blocks[0].splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]


def test_tabwrite_aligns_each_run_of_lines_that_share_a_column():
    text = "Name:\tweb\nNamespace:\tdefault\nIPs:\n  IP:\t10.0.0.1\nControlled By:\tReplicaSet/x"
    assert tabwrite(text).splitlines() == [
        "Name:       web", "Namespace:  default", "IPs:", "  IP:           10.0.0.1",
        "Controlled By:  ReplicaSet/x"]


def ev(seq, kind, message, dt_s, **fields):
    return {"seq": seq, "time": T0 - dt_s, "type": kind, "message": message, **fields}


def test_events_table_merges_repeats_and_marks_warnings():
    events = [ev(1, "PodCreated", "pod default/a on node-1", 300, pod="default/a"),
              ev(2, "PodNotReady", "pod default/a is running, not ready", 200, pod="default/a"),
              ev(3, "PodNotReady", "pod default/a is running, not ready", 30, pod="default/a")]
    assert tabwrite("\n".join(events_section(events, NOW))).splitlines() == [
        "Events:",
        "  Type     Reason       Age                  From               Message",
        "  ----     ------       ----                 ----               -------",
        "  Normal   Scheduled    5m                   default-scheduler  pod default/a on node-1",
        "  Warning  PodNotReady  30s (x2 over 3m20s)  kubelet            "
        "pod default/a is running, not ready"]
    assert events_section([], NOW) == ["Events:\t<none>"]


def hostnames_service():
    s = Service("default", "hostnames", selector={"app": "hostnames"},
                ports=[ServicePort(80, "TCP", "http", 9376)])
    return service_object(ServicePlan(s, "10.96.29.98"), CREATED)


def test_describe_svc_reads_like_kubectls():
    svc = hostnames_service()
    ep = {"metadata": {"name": "hostnames", "namespace": "default"},
          "subsets": [{"addresses": [{"ip": f"10.244.1.{i}"} for i in (2, 3, 4, 5)],
                       "ports": [{"name": "http", "port": 9376, "protocol": "TCP"}]}]}
    events = [ev(7, "EndpointsChanged", "endpoints default/hostnames: 4 ready (scale)", 65,
                 services=["default/hostnames"]),
              ev(8, "EndpointsChanged", "endpoints default/other: 1 ready", 60, services=["default/other"])]
    out = describe("services", svc, {"endpoints": [ep]}, events, NOW)
    assert out.splitlines() == [
        "Name:                     hostnames",
        "Namespace:                default",
        "Labels:                   <none>",
        "Annotations:              <none>",
        "Selector:                 app=hostnames",
        "Type:                     ClusterIP",
        "IP Family Policy:         SingleStack",
        "IP Families:              IPv4",
        "IP:                       10.96.29.98",
        "IPs:                      10.96.29.98",
        "Port:                     http  80/TCP",
        "TargetPort:               9376/TCP",
        "Endpoints:                10.244.1.2:9376,10.244.1.3:9376,10.244.1.4:9376 + 1 more...",
        "Session Affinity:         None",
        "Internal Traffic Policy:  Cluster",
        "Events:",
        "  Type    Reason            Age   From                      Message",
        "  ----    ------            ----  ----                      -------",
        "  Normal  EndpointsChanged  65s   endpointslice-controller  "
        "endpoints default/hostnames: 4 ready (scale)",
    ]
    # no events: "<none>" aligned with the fields above it
    assert describe("services", svc, {"endpoints": []}, [], NOW).splitlines()[-4:] == [
        "Endpoints:                <none>", "Session Affinity:         None",
        "Internal Traffic Policy:  Cluster", "Events:                   <none>"]


def test_describe_deploy_reads_like_kubectls():
    w = web()
    pods = pods_of(w, 3)
    states = {f"default/{p.name}": PodState(ready=True) for p in pods}
    st = {"replicasets": replicaset_objects(w, pods, states, CREATED)}
    rs = pods[0].replica_set
    events = [ev(3, "ScalingReplicaSet", f"Scaled up replica set {rs} to 3", 600,
                 deployment="default/web")]
    out = describe("deployments", deployment_object(w, pods, states, CREATED), st, events, NOW)
    assert out.splitlines() == [
        "Name:                   web",
        "Namespace:              default",
        "CreationTimestamp:      Wed, 02 Dec 2026 18:00:00 +0000",
        "Labels:                 <none>",
        "Annotations:            deployment.kubernetes.io/revision: 1",
        "Selector:               app=web",
        "Replicas:               3 desired | 3 updated | 3 total | 3 available | 0 unavailable",
        "StrategyType:           RollingUpdate",
        "MinReadySeconds:        0",
        "RollingUpdateStrategy:  25% max unavailable, 25% max surge",
        "Pod Template:",
        "  Labels:  app=web",
        "  Containers:",
        "   web:",
        "    Image:         nginx",
        "    Port:          80/TCP",
        "    Host Port:     0/TCP",
        "    Environment:   <none>",
        "    Mounts:        <none>",
        "  Volumes:         <none>",
        "  Node-Selectors:  <none>",
        "  Tolerations:     <none>",
        "Conditions:",
        "  Type           Status  Reason",
        "  ----           ------  ------",
        "  Available      True    MinimumReplicasAvailable",
        "  Progressing    True    NewReplicaSetAvailable",
        "OldReplicaSets:  <none>",
        f"NewReplicaSet:   {rs} (3/3 replicas created)",
        "Events:",
        "  Type    Reason             Age   From                   Message",
        "  ----    ------             ----  ----                   -------",
        f"  Normal  ScalingReplicaSet  10m   deployment-controller  Scaled up replica set {rs} to 3",
    ]


def test_describe_pod_lists_its_containers_conditions_and_only_its_events():
    w = web()
    p = pods_of(w, 2)
    obj = pod_object(p[0], PodState(ready=True), "172.18.0.2", CREATED)
    events = [ev(1, "PodCreated", f"pod default/{p[0].name} on node-1", 61, pod=f"default/{p[0].name}"),
              ev(2, "PodCreated", f"pod default/{p[1].name} on node-1", 61, pod=f"default/{p[1].name}")]
    lines = describe("pods", obj, {}, events, NOW).splitlines()
    assert lines[:6] == [f"Name:             {p[0].name}", "Namespace:        default",
                         "Priority:         0", "Service Account:  default",
                         "Node:             node-1/172.18.0.2",
                         "Start Time:       Wed, 02 Dec 2026 18:00:00 +0000"]
    assert f"Controlled By:  ReplicaSet/{p[0].replica_set}" in lines
    assert "    Port:           80/TCP" in lines and "    Ready:          True" in lines
    assert lines[lines.index("Conditions:") + 1].split() == ["Type", "Status"]
    assert sum(1 for line in lines if "Scheduled" in line) == 1
    assert lines[-1].split()[:3] == ["Normal", "Scheduled", "61s"]


def test_describe_node_lists_its_pods_and_its_proxys_events():
    from minikp.controller.objects import node_object
    from minikp.scenario.model import NodePlan

    n = node_object(NodePlan("node-1", "172.18.0.2", "10.244.1.0/24", "10.244.1.1"), CREATED)
    w = web()
    pods = [pod_object(p, PodState(ready=True), "172.18.0.2", CREATED) for p in pods_of(w, 2)]
    pods += [pod_object(dataclasses.replace(pods_of(w, 1)[0], name="elsewhere", node="node-2"),
                        PodState(ready=True), "172.18.0.3", CREATED)]
    events = [ev(5, "ProxySynced", "proxy node-1: full sync in 5.0 ms (initial)", 120, node="node-1"),
              ev(6, "ProxySynced", "proxy node-2: full sync in 5.0 ms (initial)", 120, node="node-2"),
              ev(7, "RulesFlushed", "proxy rules flushed on node-1: full resync", 10, nodes=["node-1"]),
              ev(1, "UpStarted", "building 2 nodes", 130, nodes=2)]
    lines = describe("nodes", n, {"pods": pods}, events, NOW).splitlines()
    assert lines[0] == "Name:               node-1"
    assert any(line.startswith("Non-terminated Pods:") and line.endswith("(2 in total)") for line in lines)
    assert not any("elsewhere" in line for line in lines)
    assert [line.split()[:2] for line in lines[-2:]] == [["Normal", "ProxySynced"],
                                                          ["Warning", "RulesFlushed"]]
