"""A real cluster's dump → what the loader reads (pure): `kubectl get
nodes,pods,svc,endpointslices -A -o yaml` (or `-o json`), a `kind: List` of objects as the API
server stored them.

- is_dump(doc): a List holding a Node or an object with server-set metadata (uid, ...).
- read_dump(doc, file) -> Dump: the items as plain manifests for the loader's usual checks,
  with what the server set taken off (status, uid, resourceVersion, managedFields,
  ownerReferences, ...: known.py's SERVER fields and the controllers'), IPs normalised as
  kube-proxy reads them (sloppy.py: `010.096.000.001` is 10.96.0.1), each running Pod reduced
  to a built-in workload (name, image, ports) pinned to its node, and the Nodes (name,
  InternalIP, podCIDR, labels) and pod IPs kept aside.
- apply_dump(scenario, dumps): after loading, the cluster takes the dump's nodes and the
  subnets that hold its addresses, Pods their IPs, Services the dump's EndpointSlices.
Pods on the host network (kube-proxy, kindnet, the control plane) are the node itself and
are left out; so are pods that have no IP or have finished."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from minikp.errors import InputError
from minikp.scenario import known, sloppy
from minikp.scenario.model import NodeSpec, Scenario, Source
from minikp.scenario.yamlpos import PosDict, line_of

# metadata the API server or a controller sets: known.py's SERVER fields, plus those a user's
# manifest would not carry (known.py warns about them there) but every dumped object does
SERVER_META = {k for k, v in known.OBJECT_META.items() if v == known.SERVER} | {
    "ownerReferences", "generateName", "finalizers"}
SERVER_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
MIN_SUBNET_PREFIX = 16  # a derived subnet is at least a /16, as kind's and kubeadm's are


@dataclass
class DumpNode:
    spec: NodeSpec
    source: Source


@dataclass
class Dump:
    file: str
    manifests: list = field(default_factory=list)  # for the loader, in the dump's order
    nodes: list[DumpNode] = field(default_factory=list)
    pod_ips: dict[tuple[str, str], str] = field(default_factory=dict)  # (namespace, name) -> IP
    has_slices: bool = False
    warnings: list[str] = field(default_factory=list)


def is_dump(doc) -> bool:
    if not isinstance(doc, dict) or doc.get("kind") != "List" or not isinstance(doc.get("items"), list):
        return False
    for item in doc["items"]:
        meta = item.get("metadata") if isinstance(item, dict) else None
        if (isinstance(item, dict) and item.get("kind") == "Node") or (
                isinstance(meta, dict) and any(k in meta for k in ("uid", "resourceVersion",
                                                                   "managedFields"))):
            return True
    return False


def _error(file: str, item, msg: str, field_: str, at=None, key=None) -> InputError:
    meta = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
    return InputError(msg, file=file, line=line_of(at, key) or line_of(item),
                      kind=str(item.get("kind", "")), name=str(meta.get("name", "")), field=field_)


def _ip(file: str, item, value, field_: str, at, key) -> str:
    ip = sloppy.parse_ip(value) if isinstance(value, str) else None
    if ip is None or ":" in ip:
        raise _error(file, item, f"{value!r}: not an IPv4 address (minikp models IPv4 "
                     "single-stack clusters)", field_, at, key)
    return ip


def read_dump(doc, file: str) -> Dump:
    out = Dump(file)
    skipped: dict[str, list[str]] = {}
    for item in doc["items"]:
        if not isinstance(item, dict):
            raise InputError("items[]: every item must be an object with apiVersion and kind",
                             file=file, line=line_of(doc, "items"), kind="List")
        _strip_server_fields(item)
        kind = item.get("kind")
        if kind == "Node":
            out.nodes.append(_node(file, item))
        elif kind == "Pod":
            why = _pod_skipped(item)
            if why:
                skipped.setdefault(why, []).append(_qualified(item))
            else:
                manifest, ip = _pod(file, item)
                meta = manifest["metadata"]
                out.pod_ips[(meta.get("namespace", "default"), meta.get("name"))] = ip
                out.manifests.append(manifest)
        elif kind == "Service":
            _service(file, item)
            out.manifests.append(item)
        else:
            if kind == "EndpointSlice":
                _endpoint_slice(file, item)
                out.has_slices = True
            item.pop("status", None)
            out.manifests.append(item)
    where = f"{file}:{line_of(doc)}"
    for why, pods in skipped.items():
        shown = ", ".join(pods[:4]) + (f" and {len(pods) - 4} more" if len(pods) > 4 else "")
        out.warnings.append(f"{where}: {len(pods)} pods left out ({why}): {shown}")
    return out


def _qualified(item) -> str:
    meta = item.get("metadata") or {}
    return f"{meta.get('namespace', 'default')}/{meta.get('name', '')}"


def _strip_server_fields(item) -> None:
    """The metadata the server set; `status` goes where each kind has read what it needs."""
    meta = item.get("metadata")
    if not isinstance(meta, dict):
        return
    for key in SERVER_META & set(meta):
        del meta[key]
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        for key in SERVER_ANNOTATIONS:
            annotations.pop(key, None)
        if not annotations:
            del meta["annotations"]


# ---- kinds ------------------------------------------------------------------------------------


def _node(file: str, item) -> DumpNode:
    meta = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise _error(file, item, "required", "metadata.name", meta, "name")
    status = item.get("status") if isinstance(item.get("status"), dict) else {}
    addresses = status.get("addresses") if isinstance(status.get("addresses"), list) else []
    internal = [a for a in addresses if isinstance(a, dict) and a.get("type") == "InternalIP"]
    if not internal:
        raise _error(file, item, "no InternalIP address: minikp gives each node the address "
                     "kube-proxy uses", "status.addresses", status, "addresses")
    ip = _ip(file, item, internal[0].get("address"), "status.addresses[InternalIP].address",
             internal[0], "address")
    spec = item.get("spec") if isinstance(item.get("spec"), dict) else {}
    cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
    pod_cidr = ""
    for i, c in enumerate(cidrs if isinstance(cidrs, list) else [cidrs]):
        net = sloppy.parse_cidr(c) if isinstance(c, str) else None
        if net is None:
            raise _error(file, item, f"{c!r}: not a CIDR", f"spec.podCIDRs[{i}]", spec, "podCIDRs")
        if ":" not in net and not pod_cidr:
            pod_cidr = net
    labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
    return DumpNode(NodeSpec(name, {str(k): str(v) for k, v in labels.items()}, ip, pod_cidr),
                    Source(file, line_of(item)))


def _pod_skipped(item) -> str:
    spec = item.get("spec") if isinstance(item.get("spec"), dict) else {}
    status = item.get("status") if isinstance(item.get("status"), dict) else {}
    if spec.get("hostNetwork"):
        return "host network: they are the node itself"
    if status.get("phase") in ("Succeeded", "Failed"):
        return "finished"
    if not status.get("podIP"):
        return "no pod IP yet"
    return ""


def _pod(file: str, item) -> tuple[PosDict, str]:
    """A running Pod as a bare Pod of a built-in workload: its name, labels, node and each
    container's name, image and ports (the commands, volumes and probes of the real one
    are not run here)."""
    meta = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
    spec, status = item.get("spec") or {}, item["status"]  # _pod_skipped: status has podIP
    ip = _ip(file, item, status.get("podIP"), "status.podIP", status, "podIP")
    containers = []
    for c in spec.get("containers") or []:
        if not isinstance(c, dict):
            continue
        kept = _like(c, PosDict((k, c[k]) for k in ("name", "image") if k in c))
        ports = [_like(p, PosDict((k, p[k]) for k in ("containerPort", "protocol", "name") if k in p))
                 for p in c.get("ports") or [] if isinstance(p, dict)]
        if ports:
            kept["ports"] = ports
        containers.append(kept)
    new_spec = _like(spec, PosDict(containers=containers))
    if spec.get("nodeName"):
        new_spec["nodeName"] = spec["nodeName"]
    new_meta = _like(meta, PosDict((k, meta[k]) for k in ("name", "namespace", "labels") if k in meta))
    return _like(item, PosDict(apiVersion=item.get("apiVersion"), kind="Pod", metadata=new_meta,
                               spec=new_spec)), ip


def _like(src, new: PosDict) -> PosDict:
    """`new` with the line numbers of `src`, so errors still point into the dump."""
    if isinstance(src, PosDict):
        new.line, new.key_lines = src.line, src.key_lines
    return new


def _service(file: str, item) -> None:
    spec = item.get("spec")
    if not isinstance(spec, dict):
        return
    status = item.pop("status", None)
    families = spec.get("ipFamilies")
    if families in (None, ["IPv4"]) and spec.get("ipFamilyPolicy") in (None, "SingleStack"):
        # the server's defaults for a single-stack IPv4 Service: nothing minikp models
        for key in ("ipFamilies", "ipFamilyPolicy", "clusterIPs"):
            spec.pop(key, None)
    if spec.get("allocateLoadBalancerNodePorts") is True:  # the default
        del spec["allocateLoadBalancerNodePorts"]
    if isinstance(spec.get("clusterIP"), str) and spec["clusterIP"] not in ("", "None"):
        spec["clusterIP"] = _ip(file, item, spec["clusterIP"], "spec.clusterIP", spec, "clusterIP")
    if isinstance(spec.get("externalIPs"), list):
        spec["externalIPs"] = [_ip(file, item, v, f"spec.externalIPs[{i}]", spec, "externalIPs")
                               for i, v in enumerate(spec["externalIPs"])]
    if spec.get("loadBalancerIP"):
        spec["loadBalancerIP"] = _ip(file, item, spec["loadBalancerIP"], "spec.loadBalancerIP",
                                     spec, "loadBalancerIP")
    ingress = ((status or {}).get("loadBalancer") or {}).get("ingress") or []
    ips = [i.get("ip") for i in ingress if isinstance(i, dict) and i.get("ip")]
    if ips and not spec.get("loadBalancerIP") and spec.get("type") == "LoadBalancer":
        # the address the cloud gave it, where the node network can hold it (apply_dump)
        spec["loadBalancerIP"] = _ip(file, item, ips[0], "status.loadBalancer.ingress[0].ip",
                                     status, "loadBalancer")


def _endpoint_slice(file: str, item) -> None:
    for i, e in enumerate(item.get("endpoints") or []):
        if not isinstance(e, dict):
            continue
        e.pop("targetRef", None)  # set by the EndpointSlice controller
        if isinstance(e.get("addresses"), list):
            e["addresses"] = [_ip(file, item, a, f"endpoints[{i}].addresses[{j}]", e, "addresses")
                              for j, a in enumerate(e["addresses"])]


# ---- the cluster the dump describes --------------------------------------------------------------


def _covering(addresses: list[str]) -> ipaddress.IPv4Network:
    """The smallest network holding every address (or network), at least a /16."""
    nets = [ipaddress.IPv4Network(a, strict=False) for a in addresses]
    prefix = min([MIN_SUBNET_PREFIX] + [n.prefixlen for n in nets])
    while prefix > 0:
        net = ipaddress.IPv4Network((int(nets[0].network_address), prefix), strict=False)
        if all(n.subnet_of(net) for n in nets):
            return net
        prefix -= 1
    return ipaddress.IPv4Network("0.0.0.0/0")


def apply_dump(scenario: Scenario, dumps: list[Dump]) -> None:
    """The cluster as the dumps describe it; InputError naming the dump when it cannot be."""
    nodes = [n for d in dumps for n in d.nodes]
    pod_ips = {k: v for d in dumps for k, v in d.pod_ips.items()}
    file = dumps[0].file
    for w in scenario.workloads:
        if w.kind == "Pod" and (w.namespace, w.name) in pod_ips:
            w.pod_ip = pod_ips[(w.namespace, w.name)]
    if any(d.has_slices for d in dumps):
        dumped = {(m["metadata"].get("namespace", "default"), m["metadata"]["name"])
                  for d in dumps for m in d.manifests if m.get("kind") == "Service"}
        for svc in scenario.services:
            if (svc.namespace, svc.name) in dumped:
                svc.endpoints_from_slices = True
    if not nodes:
        return
    c = scenario.cluster
    seen = {}
    for n in nodes:
        if n.spec.name in seen:
            raise InputError(f"already defined at {seen[n.spec.name]}", file=n.source.file,
                             line=n.source.line, kind="Node", name=n.spec.name, field="metadata.name")
        seen[n.spec.name] = f"{n.source.file}:{n.source.line}"
        if not n.spec.pod_cidr:  # no podCIDR (the CNI's own IPAM): the /24s its pods use
            ips = [w.pod_ip for w in scenario.workloads if w.pod_ip and w.template.node_name == n.spec.name]
            n.spec.pod_cidr = str(_covering_24(ips)) if ips else ""
    c.nodes = [n.spec for n in nodes]
    node_net = _covering([n.spec.ip for n in nodes])
    c.node_subnet = str(node_net)
    gateway = str(node_net.network_address + 1)
    for n in nodes:  # the world's gateway sits at .1 of the node network
        if n.spec.ip == gateway or ipaddress.IPv4Address(n.spec.ip) == node_net.network_address:
            raise InputError(f"{n.spec.ip}: minikp keeps {gateway} for the node network's "
                             "gateway", file=n.source.file, line=n.source.line, kind="Node",
                             name=n.spec.name, field="status.addresses")
    cidrs = [n.spec.pod_cidr for n in nodes if n.spec.pod_cidr]
    if len(cidrs) < len(nodes):
        n = next(n for n in nodes if not n.spec.pod_cidr)
        raise InputError("no podCIDR and no pods with an IP on it: minikp routes each node's "
                         "pods by its pod CIDR", file=n.source.file, line=n.source.line,
                         kind="Node", name=n.spec.name, field="spec.podCIDR")
    c.pod_subnet = str(_covering(cidrs))
    service_ips = [s.cluster_ip for s in scenario.services if s.cluster_ip not in ("", "None")]
    if service_ips:
        c.service_subnet = str(_covering(service_ips))
    nets = {"node": node_net, "pod": ipaddress.IPv4Network(c.pod_subnet),
            "service": ipaddress.IPv4Network(c.service_subnet)}
    for a, b in (("node", "pod"), ("node", "service"), ("pod", "service")):
        if nets[a].overlaps(nets[b]):
            raise InputError(f"the {a} addresses ({nets[a]}) and the {b} addresses ({nets[b]}) "
                             "overlap; minikp needs them apart", file=file)
    top = int(node_net.broadcast_address)
    lo, hi = top - 55, top - 5  # kind-style pool at the top of the node network
    for s in scenario.services:
        if s.load_balancer_ip:
            ip = int(ipaddress.IPv4Address(s.load_balancer_ip))
            if ipaddress.IPv4Address(ip) not in node_net or ip >= top:
                raise InputError(f"{s.load_balancer_ip}: outside the node network {node_net}, "
                                 "where minikp routes load balancer addresses",
                                 file=s.source.file, line=s.source.line, kind="Service",
                                 name=s.name, field="spec.loadBalancerIP")
            lo, hi = min(lo, ip), max(hi, ip)
    c.load_balancer_pool = (str(ipaddress.IPv4Address(lo)), str(ipaddress.IPv4Address(hi)))


def _covering_24(ips: list[str]) -> ipaddress.IPv4Network:
    net = ipaddress.IPv4Network((ips[0], 24), strict=False)
    while not all(ipaddress.IPv4Address(i) in net for i in ips):
        net = net.supernet()
    return net
