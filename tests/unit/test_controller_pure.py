"""Endpoints from pods, per-node snapshots, Kubernetes-shaped objects and kubectl tables."""

import datetime as dt

from minikp.controller.endpoints import PodState, compute_endpoints
from minikp.controller.objects import endpoints_object, pod_object, service_object
from minikp.controller.snapshots import build_snapshot
from minikp import tables
from minikp.scenario.model import (ClusterConfig, ClusterPlan, Container, ContainerPort,
                                   NodePlan, PodPlan, PodTemplate, Service, ServicePlan,
                                   ServicePort)


def pod(name, ip, node, labels, port_name="http", port=9376, hostname="", subdomain=""):
    t = PodTemplate(labels=labels, containers=[Container("c", "img", [ContainerPort(port, "TCP", port_name)])],
                    hostname=hostname, subdomain=subdomain)
    return PodPlan("default", name, node, ip, "Deployment", "web", t)


NODES = [NodePlan("node-1", "172.18.0.2", "10.244.1.0/24", "10.244.1.1"),
         NodePlan("node-2", "172.18.0.3", "10.244.2.0/24", "10.244.2.1")]
PODS = [pod("web-a", "10.244.1.10", "node-1", {"app": "web"}),
        pod("web-b", "10.244.1.9", "node-1", {"app": "web"}),
        pod("web-c", "10.244.2.2", "node-2", {"app": "web"}, port_name="other"),
        pod("db", "10.244.2.3", "node-2", {"app": "db"})]


def svc(**kw):
    s = Service("default", "web", selector={"app": "web"},
                ports=[ServicePort(80, "TCP", "http", "http"), ServicePort(81, "TCP", "raw", 9376)])
    for k, v in kw.items():
        setattr(s, k, v)
    return ServicePlan(s, "10.96.0.50")


def test_named_target_port_skips_pods_without_it_and_sorts_by_string():
    eps = compute_endpoints([svc()], PODS, {f"default/{p.name}": PodState(ready=True) for p in PODS})
    e = eps["default/web"]
    assert [str(x) for x in e.ports["http"]] == ["10.244.1.10:9376", "10.244.1.9:9376"]
    assert [str(x) for x in e.ports["raw"]] == ["10.244.1.10:9376", "10.244.1.9:9376", "10.244.2.2:9376"]
    assert {a.pod for a in e.addresses} == {"web-a", "web-b", "web-c"}


def test_not_ready_and_dead_pods():
    states = {"default/web-a": PodState(ready=False), "default/web-b": PodState(running=False),
              "default/web-c": PodState(ready=True, terminating=True)}
    e = compute_endpoints([svc()], PODS, states)["default/web"]
    by_ip = {a.ip: a for a in e.addresses}
    assert "10.244.1.9" not in by_ip  # dead pods leave
    assert not by_ip["10.244.1.10"].ready and not by_ip["10.244.1.10"].serving
    assert by_ip["10.244.2.2"].terminating and by_ip["10.244.2.2"].serving and not by_ip["10.244.2.2"].ready


def test_snapshot_carries_policies_and_ports():
    sp = svc(type="LoadBalancer", external_traffic_policy="Local", session_affinity="ClientIP",
             session_affinity_timeout=60, load_balancer_source_ranges=["203.0.113.0/25"])
    sp.node_ports = {0: 30080}
    sp.load_balancer_ip = "172.18.255.200"
    sp.health_check_node_port = 31000
    plan = ClusterPlan(ClusterConfig(), NODES, PODS, [sp], [])
    eps = compute_endpoints([sp], PODS, {f"default/{p.name}": PodState(ready=True) for p in PODS})
    snap = build_snapshot(plan, NODES[1], eps)
    assert snap.node_ip == "172.18.0.3" and snap.cluster_cidr == "10.244.0.0/16"
    http = next(s for s in snap.services if s.port_name == "http")
    assert (http.node_port, http.load_balancer_ips, http.affinity_timeout) == (30080, ("172.18.255.200",), 60)
    assert http.external_policy_local and http.health_check_node_port == 31000
    assert http.load_balancer_source_ranges == ("203.0.113.0/25",)
    assert http.port_name_string == "default/web:http"


def test_headless_and_external_name_are_not_in_snapshots():
    headless = svc(cluster_ip="None")
    headless.cluster_ip = "None"
    ext = ServicePlan(Service("default", "ext", type="ExternalName", external_name="db.example.test"), "")
    plan = ClusterPlan(ClusterConfig(), NODES, PODS, [headless, ext], [])
    assert build_snapshot(plan, NODES[0], {}).services == ()


def test_objects_and_tables_look_like_kubectl():
    sp = svc(type="NodePort")
    sp.node_ports = {0: 30080, 1: 30081}
    created = "2026-01-01T00:00:00Z"
    obj = service_object(sp, created)
    assert obj["spec"]["clusterIP"] == "10.96.0.50"
    assert obj["spec"]["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": "http",
                                       "name": "http", "nodePort": 30080}
    assert tables.ports_text(obj) == "80:30080/TCP,81:30081/TCP"
    assert tables.external_ip_text(obj) == "<none>"
    eps = compute_endpoints([sp], PODS, {f"default/{p.name}": PodState(ready=True) for p in PODS})
    ep = endpoints_object(sp, eps["default/web"], created)
    assert tables.endpoints_text(ep) == "10.244.1.10:9376,10.244.1.9:9376,10.244.1.10:9376 + 2 more..."
    p = pod_object(PODS[0], PodState(ready=True), "172.18.0.2", created)
    assert p["status"]["podIP"] == "10.244.1.10" and p["status"]["phase"] == "Running"
    table = tables.pods_table([p], wide=True)
    assert table.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP",
                                             "NODE", "NOMINATED", "NODE", "READINESS", "GATES"]
    assert table.splitlines()[1].split()[:3] == ["web-a", "1/1", "Running"]


def test_lb_pending_and_age_format():
    sp = svc(type="LoadBalancer")
    assert tables.external_ip_text(service_object(sp, "")) == "<pending>"
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    fmt = lambda s: tables.age("2026-01-01T00:00:00Z", start + dt.timedelta(seconds=s))  # noqa: E731
    assert [fmt(5), fmt(130), fmt(900), fmt(3 * 3600 + 60), fmt(3 * 86400)] == ["5s", "2m10s", "15m", "3h1m", "3d"]


def test_readiness_probe_thresholds():
    from minikp.controller.probes import ProbeTracker
    from minikp.scenario.model import Probe
    t = ProbeTracker(Probe(tcp_socket=80, initial_delay_seconds=5, period_seconds=2,
                           success_threshold=2, failure_threshold=3), started_at=100.0)
    assert not t.due(104.9) and t.due(105.0)
    assert t.record(True, 105) is False and not t.ready  # one success of two
    assert t.next_at == 107
    assert t.record(True, 107) is True and t.ready
    assert [t.record(False, n) for n in (109, 111)] == [False, False] and t.ready
    assert t.record(True, 113) is False and t.ready  # a success resets the failure count
    assert [t.record(False, n) for n in (115, 117, 119)] == [False, False, True] and not t.ready


def test_endpoint_changes_say_which_service_and_how_many_are_ready():
    from minikp.controller.endpoints import Address, ServiceEndpoints, describe_changes
    three = ServiceEndpoints([Address(f"10.244.1.{i}") for i in (2, 3, 4)])
    two = ServiceEndpoints([Address("10.244.1.2"), Address("10.244.1.3"),
                            Address("10.244.1.4", ready=False, terminating=True)])
    dns = ServiceEndpoints([Address("10.244.1.9")])
    assert describe_changes({"default/web": three, "kube-system/kube-dns": dns},
                            {"default/web": two, "kube-system/kube-dns": dns}) == \
        "default/web: 2 ready (of 3)"
    assert describe_changes({}, {"default/web": three}) == "default/web: 3 ready"
    assert describe_changes({"default/web": three}, {}) == "default/web: 0 ready"
