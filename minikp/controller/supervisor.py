"""The per-cluster supervisor: builds the cluster from its scenario, keeps workloads, the
cluster DNS and every node's proxy running, follows pod deaths and live changes (delete,
scale, apply), publishes events, and writes the state file the CLI reads. One process per
cluster, holding the cluster lock (minikp.clusterlock) for its life.

`minikp up` forks it from its own process (client.start_cluster: the scenario it loaded and
checked, and the modules it imported, are there already) and waits for its one-line JSON
report on a pipe (pipe_reporters). Also runs as `python -m minikp.controller.supervisor
--name C FILE...` (--scenario: one handed over in the state directory, scenario.handover;
--notify-fd: that pipe).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import queue
import shutil
import sys
import threading
import time
import traceback
from concurrent.futures import Future

from minikp import clock, clusterlock, names, state
from minikp.controller import changes, faults, loadbalancers, termination
from minikp.controller.control import ControlServer, EventLog, socket_path
from minikp.controller.edge import KernelEdge
from minikp.controller.endpoints import (PodState, changed_services, compute_endpoints,
                                         describe_changes)
from minikp.controller.objects import (deployment_object, endpoints_object, endpointslice_object,
                                       namespace_object, node_object, now, pod_object,
                                       replicaset_objects, service_object, stored_object)
from minikp.controller.probes import ProbeTracker, run_probe
from minikp.controller.proxyloop import NodeProxy, ProxyLoop
from minikp.controller.records import ClusterObjects, PodRecord, pod_key
from minikp.controller.snapshots import build_snapshot
from minikp.dns.dnsmasq import Dnsmasq
from minikp.dns.records import build_records, host_resolv_conf, resolv_conf
from minikp.docker.runtime import DockerPods, DockerRuntime, ImagePullError
from minikp.errors import InputError, OperationError
from minikp.fabric.teardown import destroy_cluster
from minikp.ingress.controller import IngressController, ingress_status, render_stored
from minikp.proxy.base import Proxier, housekeeping
from minikp.proxy.healthcheck import served
from minikp.scenario.handover import take_over
from minikp.scenario.load import load_scenario
from minikp.scenario.model import Scenario
from minikp.scenario.plan import plan_cluster, with_builtins
from minikp.workloads import sandbox as sandboxes
from minikp.workloads.commands import start_client
from minikp.workloads.imagepull import PullBackoff
from minikp.workloads.runtime import RUNTIMES, PodContext, PodWorkloads, choose
from minikp.workloads.restarts import Backoff, should_restart
from minikp.workloads.server import WorkloadServer

READY_TIMEOUT_S = 60
CHECK_PERIOD_S = 0.5  # how often workloads and readiness probes are looked at


def log(msg: str) -> None:
    print(f"{dt.datetime.now().strftime('%H:%M:%S.%f')[:-3]} {msg}", flush=True)


class Supervisor:
    def __init__(self, name: str, files: list[str], scenario: Scenario,
                 runtimes: dict | None = None, edge=KernelEdge):
        """`scenario`: `files` loaded and validated (by the CLI, handed over). `runtimes`
        (default workloads.runtime.RUNTIMES) and `edge(name, plan)`: tests give fakes."""
        self.name, self.files = name, files
        scenario.cluster.name = name
        self.scenario = with_builtins(scenario)  # live changes find the built-ins too
        self.plan = plan_cluster(self.scenario)
        self.objects = ClusterObjects(self.scenario, self.plan)  # what live changes see
        self.created = self.objects.created  # when each non-pod object was created
        self.records: dict[str, PodRecord] = {}  # pod key → all the supervisor knows of it
        self.events = EventLog()
        # Docker pods' pause and app containers; the engine is acquired with the first
        self.docker = DockerPods(name, self.events.emit)
        self.runtimes = {**(RUNTIMES if runtimes is None else runtimes),
                         "docker": DockerRuntime(self.docker)}
        self.client_procs = {}  # client name → Popen of its command
        self.pods_restarting: set[str] = set()  # a container restarted, the pod not serving yet
        self.proxy_loop = ProxyLoop()  # every node's kube-proxy: proxier + sync runner
        self.health = {}  # node → kube-proxy's service health server (proxy/healthcheck.py)
        self.lb_checks = loadbalancers.LoadBalancerChecks(
            self.plan.config.lb_health_check_interval_s)
        self.lb_routes: dict[str, list[str]] = {}  # LB address → the nodes it is routed to
        self.terminations: dict[str, termination.Termination] = {}  # pod key → its deletion
        self.objects.terminating = self.terminations  # live changes skip Terminating pods
        self.hooks_stop = threading.Event()  # set at shutdown: preStop sleeps end
        self.endpoints = {}
        self.ingress = IngressController()  # the ingress-nginx pods' nginx follows the Ingresses
        self.edge = edge(name, self.plan)  # everything done to the kernel
        self.workloads = WorkloadServer()
        self.control = None
        self.stopping = threading.Event()
        self.lock = threading.RLock()
        self.requests = queue.Queue()  # live changes, run by the main thread

    # ---- bring-up ------------------------------------------------------------------------
    def up(self) -> None:
        t0 = time.monotonic()
        for sub in ("resolv", "pods"):
            os.makedirs(os.path.join(names.state_dir(self.name), sub), exist_ok=True)
        self.write_resolv_confs()
        self.events.emit("UpStarted", f"building {len(self.plan.nodes)} nodes, "
                         f"{len(self.plan.pods)} pods", nodes=len(self.plan.nodes),
                         pods=len(self.plan.pods), dnsPods=sum(
                             any(self.runtime_of(p, c) == "dns" for c in p.template.containers)
                             for p in self.plan.pods))
        self.edge.build()
        self.events.emit("NodesBuilt", f"{len(self.plan.nodes)} nodes built")
        self.workloads.start()
        config = self.plan.config
        gaps = self.edge.proxy_gaps(config)
        if gaps:
            raise OperationError(f"{config.proxy_mode} proxy mode needs " + "; ".join(gaps)
                                 + ". kube-proxy would fall back to iptables mode here; minikp "
                                 "does not do that silently: use --proxy-mode iptables, or a "
                                 "kernel that has it (`minikp doctor` lists what this one has)")
        for node in self.plan.nodes:
            self.created[f"node/{node.name}"] = now()
            self.health[node.name] = self.edge.health_server(node.name)
            self.proxy_loop.add(NodeProxy(
                node.name, lambda node=node: self.edge.proxier(node.name, config),
                lambda node=node: build_snapshot(self.plan, node, self.endpoints),
                self.events.emit, config.proxy_options,
                synced=lambda snap, node=node.name: self.follow_health(node, snap)))
        for client in self.plan.clients:
            self.start_client(client)
        for sp in self.plan.services:
            self.created[f"svc/{sp.service.namespace}/{sp.service.name}"] = now()
        changes.replica_sets_scaled(self, self.plan.pods, "up")
        self.start_pods(self.plan.pods, "initial")
        self.control = ControlServer(socket_path(self.name), self.handle, self.events)
        log(f"cluster {self.name} up in {time.monotonic() - t0:.2f}s: {len(self.plan.nodes)} "
            f"nodes, {len(self.plan.pods)} pods, {len(self.plan.services)} services")

    @property
    def proxiers(self) -> dict[str, Proxier]:
        return self.proxy_loop.proxiers()

    def write_resolv_confs(self) -> None:
        domain, dns_ip = self.plan.config.cluster_domain, self.plan.dns_ip
        for ns in self.plan.namespaces:
            with open(state.resolv_path(self.name, ns), "w") as f:
                f.write(resolv_conf(ns, dns_ip, domain))
        with open(state.resolv_path(self.name, None), "w") as f:
            f.write(host_resolv_conf(dns_ip, domain))

    def start_client(self, client) -> None:
        proc = start_client(self.workloads, self.edge.client_path(client.name), client,
                            resolv_conf=state.resolv_path(self.name, None),
                            log_path=os.path.join(names.state_dir(self.name),
                                                  f"client-{client.name}.log"))
        if proc is not None:
            self.client_procs[client.name] = proc

    def start_pods(self, pods, reason: str, until_ready: bool = False) -> None:
        """Create pods, wait until they answer (and, `until_ready`, until their readiness
        probes pass: a rollout takes an old pod away only then), then let endpoints,
        proxies and DNS follow."""
        known = {id(p) for p in self.plan.pods}
        self.plan.pods.extend(p for p in pods if id(p) not in known)
        for pod in pods:
            self.start_pod(pod)
        deadline = time.monotonic() + READY_TIMEOUT_S
        self.wait_ready(pods, deadline)
        if until_ready:
            self.wait_probes_passed(pods, deadline)
        self.resync(reason)

    def runtime_of(self, pod, container) -> str:
        return choose(pod, container, self.plan.config.runtime)

    def start_pod(self, pod) -> None:
        key = pod_key(pod)
        in_docker = any(self.runtime_of(pod, c) == "docker" for c in pod.template.containers)
        # a Docker pod's namespace is its pause container's, wired like every pod's
        path = self.edge.add_pod(pod, netns_pid=self.docker.sandbox(pod) if in_docker else None)
        rec = self.records[key] = PodRecord(pod, netns=path, created=now())
        self.events.emit("PodCreated", f"pod {key} on {pod.node} ({pod.ip})", pod=key)
        resolv = state.resolv_path(self.name, pod.namespace)
        rec.sandboxes = self.pod_sandboxes(pod, path, resolv)
        ctx = PodContext(key, pod, path,
                         logbase=os.path.join(names.state_dir(self.name), "pods",
                                              key.replace("/", "_")),
                         server=self.workloads, sandbox_of=rec.sandboxes.of,
                         dns_records=lambda: build_records(self.plan, self.endpoints)
                         if self.endpoints else None,
                         ingress_config=lambda: render_stored(self.scenario.stored,
                                                              self.plan.services, self.endpoints),
                         cluster_runtime=self.plan.config.runtime)
        rec.ctx = ctx
        if in_docker and not self.pull_images(rec, clock.now()):
            return  # Pending: check_pods tries again when the image back-off is over
        self.start_workloads(rec)

    def start_workloads(self, rec) -> None:
        rec.workloads = PodWorkloads.start(rec.ctx, self.runtimes)
        rec.probes = [ProbeTracker(c.readiness_probe, time.monotonic())
                      for c in rec.pod.template.containers if c.readiness_probe]

    def pull_images(self, rec, now: float) -> bool:
        """Pull (or build) the images of the pod's Docker containers, as the kubelet does
        before it starts them. One that cannot be had leaves the pod Pending, its containers
        waiting (ErrImagePull, then ImagePullBackOff) until a later try gets it."""
        for c in rec.pod.template.containers:
            if self.runtime_of(rec.pod, c) != "docker":
                continue
            try:
                self.docker.ensure_image(c.image)
            except ImagePullError as e:
                rec.pull = rec.pull if rec.pull and rec.pull.image == e.image else PullBackoff(e.image)
                retry = rec.pull.failed(now, e.reason) - now
                self.events.emit("Failed", str(e), pod=rec.key, image=e.image)
                self.events.emit("BackOff", f'pod {rec.key}: back-off pulling image "{e.image}" '
                                 f"(next try in {retry:.0f}s)", pod=rec.key, image=e.image)
                return False
        rec.pull = None
        return True

    def retry_pulls(self) -> bool:
        """Pending pods whose image back-off is over pull again; those that get their
        images start (and are Ready once they serve). True when any tried."""
        now = clock.now()
        due = [r for r in self.records.values() if r.pull is not None and r.live and r.pull.due(now)]
        for rec in due:
            if self.pull_images(rec, now):
                self.start_workloads(rec)
                self.pods_restarting.add(rec.key)  # Ready (check_restarts) once it serves
        return bool(due)

    def pod_sandboxes(self, pod, path: str, resolv: str) -> sandboxes.PodSandboxes:
        """The pod's container sandboxes (securityContext, volumes, the kubelet's environment
        from the Services that exist now), built when needed. A new pod starts with empty
        emptyDirs."""
        node_ip = next((n.ip for n in self.plan.nodes if n.name == pod.node), "")
        maps = {(m.namespace, m.name): m.data for m in self.scenario.config_maps}
        vdir = self.volume_dir(pod)
        if any(v.kind == "emptyDir" for v in pod.template.volumes):
            shutil.rmtree(vdir, ignore_errors=True)
        return sandboxes.PodSandboxes(pod, self.plan.services, path, resolv, vdir, node_ip, maps)

    def volume_dir(self, pod) -> str:
        """Its emptyDirs, named by the pod's own namespace (a hostNetwork pod has none)."""
        return sandboxes.volume_dir(names.state_dir(self.name), names.netns_path(
            names.pod_netns(self.name, pod.namespace, pod.name)))

    def sandbox_of(self, netns: str) -> dict:
        """For `minikp exec` into a pod that runs no process of its own: its sandbox."""
        with self.lock:
            for rec in self.records.values():
                if rec.netns == netns and rec.sandboxes is not None:
                    return dataclasses.asdict(rec.sandboxes.first())
        raise InputError(f"no pod with network namespace {netns}")

    def wait_ready(self, pods, deadline: float) -> None:
        pending = list(pods)
        while pending:
            still = []
            for pod in pending:
                key = pod_key(pod)
                rec = self.records[key]
                if rec.pull is not None:
                    continue  # waits for its image: up goes on, it is not Ready
                if self.restart_containers(rec, time.monotonic()) or rec.restarting():
                    self.pods_restarting.add(key)  # crash-looping: up goes on, it is not Ready
                elif rec.finished():
                    rec.state = PodState(ready=False, running=False)
                    self.events.emit("PodFailed", f"pod {key} failed: its workload exited",
                                     pod=key)
                elif rec.workloads.started():  # listening; without a readinessProbe: ready
                    self.run_probes(pod, time.monotonic())
                    self.set_ready(key, "started")
                else:
                    still.append(pod)
            pending = still
            if pending and time.monotonic() > deadline:
                raise OperationError("pods not ready in time: "
                                     + ", ".join(pod_key(p) for p in pending))
            if pending:
                time.sleep(0.02)

    def wait_probes_passed(self, pods, deadline: float) -> None:
        """Run the started pods' readiness probes as they fall due until every pod is Ready."""
        pending = [p for p in pods if not self.records[pod_key(p)].state.ready]
        while pending:
            for pod in pending:
                key = pod_key(pod)
                if self.records[key].finished():
                    raise OperationError(f"pod {key} failed before it was Ready: its workload exited")
                if self.run_probes(pod, time.monotonic()):
                    self.set_ready(key, "readiness probe")
            pending = [p for p in pending if not self.records[pod_key(p)].state.ready]
            if pending and time.monotonic() > deadline:
                raise OperationError("pods not Ready in time (readinessProbe): "
                                     + ", ".join(pod_key(p) for p in pending))
            if pending:
                time.sleep(0.05)

    @property
    def states(self) -> dict[str, PodState]:
        """Pod key → state, as the endpoint controller and the objects read them."""
        return {k: r.state for k, r in self.records.items()}

    def dns_servers(self) -> dict[str, Dnsmasq]:
        return {k: d for k, r in self.records.items() if r.workloads is not None
                for d in r.workloads.dns_servers()}

    # ---- keeping it current --------------------------------------------------------------
    def resync(self, reason: str) -> None:
        """Endpoints from pod states → every node's proxy (partial syncs) and the DNS; then
        the LoadBalancer routes and the state file."""
        with self.lock:
            eps = self.sync_proxies(reason)
            dns = self.dns_servers()
            if dns:
                records = build_records(self.plan, eps)
                rolling = self.control is not None and len(dns) > 1  # up, with traffic
                for key, d in dns.items():
                    if rolling and d.needs_restart(records):
                        self.roll_dns(key, d, records)
                    else:
                        d.update(records)
            self.ingress.sync({k: n for k, r in self.records.items() if r.workloads is not None
                               for n in r.workloads.ingress_servers()},
                              self.scenario.stored, self.plan.services, eps, self.events.emit, reason)
            self.route_load_balancers()
            self.write_state()

    def sync_proxies(self, reason: str):
        eps = compute_endpoints(self.plan.services, self.plan.pods, self.states,
                                self.plan.endpoint_slices)
        if eps != self.endpoints:
            self.events.emit("EndpointsChanged",
                             f"endpoints {describe_changes(self.endpoints, eps)} ({reason})",
                             services=changed_services(self.endpoints, eps))
        self.endpoints = eps
        self.proxy_loop.request(reason)  # each node syncs now or, batched, within minSyncPeriod
        return eps

    def follow_health(self, node: str, snap) -> None:
        """After a node's proxier applied `snap`, its health server answers from it (as
        kube-proxy's syncProxyRules updates it after the restore): a load balancer never
        learns of a ready endpoint before the node's rules have it."""
        for problem in self.health[node].sync(*served(snap)):
            self.events.emit("FailedToStartServiceHealthcheck", f"node {node} {problem}", node=node)

    def roll_dns(self, key: str, d: Dnsmasq, records) -> None:
        """A DNS pod whose dnsmasq must restart (new CNAME/SRV records) first leaves the
        kube-dns endpoints, as in a rolling update, so that no query meets its closed port;
        then it comes back. The other replica answers meanwhile."""
        rec = self.records[key]
        before = rec.state
        rec.state = PodState(ready=False, running=before.running)
        self.sync_proxies(f"restarting DNS in {key}")
        self.proxy_loop.wait_synced()
        try:
            d.update(records)
        finally:
            rec.state = before
            self.sync_proxies(f"DNS in {key} restarted")

    def route_load_balancers(self) -> None:
        """LoadBalancer addresses (loadbalancers.py): to every node, or, for
        externalTrafficPolicy Local, to the nodes whose health check passed at the last
        check (an address never checked is checked now)."""
        fresh = self.lb_checks.unchecked(loadbalancers.targets(self.plan.services, self.plan.nodes))
        if fresh:
            self.lb_checks.record(self.edge.check_lb_health(fresh))
        wanted = loadbalancers.wanted_routes(self.plan.services, self.plan.nodes,
                                             self.lb_checks.healthy)
        if wanted == self.lb_routes:
            return
        for ip, nodes in wanted.items():
            if self.lb_routes.get(ip) != nodes:
                self.events.emit("LoadBalancerRouted", f"load balancer {ip} → "
                                 f"{', '.join(nodes) or 'no node (no health check passed)'}",
                                 ip=ip, nodes=nodes)
        self.edge.set_lb_routes(wanted)
        self.lb_routes = wanted

    def check_load_balancers(self, now: float) -> None:
        """A round of load balancer health checks when one is due; routes follow."""
        if not self.lb_checks.due(now):
            return
        wanted = loadbalancers.targets(self.plan.services, self.plan.nodes)
        if self.lb_checks.record(self.edge.check_lb_health(wanted), now):
            with self.lock:
                self.route_load_balancers()

    def set_ready(self, key: str, why: str) -> None:
        """Running, and ready unless one of its readiness probes says otherwise (or its
        readiness was made to fail by hand)."""
        rec = self.records[key]
        ready = not rec.forced_unready and all(t.ready for t in rec.probes)
        rec.state = PodState(ready=ready, terminating=rec.state.terminating)
        self.events.emit("PodReady" if ready else "PodNotReady",
                         f"pod {key} is {'ready' if ready else 'running, not ready'} ({why})", pod=key)

    def force_unready(self, pod, fail: bool) -> None:
        """Readiness made to fail (or recover) by hand, as a failing probe would: the endpoint
        leaves (or rejoins) every node's rules."""
        key = pod_key(pod)
        rec = self.records[key]
        rec.forced_unready = fail
        if rec.live:
            self.set_ready(key, "readiness made to fail" if fail else "readiness recovered")
            self.resync(f"readiness of {key}")

    def run_probes(self, pod, now: float) -> bool:
        """Run the pod's due readiness probes; True when its readiness changed."""
        rec, changed = self.records[pod_key(pod)], False
        for tracker in rec.probes:
            if tracker.due(now):
                sb = rec.sandboxes.first() if tracker.probe.exec_command else None
                ok = run_probe(tracker.probe, pod, rec.netns, pod.hostname,
                               state.resolv_path(self.name, pod.namespace), sandbox=sb,
                               pid1=rec.workloads.pid1())
                changed |= tracker.record(ok, time.monotonic())
        return changed

    def restart_containers(self, rec, now: float) -> bool:
        """restartPolicy, for every runtime, as the kubelet: a container that exited is
        started again (same pod, same namespace) once its back-off is over (at once, then
        10 s doubling to 5 min); one that is not to restart stays down (the pod fails).
        True when a container went down just now."""
        down, w = False, rec.workloads
        for i, (name, c, h) in enumerate(w.parts):
            rt, b = w.runtimes[name], rec.restarts.setdefault(c.name, Backoff())
            if b.waiting_until is None:
                if c.name in rec.exits or not rt.exited(h):
                    continue
                code = rt.exit_code(h)
                if not should_restart(rec.pod.template.restart_policy, code or 0):
                    rec.exits[c.name] = ("Completed" if code == 0 else "Error", code)
                    continue
                b.exited(now)
                rec.exits[c.name] = ("CrashLoopBackOff" if b.restarts else "Error", code)
                down = True
                self.events.emit("ContainerExited", f"pod {rec.key}: container {c.name} exited "
                                 f"({code}); restart in {b.waiting_until - now:.0f}s", pod=rec.key)
            if b.due(now):
                try:
                    w.parts[i] = (name, c, rt.start(rec.ctx, c))
                except Exception as e:  # noqa: BLE001 - tried again after the next back-off
                    b.exited(now)
                    log(f"restarting {rec.key}/{c.name} failed: {e}")
                    continue
                b.restarted(now)
                rec.exits.pop(c.name, None)
                self.pods_restarting.add(rec.key)
                self.events.emit("ContainerRestarted", f"pod {rec.key}: container {c.name} "
                                 f"restarted (restart {b.restarts})", pod=rec.key)
        return down

    def check_restarts(self) -> tuple[list[str], bool]:
        """Pods whose container went down leave the endpoints; restarted ones rejoin once
        they serve again. (keys whose readiness changed, whether any container status did)"""
        changed, any_status = [], False
        now = time.monotonic()
        for rec in list(self.records.values()):
            if not rec.live or rec.workloads is None:
                continue
            if self.restart_containers(rec, now):
                any_status = True
                if rec.state.ready:
                    changed.append(rec.key)
                rec.state = PodState(ready=False)
                self.pods_restarting.add(rec.key)
        for key in list(self.pods_restarting):
            rec = self.records.get(key)
            if rec is None or not rec.live:
                self.pods_restarting.discard(key)
            elif not rec.restarting_now() and rec.workloads.started():
                self.pods_restarting.discard(key)
                self.run_probes(rec.pod, now)
                self.set_ready(key, "container restarted")
                changed.append(key)
        return changed, any_status or bool(self.pods_restarting)

    def check_pods(self) -> None:
        with self.lock:
            pulled = self.retry_pulls()
            restarted, statuses = self.check_restarts()
            statuses |= pulled or any(r.pull is not None for r in self.records.values())
            failed = [r for r in self.records.values()
                      if r.live and r.finished()]  # a Terminating pod's workload is meant to end
            for rec in failed:
                self.events.emit("PodFailed", f"pod {rec.key} failed: its workload exited",
                                 pod=rec.key)
                rec.state = PodState(ready=False, running=False)
            changed = []
            for pod in self.plan.pods:
                key = pod_key(pod)
                rec = self.records.get(key)
                if rec and rec.probes and rec.state.running \
                        and self.run_probes(pod, time.monotonic()):  # also while Terminating
                    self.set_ready(key, "readiness probe")
                    changed.append(key)
            if failed or changed or restarted:
                self.resync("pod failed" if failed else "readiness changed")
            elif statuses:  # restarts, back-off reasons: `get pods` shows them
                self.write_state()

    def proxy_state(self) -> dict:
        """What the proxy is ("proxy", for people) and how to rebuild one to read its rules
        ("proxySettings", for minikp.proxy.base.new_proxier); every node's is the same."""
        p = next(iter(self.proxiers.values()))
        return {"proxy": p.describe(), "proxySettings": p.settings()}

    def write_state(self) -> None:
        """Write state.json, then publish the events it reflects ("seq": the last of them)."""
        plan, eps = self.plan, self.endpoints
        seq = self.events.seq
        node_ips = {n.name: n.ip for n in plan.nodes}
        st = {
            "seq": seq, "name": self.name, "supervisorPid": os.getpid(), "files": self.files,
            "proxyMode": plan.config.proxy_mode, **self.proxy_state(),
            "clusterDomain": plan.config.cluster_domain, "dnsIP": plan.dns_ip,
            "nodes": [node_object(n, self.created.get(f"node/{n.name}", ""), plan.config.kubernetes_version)
                      for n in plan.nodes],
            "pods": [pod_object(p, rec.state, node_ips[p.node], rec.created, self.deletion_of(p),
                                containers=rec.container_statuses(), phase=rec.phase)
                     for p in plan.pods for rec in [self.records[pod_key(p)]]],
            "services": [], "endpoints": [], "endpointslices": [],
            "clients": [{"name": c.name, "ip": c.ip, "hostnames": c.hostnames}
                        for c in plan.clients],
            "stored": [stored_object(o, self.created.setdefault(
                f"{o.kind}/{o.namespace}/{o.name}", now()),
                ingress_status(o, self.scenario.stored, plan.services)) for o in self.scenario.stored],
            "namespaces": [namespace_object(ns, self.created.setdefault(f"ns/{ns}", now()))
                           for ns in plan.namespaces],
            "deployments": [], "replicasets": [],
        }
        states = self.states
        for w in self.scenario.workloads:
            created = self.created.setdefault(f"{w.kind}/{w.namespace}/{w.name}", now())
            if w.kind == "Deployment":
                st["deployments"].append(deployment_object(w, plan.pods, states, created))
            st["replicasets"] += replicaset_objects(w, plan.pods, states, created)
        for sp in plan.services:
            key = f"{sp.service.namespace}/{sp.service.name}"
            created = self.created.get(f"svc/{key}", "")
            st["services"].append(service_object(sp, created))
            if key in eps:
                st["endpoints"].append(endpoints_object(sp, eps[key], created))
                st["endpointslices"].append(endpointslice_object(sp, eps[key], created))
        state.write(self.name, st)
        self.events.publish(seq)

    # ---- live changes (the control socket) -------------------------------------------------
    CHANGES = {"delete": changes.delete, "scale": changes.scale, "apply": changes.apply,
               "readiness": changes.readiness, **faults.OPS}

    def handle(self, op: str, args: dict):
        """Called from a control-socket thread. Changes run on the main thread: the fabric's
        netlink sockets belong to it (pyroute2 opens a new socket, in the caller's namespace,
        for each new thread)."""
        if op == "events":
            return self.events.since(0)
        if op == "sandbox":
            return self.sandbox_of(args["netns"])
        if op not in self.CHANGES:
            raise InputError(f'unknown operation "{op}"; valid: ' + ", ".join(self.CHANGES))
        spec = args["spec"]
        if op == "apply" and isinstance(spec, dict) and "loaded" in spec:  # the CLI's load
            spec = {"file": spec["file"], "scenario": take_over(self.name, spec["loaded"])}
        done = Future()
        self.requests.put((self.CHANGES[op], spec, done))
        return done.result()

    # LiveCluster (controller/changes.py): what live changes may call besides these
    def namespaces_added(self) -> None:
        self.write_resolv_confs()

    def emit(self, kind: str, message: str, **fields) -> None:
        self.events.emit(kind, message, **fields)

    def stop_pods(self, pods, reason: str, grace: int | None = None, wait: bool = False) -> None:
        """Graceful deletion (termination.py): the pods are Terminating at once, their
        endpoints terminating in every node's proxy; each pod's preStop hooks, SIGTERM and
        SIGKILL run in a thread; the serve loop removes a pod once its workload is gone
        (`wait`: here, before returning, for a change that reuses their names)."""
        fresh = [p for p in pods if pod_key(p) not in self.terminations]
        for pod in fresh:
            key = pod_key(pod)
            rec = self.records[key]
            rec.state = termination.terminating_state(rec.state)
            term = termination.Termination.begin(pod, reason, time.monotonic(), now(), grace)
            self.terminations[key] = term
            self.events.emit("PodTerminating", f"pod {key} terminating ({reason}; grace period "
                             f"{term.grace_s}s)", pod=key)
        if fresh:
            self.resync(f"deleting {', '.join(pod_key(p) for p in fresh)}")
            self.proxy_loop.wait_synced()  # the endpoints are terminating in the rules
        for pod in fresh:
            self.stopper(self.terminations[pod_key(pod)]).start()
        if wait:
            for pod in pods:
                term = self.terminations.get(pod_key(pod))
                if term is not None:
                    term.done.wait()
            self.finish_terminations()

    def stopper(self, term: termination.Termination) -> termination.Stopper:
        """The kubelet's side of one pod's termination, wired to this pod's workloads."""
        pod, rec = term.pod, self.records[pod_key(term.pod)]
        resolv = state.resolv_path(self.name, pod.namespace)

        def run_hook(container, handler, timeout):
            c = next(c for c in pod.template.containers if c.name == container)
            return termination.run_hook(handler, pod, rec.netns, resolv, timeout, self.hooks_stop,
                                        sandbox=rec.sandboxes.of(c) if rec.sandboxes else None,
                                        pid1=rec.workloads.pid1() if rec.workloads else None)

        def stop_workload(timeout):
            if rec.workloads is None:
                return None
            rec.workloads.stop(timeout)
            return rec.workloads.exit_code()

        return termination.Stopper(term, run_hook, stop_workload,
                                   lambda kind, msg: self.events.emit(kind, msg, pod=rec.key))

    def finish_terminations(self) -> None:
        """Pods whose workload is gone leave: namespace, address, the endpoints."""
        done = [t for t in self.terminations.values() if t.done.is_set()]
        if not done:
            return
        for t in done:
            self.terminations.pop(pod_key(t.pod))
            self.end_pod(t.pod, f"{t.reason}; workload {t.outcome}")
        self.resync("terminated " + ", ".join(pod_key(t.pod) for t in done))

    def deletion_of(self, pod) -> tuple[str, int] | None:
        t = self.terminations.get(pod_key(pod))
        return (t.deleted_at, t.grace_s) if t else None

    def end_pod(self, pod, reason: str) -> None:
        """Stop a pod's workload, remove its namespace and give back its name and address."""
        key = pod_key(pod)
        rec = self.records.pop(key)
        if rec.workloads is not None:  # its Stopper ended it; this is a backstop
            rec.workloads.stop(grace_s=0)
        self.docker.remove(key)  # a Docker pod's pause container (one that never pulled)
        self.edge.remove_pod(pod)
        # its emptyDir volumes go with it, as the kubelet's do
        shutil.rmtree(self.volume_dir(pod), ignore_errors=True)
        self.plan.pods.remove(pod)
        self.plan.allocator.release_pod(pod)
        self.events.emit("PodDeleted", f"pod {key} deleted ({reason})", pod=key)

    # ---- the loop ------------------------------------------------------------------------
    def serve(self) -> None:
        last_check, last_canary = time.monotonic(), clock.now()
        while not self.stopping.is_set():
            try:  # a short wait, so that SIGTERM is noticed quickly
                change, spec, done = self.requests.get(timeout=0.1)
            except queue.Empty:
                pass
            else:
                try:
                    result = change(self, spec)  # self as changes.LiveCluster
                    self.proxy_loop.wait_synced()  # the answer comes with the rules applied
                    self.settle()  # the client reads state next: it reflects the change
                    done.set_result(result)
                except BaseException as e:  # noqa: BLE001 - the client reports it
                    if not isinstance(e, InputError):
                        log(f"change failed:\n{traceback.format_exc()}")
                    done.set_exception(e)
            now = time.monotonic()
            try:
                self.proxy_loop.tick()
                if clock.now() - last_canary >= self.plan.config.sync_period_s:
                    last_canary = clock.now()
                    self.check_canaries()
                if now - last_check >= CHECK_PERIOD_S:
                    last_check = now
                    self.check_pods()
                with self.lock:
                    self.finish_terminations()
                self.check_load_balancers(now)
                self.settle()
            except Exception:  # keep supervising; the log says what went wrong
                log("check failed:\n" + traceback.format_exc())

    def settle(self) -> None:
        """Events still unpublished (emitted after the last state write) get the state that
        reflects them written first; writing it publishes them."""
        if self.events.pending:
            with self.lock:
                self.write_state()

    def check_canaries(self) -> None:
        """kube-proxy's ipt.Monitor: every syncPeriod, a node whose proxier says its rules
        were flushed behind its back (iptables: the canary chain is gone) syncs (a full sync:
        the proxier sees the canary gone). A paused or killed proxy notices nothing. The
        periodic full sync (1.33+) is the sync runner's maxInterval (minikp.controller.proxyloop)."""
        running = self.proxy_loop.running()
        for p in running.values():
            housekeeping(p)
        flushed = [n for n, p in running.items() if p.flushed()]
        if flushed:
            self.events.emit("RulesFlushed", f"proxy rules flushed on {', '.join(flushed)}: "
                             "full resync", nodes=flushed)
            with self.lock:
                self.proxy_loop.request("rules flushed behind the proxy's back", flushed)

    def shutdown(self) -> None:
        self.hooks_stop.set()
        if self.control:
            self.control.close()
        self.proxy_loop.close()
        for h in self.health.values():
            h.close()
        self.workloads.stop()
        for rec in self.records.values():  # no grace: the cluster goes as a whole
            if rec.workloads is not None:
                rec.workloads.stop(grace_s=0)
        self.docker.close()
        self.edge.destroy()


def acquire_lock(cluster: str, lock_fd: int | None = None) -> int | None:
    """The cluster lock, for the supervisor's life: the one `minikp up` took and handed over
    (lock_fd), or taken here; None if someone else holds it."""
    if lock_fd is None:
        return clusterlock.try_lock(cluster, "supervisor")
    os.set_inheritable(lock_fd, False)  # no workload of ours may keep the cluster locked
    clusterlock.record(lock_fd, "supervisor")
    return lock_fd


def run(name: str, files: list[str], proxy_mode=None, nodes=None, notify=None,
        lock_fd: int | None = None, progress=None, scenario: Scenario | str | None = None,
        kubernetes_version=None) -> int:
    """Build cluster `name` and supervise it until SIGTERM/SIGINT. `notify(dict)` is told
    once whether the cluster came up; `progress(event)`, each event until then. A signal
    during the build stops it there: everything made is removed and the report says it was
    stopped. `scenario`: `files` as the CLI loaded them, or the path it handed them over
    in; None: loaded here."""
    notify = notify or (lambda report: None)
    stop = clusterlock.StopOnSignal().install()
    lock = acquire_lock(name, lock_fd)
    if lock is None:
        notify({"ok": False, "exit": 1, "error": f'cluster "{name}" is already up; '
                f"`minikp down --name {name}` first, or pick another --name"})
        return 1
    try:
        return _build_and_serve(name, files, proxy_mode, nodes, notify, stop, progress, scenario,
                                kubernetes_version)
    finally:
        if lock_fd is None:  # ours; a handed-over one is closed by its owner too
            os.close(lock)


def _build_and_serve(name, files, proxy_mode, nodes, notify, stop, progress=None,
                     scenario=None, kubernetes_version=None) -> int:
    sup = None
    try:
        if isinstance(scenario, str):
            scenario = take_over(name, scenario)
        elif scenario is None:
            scenario = load_scenario(files, proxy_mode=proxy_mode, nodes=nodes,
                                     kubernetes_version=kubernetes_version)
        sup = Supervisor(name, files, scenario)
        sup.events.listener = progress
        sup.stopping = stop.requested
        sup.up()
        stop.raising = False
        if stop.requested.is_set():  # a signal some code below up() caught and ignored
            raise clusterlock.Stopped("a signal")
    except BaseException as e:  # a failed up leaves nothing behind
        stop.raising = False
        if isinstance(e, clusterlock.Stopped):
            code, error = 1, (f'up of cluster "{name}" stopped ({e}, e.g. by `minikp down`) '
                              "before it came up; nothing of it was left")
        else:
            code = e.exit_code if isinstance(e, (InputError, OperationError)) else 1
            error = str(e) or type(e).__name__
        log("up failed:\n" + traceback.format_exc())
        try:
            if sup is not None:
                sup.workloads.stop()
                for h in sup.health.values():
                    h.close()
        finally:
            destroy_cluster(name)
        notify({"ok": False, "exit": code, "error": error})
        return code
    sup.events.listener = None
    notify({"ok": True, "pid": os.getpid()})
    try:
        sup.serve()
    finally:
        log("shutting down")
        sup.shutdown()
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="minikp-supervisor")
    ap.add_argument("--name", required=True)
    ap.add_argument("--proxy-mode")
    ap.add_argument("--nodes", type=int)
    ap.add_argument("--kubernetes-version")
    ap.add_argument("--notify-fd", type=int)
    ap.add_argument("--lock-fd", type=int, help="the cluster lock, taken by `minikp up`")
    ap.add_argument("--scenario", help="FILEs as `minikp up` loaded them (scenario.handover)")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args(argv)
    notify, progress = pipe_reporters(a.notify_fd)
    names.check_cluster_name(a.name)
    return run(a.name, a.files, a.proxy_mode, a.nodes, notify, a.lock_fd, progress, a.scenario,
               a.kubernetes_version)


def pipe_reporters(fd: int | None):
    """(notify, progress) for run(), writing `up`'s start-up pipe `fd`: a JSON line per event,
    then the one-line report (client.start_cluster reads them)."""
    out = os.fdopen(fd, "w") if fd is not None else None

    def progress(ev):  # lines before the report: `up` shows them as they come
        if out is not None and not out.closed:
            try:
                out.write(json.dumps({"event": ev}) + "\n")
                out.flush()
            except OSError:  # `up` is gone (Ctrl-C): the cluster still comes up
                pass

    def notify(report):
        if out is not None and not out.closed:
            out.write(json.dumps(report) + "\n")
            out.close()
    return notify, progress


if __name__ == "__main__":
    sys.exit(main())
