"""`minikp up`'s progress, from the supervisor's events as they happen (pure): the phase and
its counts — nodes built, pods ready n/N, proxies synced n/N, the cluster DNS ready, the
image a Docker pod is pulling.

- Progress.feed(event) -> bool: True when what a reader would see changed.
- Progress.line() -> str: one line for a terminal to redraw in place.
- Progress.phase_done() -> str | None: a finished phase, for output that is not a
  terminal (one plain line per phase instead of a redrawn line).
"""

from __future__ import annotations

DNS_NAMESPACE = "kube-system"


class Progress:
    def __init__(self):
        self.nodes = self.pods = self.dns_pods = 0  # how many there will be (UpStarted)
        self.nodes_built = False
        self.ready: set[str] = set()
        self.synced: set[str] = set()
        self.phase = "starting"
        self.pulling = ""  # the image being pulled, if any
        self._done: list[str] = []

    def feed(self, ev: dict) -> bool:
        kind = ev.get("type")
        if kind == "UpStarted":
            self.nodes, self.pods = ev.get("nodes", 0), ev.get("pods", 0)
            self.dns_pods = ev.get("dnsPods", 0)
            self.phase = "nodes"
        elif kind == "NodesBuilt":
            self.nodes_built = True
            self.phase = "pods"
            self._done.append(f"nodes: {self.nodes} built")
        elif kind == "PodReady":
            self.ready.add(ev.get("pod", ""))
            if len(self.ready) == self.pods:
                self._done.append(f"pods: {self.pods}/{self.pods} ready")
                self.phase = "proxies"
        elif kind == "Pulling":  # a Docker pod's image, pulled before the pod starts
            self.pulling = ev.get("image", "")
        elif kind == "Pulled":
            self.pulling = ""
            self._done.append(f"image: {ev.get('message', '')}")
        elif kind == "ProxySynced" and self.phase in ("pods", "proxies"):
            self.synced.add(ev.get("node", ""))
            if len(self.synced) == self.nodes and self.phase == "proxies":
                self._done.append(f"proxies: {self.nodes}/{self.nodes} synced")
                if self.dns_pods:
                    self._done.append(f"DNS: {self.dns_ready()}/{self.dns_pods} ready")
                self.phase = "done"
        else:
            return False
        return True

    def dns_ready(self) -> int:
        return sum(1 for p in self.ready if p.startswith(DNS_NAMESPACE + "/"))

    def line(self) -> str:
        parts = [f"nodes {self.nodes if self.nodes_built else 0}/{self.nodes}",
                 f"pods ready {len(self.ready)}/{self.pods}",
                 f"proxies synced {len(self.synced)}/{self.nodes}"]
        if self.dns_pods:
            parts.append(f"DNS {self.dns_ready()}/{self.dns_pods}")
        if self.pulling:
            parts.append(f"pulling {self.pulling}")
        return f"[{self.phase}] " + ", ".join(parts)

    def phase_done(self) -> str | None:
        return self._done.pop(0) if self._done else None
