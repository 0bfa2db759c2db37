"""The pod sandbox's pure parts (no root): securityContext, volumes and env parsing with
FILE:LINE errors, capability sets as containerd computes them, the kubelet's environment,
and the Sandbox a container gets."""

import json
import textwrap

import pytest

from minikp.errors import InputError
from minikp.scenario.load import load_scenario
from minikp.scenario.plan import plan_cluster
from minikp.workloads import capabilities, podenv
from minikp.workloads.sandbox import (PodSandboxes, Sandbox, effective_security, pod_sandbox,
                                      privileged_warnings)

POD = """
apiVersion: v1
kind: Pod
metadata: {name: p, labels: {app: p}}
spec:
  SPEC
"""


def load(tmp_path, *docs):
    path = tmp_path / "s.yaml"
    path.write_text("\n---\n".join(textwrap.dedent(d) for d in docs))
    return load_scenario([str(path)])


def pod(spec: str) -> str:
    return POD.replace("SPEC", textwrap.indent(textwrap.dedent(spec), "  ").strip())


def error(tmp_path, *docs) -> str:
    with pytest.raises(InputError) as e:
        load(tmp_path, *docs)
    assert e.value.exit_code == 2
    return str(e.value)


# ---- capabilities --------------------------------------------------------------------


def test_docker_default_capabilities():
    caps = capabilities.container_capabilities()
    assert caps == capabilities.DOCKER_DEFAULT and len(caps) == 14
    assert not caps & {"SYS_ADMIN", "NET_ADMIN", "SYS_MODULE", "SYS_PTRACE"}
    # the mask Docker containers show in /proc/self/status
    assert capabilities.mask(caps) == 0xA80425FB
    assert capabilities.names_of(0xA80425FB) == caps


def test_add_and_drop_in_containerds_order():
    cc = capabilities.container_capabilities
    assert cc(add=["NET_ADMIN"]) == capabilities.DOCKER_DEFAULT | {"NET_ADMIN"}
    assert cc(add=["cap_net_admin"], drop=["chown"]) == \
        (capabilities.DOCKER_DEFAULT | {"NET_ADMIN"}) - {"CHOWN"}
    assert cc(drop=["ALL"]) == frozenset()
    assert cc(drop=["ALL"], add=["NET_BIND_SERVICE"]) == {"NET_BIND_SERVICE"}
    assert cc(add=["ALL"], drop=["SYS_ADMIN"]) == capabilities.ALL - {"SYS_ADMIN"}
    assert cc(add=["NET_ADMIN"], drop=["NET_ADMIN"]) == capabilities.DOCKER_DEFAULT  # drop wins
    assert cc(drop=["ALL"], privileged=True) == capabilities.ALL
    assert capabilities.normalize("bogus") is None


# ---- parsing ---------------------------------------------------------------------------


def test_security_context_volumes_and_env_are_parsed(tmp_path):
    s = load(tmp_path, pod("""
        securityContext: {runAsUser: 1000, runAsGroup: 3000}
        volumes:
        - {name: scratch, emptyDir: {}}
        - {name: logs, hostPath: {path: /var/log, type: Directory}}
        containers:
        - name: c
          image: busybox
          command: [sleep, "1000"]
          securityContext:
            runAsUser: 2000
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            capabilities: {add: [NET_ADMIN], drop: [ALL]}
          volumeMounts:
          - {name: scratch, mountPath: /scratch}
          - {name: logs, mountPath: /host-logs, readOnly: true}
          env:
          - {name: A, value: "1"}
          - name: ME
            valueFrom: {fieldRef: {fieldPath: metadata.name}}
          envFrom:
          - configMapRef: {name: absent, optional: true}
        """))
    t = s.workloads[0].template
    assert (t.security_context.run_as_user, t.security_context.run_as_group) == (1000, 3000)
    assert [(v.name, v.kind, v.path, v.host_path_type) for v in t.volumes] == \
        [("scratch", "emptyDir", "", ""), ("logs", "hostPath", "/var/log", "Directory")]
    c = t.containers[0]
    sc = c.security_context
    assert (sc.run_as_user, sc.read_only_root_filesystem, sc.allow_privilege_escalation) == (2000, True, False)
    assert (sc.capabilities_add, sc.capabilities_drop) == (["NET_ADMIN"], ["ALL"])
    assert [(m.name, m.mount_path, m.read_only) for m in c.volume_mounts] == \
        [("scratch", "/scratch", False), ("logs", "/host-logs", True)]
    assert [(e.name, e.value, e.field_path) for e in c.env] == [("A", "1", ""), ("ME", "", "metadata.name")]
    assert c.env_from[0].config_map == "absent" and c.env_from[0].optional
    eff = effective_security(t.security_context, sc)
    assert (eff.run_as_user, eff.run_as_group) == (2000, 3000)  # the container's wins


@pytest.mark.parametrize("spec, field, what", [
    ("containers: [{name: c, volumeMounts: [{name: nope, mountPath: /x}]}]",
     "spec.containers[0].volumeMounts[0].name", '"nope": not found in spec.volumes'),
    ("volumes: [{name: v, hostPath: {path: relative}}]\ncontainers: [{name: c}]",
     "spec.volumes[0].hostPath.path", "must be an absolute path"),
    ("volumes: [{name: v, configMap: {name: x}}]\ncontainers: [{name: c}]",
     "spec.volumes[0]", "minikp supports exactly one of emptyDir, hostPath"),
    ("volumes: [{name: v, emptyDir: {}}]\ncontainers: [{name: c, volumeMounts: [{name: v, mountPath: rel}]}]",
     "spec.containers[0].volumeMounts[0].mountPath", "must be an absolute path"),
    ("containers: [{name: c, securityContext: {capabilities: {add: [NET_WIZARD]}}}]",
     "spec.containers[0].securityContext.capabilities.add[0]", '"NET_WIZARD": not a Linux capability'),
    ("containers: [{name: c, securityContext: {privileged: yes please}}]",
     "spec.containers[0].securityContext.privileged", "must be true or false"),
    ("containers: [{name: c, securityContext: {runAsUser: -1}}]",
     "spec.containers[0].securityContext.runAsUser", "must be an integer"),
    ("containers: [{name: c, env: [{name: N, value: 5}]}]",
     "spec.containers[0].env[0].value", "must be a string"),
    ("containers: [{name: c, env: [{name: N, valueFrom: {fieldRef: {fieldPath: spec.bogus}}}]}]",
     "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath", '"spec.bogus": supported'),
    ("containers: [{name: c, env: [{name: N, valueFrom: {secretKeyRef: {name: s, key: k}}}]}]",
     "spec.containers[0].env[0].valueFrom", "secretKeyRef: minikp supports exactly one of"),
    ("containers: [{name: c, envFrom: [{configMapRef: {name: cm}}]}]",
     "spec.containers[0].envFrom[0].configMapRef", 'ConfigMap "cm" not found in namespace "default"'),
])
def test_bad_sandbox_fields_name_file_line_and_field(tmp_path, spec, field, what):
    msg = error(tmp_path, pod(spec))
    assert msg.startswith(f"{tmp_path / 's.yaml'}:") and 'Pod "p": ' in msg
    assert f"{field}: " in msg and what in msg, msg


def test_privileged_is_warned_with_file_and_line(tmp_path):
    s = load(tmp_path, pod("""
        containers:
        - name: c
          securityContext:
            privileged: true
        """))
    [w] = privileged_warnings(s)
    assert w.startswith(f"{tmp_path / 's.yaml'}:9: Pod \"p\": spec.containers[0].securityContext"
                        ".privileged: true")


# ---- the environment ------------------------------------------------------------------


SERVICES = """
apiVersion: v1
kind: Service
metadata: {name: my-svc}
spec:
  selector: {app: p}
  ports: [{port: 80, name: http}, {port: 53, name: dns-udp, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: headless}
spec: {clusterIP: None, selector: {app: p}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: elsewhere, namespace: other}
spec: {selector: {app: p}, ports: [{port: 81}]}
"""


def planned(tmp_path, spec):
    plan = plan_cluster(load(tmp_path, pod(spec), SERVICES))
    p = next(x for x in plan.pods if x.name == "p")
    return plan, p


def test_env_is_the_kubelets_and_nothing_from_the_host(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIKP_HOST_SECRET", "leak")
    plan, p = planned(tmp_path, """
        containers:
        - name: c
          env:
          - {name: GREETING, value: "hi $(MY_SVC_SERVICE_HOST) $$(KEPT) $(UNKNOWN)"}
          - name: IP
            valueFrom: {fieldRef: {fieldPath: status.podIP}}
          - name: NODE
            valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
          - name: NS
            valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
          - name: APP
            valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}
        """)
    svc = next(s for s in plan.services if s.service.name == "my-svc")
    env = podenv.container_env(p, p.template.containers[0], plan.services, "172.18.0.2")
    ip = svc.cluster_ip
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert env["HOSTNAME"] == "p"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1" and env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT"] == "tcp://10.96.0.1:443"
    assert env["KUBERNETES_PORT_443_TCP_ADDR"] == "10.96.0.1"
    assert env["MY_SVC_SERVICE_HOST"] == ip and env["MY_SVC_SERVICE_PORT"] == "80"
    assert env["MY_SVC_SERVICE_PORT_HTTP"] == "80" and env["MY_SVC_SERVICE_PORT_DNS_UDP"] == "53"
    assert env["MY_SVC_PORT"] == f"tcp://{ip}:80"
    assert (env["MY_SVC_PORT_53_UDP"], env["MY_SVC_PORT_53_UDP_PROTO"], env["MY_SVC_PORT_53_UDP_PORT"],
            env["MY_SVC_PORT_53_UDP_ADDR"]) == (f"udp://{ip}:53", "udp", "53", ip)
    assert not any(k.startswith(("HEADLESS_", "ELSEWHERE_", "KUBE_DNS_")) for k in env)  # headless; other namespaces
    assert env["GREETING"] == f"hi {ip} $(KEPT) $(UNKNOWN)"
    assert (env["IP"], env["NODE"], env["NS"], env["APP"]) == (p.ip, p.node, "default", "p")
    assert "MINIKP_HOST_SECRET" not in env and "HOME" not in env


def test_enable_service_links_false_keeps_only_the_kubernetes_service(tmp_path):
    plan, p = planned(tmp_path, "enableServiceLinks: false\ncontainers: [{name: c}]")
    env = podenv.container_env(p, p.template.containers[0], plan.services)
    assert "KUBERNETES_SERVICE_HOST" in env and "MY_SVC_SERVICE_HOST" not in env


def test_config_maps_feed_env_from_and_key_refs_when_loaded(tmp_path):
    plan, p = planned(tmp_path, """
        containers:
        - name: c
          envFrom: [{configMapRef: {name: cm, optional: true}, prefix: CM_}]
          env:
          - name: ONE
            valueFrom: {configMapKeyRef: {name: cm, key: one, optional: true}}
        """)
    env = podenv.container_env(p, p.template.containers[0], plan.services,
                               config_maps={("default", "cm"): {"one": "1", "two": "2"}})
    assert (env["CM_one"], env["CM_two"], env["ONE"]) == ("1", "2", "1")
    env = podenv.container_env(p, p.template.containers[0], plan.services)  # optional, absent
    assert "ONE" not in env and "CM_one" not in env


def test_command_and_args_expand_env_references(tmp_path):
    plan, p = planned(tmp_path, """
        containers:
        - {name: c, command: [echo, "$(WHO)"], args: ["$$(WHO)"], env: [{name: WHO, value: me}]}
        """)
    c = p.template.containers[0]
    assert podenv.command_argv(c, podenv.container_env(p, c, plan.services)) == ["echo", "me", "$(WHO)"]


# ---- the Sandbox a container gets --------------------------------------------------------


def test_pod_sandbox_from_security_context_and_volumes(tmp_path):
    plan, p = planned(tmp_path, """
        securityContext: {runAsUser: 1000}
        volumes:
        - {name: scratch, emptyDir: {}}
        - {name: data, hostPath: {path: /srv/data, type: DirectoryOrCreate}}
        containers:
        - name: c
          securityContext: {capabilities: {add: [NET_ADMIN], drop: [KILL]}, readOnlyRootFilesystem: true}
          volumeMounts:
          - {name: scratch, mountPath: /cache, subPath: sub}
          - {name: data, mountPath: /data, readOnly: true}
        """)
    sb = pod_sandbox(p, p.template.containers[0], plan.services, "/run/netns/x", "/r.conf", "/vols")
    assert set(sb.capabilities) == (capabilities.DOCKER_DEFAULT | {"NET_ADMIN"}) - {"KILL"}
    assert (sb.uid, sb.gid, sb.read_only_root, sb.no_new_privs, sb.privileged) == (1000, 1000, True, True, False)
    assert [(m.source, m.target, m.read_only, m.create) for m in sb.mounts] == \
        [("/vols/scratch/sub", "/cache", False, "dir"), ("/srv/data", "/data", True, "dir")]
    assert Sandbox.from_json(sb.to_json()) == sb


def test_privileged_sandbox_has_every_capability_and_may_gain_privileges(tmp_path):
    plan, p = planned(tmp_path, "containers: [{name: c, securityContext: {privileged: true}}]")
    sb = pod_sandbox(p, p.template.containers[0], plan.services, "/n", "", "/v")
    assert sb.privileged and not sb.no_new_privs and set(sb.capabilities) == capabilities.ALL


def test_pod_sandboxes_are_built_when_needed_from_the_services_at_pod_start(tmp_path):
    plan, p = planned(tmp_path, "containers: [{name: a}, {name: b, env: [{name: X, value: x}]}]")
    made = PodSandboxes(p, plan.services, "/n", "", "/v")
    plan.services.clear()  # a Service deleted after the pod started: still in its env
    assert made.built == {}
    assert made.first() is made.of(p.template.containers[0]) and list(made.built) == ["a"]
    assert "MY_SVC_SERVICE_HOST" in made.first().env
    assert made.of(p.template.containers[1]).env["X"] == "x"
    assert Sandbox.from_dict(json.loads(made.first().to_json())) == made.first()


def test_mount_targets_follow_symlinks_inside_the_sandboxs_root(tmp_path):
    from minikp.workloads.sandbox import in_root
    root = tmp_path / "root"
    (root / "run").mkdir(parents=True)
    (root / "var").mkdir()
    (root / "var" / "run").symlink_to("/run")  # absolute: the sandbox's /run, not the host's
    (root / "etc").mkdir()
    (root / "etc" / "up").symlink_to("../../..")  # climbing stops at the root
    r = str(root)
    assert in_root(r, "/var/run/secrets/token") == f"{r}/run/secrets/token"
    assert in_root(r, "/etc/up/data") == f"{r}/data"
    assert in_root(r, "/a/./b/../c") == f"{r}/a/c"
    assert in_root(r, "/") == f"{r}/"
