"""Cluster DNS records from a small hand-made plan: every record type, and resolv.conf text."""

from minikp.controller.endpoints import Address, ServiceEndpoints
from minikp.dns.records import build_records, host_resolv_conf, resolv_conf
from minikp.proxy.snapshot import Endpoint
from minikp.scenario.model import (ClientPlan, ClusterConfig, ClusterPlan, PodPlan, PodTemplate,
                                   Service, ServicePlan, ServicePort)

D = "cluster.local"


def pod(ns, name, ip, hostname="", subdomain=""):
    return PodPlan(ns, name, "node-1", ip, "Pod", name,
                   PodTemplate(hostname=hostname, subdomain=subdomain))


def sample(domain=D, publish_not_ready=False):
    """web (ClusterIP, named port), db (headless, two ready + one not ready), ext
    (ExternalName to a client hostname), out (ExternalName to an outside name)."""
    services = [
        ServicePlan(Service("default", "web", ports=[ServicePort(80, name="http"),
                                                      ServicePort(53, "UDP")]), "10.96.0.20"),
        ServicePlan(Service("prod", "db", cluster_ip="None",
                            publish_not_ready_addresses=publish_not_ready,
                            ports=[ServicePort(5432, name="pg", target_port=5433)]), "None"),
        ServicePlan(Service("default", "ext", type="ExternalName",
                            external_name="db.example.test."), ""),
        ServicePlan(Service("default", "out", type="ExternalName",
                            external_name="www.example.org"), ""),
    ]
    pods = [pod("default", "web-1", "10.244.1.5"),
            pod("prod", "db-0", "10.244.1.6", "db-0", "db"),
            pod("prod", "db-1", "10.244.2.7"),
            pod("prod", "db-2", "10.244.2.8")]
    endpoints = {
        "default/web": ServiceEndpoints([Address("10.244.1.5", pod="web-1")],
                                        {"http": [Endpoint("10.244.1.5", 80)], "": []}),
        "prod/db": ServiceEndpoints(
            [Address("10.244.1.6", pod="db-0", hostname="db-0"),
             Address("10.244.2.7", pod="db-1"),
             Address("10.244.2.8", pod="db-2", ready=False, serving=False)],
            {"pg": [Endpoint("10.244.1.6", 5433), Endpoint("10.244.2.7", 5433),
                    Endpoint("10.244.2.8", 5433, ready=False, serving=False)]}),
    }
    clients = [ClientPlan("client-1", "172.18.0.100", ["db.example.test"])]
    plan = ClusterPlan(ClusterConfig(cluster_domain=domain), [], pods, services, clients,
                       dns_ip="10.96.0.10")
    return plan, endpoints


def test_cluster_ip_service_a_and_ptr():
    r = build_records(*sample())
    assert r.addresses("web.default.svc.cluster.local") == ["10.96.0.20"]
    assert r.hosts["10.96.0.20"][0] == "web.default.svc.cluster.local"  # the PTR name


def test_headless_publishes_ready_endpoints_and_hostnames():
    r = build_records(*sample())
    assert r.addresses("db.prod.svc.cluster.local") == ["10.244.1.6", "10.244.2.7"]
    assert r.addresses("db-0.db.prod.svc.cluster.local") == ["10.244.1.6"]
    # an endpoint without hostname is named by its dashed IP (the SRV target CoreDNS uses)
    assert r.addresses("10-244-2-7.db.prod.svc.cluster.local") == ["10.244.2.7"]
    assert r.addresses("10-244-2-8.db.prod.svc.cluster.local") == []
    assert r.hosts["10.244.1.6"][0] == "db-0.db.prod.svc.cluster.local"


def test_headless_publish_not_ready_addresses():
    r = build_records(*sample(publish_not_ready=True))
    assert r.addresses("db.prod.svc.cluster.local") == ["10.244.1.6", "10.244.2.7", "10.244.2.8"]


def test_external_name_is_a_cname():
    r = build_records(*sample())
    assert r.cnames == {"ext.default.svc.cluster.local": "db.example.test",
                        "out.default.svc.cluster.local": "www.example.org"}
    assert r.addresses("ext.default.svc.cluster.local") == []
    assert "cname=ext.default.svc.cluster.local,db.example.test" in r.config_lines()


def test_srv_for_named_ports_and_for_the_service_name():
    r = build_records(*sample())
    web = sorted((s.name, s.target, s.port, s.weight) for s in r.srvs
                 if s.name.endswith("web.default.svc.cluster.local"))
    fqdn = "web.default.svc.cluster.local"
    assert web == [("_http._tcp." + fqdn, fqdn, 80, 100),
                   # a SRV query for the bare name matches every port, named or not
                   (fqdn, fqdn, 53, 50), (fqdn, fqdn, 80, 50)]
    db = sorted((s.target, s.port, s.weight) for s in r.srvs
                if s.name == "_pg._tcp.db.prod.svc.cluster.local")
    assert db == [("10-244-2-7.db.prod.svc.cluster.local", 5433, 50),
                  ("db-0.db.prod.svc.cluster.local", 5433, 50)]
    assert ("srv-host=_http._tcp.web.default.svc.cluster.local,"
            "web.default.svc.cluster.local,80,0,100") in r.config_lines()


def test_srv_weight_is_floor_100_over_answers():
    plan, eps = sample(publish_not_ready=True)
    r = build_records(plan, eps)
    assert sorted(s.weight for s in r.srvs if s.name == "_pg._tcp.db.prod.svc.cluster.local") \
        == [33, 33, 33]


def test_endpoint_names_and_ptr_for_every_service():
    r = build_records(*sample())
    # CoreDNS answers <ep>.<svc> for ClusterIP services too, and PTR of endpoint IPs with it
    assert r.addresses("10-244-1-5.web.default.svc.cluster.local") == ["10.244.1.5"]
    assert r.ptr("10.244.1.5") == "10-244-1-5.web.default.svc.cluster.local"
    assert r.ptr("10.244.2.7") == "10-244-2-7.db.prod.svc.cluster.local"
    assert r.ptr("10.96.0.20") == "web.default.svc.cluster.local"


def test_pod_a_records():
    r = build_records(*sample())
    assert r.addresses("10-244-1-5.default.pod.cluster.local") == ["10.244.1.5"]
    assert r.addresses("10-244-2-8.prod.pod.cluster.local") == ["10.244.2.8"]
    assert r.addresses("10-244-2-8.default.pod.cluster.local") == []  # wrong namespace
    # a pod that backs no published endpoint: its pod name is the only name dnsmasq can use
    assert r.hosts["10.244.2.8"] == ["10-244-2-8.prod.pod.cluster.local"]


def test_external_name_that_is_an_ip_gets_no_record():
    plan, eps = sample()
    plan.services.append(ServicePlan(Service("default", "raw", type="ExternalName",
                                             external_name="192.0.2.1"), ""))
    r = build_records(plan, eps)
    assert "raw.default.svc.cluster.local" not in r.cnames
    assert r.addresses("raw.default.svc.cluster.local") == []


def test_clients_by_name_and_hostnames():
    r = build_records(*sample())
    assert r.addresses("db.example.test") == ["172.18.0.100"]
    assert r.addresses("client-1") == ["172.18.0.100"]
    assert r.ptr("172.18.0.100") == "db.example.test"


def test_other_cluster_domain():
    r = build_records(*sample(domain="corp.internal."))
    assert r.domain == "corp.internal"
    assert r.addresses("web.default.svc.corp.internal") == ["10.96.0.20"]
    assert r.addresses("web.default.svc.cluster.local") == []


def test_hosts_text_lists_ptr_name_first_per_address():
    text = build_records(*sample()).hosts_text()
    lines = text.splitlines()
    firsts = {}
    for line in lines:
        ip, name = line.split()
        firsts.setdefault(ip, name)
    assert firsts["10.96.0.20"] == "web.default.svc.cluster.local"
    assert firsts["10.244.1.6"] == "db-0.db.prod.svc.cluster.local"


def test_service_removal_removes_records():
    plan, eps = sample()
    plan.services = [s for s in plan.services if s.service.name != "web"]
    r = build_records(plan, eps)
    assert r.addresses("web.default.svc.cluster.local") == []
    assert not [s for s in r.srvs if "web" in s.name]


def test_pod_resolv_conf_exactly_as_kubelet():
    assert resolv_conf("prod", "10.96.0.10", "cluster.local") == (
        "search prod.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.96.0.10\noptions ndots:5\n")


def test_host_resolv_conf():
    assert host_resolv_conf("10.96.0.10", "cluster.local") == (
        "search cluster.local\nnameserver 10.96.0.10\n")


def test_external_name_loops_are_left_out():
    plan, eps = sample()
    plan.services += [
        ServicePlan(Service("default", "a", type="ExternalName",
                            external_name="b.default.svc.cluster.local"), ""),
        ServicePlan(Service("default", "b", type="ExternalName",
                            external_name="a.default.svc.cluster.local"), ""),
        ServicePlan(Service("default", "c", type="ExternalName",
                            external_name="a.default.svc.cluster.local"), ""),
        ServicePlan(Service("default", "d", type="ExternalName",
                            external_name="ext.default.svc.cluster.local"), ""),
    ]
    r = build_records(plan, eps)
    assert set(r.cnames) == {"ext.default.svc.cluster.local", "out.default.svc.cluster.local",
                             "d.default.svc.cluster.local"}  # a chain without a loop stays
    assert len(r.skipped) == 3 and "CNAME loop" in r.skipped[0]
