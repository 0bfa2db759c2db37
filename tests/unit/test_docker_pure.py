"""The Docker runtime's pure parts: the private engine's flags, its refcount, image names
and build contexts."""

import os

import pytest

from minikp.docker import engine, images


def test_private_dockerd_flags_leave_the_host_alone():
    p = engine.Paths(run="/run/minikp/_docker", data="/var/lib/minikp/docker")
    argv = engine.dockerd_argv(p)
    for flag in ("--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none",
                 "--userland-proxy=false"):
        assert flag in argv
    # every path the engine writes is its own, never the default /var/run/docker*
    assert argv[argv.index("--exec-root") + 1] == "/run/minikp/_docker/exec"
    assert argv[argv.index("--pidfile") + 1] == "/run/minikp/_docker/dockerd.pid"
    assert argv[argv.index("-H") + 1] == "unix:///run/minikp/_docker/docker.sock"
    assert argv[argv.index("--data-root") + 1] == "/var/lib/minikp/docker"


def test_engine_users_that_are_gone_do_not_hold_it():
    up = {"a", "_pid-1"}
    assert engine.live_users(["b", "a", "_pid-99"], up.__contains__) == ["a"]
    assert engine.live_users([], up.__contains__) == []


def test_process_user_is_never_a_cluster_name():
    from minikp import names
    assert not names.is_cluster_name(engine.process_user())


def test_docker_host_wins(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///somewhere/docker.sock")
    assert engine.acquire("c1") == "unix:///somewhere/docker.sock"
    assert engine.release("c1") is False  # never stops an engine it does not own


@pytest.mark.parametrize("image,own", [("minikp/serve-hostname", True),
                                       ("minikp/echo:latest", True), ("minikp/echo:1.0", False),
                                       ("minikp/other", False), ("nginx", False)])
def test_own_images(image, own):
    assert images.is_own(image) is own


@pytest.mark.skipif(not os.path.exists(images.BUSYBOX), reason="needs busybox-static")
def test_serve_hostname_context_has_what_its_dockerfile_copies(tmp_path):
    ctx = images.context("serve-hostname", str(tmp_path / "ctx"))
    dockerfile = open(os.path.join(ctx, "Dockerfile")).read()
    copied = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ")]
    assert copied and all(os.path.exists(os.path.join(ctx, c)) for c in copied)
    assert dockerfile.startswith("#") and "FROM scratch" in dockerfile  # builds offline


# ---- restartPolicy and the kubelet's back-off (every runtime) ----------------------------

from minikp.workloads import restarts  # noqa: E402


def test_backoff_doubles_from_10s_to_5min():
    assert [restarts.delay_s(n) for n in range(7)] == [0, 10, 20, 40, 80, 160, 300]
    assert restarts.delay_s(50) == 300


def test_backoff_waits_then_counts_the_restart():
    b = restarts.Backoff()
    assert b.exited(100.0) == 100.0 and b.due(100.0)  # the first restart: at once
    b.restarted(100.0)
    assert b.restarts == 1 and not b.due(100.0)
    assert b.exited(101.0) == 111.0 and not b.due(110.0) and b.due(111.0)
    b.restarted(111.0)
    b.exited(111.0 + restarts.RESET_AFTER_S)  # ran 10 minutes: the back-off starts over
    assert b.waiting_until == 111.0 + restarts.RESET_AFTER_S


@pytest.mark.parametrize("policy,code,again", [("Always", 0, True), ("Always", 1, True),
                                               ("OnFailure", 0, False), ("OnFailure", 2, True),
                                               ("Never", 1, False)])
def test_restart_policy(policy, code, again):
    assert restarts.should_restart(policy, code) is again


# ---- the container side of a Docker pod ---------------------------------------------------

from minikp.docker import runtime  # noqa: E402
from minikp.scenario.model import Container, PodPlan, PodTemplate  # noqa: E402
from minikp.workloads.sandbox import Mount, Sandbox  # noqa: E402


def _pod(annotations=None):
    return PodPlan("default", "web-1", "node-1", "10.244.1.5", "Pod", "web-1",
                   PodTemplate(annotations=annotations or {}, containers=[Container("c", "x")]))


def test_runtime_is_chosen_per_pod_or_cluster():
    from minikp.workloads.runtime import choose
    c = _pod().template.containers[0]
    assert choose(_pod({"minikp.dev/runtime": "docker"}), c) == "docker"
    assert choose(_pod(), c) == "builtin"
    assert choose(_pod(), c, "docker") == "docker"
    assert choose(_pod({"minikp.dev/runtime": "builtin"}), c, "docker") == "builtin"
    dns = _pod()
    dns.template.containers[0].image = "registry.k8s.io/coredns/coredns:v1.11.3"
    assert choose(dns, dns.template.containers[0], "docker") == "dns"  # the cluster DNS stays minikp's


def test_container_runs_in_the_pause_containers_namespace_with_the_kubelets_files():
    sb = Sandbox(netns="/run/netns/x", hostname="web-1",
                 env={"PATH": "/bin", "WEB_SERVICE_HOST": "10.96.0.7"},
                 capabilities=["CHOWN", "NET_BIND_SERVICE"], uid=1000, gid=1000,
                 resolv_conf="/run/minikp/c/resolv/default.conf",
                 mounts=[Mount("/data", "/srv", read_only=True)])
    c = Container("app", "img", command=["/serve"], args=["--to", "$(WEB_SERVICE_HOST)"])
    kw = runtime.run_kwargs(c, sb, "PAUSEID", "/run/minikp/c/pods/default_web-1.etc")
    assert kw["network_mode"] == kw["ipc_mode"] == "container:PAUSEID"
    assert kw["entrypoint"] == ["/serve"] and kw["command"] == ["--to", "10.96.0.7"]
    assert kw["environment"]["WEB_SERVICE_HOST"] == "10.96.0.7"
    assert kw["volumes"]["/run/minikp/c/resolv/default.conf"] == {"bind": "/etc/resolv.conf", "mode": "ro"}
    assert kw["volumes"]["/run/minikp/c/pods/default_web-1.etc/hosts"]["bind"] == "/etc/hosts"
    assert kw["volumes"]["/data"] == {"bind": "/srv", "mode": "ro"}
    assert kw["cap_drop"] == ["ALL"] and kw["cap_add"] == ["CHOWN", "NET_BIND_SERVICE"]
    assert kw["user"] == "1000:1000" and kw["security_opt"] == ["no-new-privileges"]


def test_args_alone_keep_the_images_entrypoint():
    sb = Sandbox(netns="", hostname="h", env={})
    kw = runtime.run_kwargs(Container("a", "i", args=["x"]), sb, "P", "/e")
    assert "entrypoint" not in kw and kw["command"] == ["x"]


def test_container_statuses_as_the_kubelet_reports_them():
    from minikp.controller.records import PodRecord
    rec = PodRecord(_pod())
    assert rec.container_statuses() == {} and not rec.finished()
    b = rec.restarts["c"] = restarts.Backoff()
    b.exited(5.0)
    b.restarted(5.0)
    assert rec.container_statuses() == {"c": {"restartCount": 1, "state": {"running": {}}}}
    b.exited(6.0)
    rec.exits["c"] = ("CrashLoopBackOff", 3)
    assert rec.container_statuses()["c"]["state"] == {"waiting": {"reason": "CrashLoopBackOff"}}
    assert rec.restarting_now() and not rec.finished()
    b.waiting_until = None  # restartPolicy Never: it stays down
    rec.exits["c"] = ("Error", 3)
    assert rec.finished()
    assert rec.container_statuses()["c"]["state"] == {"terminated": {"reason": "Error", "exitCode": 3}}


def test_get_pods_shows_a_containers_waiting_reason():
    from minikp.tables import pod_status_text
    p = {"metadata": {}, "status": {"phase": "Running", "containerStatuses": [
        {"state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}
    assert pod_status_text(p) == "ImagePullBackOff"


# ---- an image that cannot be had ----------------------------------------------------------

from minikp.workloads import imagepull  # noqa: E402


def test_a_failed_pull_shows_errimagepull_then_backs_off_10s_doubling_to_5min():
    b = imagepull.PullBackoff("reg/x:v1")
    tries, now = [], 100.0
    for _ in range(7):  # each retry fails again as soon as it is due
        assert b.due(now)
        now = b.failed(now, "manifest unknown")
        tries.append(now - b.failed_at)
        assert not b.due(now - 0.1)
    assert tries == [10, 20, 40, 80, 160, 300, 300]
    b.failed_at = 0.0
    assert b.waiting(0.5) == {"reason": "ErrImagePull",
                              "message": 'Failed to pull image "reg/x:v1": manifest unknown'}
    assert b.waiting(imagepull.ERR_SHOWN_S)["reason"] == "ImagePullBackOff"
    assert 'pulling image "reg/x:v1": manifest unknown' in b.waiting(9.0)["message"]


def test_a_pod_waiting_for_its_image_is_pending_and_up_names_it():
    from minikp.cli import waiting_pods
    from minikp.controller.endpoints import PodState
    from minikp.controller.objects import pod_object
    from minikp.controller.records import PodRecord
    from minikp.tables import pod_status_text
    rec = PodRecord(_pod())
    assert rec.phase == ""
    rec.pull = imagepull.PullBackoff("reg/x:v1")
    rec.pull.failed(50.0, "manifest unknown")
    st = {"pods": [pod_object(rec.pod, rec.state, "10.0.0.1", "", phase=rec.phase,
                              containers=rec.container_statuses(now=50.5))]}
    p = st["pods"][0]
    assert p["status"]["phase"] == "Pending" and pod_status_text(p) == "ErrImagePull"
    assert p["status"]["conditions"][0]["status"] == "False"
    assert waiting_pods(st) == ['pod default/web-1 not ready: ErrImagePull: Failed to pull '
                                'image "reg/x:v1": manifest unknown']
    later = rec.container_statuses(now=60.0)["c"]
    assert later == {"restartCount": 0, "state": {"waiting": rec.pull.waiting(60.0)}}
    assert later["state"]["waiting"]["reason"] == "ImagePullBackOff"


# ---- the scenario's fields ---------------------------------------------------------------

from minikp.errors import InputError  # noqa: E402
from minikp.scenario.load import load_scenario  # noqa: E402

POD = """
apiVersion: v1
kind: Pod
metadata: {name: p, annotations: {minikp.dev/runtime: %s}}
spec:
  restartPolicy: %s
  containers: [{name: c, image: minikp/echo}]
"""


def _load(tmp_path, text):
    f = tmp_path / "s.yaml"
    f.write_text(text)
    return load_scenario([str(f)])


def test_cluster_runtime_and_pod_restart_policy_load(tmp_path):
    s = _load(tmp_path, "apiVersion: minikp.dev/v1alpha1\nkind: Cluster\nspec: {runtime: docker}\n"
              "---" + POD % ("docker", "OnFailure"))
    assert s.cluster.runtime == "docker"
    assert s.workloads[0].template.restart_policy == "OnFailure"


@pytest.mark.parametrize("text,field", [
    (POD % ("podman", "Always"), "metadata.annotations.minikp.dev/runtime"),
    (POD % ("docker", "Sometimes"), "spec.restartPolicy"),
    ("apiVersion: minikp.dev/v1alpha1\nkind: Cluster\nspec: {runtime: rkt}\n", "spec.runtime")])
def test_bad_runtime_fields_are_input_errors(tmp_path, text, field):
    with pytest.raises(InputError) as e:
        _load(tmp_path, text)
    assert e.value.field == field
    assert "supported values" in str(e.value) or "is not a pod runtime; valid: " in str(e.value)


def test_logs_default_to_the_first_container_and_name_the_valid_ones():
    from minikp.logs import pick_container
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
    assert pick_container(pod, None)["name"] == "a"
    assert pick_container(pod, "b")["name"] == "b"
    with pytest.raises(InputError, match=r'container "x" is not valid for pod "p"; choose one of: \[a b\]'):
        pick_container(pod, "x")
