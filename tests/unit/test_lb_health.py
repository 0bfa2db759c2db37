"""kube-proxy's service health server answers (proxy/healthcheck.py) and the LoadBalancer
stub's routing by them (controller/loadbalancers.py). Pure."""

import json

from minikp.controller.loadbalancers import LoadBalancerChecks, targets, wanted_routes
from minikp.proxy.healthcheck import response, served
from minikp.proxy.snapshot import Endpoint, ProxySnapshot, ServicePortInfo
from minikp.scenario.model import NodePlan, Service, ServicePlan, ServicePort

NODES = [NodePlan("node-1", "172.18.0.2", "10.244.1.0/24", "10.244.1.1"),
         NodePlan("node-2", "172.18.0.3", "10.244.2.0/24", "10.244.2.1")]


def lb(name, policy, ip, hc):
    svc = Service("default", name, "LoadBalancer", {"app": name}, [ServicePort(80)],
                  external_traffic_policy=policy)
    return ServicePlan(svc, "10.96.0.20", {0: 30080}, ip, hc)


def test_the_answer_is_kube_proxys_with_200_only_with_local_endpoints():
    head, _, text = response("default/web", 2).decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 200 OK\r\n")
    assert "Content-Type: application/json" in head and "X-Content-Type-Options: nosniff" in head
    assert json.loads(text) == {"service": {"namespace": "default", "name": "web"},
                                "localEndpoints": 2, "serviceProxyHealthy": True}
    assert text.startswith('{\n\t"service": {\n\t\t"namespace": "default",')  # Go's layout
    head, _, text = response("shop/cart", 0).decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 503 Service Unavailable\r\n")
    assert json.loads(text)["localEndpoints"] == 0


def test_a_snapshot_serves_its_health_ports_and_ready_ips_on_the_node_once():
    web = [Endpoint("10.244.1.5", 80, "node-1", True, True, False),
           Endpoint("10.244.1.6", 80, "node-1", False, True, True),  # terminating
           Endpoint("10.244.2.5", 80, "node-2", True, True, False)]
    ports = (ServicePortInfo("default", "web", "http", "TCP", "10.96.0.20", 80,
                             health_check_node_port=31000, endpoints=tuple(web)),
             ServicePortInfo("default", "web", "https", "TCP", "10.96.0.20", 443,
                             health_check_node_port=31000,
                             endpoints=(Endpoint("10.244.1.5", 443, "node-1", True, True, False),)),
             ServicePortInfo("default", "db", "", "TCP", "10.96.0.21", 5432,
                             endpoints=(Endpoint("10.244.1.7", 5432, "node-1", True, True, False),)))
    snap = lambda node: ProxySnapshot(node, "172.18.0.2", "10.244.0.0/16", ports)  # noqa: E731
    assert served(snap("node-1")) == ({"default/web": 31000}, {"default/web": 1, "default/db": 1})
    assert served(snap("node-3")) == ({"default/web": 31000}, {})


def test_only_etp_local_load_balancers_are_checked_and_routed_by_health():
    local, cluster = lb("a", "Local", "172.18.255.200", 31000), lb("b", "Cluster", "172.18.255.201", 0)
    assert targets([local, cluster], NODES) == [("172.18.255.200", "node-1", "172.18.0.2", 31000),
                                               ("172.18.255.200", "node-2", "172.18.0.3", 31000)]
    healthy = {("172.18.255.200", "node-1"): False, ("172.18.255.200", "node-2"): True}
    assert wanted_routes([local, cluster], NODES, healthy) == {
        "172.18.255.200": ["node-2"], "172.18.255.201": ["node-1", "node-2"]}
    assert wanted_routes([local], NODES, {}) == {"172.18.255.200": []}  # not yet known healthy


def test_checks_come_every_interval_and_say_when_health_changed():
    c = LoadBalancerChecks(1.0)
    t = [("172.18.255.200", "node-1", "172.18.0.2", 31000)]
    assert c.due(0.0) and c.unchecked(t) == t
    assert c.record({("172.18.255.200", "node-1"): True}, now=10.0)
    assert not c.due(10.5) and c.due(11.0) and c.unchecked(t) == []
    assert not c.record({("172.18.255.200", "node-1"): True}, now=11.0)  # unchanged
    assert c.record({("172.18.255.200", "node-1"): False}, now=12.0)
    c.record({}, now=13.0)  # the Service went: its results go too
    assert c.healthy == {}
