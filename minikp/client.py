"""What a front end (the CLI today, a dashboard next) does besides parsing and printing:
start and stop a cluster's supervisor, read its state, call its control socket, follow its
events, run probes from inside its hosts, and read a node's proxy rules. No printing here;
errors are InputError (bad input) or OperationError (a failed operation).

Clusters:    load_checked (check_scenario: its warnings only), take_lock_for_up,
             release_lock, start_cluster, run_cluster, remove_cluster, clusters
State:       read_state, objects, find_host, watch_state
Control:     load_files (check_files: their warnings only), apply, delete, scale, events, watch_events
Traffic:     curl_target, probe, trace;  proxy rules: node_proxier, watch_rules
Pods:        exec_in (`kubectl exec` into a pod's or client's sandbox), is_sandbox_init
Nodes:       node_overlays (what a node's shell must see: its proxy's iptables backend)
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

from minikp import clusterlock, names, state
from minikp.errors import InputError, OperationError
from minikp.proxy.base import Hit, Proxier, new_proxier
from minikp.scenario.model import ClusterConfig


# ---- clusters ---------------------------------------------------------------------------

def load_checked(files: list[str], proxy_mode=None, nodes=None, kubernetes_version=None):
    """Load, validate and plan the scenario; raise InputError (exit 2) before anything is
    made. Its `.warnings` (FILE:LINE: ...) a front end must show. Give it to start_cluster
    or run_cluster: the supervisor then uses it as it is, without loading the files again."""
    from minikp.scenario.load import load_scenario
    from minikp.scenario.plan import plan_cluster
    from minikp.workloads.sandbox import privileged_warnings

    scenario = load_scenario(files, proxy_mode=proxy_mode, nodes=nodes,
                             kubernetes_version=kubernetes_version)
    plan_cluster(scenario)
    scenario.warnings += privileged_warnings(scenario)
    return scenario


def check_scenario(files: list[str], proxy_mode=None, nodes=None, kubernetes_version=None) -> list[str]:
    return load_checked(files, proxy_mode, nodes, kubernetes_version).warnings


DOWN_TIMEOUT_S = 30  # how long `down` waits for the holders of the cluster lock to stop


def take_lock_for_up(name: str) -> int:
    """The cluster lock (minikp.clusterlock) for an `up`, after waiting out a `down` of the
    cluster; refused if it is up or coming up. Taken before anything else, so that a `down`
    run meanwhile finds this `up` and stops it."""
    lock = clusterlock.try_lock(name, "up")
    if lock is None and clusterlock.holder_role(name) == "down":
        lock = clusterlock.wait_lock(name, "up", DOWN_TIMEOUT_S)
    if lock is None:
        coming = clusterlock.holder_role(name) == "up"
        raise OperationError(f'cluster "{name}" is {"coming up" if coming else "already up"}; '
                             f"`minikp down --name {name}` first, or pick another --name")
    return lock


def release_lock(name: str, lock: int) -> None:
    """Give up an `up`'s lock; its directory goes too if the up made nothing."""
    clusterlock.release_unused(name, lock)


def start_cluster(name: str, files: list[str], proxy_mode=None, nodes=None, lock=None,
                  stop=None, on_event=None, scenario=None, kubernetes_version=None) -> None:
    """Start the cluster's supervisor in the background, handing it the cluster lock; return
    once it reports the cluster up, or raise what went wrong (it has then removed everything
    it made). A SIGTERM/SIGINT meanwhile (`stop`, a clusterlock.StopOnSignal) is passed on to
    it: it stops and removes the cluster, and this raises. `on_event(ev)` sees its events
    until then, as they happen (for progress: minikp.progress). `scenario`: the files as
    load_checked loaded them (None: the supervisor loads them).

    The supervisor is a fork of this process, not a new interpreter: it starts with the
    scenario and every module imported so far, which a fresh `python -m` would import
    again (measured: ~0.2 s of a small cluster's `up`, with the interpreter start)."""
    own_lock, own_stop = lock is None, stop is None
    if own_stop:
        stop = clusterlock.StopOnSignal().install()
    if own_lock:
        lock = take_lock_for_up(name)
    stop.raising = False
    try:
        if stop.requested.is_set():
            raise clusterlock.Stopped("a signal")
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()  # the child must not write this process's buffered output again
        sys.stderr.flush()
        # Signals wait until the child has its own handlers (default ones first: a signal
        # before the supervisor installs its handlers ends it, as it would a new process).
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                _supervise(name, [os.path.abspath(f) for f in files], proxy_mode, nodes,
                           write_fd, lock, scenario, kubernetes_version)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        stop.forward = lambda: os.kill(pid, signal.SIGTERM)
        if stop.requested.is_set():  # it came during the fork
            stop.forward()
        os.close(write_fd)
        with os.fdopen(read_fd) as f:
            for line in f:  # its events, then its one-line report
                if not line.startswith('{"event": '):
                    break
                if on_event is not None:
                    on_event(json.loads(line)["event"])
            else:
                line = ""
        if not line:  # it died without a word (e.g. a signal before its handlers were set)
            os.waitpid(pid, 0)
            from minikp.fabric.teardown import destroy_cluster
            destroy_cluster(name)  # we hold the lock: nobody else is building it
            if stop.requested.is_set():
                raise clusterlock.Stopped("a signal")
            raise OperationError("the supervisor died during start-up; nothing of the cluster "
                                 "was left")
        r = json.loads(line)
        if not r["ok"]:
            raise (InputError if r["exit"] == 2 else OperationError)(r["error"])
        if stop.requested.is_set():
            raise OperationError(f'cluster "{name}" was stopped (a signal, e.g. `minikp down`) '
                                 "just as it came up")
    finally:
        stop.forward = None
        if own_lock:
            os.close(lock)
        if own_stop:
            stop.uninstall()


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _supervise(name, files, proxy_mode, nodes, notify_fd, lock, scenario, kubernetes_version):
    """The forked child: a session of its own, stdin /dev/null, output to the cluster's
    supervisor.log, then the supervisor until it ends; never returns into the caller."""
    code = 1
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(names.cluster_path(name, "supervisor.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        for fd, target in ((null, 0), (log, 1), (log, 2)):
            os.dup2(fd, target)
        os.close(null)
        os.close(log)
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        from minikp.controller import supervisor

        notify, progress = supervisor.pipe_reporters(notify_fd)
        code = supervisor.run(name, files, proxy_mode, nodes, notify, lock, progress,
                              scenario=scenario, kubernetes_version=kubernetes_version)
    except BaseException:  # noqa: BLE001 - logged; `up` sees the pipe close without a report
        import traceback
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def run_cluster(name: str, files: list[str], proxy_mode=None, nodes=None, report=None,
                lock_fd: int | None = None, on_event=None, scenario=None) -> int:
    """Run the supervisor in this process until SIGTERM/SIGINT (`up --foreground`);
    `report(dict)` is told once whether the cluster came up, `on_event(ev)` of each event
    until then. lock_fd: the cluster lock, if the caller took it. `scenario`: the files as
    load_checked loaded them."""
    from minikp.controller.supervisor import run

    return run(name, [os.path.abspath(f) for f in files], proxy_mode, nodes, report, lock_fd,
               on_event, scenario=scenario)


def remove_cluster(cluster: str) -> bool:
    """Stop whoever holds the cluster lock (an `up` in progress, the supervisor: SIGTERM,
    then SIGKILL after DOWN_TIMEOUT_S) and wait until they have exited, take the lock, remove
    everything. False if there was no such cluster."""
    from minikp.fabric.teardown import cluster_netns, destroy_cluster

    existed = os.path.isdir(names.state_dir(cluster)) or bool(cluster_netns(cluster))
    lock = clusterlock.try_lock(cluster, "down")
    if lock is None:
        existed = True
        stuck = clusterlock.stop_holders(cluster, DOWN_TIMEOUT_S)
        lock = clusterlock.wait_lock(cluster, "down", 5)
        if lock is None:
            raise OperationError(f'cluster "{cluster}": the holders of its lock '
                                 f"{stuck or clusterlock.holders(cluster)} did not stop; "
                                 "nothing removed")
    try:
        destroy_cluster(cluster)  # the lock file goes with the directory, while held
    finally:
        os.close(lock)
    return existed


def clusters() -> list[str]:
    """Every minikp cluster on this machine (from kernel state, not only state files)."""
    from minikp.fabric.teardown import list_clusters

    return list_clusters()


# ---- state ------------------------------------------------------------------------------

def read_state(cluster: str) -> dict:
    return state.read(cluster)


def objects(st: dict, kind: str, namespace: str | None = None, name: str | None = None) -> list[dict]:
    """Objects of `kind` (nodes, pods, services, endpoints, endpointslices, or a stored kind
    such as ConfigMap) in state `st`; namespace None: every namespace."""
    objs = st[kind] if kind in st else [o for o in st.get("stored", []) if o["kind"] == kind]
    namespaced = kind != "nodes" and all("namespace" in o["metadata"] for o in objs)
    if namespaced and namespace is not None:
        objs = [o for o in objs if o["metadata"]["namespace"] == namespace]
    if name:
        objs = [o for o in objs if o["metadata"]["name"] == name]
    return objs


def find_host(cluster: str, st: dict, target: str) -> state.Host:
    return state.find_host(cluster, st, target)


def watch_state(cluster: str):
    """Yield the cluster's state each time an event changed it, from now on. The supervisor
    writes the state before publishing its events, so no copy yielded is behind an event."""
    past = events(cluster)
    seen = 0  # the state's sequence number last read
    for ev in watch_events(cluster, since=past[-1]["seq"] if past else 0):
        if ev["seq"] <= seen:
            continue  # the state already yielded reflects this event
        st = read_state(cluster)
        seen = st["seq"]
        yield st


# ---- the control socket -----------------------------------------------------------------

def _request(cluster: str, op: str, **args):
    from minikp.controller.control import request

    return request(cluster, op, **args)


def apply(cluster: str, path: str, scenario=None) -> str:
    """kubectl apply of one scenario file. `scenario`: the file as load_files loaded it,
    handed over so that the supervisor does not load it again."""
    from minikp.scenario.handover import hand_over

    spec = os.path.abspath(path)
    if scenario is not None and os.path.isdir(names.state_dir(cluster)):
        spec = {"file": spec, "loaded": hand_over(cluster, scenario, "apply")}
    return _request(cluster, "apply", spec=spec)


def load_files(files: list[str], cluster: str | None = None) -> list:
    """Each file alone, loaded and valid (InputError otherwise), before the cluster is
    touched; with `cluster` (apply), nodeName/nodeSelector are checked against its nodes.
    Each one's `.warnings` (FILE:LINE: ...) a front end must show; apply(scenario=) takes it."""
    from minikp.scenario.load import load_scenario

    live = _live_nodes(cluster) if cluster else None
    return [load_scenario([f], cluster=live) for f in files]


def check_files(files: list[str], cluster: str | None = None) -> list[str]:
    return [w for s in load_files(files, cluster) for w in s.warnings]


def _live_nodes(cluster: str) -> ClusterConfig | None:
    """The running cluster's nodes and their labels, as its state file lists them."""
    from minikp.scenario.model import NodeSpec

    try:
        st = state.read(cluster)
    except OperationError:
        return None  # not up: the apply request says so
    return ClusterConfig(nodes=[NodeSpec(n["metadata"]["name"], n["metadata"].get("labels", {}))
                                for n in st["nodes"]])


def delete(cluster: str, kind: str, name: str, namespace: str = "default",
           grace_period: int | None = None) -> str:
    spec = {"kind": kind, "name": name, "namespace": namespace}
    if grace_period is not None:
        spec["gracePeriod"] = grace_period
    return _request(cluster, "delete", spec=spec)


def wait_pods_gone(cluster: str, names: list[str] | None = None, namespace: str | None = None,
                   timeout: float = 3600) -> bool:
    """kubectl delete's --wait: until none of these pods (None: no Terminating pod) is in the
    namespace (None: any) any more; a Terminating pod goes when its workload is gone."""
    def waited_for(p):
        meta = p["metadata"]
        return namespace in (None, meta["namespace"]) and (
            meta["name"] in names if names is not None else "deletionTimestamp" in meta)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(waited_for(p) for p in state.read(cluster).get("pods", [])):
            return True
        time.sleep(0.1)
    return False


def scale(cluster: str, kind: str, name: str, replicas: int, namespace: str = "default") -> str:
    return _request(cluster, "scale", spec={"kind": kind, "name": name, "namespace": namespace,
                                            "replicas": replicas})


def set_readiness(cluster: str, name: str, ready: bool, namespace: str = "default") -> str:
    """Make a pod's readiness fail (ready=False) or recover, as a failing probe would."""
    return _request(cluster, "readiness", spec={"kind": "pod", "name": name,
                                                "namespace": namespace, "ready": ready})


def events(cluster: str) -> list[dict]:
    """Every event the supervisor still keeps, oldest first (each with its "seq")."""
    return _request(cluster, "events")


def watch_events(cluster: str, since: int = 0, stop=None):
    """Events after sequence number `since`, as they are published; until the cluster goes
    (or the threading.Event `stop` is set)."""
    from minikp.controller.control import watch

    return watch(cluster, since, stop)


# ---- traffic and proxy rules ------------------------------------------------------------

def node_proxier(cluster: str, st: dict, node: str) -> Proxier:
    nodes = [n["metadata"]["name"] for n in st["nodes"]]
    if node not in nodes:
        raise InputError(f'no node "{node}"; nodes: ' + ", ".join(nodes), field="NODE")
    config = dataclasses.replace(ClusterConfig(proxy_mode=st["proxyMode"]), **st["proxySettings"])
    return new_proxier(st["proxyMode"], names.netns_path(names.node_netns(cluster, node)), config)


CURL_SCHEMES = {"http": "http", "https": "https", "udp": "udp", "tcp": "tcp", "dns": "dns"}


def curl_target(url: str) -> tuple[str, str]:
    """(probe mode, target) for a `minikp curl` URL, by its scheme: http://, https://,
    tcp://HOST:PORT, udp://HOST:PORT, dns://NAME; no scheme is http."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "http", url
    mode = CURL_SCHEMES.get(scheme.lower())
    if mode is None:
        raise InputError(f"{url}: unsupported scheme {scheme!r}; use "
                         + ", ".join(f"{s}://" for s in CURL_SCHEMES), field="URL")
    if mode in ("http", "https"):
        return mode, url
    target = rest.rstrip("/")
    if mode == "dns":
        if not target or "/" in target:
            raise InputError(f"{url}: expected dns://NAME", field="URL")
        return mode, target
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"{url}: expected {scheme}://HOST:PORT", field="URL")
    return mode, target


def watch_rules(cluster: str, node: str, table: str | None = None, fmt: str | None = None):
    """Yield (None, rules now, []) and then, for each sync of `node`'s proxy (its
    ProxySynced events), (that event, the rules after it, what changed as
    minikp.rulesdiff.diff lines; [] when the sync rewrote nothing), until the cluster goes."""
    from minikp.rulesdiff import diff

    st = read_state(cluster)
    proxier = node_proxier(cluster, st, node)
    past = events(cluster)  # subscribe from here: a sync after this read is not missed
    text = proxier.rules_text(table, fmt)
    yield None, text, []
    for ev in watch_events(cluster, since=past[-1]["seq"] if past else 0):
        if ev["type"] != "ProxySynced" or ev.get("node") != node:
            continue
        new = proxier.rules_text(table, fmt)
        yield ev, new, diff(text, new)
        text = new


def probe(cluster: str, host, mode: str, target: str, count: int = 1, timeout: float = 2.0,
          interval: float = 0.0, sport: int = 0) -> list[dict]:
    """Run minikp.probe inside `host` (its network, hostname and resolv.conf); `sport`: a
    fixed source port (tcp, udp)."""
    from minikp.nsenter import popen_in

    argv = [sys.executable, "-m", "minikp.probe", mode, target, "--count", str(count),
            "--timeout", str(timeout), "--interval", str(interval), "--sport", str(sport)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = popen_in(host.netns, argv, hostname=host.hostname, resolv_conf=host.resolv_conf,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = p.communicate()
    if p.returncode != 0:
        raise OperationError(f"probe from {host.kind}/{host.name} failed: {err.strip()}")
    return json.loads(out)["results"]


@dataclasses.dataclass
class TraceLeg:
    """One traced exchange: the DNS lookup of a name, or the connection itself."""

    title: str
    nodes: list[tuple[str, list[Hit]]]  # each node the packets crossed, with the rules met
    result: dict  # the probe's answer: ok, body or error
    exact: bool  # True: only the traced packets were counted (else: per-rule counters)


@dataclasses.dataclass
class Trace:
    host: state.Host  # where the packet started
    legs: list[TraceLeg]  # with a name as destination: the DNS lookup, then the connection

    @property
    def result(self) -> dict:
        return self.legs[-1].result


TRACE_PORTS = (20000, 29999)  # below the ephemeral range: no other socket picks it


def trace(cluster: str, source: str, dest: str, proto: str = "tcp") -> Trace:
    """One connection from `source` to `dest` (HOST:PORT), followed through every node that
    saw its packets, in the order they met the rules. Where the proxy can (iptables-legacy:
    the TRACE target) only the connection's own packets in its original direction count;
    otherwise the nodes' per-rule counters before and after. A name as HOST is resolved
    first, as its own leg (the DNS query's path to the cluster DNS)."""
    import ipaddress
    import random

    st = read_state(cluster)
    host = find_host(cluster, st, source)
    name, _, port = dest.rpartition(":")
    if not name or not port.isdigit():
        raise InputError(f"{dest}: expected HOST:PORT", field="--to")
    proxiers = {n["metadata"]["name"]: node_proxier(cluster, st, n["metadata"]["name"])
                for n in st["nodes"]}
    legs = []
    try:
        ipaddress.ip_address(name)
        ip = name
    except ValueError:
        legs.append(_trace_leg(f"DNS lookup of {name}", host, proxiers, "udp", {"dport": 53},
                               lambda: probe(cluster, host, "dns", name, 1, 2.0)[0]))
        lookup = legs[-1].result
        if not lookup["ok"]:
            return Trace(host, legs)
        ip = lookup["body"].split()[0]
    sport = random.randint(*TRACE_PORTS)
    legs.append(_trace_leg(f"{proto} {host.ip}:{sport} -> {ip}:{port}", host, proxiers, proto,
                           {"sport": sport},
                           lambda: probe(cluster, host, proto, f"{ip}:{port}", 1, 2.0,
                                         sport=sport)[0]))
    return Trace(host, legs)


def _trace_leg(title, host, proxiers: dict[str, Proxier], proto, match, send) -> TraceLeg:
    import contextlib

    with contextlib.ExitStack() as stack:
        traces, before = {}, {}
        for node, p in proxiers.items():
            t = getattr(p, "packet_trace", lambda *a, **k: None)(proto, **match)
            if t is not None:
                traces[node] = stack.enter_context(t)
            else:
                before[node] = p.counters()
        result = send()
        after = {node: proxiers[node].counters() for node in before}
    hits = {node: t.hits() for node, t in traces.items()}
    hits |= {node: proxiers[node].hits(before[node], after[node]) for node in before}

    def order(node):  # the source's node, then where the proxy translated, then the rest
        return (node != host.node, not any(h[0] == "nat" and "-j DNAT" in h[2] for h in hits[node]),
                node)

    nodes = [(n, hits[n]) for n in sorted(hits, key=order) if hits[n]]
    return TraceLeg(title, nodes, result, exact=not before)


def node_for_address(st: dict, dest: str) -> str:
    ip = dest.rpartition(":")[0]
    for n in st["nodes"]:
        if n["status"]["addresses"][0]["address"] == ip:
            return n["metadata"]["name"]
    return st["nodes"][0]["metadata"]["name"]


# ---- pods ---------------------------------------------------------------------------------

def exec_in(cluster: str, host, argv: list[str]) -> subprocess.Popen:
    """Start argv in a pod or client (not a node) as `kubectl exec` does: inside the sandbox
    of its running command, or, when it runs none (a built-in workload), in a fresh sandbox
    of the same make (a pod's, with its securityContext and env, comes from the supervisor).
    stdio is inherited. FileNotFoundError when argv[0] does not exist."""
    from minikp.docker.runtime import container_pid
    from minikp.workloads import sandbox

    pid1 = None
    if host.kind == "pod":  # a Docker pod: its (first) container, not the pause container
        pid1 = container_pid(cluster, f"{host.namespace}/{host.name}")
    pid1 = pid1 or sandbox.sandbox_pid1(host.netns)
    sb = None
    if pid1 is None and host.kind == "pod":
        sb = sandbox.Sandbox.from_dict(_request(cluster, "sandbox", netns=host.netns))
    elif pid1 is None:
        sb = sandbox.default_sandbox(host.netns, host.hostname, host.resolv_conf, host.ip)
    return sandbox.exec_in(host.netns, sb, argv, pid1=pid1)


def is_sandbox_init(pid: int) -> bool:
    """Whether the process is PID 1 of its own PID namespace (immune to signals it does not
    handle, except SIGKILL)."""
    from minikp.workloads import sandbox

    return sandbox.is_pid1(pid)


# ---- nodes --------------------------------------------------------------------------------

def node_overlays(cluster: str, st: dict, node: str) -> list[tuple[str, str]]:
    """For nsenter.enter(overlays=): inside a node, `iptables*` are the backend its proxy
    wrote with (its Proxier.shell_commands(), laid out by minikp.nodecommands)."""
    from minikp.nodecommands import overlays

    return overlays(cluster, node_proxier(cluster, st, node).shell_commands())
