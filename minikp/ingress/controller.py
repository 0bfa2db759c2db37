"""The ingress controller: the Ingresses, IngressClasses and TLS Secrets of the scenario and
the Services' endpoints → one nginx.conf (render.py) → every controller pod's nginx
(nginx.py), reloaded when it changes. The supervisor calls sync() after every endpoints
update or applied change; a new controller pod starts with render_stored() of the moment."""

from __future__ import annotations

from minikp.ingress import install
from minikp.ingress.nginx import Nginx
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
    """What the controller remembers between syncs: the Ingresses it took in (for its Sync
    events)."""

    def __init__(self):
        self.seen: dict[str, Ingress] = {}  # "namespace/name" → the Ingress last synced

    def sync(self, servers: dict[str, Nginx], stored, services, endpoints, emit, reason: str) -> None:
        """Every controller pod's nginx (`servers`, by pod key) to the current Ingresses and
        endpoints, with ingress-nginx's events: Sync for each new or changed Ingress, RELOAD
        for each pod whose nginx reloaded. `emit(type, message, **fields)`: the event log's."""
        if not servers:
            return
        now = {f"{i.namespace}/{i.name}": i for i in ours(_models(stored, Ingress),
                                                           _models(stored, IngressClass))}
        for key, ing in now.items():
            if self.seen.get(key) != ing:
                emit("Sync", "Scheduled for sync", ingress=key)
        self.seen = now
        rendered = render_stored(stored, services, endpoints)
        for key, nginx in servers.items():
            if nginx.configure(rendered):
                emit("RELOAD", f"nginx of pod {key}: backend reloaded ({reason})", pod=key)
