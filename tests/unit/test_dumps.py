"""A real cluster's dump (kubectl get nodes,pods,svc,endpointslices -A -o yaml|json) as a
scenario, and kube-proxy's sloppy IP parsing (no root)."""

import json
import os
import textwrap

import pytest
import yaml

from minikp.controller.endpoints import PodState, compute_endpoints
from minikp.errors import InputError
from minikp.scenario import sloppy
from minikp.scenario.load import load_scenario
from minikp.scenario.plan import plan_cluster

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIND_DUMP = os.path.join(ROOT, "scenarios", "kind-dump.yaml")


# ---- sloppy IPs ------------------------------------------------------------------------------


@pytest.mark.parametrize("text,ip", [
    ("010.096.000.001", "10.96.0.1"),  # decimal, never octal
    ("10.96.0.1", "10.96.0.1"),
    ("0000010.0.0.001", "10.0.0.1"),  # any number of leading zeros
    ("255.255.255.255", "255.255.255.255"),
    ("fd00::0001", "fd00::1"),
])
def test_sloppy_ip_reads_leading_zeros_as_decimal(text, ip):
    assert sloppy.parse_ip(text) == ip


@pytest.mark.parametrize("text", ["256.0.0.1", "10.96.0", "10.96.0.1.2", "10.96..1", " 10.96.0.1",
                                  "10.96.0.1/32", "0x0a.0.0.1", "１0.0.0.1", "", None])
def test_sloppy_ip_refuses_what_go_1_16_refused(text):
    assert sloppy.parse_ip(text) is None


def test_sloppy_cidr_is_the_network():
    assert sloppy.parse_cidr("010.244.001.000/24") == "10.244.1.0/24"
    assert sloppy.parse_cidr("10.244.1.7/024") == "10.244.1.0/24"
    assert sloppy.parse_cidr("10.244.1.0/33") is None
    assert sloppy.parse_cidr("10.244.1.0") is None


# ---- the kind dump ---------------------------------------------------------------------------


def _plan(path):
    scenario = load_scenario([path])
    return scenario, plan_cluster(scenario)


def _check_kind_plan(scenario, plan):
    assert [(n.name, n.ip, n.pod_cidr) for n in plan.nodes] == [
        ("kind-control-plane", "172.18.0.3", "10.244.0.0/24"),
        ("kind-worker", "172.18.0.2", "10.244.1.0/24"),  # its podCIDR was 0-padded
        ("kind-worker2", "172.18.0.4", "10.244.2.0/24")]
    c = scenario.cluster
    assert (c.node_subnet, c.pod_subnet, c.service_subnet) == ("172.18.0.0/16", "10.244.0.0/16",
                                                                "10.96.0.0/16")
    pods = {p.name: (p.node, p.ip) for p in plan.pods}
    assert pods["hostnames-5d8f7b9c6d-7m4xq"] == ("kind-worker", "10.244.1.2")
    assert pods["coredns-674b8bbfcf-wk5j7"] == ("kind-control-plane", "10.244.0.4")
    assert not any(n.startswith(("kube-proxy-", "etcd-")) for n in pods)  # host network
    assert not any(p.owner_name == "coredns" for p in plan.pods)  # no built-in DNS added
    ips = {sp.service.name: (sp.cluster_ip, sp.node_ports) for sp in plan.services}
    assert ips == {"kubernetes": ("10.96.0.1", {}), "kube-dns": ("10.96.0.10", {}),
                   "hostnames": ("10.96.74.155", {}), "web": ("10.96.208.41", {0: 30080}),
                   "legacy": ("10.96.100.7", {})}  # stored as 010.096.100.007
    assert any("4 pods left out (host network" in w for w in scenario.warnings)


def test_kind_dump_yaml_keeps_its_addresses():
    _check_kind_plan(*_plan(KIND_DUMP))


def test_kind_dump_json_is_read_the_same(tmp_path):
    with open(KIND_DUMP) as f:
        doc = list(yaml.safe_load_all(f))[-1]  # the dump (the lab's checks come first)
    path = tmp_path / "dump.json"
    path.write_text(json.dumps(doc, indent=4))  # as kubectl get -o json prints it
    _check_kind_plan(*_plan(str(path)))


def test_dump_services_take_the_dumps_endpoint_slices():
    scenario, plan = _plan(KIND_DUMP)
    ready = {f"{p.namespace}/{p.name}": PodState(ready=True) for p in plan.pods}
    eps = compute_endpoints(plan.services, plan.pods, ready, plan.endpoint_slices)
    hostnames = eps["default/hostnames"].ports[""]
    # the not-ready endpoint stays not ready although its pod runs here
    assert [(e.ip, e.ready) for e in hostnames] == [
        ("10.244.1.2", True), ("10.244.1.3", True), ("10.244.2.2", True), ("10.244.2.3", False)]
    assert [str(e) for e in eps["default/legacy"].ports["http"]] == [
        "10.244.1.2:9376", "10.244.1.3:9376", "10.244.2.2:9376"]  # a 0-padded address read
    assert [str(e) for e in eps["default/kubernetes"].ports["https"]] == ["172.18.0.3:6443"]


def test_dump_slice_keeps_zone_and_conditions(tmp_path):
    path = _dump(tmp_path, [NODE, SERVICE, dict(SLICE, endpoints=[
        {"addresses": ["10.244.1.9"], "nodeName": "n1", "zone": "eu-west-1a",
         "conditions": {"ready": False, "serving": True, "terminating": True}}])])
    sl = next(s for s in load_scenario([path]).endpoint_slices if s.name == "web-abcde")
    e = sl.endpoints[0]
    assert (e.zone, e.node_name, e.ready, e.serving, e.terminating) == ("eu-west-1a", "n1", False,
                                                                         True, True)


NODE = {"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "n1", "uid": "1", "resourceVersion": "7", "labels": {"zone": "a"}},
        "spec": {"podCIDR": "10.244.1.0/24"},
        "status": {"addresses": [{"type": "InternalIP", "address": "192.168.5.10"}]}}
SERVICE = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "web", "namespace": "default", "uid": "2",
                        "managedFields": [{"manager": "kubectl"}],
                        "ownerReferences": [{"kind": "X", "name": "y", "uid": "3"}],
                        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
           "spec": {"clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"], "ipFamilies": ["IPv4"],
                    "ipFamilyPolicy": "SingleStack", "selector": {"app": "web"},
                    "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]},
           "status": {"loadBalancer": {}}}
SLICE = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
         "metadata": {"name": "web-abcde", "namespace": "default", "generateName": "web-",
                      "labels": {"kubernetes.io/service-name": "web"}},
         "endpoints": [], "ports": [{"name": "", "port": 80, "protocol": "TCP"}]}
POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"}, "uid": "4"},
       "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx", "command": ["x"],
                                                  "ports": [{"containerPort": 80}]}]},
       "status": {"phase": "Running", "podIP": "10.244.1.5"}}


def _dump(tmp_path, items, name="dump.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items,
                                    "metadata": {"resourceVersion": ""}}))
    return str(path)


def test_server_set_fields_are_accepted_without_warnings(tmp_path):
    scenario, plan = _plan(_dump(tmp_path, [NODE, SERVICE, SLICE, POD]))
    assert scenario.warnings == []
    assert (plan.nodes[0].ip, plan.nodes[0].labels["zone"]) == ("192.168.5.10", "a")
    pod = next(p for p in plan.pods if p.name == "web-1")
    assert (pod.ip, pod.node) == ("10.244.1.5", "n1")
    assert pod.template.containers[0].command is None  # a built-in workload at its address


def test_pod_ip_outside_its_nodes_pod_cidr_is_refused(tmp_path):
    pod = dict(POD, status={"phase": "Running", "podIP": "10.244.7.5"})
    with pytest.raises(InputError) as e:
        _plan(_dump(tmp_path, [NODE, pod]))
    assert e.value.exit_code == 2
    assert 'Pod "web-1": status.podIP: 10.244.7.5: not a pod address of node n1' in str(e.value)


def test_node_without_internal_ip_names_the_field(tmp_path):
    node = dict(NODE, status={"addresses": [{"type": "Hostname", "address": "n1"}]})
    with pytest.raises(InputError) as e:
        load_scenario([_dump(tmp_path, [node])])
    assert 'dump.yaml:' in str(e.value) and 'Node "n1": status.addresses: no InternalIP' in str(e.value)


def test_a_bad_address_in_a_dump_names_file_object_and_field(tmp_path):
    svc = dict(SERVICE, spec=dict(SERVICE["spec"], clusterIP="10.96.0.300", clusterIPs=None))
    with pytest.raises(InputError) as e:
        load_scenario([_dump(tmp_path, [NODE, svc])])
    assert 'Service "web": spec.clusterIP: \'10.96.0.300\': not an IPv4 address' in str(e.value)


def test_node_without_pod_cidr_takes_the_24_its_pods_use(tmp_path):
    node = dict(NODE, spec={})
    _, plan = _plan(_dump(tmp_path, [node, POD]))
    assert plan.nodes[0].pod_cidr == "10.244.1.0/24"


def test_finished_and_unscheduled_pods_are_left_out_with_a_warning(tmp_path):
    done = dict(POD, metadata=dict(POD["metadata"], name="job-1"), status={"phase": "Succeeded",
                                                                         "podIP": "10.244.1.6"})
    pending = dict(POD, metadata=dict(POD["metadata"], name="p-1"), status={"phase": "Pending"})
    scenario, plan = _plan(_dump(tmp_path, [NODE, POD, done, pending]))
    assert [p.name for p in plan.pods if p.namespace == "default"] == ["web-1"]
    assert any("1 pods left out (finished): default/job-1" in w for w in scenario.warnings)
    assert any("(no pod IP yet): default/p-1" in w for w in scenario.warnings)


def test_a_plain_list_is_not_a_dump(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text(textwrap.dedent("""
        apiVersion: v1
        kind: List
        items:
        - apiVersion: v1
          kind: Service
          metadata: {name: web}
          spec: {selector: {app: web}, ports: [{port: 80}]}
    """))
    scenario = load_scenario([str(path)])
    assert [n.name for n in scenario.cluster.nodes] == ["node-1"]
    assert not any(s.endpoints_from_slices for s in scenario.services)


def test_load_balancer_keeps_its_ports_and_the_address_the_cloud_gave_it(tmp_path):
    lb = dict(SERVICE, spec=dict(SERVICE["spec"], type="LoadBalancer", externalTrafficPolicy="Local",
                                 healthCheckNodePort=32007, allocateLoadBalancerNodePorts=True,
                                 ports=[{"port": 80, "protocol": "TCP", "targetPort": 80,
                                         "nodePort": 30526}]),
              status={"loadBalancer": {"ingress": [{"ip": "192.168.005.240", "ipMode": "VIP"}]}})
    scenario, plan = _plan(_dump(tmp_path, [NODE, lb]))
    assert scenario.warnings == []
    sp = next(sp for sp in plan.services if sp.service.name == "web")
    assert (sp.cluster_ip, sp.node_ports, sp.health_check_node_port, sp.load_balancer_ip) == (
        "10.96.0.20", {0: 30526}, 32007, "192.168.5.240")
    assert scenario.cluster.node_subnet == "192.168.0.0/16"


def test_nodes_flag_is_refused_with_a_dump():
    with pytest.raises(InputError) as e:
        load_scenario([KIND_DUMP], nodes=2)
    assert "--nodes: 2: a cluster dump brings its own nodes" in str(e.value)
