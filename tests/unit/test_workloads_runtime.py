"""The pod-runtime seam without root: which runtime runs a container (one place), and one
pod's containers started, watched and stopped through their runtimes."""

import pytest

from minikp.errors import InputError
from minikp.scenario.model import Container, PodPlan, PodTemplate
from minikp.workloads.runtime import RUNTIME_ANNOTATION, RUNTIMES, PodContext, PodWorkloads, choose


class Recorder:
    """A runtime that runs nothing and says what it was asked."""

    def __init__(self, started=True):
        self.calls, self.is_started, self.dead = [], started, set()

    def start(self, ctx, c):
        if c.name == "broken":
            raise RuntimeError("cannot start")
        self.calls.append(("start", ctx.key, c.name))
        return c.name

    def started(self, h):
        return self.is_started

    def exited(self, h):
        return h in self.dead

    def exit_code(self, h):
        return 3 if h in self.dead else None

    def stop(self, h, grace_s=2.0):
        self.calls.append(("stop", h, grace_s))

    def logs(self, h):
        return [f"{h}.log"]


def pod(*containers, annotations=None):
    return PodPlan("default", "p", "node-1", "10.244.1.2", "Pod", "p",
                   PodTemplate(containers=list(containers), annotations=annotations or {}))


def test_one_place_chooses_by_image_command_and_annotation():
    assert choose(None, Container("c", "nginx")) == "builtin"
    assert choose(None, Container("c", "busybox", command=["sleep", "1"])) == "command"
    assert choose(None, Container("c", "coredns/coredns", command=["/coredns"])) == "dns"
    p = pod(Container("c", "nginx"), annotations={RUNTIME_ANNOTATION: "command"})
    assert choose(p, p.template.containers[0]) == "command"


def test_an_unknown_runtime_annotation_is_refused_with_the_valid_ones():
    p = pod(Container("c", "nginx"), annotations={RUNTIME_ANNOTATION: "podman"})
    with pytest.raises(InputError, match='pod "p": annotation minikp.dev/runtime: "podman" is '
                                         "not a pod runtime; valid: builtin, command, dns, ingress-nginx, docker"):
        choose(p, p.template.containers[0])


def test_a_pod_runs_each_container_with_its_runtime():
    fake = Recorder()
    runtimes = {**RUNTIMES, "builtin": fake, "command": fake}
    p = pod(Container("web", "nginx"), Container("side", "busybox", command=["sleep", "9"]))
    w = PodWorkloads.start(PodContext("default/p", p, "/run/netns/x", "/tmp/x"), runtimes)
    assert fake.calls == [("start", "default/p", "web"), ("start", "default/p", "side")]
    assert [name for name, _, _ in w.parts] == ["builtin", "command"]
    assert w.started() and not w.exited() and w.exit_code() is None
    assert w.logs() == ["web.log", "side.log"]
    fake.dead.add("side")  # one container exits: the pod's workload has exited
    assert w.exited() and w.exit_code() == 3
    fake.is_started = False
    assert not w.started()
    w.stop(grace_s=0.5)
    assert fake.calls[-2:] == [("stop", "web", 0.5), ("stop", "side", 0.5)]


def test_a_container_that_cannot_start_stops_those_already_started():
    fake = Recorder()
    p = pod(Container("web", "nginx"), Container("broken", "nginx"))
    with pytest.raises(RuntimeError, match="cannot start"):
        PodWorkloads.start(PodContext("default/p", p, "/run/netns/x", "/tmp/x"),
                           {**RUNTIMES, "builtin": fake})
    assert fake.calls == [("start", "default/p", "web"), ("stop", "web", 2.0)]


def test_the_loader_refuses_an_unknown_runtime_with_file_line_and_field(tmp_path):
    from minikp.scenario.load import load_scenario

    f = tmp_path / "p.yaml"
    f.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n"
                 "    minikp.dev/runtime: podman\nspec: {containers: [{name: c, image: nginx}]}\n")
    with pytest.raises(InputError) as e:
        load_scenario([str(f)])
    assert str(e.value) == (f'{f}:6: Pod "p": metadata.annotations.minikp.dev/runtime: "podman" '
                            "is not a pod runtime; valid: builtin, command, dns, ingress-nginx, docker")
    f.write_text(f.read_text().replace("podman", "command"))
    [w] = load_scenario([str(f)]).workloads
    assert w.template.annotations == {"minikp.dev/runtime": "command"}
