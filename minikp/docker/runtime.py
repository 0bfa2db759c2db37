"""Docker pods: pods whose containers run their real image on a Docker engine.

Opt in per pod (annotation `minikp.dev/runtime: docker`) or for the whole cluster (Cluster
`spec.runtime: docker`): workloads/runtime.py choose() decides.

A Docker pod is built as the kubelet's dockershim built one:
- a pause container (minikp/pause, network "none", hostname = the pod's) holds the pod's
  network namespace; sandbox(pod) starts it and returns its PID, and the fabric wires the
  pod's veth, address and routes into /proc/PID/ns/net and names it as every pod's
  namespace is named (netns.adopt), so probes, `exec`, traces and teardown see one pod;
- each container joins it (network and IPC `container:<pause>`, so it has the pod's eth0
  and hostname), with the environment the kubelet injects (podenv: Service variables,
  env, envFrom), command → entrypoint and args → cmd ($(VAR) expanded), the kubelet's
  /etc/resolv.conf and /etc/hosts bound read-only, volumes, and the securityContext's
  capabilities, user, privileged, readOnlyRootFilesystem and no-new-privileges.
- A container that exits is started again (by the supervisor, as for every runtime: a
  new container of the same name) in the same namespace, so with the same address.
- Containers carry labels (minikp.dev/cluster, minikp.dev/pod, minikp.dev/container):
  remove_cluster() finds and removes every one of a cluster's, even after a SIGKILLed
  supervisor.

Pure: container_name, run_kwargs, pull_reason. Kernel edge: DockerPods (a
cluster's pause and app containers), DockerRuntime (the pod-runtime protocol on them),
find_container / container_pid (exec, logs), remove_cluster.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from dataclasses import dataclass, field

from minikp import names
from minikp.docker import engine, images
from minikp.errors import OperationError
from minikp.workloads import podenv
from minikp.workloads.imagepull import failed_message

LABEL_CLUSTER, LABEL_POD, LABEL_CONTAINER = "minikp.dev/cluster", "minikp.dev/pod", "minikp.dev/container"
PAUSE = "POD"  # the pause container's name in container names, as dockershim's
HOST_FILE = "docker-host"  # in the cluster's state directory: the engine its pods are on
STOP_TIMEOUT_S = 2


def container_name(cluster: str, pod, container: str) -> str:
    """k8s_<container>_<pod>_<namespace>_<cluster> (dockershim's shape; `docker ps` shows
    whose it is)."""
    return f"k8s_{container}_{pod.name}_{pod.namespace}_{cluster}"


def labels(cluster: str, pod, container: str) -> dict[str, str]:
    return {LABEL_CLUSTER: cluster, LABEL_POD: f"{pod.namespace}/{pod.name}",
            LABEL_CONTAINER: container}


def run_kwargs(container, sb, pause_id: str, etc_dir: str) -> dict:
    """docker run's arguments for `container` (a scenario Container) with sandbox `sb` (its
    environment, resolv.conf, securityContext and volumes: sandbox.pod_sandbox)."""
    kw = {"network_mode": f"container:{pause_id}", "ipc_mode": f"container:{pause_id}",
          "environment": dict(sb.env), "detach": True, "init": True,
          "cap_drop": ["ALL"], "cap_add": list(sb.capabilities), "privileged": sb.privileged,
          "user": f"{sb.uid}:{sb.gid}", "read_only": sb.read_only_root,
          "security_opt": ["no-new-privileges"] if sb.no_new_privs else []}
    if container.command:
        kw["entrypoint"] = [podenv.expand(a, sb.env) for a in container.command]
    if container.args:
        kw["command"] = [podenv.expand(a, sb.env) for a in container.args]
    binds = {os.path.join(etc_dir, "hosts"): {"bind": "/etc/hosts", "mode": "ro"}}
    if sb.resolv_conf:
        binds[sb.resolv_conf] = {"bind": "/etc/resolv.conf", "mode": "ro"}
    for m in sb.mounts:
        binds[m.source] = {"bind": m.target, "mode": "ro" if m.read_only else "rw"}
    kw["volumes"] = binds
    return kw


def pull_reason(error: Exception) -> str:
    """Why an image cannot be had: the engine's own words."""
    return str(getattr(error, "explanation", None) or error).strip()


class ImagePullError(OperationError):
    """An image that cannot be had: the pod waits (ErrImagePull, ImagePullBackOff) and the
    supervisor tries again (workloads/imagepull.py)."""

    def __init__(self, image: str, reason: str):
        super().__init__(failed_message(image, reason))
        self.image, self.reason = image, reason


@dataclass
class DockerPod:
    key: str
    pause_id: str
    pid: int
    etc_dir: str
    containers: dict[str, str] = field(default_factory=dict)  # name → container ID


class DockerPods:
    """The Docker pods of one cluster (the supervisor's): the engine is acquired with the
    first one and released by close()."""

    def __init__(self, cluster: str, emit=None):
        self.cluster = cluster
        self.emit = emit or (lambda kind, message, **fields: None)  # events: pulls
        self.pods: dict[str, DockerPod] = {}
        self._client = None
        self._lock = threading.RLock()

    @property
    def client(self):
        if self._client is None:
            host = engine.acquire(self.cluster)
            with open(names.cluster_path(self.cluster, HOST_FILE), "w") as f:
                f.write(host)
            self._client = engine.client(host)
        return self._client

    # ---- images --------------------------------------------------------------------------
    def ensure_image(self, image: str) -> None:
        """minikp/* images are built when missing; others are pulled when missing.
        ImagePullError saying which image and why when it cannot be had."""
        import docker
        if images.is_own(image):  # kubelet's Pulling/Pulled events, for a local build
            name = images.own_name(image)
            if not images.present(self.client, name):
                self.emit("Pulling", f'building image "{image}" from images/{name}', image=image)
                t0 = time.monotonic()
                images.build(self.client, name)
                self.emit("Pulled", f'built image "{image}" in {time.monotonic() - t0:.1f}s',
                          image=image)
            return
        try:
            self.client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        repo, tag = _split(image)
        self.emit("Pulling", f'pulling image "{image}"', image=image)
        t0 = time.monotonic()
        try:
            self.client.images.pull(repo, tag=tag)
        except docker.errors.APIError as e:
            raise ImagePullError(image, pull_reason(e)) from None
        self.emit("Pulled", f'pulled image "{image}" in {time.monotonic() - t0:.1f}s', image=image)

    # ---- a pod ---------------------------------------------------------------------------
    def sandbox(self, pod) -> int:
        """Start the pod's pause container; its PID, whose network namespace becomes the
        pod's."""
        key = f"{pod.namespace}/{pod.name}"
        self.ensure_image(images.tag("pause"))
        name = container_name(self.cluster, pod, PAUSE)
        self._remove_named(name)
        c = self.client.containers.run(images.tag("pause"), name=name, hostname=pod.hostname,
                                       network_mode="none", ipc_mode="shareable", detach=True,
                                       labels=labels(self.cluster, pod, PAUSE))
        c.reload()
        etc_dir = names.cluster_path(self.cluster, "pods", key.replace("/", "_") + ".etc")
        os.makedirs(etc_dir, exist_ok=True)
        with self._lock:
            self.pods[key] = DockerPod(key, c.id, c.attrs["State"]["Pid"], etc_dir)
        return self.pods[key].pid

    def start(self, pod, container, sb) -> str:
        """Start `container` of the pod (after sandbox()) in the pod's namespace, replacing
        an earlier run of it (a restart); its ID. ImagePullError when the image cannot be
        had."""
        from minikp.workloads.sandbox import etc_files
        p = self.pods[f"{pod.namespace}/{pod.name}"]
        with open(os.path.join(p.etc_dir, "hosts"), "w") as f:
            f.write(etc_files(dataclasses.replace(sb, resolv_conf=""))["etc/hosts"])
        self.ensure_image(container.image)
        name = container_name(self.cluster, pod, container.name)
        self._remove_named(name)
        c = self.client.containers.run(container.image, name=name,
                                       labels=labels(self.cluster, pod, container.name),
                                       **run_kwargs(container, sb, p.pause_id, p.etc_dir))
        p.containers[container.name] = c.id
        return c.id

    def state(self, cid: str) -> tuple[str, int | None, int]:
        """(status, exit code, PID) of a container: running, exited, removed..."""
        import docker
        try:
            st = self.client.api.inspect_container(cid)["State"]
        except docker.errors.NotFound:
            return "removed", None, 0
        return st["Status"], st.get("ExitCode"), st.get("Pid") or 0

    def stop(self, key: str, name: str, grace_s: float) -> None:
        """Stop and remove one container; the pod's pause container goes with its last."""
        p = self.pods.get(key)
        if p is None:
            return
        cid = p.containers.pop(name, None)
        if cid:
            try:
                self.client.api.stop(cid, timeout=max(0, int(grace_s)))
            except Exception:  # noqa: BLE001 - gone already; removed below either way
                pass
            self._remove_id(cid)
        if not p.containers:
            self.remove(key)

    def remove(self, key: str) -> None:
        """Remove the pod's containers, the pause container last."""
        with self._lock:
            p = self.pods.pop(key, None)
        if p is None:
            return
        for cid in p.containers.values():
            self._remove_id(cid)
        self._remove_id(p.pause_id)

    def close(self) -> None:
        for key in list(self.pods):
            self.remove(key)
        if self._client is not None:
            self._client.close()
            self._client = None
            remove_cluster(self.cluster)

    # ---- engine calls --------------------------------------------------------------------
    def _remove_id(self, cid: str) -> None:
        import docker
        try:
            self.client.api.remove_container(cid, force=True)
        except docker.errors.NotFound:
            pass

    def _remove_named(self, name: str) -> None:
        """A leftover of an earlier run of this cluster with this name (never another's:
        the name holds the cluster's)."""
        self._remove_id(name)


def _split(image: str) -> tuple[str, str]:
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        return ref.rsplit(":", 1)[0], ref.rsplit(":", 1)[1]
    return ref, "latest"


@dataclass
class DockerHandle:
    key: str  # the pod's
    name: str  # the container's
    id: str
    netns: str
    ip: str
    tcp_ports: list[int]


class DockerRuntime:
    """The pod-runtime protocol (workloads/runtime.py) for one cluster's Docker pods: the
    pod's pause container and namespace exist before its containers start (the supervisor
    asks sandbox() first, see DockerPods)."""

    def __init__(self, pods: DockerPods):
        self.pods = pods

    def start(self, ctx, container):
        cid = self.pods.start(ctx.pod, container, ctx.sandbox_of(container))
        return DockerHandle(ctx.key, container.name, cid, ctx.netns, ctx.pod.ip,
                            [p.container_port for p in container.ports if p.protocol == "TCP"])

    def started(self, h):
        from minikp.workloads.runtime import port_open
        return self.pods.state(h.id)[0] == "running" and all(
            port_open(h.netns, h.ip, p) for p in h.tcp_ports)

    def exited(self, h):
        return self.pods.state(h.id)[0] not in ("running", "created", "restarting")

    def exit_code(self, h):
        status, code, _ = self.pods.state(h.id)
        return code if status == "exited" else None

    def stop(self, h, grace_s=STOP_TIMEOUT_S):
        self.pods.stop(h.key, h.name, grace_s)

    def logs(self, h):
        return []  # the engine keeps them: `minikp logs` asks it (minikp/logs.py)

    def pid(self, h):
        status, _, pid = self.pods.state(h.id)
        return pid if status == "running" else None


def engine_of(cluster: str) -> str | None:
    """The engine the cluster's Docker pods are on (None: it has none)."""
    try:
        with open(names.cluster_path(cluster, HOST_FILE)) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def find_container(cluster: str, pod_key: str, container: str | None = None):
    """The Docker container of pod `pod_key` (NS/NAME) named `container` (None: the first
    that is not the pause container), or None: not a Docker pod, or no such container."""
    host = engine_of(cluster)
    if host is None:
        return None
    c = engine.client(host)
    found = c.containers.list(all=True, filters={"label": [f"{LABEL_CLUSTER}={cluster}",
                                                           f"{LABEL_POD}={pod_key}"]})
    found = [x for x in found if x.labels.get(LABEL_CONTAINER) != PAUSE
             and container in (None, x.labels.get(LABEL_CONTAINER))]
    found.sort(key=lambda x: x.attrs.get("Created", ""))
    return found[0] if found else None


def container_pid(cluster: str, pod_key: str, container: str | None = None) -> int | None:
    """The host PID of the container's first process (where `minikp exec` joins it)."""
    ct = find_container(cluster, pod_key, container)
    pid = ct.attrs["State"].get("Pid") if ct is not None else 0
    return pid or None


def remove_cluster(cluster: str) -> None:
    """Remove every container of `cluster` and release its engine (stopping a private one
    nobody else uses). For shutdown and for `down` after a SIGKILLed supervisor: finds
    them by label on the engine recorded in the state directory. Idempotent."""
    host = engine_of(cluster)
    if host is None:
        return
    try:
        c = engine.client(host)
        try:
            for ct in c.containers.list(all=True, filters={"label": f"{LABEL_CLUSTER}={cluster}"}):
                ct.remove(force=True)
        finally:
            c.close()
    except Exception:  # noqa: BLE001 - an engine that is gone has no containers left
        pass
    os.unlink(names.cluster_path(cluster, HOST_FILE))
    engine.release(cluster)
