"""What a container serves, decided from its image (SPEC §2). Pure functions, no kernel.

- image_name(image): the repository's last path component, without registry, tag, digest
  ("registry.k8s.io/e2e-test-images/agnhost:2.39" → "agnhost").
- is_dns_image(image): coredns / kube-dns images (the DNS module runs dnsmasq for them).
- listeners_for(container) -> [Listener]: what the built-in server serves for a container
  that runtime.choose gave to it (no command, not a DNS image):
    serve_hostname (any registry/tag)  TCP HTTP + UDP name on each containerPort (9376)
    agnhost serve-hostname             the same, on --port (9376)
    nginx / httpd                      HTTP on each declared containerPort (80 if none)
    anything else                      HTTP on each declared TCP port, UDP name on UDP ports
  SCTP ports get no built-in listener.
- client_listeners(): what a client without a command serves: HTTP on port 80.
"""

from __future__ import annotations

from dataclasses import dataclass

from minikp.scenario.model import Container

SERVE_HOSTNAME_PORT = 9376
WEB_SERVER_PORT = 80
HTTP = "http"  # answer any HTTP request with the name
NAME = "name"  # answer each UDP datagram with the name


@dataclass(frozen=True)
class Listener:
    protocol: str  # TCP | UDP
    port: int
    kind: str  # HTTP | NAME


def image_name(image: str) -> str:
    ref = image.strip().split("@", 1)[0]  # drop a digest
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[0].lower()  # drop a tag (a registry port sits before a "/")


def is_dns_image(image: str) -> bool:
    name = image_name(image)
    return "coredns" in name or "kube-dns" in name


def is_serve_hostname(image: str) -> bool:
    return "serve_hostname" in image_name(image)


def _agnhost_serve_hostname_port(container: Container) -> int | None:
    """agnhost runs its subcommand from args: `serve-hostname [--port N]` serves the pod
    name on TCP and UDP, like the serve_hostname image it replaced."""
    args = list(container.args or [])
    if image_name(container.image) != "agnhost" or not args or args[0] != "serve-hostname":
        return None
    port = SERVE_HOSTNAME_PORT
    for i, arg in enumerate(args):
        value = None
        if arg.startswith("--port="):
            value = arg.split("=", 1)[1]
        elif arg == "--port" and i + 1 < len(args):
            value = args[i + 1]
        if value is not None and value.isdigit():
            port = int(value)
    return port


def _dedupe(listeners: list[Listener]) -> list[Listener]:
    return list(dict.fromkeys(listeners))


def listeners_for(container: Container) -> list[Listener]:
    declared = [p for p in container.ports if p.protocol in ("TCP", "UDP")]
    agnhost_port = _agnhost_serve_hostname_port(container)
    if is_serve_hostname(container.image) or agnhost_port is not None:
        default = agnhost_port or SERVE_HOSTNAME_PORT
        ports = [p.container_port for p in declared] or [default]
        return _dedupe([Listener(proto, port, HTTP if proto == "TCP" else NAME)
                        for port in ports for proto in ("TCP", "UDP")])
    if not declared and image_name(container.image).startswith(("nginx", "httpd")):
        return [Listener("TCP", WEB_SERVER_PORT, HTTP)]
    return _dedupe([Listener(p.protocol, p.container_port, HTTP if p.protocol == "TCP" else NAME)
                    for p in declared])


def client_listeners() -> list[Listener]:
    return [Listener("TCP", WEB_SERVER_PORT, HTTP)]
