"""Scenario files → a validated Scenario (model.py). Pure: reads files, touches nothing.

Every error is an InputError that names file, line, object and field path, and says what
would be valid, e.g. `bad.yaml:12: Service "web": spec.ports[0].port: 70000: must be ...`.
Reading is bounded (a regular file of at most MAX_FILE_BYTES; yamlpos.py caps depth and alias
expansion); which kinds exist per apiVersion and which fields are known, modelled or only
warned about come from known.py; Kubernetes' validation rules from rules.py; cross-object
rules (selectors that match their template, named targetPorts that resolve, subnets that do
not overlap) live here. Warnings (FILE:LINE: ...) are collected in Scenario.warnings for the
front end to print."""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import os
import re
import stat

from minikp.errors import InputError
from minikp.proxy.base import MODES as PROXIERS
from minikp.proxy.options import DETECT_LOCAL_MODES, ConntrackOptions, ProxyOptions
from minikp.proxy.release import check_release, mode_problem, parse_release
from minikp.scenario import dump, ingress, known, rules
from minikp.scenario.model import (ClientSpec, ClusterConfig, ConfigMap, Container, ContainerPort,
                                   EndpointSlice, EnvFromSource, EnvVar, Handler, NodeSpec,
                                   PodTemplate, Probe, Scenario, SecurityContext, Service, ServicePort,
                                   SliceEndpoint, Source, StoredObject, Volume, VolumeMount,
                                   Workload)
from minikp.scenario.model import DeploymentStrategy
from minikp.scenario.yamlpos import PosDict, YamlError, decode, line_of, load_documents
from minikp.workloads import capabilities

PROXY_MODES = ("iptables", "ipvs", "nftables", "userspace")
IMPLEMENTED_PROXY_MODES = tuple(PROXIERS)  # the proxy seam's factory table says which exist
RUNTIMES = ("builtin", "docker")  # Cluster spec.runtime
RESTART_POLICIES = ("Always", "OnFailure", "Never")
IPVS_SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh")
IPVS_SCHEDULER_ANNOTATION = "minikp.dev/ipvs-scheduler"  # minikp's own, for workshops
IPTABLES_BACKENDS = ("auto", "legacy", "nft")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
MAX_FILE_BYTES = 16 << 20  # 20,000 Services are about 5 MiB; kube-apiserver takes 3 MiB a request


class _Obj:
    """One object being read: where it is, so that errors can say so."""

    def __init__(self, file: str, kind: str, name: str, doc):
        self.file, self.kind, self.name, self.doc = file, kind, name, doc

    def error(self, field: str, msg: str, at=None, key=None) -> InputError:
        line = line_of(at, key) if at is not None else 0
        return InputError(msg, file=self.file, line=line or line_of(self.doc), kind=self.kind,
                          name=self.name, field=field)

    def check(self, problem: str | None, field: str, at=None, key=None) -> None:
        if problem:
            raise self.error(field, problem, at, key)

    def map(self, d, key: str, field: str) -> PosDict:
        v = d.get(key) if isinstance(d, dict) else None
        if v is None:
            return PosDict()
        if not isinstance(v, dict):
            raise self.error(field, f"must be a mapping, not {_kind_of(v)}", d, key)
        return v

    def list(self, d, key: str, field: str) -> list:
        v = d.get(key) if isinstance(d, dict) else None
        if v is None:
            return []
        if not isinstance(v, list):
            raise self.error(field, f"must be a list, not {_kind_of(v)}", d, key)
        return v

    def int(self, d, key: str, field: str, default: int, lo: int = 0, hi: int = 2**31 - 1) -> int:
        v = d.get(key, default) if isinstance(d, dict) else default
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.error(field, f"{rules.show(v, rules.REPR)}: must be an integer between {lo} and {hi}", d, key)
        return v

    def str(self, d, key: str, field: str, default: str = "") -> str:
        v = d.get(key, default) if isinstance(d, dict) else default
        if v is None:
            return default
        if not isinstance(v, str):
            raise self.error(field, f"{rules.show(v, rules.REPR)}: must be a string", d, key)
        return v

    def strings(self, d, key: str, field: str) -> list[str]:
        items = self.list(d, key, field)
        for i, v in enumerate(items):
            if not isinstance(v, str):
                raise self.error(f"{field}[{i}]", f"{rules.show(v, rules.REPR)}: must be a string", d, key)
        return items

    def port(self, p, path: str, key: str, at) -> tuple[int, str]:
        """A port entry's number (under `key`) and protocol, both checked."""
        if not isinstance(p, dict):
            raise self.error(path, f"must be a mapping with {key}", at)
        if key not in p:
            raise self.error(f"{path}.{key}", "required", p)
        self.check(rules.port_number(p[key]), f"{path}.{key}", p, key)
        proto = p.get("protocol", "TCP")
        self.check(rules.protocol(proto), f"{path}.protocol", p, "protocol")
        return p[key], proto

    def labels(self, d, key: str, field: str) -> dict[str, str]:
        m = self.map(d, key, field)
        for k, v in m.items():
            self.check(rules.label_key(k), f"{field}", m, k)
            self.check(rules.label_value(v), f"{field}.{k}", m, k)
        return dict(m)


def _kind_of(v) -> str:
    """What a YAML value is, in YAML's words (never a Python type name)."""
    for t, word in ((bool, "a boolean"), (dict, "a mapping"), (list, "a list"), (str, "a string"),
                    (int, "a number"), (float, "a number")):
        if isinstance(v, t):
            return word
    return "null" if v is None else "a scalar"


# ---- the entry point -------------------------------------------------------------------


def load_scenario(paths, *, proxy_mode: str | None = None, nodes: int | None = None,
                  cluster: ClusterConfig | None = None, kubernetes_version: str | None = None) -> Scenario:
    """Read and validate scenario files; `proxy_mode`/`nodes`/`kubernetes_version` are
    command-line overrides. `cluster`: the live cluster's, for `apply` (objects are checked
    against its nodes)."""
    scenario = Scenario(cluster=copy.deepcopy(cluster) if cluster else ClusterConfig())
    items = []
    dumps: list[dump.Dump] = []
    for path in paths:
        scenario.files.append(path)
        docs = _read(path)
        if not docs:
            raise InputError("no objects in this file: a scenario needs at least one document "
                             "with apiVersion and kind", file=path)
        for doc in docs:
            if dump.is_dump(doc):  # a real cluster's `kubectl get ... -o yaml`: dump.py
                dumps.append(dump.read_dump(doc, path))
                scenario.warnings.extend(dumps[-1].warnings)
                items += [(m, path) for m in dumps[-1].manifests]
            else:
                items += list(_expand_lists(doc, path))
    _read_cluster_first(scenario, items, kubernetes_version)
    index = _Index()
    for item, file in items:
        if item.get("kind") != "Cluster":
            kind = _checked_kind(scenario, item, file)
            if kind:
                _add_object(scenario, index, item, file, kind)
    if dumps:
        if nodes is not None:
            raise InputError(f"{nodes}: a cluster dump brings its own nodes ({dumps[0].file})",
                             field="--nodes")
        dump.apply_dump(scenario, dumps)
    _apply_overrides(scenario, path=scenario.files[0] if scenario.files else "<command line>",
                     proxy_mode=proxy_mode, nodes=nodes)
    _check_cross_references(scenario)
    _check_config_map_refs(scenario)
    return scenario


def _read_cluster_first(scenario: Scenario, items: list, kubernetes_version: str | None) -> None:
    """The Cluster document before any other, wherever it stands: its kubernetesVersion
    decides which apiVersions the other documents may use."""
    seen_cluster = None
    for item, file in items:
        if item.get("kind") != "Cluster":
            continue
        _checked_kind(scenario, item, file)
        if seen_cluster:
            raise InputError(f"a second Cluster document (the first is at {seen_cluster})",
                             file=file, line=line_of(item), kind="Cluster", name=_name_of(item))
        seen_cluster = f"{file}:{line_of(item)}"
        scenario.cluster = _cluster(item, file)
    if kubernetes_version is not None:
        try:
            scenario.cluster.kubernetes_version = check_release(kubernetes_version)
        except InputError as e:
            raise InputError(e.message, field="--kubernetes-version") from None


def _read(path: str) -> list:
    """The documents of one file; only a regular file, at most MAX_FILE_BYTES, is read (a FIFO
    would block, /dev/zero never end)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", file=path) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            what = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                    else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                    else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
            raise InputError(f"cannot read: {what}; a scenario is a regular YAML file", file=path)
        data = b""
        while len(data) <= MAX_FILE_BYTES:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            data += chunk
        if len(data) > MAX_FILE_BYTES:
            raise InputError(f"larger than {MAX_FILE_BYTES >> 20} MiB: refused", file=path)
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", file=path) from None
    finally:
        os.close(fd)
    try:
        docs = load_documents(decode(data))
    except YamlError as e:
        raise InputError(e.message, file=path, line=e.line or None) from None
    for d in docs:
        if not isinstance(d, dict):
            raise InputError(f"a document must be a mapping with apiVersion and kind, not {_kind_of(d)}",
                             file=path)
    return docs


def _expand_lists(doc, file):
    kind = doc.get("kind")
    if kind == "List" or (isinstance(kind, str) and kind.endswith("List") and "items" in doc):
        items = doc.get("items") or []
        if not isinstance(items, list):
            raise InputError(f"items: must be a list, not {_kind_of(items)}", file=file,
                             line=line_of(doc, "items"), kind=kind)
        for item in items:
            if not isinstance(item, dict):
                raise InputError("items[]: every item must be an object with apiVersion and kind",
                                 file=file, line=line_of(doc, "items"), kind=kind)
            yield from _expand_lists(item, file)
    else:
        yield doc, file


def _name_of(doc) -> str:
    meta = doc.get("metadata")
    name = meta.get("name", "") if isinstance(meta, dict) else ""
    return rules.show(name, quote="") if isinstance(name, str) else ""


def _checked_kind(scenario: Scenario, doc, file: str) -> str | None:
    """The document's kind once its apiVersion and fields are checked against known.py;
    None for a kind minikp skips (with a warning)."""
    kind = doc.get("kind")
    line = line_of(doc)
    if not isinstance(kind, str) or not kind:
        raise InputError("kind: required; every document needs apiVersion and kind", file=file,
                         line=line_of(doc, "kind"))
    api = doc.get("apiVersion", "minikp.dev/v1alpha1" if kind == "Cluster" else None)
    release = parse_release(scenario.cluster.kubernetes_version)
    problem = known.kind_problem(api, kind, release)
    if problem:  # blame apiVersion for a kind that exists elsewhere, else the kind
        blame = "apiVersion" if known.kind_exists(kind) or "apiVersion" not in doc else "kind"
        raise InputError(rules.shorten(problem), file=file, line=line_of(doc, blame) or line)
    role = known.role(api, kind)
    shown = f'{kind} "{_name_of(doc)}"'
    if role == known.UNHANDLED:
        scenario.warnings.append(f"{file}:{line}: {shown}: skipped: minikp does not handle "
                                 f"{kind}; it builds {', '.join(_BUILT)}")
        return None
    unknown = []
    known.check_fields(known.schema(api, kind), doc,
                       lambda path, d, key: unknown.append((line_of(d, key), path)),
                       lambda path, d, key: scenario.warnings.append(
                           f"{file}:{line_of(d, key)}: {shown}: {path}: not modelled by minikp; "
                           "ignored"))
    if unknown:
        at, path = min(unknown)
        raise InputError(f'unknown field "{rules.show(path, quote="")}"', file=file,
                         line=at or line, kind=kind, name=_name_of(doc))
    if role == known.STORED and kind in known.STORED_NOTE:
        scenario.warnings.append(f"{file}:{line}: {shown}: {known.STORED_NOTE[kind]}")
    return kind


_BUILT = ("Deployment", "ReplicaSet", "Pod", "Service", "Namespace", "Endpoints", "EndpointSlice")
_CLUSTER_SCOPED = ("Namespace", "ClusterRole", "ClusterRoleBinding", "IngressClass")


class _Index:
    """(kind, namespace, name) -> where it was defined: duplicates found in O(1)."""

    def __init__(self):
        self.seen: dict = {}

    def claim(self, obj: "_Obj", kind: str, namespace: str, name: str) -> None:
        key = (kind, namespace, name)
        if key in self.seen:
            raise obj.error("metadata.name", f"already defined at {self.seen[key]}",
                            obj.doc.get("metadata"), "name")
        self.seen[key] = f"{obj.file}:{line_of(obj.doc)}"


def _add_object(scenario: Scenario, index: _Index, doc, file: str, kind: str) -> None:
    obj = _Obj(file, kind, _name_of(doc), doc)
    meta = obj.map(doc, "metadata", "metadata")
    name = obj.str(meta, "name", "metadata.name")
    if not name:
        raise obj.error("metadata.name", "required", meta or doc, "name")
    check_name = rules.dns1035_label if kind == "Service" else (
        rules.dns1123_label if kind == "Namespace" else rules.dns1123_subdomain)
    obj.check(check_name(name), "metadata.name", meta, "name")
    namespace = obj.str(meta, "namespace", "metadata.namespace", "default")
    obj.check(rules.dns1123_label(namespace), "metadata.namespace", meta, "namespace")
    source = Source(file, line_of(doc))
    if kind in _CLUSTER_SCOPED:
        namespace = ""
    else:
        _add_namespace(scenario, namespace)
    if kind not in ("Endpoints", "EndpointSlice"):  # these replace each other, as before
        index.claim(obj, kind, namespace, name)
    if kind == "Namespace":
        _add_namespace(scenario, name)
    elif kind == "Service":
        scenario.services.append(_service(obj, doc, namespace, name, source))
    elif kind in ("Deployment", "ReplicaSet", "Pod"):
        scenario.workloads.append(_workload(obj, doc, kind, namespace, name, source))
    elif kind == "Endpoints":
        scenario.endpoint_slices.append(_endpoints(obj, doc, namespace, name, source))
    elif kind == "EndpointSlice":
        scenario.endpoint_slices.append(_endpoint_slice(obj, doc, namespace, name, source))
    else:
        if kind in ("Ingress", "IngressClass") and doc["apiVersion"] != ingress.CURRENT_API:
            doc = ingress.to_v1(obj, doc)  # stored and served as networking.k8s.io/v1
        scenario.stored.append(StoredObject(doc["apiVersion"], kind, namespace, name, doc, source,
                                            _stored_model(obj, doc, kind, namespace, name)))
        if kind == "ConfigMap":  # what envFrom / configMapKeyRef read
            data = doc.get("data") or {}
            scenario.config_maps.append(ConfigMap(namespace, name, {str(k): str(v) for k, v in (
                data.items() if isinstance(data, dict) else ())}, source))


def _stored_model(obj: _Obj, doc, kind: str, namespace: str, name: str):
    """What the ingress controller reads of an Ingress, IngressClass or TLS Secret."""
    if kind == "Ingress":
        return ingress.parse_ingress(obj, doc, namespace, name)
    if kind == "IngressClass":
        return ingress.parse_ingress_class(obj, doc, name)
    if kind == "Secret":
        return ingress.parse_tls_secret(obj, doc, namespace, name)
    return None


def _add_namespace(scenario: Scenario, ns: str) -> None:
    if ns not in scenario.namespaces:
        scenario.namespaces.append(ns)


# ---- workloads ---------------------------------------------------------------------------


def _workload(obj: _Obj, doc, kind: str, namespace: str, name: str, source: Source) -> Workload:
    meta = obj.map(doc, "metadata", "metadata")
    spec = obj.map(doc, "spec", "spec")
    if kind == "Pod":
        labels = obj.labels(meta, "labels", "metadata.labels")
        annotations = {k: str(v) for k, v in obj.map(meta, "annotations", "metadata.annotations").items()}
        _check_runtime(obj, annotations, "metadata.annotations", meta)
        template = _pod_spec(obj, spec, "spec", labels, annotations)
        return Workload("Pod", namespace, name, template, 1, labels, source)
    replicas = obj.int(spec, "replicas", "spec.replicas", 1, 0, 100000)
    sel = obj.map(spec, "selector", "spec.selector")
    if not sel:
        raise obj.error("spec.selector", "required (apps/v1): e.g. {matchLabels: {app: NAME}}", spec)
    if sel.get("matchExpressions"):
        raise obj.error("spec.selector.matchExpressions", "not supported; use matchLabels", sel,
                        "matchExpressions")
    selector = obj.labels(sel, "matchLabels", "spec.selector.matchLabels")
    if not selector:
        raise obj.error("spec.selector.matchLabels", "required: the labels of the pods to manage", sel)
    tmpl = obj.map(spec, "template", "spec.template")
    tmeta = obj.map(tmpl, "metadata", "spec.template.metadata")
    labels = obj.labels(tmeta, "labels", "spec.template.metadata.labels")
    for k, v in selector.items():
        if labels.get(k) != v:
            raise obj.error("spec.template.metadata.labels",
                            f"`selector` does not match template `labels`: {k}={v} is missing",
                            tmeta or tmpl, "labels")
    annotations = {k: str(v) for k, v in obj.map(tmeta, "annotations", "spec.template.metadata.annotations").items()}
    _check_runtime(obj, annotations, "spec.template.metadata.annotations", tmeta)
    template = _pod_spec(obj, obj.map(tmpl, "spec", "spec.template.spec"), "spec.template.spec",
                         labels, annotations)
    w = Workload(kind, namespace, name, template, replicas, selector, source)
    if kind == "Deployment":
        w.strategy = _strategy(obj, spec)
    return w


STRATEGY_TYPES = ("Recreate", "RollingUpdate")


def _strategy(obj: _Obj, spec) -> DeploymentStrategy:
    """spec.strategy of a Deployment, checked as the API server does."""
    st = obj.map(spec, "strategy", "spec.strategy")
    kind = obj.str(st, "type", "spec.strategy.type", "RollingUpdate")
    if kind not in STRATEGY_TYPES:
        raise obj.error("spec.strategy.type", f'Unsupported value: "{kind}": supported values: '
                        + ", ".join(f'"{t}"' for t in STRATEGY_TYPES), st, "type")
    ru = st.get("rollingUpdate")
    if kind == "Recreate":
        if ru is not None:
            raise obj.error("spec.strategy.rollingUpdate",
                            "may not be specified when strategy `type` is 'Recreate'", st,
                            "rollingUpdate")
        return DeploymentStrategy("Recreate")
    ru = obj.map(st, "rollingUpdate", "spec.strategy.rollingUpdate")
    path = "spec.strategy.rollingUpdate"
    surge = _int_or_percent(obj, ru, "maxSurge", f"{path}.maxSurge")
    unavailable = _int_or_percent(obj, ru, "maxUnavailable", f"{path}.maxUnavailable")
    if isinstance(unavailable, str) and int(unavailable[:-1]) > 100:
        raise obj.error(f"{path}.maxUnavailable", f'"{unavailable}": must not be greater than '
                        "100%", ru, "maxUnavailable")
    if str(surge).rstrip("%") == "0" and str(unavailable).rstrip("%") == "0":
        raise obj.error(f"{path}.maxUnavailable", "may not be 0 when `maxSurge` is 0", ru,
                        "maxUnavailable")
    return DeploymentStrategy("RollingUpdate", surge, unavailable)


def _int_or_percent(obj: _Obj, d, key: str, field: str) -> int | str:
    """An IntOrString budget: an integer >= 0 or "N%" (default 25%)."""
    v = d.get(key, "25%")
    if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
        return v
    if isinstance(v, str) and v.endswith("%") and v[:-1].isdigit() and v[:-1].isascii():
        return f"{int(v[:-1])}%"
    raise obj.error(field, f"{v!r}: must be an integer >= 0 or a percentage (e.g. '25%')", d, key)


def _check_runtime(obj: _Obj, annotations: dict, path: str, meta) -> None:
    """minikp.dev/runtime names a pod runtime (workloads/runtime.py RUNTIMES and the
    per-cluster CLUSTER_RUNTIMES: docker)."""
    from minikp.workloads.runtime import CLUSTER_RUNTIMES, RUNTIME_ANNOTATION, RUNTIMES

    named, valid = annotations.get(RUNTIME_ANNOTATION), (*RUNTIMES, *CLUSTER_RUNTIMES)
    if named is not None and named not in valid:
        raise obj.error(f"{path}.{RUNTIME_ANNOTATION}", f'"{named}" is not a pod runtime; valid: '
                        + ", ".join(valid), meta.get("annotations"), RUNTIME_ANNOTATION)


def _pod_spec(obj: _Obj, spec, path: str, labels: dict, annotations: dict) -> PodTemplate:
    containers = obj.list(spec, "containers", f"{path}.containers")
    if not containers:
        raise obj.error(f"{path}.containers", "required: at least one container", spec, "containers")
    out, names, port_names = [], set(), set()
    for i, c in enumerate(containers):
        cpath = f"{path}.containers[{i}]"
        if not isinstance(c, dict):
            raise obj.error(cpath, "must be a mapping with name and image", spec, "containers")
        cname = obj.str(c, "name", f"{cpath}.name")
        obj.check(rules.dns1123_label(cname) if cname else "required", f"{cpath}.name", c, "name")
        if cname in names:
            raise obj.error(f"{cpath}.name", f'"{cname}": duplicate container name', c, "name")
        names.add(cname)
        ports = []
        for j, p in enumerate(obj.list(c, "ports", f"{cpath}.ports")):
            ppath = f"{cpath}.ports[{j}]"
            number, proto = obj.port(p, ppath, "containerPort", c)
            pname = obj.str(p, "name", f"{ppath}.name")
            if pname:
                obj.check(rules.port_name(pname), f"{ppath}.name", p, "name")
                if pname in port_names:
                    raise obj.error(f"{ppath}.name", f'"{pname}": duplicate port name in this pod', p, "name")
                port_names.add(pname)
            ports.append(ContainerPort(number, proto, pname))
        command = obj.strings(c, "command", f"{cpath}.command") or None
        args = obj.strings(c, "args", f"{cpath}.args") or None
        probe = _probe(obj, c, f"{cpath}.readinessProbe")
        container = Container(cname, obj.str(c, "image", f"{cpath}.image"), ports, command, args, probe)
        container.pre_stop = _pre_stop(obj, c, f"{cpath}.lifecycle")
        _container_sandbox(obj, c, cpath, container)
        out.append(container)
    hostname = obj.str(spec, "hostname", f"{path}.hostname")
    if hostname:
        obj.check(rules.dns1123_label(hostname), f"{path}.hostname", spec, "hostname")
    subdomain = obj.str(spec, "subdomain", f"{path}.subdomain")
    if subdomain:
        obj.check(rules.dns1123_label(subdomain), f"{path}.subdomain", spec, "subdomain")
    node_name = obj.str(spec, "nodeName", f"{path}.nodeName")
    node_selector = {k: str(v) for k, v in obj.map(spec, "nodeSelector", f"{path}.nodeSelector").items()}
    template = PodTemplate(labels, annotations, out, hostname, subdomain, node_name, node_selector)
    template.restart_policy = obj.str(spec, "restartPolicy", f"{path}.restartPolicy", "Always")
    obj.check(rules.one_of(template.restart_policy, RESTART_POLICIES), f"{path}.restartPolicy",
              spec, "restartPolicy")
    template.termination_grace_period_seconds = obj.int(
        spec, "terminationGracePeriodSeconds", f"{path}.terminationGracePeriodSeconds", 30)
    template.host_network = bool(_opt_bool(obj, spec, "hostNetwork", f"{path}.hostNetwork"))
    _pod_sandbox(obj, spec, path, template)
    return template


def _probe(obj: _Obj, c, path: str) -> Probe | None:
    p = obj.map(c, "readinessProbe", path)
    if not p:
        return None
    probe = Probe(initial_delay_seconds=obj.int(p, "initialDelaySeconds", f"{path}.initialDelaySeconds", 0),
                  period_seconds=obj.int(p, "periodSeconds", f"{path}.periodSeconds", 10, 1),
                  timeout_seconds=obj.int(p, "timeoutSeconds", f"{path}.timeoutSeconds", 1, 1),
                  success_threshold=obj.int(p, "successThreshold", f"{path}.successThreshold", 1, 1),
                  failure_threshold=obj.int(p, "failureThreshold", f"{path}.failureThreshold", 3, 1))
    handlers = [k for k in ("httpGet", "tcpSocket", "exec") if k in p]
    if len(handlers) != 1:
        raise obj.error(path, "must have exactly one of httpGet, tcpSocket, exec", c, "readinessProbe")
    h = obj.map(p, handlers[0], f"{path}.{handlers[0]}")
    if handlers[0] == "exec":
        probe.exec_command = obj.strings(h, "command", f"{path}.exec.command")
        if not probe.exec_command:
            raise obj.error(f"{path}.exec.command", "required", h)
        return probe
    port = h.get("port")
    ppath = f"{path}.{handlers[0]}.port"
    obj.check(rules.port_name(port) if isinstance(port, str) else rules.port_number(port), ppath, h, "port")
    if handlers[0] == "httpGet":
        probe.http_get = (obj.str(h, "path", f"{path}.httpGet.path", "/"), port)
    else:
        probe.tcp_socket = port
    return probe


def _pre_stop(obj: _Obj, c, path: str) -> Handler | None:
    """lifecycle.preStop: exactly one of exec, httpGet, sleep (the kubelet's handlers)."""
    h = obj.map(obj.map(c, "lifecycle", path), "preStop", f"{path}.preStop")
    if not h:
        return None
    path = f"{path}.preStop"
    kinds = [k for k in ("exec", "httpGet", "sleep") if k in h]
    if len(kinds) != 1:
        raise obj.error(path, "must have exactly one of exec, httpGet, sleep", h)
    d = obj.map(h, kinds[0], f"{path}.{kinds[0]}")
    if kinds[0] == "exec":
        command = obj.strings(d, "command", f"{path}.exec.command")
        if not command:
            raise obj.error(f"{path}.exec.command", "required", d)
        return Handler(exec_command=command)
    if kinds[0] == "sleep":
        if "seconds" not in d:
            raise obj.error(f"{path}.sleep.seconds", "required", d)
        return Handler(sleep_seconds=obj.int(d, "seconds", f"{path}.sleep.seconds", 0))
    port = d.get("port")
    obj.check(rules.port_name(port) if isinstance(port, str) else rules.port_number(port),
              f"{path}.httpGet.port", d, "port")
    return Handler(http_get=(obj.str(d, "path", f"{path}.httpGet.path", "/"), port))


# ---- the pod sandbox: securityContext, volumes, env -------------------------------------


HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                   "CharDevice", "BlockDevice")
FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
               "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP",
               "status.podIPs")


def _pod_sandbox(obj: _Obj, spec, path: str, template: PodTemplate) -> None:
    """The pod-level fields the sandbox honours: securityContext (runAsUser/Group), volumes,
    enableServiceLinks; and that every container's volumeMounts name a declared volume."""
    template.security_context = _security_context(obj, spec, f"{path}.securityContext", pod=True)
    template.volumes = _volumes(obj, spec, f"{path}.volumes")
    links = spec.get("enableServiceLinks", True) if isinstance(spec, dict) else True
    if not isinstance(links, bool):
        raise obj.error(f"{path}.enableServiceLinks", f"{links!r}: must be true or false", spec,
                        "enableServiceLinks")
    template.enable_service_links = links
    declared = {v.name for v in template.volumes}
    containers = obj.list(spec, "containers", f"{path}.containers")
    for i, c in enumerate(template.containers):
        for j, m in enumerate(c.volume_mounts):
            if m.name not in declared:
                raise obj.error(f"{path}.containers[{i}].volumeMounts[{j}].name",
                                f'"{m.name}": not found in {path}.volumes; declared: '
                                f'{", ".join(sorted(declared)) or "none"}', containers[i], "volumeMounts")


def _opt_bool(obj: _Obj, d, key: str, field: str) -> bool | None:
    v = d.get(key) if isinstance(d, dict) else None
    if v is not None and not isinstance(v, bool):
        raise obj.error(field, f"{v!r}: must be true or false", d, key)
    return v


def _security_context(obj: _Obj, d, path: str, pod: bool) -> SecurityContext:
    sc = obj.map(d, "securityContext", path)
    out = SecurityContext(
        run_as_user=obj.int(sc, "runAsUser", f"{path}.runAsUser", None),
        run_as_group=obj.int(sc, "runAsGroup", f"{path}.runAsGroup", None))
    if pod:
        return out
    out.privileged = _opt_bool(obj, sc, "privileged", f"{path}.privileged")
    if out.privileged:
        out.privileged_at = Source(obj.file, line_of(sc, "privileged"))
    out.read_only_root_filesystem = _opt_bool(obj, sc, "readOnlyRootFilesystem",
                                              f"{path}.readOnlyRootFilesystem")
    out.allow_privilege_escalation = _opt_bool(obj, sc, "allowPrivilegeEscalation",
                                               f"{path}.allowPrivilegeEscalation")
    if out.privileged and out.allow_privilege_escalation is False:
        raise obj.error(f"{path}.allowPrivilegeEscalation",
                        "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
                        sc, "allowPrivilegeEscalation")
    caps = obj.map(sc, "capabilities", f"{path}.capabilities")
    for key in ("add", "drop"):
        names = obj.strings(caps, key, f"{path}.capabilities.{key}")
        for k, n in enumerate(names):
            if capabilities.normalize(n) is None:
                raise obj.error(f"{path}.capabilities.{key}[{k}]", f'"{n}": not a Linux capability; '
                                "e.g. NET_ADMIN, SYS_TIME, or ALL", caps, key)
        setattr(out, f"capabilities_{key}", list(names))
    return out


def _volumes(obj: _Obj, spec, path: str) -> list[Volume]:
    out = []
    for i, v in enumerate(obj.list(spec, "volumes", path)):
        vpath = f"{path}[{i}]"
        if not isinstance(v, dict):
            raise obj.error(vpath, "must be a mapping with name and a volume source", spec, "volumes")
        name = obj.str(v, "name", f"{vpath}.name")
        obj.check(rules.dns1123_label(name) if name else "required", f"{vpath}.name", v, "name")
        if any(o.name == name for o in out):
            raise obj.error(f"{vpath}.name", f'"{name}": duplicate volume name', v, "name")
        sources = [k for k in v if k != "name"]
        if sources == ["emptyDir"]:
            ed = obj.map(v, "emptyDir", f"{vpath}.emptyDir")
            medium = obj.str(ed, "medium", f"{vpath}.emptyDir.medium")
            obj.check(rules.one_of(medium, ("", "Memory")), f"{vpath}.emptyDir.medium", ed, "medium")
            out.append(Volume(name, "emptyDir", medium=medium))
        elif sources == ["hostPath"]:
            hp = obj.map(v, "hostPath", f"{vpath}.hostPath")
            hpath = obj.str(hp, "path", f"{vpath}.hostPath.path")
            if not hpath.startswith("/"):
                raise obj.error(f"{vpath}.hostPath.path", f'"{hpath}": must be an absolute path',
                                hp or v, "path")
            htype = obj.str(hp, "type", f"{vpath}.hostPath.type")
            obj.check(rules.one_of(htype, HOST_PATH_TYPES), f"{vpath}.hostPath.type", hp, "type")
            out.append(Volume(name, "hostPath", path=hpath, host_path_type=htype))
        else:
            raise obj.error(vpath, f"{', '.join(sources) or 'no volume source'}: minikp supports "
                            "exactly one of emptyDir, hostPath", v)
    return out


def _container_sandbox(obj: _Obj, c, cpath: str, container: Container) -> None:
    """The container fields the sandbox honours: securityContext, volumeMounts, env, envFrom."""
    container.security_context = _security_context(obj, c, f"{cpath}.securityContext", pod=False)
    for j, m in enumerate(obj.list(c, "volumeMounts", f"{cpath}.volumeMounts")):
        mpath = f"{cpath}.volumeMounts[{j}]"
        if not isinstance(m, dict):
            raise obj.error(mpath, "must be a mapping with name and mountPath", c, "volumeMounts")
        mount = VolumeMount(obj.str(m, "name", f"{mpath}.name"), obj.str(m, "mountPath", f"{mpath}.mountPath"),
                            bool(_opt_bool(obj, m, "readOnly", f"{mpath}.readOnly")),
                            obj.str(m, "subPath", f"{mpath}.subPath"))
        if not mount.name:
            raise obj.error(f"{mpath}.name", "required", m)
        if not mount.mount_path.startswith("/"):
            raise obj.error(f"{mpath}.mountPath", f'"{mount.mount_path}": must be an absolute path', m,
                            "mountPath")
        if mount.sub_path.startswith("/") or ".." in mount.sub_path.split("/"):
            raise obj.error(f"{mpath}.subPath", f'"{mount.sub_path}": must be a relative path '
                            "without '..'", m, "subPath")
        if any(o.mount_path.rstrip("/") == mount.mount_path.rstrip("/") for o in container.volume_mounts):
            raise obj.error(f"{mpath}.mountPath", f'"{mount.mount_path}": must be unique', m, "mountPath")
        container.volume_mounts.append(mount)
    container.env = _env(obj, c, f"{cpath}.env")
    for j, e in enumerate(obj.list(c, "envFrom", f"{cpath}.envFrom")):
        epath = f"{cpath}.envFrom[{j}]"
        if not isinstance(e, dict) or "configMapRef" not in e:
            raise obj.error(epath, "minikp supports configMapRef (secretRef: Secrets are not loaded)",
                            c, "envFrom")
        ref = obj.map(e, "configMapRef", f"{epath}.configMapRef")
        name = obj.str(ref, "name", f"{epath}.configMapRef.name")
        if not name:
            raise obj.error(f"{epath}.configMapRef.name", "required", ref or e)
        container.env_from.append(EnvFromSource(name, obj.str(e, "prefix", f"{epath}.prefix"),
                                                bool(_opt_bool(obj, ref, "optional",
                                                               f"{epath}.configMapRef.optional"))))


def _env(obj: _Obj, c, path: str) -> list[EnvVar]:
    out = []
    for j, e in enumerate(obj.list(c, "env", path)):
        epath = f"{path}[{j}]"
        if not isinstance(e, dict):
            raise obj.error(epath, "must be a mapping with name and value or valueFrom", c, "env")
        name = obj.str(e, "name", f"{epath}.name")
        if not name or "=" in name:
            raise obj.error(f"{epath}.name", f'"{name}": a variable name (no "=") is required', e, "name")
        if "value" in e and not isinstance(e["value"], str):
            raise obj.error(f"{epath}.value", f"{e['value']!r}: must be a string (quote it)", e, "value")
        var = EnvVar(name, obj.str(e, "value", f"{epath}.value"))
        vf = obj.map(e, "valueFrom", f"{epath}.valueFrom")
        if vf and "value" in e:
            raise obj.error(f"{epath}.valueFrom", "may not be specified when `value` is not empty", e,
                            "valueFrom")
        if vf:
            if list(vf) == ["fieldRef"]:
                fr = obj.map(vf, "fieldRef", f"{epath}.valueFrom.fieldRef")
                var.field_path = obj.str(fr, "fieldPath", f"{epath}.valueFrom.fieldRef.fieldPath")
                labelled = var.field_path.startswith(("metadata.labels['", "metadata.annotations['")) \
                    and var.field_path.endswith("']")
                if var.field_path not in FIELD_PATHS and not labelled:
                    raise obj.error(f"{epath}.valueFrom.fieldRef.fieldPath", f'"{var.field_path}": '
                                    f"supported: {', '.join(FIELD_PATHS)}, metadata.labels['KEY'], "
                                    "metadata.annotations['KEY']", fr or vf, "fieldPath")
            elif list(vf) == ["configMapKeyRef"]:
                ref = obj.map(vf, "configMapKeyRef", f"{epath}.valueFrom.configMapKeyRef")
                var.config_map = obj.str(ref, "name", f"{epath}.valueFrom.configMapKeyRef.name")
                var.config_map_key = obj.str(ref, "key", f"{epath}.valueFrom.configMapKeyRef.key")
                var.optional = bool(_opt_bool(obj, ref, "optional",
                                              f"{epath}.valueFrom.configMapKeyRef.optional"))
                if not var.config_map or not var.config_map_key:
                    raise obj.error(f"{epath}.valueFrom.configMapKeyRef", "name and key are required",
                                    vf, "configMapKeyRef")
            else:
                raise obj.error(f"{epath}.valueFrom", f"{', '.join(vf)}: minikp supports exactly one "
                                "of fieldRef, configMapKeyRef", e, "valueFrom")
        out.append(var)
    return out


def _check_config_map_refs(scenario: Scenario) -> None:
    """envFrom and configMapKeyRef name ConfigMaps of the pod's namespace (unless optional),
    as the kubelet requires before it starts the container. Scenario.config_maps is empty
    until the loader reads ConfigMap documents."""
    maps = {(m.namespace, m.name): m.data for m in scenario.config_maps}
    for w in scenario.workloads:
        path = "spec" if w.kind == "Pod" else "spec.template.spec"
        for i, c in enumerate(w.template.containers):
            refs = [(f"envFrom[{j}].configMapRef", e.config_map, None, e.optional)
                    for j, e in enumerate(c.env_from)]
            refs += [(f"env[{j}].valueFrom.configMapKeyRef", e.config_map, e.config_map_key, e.optional)
                     for j, e in enumerate(c.env) if e.config_map]
            for field, cm, key, optional in refs:
                data = maps.get((w.namespace, cm))
                problem = (f'ConfigMap "{cm}" not found in namespace "{w.namespace}" (minikp '
                           "does not load ConfigMaps yet; mark the reference optional: true)"
                           if data is None
                           else f'ConfigMap "{cm}" has no key "{key}"' if key and key not in data
                           else "")
                if problem and not optional:
                    raise InputError(problem, file=w.source.file, line=w.source.line, kind=w.kind,
                                     name=w.name, field=f"{path}.containers[{i}].{field}")


# ---- services ----------------------------------------------------------------------------


def _service(obj: _Obj, doc, namespace: str, name: str, source: Source) -> Service:
    meta = obj.map(doc, "metadata", "metadata")
    spec = obj.map(doc, "spec", "spec")
    stype = obj.str(spec, "type", "spec.type", "ClusterIP")
    obj.check(rules.one_of(stype, SERVICE_TYPES), "spec.type", spec, "type")
    svc = Service(namespace, name, stype, labels=obj.labels(meta, "labels", "metadata.labels"),
                  source=source)
    if "selector" in spec and spec["selector"] is not None:
        svc.selector = obj.labels(spec, "selector", "spec.selector")
    if stype == "ExternalName":
        svc.external_name = obj.str(spec, "externalName", "spec.externalName")
        if not svc.external_name:
            raise obj.error("spec.externalName", "required for type ExternalName", spec)
        obj.check(rules.dns_name(svc.external_name), "spec.externalName", spec, "externalName")
    svc.cluster_ip = obj.str(spec, "clusterIP", "spec.clusterIP")
    if svc.cluster_ip and svc.cluster_ip != "None":
        obj.check(rules.ipv4(svc.cluster_ip), "spec.clusterIP", spec, "clusterIP")
    if svc.headless and stype in ("NodePort", "LoadBalancer"):
        raise obj.error("spec.clusterIP", f'may not be "None" for type {stype}', spec, "clusterIP")
    svc.ports = _service_ports(obj, spec, stype)
    if not svc.ports and stype != "ExternalName" and not svc.headless:
        raise obj.error("spec.ports", "required: at least one port", spec)
    for i, ip in enumerate(obj.strings(spec, "externalIPs", "spec.externalIPs")):
        obj.check(rules.ipv4(ip), f"spec.externalIPs[{i}]", spec, "externalIPs")
        svc.external_ips.append(ip)
    svc.load_balancer_ip = obj.str(spec, "loadBalancerIP", "spec.loadBalancerIP")
    if svc.load_balancer_ip:
        obj.check(rules.ipv4(svc.load_balancer_ip), "spec.loadBalancerIP", spec, "loadBalancerIP")
    for i, r in enumerate(obj.strings(spec, "loadBalancerSourceRanges", "spec.loadBalancerSourceRanges")):
        r = r.strip()
        if rules.ipv4(r) is None:
            r += "/32"
        try:
            ipaddress.IPv4Network(r, strict=False)
        except ValueError:
            raise obj.error(f"spec.loadBalancerSourceRanges[{i}]",
                            f'{rules.show(r)}: must be an IPv4 CIDR such as 172.18.100.0/24', spec,
                            "loadBalancerSourceRanges") from None
        svc.load_balancer_source_ranges.append(r)
    for key, attr in (("externalTrafficPolicy", "external_traffic_policy"),
                      ("internalTrafficPolicy", "internal_traffic_policy")):
        v = obj.str(spec, key, f"spec.{key}", "Cluster")
        obj.check(rules.one_of(v, ("Cluster", "Local")), f"spec.{key}", spec, key)
        setattr(svc, attr, v)
    if svc.external_traffic_policy == "Local" and stype not in ("NodePort", "LoadBalancer"):
        raise obj.error("spec.externalTrafficPolicy",
                        "may only be set on NodePort and LoadBalancer services", spec,
                        "externalTrafficPolicy")
    svc.session_affinity = obj.str(spec, "sessionAffinity", "spec.sessionAffinity", "None")
    obj.check(rules.one_of(svc.session_affinity, ("None", "ClientIP")), "spec.sessionAffinity",
              spec, "sessionAffinity")
    sac = obj.map(obj.map(spec, "sessionAffinityConfig", "spec.sessionAffinityConfig"),
                  "clientIP", "spec.sessionAffinityConfig.clientIP")
    svc.session_affinity_timeout = obj.int(sac, "timeoutSeconds",
                                           "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                                           10800, 1, 86400)
    svc.health_check_node_port = obj.int(spec, "healthCheckNodePort", "spec.healthCheckNodePort", 0,
                                         0, rules.NODE_PORT_RANGE[1])
    svc.publish_not_ready_addresses = bool(spec.get("publishNotReadyAddresses", False))
    annotations = obj.map(meta, "annotations", "metadata.annotations")
    if IPVS_SCHEDULER_ANNOTATION in annotations:
        svc.ipvs_scheduler = str(annotations[IPVS_SCHEDULER_ANNOTATION])
        obj.check(rules.one_of(svc.ipvs_scheduler, IPVS_SCHEDULERS),
                  f"metadata.annotations.{IPVS_SCHEDULER_ANNOTATION}", annotations, IPVS_SCHEDULER_ANNOTATION)
    return svc


def _service_ports(obj: _Obj, spec, stype: str) -> list[ServicePort]:
    out, names = [], set()
    items = obj.list(spec, "ports", "spec.ports")
    for i, p in enumerate(items):
        path = f"spec.ports[{i}]"
        number, proto = obj.port(p, path, "port", spec)
        pname = obj.str(p, "name", f"{path}.name")
        if pname:
            obj.check(rules.dns1123_label(pname), f"{path}.name", p, "name")
        elif len(items) > 1:
            raise obj.error(f"{path}.name", "required when a Service has more than one port", p)
        if pname in names:
            raise obj.error(f"{path}.name", f'"{pname}": duplicate port name', p, "name")
        names.add(pname)
        target = p.get("targetPort", 0)
        if isinstance(target, str) and target.isdigit():
            target = int(target)
        if isinstance(target, str):
            obj.check(rules.port_name(target), f"{path}.targetPort", p, "targetPort")
        elif target != 0:
            obj.check(rules.port_number(target), f"{path}.targetPort", p, "targetPort")
        node_port = obj.int(p, "nodePort", f"{path}.nodePort", 0)
        if node_port:
            lo, hi = rules.NODE_PORT_RANGE
            if not lo <= node_port <= hi:
                raise obj.error(f"{path}.nodePort", f"{node_port}: provided port is not in the "
                                f"valid range. The range of valid ports is {lo}-{hi}", p, "nodePort")
            if stype not in ("NodePort", "LoadBalancer"):
                raise obj.error(f"{path}.nodePort", f"may not be used when `type` is '{stype}'", p, "nodePort")
        out.append(ServicePort(number, proto, pname, target, node_port,
                               obj.str(p, "appProtocol", f"{path}.appProtocol")))
    seen = {}
    for i, sp in enumerate(out):
        if (sp.port, sp.protocol) in seen:
            raise obj.error(f"spec.ports[{i}]", f"{sp.port}/{sp.protocol}: duplicate of "
                            f"spec.ports[{seen[(sp.port, sp.protocol)]}]", items[i])
        seen[(sp.port, sp.protocol)] = i
    return out


# ---- endpoints -----------------------------------------------------------------------------


def _endpoints(obj: _Obj, doc, namespace: str, name: str, source: Source) -> EndpointSlice:
    """A v1 Endpoints object as the EndpointSlice the mirroring controller would make."""
    subsets = obj.list(doc, "subsets", "subsets")
    if len(subsets) > 1:
        raise obj.error("subsets", "only one subset is supported; use an EndpointSlice", doc, "subsets")
    s = subsets[0] if subsets else PosDict()
    endpoints = []
    for key, ready in (("addresses", True), ("notReadyAddresses", False)):
        for i, a in enumerate(obj.list(s, key, f"subsets[0].{key}")):
            ip = obj.str(a, "ip", f"subsets[0].{key}[{i}].ip")
            obj.check(rules.ipv4(ip), f"subsets[0].{key}[{i}].ip", a, "ip")
            endpoints.append(SliceEndpoint([ip], ready, ready, False,
                                           obj.str(a, "hostname", f"subsets[0].{key}[{i}].hostname"),
                                           obj.str(a, "nodeName", f"subsets[0].{key}[{i}].nodeName")))
    ports = _slice_ports(obj, s, "subsets[0].ports")
    return EndpointSlice(namespace, name, name, ports, endpoints, source)


def _endpoint_slice(obj: _Obj, doc, namespace: str, name: str, source: Source) -> EndpointSlice:
    meta = obj.map(doc, "metadata", "metadata")
    labels = obj.labels(meta, "labels", "metadata.labels")
    service = labels.get("kubernetes.io/service-name", "")
    if not service:
        raise obj.error("metadata.labels", 'needs "kubernetes.io/service-name": the Service it '
                        "belongs to", meta, "labels")
    atype = obj.str(doc, "addressType", "addressType", "IPv4")
    obj.check(rules.one_of(atype, ("IPv4",)), "addressType", doc, "addressType")
    endpoints = []
    for i, e in enumerate(obj.list(doc, "endpoints", "endpoints")):
        path = f"endpoints[{i}]"
        addrs = obj.strings(e, "addresses", f"{path}.addresses")
        if not addrs:
            raise obj.error(f"{path}.addresses", "required: at least one address", e)
        for j, ip in enumerate(addrs):
            obj.check(rules.ipv4(ip), f"{path}.addresses[{j}]", e, "addresses")
        cond = obj.map(e, "conditions", f"{path}.conditions")
        ready = cond.get("ready", True) is not False
        serving = cond.get("serving", ready) is not False
        terminating = bool(cond.get("terminating", False))
        endpoints.append(SliceEndpoint(addrs, ready, serving, terminating,
                                       obj.str(e, "hostname", f"{path}.hostname"),
                                       obj.str(e, "nodeName", f"{path}.nodeName"),
                                       obj.str(e, "zone", f"{path}.zone")))
    return EndpointSlice(namespace, name, service, _slice_ports(obj, doc, "ports"), endpoints, source)


def _slice_ports(obj: _Obj, d, path: str) -> list[ContainerPort]:
    out = []
    for i, p in enumerate(obj.list(d, path.rsplit(".", 1)[-1], path)):
        ppath = f"{path}[{i}]"
        number, proto = obj.port(p, ppath, "port", d)
        out.append(ContainerPort(number, proto, obj.str(p, "name", f"{ppath}.name")))
    return out


# ---- the Cluster document -------------------------------------------------------------------


def _cluster(doc, file: str) -> ClusterConfig:
    obj = _Obj(file, "Cluster", _name_of(doc) or "minikp", doc)
    api = doc.get("apiVersion", "minikp.dev/v1alpha1")
    obj.check(rules.one_of(api, ("minikp.dev/v1alpha1",)), "apiVersion", doc, "apiVersion")
    c = ClusterConfig(source=Source(file, line_of(doc)))
    if _name_of(doc):
        obj.check(rules.dns1123_label(_name_of(doc)), "metadata.name", doc.get("metadata"), "name")
        c.name = _name_of(doc)
    spec = obj.map(doc, "spec", "spec")
    nodes = spec.get("nodes", 1)
    if isinstance(nodes, int) and not isinstance(nodes, bool):
        if not 1 <= nodes <= 250:
            raise obj.error("spec.nodes", f"{nodes}: must be between 1 and 250", spec, "nodes")
        c.nodes = [NodeSpec(f"node-{i}") for i in range(1, nodes + 1)]
    elif isinstance(nodes, list) and nodes:
        c.nodes = [NodeSpec(name, obj.labels(n, "labels", f"{path}.labels"))
                   for path, n, name in _named_items(obj, spec, "nodes", "{name, labels}")]
    else:
        raise obj.error("spec.nodes", f"{rules.show(nodes, rules.REPR)}: a number of nodes (1-250) or a list of "
                        "{name, labels}", spec, "nodes")
    c.runtime = obj.str(spec, "runtime", "spec.runtime", "builtin")
    obj.check(rules.one_of(c.runtime, RUNTIMES), "spec.runtime", spec, "runtime")
    if "kubernetesVersion" in spec:
        version = spec["kubernetesVersion"]
        if not isinstance(version, str):  # YAML reads 1.10 as the number 1.1
            raise obj.error("spec.kubernetesVersion", f"{rules.show(version, rules.REPR)}: must be a "
                            'string: quote it, e.g. "1.10" (unquoted, YAML reads 1.10 as 1.1)',
                            spec, "kubernetesVersion")
        try:
            c.kubernetes_version = check_release(version)
        except InputError as e:
            raise obj.error("spec.kubernetesVersion", e.message, spec, "kubernetesVersion") from None
    proxy = obj.map(spec, "proxy", "spec.proxy")
    c.proxy_mode = obj.str(proxy, "mode", "spec.proxy.mode", "iptables")
    _check_proxy_mode(obj, c.proxy_mode, proxy)
    c.ipvs_scheduler = obj.str(obj.map(proxy, "ipvs", "spec.proxy.ipvs"), "scheduler",
                               "spec.proxy.ipvs.scheduler", "rr")
    obj.check(rules.one_of(c.ipvs_scheduler, IPVS_SCHEDULERS), "spec.proxy.ipvs.scheduler",
              proxy.get("ipvs"), "scheduler")
    c.iptables_backend = obj.str(proxy, "iptablesBackend", "spec.proxy.iptablesBackend", "auto")
    obj.check(rules.one_of(c.iptables_backend, IPTABLES_BACKENDS), "spec.proxy.iptablesBackend",
              proxy, "iptablesBackend")
    c.proxy_options = _proxy_options(obj, proxy)
    c.sync_period_s = c.proxy_options.sync_period_s
    _networking(obj, obj.map(spec, "networking", "spec.networking"), c)
    _clients(obj, spec, c)
    c.ingress = obj.str(spec, "ingress", "spec.ingress", "")
    obj.check(rules.one_of(c.ingress, ("", "nginx")), "spec.ingress", spec, "ingress")
    for key in ("checks", "steps"):
        items = obj.list(doc, key, key)
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise obj.error(f"{key}[{i}]", "must be a mapping", doc, key)
        setattr(c, key, items)
    return c


# ClusterConfig attribute -> the field of the Cluster document it comes from
_CLUSTER_FIELDS = {"name": "metadata.name", "nodes": "spec.nodes", "proxy_mode": "spec.proxy.mode",
                   "kubernetes_version": "spec.kubernetesVersion",
                   "ipvs_scheduler": "spec.proxy.ipvs.scheduler",
                   "iptables_backend": "spec.proxy.iptablesBackend",
                   "sync_period_s": "spec.proxy.syncPeriod",
                   "pod_subnet": "spec.networking.podSubnet",
                   "service_subnet": "spec.networking.serviceSubnet",
                   "node_subnet": "spec.networking.nodeSubnet",
                   "load_balancer_pool": "spec.networking.loadBalancerPool",
                   "lb_health_check_interval_s": "spec.networking.loadBalancerHealthCheckInterval",
                   "cluster_domain": "spec.networking.clusterDomain", "clients": "spec.clients",
                   "ingress": "spec.ingress", "runtime": "spec.runtime"}
# not the running cluster's state: what `minikp test` runs, and the name (`--name` gives it)
_NOT_CLUSTER_STATE = ("source", "checks", "steps", "name")


def check_cluster_unchanged(live: ClusterConfig, new: Scenario) -> None:
    """For `apply`: a Cluster document may only restate the running cluster (nodes, subnets,
    proxy mode cannot change under running pods); InputError naming the first change."""
    c = new.cluster
    if c.source.file == "<defaults>":  # no Cluster document
        return
    for f in dataclasses.fields(ClusterConfig):
        if f.name in _NOT_CLUSTER_STATE or getattr(c, f.name) == getattr(live, f.name):
            continue
        shown = {"nodes": lambda ns: f"{len(ns)} nodes ({', '.join(n.name for n in ns)[:60]})",
                 "clients": lambda cs: ", ".join(x.name for x in cs)[:60] or "none"}.get(
                     f.name, lambda v: rules.show(v, rules.REPR))
        raise InputError(f"{shown(getattr(c, f.name))} differs from the running cluster's "
                         f"{shown(getattr(live, f.name))}: apply cannot change a Cluster; "
                         "restate it unchanged or leave it out (or: minikp down, then up)",
                         file=c.source.file, line=c.source.line, kind="Cluster", name=c.name,
                         field=_CLUSTER_FIELDS.get(f.name, f.name))


_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def go_seconds(v):
    """A Go duration as kube-proxy's config takes it (500ms, 30s, 1m, 1h0m0s) in seconds;
    anything else comes back unchanged, for the caller to judge."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    if isinstance(v, str) and v and _GO_DURATION.sub("", v) == "":
        return sum(float(n) * units[u] for n, u in _GO_DURATION.findall(v))
    return v


def _duration(obj: _Obj, d, key: str, field: str, default: float, lo: float = 0.1,
              hi: float = 86400) -> float:
    """Seconds, or a Go duration as kube-proxy's config takes it: 500ms, 30s, 1m, 1h0m0s."""
    v = go_seconds(d.get(key, default) if isinstance(d, dict) else default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        span = f"between {_show(lo)} and {_show(hi)}"
        raise obj.error(field, f"{d.get(key)!r}: a duration {span}, e.g. 30s or 1m", d, key)
    return float(v)


def _show(seconds: float) -> str:
    for unit, n in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= n and seconds % n == 0:
            return f"{int(seconds // n)}{unit}"
    return f"{int(seconds * 1000)}ms"


DETECT_LOCAL_MODES_ALL = ("ClusterCIDR", "NodeCIDR", "BridgeInterface", "InterfaceNamePrefix")


def _proxy_options(obj: _Obj, proxy) -> ProxyOptions:
    """kube-proxy's options, spelled as KubeProxyConfiguration (v1alpha1) spells them:
    iptables.{syncPeriod, minSyncPeriod, masqueradeAll, localhostNodePorts}, nodePortAddresses,
    clusterCIDR, detectLocalMode, conntrack.{maxPerCore, min, tcpEstablishedTimeout,
    tcpCloseWaitTimeout, udpTimeout, udpStreamTimeout}. syncPeriod, minSyncPeriod and
    masqueradeAll are also taken directly under spec.proxy."""
    d = ProxyOptions()
    ipt = obj.map(proxy, "iptables", "spec.proxy.iptables")

    def where(key):  # the iptables.X spelling wins; X under spec.proxy is the short one
        return (ipt, f"spec.proxy.iptables.{key}") if key in ipt else (proxy, f"spec.proxy.{key}")

    def flag(key, default):
        m, field = where(key)
        v = m.get(key, default)
        if not isinstance(v, bool):
            raise obj.error(field, f"{v!r}: must be true or false", m, key)
        return v

    m, field = where("syncPeriod")
    sync = _duration(obj, m, "syncPeriod", field, d.sync_period_s)
    m, field = where("minSyncPeriod")
    min_sync = _duration(obj, m, "minSyncPeriod", field, d.min_sync_period_s, lo=0.0)
    if sync < min_sync:  # kube-proxy's validateKubeProxyIPTablesConfiguration refuses it
        m, sync_field = where("syncPeriod")
        raise obj.error(sync_field, f"{_show(sync)}: must be greater than or equal to {field} "
                        f"({_show(min_sync)})", m, "syncPeriod" if "syncPeriod" in m else "minSyncPeriod")
    addrs = obj.strings(proxy, "nodePortAddresses", "spec.proxy.nodePortAddresses")
    for i, a in enumerate(addrs):
        if a != "primary":
            obj.check(_ipv4_cidr(a), f"spec.proxy.nodePortAddresses[{i}]", proxy, "nodePortAddresses")
    cidr = obj.str(proxy, "clusterCIDR", "spec.proxy.clusterCIDR", "")
    if cidr:
        obj.check(_ipv4_cidr(cidr), "spec.proxy.clusterCIDR", proxy, "clusterCIDR")
    mode = obj.str(proxy, "detectLocalMode", "spec.proxy.detectLocalMode", "ClusterCIDR")
    obj.check(rules.one_of(mode, DETECT_LOCAL_MODES_ALL), "spec.proxy.detectLocalMode", proxy, "detectLocalMode")
    if mode not in DETECT_LOCAL_MODES:
        raise obj.error("spec.proxy.detectLocalMode", f'"{mode}": not modelled yet; minikp models: '
                        + ", ".join(DETECT_LOCAL_MODES), proxy, "detectLocalMode")
    ct = obj.map(proxy, "conntrack", "spec.proxy.conntrack")
    cd = ConntrackOptions()

    def timeout(key, default):
        return int(_duration(obj, ct, key, f"spec.proxy.conntrack.{key}", default, lo=0.0, hi=30 * 86400))

    conntrack = ConntrackOptions(
        max_per_core=obj.int(ct, "maxPerCore", "spec.proxy.conntrack.maxPerCore", cd.max_per_core),
        min=obj.int(ct, "min", "spec.proxy.conntrack.min", cd.min),
        tcp_established_timeout_s=timeout("tcpEstablishedTimeout", cd.tcp_established_timeout_s),
        tcp_close_wait_timeout_s=timeout("tcpCloseWaitTimeout", cd.tcp_close_wait_timeout_s),
        udp_timeout_s=timeout("udpTimeout", cd.udp_timeout_s),
        udp_stream_timeout_s=timeout("udpStreamTimeout", cd.udp_stream_timeout_s))
    return ProxyOptions(sync_period_s=sync, min_sync_period_s=min_sync,
                        masquerade_all=flag("masqueradeAll", d.masquerade_all),
                        localhost_node_ports=flag("localhostNodePorts", d.localhost_node_ports),
                        node_port_addresses=tuple(addrs), cluster_cidr=cidr, detect_local_mode=mode,
                        conntrack=conntrack)


def _ipv4_cidr(v: str) -> str | None:
    try:
        ipaddress.IPv4Network(v, strict=False)
    except ValueError:
        return f'"{v}": not an IPv4 CIDR such as 10.244.0.0/16'
    return None


def _check_proxy_mode(obj: _Obj | None, mode: str, at=None) -> None:
    if mode in IMPLEMENTED_PROXY_MODES:
        return
    what = (f'{rules.show(mode)} is not implemented yet; available: {", ".join(IMPLEMENTED_PROXY_MODES)}'
            if mode in PROXY_MODES else
            f'{rules.show(mode)}: not a proxy mode; valid: {", ".join(PROXY_MODES)} '
            f'(implemented: {", ".join(IMPLEMENTED_PROXY_MODES)})')
    if obj is None:
        raise InputError(what, field="--proxy-mode")
    raise obj.error("spec.proxy.mode", what, at, "mode")


def _networking(obj: _Obj, net, c: ClusterConfig) -> None:
    nets = {}
    for key, attr in (("podSubnet", "pod_subnet"), ("serviceSubnet", "service_subnet"),
                      ("nodeSubnet", "node_subnet")):
        v = obj.str(net, key, f"spec.networking.{key}", getattr(c, attr))
        obj.check(rules.cidr(v), f"spec.networking.{key}", net, key)
        setattr(c, attr, v)
        nets[key] = ipaddress.IPv4Network(v)
    keys = list(nets)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            if nets[a].overlaps(nets[b]):
                raise obj.error(f"spec.networking.{b}", f"{nets[b]} overlaps {a} {nets[a]}; "
                                "the pod, service and node subnets must not overlap", net, b)
    if nets["podSubnet"].prefixlen > 22:
        raise obj.error("spec.networking.podSubnet", "must be /22 or larger: each node gets a /24",
                        net, "podSubnet")
    if nets["serviceSubnet"].num_addresses < 16:
        raise obj.error("spec.networking.serviceSubnet", "must be /28 or larger", net, "serviceSubnet")
    pool = obj.str(net, "loadBalancerPool", "spec.networking.loadBalancerPool", "")
    if pool:
        first, sep, last = pool.partition("-")
        try:
            a, b = ipaddress.IPv4Address(first.strip()), ipaddress.IPv4Address((last or first).strip())
        except ValueError:
            raise obj.error("spec.networking.loadBalancerPool", f'{rules.show(pool)}: must be FIRST-LAST, e.g. '
                            "172.18.255.200-172.18.255.250", net, "loadBalancerPool") from None
        c.load_balancer_pool = (str(a), str(b))
    else:
        c.load_balancer_pool = _default_pool(nets["nodeSubnet"])
    a, b = (ipaddress.IPv4Address(x) for x in c.load_balancer_pool)
    node_net = nets["nodeSubnet"]
    if a > b or a not in node_net or b not in node_net or a == node_net.network_address \
            or b == node_net.broadcast_address:
        raise obj.error("spec.networking.loadBalancerPool",
                        f"{a}-{b}: must be a range of host addresses inside the node subnet {node_net}",
                        net, "loadBalancerPool")
    if len(c.nodes) + 1 >= int(a) - int(node_net.network_address):
        raise obj.error("spec.networking.loadBalancerPool", f"{a}-{b} leaves no room for "
                        f"{len(c.nodes)} node addresses at the start of {node_net}", net, "loadBalancerPool")
    if len(c.nodes) >= nets["podSubnet"].num_addresses // 256:
        raise obj.error("spec.nodes", f"{len(c.nodes)} nodes need {len(c.nodes) + 1} /24s; the pod "
                        f"subnet {nets['podSubnet']} has {nets['podSubnet'].num_addresses // 256}")
    c.lb_health_check_interval_s = _duration(obj, net, "loadBalancerHealthCheckInterval",
                                             "spec.networking.loadBalancerHealthCheckInterval",
                                             1.0, lo=0.1, hi=300)
    c.cluster_domain = obj.str(net, "clusterDomain", "spec.networking.clusterDomain", "cluster.local")
    obj.check(rules.dns1123_subdomain(c.cluster_domain), "spec.networking.clusterDomain", net,
              "clusterDomain")


def _default_pool(node_net: ipaddress.IPv4Network) -> tuple[str, str]:
    """kind-style: the top of the node subnet (172.18.255.200-250 for 172.18.0.0/16)."""
    top = int(node_net.broadcast_address)
    return str(ipaddress.IPv4Address(top - 55)), str(ipaddress.IPv4Address(top - 5))


def _named_items(obj: _Obj, spec, key: str, shape: str):
    """(path, mapping, name) for each item of the list spec.KEY: a name, or a mapping with
    a unique RFC 1123 `name`."""
    seen = set()
    for i, item in enumerate(obj.list(spec, key, f"spec.{key}")):
        path = f"spec.{key}[{i}]"
        if isinstance(item, str):  # a bare name: errors point at the list's line
            item = PosDict(name=item)
            item.line, item.key_lines = line_of(spec, key), {}
        if not isinstance(item, dict):
            raise obj.error(path, f"must be a name or {shape}", spec, key)
        name = obj.str(item, "name", f"{path}.name")
        obj.check(rules.dns1123_label(name) if name else "required", f"{path}.name", item, "name")
        if name in seen:
            raise obj.error(f"{path}.name", f'"{name}": duplicate name', item, "name")
        seen.add(name)
        yield path, item, name


def _clients(obj: _Obj, spec, c: ClusterConfig) -> None:
    for path, item, cname in _named_items(obj, spec, "clients", "{name, hostnames, command}"):
        hostnames = obj.strings(item, "hostnames", f"{path}.hostnames")
        for j, h in enumerate(hostnames):
            obj.check(rules.dns_name(h), f"{path}.hostnames[{j}]", item, "hostnames")
        command = item.get("command")
        if isinstance(command, str):
            command = ["/bin/sh", "-c", command]
        elif command is not None:
            command = obj.strings(item, "command", f"{path}.command")
        c.clients.append(ClientSpec(cname, hostnames, command))


# ---- overrides and cross-object rules -----------------------------------------------------


def _apply_overrides(scenario: Scenario, path: str, proxy_mode, nodes) -> None:
    c = scenario.cluster
    if proxy_mode:
        _check_proxy_mode(None, proxy_mode)
        c.proxy_mode = proxy_mode
    if nodes is not None:
        if not 1 <= nodes <= 250:
            raise InputError(f"{nodes}: must be between 1 and 250", field="--nodes")
        c.nodes = [NodeSpec(f"node-{i}") for i in range(1, nodes + 1)]
    problem = mode_problem(c.proxy_mode, c.kubernetes_version)
    if problem:
        raise InputError(problem, file=c.source.file if c.source.file != "<defaults>" else None,
                         line=c.source.line or None, field="spec.proxy.mode")


def _check_cross_references(scenario: Scenario) -> None:
    node_names = {n.name for n in scenario.cluster.nodes}
    for w in scenario.workloads:
        path = "spec" if w.kind == "Pod" else "spec.template.spec"
        if w.template.node_name and w.template.node_name not in node_names:
            raise InputError(f'{rules.show(w.template.node_name)}: no such node; nodes: {", ".join(sorted(node_names))}',
                             file=w.source.file, line=w.source.line, kind=w.kind, name=w.name,
                             field=f"{path}.nodeName")
        sel = w.template.node_selector
        if sel and not any(all(node_labels(n).get(k) == v for k, v in sel.items())
                           for n in scenario.cluster.nodes):
            raise InputError(f"{rules.show(sel)}: matches no node", file=w.source.file, line=w.source.line,
                             kind=w.kind, name=w.name, field=f"{path}.nodeSelector")
    by_label: dict = {}  # (namespace, key, value) -> workloads whose pods carry that label
    for w in scenario.workloads:
        for k, v in w.template.labels.items():
            by_label.setdefault((w.namespace, k, v), []).append(w)
    for svc in scenario.services:
        if not svc.selector:
            continue
        k0, v0 = next(iter(svc.selector.items()))
        selected = [w for w in by_label.get((svc.namespace, k0, v0), ())
                    if all(w.template.labels.get(k) == v for k, v in svc.selector.items())]
        if not selected:
            continue
        names = {p.name for w in selected for c in w.template.containers for p in c.ports}
        for i, p in enumerate(svc.ports):
            if isinstance(p.target_port, str) and p.target_port not in names:
                raise InputError(f'"{p.target_port}": no container port of the selected pods has '
                                 f'this name; named: {", ".join(sorted(n for n in names if n)) or "none"}',
                                 file=svc.source.file, line=svc.source.line, kind="Service",
                                 name=svc.name, field=f"spec.ports[{i}].targetPort")


def node_labels(n: NodeSpec) -> dict:
    """The labels a node carries (what nodeSelector matches against)."""
    return {"kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux", **n.labels}
