"""The ingress controller: the Ingresses, IngressClasses and TLS Secrets of the scenario and
the Services' endpoints → one nginx.conf (render.py) → every controller pod's nginx
(nginx.py), reloaded when it changes. The supervisor calls start() for a controller pod's
container, sync() after every endpoints update or applied change, forget() when the pod goes."""

from __future__ import annotations

import os
import shutil

from minikp.ingress import install
from minikp.ingress.nginx import Nginx, fake_certificate
from minikp.ingress.render import Rendered, ours, render
from minikp.scenario.ingress import Ingress, IngressClass, TLSSecret


def _models(stored, cls) -> list:
    return [o.model for o in stored if isinstance(o.model, cls)]


def render_stored(stored, services, endpoints) -> Rendered:
    """nginx.conf for the scenario's stored objects (its Ingresses, classes, TLS Secrets)."""
    return render(_models(stored, Ingress), _models(stored, IngressClass),
                  _models(stored, TLSSecret), services, endpoints)


def load_balancer_ip(services) -> str:
    """The controller Service's LoadBalancer address: what an Ingress's status shows."""
    return next((sp.load_balancer_ip for sp in services
                 if (sp.service.namespace, sp.service.name) == (install.NAMESPACE, install.NAME)), "")


def ingress_status(o, stored, services) -> dict | None:
    """status.loadBalancer of a stored Ingress this controller serves, else None."""
    if not isinstance(o.model, Ingress) or not ours([o.model], _models(stored, IngressClass)):
        return None
    ip = load_balancer_ip(services)
    return {"loadBalancer": {"ingress": [{"ip": ip}] if ip else []}}


class IngressController:
    def __init__(self, state_dir: str):
        self.dir = os.path.join(state_dir, "ingress")
        self.pods: dict[str, Nginx] = {}  # pod key → its nginx
        self.rendered = Rendered("")
        self.seen: dict[str, object] = {}  # "namespace/name" → the Ingress last synced

    def start(self, key: str, sb, log_path: str, stored, services, endpoints):
        """A controller pod's nginx, configured from what exists now; its Popen."""
        os.makedirs(self.dir, exist_ok=True)
        fake = os.path.join(self.dir, "default-fake-certificate.pem")
        fake_certificate(fake)
        self.rendered = render_stored(stored, services, endpoints)
        nginx = Nginx(os.path.join(self.dir, key.replace("/", "_")), fake)
        self.pods[key] = nginx
        return nginx.start(sb, self.rendered, log_path)

    def sync(self, stored, services, endpoints, emit, reason: str) -> None:
        """Every controller pod's nginx to the current Ingresses and endpoints, with
        ingress-nginx's events: Sync for each new or changed Ingress, RELOAD for each pod
        whose nginx reloaded. `emit(type, message, **fields)`: the event log's."""
        if not self.pods:
            return
        now = {f"{i.namespace}/{i.name}": i for i in ours(_models(stored, Ingress),
                                                           _models(stored, IngressClass))}
        for key, ing in now.items():
            if self.seen.get(key) != ing:
                emit("Sync", "Scheduled for sync", ingress=key)
        self.seen = now
        self.rendered = render_stored(stored, services, endpoints)
        for key, nginx in self.pods.items():
            if nginx.configure(self.rendered):
                emit("RELOAD", f"nginx of pod {key}: backend reloaded ({reason})", pod=key)

    def forget(self, key: str) -> None:
        nginx = self.pods.pop(key, None)
        if nginx is not None:
            shutil.rmtree(nginx.conf_dir, ignore_errors=True)
