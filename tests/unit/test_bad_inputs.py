"""The bad-input catalogue (issue 9): every input here must make `up` and `apply` exit 2 with
`FILE:LINE: ...` (where the input has a line), a message that says what is wrong, and no
traceback — in bounded memory and time for the hostile ones. No root: the CLI runs in-process
with the cluster start and the control socket replaced by failures, so a bad input that were
accepted would fail the test rather than build anything."""

import os
import subprocess
import sys
import textwrap

import pytest

from minikp import cli, client
from minikp.scenario.load import load_scenario

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MARK = "#<"  # ends the line an error must name

SVC = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
DEP = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
"""
POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n"
CLUSTER = "apiVersion: minikp.dev/v1alpha1\nkind: Cluster\n"
C1 = "      containers: [{name: a, image: x}]\n"  # a container, under DEP's pod spec
ING = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\n"
OLD_ING = (CLUSTER + 'spec: {kubernetesVersion: "1.21"}\n---\n'  # a release that served it
           "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: web}\n")
PEM64 = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSQotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg=="


def case(cid, text, expect, *, plan=False):
    """`text` with one line ending in MARK (the line the error names), or none (no line);
    `plan`: found by the allocator (plan_cluster), which `apply` runs in the supervisor."""
    return pytest.param(text, expect, plan, id=cid)


CASES = [
    # ---- YAML itself ----------------------------------------------------------------------
    case("empty-file", "", "no objects in this file"),
    case("only-comments", "# nothing\n# here\n", "no objects in this file"),
    case("only-separators", "---\n---\n", "no objects in this file"),
    case("document-is-list", "- a\n- b\n", "must be a mapping with apiVersion and kind, not a list"),
    case("document-is-scalar", "hello\n", "must be a mapping with apiVersion and kind, not a string"),
    case("tab-indent", SVC + "spec:\n\tports: []  #<\n", "not valid YAML"),
    case("unclosed-quote", SVC + 'spec: {type: "ClusterIP}\n\n#<', "not valid YAML"),  # at the end
    case("unclosed-flow", SVC + "spec: {ports: [\n#<", "not valid YAML"),
    case("key-is-list", SVC + "spec:\n  ? [a]  #<\n  : b\n", "a mapping key must be a scalar"),
    case("python-tag", SVC + "spec: !!python/object:os.system {}  #<\n", "unsupported YAML tag"),
    case("binary-tag", SVC + "spec: {type: !!binary aGk=}  #<\n", "unsupported YAML tag"),
    case("local-tag", SVC + "spec: {type: !foo x}  #<\n", "unsupported YAML tag '!foo'"),
    case("unknown-alias", SVC + "spec: *nothing  #<\n", "unknown alias *nothing"),
    case("duplicate-key-top", SVC + "kind: Service  #<\n", 'duplicate key "kind" (first at line 2)'),
    case("duplicate-key-flattened", "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n"
         "  name: b  #<\nspec: {ports: [{port: 80}]}\n", 'duplicate key "name" (first at line 4)'),
    case("duplicate-key-ports", SVC + "spec:\n  ports:\n  - port: 80\n    port: 81  #<\n",
         'duplicate key "port" (first at line 6)'),
    case("merge-key-not-mapping", SVC + "spec:\n  <<: 5  #<\n", "a merge key takes a mapping"),
    case("null-byte", SVC + "spec: {type: \0}  #<\n", "NUL bytes"),
    # ---- kinds and apiVersions -------------------------------------------------------------
    case("kind-lowercase-service", "apiVersion: v1\nkind: service  #<\nmetadata: {name: a}\n",
         'no matches for kind "service" in version "v1": did you mean "Service"'),
    case("kind-lowercase-deployment", "apiVersion: apps/v1\nkind: deployment  #<\nmetadata: {name: a}\n",
         'no matches for kind "deployment" in version "apps/v1"'),
    case("kind-unknown", "apiVersion: v1\nkind: Frobnicator  #<\nmetadata: {name: a}\n",
         'no matches for kind "Frobnicator" in version "v1"'),
    case("kind-missing", "apiVersion: v1  #<\nmetadata: {name: a}\n", "kind: required"),
    case("kind-number", "apiVersion: v1\nkind: 5  #<\nmetadata: {name: a}\n", "kind: required"),
    case("apiversion-missing", "kind: Service  #<\nmetadata: {name: a}\n", "apiVersion: required"),
    case("apiversion-list", "apiVersion: [v1]  #<\nkind: Service\nmetadata: {name: a}\n",
         "apiVersion: required"),
    case("deployment-apps-v9", "apiVersion: apps/v9  #<\nkind: Deployment\nmetadata: {name: a}\n",
         'no matches for kind "Deployment" in version "apps/v9": Deployment is apps/v1'),
    case("deployment-v1", "apiVersion: v1  #<\nkind: Deployment\nmetadata: {name: a}\n",
         'no matches for kind "Deployment" in version "v1"'),
    case("service-apps-v1", "apiVersion: apps/v1  #<\nkind: Service\nmetadata: {name: a}\n",
         'no matches for kind "Service" in version "apps/v1": Service is v1'),
    case("deployment-extensions", "apiVersion: extensions/v1beta1  #<\nkind: Deployment\n"
         "metadata: {name: a}\n", "removed in Kubernetes 1.16; use apiVersion: apps/v1"),
    case("ingress-extensions", "apiVersion: extensions/v1beta1  #<\nkind: Ingress\n"
         "metadata: {name: a}\n", "removed in Kubernetes 1.22; use apiVersion: networking.k8s.io/v1"),
    case("deployment-apps-v1beta2", "apiVersion: apps/v1beta2  #<\nkind: Deployment\n"
         "metadata: {name: a}\n", "use apiVersion: apps/v1"),
    case("endpointslice-v1beta1", "apiVersion: discovery.k8s.io/v1beta1  #<\nkind: EndpointSlice\n"
         "metadata: {name: a}\n", "use apiVersion: discovery.k8s.io/v1"),
    case("cronjob-v1beta1", "apiVersion: batch/v1beta1  #<\nkind: CronJob\nmetadata: {name: a}\n",
         "removed in Kubernetes 1.25; use apiVersion: batch/v1"),
    case("crd-group-unknown", "apiVersion: cert-manager.io/v1\nkind: Certificate  #<\n"
         "metadata: {name: a}\n", 'no matches for kind "Certificate"'),
    case("cluster-apiversion", "apiVersion: minikp.dev/v1  #<\nkind: Cluster\n",
         'no matches for kind "Cluster" in version "minikp.dev/v1"'),
    case("second-cluster", CLUSTER + "---\n" + CLUSTER.replace("Cluster\n", "Cluster  #<\n", 1)
         .replace("apiVersion: minikp.dev/v1alpha1\n", "apiVersion: minikp.dev/v1alpha1  #<\n")
         .replace("kind: Cluster  #<\n", "kind: Cluster\n"), "a second Cluster document"),
    case("list-items-mapping", "apiVersion: v1\nkind: List\nitems: {a: b}  #<\n",
         "items: must be a list, not a mapping"),
    case("list-item-scalar", "apiVersion: v1\nkind: List\nitems: [5]  #<\n",
         "every item must be an object"),
    case("list-item-unknown-kind", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n"
         "  kind: Servce  #<\n  metadata: {name: a}\n", 'no matches for kind "Servce"'),
    # ---- unknown fields --------------------------------------------------------------------
    case("service-spec-typo", SVC + "spec:\n  typo: NodePort  #<\n  ports: [{port: 80}]\n",
         'Service "web": unknown field "spec.typo"'),
    case("service-port-typo", SVC + "spec:\n  ports:\n  - port: 80\n  - prot: 81  #<\n",
         'unknown field "spec.ports[1].prot"'),
    case("top-level-typo", SVC + "sepc: {ports: [{port: 80}]}  #<\n", 'unknown field "sepc"'),
    case("metadata-typo", "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n"
         "  lables: {a: b}  #<\nspec: {ports: [{port: 80}]}\n", 'unknown field "metadata.lables"'),
    case("container-typo", DEP + "      containers:\n      - name: a\n        imag: x  #<\n",
         'unknown field "spec.template.spec.containers[0].imag"'),
    case("container-port-typo", DEP + "      containers:\n      - name: a\n        ports:\n"
         "        - containerport: 80  #<\n", 'unknown field "spec.template.spec.containers[0].ports[0].containerport"'),
    case("pod-spec-typo", DEP + C1 + "      nodeSelectr: {a: b}  #<\n",
         'unknown field "spec.template.spec.nodeSelectr"'),
    case("deployment-spec-typo", DEP + C1 + "  replica: 3  #<\n", 'unknown field "spec.replica"'),
    case("template-metadata-typo", DEP.replace("labels: {app: web}}", "labels: {app: web}, lables: {}}  #<")
         + C1, 'unknown field "spec.template.metadata.lables"'),
    case("probe-typo", POD + "  containers:\n  - name: a\n    readinessProbe:\n"
         "      httpGet: {path: /, port: 80}\n      periodSecond: 5  #<\n",
         'unknown field "spec.containers[0].readinessProbe.periodSecond"'),
    case("probe-httpget-typo", POD + "  containers:\n  - name: a\n    readinessProbe:\n"
         "      httpGet: {pth: /, port: 80}  #<\n", "readinessProbe.httpGet.pth"),
    case("capabilities-typo", POD + "  containers:\n  - name: a\n    securityContext:\n"
         "      capabilities: {ad: [NET_ADMIN]}  #<\n",
         'unknown field "spec.containers[0].securityContext.capabilities.ad"'),
    case("pod-security-typo", POD + "  containers: [{name: a}]\n  securityContext: {runAsUsr: 1}  #<\n",
         'unknown field "spec.securityContext.runAsUsr"'),
    case("volume-typo", POD + "  containers: [{name: a}]\n  volumes:\n  - name: v\n"
         "    emptyDir: {medum: Memory}  #<\n", 'unknown field "spec.volumes[0].emptyDir.medum"'),
    case("volume-mount-typo", POD + "  containers:\n  - name: a\n    volumeMounts:\n"
         "    - {name: v, mountpath: /x}  #<\n", "volumeMounts[0].mountpath"),
    case("env-typo", POD + "  containers:\n  - name: a\n    env: [{name: A, valu: b}]  #<\n",
         'unknown field "spec.containers[0].env[0].valu"'),
    case("cluster-spec-typo", CLUSTER + "spec:\n  node: 3  #<\n", 'unknown field "spec.node"'),
    case("cluster-networking-typo", CLUSTER + "spec:\n  networking:\n    podSubnets: 10.0.0.0/16  #<\n",
         'unknown field "spec.networking.podSubnets"'),
    case("cluster-client-typo", CLUSTER + "spec:\n  clients:\n  - name: db\n    hostname: [a.b]  #<\n",
         'unknown field "spec.clients[0].hostname"'),
    case("cluster-top-typo", CLUSTER + "check: []  #<\n", 'unknown field "check"'),
    case("slice-endpoint-typo", "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
         "metadata: {name: s, labels: {kubernetes.io/service-name: web}}\nendpoints:\n"
         "- addresses: [10.1.2.3]\n  condition: {ready: true}  #<\n",
         'unknown field "endpoints[0].condition"'),
    case("endpoints-subset-typo", "apiVersion: v1\nkind: Endpoints\nmetadata: {name: web}\n"
         "subsets:\n- adresses: [{ip: 10.1.2.3}]  #<\n", 'unknown field "subsets[0].adresses"'),
    case("configmap-typo", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndta: {a: b}  #<\n",
         'ConfigMap "c": unknown field "dta"'),
    case("numeric-key", SVC + "spec:\n  5: x  #<\n", 'unknown field "spec.5"'),
    # ---- shapes: lists, mappings, scalars ---------------------------------------------------
    case("containers-mapping", DEP + "      containers: {name: a}  #<\n",
         "containers: must be a list, not a mapping"),
    case("ports-mapping", SVC + "spec:\n  ports: {port: 80}  #<\n", "spec.ports: must be a list, not a mapping"),
    case("ports-string", SVC + "spec:\n  ports: http  #<\n", "spec.ports: must be a list, not a string"),
    case("metadata-list", "apiVersion: v1\nkind: Service\nmetadata: [web]  #<\n",
         "metadata: must be a mapping, not a list"),
    case("spec-string", SVC + "spec: ClusterIP  #<\n", "spec: must be a mapping, not a string"),
    case("labels-list", "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels: [a]  #<\n"
         "spec: {ports: [{port: 80}]}\n", "metadata.labels: must be a mapping, not a list"),
    case("selector-list", SVC + "spec:\n  selector: [app]  #<\n  ports: [{port: 80}]\n",
         "spec.selector: must be a mapping, not a list"),
    case("replicas-string", DEP + C1 + "  replicas: three  #<\n", "spec.replicas: 'three': must be an integer"),
    case("replicas-negative", DEP + C1 + "  replicas: -1  #<\n", "spec.replicas: -1: must be an integer"),
    case("replicas-bool", DEP + C1 + "  replicas: yes  #<\n", "spec.replicas: True: must be an integer"),
    case("replicas-float", DEP + C1 + "  replicas: 1.5  #<\n", "spec.replicas: 1.5: must be an integer"),
    case("image-number", DEP + "      containers: [{name: a, image: 5}]  #<\n", "image: 5: must be a string"),
    case("command-string-items", DEP + "      containers: [{name: a, command: [sh, 5]}]  #<\n",
         "command[1]: 5: must be a string"),
    case("container-scalar", DEP + "      containers: [a]  #<\n", "must be a mapping with name and image"),
    # ---- Service rules ----------------------------------------------------------------------
    case("port-too-big", SVC + "spec:\n  ports: [{port: 70000}]  #<\n", "70000: must be a port number"),
    case("port-zero", SVC + "spec:\n  ports: [{port: 0}]  #<\n", "0: must be a port number"),
    case("port-string", SVC + "spec:\n  ports: [{port: '80'}]  #<\n", "'80': must be a port number"),
    case("port-missing", SVC + "spec:\n  ports: [{name: http}]  #<\n", "spec.ports[0].port: required"),
    case("protocol-icmp", SVC + "spec:\n  ports: [{port: 80, protocol: ICMP}]  #<\n",
         '"ICMP": supported values: "TCP", "UDP", "SCTP"'),
    case("nodeport-range", SVC + "spec:\n  type: NodePort\n  ports: [{port: 80, nodePort: 80}]  #<\n",
         "provided port is not in the valid range"),
    case("nodeport-clusterip", SVC + "spec:\n  ports: [{port: 80, nodePort: 30080}]  #<\n",
         "may not be used when `type` is 'ClusterIP'"),
    case("targetport-bad-name", SVC + "spec:\n  ports: [{port: 80, targetPort: Bad_Name}]  #<\n",
         "a port name is at most 15 characters"),
    case("service-name-upper", "apiVersion: v1\nkind: Service\nmetadata: {name: Web}  #<\n"
         "spec: {ports: [{port: 80}]}\n", "a Service name must be an RFC 1035 label"),
    case("service-name-digit", "apiVersion: v1\nkind: Service\nmetadata: {name: 1web}  #<\n"
         "spec: {ports: [{port: 80}]}\n", "a Service name must be an RFC 1035 label"),
    case("service-name-missing", "apiVersion: v1\nkind: Service\nmetadata: {labels: {a: b}}  #<\n"
         "spec: {ports: [{port: 80}]}\n", "metadata.name: required"),
    case("generate-name-only", "apiVersion: v1\nkind: Service\nmetadata: {generateName: web-}  #<\n"
         "spec: {ports: [{port: 80}]}\n", "metadata.name: required"),
    case("namespace-invalid", "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: A_B}  #<\n"
         "spec: {ports: [{port: 80}]}\n", "metadata.namespace"),
    case("label-key-invalid", "apiVersion: v1\nkind: Service\nmetadata: {name: web, labels: {-a: b}}  #<\n"
         "spec: {ports: [{port: 80}]}\n", "a label key is an optional DNS prefix"),
    case("label-value-long", "apiVersion: v1\nkind: Service\nmetadata: {name: web, labels: {a: "
         + "b" * 64 + "}}  #<\nspec: {ports: [{port: 80}]}\n", "a label value is a string of at most 63"),
    case("label-value-number", "apiVersion: v1\nkind: Service\nmetadata: {name: web, labels: {a: 5}}  #<\n"
         "spec: {ports: [{port: 80}]}\n", "(quote numbers)"),
    case("port-names-duplicate", SVC + "spec:\n  ports:\n  - {port: 80, name: a}\n"
         "  - {port: 81, name: a}  #<\n", '"a": duplicate port name'),
    case("port-names-missing", SVC + "spec:\n  ports:\n  - {port: 80}  #<\n  - {port: 81}\n",
         "required when a Service has more than one port"),
    case("ports-duplicate", SVC + "spec:\n  ports:\n  - {port: 80, name: a}\n"
         "  - {port: 80, name: b}  #<\n", "80/TCP: duplicate of spec.ports[0]"),
    case("ports-required", SVC + "spec: {selector: {a: b}}  #<\n", "spec.ports: required"),
    case("object-duplicate", SVC + "spec: {ports: [{port: 80}]}\n---\napiVersion: v1\nkind: Service\n"
         "metadata: {name: web}  #<\nspec: {ports: [{port: 80}]}\n", "already defined at"),
    case("clusterip-not-ip", SVC + "spec:\n  clusterIP: 10.96.0.300  #<\n  ports: [{port: 80}]\n",
         "must be a valid IPv4 address"),
    case("type-bogus", SVC + "spec:\n  type: Ingress  #<\n  ports: [{port: 80}]\n",
         '"Ingress": supported values'),
    case("externalname-missing", SVC + "spec: {type: ExternalName}  #<\n", "required for type ExternalName"),
    case("etp-local-clusterip", SVC + "spec:\n  externalTrafficPolicy: Local  #<\n  ports: [{port: 80}]\n",
         "may only be set on NodePort and LoadBalancer"),
    case("affinity-bogus", SVC + "spec:\n  sessionAffinity: Sticky  #<\n  ports: [{port: 80}]\n",
         '"Sticky": supported values: "None", "ClientIP"'),
    case("affinity-timeout", SVC + "spec:\n  ports: [{port: 80}]\n  sessionAffinityConfig:\n"
         "    clientIP: {timeoutSeconds: 0}  #<\n", "timeoutSeconds: 0: must be an integer between 1"),
    case("lb-source-range", SVC + "spec:\n  type: LoadBalancer\n  ports: [{port: 80}]\n"
         "  loadBalancerSourceRanges: [nowhere]  #<\n", "must be an IPv4 CIDR"),
    case("headless-nodeport", SVC + "spec:\n  type: NodePort\n  clusterIP: None  #<\n  ports: [{port: 80}]\n",
         'may not be "None" for type NodePort'),
    case("long-value-truncated", SVC + "spec:\n  type: " + "X" * 1_000_000 + "  #<\n",
         '..." (1000000 characters): supported values'),
    # ---- workloads --------------------------------------------------------------------------
    case("selector-missing", DEP.replace("  selector: {matchLabels: {app: web}}\n", "")
         .replace("  template:", "  template:  #<") + C1,  # the spec mapping starts there
         "spec.selector: required"),
    case("selector-mismatch", DEP.replace("{labels: {app: web}}", "{labels: {app: other}}  #<") + C1,
         "`selector` does not match template `labels`"),
    case("match-expressions", DEP.replace("{matchLabels: {app: web}}", "{matchLabels: {app: web}, "
                                          "matchExpressions: [{key: a, operator: Exists}]}  #<") + C1,
         "matchExpressions: not supported"),
    case("containers-empty", DEP + "      containers: []  #<\n", "at least one container"),
    case("container-name-missing", DEP + "      containers: [{image: x}]  #<\n",
         "containers[0].name: required"),
    case("container-names-duplicate", DEP + "      containers:\n      - {name: a}\n"
         "      - {name: a}  #<\n", '"a": duplicate container name'),
    case("probe-two-handlers", POD + "  containers:\n  - name: a\n    readinessProbe:  #<\n"
         "      httpGet: {port: 80}\n      tcpSocket: {port: 80}\n",
         "must have exactly one of httpGet, tcpSocket, exec"),
    case("probe-port-bad", POD + "  containers:\n  - name: a\n    readinessProbe:\n"
         "      tcpSocket: {port: 99999}  #<\n", "99999: must be a port number"),
    case("hostname-invalid", POD + "  containers: [{name: a}]\n  hostname: Not_Valid  #<\n",
         "must be a lowercase RFC 1123 label"),
    case("pod-name-invalid", "apiVersion: v1\nkind: Pod\nmetadata: {name: P}  #<\n"
         "spec: {containers: [{name: a}]}\n", "RFC 1123 subdomain"),
    case("node-name-unknown", POD.replace("v1\n", "v1  #<\n", 1) + "  containers: [{name: a}]\n  nodeName: node-9\n",
         '"node-9": no such node'),
    case("node-selector-nothing", POD.replace("v1\n", "v1  #<\n", 1) + "  containers: [{name: a}]\n  nodeSelector: {zone: mars}\n",
         "matches no node"),
    case("bare-pod-duplicate", POD + "  containers: [{name: a}]\n---\napiVersion: v1\nkind: Pod\n"
         "metadata: {name: p}  #<\nspec: {containers: [{name: a}]}\n", "already defined at"),
    case("targetport-name-unresolved", DEP + "      containers: [{name: a, ports: [{containerPort: 80, "
         "name: http}]}]\n---\napiVersion: v1  #<\nkind: Service\nmetadata: {name: web}\nspec:\n"
         "  selector: {app: web}\n  ports: [{port: 80, targetPort: https}]\n",
         '"https": no container port of the selected pods has this name'),
    # ---- the allocator (plan) --------------------------------------------------------------
    case("clusterip-kube-dns", SVC.replace("v1\n", "v1  #<\n", 1) + "spec:\n  clusterIP: 10.96.0.10\n"
         "  ports: [{port: 80}]\n", "provided IP is already allocated (to Service "
         "kube-system/kube-dns)", plan=True),
    case("clusterip-outside", SVC.replace("v1\n", "v1  #<\n", 1) + "spec:\n  clusterIP: 10.0.0.5\n  ports: [{port: 80}]\n",
         "10.0.0.5: not in the valid range", plan=True),
    case("clusterip-twice", SVC + "spec: {clusterIP: 10.96.5.5, ports: [{port: 80}]}\n---\n"
         "apiVersion: v1  #<\nkind: Service\nmetadata: {name: two}\n"
         "spec: {clusterIP: 10.96.5.5, ports: [{port: 80}]}\n",
         'Service "two": spec.clusterIP: 10.96.5.5: provided IP is already allocated (to Service '
         'default/web)', plan=True),
    case("nodeport-twice", SVC + "spec: {type: NodePort, ports: [{port: 80, nodePort: 30080}]}\n---\n"
         "apiVersion: v1  #<\nkind: Service\nmetadata: {name: two}\n"
         "spec: {type: NodePort, ports: [{port: 80, nodePort: 30080}]}\n",
         "30080: provided port is already allocated", plan=True),
    case("lb-ip-outside-pool", SVC.replace("v1\n", "v1  #<\n", 1) + "spec: {type: LoadBalancer, loadBalancerIP: 1.2.3.4, "
         "ports: [{port: 80}]}\n", "not in the load balancer pool", plan=True),
    case("too-many-pods", DEP.replace("apiVersion: apps/v1\n", "apiVersion: apps/v1  #<\n")
         + C1 + "  replicas: 300\n",
         'Deployment "web": spec.replicas: 300 more pods do not fit', plan=True),
    # ---- the Cluster document ----------------------------------------------------------------
    case("cluster-nodes-zero", CLUSTER + "spec:\n  nodes: 0  #<\n", "spec.nodes: 0: must be between 1 and 250"),
    case("cluster-nodes-many", CLUSTER + "spec:\n  nodes: 251  #<\n", "must be between 1 and 250"),
    case("cluster-nodes-string", CLUSTER + "spec:\n  nodes: three  #<\n", "a number of nodes (1-250)"),
    case("cluster-node-names-dup", CLUSTER + "spec:\n  nodes: [a, a]  #<\n", '"a": duplicate name'),
    case("cluster-proxy-ebpf", CLUSTER + "spec:\n  proxy: {mode: ebpf}  #<\n",
         '"ebpf": not a proxy mode'),
    case("cluster-proxy-bogus", CLUSTER + "spec:\n  proxy: {mode: ebpf}  #<\n", '"ebpf": not a proxy mode'),
    case("cluster-backend-bogus", CLUSTER + "spec:\n  proxy: {iptablesBackend: x}  #<\n",
         '"x": supported values: "auto", "legacy", "nft"'),
    case("cluster-sync-period", CLUSTER + "spec:\n  proxy: {syncPeriod: soon}  #<\n", "a duration between"),
    case("cluster-subnets-overlap", CLUSTER + "spec:\n  networking:\n    podSubnet: 10.96.0.0/16\n"
         "    serviceSubnet: 10.96.0.0/12  #<\n", "overlaps"),
    case("cluster-subnet-small", CLUSTER + "spec:\n  networking:\n    podSubnet: 10.244.0.0/24  #<\n",
         "must be /22 or larger"),
    case("cluster-subnet-bad", CLUSTER + "spec:\n  networking:\n    nodeSubnet: 172.18.0.1/16  #<\n",
         "no host bits"),
    case("cluster-pool-bad", CLUSTER + "spec:\n  networking:\n    loadBalancerPool: here  #<\n",
         "must be FIRST-LAST"),
    case("cluster-domain-bad", CLUSTER + "spec:\n  networking:\n    clusterDomain: Bad_Domain  #<\n",
         "RFC 1123 subdomain"),
    case("cluster-client-hostname", CLUSTER + "spec:\n  clients: [{name: db, hostnames: ['no way']}]  #<\n",
         "must be a DNS name"),
    case("cluster-checks-scalar", CLUSTER + "checks: [curl]  #<\n", "checks[0]: must be a mapping"),
    # ---- endpoints ---------------------------------------------------------------------------
    case("slice-no-service-label", "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
         "metadata: {name: s}  #<\nendpoints: []\n", 'needs "kubernetes.io/service-name"'),
    case("slice-bad-address", "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
         "metadata: {name: s, labels: {kubernetes.io/service-name: web}}\nendpoints:\n"
         "- addresses: [10.1.2]  #<\n", "must be a valid IPv4 address"),
    case("slice-ipv6", "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
         "metadata: {name: s, labels: {kubernetes.io/service-name: web}}\naddressType: IPv6  #<\n",
         '"IPv6": supported values: "IPv4"'),
    case("endpoints-two-subsets", "apiVersion: v1\nkind: Endpoints\nmetadata: {name: web}\n"
         "subsets:  #<\n- addresses: [{ip: 10.1.2.3}]\n- addresses: [{ip: 10.1.2.4}]\n",
         "only one subset is supported"),
    case("namespace-duplicate", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n"
         "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}  #<\n", "already defined at"),
    # ---- ingress -----------------------------------------------------------------------------
    case("ingress-v1beta1", "apiVersion: networking.k8s.io/v1beta1  #<\nkind: Ingress\n"
         "metadata: {name: a}\n", "removed in Kubernetes 1.22; use apiVersion: networking.k8s.io/v1"),
    case("ingress-v1beta1-on-1.22", CLUSTER + 'spec: {kubernetesVersion: "1.22"}\n---\n'
         "apiVersion: networking.k8s.io/v1beta1  #<\nkind: IngressClass\nmetadata: {name: a}\n",
         "removed in Kubernetes 1.22; use apiVersion: networking.k8s.io/v1"),
    case("old-ingress-v1-backend", OLD_ING + "spec:\n  backend:\n"
         "    service: {name: web, port: {number: 80}}  #<\n", 'unknown field "spec.backend.service"'),
    case("old-ingress-default-backend", OLD_ING + "spec:\n  defaultBackend: {serviceName: web}  #<\n",
         'unknown field "spec.defaultBackend"'),
    case("old-ingress-no-service-name", OLD_ING + "spec:\n  rules:\n  - http:\n      paths:\n"
         "      - backend: {servicePort: 80}  #<\n",
         "spec.rules[0].http.paths[0].backend.serviceName: Required value"),
    case("old-ingress-port-bogus", OLD_ING + "spec:\n  backend:\n    serviceName: web\n"
         "    servicePort: 0  #<\n", "spec.backend.servicePort: 0: must be a port number"),
    case("old-ingress-port-name-bogus", OLD_ING + "spec:\n  backend:\n    serviceName: web\n"
         '    servicePort: "80"  #<\n', "spec.backend.servicePort: \"80\": a port name is"),
    case("old-ingress-no-port", OLD_ING + "spec:\n  backend: {serviceName: web}  #<\n",
         "spec.backend.servicePort: Required value"),
    case("old-ingress-resource", OLD_ING + "spec:\n  backend:\n"
         "    resource: {kind: Bucket, name: b}  #<\n", "spec.backend.resource: not modelled by minikp"),
    case("old-ingress-path-type-bogus", OLD_ING + "spec:\n  rules:\n  - http:\n      paths:\n"
         "      - path: /\n        pathType: Regex  #<\n"
         "        backend: {serviceName: web, servicePort: 80}\n", '"Regex": supported values'),
    case("ingress-empty", ING + "spec: {}  #<\n", "either `defaultBackend` or `rules` must be specified"),
    case("ingress-no-path-type", ING + "spec:\n  rules:\n  - http:\n      paths:\n"
         "      - {path: /, backend: {service: {name: web, port: {number: 80}}}}  #<\n",
         "spec.rules[0].http.paths[0].pathType: Required value"),
    case("ingress-path-type-bogus", ING + "spec:\n  rules:\n  - http:\n      paths:\n"
         "      - path: /\n        pathType: Regex  #<\n", '"Regex": supported values: "Exact"'),
    case("ingress-relative-path", ING + "spec:\n  rules:\n  - http:\n      paths:\n"
         "      - path: api  #<\n        pathType: Prefix\n", '"api": must be an absolute path'),
    case("ingress-port-both", ING + "spec:\n  defaultBackend:\n    service:\n      name: web\n"
         "      port: {number: 80, name: http}  #<\n",
         "spec.defaultBackend.service.port: exactly one of `number` or `name`"),
    case("ingress-port-zero", ING + "spec:\n  defaultBackend:\n    service:\n      name: web\n"
         "      port: {number: 0}  #<\n", "port.number: 0: must be a port number"),
    case("ingress-resource-backend", ING + "spec:\n  defaultBackend:\n"
         "    resource: {kind: Bucket, name: b}  #<\n", "defaultBackend.resource: not modelled by minikp"),
    case("ingress-bad-host", ING + "spec:\n  rules:\n  - host: Www_1  #<\n",
         "spec.rules[0].host: \"Www_1\": must be a DNS name"),
    case("ingress-unknown-field", ING + "spec:\n  rules:\n  - host: a.test\n    htpp: {}  #<\n",
         'unknown field "spec.rules[0].htpp"'),
    case("tls-secret-no-key", "apiVersion: v1\nkind: Secret\nmetadata: {name: t}\n"
         "type: kubernetes.io/tls\ndata:  #<\n  tls.crt: " + PEM64 + "\n",
         "data[tls.key]: Required value"),
    case("tls-secret-not-base64", "apiVersion: v1\nkind: Secret\nmetadata: {name: t}\n"
         "type: kubernetes.io/tls\ndata:\n  tls.crt: '%%%'  #<\n", "data[tls.crt]: must be base64"),
    case("tls-secret-not-pem", "apiVersion: v1\nkind: Secret\nmetadata: {name: t}\n"
         "type: kubernetes.io/tls\ndata:\n  tls.crt: aGVsbG8=  #<\n", "not a PEM certificate"),
    case("cluster-ingress-bogus", CLUSTER + "spec:\n  ingress: traefik  #<\n",
         'spec.ingress: "traefik": supported values: "", "nginx"'),
]


def marked(text: str) -> tuple[str, int | None]:
    """The text without its marker, and the 1-based line the marker was on (None: no line)."""
    lines = text.split("\n")
    at = next((i + 1 for i, ln in enumerate(lines) if ln.endswith(MARK)), None)
    return "\n".join(ln[: -len(MARK)].rstrip() if ln.endswith(MARK) else ln for ln in lines), at


def test_the_catalogue_is_large_enough():
    assert len(CASES) + len(HOSTILE) >= 100


@pytest.fixture
def no_cluster(monkeypatch):
    """main() as root, but nothing can be built or changed: a bad input that were accepted
    would fail here instead."""
    def refuse(*a, **k):
        raise AssertionError("a bad input got through to the cluster")

    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    for made in ("start_cluster", "run_cluster", "_request"):
        monkeypatch.setattr(client, made, refuse)
    no_lock(monkeypatch)


def no_lock(monkeypatch):
    """`up` takes the cluster lock (a directory in the state root) before it reads the files:
    in-process, no lock and no signal handlers."""
    from minikp import clusterlock

    monkeypatch.setattr(client, "take_lock_for_up", lambda name: -1)
    monkeypatch.setattr(client, "release_lock", lambda name, lock: None)
    monkeypatch.setattr(clusterlock.StopOnSignal, "install", lambda self: self)


def run_cli(capsys, verb: str, path: str) -> tuple[int, str]:
    rc = cli.main([verb, path, "--name", "relinput-unit"])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("verb", ["up", "apply"])
@pytest.mark.parametrize("text, expect, plan", CASES)
def test_bad_input(tmp_path, capsys, no_cluster, verb, text, expect, plan):
    text, line = marked(text)
    path = str(tmp_path / "bad.yaml")
    with open(path, "w") as f:
        f.write(text)
    if verb == "apply" and plan:  # the supervisor plans an apply: its kernel test covers it
        load_scenario([path])
        return
    rc, err = run_cli(capsys, verb, path)
    assert rc == 2, err
    assert "Traceback" not in err
    assert expect in err
    where = f"minikp: {path}:{line}: " if line else f"minikp: {path}"
    assert err.startswith(where), err[:300]
    assert len(err) < 2000  # long values are cut


# ---- hostile files: made, not written ------------------------------------------------------------


def alias_bomb(where: str) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi"):  # g, 9**7 values, passes the cap
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]" + MARK * (name == "g"))
    anchors = "\n".join("    " + ln for ln in lines)
    return ("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n"
            f"  {where}:\n{anchors}\nspec: {{ports: [{{port: 80}}]}}\n")


def make_text(text):
    def make(tmp_path):
        t, line = marked(text)
        p = tmp_path / "bad.yaml"
        p.write_text(t)
        return str(p), line
    return make


def make_bytes(data: bytes, line=None):
    def make(tmp_path):
        p = tmp_path / "bad.yaml"
        p.write_bytes(data)
        return str(p), line
    return make


def make_fifo(tmp_path):
    p = str(tmp_path / "fifo.yaml")
    os.mkfifo(p)
    return p, None


def make_huge(tmp_path):
    p = tmp_path / "huge.yaml"
    with open(p, "w") as f:
        f.write(SVC + "metadata:\n  annotations:\n")
        chunk = "".join(f"    k{i}: {'v' * 100}\n" for i in range(1000))
        for _ in range(170):  # 17 MiB
            f.write(chunk)
    return str(p), None


def make_dir(tmp_path):
    return str(tmp_path), None


def make_existing(path):
    return lambda tmp_path: (path, None)


HOSTILE = [
    pytest.param(make_text(alias_bomb("labels")), "aliases counted expanded", id="alias-bomb-labels"),
    pytest.param(make_text(alias_bomb("annotations")), "aliases counted expanded",
                 id="alias-bomb-annotations"),
    pytest.param(make_text("x: [" + "{a: 1}," * 1_100_000 + "]  #<\n"), "more than 1,000,000 values",
                 id="a-million-mappings"),
    pytest.param(make_existing("/dev/zero"), "a device", id="dev-zero"),
    pytest.param(make_existing("/dev/null"), "a device", id="dev-null"),
    pytest.param(make_fifo, "a FIFO", id="fifo"),
    pytest.param(make_dir, "a directory", id="directory"),
    pytest.param(make_huge, "larger than 16 MiB", id="huge-file"),
    pytest.param(make_existing("/nonexistent/scenario.yaml"), "cannot read: No such file",
                 id="missing-file"),
    pytest.param(make_text("a: " + "[" * 10000 + "  #<\n"), "nested more than 100 levels",
                 id="deep-flow-10000"),
    pytest.param(make_text("a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 3000))
                           .replace("k100:", "k100:  #<")), "nested more than 100 levels",
                 id="deep-block-3000"),
    pytest.param(make_text("- " * 5000 + "a  #<\n"), "nested more than 100 levels",
                 id="deep-sequence-5000"),
    pytest.param(make_text("a: " + "{b: " * 10000 + "  #<\n"), "nested more than 100 levels",
                 id="deep-mapping-10000"),
    pytest.param(make_bytes((SVC + "spec:\n  type: caf\xe9\n").encode("latin-1"), line=5),
                 "not UTF-8: byte 0xe9 at offset", id="latin-1"),
    pytest.param(make_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", line=3), "NUL bytes", id="png"),
    pytest.param(make_bytes(SVC.encode("utf-16-le"), line=1), "NUL bytes", id="utf16-no-bom"),
    pytest.param(make_bytes(b"\xff\xfe\x00\xd8a\x00", line=1), "not valid UTF-16-LE", id="utf16-broken"),
    pytest.param(make_bytes(b"\xff\xfe\x00\x00" + b"\x00\x00\x11\x00", line=1), "not valid UTF-32-LE",
                 id="utf32-broken"),
    pytest.param(make_bytes(b"\xef\xbb\xbf" + b"kind: \xff\n", line=1), "not valid UTF-8",
                 id="utf8-bom-broken"),
]


@pytest.mark.parametrize("verb", ["up", "apply"])
@pytest.mark.parametrize("make, expect", HOSTILE)
def test_hostile_input_exits_2_in_bounded_memory_and_time(tmp_path, verb, make, expect):
    """In a child process limited to 1 GiB of address space and 60 s: a MemoryError or a hang
    would fail, not just a wrong message."""
    path, line = make(tmp_path)
    child = textwrap.dedent(f"""
        import os, resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from minikp import cli, client
        def refuse(*a, **k):
            raise SystemExit("a bad input got through to the cluster")
        os.geteuid = lambda: 0
        client.start_cluster = client.run_cluster = client._request = refuse
        client.take_lock_for_up, client.release_lock = (lambda name: -1), (lambda name, lock: None)
        sys.exit(cli.main([{verb!r}, {path!r}, "--name", "relinput-unit"]))
        """)
    cp = subprocess.run([sys.executable, "-c", child], cwd=ROOT, capture_output=True, text=True,
                        timeout=60, env=dict(os.environ, PYTHONPATH=ROOT))
    assert cp.returncode == 2, cp.stderr[-2000:]
    assert "Traceback" not in cp.stderr
    assert expect in cp.stderr
    where = f"minikp: {path}:{line}: " if line else f"minikp: {path}: "
    assert cp.stderr.startswith(where), cp.stderr[:300]
    assert len(cp.stderr) < 2000


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])
def test_a_file_with_a_byte_order_mark_loads(tmp_path, codec):
    p = tmp_path / "s.yaml"
    data = (SVC + "spec: {ports: [{port: 80}]}\n").encode(codec)
    if codec == "utf-16-be":
        data = b"\xfe\xff" + data
    p.write_bytes(data)
    assert load_scenario([str(p)]).services[0].name == "web"
