"""Scenario loading, validation messages, defaults, allocation and naming (no root)."""

import copy
import textwrap

import pytest

from minikp.errors import InputError
from minikp.scenario.load import load_scenario
from minikp.scenario.plan import fnv32a, plan_cluster, safe_encode, with_builtins

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: hostnames}
spec:
  replicas: 3
  selector: {matchLabels: {app: hostnames}}
  template:
    metadata: {labels: {app: hostnames}}
    spec:
      containers:
      - name: hostnames
        image: k8s.gcr.io/serve_hostname
        ports: [{containerPort: 9376, name: http}]
"""
SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: hostnames}
spec:
  selector: {app: hostnames}
  ports: [{port: 80, targetPort: 9376}]
"""


def write(tmp_path, *docs, name="s.yaml"):
    p = tmp_path / name
    p.write_text("\n---\n".join(textwrap.dedent(d) for d in docs))
    return str(p)


def load(tmp_path, *docs, **kw):
    return load_scenario([write(tmp_path, *docs)], **kw)


def error(tmp_path, *docs, **kw) -> str:
    with pytest.raises(InputError) as e:
        plan_cluster(load(tmp_path, *docs, **kw))
    assert e.value.exit_code == 2
    return str(e.value)


def test_defaults_for_plain_kubernetes_objects(tmp_path):
    s = load(tmp_path, DEPLOY, SERVICE)
    c = s.cluster
    assert [n.name for n in c.nodes] == ["node-1"]
    assert (c.proxy_mode, c.iptables_backend, c.pod_subnet, c.service_subnet, c.node_subnet) == \
        ("iptables", "auto", "10.244.0.0/16", "10.96.0.0/12", "172.18.0.0/16")
    assert c.load_balancer_pool == ("172.18.255.200", "172.18.255.250")
    svc = s.services[0]
    assert (svc.type, svc.selector, svc.ports[0].target_port, svc.ports[0].protocol) == \
        ("ClusterIP", {"app": "hostnames"}, 9376, "TCP")
    assert svc.session_affinity_timeout == 10800
    assert s.workloads[0].replicas == 3


def test_cluster_document_and_line_numbers(tmp_path):
    s = load(tmp_path, """
        apiVersion: minikp.dev/v1alpha1
        kind: Cluster
        metadata: {name: demo}
        spec:
          nodes: [{name: a, labels: {zone: x}}, b]
          networking: {loadBalancerPool: 172.18.255.10-172.18.255.20}
          clients: [{name: db, hostnames: [db.example.test]}]
        checks: [{from: client/db, request: "http://x/"}]
        """, SERVICE)
    assert [n.name for n in s.cluster.nodes] == ["a", "b"]
    assert s.cluster.clients[0].hostnames == ["db.example.test"]
    assert s.cluster.checks[0]["from"] == "client/db"
    assert s.services[0].source.line > 1


def test_bad_port_names_file_line_object_and_field(tmp_path):
    msg = error(tmp_path, """
        apiVersion: v1
        kind: Service
        metadata: {name: hostnames}
        spec:
          ports:
          - port: 70000
        """)
    assert msg.startswith(str(tmp_path / "s.yaml") + ":7: ")
    assert 'Service "hostnames": spec.ports[0].port: 70000: must be a port number between 1 and 65535' in msg


@pytest.mark.parametrize("doc, expected", [
    (DEPLOY.replace("name: hostnames}", "name: Hostnames_1}"), 'metadata.name: "Hostnames_1"'),
    (DEPLOY.replace("matchLabels: {app: hostnames}", "matchLabels: {app: other}"),
     "`selector` does not match template `labels`"),
    (DEPLOY.replace("containerPort: 9376", "containerPort: 0"), "containers[0].ports[0].containerPort"),
    (SERVICE.replace("port: 80,", "port: 80, protocol: ICMP,"), 'spec.ports[0].protocol: "ICMP": supported values'),
    (SERVICE.replace("spec:", "spec:\n  type: Foo"), 'spec.type: "Foo"'),
    (SERVICE.replace("targetPort: 9376", "nodePort: 3"), "spec.ports[0].nodePort: 3: provided port is not in the valid range"),
    (SERVICE.replace("spec:", "spec:\n  clusterIP: 10.0.0.1"), "spec.clusterIP: 10.0.0.1: not in the valid range"),
    (SERVICE.replace("ports: [{port: 80, targetPort: 9376}]", "ports: [{port: 80}, {port: 81}]"),
     "spec.ports[0].name: required when a Service has more than one port"),
    (SERVICE.replace("spec:", "spec:\n  sessionAffinity: Sticky"), "spec.sessionAffinity"),
    ("""
     apiVersion: minikp.dev/v1alpha1
     kind: Cluster
     spec: {networking: {podSubnet: 10.96.0.0/16}}
     """, "spec.networking.serviceSubnet: 10.96.0.0/12 overlaps podSubnet"),
    ("""
     apiVersion: minikp.dev/v1alpha1
     kind: Cluster
     spec: {networking: {loadBalancerPool: 10.0.0.1-10.0.0.9}}
     """, "must be a range of host addresses inside the node subnet"),
    ("""
     apiVersion: minikp.dev/v1alpha1
     kind: Cluster
     spec: {proxy: {mode: kernelspace}}
     """, 'spec.proxy.mode: "kernelspace": not a proxy mode; valid: iptables, ipvs, nftables, userspace'),
    ("""
     apiVersion: minikp.dev/v1alpha1
     kind: Cluster
     spec: {proxy: {mode: ebpf}}
     """, 'spec.proxy.mode: "ebpf": not a proxy mode'),
])
def test_validation_messages(tmp_path, doc, expected):
    assert expected in error(tmp_path, DEPLOY if "kind: Deployment" not in doc else SERVICE, doc)


def test_named_target_port_must_resolve(tmp_path):
    msg = error(tmp_path, DEPLOY, SERVICE.replace("targetPort: 9376", "targetPort: web"))
    assert 'spec.ports[0].targetPort: "web": no container port of the selected pods' in msg
    load(tmp_path, DEPLOY, SERVICE.replace("targetPort: 9376", "targetPort: http"))


def test_duplicate_objects_and_unknown_kinds(tmp_path):
    assert "already defined at" in error(tmp_path, SERVICE, SERVICE)
    s = load(tmp_path, SERVICE, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
             "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\n")
    assert [(o.kind, o.name) for o in s.stored] == [("ConfigMap", "x")]  # kept, listed by get
    assert s.warnings == [f"{tmp_path}/s.yaml:15: StatefulSet \"db\": skipped: minikp does not "
                          "handle StatefulSet; it builds Deployment, ReplicaSet, Pod, Service, "
                          "Namespace, Endpoints, EndpointSlice"]


def test_command_line_overrides(tmp_path):
    with pytest.raises(InputError, match='"IPVS": not a proxy mode; valid: iptables, ipvs, nftables, userspace'):
        load(tmp_path, SERVICE, proxy_mode="IPVS")
    assert len(load(tmp_path, SERVICE, nodes=3).cluster.nodes) == 3


def test_list_endpoints_and_namespaces(tmp_path):
    s = load(tmp_path, """
        apiVersion: v1
        kind: List
        items:
        - apiVersion: v1
          kind: Service
          metadata: {name: ext, namespace: team-a}
          spec: {ports: [{port: 80}]}
        - apiVersion: v1
          kind: Endpoints
          metadata: {name: ext, namespace: team-a}
          subsets: [{addresses: [{ip: 172.18.100.1}], notReadyAddresses: [{ip: 172.18.100.2}],
                     ports: [{port: 80}]}]
        """)
    assert "team-a" in s.namespaces
    assert s.services[0].selector is None
    sl = s.endpoint_slices[0]
    assert (sl.service_name, [e.addresses[0] for e in sl.endpoints], [e.ready for e in sl.endpoints]) == \
        ("ext", ["172.18.100.1", "172.18.100.2"], [True, False])


def test_pod_template_hash_is_the_deployment_controllers_shape(tmp_path):
    assert fnv32a(b"") == 0x811C9DC5 and fnv32a(b"a") == 0xE40C292C  # FNV-1a test vectors
    assert safe_encode("0123") == "4567"  # byte % 27, as SafeEncodeString
    plan = plan_cluster(load(tmp_path, DEPLOY, SERVICE))
    pods = [p for p in plan.pods if p.owner_name == "hostnames"]
    assert len(pods) == 3 and len({p.name for p in pods}) == 3
    for p in pods:
        prefix, h, suffix = p.name.rsplit("-", 2)
        assert prefix == "hostnames" and p.template_hash == h and p.replica_set == f"hostnames-{h}"
        assert len(suffix) == 5 and set(suffix + h) <= set("bcdfghjklmnpqrstvwxz2456789")
        assert p.labels["pod-template-hash"] == h
    assert plan_cluster(load(tmp_path, DEPLOY, SERVICE)).pods[2].name == pods[0].name  # deterministic


def test_plan_addresses(tmp_path):
    plan = plan_cluster(load(tmp_path, """
        apiVersion: minikp.dev/v1alpha1
        kind: Cluster
        spec: {nodes: 2, clients: [outside, db]}
        """, DEPLOY, SERVICE.replace("spec:", "spec:\n  type: LoadBalancer\n  externalTrafficPolicy: Local")))
    assert [(n.name, n.ip, n.pod_cidr, n.gateway_ip) for n in plan.nodes] == [
        ("node-1", "172.18.0.2", "10.244.1.0/24", "10.244.1.1"),
        ("node-2", "172.18.0.3", "10.244.2.0/24", "10.244.2.1")]
    assert [(c.name, c.ip) for c in plan.clients] == [("outside", "172.18.100.1"), ("db", "172.18.100.2")]
    svcs = {sp.service.name: sp for sp in plan.services}
    assert svcs["kubernetes"].cluster_ip == "10.96.0.1"
    assert svcs["kube-dns"].cluster_ip == "10.96.0.10" == plan.dns_ip
    assert [p.port for p in svcs["kube-dns"].service.ports] == [53, 53, 9153]
    lb = svcs["hostnames"]
    assert lb.load_balancer_ip == "172.18.255.200"
    assert 30000 <= lb.node_ports[0] <= 32767 and 30000 <= lb.health_check_node_port <= 32767
    coredns = [p for p in plan.pods if p.owner_name == "coredns"]
    assert len(coredns) == 2 and coredns[0].namespace == "kube-system"
    nodes = [p.node for p in plan.pods]
    assert nodes.count("node-1") - nodes.count("node-2") in (-1, 0, 1)  # spread
    assert all(p.ip.startswith("10.244.1.") or p.ip.startswith("10.244.2.") for p in plan.pods)
    ep = next(s for s in plan.endpoint_slices if s.name == "kubernetes")
    assert ep.endpoints[0].addresses == ["172.18.0.2"] and ep.ports[0].container_port == 6443


def test_allocator_live_changes_never_reuse_names_and_move_on_ips(tmp_path):
    scenario = load(tmp_path, DEPLOY, SERVICE)
    plan = plan_cluster(scenario)
    dep = next(w for w in scenario.workloads if w.name == "hostnames")
    old = next(p for p in plan.pods if p.owner_name == "hostnames")
    plan.allocator.release_pod(old)
    new = plan.allocator.plan_pods(dep, count=1)[0]
    assert new.name != old.name and new.ip != old.ip
    assert new.name.startswith(old.replica_set + "-")
    sp = next(s for s in plan.services if s.service.name == "hostnames")
    plan.allocator.release_service(sp)
    again = plan.allocator.plan_service(sp.service)
    assert again.cluster_ip == sp.cluster_ip  # stable per name


def test_requested_addresses_conflicts(tmp_path):
    msg = error(tmp_path, SERVICE.replace("spec:", "spec:\n  clusterIP: 10.96.0.50"),
                SERVICE.replace("hostnames}", "other}").replace("spec:", "spec:\n  clusterIP: 10.96.0.50"))
    assert 'Service "other": spec.clusterIP: 10.96.0.50: provided IP is already allocated' in msg


def test_user_kube_dns_replaces_the_builtin(tmp_path):
    plan = plan_cluster(load(tmp_path, """
        apiVersion: v1
        kind: Service
        metadata: {name: kube-dns, namespace: kube-system}
        spec:
          selector: {k8s-app: kube-dns}
          ports: [{name: dns, port: 53, protocol: UDP}]
        """))
    dns = [sp for sp in plan.services if sp.service.name == "kube-dns"]
    assert len(dns) == 1 and dns[0].cluster_ip == "10.96.0.10" and len(dns[0].service.ports) == 1


@pytest.mark.parametrize("value, seconds", [("30s", 30.0), ("500ms", 0.5), ("1m", 60.0), (2, 2.0)])
def test_proxy_sync_period(tmp_path, value, seconds):
    s = load(tmp_path, f"""
        apiVersion: minikp.dev/v1alpha1
        kind: Cluster
        spec: {{proxy: {{syncPeriod: {value}, minSyncPeriod: 0s}}}}
        """)
    assert s.cluster.sync_period_s == seconds


def test_proxy_sync_period_rejects_nonsense(tmp_path):
    assert "spec.proxy.syncPeriod: 'soon': a duration" in error(tmp_path, """
        apiVersion: minikp.dev/v1alpha1
        kind: Cluster
        spec: {proxy: {syncPeriod: soon}}
        """)


def test_ipvs_scheduler_annotation(tmp_path):
    """minikp's own per-Service IPVS scheduler (minikp.dev/ipvs-scheduler), into the snapshot."""
    from minikp.controller.snapshots import build_snapshot
    annotated = SERVICE.replace("metadata: {name: hostnames}",
                                "metadata: {name: hostnames, annotations: {minikp.dev/ipvs-scheduler: lc}}")
    plan = plan_cluster(load(tmp_path, DEPLOY, annotated))
    assert {sp.service.name: sp.service.ipvs_scheduler for sp in plan.services}["hostnames"] == "lc"
    snap = build_snapshot(plan, plan.nodes[0], {})
    assert [sp.ipvs_scheduler for sp in snap.services if sp.name == "hostnames"] == ["lc"]
    msg = error(tmp_path, DEPLOY, annotated.replace(": lc}", ": fastest}"))
    assert msg.endswith('s.yaml:20: Service "hostnames": metadata.annotations.minikp.dev/ipvs-scheduler: "fastest": '
                        'supported values: "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh"')


def test_planning_leaves_the_scenario_as_loaded(tmp_path):
    scenario = load(tmp_path, DEPLOY, SERVICE)
    before = copy.deepcopy(scenario)
    plan = plan_cluster(scenario)
    assert scenario == before  # the built-ins are in the plan, not added to the input
    assert {sp.service.name for sp in plan.services} >= {"kubernetes", "kube-dns"}
    assert any(p.owner_name == "coredns" for p in plan.pods)
    full = with_builtins(scenario)
    assert scenario == before and [w.name for w in full.workloads][0] == "coredns"
    assert with_builtins(full) == full  # the built-ins are added once
