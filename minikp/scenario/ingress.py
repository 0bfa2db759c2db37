"""Ingress (networking.k8s.io/v1), IngressClass and TLS Secrets (type kubernetes.io/tls):
parsed and checked as the API server does, into plain data the ingress controller renders
(minikp/ingress/render.py). Pure. Every parser takes the loader's object reader (`obj`,
load._Obj), so that errors name file, line, object and field.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from minikp.scenario import rules
from minikp.scenario.yamlpos import PosDict, line_of

PATH_TYPES = ("Exact", "Prefix", "ImplementationSpecific")
CLASS_ANNOTATION = "kubernetes.io/ingress.class"  # the class before spec.ingressClassName
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
TLS_TYPE = "kubernetes.io/tls"
CURRENT_API = "networking.k8s.io/v1"


@dataclass(frozen=True)
class IngressBackend:
    service: str
    port: int | str  # a Service port's number or name


@dataclass(frozen=True)
class IngressPath:
    path: str
    path_type: str  # Exact | Prefix | ImplementationSpecific
    backend: IngressBackend


@dataclass
class IngressRule:
    host: str  # "" = every host
    paths: list[IngressPath] = field(default_factory=list)


@dataclass
class IngressTLS:
    hosts: list[str]
    secret_name: str


@dataclass
class Ingress:
    namespace: str
    name: str
    class_name: str = ""  # "" = the default IngressClass
    default_backend: IngressBackend | None = None
    rules: list[IngressRule] = field(default_factory=list)
    tls: list[IngressTLS] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)  # nginx.ingress.kubernetes.io/...

    def hosts(self) -> list[str]:
        return [r.host for r in self.rules if r.host]


@dataclass
class IngressClass:
    name: str
    controller: str
    is_default: bool = False


@dataclass
class TLSSecret:
    namespace: str
    name: str
    cert: str  # PEM
    key: str  # PEM


def parse_ingress(obj, doc, namespace: str, name: str) -> Ingress:
    meta = obj.map(doc, "metadata", "metadata")
    spec = obj.map(doc, "spec", "spec")
    annotations = obj.map(meta, "annotations", "metadata.annotations")
    class_name = obj.str(spec, "ingressClassName", "spec.ingressClassName") or str(
        annotations.get(CLASS_ANNOTATION, ""))
    ing = Ingress(namespace, name, class_name,
                  annotations={str(k): str(v) for k, v in annotations.items()})
    if spec.get("defaultBackend") is not None:
        ing.default_backend = _backend(obj, obj.map(spec, "defaultBackend", "spec.defaultBackend"),
                                       "spec.defaultBackend")
    for i, r in enumerate(obj.list(spec, "rules", "spec.rules")):
        path = f"spec.rules[{i}]"
        if not isinstance(r, dict):
            raise obj.error(path, "must be a mapping with host and http", spec, "rules")
        host = obj.str(r, "host", f"{path}.host")
        if host:
            wild = host.startswith("*.")
            problem = rules.dns1123_subdomain(host[2:] if wild else host)
            obj.check(f"{rules.show(host)}: must be a DNS name such as www.example.test (or *.example.test)"
                      if problem else None, f"{path}.host", r, "host")
        http = obj.map(r, "http", f"{path}.http")
        paths = obj.list(http, "paths", f"{path}.http.paths")
        if r.get("http") is not None and not paths:
            raise obj.error(f"{path}.http.paths", "Required value", http or r, "paths" if http else "http")
        rule = IngressRule(host)
        for j, p in enumerate(paths):
            ppath = f"{path}.http.paths[{j}]"
            if not isinstance(p, dict):
                raise obj.error(ppath, "must be a mapping with path, pathType and backend", http, "paths")
            ptype = obj.str(p, "pathType", f"{ppath}.pathType")
            if not ptype:
                raise obj.error(f"{ppath}.pathType", "Required value: one of " + ", ".join(PATH_TYPES), p)
            obj.check(rules.one_of(ptype, PATH_TYPES), f"{ppath}.pathType", p, "pathType")
            value = obj.str(p, "path", f"{ppath}.path", "/" if ptype == "ImplementationSpecific" else "")
            if ptype != "ImplementationSpecific" and not value.startswith("/"):
                raise obj.error(f"{ppath}.path", f"{rules.show(value)}: must be an absolute path", p, "path")
            if ptype != "ImplementationSpecific" and any(s in value for s in ("//", "/./", "/../", "{", ";")):
                raise obj.error(f"{ppath}.path", f"{rules.show(value)}: must not contain '//', '/./', "
                                "'/../', '{' or ';'", p, "path")
            backend = _backend(obj, obj.map(p, "backend", f"{ppath}.backend"), f"{ppath}.backend")
            rule.paths.append(IngressPath(value, ptype, backend))
        ing.rules.append(rule)
    if not ing.rules and ing.default_backend is None:
        raise obj.error("spec", "either `defaultBackend` or `rules` must be specified", doc, "spec")
    for i, t in enumerate(obj.list(spec, "tls", "spec.tls")):
        path = f"spec.tls[{i}]"
        if not isinstance(t, dict):
            raise obj.error(path, "must be a mapping with hosts and secretName", spec, "tls")
        hosts = obj.strings(t, "hosts", f"{path}.hosts")
        secret = obj.str(t, "secretName", f"{path}.secretName")
        if secret:
            obj.check(rules.dns1123_subdomain(secret), f"{path}.secretName", t, "secretName")
        ing.tls.append(IngressTLS(hosts, secret))
    return ing


def to_v1(obj, doc) -> dict:
    """An Ingress or IngressClass of a removed apiVersion (extensions/v1beta1,
    networking.k8s.io/v1beta1; served before 1.22), its fields already checked against its own
    shape (known.SHAPES), as its networking.k8s.io/v1 equivalent, as the API server converts it
    (and as `kubectl get -o yaml` then shows it): spec.backend -> spec.defaultBackend,
    {serviceName, servicePort} -> {service: {name, port: {number | name}}}, a path without
    pathType -> ImplementationSpecific. Backends are checked here, naming the old fields; the
    copies keep the file's lines, so parse_ingress's errors still point into the file."""
    if doc.get("kind") != "Ingress":
        return _like(doc, apiVersion=CURRENT_API)  # IngressClass: the same shape
    spec = obj.map(doc, "spec", "spec")
    new = _like(spec)
    if new.pop("backend", None) is not None:
        new["defaultBackend"] = _v1_backend(obj, spec, "backend", "spec.backend")
        new.key_lines["defaultBackend"] = spec.line_of("backend")
    if isinstance(spec.get("rules"), list):
        new["rules"] = [_v1_rule(obj, r, f"spec.rules[{i}]") for i, r in enumerate(spec["rules"])]
    return _like(doc, apiVersion=CURRENT_API, spec=new)


def _v1_rule(obj, r, path: str):
    http = r.get("http") if isinstance(r, dict) else None
    if not isinstance(http, dict) or not isinstance(http.get("paths"), list):
        return r  # parse_ingress says what is wrong
    paths = [p if not isinstance(p, dict) else _like(
        p, pathType=p.get("pathType") or "ImplementationSpecific",
        backend=_v1_backend(obj, p, "backend", f"{path}.http.paths[{j}].backend"))
        for j, p in enumerate(http["paths"])]
    return _like(r, http=_like(http, paths=paths))


def _v1_backend(obj, parent, key: str, path: str) -> PosDict:
    """{serviceName, servicePort} (a number or a name) as v1's {service: {name, port}}."""
    b = obj.map(parent, key, path)
    if b.get("resource") is not None:
        raise obj.error(f"{path}.resource", "not modelled by minikp: use serviceName", b, "resource")
    name = obj.str(b, "serviceName", f"{path}.serviceName")
    obj.check(rules.dns1035_label(name) if name else "Required value", f"{path}.serviceName",
              b if name else parent, "serviceName" if name else key)
    port = b.get("servicePort")
    if isinstance(port, str):
        obj.check(rules.port_name(port), f"{path}.servicePort", b, "servicePort")
    else:
        obj.check(rules.port_number(port) if port is not None else
                  "Required value: a Service port's number or name", f"{path}.servicePort",
                  b, "servicePort")
    at = b.line_of("servicePort")
    svc = _new(at, name=name, port=_new(at, **{"name" if isinstance(port, str) else "number": port}))
    svc.key_lines["name"] = b.line_of("serviceName")
    return _new(b.line, service=svc)


def _like(d, **changes) -> PosDict:
    """A copy of mapping `d` with `changes`, keeping its lines."""
    out = PosDict({**d, **changes})
    out.line, out.key_lines = line_of(d), dict(getattr(d, "key_lines", {}))
    return out


def _new(line: int, **items) -> PosDict:
    """A mapping made by the conversion, at the line it was converted from."""
    out = PosDict(items)
    out.line, out.key_lines = line, dict.fromkeys(items, line)
    return out


def _backend(obj, b, path: str) -> IngressBackend:
    if b.get("resource") is not None:
        raise obj.error(f"{path}.resource", "not modelled by minikp: use service", b, "resource")
    svc = obj.map(b, "service", f"{path}.service")
    if not svc:
        raise obj.error(f"{path}.service", "Required value: {name, port: {number | name}}", b)
    name = obj.str(svc, "name", f"{path}.service.name")
    obj.check(rules.dns1035_label(name) if name else "Required value", f"{path}.service.name", svc, "name")
    port = obj.map(svc, "port", f"{path}.service.port")
    if ("number" in port) == ("name" in port):
        raise obj.error(f"{path}.service.port", "exactly one of `number` or `name` is required",
                        port or svc, "port")
    if "number" in port:
        obj.check(rules.port_number(port["number"]), f"{path}.service.port.number", port, "number")
        return IngressBackend(name, port["number"])
    pname = obj.str(port, "name", f"{path}.service.port.name")
    obj.check(rules.port_name(pname), f"{path}.service.port.name", port, "name")
    return IngressBackend(name, pname)


def parse_ingress_class(obj, doc, name: str) -> IngressClass:
    meta = obj.map(doc, "metadata", "metadata")
    spec = obj.map(doc, "spec", "spec")
    annotations = obj.map(meta, "annotations", "metadata.annotations")
    controller = obj.str(spec, "controller", "spec.controller")
    if not controller:
        raise obj.error("spec.controller", "Required value: e.g. k8s.io/ingress-nginx", spec or doc)
    return IngressClass(name, controller, str(annotations.get(DEFAULT_CLASS_ANNOTATION, "")) == "true")


def parse_tls_secret(obj, doc, namespace: str, name: str) -> TLSSecret | None:
    """A Secret of type kubernetes.io/tls: tls.crt and tls.key, base64 in `data` (or plain
    in `stringData`), each PEM. None for a Secret of another type."""
    if obj.str(doc, "type", "type", "Opaque") != TLS_TYPE:
        return None
    data = obj.map(doc, "data", "data")
    plain = obj.map(doc, "stringData", "stringData")
    pem = {}
    for key, begin in (("tls.crt", "CERTIFICATE"), ("tls.key", "PRIVATE KEY")):
        if key in plain:
            text = obj.str(plain, key, f"stringData[{key}]")
        elif key in data:
            raw = obj.str(data, key, f"data[{key}]")
            try:
                text = base64.b64decode("".join(raw.split()), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise obj.error(f"data[{key}]", "must be base64 of a PEM file (e.g. `base64 -w0 "
                                f"{key}`)", data, key) from None
        else:
            raise obj.error(f"data[{key}]", f"Required value: a Secret of type {TLS_TYPE} holds "
                            "tls.crt and tls.key", doc, "data" if "data" in doc else None)
        if "-----BEGIN " not in text or begin not in text:
            where = f"stringData[{key}]" if key in plain else f"data[{key}]"
            raise obj.error(where, f"not a PEM {begin.lower()} (no -----BEGIN ...{begin}-----)",
                            plain if key in plain else data, key)
        pem[key] = text
    return TLSSecret(namespace, name, pem["tls.crt"], pem["tls.key"])
