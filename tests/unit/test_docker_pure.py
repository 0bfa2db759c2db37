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
