"""Fakes for the supervisor's two seams, so that controller tests run without root: a
kernel edge whose pods are names, a proxier that records each sync it is given, and a
pod runtime whose containers start at once and die when a test says so."""

from __future__ import annotations

from minikp.proxy.base import SyncResult
from minikp.proxy.changes import services_to_write


class FakeProxier:
    formats = ("fake",)

    def __init__(self, node: str):
        self.node, self.snapshot, self.syncs, self.is_flushed = node, None, [], False

    def sync(self, snapshot) -> SyncResult:
        full = self.snapshot is None or self.is_flushed  # as every real mode decides
        result = SyncResult(full, 0.0, services_to_write(self.snapshot, snapshot, full))
        self.snapshot, self.is_flushed = snapshot, False
        self.syncs.append(result)
        return result

    def flushed(self) -> bool:
        return self.is_flushed

    def endpoints(self, service: str) -> set[str]:
        """"ip:port" of every ready endpoint of `service` ("ns/name") in the last snapshot."""
        return {str(e) for sp in self.snapshot.services if sp.service_key == service
                for e in sp.endpoints if e.ready}

    def describe(self) -> str:
        return "fake"

    def settings(self) -> dict:
        return {"proxy_mode": "fake"}

    def close(self) -> None:
        pass


class FakeHealthServer:
    """The ports and counts kube-proxy's health server would answer with."""

    def __init__(self):
        self.ports, self.counts, self.paused = {}, {}, False

    def sync(self, ports, counts):
        self.ports, self.counts = dict(ports), dict(counts)
        return []

    def pause(self, paused):
        self.paused = paused

    def answers(self, port) -> bool:
        return not self.paused and any(p == port and self.counts.get(k, 0) > 0
                                       for k, p in self.ports.items())

    def close(self):
        pass


class FakeEdge:
    """KernelEdge's calls, on nothing: pod namespaces are names, proxiers are FakeProxiers."""

    def __init__(self, cluster, plan):
        self.cluster, self.pods, self.lb_routes, self.proxiers = cluster, set(), {}, {}
        self.health = {}
        self.built = self.destroyed = False

    def build(self):
        self.built = True

    def proxy_gaps(self, config):
        return []

    def proxier(self, node, config):
        return self.proxiers.setdefault(node, FakeProxier(node))

    def node_path(self, node):
        return f"fake/node/{node}"

    def client_path(self, client):
        return f"fake/client/{client}"

    def add_pod(self, pod, netns_pid=None):
        self.pods.add(f"{pod.namespace}/{pod.name}")
        return f"fake/pod/{pod.namespace}/{pod.name}"

    def remove_pod(self, pod):
        self.pods.remove(f"{pod.namespace}/{pod.name}")

    def set_lb_routes(self, wanted):
        self.lb_routes = dict(wanted)

    def health_server(self, node):
        return self.health.setdefault(node, FakeHealthServer())

    def check_lb_health(self, targets):
        """As the real check: 200 where the node's health server counts local endpoints."""
        return {(ip, node): self.health[node].answers(port) for ip, node, _, port in targets}

    def destroy(self):
        self.destroyed = True


class FakeRuntime:
    """Every container "starts" at once; `kill(pod key)` makes its workload exit."""

    def __init__(self):
        self.running: set[str] = set()  # "ns/pod/container"
        self.exits: dict[str, int] = {}

    def start(self, ctx, container):
        handle = f"{ctx.key}/{container.name}"
        self.running.add(handle)
        self.exits.pop(handle, None)  # started again (a restart)
        return handle

    def started(self, h):
        return True

    def exited(self, h):
        return h in self.exits

    def exit_code(self, h):
        return self.exits.get(h)

    def stop(self, h, grace_s=0):
        self.running.discard(h)

    def logs(self, h):
        return []

    def kill(self, pod_key: str, code: int = 1) -> None:
        for h in [h for h in self.running if h.startswith(pod_key + "/")]:
            self.running.discard(h)
            self.exits[h] = code
