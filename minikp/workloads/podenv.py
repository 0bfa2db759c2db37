"""A container's environment, built as the kubelet builds it. Pure: nothing from the host.

- service_env(services, namespace, links=True): the variables the kubelet derives from the
  Services that exist when the container starts (pkg/kubelet/envvars): for every Service
  with a ClusterIP in the pod's namespace (enableServiceLinks), and always the `kubernetes`
  Service of the default namespace:
    NAME_SERVICE_HOST, NAME_SERVICE_PORT, NAME_SERVICE_PORT_<PORTNAME>   (named ports)
    NAME_PORT=tcp://IP:PORT (first port), NAME_PORT_<PORT>_<PROTO>[_PROTO|_PORT|_ADDR]
  (NAME: upper case, "-" → "_"; the Docker-link style variables.)
- field_value(path, pod, node_ip): a valueFrom.fieldRef.
- expand(text, mapping): Kubernetes' $(VAR) expansion ($$ escapes, unknown names stay).
- container_env(pod, container, services, node_ip, config_maps) → dict: PATH (the runtime's
  default), HOSTNAME, the service variables, envFrom ConfigMaps, then `env` in order (later
  wins; values see earlier ones through $(VAR)).
"""

from __future__ import annotations

import re

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MASTER_SERVICE = ("default", "kubernetes")

_REF = re.compile(r"\$\$|\$\(([^)]*)\)")


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def _one_service_env(name: str, ip: str, ports) -> dict[str, str]:
    prefix = _env_name(name)
    env = {f"{prefix}_SERVICE_HOST": ip, f"{prefix}_SERVICE_PORT": str(ports[0].port)}
    for p in ports:
        if p.name:
            env[f"{prefix}_SERVICE_PORT_{_env_name(p.name)}"] = str(p.port)
    for i, p in enumerate(ports):
        proto = p.protocol.upper()
        url = f"{proto.lower()}://{ip}:{p.port}"
        if i == 0:
            env[f"{prefix}_PORT"] = url
        base = f"{prefix}_PORT_{p.port}_{proto}"
        env.update({base: url, f"{base}_PROTO": proto.lower(), f"{base}_PORT": str(p.port),
                    f"{base}_ADDR": ip})
    return env


def service_env(services, namespace: str, links: bool = True) -> dict[str, str]:
    """`services`: ServicePlans. Headless and ExternalName Services have no variables."""
    chosen = {}
    for sp in services:
        s = sp.service
        key = (s.namespace, s.name)
        if key == MASTER_SERVICE or (links and s.namespace == namespace):
            chosen[key] = sp
    env = {}
    # the pod's own namespace wins over the master service of the same name
    for key in sorted(chosen, key=lambda k: (k[0] == namespace, k)):
        sp = chosen[key]
        if sp.cluster_ip in ("", "None") or not sp.service.ports:
            continue
        env.update(_one_service_env(sp.service.name, sp.cluster_ip, sp.service.ports))
    return dict(sorted(env.items()))


def field_value(path: str, pod, node_ip: str) -> str:
    """fieldRef values (the loader accepted only these paths)."""
    simple = {"metadata.name": pod.name, "metadata.namespace": pod.namespace,
              "metadata.uid": f"{pod.namespace}-{pod.name}", "spec.nodeName": pod.node,
              "spec.serviceAccountName": "default", "status.hostIP": node_ip,
              "status.hostIPs": node_ip, "status.podIP": pod.ip, "status.podIPs": pod.ip}
    if path in simple:
        return simple[path]
    for prefix, source in (("metadata.labels['", pod.labels),
                           ("metadata.annotations['", pod.template.annotations)):
        if path.startswith(prefix) and path.endswith("']"):
            return source.get(path[len(prefix):-2], "")
    raise ValueError(f"unsupported fieldPath {path!r}")


def expand(text: str, mapping: dict[str, str]) -> str:
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        return mapping.get(m.group(1), m.group(0))
    return _REF.sub(sub, text)


def container_env(pod, container, services, node_ip: str = "",
                  config_maps: dict | None = None) -> dict[str, str]:
    """`config_maps`: (namespace, name) → data. A missing optional reference is skipped
    (the loader rejected missing required ones)."""
    config_maps = config_maps or {}
    base = {"PATH": DEFAULT_PATH, "HOSTNAME": pod.hostname}
    services_env = service_env(services, pod.namespace, pod.template.enable_service_links)
    env: dict[str, str] = {}
    for ef in container.env_from:
        for k, v in config_maps.get((pod.namespace, ef.config_map), {}).items():
            env[ef.prefix + k] = v
    for e in container.env:
        if e.field_path:
            env[e.name] = field_value(e.field_path, pod, node_ip)
        elif e.config_map:
            data = config_maps.get((pod.namespace, e.config_map), {})
            if e.config_map_key in data:
                env[e.name] = data[e.config_map_key]
        else:
            env[e.name] = expand(e.value, {**services_env, **env})
    return {**base, **services_env, **env}


def command_argv(container, env: dict[str, str]) -> list[str]:
    """command + args with $(VAR) expanded from the container's environment, as the
    kubelet does."""
    return [expand(a, env) for a in list(container.command or []) + list(container.args or [])]
