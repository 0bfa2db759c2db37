"""Ingress without root: loading (Ingress, IngressClass, TLS Secrets), the controller's install
shaped like ingress-nginx's, nginx.conf rendering (checked by `nginx -t` when nginx is
installed), and `get`/`describe ingress`. Bad inputs are in test_bad_inputs.py's catalogue."""

import os
import shutil
import subprocess
import textwrap

import pytest

from minikp import describe, tables
from minikp.controller.endpoints import PodState, compute_endpoints
from minikp.controller.objects import stored_object
from minikp.ingress import install
from minikp.ingress.controller import ingress_status, render_stored
from minikp.ingress.nginx import fake_certificate, write
from minikp.ingress.render import FAKE_CERT, Paths
from minikp.scenario.ingress import Ingress, TLSSecret
from minikp.scenario.load import InputError, load_scenario
from minikp.scenario.plan import plan_cluster, with_builtins

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(ROOT, "scenarios", "ingress.yaml")


def deployment(name, port=80, port_name=""):
    named = f", name: {port_name}" if port_name else ""
    return f"""
    apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: {name}}}
    spec:
      replicas: 2
      selector: {{matchLabels: {{app: {name}}}}}
      template:
        metadata: {{labels: {{app: {name}}}}}
        spec:
          containers: [{{name: web, image: nginx, ports: [{{containerPort: {port}{named}}}]}}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {{name: {name}}}
    spec:
      selector: {{app: {name}}}
      ports: [{{name: http, port: 8080, targetPort: {port}}}]
    """


def ingress(spec, name="web", annotations=""):
    return (f"apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: {name}\n"
            + (f"  annotations: {annotations}\n" if annotations else "")
            + "spec:\n" + textwrap.indent(textwrap.dedent(spec).strip("\n"), "  ") + "\n")


def build(tmp_path, *docs, ready=True):
    p = tmp_path / "s.yaml"
    p.write_text("\n---\n".join(textwrap.dedent(d).strip("\n") for d in docs) + "\n")
    s = with_builtins(load_scenario([str(p)]))  # the controller's objects, as the supervisor keeps
    plan = plan_cluster(s)
    states = {f"{q.namespace}/{q.name}": PodState(ready=ready) for q in plan.pods}
    return s, plan, compute_endpoints(plan.services, plan.pods, states, plan.endpoint_slices)


def conf(s, plan, eps):
    return render_stored(s.stored, plan.services, eps)


ROUTES = """
ingressClassName: nginx
rules:
- host: www1.example.test
  http:
    paths:
    - {path: /, pathType: Prefix, backend: {service: {name: web1, port: {number: 8080}}}}
    - {path: /exact, pathType: Exact, backend: {service: {name: web2, port: {name: http}}}}
    - {path: /api/, pathType: Prefix, backend: {service: {name: web2, port: {number: 8080}}}}
    - {path: /legacy, pathType: ImplementationSpecific, backend: {service: {name: web2, port: {number: 8080}}}}
"""


# ---- loading and install -------------------------------------------------------------------

def test_the_lab_loads_with_the_controller_shaped_like_ingress_nginx():
    s = with_builtins(load_scenario([LAB]))
    plan = plan_cluster(s)
    ings = {o.name: o.model for o in s.stored if o.kind == "Ingress"}
    assert ings["web"].hosts() == ["www1.example.test", "www2.example.test"]
    assert ings["secure"].tls[0].secret_name == "secure-tls"
    secret = next(o.model for o in s.stored if o.kind == "Secret")
    assert isinstance(secret, TLSSecret) and "BEGIN CERTIFICATE" in secret.cert and "PRIVATE KEY" in secret.key
    ctl = next(w for w in s.workloads if (w.namespace, w.name) == (install.NAMESPACE, install.NAME))
    assert ctl.kind == "Deployment" and ctl.template.labels["app.kubernetes.io/component"] == "controller"
    assert [(p.name, p.container_port) for p in ctl.template.containers[0].ports] == [("http", 80), ("https", 443)]
    svc = next(sp for sp in plan.services if sp.service.name == install.NAME)
    assert svc.service.namespace == "ingress-nginx" and svc.service.type == "LoadBalancer"
    assert [p.port for p in svc.service.ports] == [80, 443] and len(svc.node_ports) == 2
    assert svc.load_balancer_ip == "172.18.255.200"
    assert "ingress-nginx" in plan.namespaces
    cls = next(o for o in s.stored if o.kind == "IngressClass")
    assert (cls.name, cls.model.controller, cls.model.is_default) == ("nginx", "k8s.io/ingress-nginx", True)


def test_no_controller_without_an_ingress_unless_the_cluster_asks(tmp_path):
    s, plan, _ = build(tmp_path, deployment("web1"))
    assert not install.installed(s) and install.NAMESPACE not in plan.namespaces
    s, plan, _ = build(tmp_path, "apiVersion: minikp.dev/v1alpha1\nkind: Cluster\nspec: {ingress: nginx}\n",
                       deployment("web1"))
    assert install.installed(s) and any(sp.service.name == install.NAME for sp in plan.services)


def test_the_class_comes_from_the_field_or_the_old_annotation(tmp_path):
    s, _, _ = build(tmp_path, deployment("web1"), ingress(
        "defaultBackend: {service: {name: web1, port: {number: 8080}}}",
        annotations="{kubernetes.io/ingress.class: nginx}"))
    ing = next(o.model for o in s.stored if o.kind == "Ingress")
    assert isinstance(ing, Ingress) and ing.class_name == "nginx" and ing.rules == []


def test_a_tls_secret_in_string_data_and_other_secrets_are_kept_as_they_are(tmp_path):
    cert = "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----"
    key = "-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----"
    s, _, _ = build(tmp_path, "apiVersion: v1\nkind: Secret\nmetadata: {name: t}\ntype: kubernetes.io/tls\n"
                    f"stringData:\n  tls.crt: |\n    {cert.replace(chr(10), chr(10) + '    ')}\n"
                    f"  tls.key: |\n    {key.replace(chr(10), chr(10) + '    ')}\n",
                    "apiVersion: v1\nkind: Secret\nmetadata: {name: o}\ndata: {a: Yg==}\n")
    models = {o.name: o.model for o in s.stored}
    assert models["t"].cert.strip() == cert and models["o"] is None


OLD_ROUTES = """
backend: {serviceName: web1, servicePort: 8080}
tls: [{hosts: [www1.example.test], secretName: www1-tls}]
rules:
- host: www1.example.test
  http:
    paths:
    - {path: /, pathType: Prefix, backend: {serviceName: web1, servicePort: 8080}}
    - {path: /exact, pathType: Exact, backend: {serviceName: web2, servicePort: http}}
    - {path: /api/, pathType: Prefix, backend: {serviceName: web2, servicePort: 8080}}
    - {path: /legacy, backend: {serviceName: web2, servicePort: 8080}}
"""
V1_OF_OLD = ROUTES.replace("ingressClassName: nginx\n", "") + (
    "defaultBackend: {service: {name: web1, port: {number: 8080}}}\n"
    "tls: [{hosts: [www1.example.test], secretName: www1-tls}]\n")


@pytest.mark.parametrize("api", ["extensions/v1beta1", "networking.k8s.io/v1beta1"])
def test_an_old_ingress_on_a_release_that_served_it_routes_as_its_v1_equivalent(tmp_path, api):
    """Its own shape (serviceName/servicePort, spec.backend, no pathType, the class annotation)
    becomes the same model, manifest and nginx.conf as the v1 Ingress; 1.22 refuses it."""
    v121 = 'apiVersion: minikp.dev/v1alpha1\nkind: Cluster\nspec: {kubernetesVersion: "1.21"}\n'
    klass = ("apiVersion: networking.k8s.io/v1beta1\nkind: IngressClass\nmetadata: {name: nginx}\n"
             "spec: {controller: k8s.io/ingress-nginx}\n")
    old = ingress(OLD_ROUTES, annotations="{kubernetes.io/ingress.class: nginx}").replace(
        "networking.k8s.io/v1", api)
    new = ingress(V1_OF_OLD, annotations="{kubernetes.io/ingress.class: nginx}")
    built = [build(tmp_path, v121, deployment("web1"), deployment("web2"), klass, ing) for ing in (old, new)]
    (s_old, plan, eps), (s_new, _, _) = built
    ings = [next(o for o in s.stored if o.kind == "Ingress") for s in (s_old, s_new)]
    assert ings[0].model == ings[1].model and ings[0].model.class_name == "nginx"
    assert ings[0].model.rules[0].paths[3].path_type == "ImplementationSpecific"
    assert ings[0].manifest == ings[1].manifest  # as `kubectl get -o yaml` shows it: v1
    assert conf(s_old, plan, eps).conf == conf(s_new, plan, eps).conf
    assert "proxy_pass http://default-web2-http;" in conf(s_old, plan, eps).conf
    cls = next(o for o in s_old.stored if o.kind == "IngressClass")
    assert cls.manifest["apiVersion"] == "networking.k8s.io/v1" and cls.model.controller == "k8s.io/ingress-nginx"
    with pytest.raises(InputError, match=f"apiVersion: {api} Ingress was removed in Kubernetes 1.22; "
                       "use apiVersion: networking.k8s.io/v1"):
        build(tmp_path, v121.replace("1.21", "1.22"), old)


# ---- nginx.conf ------------------------------------------------------------------------------

def test_upstreams_are_the_endpoints_never_the_cluster_ip(tmp_path):
    s, plan, eps = build(tmp_path, deployment("web1"), deployment("web2", 9376, "web"), ingress(ROUTES))
    text = conf(s, plan, eps).conf
    pod_ips = sorted(p.ip for p in plan.pods if p.owner_name == "web2")
    block = text.split("upstream default-web2-http {")[1].split("}")[0]
    assert [ln.split()[1] for ln in block.strip().splitlines()] == [f"{ip}:9376" for ip in pod_ips]
    for sp in plan.services:
        assert sp.cluster_ip not in text
    assert "upstream default-web1-8080 {" in text


def test_path_types_become_nginx_locations(tmp_path):
    s, plan, eps = build(tmp_path, deployment("web1"), deployment("web2"), ingress(ROUTES))
    server = conf(s, plan, eps).conf.split("## start server www1.example.test")[1].split("## end server")[0]
    locations = [ln.strip()[len("location "):-2] for ln in server.splitlines() if "location " in ln]
    # Exact: only the path; Prefix /api/: element-wise (/api and /api/...); the rest nginx's own prefix
    assert locations == ["/", "= /api", "/api/", "= /exact", "/legacy"]
    assert "proxy_pass http://default-web2-http;" in server.split("location = /exact")[1].split("}")[0]


def test_a_backend_without_ready_endpoints_answers_503(tmp_path):
    s, plan, eps = build(tmp_path, deployment("web1"), deployment("web2"), ingress(ROUTES), ready=False)
    text = conf(s, plan, eps).conf
    assert "    upstream " not in text and "return 503;" in text


def test_hosts_without_rules_of_theirs_get_404_and_the_catch_all_gets_the_default_backend(tmp_path):
    s, plan, eps = build(tmp_path, deployment("web1"), ingress(
        "ingressClassName: nginx\ndefaultBackend: {service: {name: web1, port: {number: 8080}}}", "all"))
    default = conf(s, plan, eps).conf.split("## start server _")[1]
    assert "listen 80 default_server;" in default
    assert "proxy_pass http://default-web1-8080;" in default.split("location / {")[1].split("}")[0]
    s, plan, eps = build(tmp_path, deployment("web1"), deployment("web2"), ingress(ROUTES))
    default = conf(s, plan, eps).conf.split("## start server _")[1].split("## end server")[0]
    assert "return 404;" in default and "proxy_pass" not in default


def test_ingresses_of_another_class_are_left_alone(tmp_path):
    s, plan, eps = build(tmp_path, deployment("web1"), deployment("web2"),
                         ingress(ROUTES.replace("ingressClassName: nginx", "ingressClassName: traefik")))
    assert "www1.example.test" not in conf(s, plan, eps).conf
    assert ingress_status(next(o for o in s.stored if o.kind == "Ingress"), s.stored, plan.services) is None


def test_tls_hosts_get_their_secret_by_sni_and_http_is_redirected(tmp_path):
    s = with_builtins(load_scenario([LAB]))
    plan = plan_cluster(s)
    states = {f"{q.namespace}/{q.name}": PodState(ready=True) for q in plan.pods}
    out = conf(s, plan, compute_endpoints(plan.services, plan.pods, states, plan.endpoint_slices))
    secure = out.conf.split("## start server secure.example.test")[1].split("## end server")[0]
    assert "listen 443 ssl;" in secure
    assert "ssl_certificate /etc/nginx/ssl/default-secure-tls.pem;" in secure
    assert "return 308 https://$host$request_uri;" in secure
    secret = next(o.model for o in s.stored if o.kind == "Secret")
    assert out.files["ssl/default-secure-tls.pem"] == secret.cert.rstrip() + "\n" + secret.key.rstrip() + "\n"
    www1 = out.conf.split("## start server www1.example.test")[1].split("## end server")[0]
    assert "443" not in www1 and "308" not in www1


def test_ssl_redirect_false_and_a_missing_secret_fall_back_as_ingress_nginx_does(tmp_path):
    s, plan, eps = build(tmp_path, deployment("web1"), ingress(
        "ingressClassName: nginx\ntls: [{hosts: [a.test], secretName: absent}]\nrules:\n- host: a.test\n"
        "  http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web1, port: {number: 8080}}}}]}",
        annotations='{nginx.ingress.kubernetes.io/ssl-redirect: "false"}'))
    server = conf(s, plan, eps).conf.split("## start server a.test")[1]
    assert f"ssl_certificate /etc/nginx/{FAKE_CERT};" in server and "308" not in server


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx not installed (scripts/setup.sh installs it)")
def test_nginx_itself_accepts_the_rendered_configuration(tmp_path):
    s = with_builtins(load_scenario([LAB]))
    plan = plan_cluster(s)
    states = {f"{q.namespace}/{q.name}": PodState(ready=True) for q in plan.pods}
    eps = compute_endpoints(plan.services, plan.pods, states, plan.endpoint_slices)
    paths = Paths(conf_dir=str(tmp_path), temp_dir=str(tmp_path), pid_file=str(tmp_path / "nginx.pid"))
    from minikp.ingress.controller import _models
    from minikp.ingress.render import render
    from minikp.scenario.ingress import IngressClass
    out = render(_models(s.stored, Ingress), _models(s.stored, IngressClass),
                 _models(s.stored, TLSSecret), plan.services, eps, paths)
    fake_certificate(str(tmp_path / FAKE_CERT))
    assert write(str(tmp_path), out)
    r = subprocess.run(["nginx", "-t", "-e", "stderr", "-c", str(tmp_path / "nginx.conf")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert not write(str(tmp_path), out)  # unchanged: no reload


# ---- get and describe -------------------------------------------------------------------------

def test_get_and_describe_ingress_print_kubectls_columns():
    s = with_builtins(load_scenario([LAB]))
    plan = plan_cluster(s)
    states = {f"{q.namespace}/{q.name}": PodState(ready=True) for q in plan.pods}
    eps = compute_endpoints(plan.services, plan.pods, states, plan.endpoint_slices)
    objs = [stored_object(o, "", ingress_status(o, s.stored, plan.services))
            for o in s.stored if o.kind == "Ingress"]
    rows = [ln.split("   ") for ln in tables.ingresses_table(objs).splitlines()]
    assert [c.strip() for c in rows[0] if c] == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    assert "www1.example.test,www2.example.test" in rows[1] and "172.18.255.200" in rows[1]
    assert "80, 443" in tables.ingresses_table(objs).splitlines()[2]
    assert tables.ingress_hosts_text([{"host": f"h{i}"} for i in range(5)]) == "h0,h1,h2 + 2 more..."
    assert tables.ingress_hosts_text([{}]) == "*"
    from minikp.controller.objects import endpoints_object, service_object
    st = {"services": [service_object(sp, "") for sp in plan.services],
          "endpoints": [endpoints_object(sp, eps[f"{sp.service.namespace}/{sp.service.name}"], "")
                        for sp in plan.services if f"{sp.service.namespace}/{sp.service.name}" in eps]}
    web2 = sorted(p.ip for p in plan.pods if p.owner_name == "web2")
    text = describe.describe("Ingress", objs[1], st, [])
    lines = text.splitlines()
    assert lines[0].split() == ["Name:", "secure"] and "Address:          172.18.255.200" in lines
    assert "  secure-tls terminates secure.example.test" in lines
    assert f"/   web2:80 ({web2[0]}:80,{web2[1]}:80)" in text


def test_the_controller_image_runs_in_the_ingress_nginx_runtime():
    from minikp.scenario.model import Container
    from minikp.workloads.runtime import choose
    assert choose(None, Container("controller", install.IMAGE)) == "ingress-nginx"
    assert choose(None, Container("c", "registry.k8s.io/ingress-nginx/controller@sha256:abc")) == "ingress-nginx"
    assert choose(None, Container("web", "nginx")) == "builtin"
