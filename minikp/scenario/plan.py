"""A Scenario → a ClusterPlan: every name and address minikp allocates, as a real cluster's
control plane would. Pure and deterministic: the same scenario always gets the same plan.

- nodes: node-k at the (k+1)th address of the node subnet (.1 is the world's gateway
  address), pod CIDR 10.244.k.0/24 with the cni0 bridge at .1, pods from .2 on, host-local
  IPAM style: the next free address after the last one handed out, so a replacement pod gets
  a new IP. A cluster dump's nodes and pods (dump.py) keep the addresses they were given.
- clients: from 172.18.100.1 upward (the same offset in any node subnet).
- Deployment pods: `<deployment>-<pod-template-hash>-<5 chars>`, the hash computed as the
  Deployment controller does (FNV-32a of the template, encoded with its safe alphabet).
- Services: the built-in `kubernetes` (first address) and `kube-dns` (tenth) unless the
  scenario defines them; requested ClusterIPs honoured, others from a stable hash of the
  name; nodePorts likewise in 30000-32767; LoadBalancer addresses from the pool.

with_builtins(scenario) is the scenario with the built-in objects added (kubernetes
Service, kube-dns Service, coredns Deployment, the ingress controller's when an Ingress
asks for it): the supervisor keeps that one, so that live changes find them like any other
object. plan_cluster plans it; neither changes its input.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
import dataclasses

from minikp.errors import InputError
from minikp.ingress import install as ingress_install
from minikp.scenario import rules
from minikp.scenario.load import node_labels
from minikp.scenario.model import (ClientPlan, ClusterPlan, Container, ContainerPort,
                                   EndpointSlice, NodePlan, PodPlan, PodTemplate, Scenario,
                                   Service, ServicePlan, ServicePort, SliceEndpoint, Workload)

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery/pkg/util/rand
COREDNS_IMAGE = "registry.k8s.io/coredns/coredns:v1.11.3"
DNS_PORTS = (("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP"))
CLIENT_OFFSET = 100 * 256 + 1  # 172.18.100.1 in 172.18.0.0/16


def safe_encode(s: str) -> str:
    return "".join(SAFE_ALPHABET[ord(ch) % len(SAFE_ALPHABET)] for ch in s)


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def pod_template_hash(template: PodTemplate) -> str:
    """The pod-template-hash label: FNV-32a over the template, safe-encoded (its decimal
    digits mapped through the alphabet, as ComputeHash does)."""
    canon = json.dumps(dataclasses.asdict(template), sort_keys=True, separators=(",", ":"))
    return safe_encode(str(fnv32a(canon.encode())))


def _stable(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


# ---- built-in objects ---------------------------------------------------------------------


def with_builtins(scenario: Scenario) -> Scenario:
    """A copy of `scenario` (new lists, the same objects in them) with the built-in
    objects it does not define itself."""
    scenario = dataclasses.replace(scenario, services=list(scenario.services),
                                   workloads=list(scenario.workloads))
    def has(kind, ns, name, items):
        return any((o.namespace, o.name) == (ns, name) and getattr(o, "kind", kind) == kind
                   for o in items)

    if not has("Service", "default", "kubernetes", scenario.services):
        scenario.services.insert(0, Service(
            "default", "kubernetes", ports=[ServicePort(443, "TCP", "https", 6443)],
            labels={"component": "apiserver", "provider": "kubernetes"}))
    if not has("Service", "kube-system", "kube-dns", scenario.services):
        scenario.services.insert(1, Service(
            "kube-system", "kube-dns", selector={"k8s-app": "kube-dns"},
            ports=[ServicePort(p, proto, name, p) for name, p, proto in DNS_PORTS],
            labels={"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS"}))
    dns_labels = {"k8s-app": "kube-dns"}
    serves_dns = any(w.namespace == "kube-system" and w.template.labels.get("k8s-app") == "kube-dns"
                     for w in scenario.workloads)
    if not serves_dns:
        template = PodTemplate(labels=dict(dns_labels), containers=[Container(
            "coredns", COREDNS_IMAGE, [ContainerPort(p, proto, name) for name, p, proto in DNS_PORTS])])
        scenario.workloads.insert(0, Workload("Deployment", "kube-system", "coredns", template, 2,
                                              dict(dns_labels)))
    return ingress_install.with_controller(scenario)


# ---- the allocator --------------------------------------------------------------------------


class Allocator:
    """Hands out pod names and IPs, ClusterIPs, nodePorts and LB addresses, and takes them
    back. Used once for the whole scenario and again for every live change."""

    def __init__(self, plan: ClusterPlan):
        c = plan.config
        self.plan = plan
        self.service_net = ipaddress.IPv4Network(c.service_subnet)
        lo, hi = (int(ipaddress.IPv4Address(x)) for x in c.load_balancer_pool)
        self.lb_pool = [str(ipaddress.IPv4Address(i)) for i in range(lo, hi + 1)]
        self.used_ips: dict[str, str] = {}  # ClusterIP -> its Service, "namespace/name"
        self.used_node_ports: set[int] = set()
        self.used_lb: set[str] = set()
        self.pod_names: set[str] = set()  # every pod name ever handed out: never reused
        self.node_pod_ips: dict[str, set[str]] = {n.name: set() for n in plan.nodes}
        self.node_last: dict[str, int] = {n.name: 1 for n in plan.nodes}
        self.node_load: dict[str, int] = {n.name: 0 for n in plan.nodes}
        self.rs_serial: dict[str, int] = {}
        self.node_nets: dict[str, ipaddress.IPv4Network] = {}

    def clone(self) -> "Allocator":
        """A copy to plan a change on: what it hands out or takes back leaves this one as
        it was (the plan's nodes are shared, never changed)."""
        return copy.deepcopy(self, {id(self.plan): self.plan})

    # -- pods --
    def plan_pods(self, w: Workload, count: int | None = None) -> list[PodPlan]:
        """New pods for `w`. They share its template: nothing changes a template in place
        (apply replaces the workload and its pods). All or nothing: pods that do not fit
        are refused before any address is taken."""
        count = w.replicas if count is None else count
        h = pod_template_hash(w.template) if w.kind == "Deployment" else ""
        rs = f"{w.name}-{h}" if h else ""
        if count:
            self._check_room(w, count)
        out = []
        try:
            for _ in range(count):
                node = self._pick_node(w)
                if w.kind == "Pod":
                    if w.name in self.pod_names:
                        raise InputError(f'pod "{w.name}" already exists in namespace "{w.namespace}"')
                    name = w.name
                else:
                    name = self._pod_name(rs or w.name)
                self.pod_names.add(name)
                if w.template.host_network:  # the kubelet's: the node's address
                    ip = node.ip
                else:
                    ip = self._given_pod_ip(node, w) if w.pod_ip else self._pod_ip(node)
                out.append(PodPlan(w.namespace, name, node.name, ip, w.kind, w.name,
                                   w.template, rs, h))
        except InputError:
            for pod in out:
                self.release_pod(pod)
            raise
        return out

    def _check_room(self, w: Workload, count: int) -> None:
        """Each node's pod CIDR holds a fixed number of pods (253 in a /24)."""
        nodes = self._nodes_for(w)
        free = {n.name: self._capacity(n) - len(self.node_pod_ips[n.name]) for n in nodes}
        if count > sum(free.values()):
            room = ", ".join(f"{n.name} has {free[n.name]} free (its pod CIDR {n.pod_cidr} holds "
                             f"{self._capacity(n)} pods)" for n in nodes)
            raise InputError(f"{count} more pods do not fit on the nodes it may use: {room}",
                             file=w.source.file, line=w.source.line, kind=w.kind, name=w.name,
                             field="spec.replicas")

    def _capacity(self, node: NodePlan) -> int:
        return self._pod_net(node).num_addresses - 3  # network, gateway, broadcast

    def _pod_net(self, node: NodePlan) -> ipaddress.IPv4Network:
        """The node's pod CIDR, parsed once (validating 20,000 Services asks for it often)."""
        net = self.node_nets.get(node.name)
        if net is None:
            net = self.node_nets[node.name] = ipaddress.IPv4Network(node.pod_cidr)
        return net

    def release_pod(self, pod: PodPlan) -> None:
        self.node_pod_ips[pod.node].discard(pod.ip)
        self.node_load[pod.node] -= 1
        if pod.owner_kind == "Pod":
            self.pod_names.discard(pod.name)  # a bare pod may come back under its own name

    def _pod_name(self, base: str) -> str:
        while True:
            n = self.rs_serial.get(base, 0)
            self.rs_serial[base] = n + 1
            suffix = safe_encode(hashlib.sha256(f"{base}/{n}".encode()).hexdigest())[:5]
            name = f"{base}-{suffix}"
            if name not in self.pod_names:
                return name

    def _nodes_for(self, w: Workload) -> list[NodePlan]:
        t = w.template
        nodes = [n for n in self.plan.nodes
                 if (not t.node_name or n.name == t.node_name)
                 and all(n.labels.get(k) == v for k, v in t.node_selector.items())]
        if not nodes:
            spec = "spec" if w.kind == "Pod" else "spec.template.spec"
            which = f"nodeName {t.node_name}" if t.node_name else f"nodeSelector {t.node_selector}"
            raise InputError(f"no node matches its {which}", file=w.source.file,
                             line=w.source.line, kind=w.kind, name=w.name,
                             field=f"{spec}.{'nodeName' if t.node_name else 'nodeSelector'}")
        return nodes

    def _pick_node(self, w: Workload) -> NodePlan:
        # the least loaded node (ties: the first), so replicas spread over the nodes
        return min(self._nodes_for(w), key=lambda n: self.node_load[n.name])

    def _pod_ip(self, node: NodePlan) -> str:
        net = self._pod_net(node)
        size = self._capacity(node)
        used = self.node_pod_ips[node.name]
        for step in range(1, size + 1):
            host = (self.node_last[node.name] - 2 + step) % size + 2
            ip = str(net.network_address + host)
            if ip not in used:
                used.add(ip)
                self.node_last[node.name] = host
                self.node_load[node.name] += 1
                return ip
        raise InputError(f"node {node.name}: no free pod address in {node.pod_cidr}")

    def _given_pod_ip(self, node: NodePlan, w: Workload) -> str:
        """A dumped pod's own IP: inside its node's pod CIDR, not the bridge's, not taken."""
        net, ip = self._pod_net(node), ipaddress.IPv4Address(w.pod_ip)
        where = dict(file=w.source.file, line=w.source.line, kind=w.kind, name=w.name,
                     field="status.podIP")
        if ip not in net or ip in (net.network_address, net.network_address + 1, net.broadcast_address):
            raise InputError(f"{ip}: not a pod address of node {node.name} (its pod CIDR {net}, "
                             f"bridge at {net.network_address + 1})", **where)
        if str(ip) in self.node_pod_ips[node.name]:
            raise InputError(f"{ip}: already a pod's address", **where)
        self.node_pod_ips[node.name].add(str(ip))
        self.node_load[node.name] += 1
        return str(ip)

    # -- services --
    def plan_service(self, svc: Service) -> ServicePlan:
        where = dict(file=svc.source.file, line=svc.source.line, kind="Service", name=svc.name)
        sp = ServicePlan(svc, self._cluster_ip(svc, where))
        if svc.type in ("NodePort", "LoadBalancer"):
            for i, port in enumerate(svc.ports):
                sp.node_ports[i] = self._node_port(port.node_port, f"{svc.namespace}/{svc.name}/{i}",
                                                   dict(where, field=f"spec.ports[{i}].nodePort"))
        if svc.type == "LoadBalancer":
            sp.load_balancer_ip = self._lb_ip(svc, where)
            if svc.external_traffic_policy == "Local":
                sp.health_check_node_port = self._node_port(
                    svc.health_check_node_port, f"{svc.namespace}/{svc.name}/health",
                    dict(where, field="spec.healthCheckNodePort"))
        return sp

    def release_service(self, sp: ServicePlan) -> None:
        self.used_ips.pop(sp.cluster_ip, None)
        self.used_node_ports.difference_update(sp.node_ports.values())
        self.used_node_ports.discard(sp.health_check_node_port)
        self.used_lb.discard(sp.load_balancer_ip)

    def _cluster_ip(self, svc: Service, where: dict) -> str:
        if svc.type == "ExternalName":
            return ""
        if svc.headless:
            return "None"
        net = self.service_net
        if svc.cluster_ip:
            ip = ipaddress.IPv4Address(svc.cluster_ip)
            if ip not in net or ip in (net.network_address, net.broadcast_address):
                raise InputError(f"{ip}: not in the valid range; the service subnet is {net}",
                                 field="spec.clusterIP", **where)
            if str(ip) in self.used_ips:
                raise InputError(f"{ip}: provided IP is already allocated (to Service "
                                 f"{self.used_ips[str(ip)]})", field="spec.clusterIP", **where)
            self.used_ips[str(ip)] = f"{svc.namespace}/{svc.name}"
            return str(ip)
        reserved = {1, 10}  # the kubernetes and kube-dns services' addresses
        fixed = {("default", "kubernetes"): 1, ("kube-system", "kube-dns"): 10}.get(
            (svc.namespace, svc.name))
        if fixed:
            candidates = iter([fixed])
        else:
            size = net.num_addresses - 2
            start = _stable(f"{svc.namespace}/{svc.name}") % size
            candidates = ((start + k) % size + 1 for k in range(size))
        for offset in candidates:
            ip = str(net.network_address + offset)
            if ip not in self.used_ips and (offset not in reserved or fixed):
                self.used_ips[ip] = f"{svc.namespace}/{svc.name}"
                return ip
        raise InputError(f"no free ClusterIP left in {net}", field="spec.clusterIP", **where)

    def _node_port(self, requested: int, key: str, where: dict) -> int:
        lo, hi = rules.NODE_PORT_RANGE
        if requested:
            if requested in self.used_node_ports:
                raise InputError(f"{requested}: provided port is already allocated", **where)
            self.used_node_ports.add(requested)
            return requested
        size = hi - lo + 1
        start = _stable(key) % size
        for k in range(size):
            port = lo + (start + k) % size
            if port not in self.used_node_ports:
                self.used_node_ports.add(port)
                return port
        raise InputError("no free nodePort left in 30000-32767", **where)

    def _lb_ip(self, svc: Service, where: dict) -> str:
        if svc.load_balancer_ip:
            ip = svc.load_balancer_ip
            if ip not in self.lb_pool:
                raise InputError(f"{ip}: not in the load balancer pool {self.lb_pool[0]}-"
                                 f"{self.lb_pool[-1]}", field="spec.loadBalancerIP", **where)
            if ip in self.used_lb:
                raise InputError(f"{ip}: already in use by another Service",
                                 field="spec.loadBalancerIP", **where)
            self.used_lb.add(ip)
            return ip
        for ip in self.lb_pool:
            if ip not in self.used_lb:
                self.used_lb.add(ip)
                return ip
        raise InputError(f"the load balancer pool {self.lb_pool[0]}-{self.lb_pool[-1]} is "
                         "exhausted", field="spec.loadBalancerIP", **where)


# ---- the plan ---------------------------------------------------------------------------------


def plan_cluster(scenario: Scenario) -> ClusterPlan:
    scenario = with_builtins(scenario)
    c = scenario.cluster
    node_net = ipaddress.IPv4Network(c.node_subnet)
    pod_net = ipaddress.IPv4Network(c.pod_subnet)
    nodes = []
    for k, spec in enumerate(c.nodes, start=1):  # a dump's nodes bring their own
        cidr = ipaddress.IPv4Network(spec.pod_cidr or (int(pod_net.network_address) + 256 * k, 24))
        nodes.append(NodePlan(spec.name, spec.ip or str(node_net.network_address + 1 + k), str(cidr),
                              str(cidr.network_address + 1), node_labels(spec)))
    plan = ClusterPlan(c, nodes, [], [], _clients(c, node_net),
                       endpoint_slices=list(scenario.endpoint_slices),
                       namespaces=list(scenario.namespaces))
    plan.allocator = Allocator(plan)
    # the built-in Services' fixed addresses first (a user's Service asking for one is the one
    # refused), then requested addresses, so that an allocated one never takes a requested one
    for svc in sorted(scenario.services, key=lambda s: (s.source.file != "<builtin>", not s.cluster_ip)):
        plan.services.append(plan.allocator.plan_service(svc))
    order = {id(s): i for i, s in enumerate(scenario.services)}
    plan.services.sort(key=lambda sp: order[id(sp.service)])
    for w in scenario.workloads:
        plan.pods.extend(plan.allocator.plan_pods(w))
    if not any((s.namespace, s.name) == ("default", "kubernetes") for s in scenario.endpoint_slices):
        plan.endpoint_slices.append(EndpointSlice(
            "default", "kubernetes", "kubernetes", [ContainerPort(6443, "TCP", "https")],
            [SliceEndpoint([nodes[0].ip], node_name=nodes[0].name)]))
    dns = next(sp for sp in plan.services if (sp.service.namespace, sp.service.name)
               == ("kube-system", "kube-dns"))
    plan.dns_ip = dns.cluster_ip
    return plan


def _clients(c, node_net: ipaddress.IPv4Network) -> list[ClientPlan]:
    first = int(node_net.network_address) + CLIENT_OFFSET
    pool_start = int(ipaddress.IPv4Address(c.load_balancer_pool[0]))
    if first + len(c.clients) > pool_start or first not in range(int(node_net.network_address),
                                                                  int(node_net.broadcast_address)):
        first = int(node_net.network_address) + 2 + len(c.nodes) + 8  # small node subnets
    out = []
    for i, spec in enumerate(c.clients):
        ip = ipaddress.IPv4Address(first + i)
        if int(ip) >= pool_start:
            raise InputError(f"{len(c.clients)} clients do not fit below the load balancer pool",
                             file=c.source.file, line=c.source.line, kind="Cluster",
                             name=c.name, field="spec.clients")
        out.append(ClientPlan(spec.name, str(ip), list(spec.hostnames), spec.command))
    return out
