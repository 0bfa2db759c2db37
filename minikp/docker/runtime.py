"""Docker pods: pods whose containers run their real image on a Docker engine.

Opt in per pod (annotation `minikp.dev/runtime: docker`) or for the whole cluster (Cluster
`spec.runtime: docker`): uses_docker().

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
- A container that exits is started again in the same namespace (same address) as
  restartPolicy and the kubelet's back-off say (workloads/restarts.py), counted in RESTARTS.
- Containers carry labels (minikp.dev/cluster, minikp.dev/pod, minikp.dev/container):
  remove_cluster() finds and removes every one of a cluster's, even after a SIGKILLed
  supervisor.

Pure: uses_docker, container_name, run_kwargs, status_fields, image_problem. Kernel edge:
DockerPods (the supervisor's), find_container / container_pid (exec, logs), remove_cluster.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

from minikp import names
from minikp.docker import engine, images
from minikp.errors import OperationError
from minikp.workloads import podenv
from minikp.workloads.images import is_dns_image
from minikp.workloads.restarts import Backoff, should_restart

ANNOTATION = "minikp.dev/runtime"
RUNTIMES = ("builtin", "docker")
LABEL_CLUSTER, LABEL_POD, LABEL_CONTAINER = "minikp.dev/cluster", "minikp.dev/pod", "minikp.dev/container"
PAUSE = "POD"  # the pause container's name in container names, as dockershim's
HOST_FILE = "docker-host"  # in the cluster's state directory: the engine its pods are on
STOP_TIMEOUT_S = 2


def uses_docker(pod, cluster_runtime: str = "builtin") -> bool:
    """The annotation wins over the cluster's runtime, which is for the user's pods: the
    cluster DNS (coredns / kube-dns images) stays minikp's own dnsmasq."""
    named = pod.template.annotations.get(ANNOTATION)
    if named:
        return named == "docker"
    return cluster_runtime == "docker" and not any(is_dns_image(c.image)
                                                   for c in pod.template.containers)


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


def status_fields(cs: ContainerState) -> dict:
    """A containerStatus's restartCount, state and containerID, as the kubelet reports them."""
    out = {"restartCount": cs.backoff.restarts,
           "containerID": f"docker://{cs.id}" if cs.id else ""}
    if cs.reason in ("", ):
        out["state"] = {"running": {}}
    elif cs.reason in ("Completed", "Error") and cs.backoff.waiting_until is None:
        out["state"] = {"terminated": {"reason": cs.reason, "exitCode": cs.exit_code}}
    else:
        out["state"] = {"waiting": {"reason": cs.reason, "message": cs.message}}
    return out


def image_problem(image: str, error: Exception) -> str:
    """What `up` and the pod's status say about an image that cannot be had (ErrImagePull):
    the image and the engine's own reason."""
    why = getattr(error, "explanation", None) or str(error)
    return f'ErrImagePull: failed to pull image "{image}": {str(why).strip()}'


@dataclass
class ContainerState:
    name: str
    image: str
    id: str = ""
    backoff: Backoff = field(default_factory=Backoff)
    reason: str = ""  # "" (running) | CrashLoopBackOff | ErrImagePull | ImagePullBackOff | Error
    message: str = ""
    exit_code: int | None = None


@dataclass
class DockerPod:
    key: str
    pause_id: str
    pid: int
    etc_dir: str
    restart_policy: str
    containers: dict[str, ContainerState] = field(default_factory=dict)


class DockerPods:
    """The Docker pods of one cluster (the supervisor's): the engine is acquired with the
    first one and released by close()."""

    def __init__(self, cluster: str, emit=None):
        self.cluster = cluster
        self.emit = emit or (lambda kind, message, **fields: None)  # events: pulls, restarts
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
        OperationError saying which image and why when it cannot be had."""
        import docker
        if images.is_own(image):
            images.ensure(self.client, [images.own_name(image)])
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
            self.emit("Failed", image_problem(image, e), image=image)
            raise OperationError(image_problem(image, e)) from None
        self.emit("Pulled", f'pulled image "{image}" in {time.monotonic() - t0:.1f}s', image=image)

    # ---- a pod ---------------------------------------------------------------------------
    def sandbox(self, pod, restart_policy: str = "Always") -> int:
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
            self.pods[key] = DockerPod(key, c.id, c.attrs["State"]["Pid"], etc_dir, restart_policy)
        return self.pods[key].pid

    def start(self, pod, container, sb) -> None:
        """Start `container` of the pod (after sandbox()), in the pod's namespace. An image
        that cannot be had leaves the container in ErrImagePull and raises OperationError."""
        from minikp.workloads.sandbox import etc_files
        p = self.pods[f"{pod.namespace}/{pod.name}"]
        with open(os.path.join(p.etc_dir, "hosts"), "w") as f:
            f.write(etc_files(dataclass_replace(sb, resolv_conf=""))["etc/hosts"])
        cs = p.containers.setdefault(container.name, ContainerState(container.name, container.image))
        try:
            self.ensure_image(container.image)
        except OperationError as e:
            cs.reason, cs.message = "ErrImagePull", str(e)
            raise
        name = container_name(self.cluster, pod, container.name)
        self._remove_named(name)
        c = self.client.containers.run(container.image, name=name,
                                       labels=labels(self.cluster, pod, container.name),
                                       **run_kwargs(container, sb, p.pause_id, p.etc_dir))
        cs.id, cs.reason, cs.message, cs.exit_code = c.id, "", "", None
        cs.backoff.started_at = time.monotonic()

    def running(self, key: str) -> bool:
        """Every container of the pod runs (and its pause container)."""
        p = self.pods.get(key)
        if p is None:
            return False
        return all(self._status(cs.id) == "running" for cs in p.containers.values()) \
            and self._status(p.pause_id) == "running"

    def poll(self, now: float | None = None) -> list[str]:
        """Notice exited containers and restart those whose back-off is over; the keys of
        pods whose containers changed (stopped or started)."""
        now = time.monotonic() if now is None else now
        changed = []
        with self._lock:
            for key, p in list(self.pods.items()):
                for cs in p.containers.values():
                    if not cs.id or cs.reason in ("ErrImagePull", "ImagePullBackOff"):
                        continue
                    if cs.backoff.waiting_until is None:
                        status, code = self._exit(cs.id)
                        if status == "running":
                            continue
                        cs.exit_code = code
                        if not should_restart(p.restart_policy, code or 0):
                            if cs.reason == "":
                                cs.reason = "Completed" if code == 0 else "Error"
                                changed.append(key)
                            continue
                        cs.backoff.exited(now)
                        cs.reason = "CrashLoopBackOff" if cs.backoff.restarts else "Error"
                        changed.append(key)
                    if cs.backoff.due(now):
                        try:
                            self.client.containers.get(cs.id).start()
                        except Exception as e:  # noqa: BLE001 - tried again after the back-off
                            cs.message = str(e)
                            cs.backoff.exited(now)
                            continue
                        cs.backoff.restarted(now)
                        cs.reason = ""
                        changed.append(key)
                        self.emit("ContainerRestarted", f"pod {key}: container {cs.name} "
                                  f"restarted (restart {cs.backoff.restarts})", pod=key)
        return changed

    def crashing(self, key: str) -> bool:
        """A container of the pod exited and waits for its restart (or was restarted)."""
        p = self.pods.get(key)
        return p is not None and any(cs.reason or cs.backoff.restarts
                                     for cs in p.containers.values())

    def finished(self, key: str) -> bool:
        """A container of the pod exited and its restartPolicy does not start it again."""
        p = self.pods.get(key)
        return p is not None and any(cs.reason in ("Completed", "Error")
                                     and cs.backoff.waiting_until is None
                                     for cs in p.containers.values())

    def container_statuses(self, key: str) -> dict[str, dict] | None:
        """containerStatuses fields by container name (None: not a Docker pod)."""
        p = self.pods.get(key)
        if p is None:
            return None
        return {name: status_fields(cs) for name, cs in p.containers.items()}

    def remove(self, key: str) -> None:
        """Remove the pod's containers (the pause container last)."""
        with self._lock:
            p = self.pods.pop(key, None)
        if p is None:
            return
        for cs in p.containers.values():
            if cs.id:
                self._remove_id(cs.id)
        self._remove_id(p.pause_id)

    def close(self) -> None:
        for key in list(self.pods):
            self.remove(key)
        if self._client is not None:
            self._client.close()
            self._client = None
            remove_cluster(self.cluster)

    # ---- engine calls --------------------------------------------------------------------
    def _status(self, cid: str) -> str:
        return self._exit(cid)[0]

    def _exit(self, cid: str) -> tuple[str, int | None]:
        import docker
        try:
            st = self.client.api.inspect_container(cid)["State"]
        except docker.errors.NotFound:
            return "removed", None
        return st["Status"], st.get("ExitCode")

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


def dataclass_replace(obj, **changes):
    import dataclasses
    return dataclasses.replace(obj, **changes)


def _split(image: str) -> tuple[str, str]:
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        return ref.rsplit(":", 1)[0], ref.rsplit(":", 1)[1]
    return ref, "latest"


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
