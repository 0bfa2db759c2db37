"""nginx.conf from Ingresses, as ingress-nginx renders it (pure).

- Ingresses of our class: spec.ingressClassName (or the kubernetes.io/ingress.class
  annotation) naming an IngressClass of controller k8s.io/ingress-nginx, or none when such a
  class is the default.
- One `server` per host (the rules of every Ingress for that host merged, the first
  Ingress's path winning a tie, as the oldest does), plus the default server `_` that
  answers 404 (or the catch-all Ingress's defaultBackend).
- Paths: Exact → `location = /p`; Prefix → `location /p/` and `location = /p` (element-wise,
  `/p` matches /p and /p/x, never /px); ImplementationSpecific → `location /p` (nginx's own
  prefix match). A host without a `/` path falls back to its Ingress's defaultBackend, else 404.
- Upstreams `<namespace>-<service>-<port>` list the Service's ready ENDPOINTS (pod IP:port),
  never its ClusterIP, as ingress-nginx does; a backend without one answers 503.
- TLS: a host listed in spec.tls gets `listen 443 ssl` with its Secret's certificate, chosen
  by SNI, and HTTP to it is redirected to HTTPS (308), unless the annotation
  nginx.ingress.kubernetes.io/ssl-redirect is "false". A missing Secret: the controller's
  fake certificate (as ingress-nginx's "Kubernetes Ingress Controller Fake Certificate").

render(...) returns the text of nginx.conf and the certificate files it names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from minikp.scenario.ingress import Ingress, IngressBackend, IngressClass, TLSSecret

CONTROLLER = "k8s.io/ingress-nginx"
SSL_REDIRECT = "nginx.ingress.kubernetes.io/ssl-redirect"
FAKE_CERT = "ssl/default-fake-certificate.pem"  # made by nginx.py, under the config dir


@dataclass
class Paths:
    """Where things are inside the controller pod's sandbox."""

    conf_dir: str = "/etc/nginx"
    temp_dir: str = "/tmp"  # the sandbox's own; nginx makes its *_temp dirs there
    pid_file: str = "/tmp/nginx.pid"


@dataclass
class Rendered:
    conf: str
    files: dict[str, str] = field(default_factory=dict)  # path under conf_dir → content


@dataclass
class _Location:
    match: str  # "= /p", "/p/", "/p"
    upstream: str  # "" → 503 (no endpoints) / 404 (none)
    status: int = 0  # answered by nginx itself
    ingress: str = ""  # namespace/name, as ingress-nginx's $ingress_name
    redirect: bool = False


@dataclass
class _Server:
    host: str
    locations: dict[str, _Location] = field(default_factory=dict)
    cert: str = ""  # a file under conf_dir


def ours(ingresses: list[Ingress], classes: list[IngressClass]) -> list[Ingress]:
    names = {c.name for c in classes if c.controller == CONTROLLER}
    default = any(c.is_default for c in classes if c.controller == CONTROLLER)
    return [i for i in ingresses if i.class_name in names or (not i.class_name and default)]


def upstream_name(namespace: str, backend: IngressBackend) -> str:
    return f"{namespace}-{backend.service}-{backend.port}"


def backend_endpoints(namespace: str, backend: IngressBackend, services, endpoints) -> list[str]:
    """The ready endpoints ("ip:port") behind an Ingress backend: the Service port it names
    (by number or name) resolved to its pods' target ports."""
    sp = next((s for s in services if (s.service.namespace, s.service.name) == (namespace, backend.service)), None)
    eps = endpoints.get(f"{namespace}/{backend.service}")
    if sp is None or eps is None:
        return []
    port = next((p for p in sp.service.ports if p.protocol == "TCP" and (
        p.port == backend.port if isinstance(backend.port, int) else p.name == backend.port)), None)
    if port is None:
        return []
    return sorted({f"{e.ip}:{e.port}" for e in eps.ports.get(port.name, [])
                   if e.ready and not e.terminating})


def _location(ing: Ingress, backend: IngressBackend | None, match: str, upstreams: dict) -> _Location:
    who = f"{ing.namespace}/{ing.name}"
    if backend is None:
        return _Location(match, "", 404, who)
    name = upstream_name(ing.namespace, backend)
    return _Location(match, name if upstreams.get(name) else "", 0 if upstreams.get(name) else 503, who)


def _matches(path: str, path_type: str) -> list[str]:
    if path_type == "Exact":
        return [f"= {path}"]
    if path_type == "Prefix":
        trimmed = path.rstrip("/")
        return [f"{trimmed}/"] + ([f"= {trimmed}"] if trimmed else [])
    return [path or "/"]


def render(ingresses: list[Ingress], classes: list[IngressClass], secrets: list[TLSSecret],
           services, endpoints, paths: Paths = Paths()) -> Rendered:
    """nginx.conf for `ingresses` (those of our class). `services`: ServicePlans;
    `endpoints`: controller.endpoints' ServiceEndpoints by "namespace/name"."""
    served = ours(ingresses, classes)
    upstreams: dict[str, list[str]] = {}
    for ing in served:
        backends = [p.backend for r in ing.rules for p in r.paths] + (
            [ing.default_backend] if ing.default_backend else [])
        for b in backends:
            upstreams.setdefault(upstream_name(ing.namespace, b),
                                 backend_endpoints(ing.namespace, b, services, endpoints))
    by_secret = {(s.namespace, s.name): s for s in secrets}
    files: dict[str, str] = {}
    servers: dict[str, _Server] = {}
    default = _Server("_")
    for ing in served:
        redirect = ing.annotations.get(SSL_REDIRECT, "true").lower() != "false"
        tls_hosts = {h for t in ing.tls for h in t.hosts}
        for r in ing.rules:
            srv = default if not r.host else servers.setdefault(r.host, _Server(r.host))
            for p in r.paths:
                for m in _matches(p.path, p.path_type):
                    loc = _location(ing, p.backend, m, upstreams)
                    loc.redirect = redirect and r.host in tls_hosts
                    srv.locations.setdefault(m, loc)
            if ing.default_backend and "/" not in srv.locations:
                srv.locations["/"] = _location(ing, ing.default_backend, "/", upstreams)
        if not ing.rules and ing.default_backend:  # the catch-all Ingress
            default.locations.setdefault("/", _location(ing, ing.default_backend, "/", upstreams))
        for t in ing.tls:
            secret = by_secret.get((ing.namespace, t.secret_name))
            cert = FAKE_CERT
            if secret is not None:
                cert = f"ssl/{ing.namespace}-{t.secret_name}.pem"
                files[cert] = secret.cert.rstrip("\n") + "\n" + secret.key.rstrip("\n") + "\n"
            for h in t.hosts:
                srv = servers.setdefault(h, _Server(h))
                srv.cert = srv.cert or cert
    text = _conf(upstreams, default, [servers[h] for h in sorted(servers)], len(served), paths)
    return Rendered(text, files)


def _conf(upstreams: dict[str, list[str]], default: _Server, servers: list[_Server], count: int,
          paths: Paths) -> str:
    t = paths.temp_dir
    out = [
        f"# nginx.conf rendered by minikp's ingress controller from {count} Ingress(es),",
        "# in ingress-nginx's layout: upstreams are the Services' endpoints (pod IP:port).",
        f"pid {paths.pid_file};",
        "worker_processes 1;",
        "error_log stderr notice;",
        "events {", "    worker_connections 1024;", "}",
        "http {",
        "    log_format upstreaminfo '$remote_addr - $remote_user [$time_local] \"$request\" '",
        "        '$status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" $request_length '",
        "        '$request_time [$proxy_upstream_name] $upstream_addr $upstream_status';",
        "    access_log /dev/stdout upstreaminfo;",
        *(f"    {k}_temp_path {t}/{k};" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
        "    server_names_hash_bucket_size 128;",
        "    server_tokens off;",
        "    ssl_protocols TLSv1.2 TLSv1.3;",
        "    proxy_http_version 1.1;",
        "    proxy_next_upstream error timeout;  # another endpoint when one fails to connect",
        "    proxy_connect_timeout 5s;",
        "",
    ]
    for name, eps in sorted(upstreams.items()):
        if eps:
            out += [f"    upstream {name} {{", *(f"        server {e} max_fails=0;" for e in eps), "    }"]
    for srv in [default] + servers:
        out += [""] + _server(srv, paths)
    out += ["}", ""]
    return "\n".join(out)


def _server(srv: _Server, paths: Paths) -> list[str]:
    d = srv.host == "_"
    cert = srv.cert or (FAKE_CERT if d else "")
    out = [f"    ## start server {srv.host}", "    server {", f"        server_name {srv.host};",
           f"        listen 80{' default_server' if d else ''};"]
    if cert:
        out += [f"        listen 443 ssl{' default_server' if d else ''};",
                f"        ssl_certificate {paths.conf_dir}/{cert};",
                f"        ssl_certificate_key {paths.conf_dir}/{cert};"]
    out += ["        set $proxy_upstream_name \"-\";"]
    locations = dict(srv.locations)
    locations.setdefault("/", _Location("/", "", 404))
    for match in sorted(locations, key=lambda m: (m.lstrip("= "), m)):
        loc = locations[match]
        out += [f"        location {match} {{"]
        if loc.ingress:
            out += [f"            set $ingress_name \"{loc.ingress}\";"]
        if loc.redirect:
            out += ["            if ($scheme = http) {", "                return 308 https://$host$request_uri;",
                    "            }"]
        if loc.upstream:
            out += [f"            set $proxy_upstream_name \"{loc.upstream}\";",
                    "            proxy_set_header Host $host;",
                    "            proxy_set_header X-Real-IP $remote_addr;",
                    "            proxy_set_header X-Forwarded-For $remote_addr;",
                    "            proxy_set_header X-Forwarded-Host $host;",
                    "            proxy_set_header X-Forwarded-Proto $scheme;",
                    "            proxy_set_header Connection \"\";",
                    f"            proxy_pass http://{loc.upstream};"]
        else:
            out += [f"            return {loc.status or 404};"]
        out += ["        }"]
    out += ["    }", f"    ## end server {srv.host}"]
    return out
