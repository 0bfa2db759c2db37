"""Ingress with a real nginx (issue 17), on the lab scenarios/ingress.yaml: from a client
outside the cluster, `curl --resolve HOST:PORT:<LB address>` reaches the right Deployment's
pods for each host; HTTPS verifies with the TLS Secret's certificate (and not without it);
nginx's upstreams are the pods; an Ingress change applied live takes effect while a client
loops requests, none failing; deleting the Ingress takes its routes away."""

import base64
import os
import re
import subprocess
import threading

import pytest
import yaml

from conftest import Cluster, minikp

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(ROOT, "scenarios", "ingress.yaml")
NAME = "ingress-kt"

pytestmark = pytest.mark.skipif(
    subprocess.run(["sh", "-c", "command -v nginx"], capture_output=True).returncode != 0,
    reason="nginx not installed (scripts/setup.sh installs Debian's nginx)")


@pytest.fixture(scope="module")
def lab():
    minikp("down", "--name", NAME, check=False)
    minikp("up", LAB, "--name", NAME)
    c = Cluster(NAME, LAB)
    from minikp import state
    c.outside = state.find_host(NAME, state.read(NAME), "client/outside").netns
    c.lb = c.svc("ingress-nginx-controller", "ingress-nginx")["status"]["loadBalancer"]["ingress"][0]["ip"]
    yield c
    minikp("down", "--name", NAME, check=False)


def curl(c, host, *args, port=80, scheme="http", path="/"):
    """curl from the client `outside` (its network namespace), the name resolved to the LB."""
    return subprocess.run(["nsenter", f"--net={c.outside}", "curl", "-sS", "-m", "3",
                           "--resolve", f"{host}:{port}:{c.lb}", *args,
                           f"{scheme}://{host}{path}"], capture_output=True, text=True, timeout=10)


def pods_of(c, deployment):
    return {p["metadata"]["name"] for p in c.pods(deployment + "-")}


def test_each_host_reaches_its_own_deployments_pods(lab):
    assert lab.lb == "172.18.255.200"
    for host, deployment in (("www1.example.test", "web1"), ("www2.example.test", "web2")):
        seen = {curl(lab, host).stdout.strip() for _ in range(12)}
        assert seen == pods_of(lab, deployment), (host, seen)  # every pod, and only its pods
    r = curl(lab, "nobody.example.test", "-o", "/dev/null", "-w", "%{http_code}")
    assert r.stdout == "404"  # the default server, as ingress-nginx answers an unknown host


def test_https_verifies_with_the_secrets_certificate(lab, tmp_path):
    secret = next(d for d in yaml.safe_load_all(open(LAB)) if d.get("kind") == "Secret")
    ca = tmp_path / "ca.crt"
    ca.write_bytes(base64.b64decode(secret["data"]["tls.crt"]))
    r = curl(lab, "secure.example.test", "--cacert", str(ca), port=443, scheme="https")
    assert r.returncode == 0 and r.stdout.strip() in pods_of(lab, "web2"), r.stderr
    r = curl(lab, "secure.example.test", port=443, scheme="https")  # the system's CAs only
    assert r.returncode == 60, (r.returncode, r.stderr)  # SSL certificate problem
    r = curl(lab, "secure.example.test", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}")
    assert r.stdout == "308 https://secure.example.test/"


def test_nginx_is_real_and_its_upstreams_are_the_pods(lab):
    st = lab.cli("get", "pods", "-n", "ingress-nginx", "-o", "json")
    import json
    pod = json.loads(st.stdout)["items"][0]["metadata"]["name"]
    r = lab.cli("exec", f"ingress-nginx/{pod}", "--", "cat", "/etc/nginx/nginx.conf")
    upstream = re.search(r"upstream default-web1-80 \{(.*?)\}", r.stdout, re.S).group(1)
    ips = sorted(re.findall(r"server (\S+):80 ", upstream))
    assert ips == sorted(p["status"]["podIP"] for p in lab.pods("web1-"))
    r = lab.cli("exec", f"ingress-nginx/{pod}", "--", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '")
    assert r.stdout.startswith("nginx: master process nginx ") and "daemon off;" in r.stdout


def test_a_live_ingress_change_fails_no_request(lab):
    change = os.path.join(ROOT, "scenarios", "ingress", "www1-to-web2.yaml")  # www1 → web2
    answers, stop = [], threading.Event()

    def loop():
        while not stop.is_set():
            r = curl(lab, "www1.example.test")
            answers.append(r.stdout.strip() if r.returncode == 0 else f"ERROR {r.stderr}")

    t = threading.Thread(target=loop)
    t.start()
    try:
        while len(answers) < 20:
            threading.Event().wait(0.05)
        out = lab.cli("apply", change).stdout
        n = len(answers)
        while len(answers) < n + 20:
            threading.Event().wait(0.05)
    finally:
        stop.set()
        t.join()
    assert "ingress.networking.k8s.io/web configured" in out
    assert not [a for a in answers if a.startswith("ERROR")]
    web1, web2 = pods_of(lab, "web1"), pods_of(lab, "web2")
    assert set(answers[:20]) <= web1 and set(answers[n:]) <= web2  # before, and after apply returned
    events = lab.cli("describe", "ingress", "web").stdout
    assert "Scheduled for sync" in events


def test_endpoints_follow_and_a_deleted_ingress_takes_its_routes(lab):
    lab.cli("scale", "deployment", "web2", "--replicas", "3")
    seen = {curl(lab, "www2.example.test").stdout.strip() for _ in range(20)}
    assert seen == pods_of(lab, "web2") and len(seen) == 3
    assert 'ingress.networking.k8s.io "secure" deleted' in lab.cli("delete", "ingress", "secure").stdout
    r = curl(lab, "secure.example.test", "-o", "/dev/null", "-w", "%{http_code}")
    assert r.stdout == "404"
    assert [i["metadata"]["name"] for i in lab.get("ingress")] == ["web"]


OLD_FORMS = """\
apiVersion: minikp.dev/v1alpha1
kind: Cluster
spec: {kubernetesVersion: "1.21", nodes: 1, clients: [{name: outside}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web1}
spec:
  replicas: 1
  selector: {matchLabels: {app: web1}}
  template:
    metadata: {labels: {app: web1}}
    spec: {containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web2}
spec:
  replicas: 1
  selector: {matchLabels: {app: web2}}
  template:
    metadata: {labels: {app: web2}}
    spec: {containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web1}
spec: {selector: {app: web1}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: web2}
spec: {selector: {app: web2}, ports: [{name: http, port: 80}]}
---
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: web
  annotations: {kubernetes.io/ingress.class: nginx}
spec:
  rules:
  - host: www1.example.test
    http:
      paths:
      - backend: {serviceName: web1, servicePort: 80}
---
apiVersion: networking.k8s.io/v1beta1
kind: Ingress
metadata:
  name: web2
  annotations: {kubernetes.io/ingress.class: nginx}
spec:
  rules:
  - host: www2.example.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {serviceName: web2, servicePort: http}}
---
apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: all
  annotations: {kubernetes.io/ingress.class: nginx}
spec:
  backend: {serviceName: web2, servicePort: http}
"""


def test_old_ingress_forms_route_on_a_release_that_served_them(tmp_path):
    """extensions/v1beta1 and networking.k8s.io/v1beta1 Ingresses on a 1.21 cluster: each host
    reaches its Deployment's pod (www1's path has no path or pathType), any other host the
    catch-all Ingress's old spec.backend; `get` serves them back as networking.k8s.io/v1."""
    path = tmp_path / "old-forms.yaml"
    path.write_text(OLD_FORMS)
    name = "oldingress-kt"
    minikp("down", "--name", name, check=False)
    try:
        minikp("up", str(path), "--name", name)
        c = Cluster(name, str(path))
        from minikp import state
        c.outside = state.find_host(name, state.read(name), "client/outside").netns
        c.lb = c.svc("ingress-nginx-controller", "ingress-nginx")["status"]["loadBalancer"]["ingress"][0]["ip"]
        for host, deployment in (("www1.example.test", "web1"), ("www2.example.test", "web2"),
                                 ("nobody.example.test", "web2")):
            r = curl(c, host)
            assert r.returncode == 0 and r.stdout.strip() in pods_of(c, deployment), (host, r)
        ings = {i["metadata"]["name"]: i for i in c.get("ingress")}
        assert {i["apiVersion"] for i in ings.values()} == {"networking.k8s.io/v1"}
        assert ings["all"]["spec"]["defaultBackend"] == {"service": {"name": "web2", "port": {"name": "http"}}}
    finally:
        minikp("down", "--name", name, check=False)
