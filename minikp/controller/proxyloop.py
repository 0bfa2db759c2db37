"""Every node's kube-proxy as a process with a sync loop: its proxier (the kernel edge)
behind a BoundedFrequencyRunner (minikp.proxy.runner), plus what `minikp test`'s `proxy`
steps do to it.

- request(reason): the endpoints or services changed (kube-proxy's Sync() -> Run()); the
  node syncs now, or, past its burst, once at lastRun + minSyncPeriod (batched).
- tick(): the supervisor's loop; runs timers that fired: a batched sync, the retry after a
  failed sync (syncPeriod later, as kube-proxy's RetryAfter), or maxInterval with nothing
  changed (iptables: an hour, which 1.33's proxier makes a forced full sync).
- synced(snapshot), given by the supervisor, runs after each sync that applied a snapshot:
  kube-proxy updates its service health server only once the rules are written.
- wait_synced(): until no running node has a batched sync waiting; the supervisor answers a
  change only then, so the client's next request meets the rules that change made.
- the first sync of the process sets kube-proxy's conntrack sysctls (spec.proxy.conntrack)
  in the node's namespace, in every proxy mode, as cmd/kube-proxy does before any proxier runs.
- pause/resume (a stopped process: changes wait, the next sync sees them all), kill (rules
  stay in the kernel, nothing updates them), restart (a new proxier: its first sync is a
  full one, as a new kube-proxy's is), fail_next_sync (the next sync fails: retried
  syncPeriod later, and full, as after a failed iptables-restore).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from minikp.errors import InputError
from minikp.proxy import sysctls
from minikp.proxy.runner import BoundedFrequencyRunner

ACTIONS = ("pause", "resume", "kill", "restart", "fail-next-sync")
SYNC_THREADS = 8


def max_interval(proxier, options) -> float:
    """The runner's maxInterval: iptables passes time.Hour (its ipt.Monitor gets syncPeriod);
    ipvs and nftables pass syncPeriod."""
    return getattr(proxier, "RUNNER_MAX_INTERVAL_S", None) or options.sync_period_s


class NodeProxy:
    def __init__(self, node: str, make, snapshot, emit, options, synced=lambda snap: None) -> None:
        """make() -> a new Proxier; snapshot() -> the ProxySnapshot to apply now; emit is
        EventLog.emit; synced(snapshot) after a sync applied it."""
        self.node, self.make, self.snapshot, self.emit, self.options = node, make, snapshot, emit, options
        self.synced = synced
        self.state = "running"  # running | paused | killed
        self.missed = False  # changes while paused or killed
        self.fail_next = False
        self.reason = ""
        self.proxier = make()
        self.runner = self._runner()
        self.sysctls_set = False

    def _runner(self) -> BoundedFrequencyRunner:
        return BoundedFrequencyRunner(self._sync, self.options.min_sync_period_s,
                                      max(max_interval(self.proxier, self.options),
                                          self.options.min_sync_period_s))

    def request(self, reason: str) -> None:
        self.reason = reason
        if self.state != "running":
            self.missed = True
        elif not self.runner.run():
            self.emit("ProxySyncDeferred", f"proxy {self.node}: sync batched until minSyncPeriod "
                      f"({self.options.min_sync_period_s:g}s) after the last ({reason})", node=self.node)

    def tick(self) -> None:
        if self.state == "running":
            self.runner.tick()

    def waiting(self) -> bool:
        return self.state == "running" and self.runner.waiting

    def _sync(self) -> None:
        reason, self.reason = self.reason or "periodic (maxInterval)", ""
        try:
            if self.fail_next:
                self.fail_next = False
                if hasattr(self.proxier, "need_full"):
                    self.proxier.need_full = True  # a failed sync loses partial-sync state
                raise RuntimeError("failed on purpose (fail-next-sync)")
            path = getattr(self.proxier, "netns_path", None)
            if not self.sysctls_set and path:  # kube-proxy's conntrack settings, once, any mode
                sysctls.apply(path, self.options.conntrack)
                self.sysctls_set = True
            snap = self.snapshot()
            r = self.proxier.sync(snap)
        except Exception as e:  # noqa: BLE001 - kube-proxy logs it and retries
            self.runner.retry_after(self.options.sync_period_s)
            self.emit("ProxySyncFailed", f"proxy {self.node}: sync failed: {e}; retrying in "
                      f"syncPeriod ({self.options.sync_period_s:g}s)", node=self.node)
            return
        self.emit("ProxySynced", f"proxy {self.node}: {'full' if r.full else 'partial'}"
                  f" sync in {r.duration_s * 1000:.1f} ms ({reason})",
                  node=self.node, full=r.full, ms=round(r.duration_s * 1000, 2))
        self.synced(snap)

    def act(self, action: str) -> str:
        if action == "pause":
            self.state = "paused" if self.state == "running" else self.state
        elif action == "resume":
            if self.state == "killed":
                raise InputError(f"proxy on {self.node} was killed: restart it", field="action")
            self.state = "running"
            if self.missed:
                self.missed = False
                self.request("resumed")
        elif action == "kill":
            if self.state != "killed":
                self.proxier.close()
            self.state = "killed"
        elif action == "restart":
            if self.state != "killed":
                self.proxier.close()
            self.proxier, self.state, self.missed = self.make(), "running", False
            self.runner = self._runner()
            self.request("restarted")
        elif action == "fail-next-sync":
            self.fail_next = True
        else:
            raise InputError(f'"{action}": valid actions: {", ".join(ACTIONS)}', field="action")
        self.emit("ProxyAction", f"proxy {self.node}: {action} ({self.state})", node=self.node,
                  action=action)
        return self.state


class ProxyLoop:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeProxy] = {}

    def add(self, node_proxy: NodeProxy) -> None:
        self.nodes[node_proxy.node] = node_proxy

    def proxiers(self) -> dict:
        return {n: p.proxier for n, p in self.nodes.items()}

    def running(self) -> dict:
        """The proxiers of nodes whose kube-proxy runs (a paused or killed one notices nothing)."""
        return {n: p.proxier for n, p in self.nodes.items() if p.state == "running"}

    def request(self, reason: str, nodes=None) -> None:
        """Every node's kube-proxy is its own process: their syncs run side by side (a sync
        mostly waits on iptables-save/-restore and conntrack children, in its own namespace)."""
        chosen = [self.nodes[n] for n in nodes or self.nodes]
        if len(chosen) < 2:
            for p in chosen:
                p.request(reason)
            return
        with ThreadPoolExecutor(min(len(chosen), SYNC_THREADS)) as pool:
            for f in [pool.submit(p.request, reason) for p in chosen]:
                f.result()

    def tick(self) -> None:
        for p in self.nodes.values():
            p.tick()

    def wait_synced(self, poll_s: float = 0.02) -> None:
        while any(p.waiting() for p in self.nodes.values()):
            time.sleep(poll_s)
            self.tick()

    def close(self) -> None:
        """On shutdown: every proxier not already closed by a kill."""
        for p in self.nodes.values():
            if p.state != "killed":
                p.proxier.close()

    def act(self, node: str, action: str) -> str:
        if node not in self.nodes:
            raise InputError(f'no node "{node}"; nodes: {", ".join(self.nodes)}', field="node")
        return self.nodes[node].act(action)
