"""Pods sandboxed like containers, from kernel namespaces alone (no container engine).

A Sandbox (plain data, JSON-able) says what a container gets; start() builds it around a
new process, join() puts a process into a running one, as `kubectl exec` does:

- Filesystem: a private mount namespace whose root is an overlay of the host's root (lower)
  and a tmpfs (upper), so writes land in the sandbox's own layer and vanish with it; a
  fresh proc (of the new PID namespace), a fresh sysfs (read-only unless privileged, shows
  the pod's interfaces), a minimal /dev (null, zero, full, random, urandom, tty, its own
  devpts, shm and mqueue), private /tmp and /run (so /run/netns and /run/minikp are not
  there), empty /root and /home; /etc/resolv.conf, /etc/hostname and /etc/hosts written in
  the layer, as the kubelet manages them; emptyDir and hostPath volumes bound where
  declared, nothing else of the host's mounts.
- Processes: its own PID namespace (the command is PID 1: when it dies the kernel ends
  every other process of the sandbox and, with the last one, frees the mount namespace and
  every mount in it; nothing to clean up after a SIGKILLed supervisor), its own UTS and IPC
  namespaces, the pod's network namespace.
- Privileges: the container's capability set in the bounding, effective, permitted and
  inheritable sets (Docker's defaults unless securityContext says otherwise), ambient
  empty, no_new_privs (unless privileged or allowPrivilegeEscalation: true), runAsUser /
  runAsGroup (a non-root user has no effective capabilities, as in Kubernetes).
- Environment: exactly Sandbox.env (podenv.py builds it as the kubelet does).

Pure: the Sandbox builders (pod_sandbox, client_sandbox, default_sandbox), effective
securityContext, privileged_warnings, PodSandboxes (lazily, per container). Kernel edge: start, join, sandbox_pid1, exec_in.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import subprocess
from dataclasses import dataclass, field

from minikp import nsenter
from minikp.errors import OperationError
from minikp.nsenter import (CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWUTS, MNT_DETACH,
                            MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY,
                            MS_REC, MS_REMOUNT)
from minikp.scenario.model import SecurityContext
from minikp.workloads import capabilities, podenv

SCRATCH = "/tmp"  # where, inside the new mount namespace only, the layer's tmpfs is mounted
HIDDEN = ("/root", "/home")  # host directories a container image would not have
PROC_READ_ONLY = ("/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs")
PROC_MASKED = ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug")
DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8),
           "urandom": (1, 9), "tty": (5, 0)}
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}


@dataclass
class Mount:
    """A host path bound into the sandbox (a volume)."""

    source: str
    target: str
    read_only: bool = False
    create: str = ""  # "" | dir | file: make the host source if missing (emptyDir, *OrCreate)
    must_be: str = ""  # "" | dir | file | socket | char | block: hostPath type check


@dataclass
class Sandbox:
    netns: str
    hostname: str
    env: dict[str, str]
    capabilities: list[str] = field(default_factory=lambda: sorted(capabilities.DOCKER_DEFAULT))
    privileged: bool = False
    no_new_privs: bool = True
    uid: int = 0
    gid: int = 0
    read_only_root: bool = False
    resolv_conf: str = ""  # host file whose content becomes /etc/resolv.conf
    ip: str = ""  # for /etc/hosts
    mounts: list[Mount] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Sandbox:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, d: dict) -> Sandbox:
        d = dict(d, mounts=[Mount(**m) for m in d.get("mounts", [])])
        return cls(**d)


# ---- pure: what a container gets -------------------------------------------------------


def effective_security(pod_sc: SecurityContext, c_sc: SecurityContext) -> SecurityContext:
    """The container's settings win over the pod's (runAsUser, runAsGroup)."""
    pick = lambda a, b: a if a is not None else b  # noqa: E731
    return dataclasses.replace(c_sc, run_as_user=pick(c_sc.run_as_user, pod_sc.run_as_user),
                               run_as_group=pick(c_sc.run_as_group, pod_sc.run_as_group))


HOST_PATH_CHECKS = {"": ("dir", ""), "DirectoryOrCreate": ("dir", "dir"), "Directory": ("", "dir"),
                    "FileOrCreate": ("file", "file"), "File": ("", "file"), "Socket": ("", "socket"),
                    "CharDevice": ("", "char"), "BlockDevice": ("", "block")}


def volume_mounts(template, container, volume_dir: str) -> list[Mount]:
    """The container's volumeMounts as host binds: an emptyDir is a directory of the pod
    (volume_dir/NAME, shared by its containers), a hostPath is that path (a missing one
    is made only for types "" / *OrCreate, as containerd does)."""
    volumes = {v.name: v for v in template.volumes}
    out = []
    for m in container.volume_mounts:
        v = volumes[m.name]
        if v.kind == "emptyDir":
            source, create, must_be = os.path.join(volume_dir, v.name), "dir", ""
        else:
            source = v.path
            create, must_be = HOST_PATH_CHECKS[v.host_path_type]
        if m.sub_path:
            source, create, must_be = os.path.join(source, m.sub_path), "dir", ""
        out.append(Mount(source, m.mount_path, m.read_only, create, must_be))
    return out


def pod_sandbox(pod, container, services, netns: str, resolv_conf: str, volume_dir: str,
                node_ip: str = "", config_maps: dict | None = None) -> Sandbox:
    sc = effective_security(pod.template.security_context, container.security_context)
    caps = capabilities.container_capabilities(sc.capabilities_add, sc.capabilities_drop,
                                               bool(sc.privileged))
    return Sandbox(
        netns=netns, hostname=pod.hostname,
        env=podenv.container_env(pod, container, services, node_ip, config_maps),
        capabilities=sorted(caps), privileged=bool(sc.privileged),
        no_new_privs=not sc.privileged and sc.allow_privilege_escalation is not True,
        uid=sc.run_as_user or 0,
        gid=sc.run_as_group if sc.run_as_group is not None else (sc.run_as_user or 0),
        read_only_root=bool(sc.read_only_root_filesystem), resolv_conf=resolv_conf, ip=pod.ip,
        mounts=volume_mounts(pod.template, container, volume_dir))


class PodSandboxes:
    """The Sandboxes of one pod's containers, each built when first needed (an environment
    holds ~8 variables per Service: too much to build for every pod of a large cluster that
    nobody execs into) from what existed when the pod started: the Services then."""

    def __init__(self, pod, services, netns: str, resolv_conf: str, volume_dir: str,
                 node_ip: str = "", config_maps: dict | None = None):
        self.pod, self.services = pod, list(services)
        self.where = (netns, resolv_conf, volume_dir, node_ip, config_maps)
        self.built: dict[str, Sandbox] = {}

    def of(self, container) -> Sandbox:
        if container.name not in self.built:
            self.built[container.name] = pod_sandbox(self.pod, container, self.services, *self.where)
        return self.built[container.name]

    def first(self) -> Sandbox:
        """Where `minikp exec` and exec probes run when the pod has no process of its own."""
        return self.of(self.pod.template.containers[0])


def default_sandbox(netns: str, hostname: str, resolv_conf: str = "", ip: str = "") -> Sandbox:
    """Docker's defaults and an environment of PATH and HOSTNAME: for client commands and
    commands started without a pod spec."""
    env = {"PATH": podenv.DEFAULT_PATH}
    if hostname:
        env["HOSTNAME"] = hostname
    return Sandbox(netns=netns, hostname=hostname, env=env, resolv_conf=resolv_conf, ip=ip)


def volume_dir(state_dir: str, netns_path: str) -> str:
    """The pod's emptyDir volumes on the host (as the kubelet's pods/UID/volumes/)."""
    return os.path.join(state_dir, "pods", os.path.basename(netns_path) + ".volumes")


def privileged_warnings(scenario) -> list[str]:
    out = []
    for w in scenario.workloads:
        path = "spec" if w.kind == "Pod" else "spec.template.spec"
        for i, c in enumerate(w.template.containers):
            at = c.security_context.privileged_at
            if c.security_context.privileged and at is not None:
                out.append(f'{at.file}:{at.line}: {w.kind} "{w.name}": {path}.containers[{i}]'
                           ".securityContext.privileged: true: this container gets every "
                           "capability and the host's devices; it can change the host")
    return out


def etc_files(sb: Sandbox) -> dict[str, str]:
    """/etc files the kubelet manages: hosts, hostname (and resolv.conf, read on the host)."""
    hosts = ("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost "
             "ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\n")
    if sb.ip:
        hosts += f"{sb.ip}\t{sb.hostname}\n"
    files = {"etc/hosts": hosts, "etc/hostname": sb.hostname + "\n"}
    if sb.resolv_conf:
        with open(sb.resolv_conf) as f:
            files["etc/resolv.conf"] = f.read()
    return files


# ---- the kernel edge ---------------------------------------------------------------------


def _prepare_host(sb: Sandbox) -> None:
    """Host side, before the fork: volume sources exist (or are made) and have their type."""
    kinds = {"dir": stat.S_ISDIR, "file": stat.S_ISREG, "socket": stat.S_ISSOCK,
             "char": stat.S_ISCHR, "block": stat.S_ISBLK}
    for m in sb.mounts:
        if not os.path.lexists(m.source):
            if m.create == "dir":
                os.makedirs(m.source, mode=0o777, exist_ok=True)
                os.chmod(m.source, 0o777)  # emptyDir: world-writable, as the kubelet makes it
            elif m.create == "file":
                os.makedirs(os.path.dirname(m.source), exist_ok=True)
                open(m.source, "a").close()
            else:
                raise OperationError(f"volume for {m.target}: hostPath {m.source} does not exist")
        if m.must_be and not kinds[m.must_be](os.stat(m.source).st_mode):
            raise OperationError(f"volume for {m.target}: hostPath {m.source} is not a {m.must_be}")


def in_root(root: str, path: str, hops: int = 40) -> str:
    """`path` of the sandbox as a path under `root`, following symlinks as the sandbox will
    see them (an absolute link restarts at root): /var/run/x, with /var/run -> /run, is
    root/run/x, never the host's /run/x (as runc's securejoin)."""
    done, todo = "", [c for c in path.split("/") if c]
    while todo:
        c = todo.pop(0)
        if c == ".":
            continue
        if c == "..":
            done = done.rpartition("/")[0]
            continue
        full = f"{root}{done}/{c}"
        if os.path.islink(full):
            hops -= 1
            if hops < 0:
                raise OperationError(f"{path}: too many symbolic links")
            link = os.readlink(full)
            todo = [x for x in link.split("/") if x] + todo
            if link.startswith("/"):
                done = ""
            continue
        done = f"{done}/{c}"
    return root + (done or "/")


def _make_target(path: str, like_file: bool) -> None:
    if like_file:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
    else:
        os.makedirs(path, exist_ok=True)


def _mount_system(root: str, privileged: bool) -> None:
    """proc, sys, dev, tmp, run in the new root, as a container runtime mounts them."""
    m = nsenter.mount
    m("proc", f"{root}/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    m("sysfs", f"{root}/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | (0 if privileged else MS_RDONLY))
    dev = f"{root}/dev"
    if privileged:
        m("/dev", dev, None, MS_BIND | MS_REC)
    else:
        m("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755,size=65536k")
        for name, (major, minor) in DEVICES.items():
            os.mknod(f"{dev}/{name}", 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            os.chmod(f"{dev}/{name}", 0o666)
        for name, target in DEV_LINKS.items():
            os.symlink(target, f"{dev}/{name}")
        for d in ("pts", "shm", "mqueue"):
            os.mkdir(f"{dev}/{d}")
        m("devpts", f"{dev}/pts", "devpts", MS_NOSUID | MS_NOEXEC,
          "newinstance,ptmxmode=0666,mode=0620,gid=5")
    m("shm", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k")
    if os.path.isdir(f"{dev}/mqueue"):
        m("mqueue", f"{dev}/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    m("tmpfs", f"{root}/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    m("tmpfs", f"{root}/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    for d in HIDDEN:
        if os.path.isdir(f"{root}{d}"):
            m("tmpfs", f"{root}{d}", "tmpfs", MS_NOSUID | MS_NODEV, "mode=700")
    if privileged:
        return
    for p in PROC_READ_ONLY:
        if os.path.exists(f"{root}{p}"):
            m(f"{root}{p}", f"{root}{p}", None, MS_BIND | MS_REC)
            m(None, f"{root}{p}", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for p in PROC_MASKED:
        if os.path.exists(f"{root}{p}"):
            m(f"{dev}/null", f"{root}{p}", None, MS_BIND)


def _enter_new(sb: Sandbox, files: dict[str, str], caps: int) -> None:
    """In the forked child (PID 1 of a new PID namespace): build the sandbox, drop privileges.
    `files`: /etc files to write (read before the fork)."""
    fd = os.open(sb.netns, os.O_RDONLY)
    nsenter.setns(fd, CLONE_NEWNET)
    os.close(fd)
    nsenter.unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC)
    nsenter.mount(None, "/", None, MS_REC | MS_PRIVATE)
    # the volumes' sources, held before the scratch tmpfs or the pivot hides them (opened in
    # this mount namespace so that they can be bound; close-on-exec: the command never
    # holds a way out)
    sources = [os.open(m.source, os.O_PATH | os.O_CLOEXEC) for m in sb.mounts]
    nsenter.mount("tmpfs", SCRATCH, "tmpfs", MS_NOSUID | MS_NODEV, "mode=700")
    root = f"{SCRATCH}/root"
    for d in ("upper", "work", "root"):
        os.mkdir(f"{SCRATCH}/{d}")
    nsenter.mount("overlay", root, "overlay", 0,
                  f"lowerdir=/,upperdir={SCRATCH}/upper,workdir={SCRATCH}/work")
    _mount_system(root, sb.privileged)
    for path, text in files.items():
        target = f"{root}/{path}"
        if os.path.lexists(target):
            os.unlink(target)
        with open(target, "w") as f:
            f.write(text)
    for m, src in zip(sb.mounts, sources):
        target = in_root(root, m.target)
        _make_target(target, not stat.S_ISDIR(os.fstat(src).st_mode))
        nsenter.mount(f"/proc/self/fd/{src}", target, None, MS_BIND | MS_REC)
        if m.read_only:
            nsenter.mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC)
        os.close(src)
    if sb.read_only_root:
        nsenter.mount(None, root, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    os.chdir(root)
    nsenter.pivot_root(".", ".")
    nsenter.umount(".", MNT_DETACH)
    os.chdir("/")
    nsenter.sethostname(sb.hostname)
    if sb.privileged:
        _set_credentials(sb.uid, sb.gid, [sb.gid], sb.no_new_privs)
    else:
        _set_credentials(sb.uid, sb.gid, [sb.gid], sb.no_new_privs, caps, (caps, caps, caps))


def _set_credentials(uid: int, gid: int, groups: list[int], no_new_privs: bool,
                     bounding: int | None = None, caps: tuple[int, int, int] | None = None) -> None:
    """Bounding set first (needs CAP_SETPCAP), then the ids (need CAP_SETUID/SETGID), then
    effective/permitted/inheritable for root; a non-root user has none (setuid cleared
    them, as for a Kubernetes container with runAsUser). None: keep what we have."""
    if bounding is not None:
        nsenter.drop_bounding(bounding)
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)
    if caps is not None and uid == 0:
        nsenter.capset(*caps)
    nsenter.clear_ambient()
    if no_new_privs:
        nsenter.set_no_new_privs()


def _popen(argv, setup, pidns, **kwargs) -> subprocess.Popen:
    """Popen with `setup` run in the child; its failure is reported with its message (the
    child writes it to a close-on-exec pipe and exits before exec)."""
    r, w = os.pipe2(os.O_CLOEXEC)

    def child():
        try:
            setup()
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            os.write(w, f"{type(e).__name__}: {e}".encode()[:2000])
            os._exit(127)

    kwargs.setdefault("close_fds", True)
    try:
        try:
            with pidns:
                proc = subprocess.Popen(argv, preexec_fn=child, **kwargs)
        finally:
            os.close(w)
        msg = os.read(r, 4096)
    finally:
        os.close(r)
    if msg:
        proc.wait()
        raise OperationError(f"cannot start {argv[0]} in its sandbox: {msg.decode()}")
    return proc


def start(sb: Sandbox, argv: list[str], **kwargs) -> subprocess.Popen:
    """Start argv as PID 1 of a new sandbox (Popen keyword arguments pass through; env,
    cwd and preexec_fn are the sandbox's)."""
    _prepare_host(sb)
    files = etc_files(sb)
    caps = capabilities.mask(sb.capabilities) & own_bounding()
    return _popen(argv, lambda: _enter_new(sb, files, caps), nsenter.children_in_new_pidns(),
                  env=sb.env, **kwargs)


def own_bounding() -> int:
    """Capabilities cannot be added beyond the host's own bounding set."""
    return int(_status(os.getpid())["CapBnd"], 16)


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        items = [e.decode(errors="replace") for e in f.read().split(b"\0") if e]
    return dict(e.split("=", 1) for e in items if "=" in e)


def join(pid: int, argv: list[str], **kwargs) -> subprocess.Popen:
    """Start argv inside the running sandbox whose PID 1 is `pid` (host PID): its mount, PID,
    UTS, IPC and network namespaces, its user, groups, capabilities, no_new_privs and
    environment, as `kubectl exec` does."""
    st = _status(pid)
    env = _environ(pid)
    uid, gid = int(st["Uid"].split()[0]), int(st["Gid"].split()[0])
    groups = [int(g) for g in st.get("Groups", "").split()]
    bnd, eff, prm, inh = (int(st[k], 16) for k in ("CapBnd", "CapEff", "CapPrm", "CapInh"))
    nnp = st.get("NoNewPrivs", "0").strip() == "1"
    fds = [(os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC), flag)
           for ns, flag in (("ipc", CLONE_NEWIPC), ("uts", CLONE_NEWUTS), ("net", CLONE_NEWNET),
                            ("mnt", CLONE_NEWNS))]

    def setup():
        for fd, flag in fds:
            nsenter.setns(fd, flag)
        os.chdir("/")
        _set_credentials(uid, gid, groups, nnp, bnd, (eff, prm, inh))

    try:
        return _popen(argv, setup, nsenter.children_in_pidns_of(pid), env=env, **kwargs)
    finally:
        for fd, _ in fds:
            os.close(fd)


def is_pid1(pid: int) -> bool:
    """PID 1 of a PID namespace below ours (a sandbox's)."""
    try:
        nspid = _status(pid).get("NSpid", "").split()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return len(nspid) > 1 and nspid[-1] == "1"


def sandbox_pid1(netns_path: str) -> int | None:
    """The host PID of the first sandbox PID 1 in that network namespace (the pod's first
    command container), or None."""
    try:
        want = os.stat(netns_path)
    except FileNotFoundError:
        return None
    own = os.stat("/proc/self/ns/pid").st_ino
    for entry in sorted((e for e in os.listdir("/proc") if e.isdigit()), key=int):
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
            if (st.st_dev, st.st_ino) != (want.st_dev, want.st_ino):
                continue
            if os.stat(f"/proc/{entry}/ns/pid").st_ino == own:
                continue
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if is_pid1(int(entry)):
            return int(entry)
    return None


def exec_in(netns_path: str, sb: Sandbox | None, argv: list[str], pid1: int | None = None,
            **kwargs) -> subprocess.Popen:
    """`kubectl exec`: into the running sandbox of the pod's command (PID 1), or, for a pod
    whose workload is built in (no process of its own), a fresh sandbox from `sb` for this
    one command."""
    pid1 = pid1 or sandbox_pid1(netns_path)
    if pid1 is not None:
        return join(pid1, argv, **kwargs)
    if sb is None:
        raise OperationError("no sandbox to run the command in")
    return start(sb, argv, **kwargs)
