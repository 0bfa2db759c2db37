"""`minikp test`'s fault steps on a real cluster: freeze/thaw (built-in and command
workloads), packet loss in a pod, a conntrack check, the kind of failure, a killed and
restarted proxy, and netem's clear message where the kernel lacks it."""

import textwrap

from conftest import minikp, netns_of

SCENARIO = """
apiVersion: minikp.dev/v1alpha1
kind: Cluster
spec:
  nodes: 1
steps:
{steps}
---
apiVersion: v1
kind: Pod
metadata: {{name: web, labels: {{app: web}}}}
spec:
  containers: [{{name: web, image: nginx, ports: [{{containerPort: 80}}]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: cmd, labels: {{app: cmd}}}}
spec:
  containers:
    - name: cmd
      image: python
      command: [python3, -m, http.server, "8000"]
      ports: [{{containerPort: 8000}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec: {{clusterIP: 10.96.100.90, selector: {{app: web}}, ports: [{{port: 80}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: cmd}}
spec: {{clusterIP: 10.96.100.91, selector: {{app: cmd}}, ports: [{{port: 8000}}]}}
"""

STEPS = """
- freeze: {pod: web}
- check: {name: frozen built-in times out, from: node/node-1, request: http://10.96.100.90/, timeout: 1, expect: {error: timeout}}
- thaw: {pod: web}
- check: {name: thawed built-in answers, from: node/node-1, request: http://10.96.100.90/}
- freeze: {pod: cmd}
- check: {name: SIGSTOPped command times out, from: node/node-1, request: "http://10.96.100.91:8000/", timeout: 1, expect: {error: timeout}}
- thaw: {pod: cmd}
- check: {name: SIGCONTinued command answers, from: node/node-1, request: "http://10.96.100.91:8000/", timeout: 3}
- loss: {pod: web, percent: 100}
- check: {name: all packets lost, from: node/node-1, request: http://10.96.100.90/, timeout: 1, expect: {error: timeout}}
- loss: {pod: web, percent: 0}
- check: {name: loss removed, from: node/node-1, request: http://10.96.100.90/, count: 5}
- conntrack: {name: the node tracked those connections, node: node-1, filter: [-p, tcp, --orig-dst, 10.96.100.90], expect: {output: dport=80}}
- proxy: {node: node-1, action: kill}
- rules: {name: a killed proxy's rules stay, node: node-1, table: nat, present: 10.96.100.90/32}
- check: {name: and still work, from: node/node-1, request: http://10.96.100.90/}
- proxy: {node: node-1, action: restart}
- check: {name: a restarted proxy serves, from: node/node-1, request: http://10.96.100.90/, count: 3}
"""


def run(tmp_path, steps, name):
    path = tmp_path / "faults.yaml"
    path.write_text(SCENARIO.format(steps=textwrap.indent(steps.strip(), "  ")))
    return minikp("test", str(path), "--name", name, check=False, timeout=180)


def test_fault_steps(tmp_path):
    r = run(tmp_path, STEPS, "mkt-faults")
    assert r.returncode == 0 and " 0 failed" in r.stdout, r.stdout + r.stderr
    assert netns_of("mkt-faults") == []


def test_netem_delay_is_refused_clearly_where_the_kernel_lacks_it(tmp_path):
    r = run(tmp_path, "- loss: {pod: web, delay: 50ms}\n- check: {from: node/node-1, request: http://10.96.100.90/}",
            "mkt-netem")
    out = r.stdout + r.stderr
    assert r.returncode == 0 or ("netem is not available in this kernel" in out and r.returncode == 1), out
    assert netns_of("mkt-netem") == []


HEALTH_STEPS = """
apiVersion: minikp.dev/v1alpha1
kind: Cluster
spec:
  nodes: 1
  clients: [{name: outside}]
steps:
  - check: {name: a running kube-proxy's health check answers, from: client/outside, request: "http://172.18.0.2:32100/", expect: {contains: '"localEndpoints": 1'}}
  - proxy: {node: node-1, action: pause}
  - check: {name: a stopped kube-proxy answers nothing, from: client/outside, request: "http://172.18.0.2:32100/", timeout: 1, expect: {error: timeout}}
  - proxy: {node: node-1, action: resume}
  - check: {name: resumed it answers again, from: client/outside, request: "http://172.18.0.2:32100/", expect: {contains: '"localEndpoints": 1'}}
  - proxy: {node: node-1, action: kill}
  - check: {name: a dead kube-proxy's port is closed, from: client/outside, request: "http://172.18.0.2:32100/", expect: {error: refused}}
  - check: {name: its rules still carry the Service, from: node/node-1, request: http://10.96.100.92/}
  - proxy: {node: node-1, action: restart}
  - check: {name: a new kube-proxy's health check answers after its first sync, from: client/outside, request: "http://172.18.0.2:32100/", expect: {contains: '"localEndpoints": 1'}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  healthCheckNodePort: 32100
  clusterIP: 10.96.100.92
  selector: {app: web}
  ports: [{port: 80}]
"""


def test_the_health_server_lives_and_dies_with_its_kube_proxy(tmp_path):
    """kube-proxy's health server is part of its process: stopped, it answers nothing (a load
    balancer's check times out); killed, its port is closed; restarted, it answers again."""
    path = tmp_path / "health.yaml"
    path.write_text(HEALTH_STEPS)
    r = minikp("test", str(path), "--name", "mkt-faults-health", check=False, timeout=180)
    assert r.returncode == 0 and " 0 failed" in r.stdout, r.stdout + r.stderr
