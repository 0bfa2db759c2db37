"""`kubectl describe` of pods, services, deployments, nodes and ingresses, from Kubernetes-shaped objects
and the cluster's event log (pure): the same labels, order and indentation as kubectl, the
values aligned as its tabwriter aligns them, and an Events table of the object's recent
events (Type, Reason, Age, From, Message).

- describe(kind, obj, st, events, now) -> text; kind: pods, services, deployments, nodes,
  Ingress.
- tabwrite(text): kubectl's alignment (tabs end cells; a run of lines that have a cell in a
  column shares that column's width, plus two spaces).
- events_for(kind, obj, events): which log entries are about the object.
"""

from __future__ import annotations

import datetime as dt

from minikp.tables import age, endpoints_text, selector_text

PADDING = 2
RECENT = 20  # events shown at most: the latest

# the component kubectl's From column would name, and the reason where kubectl's differs
FROM = {"PodCreated": "default-scheduler", "PodReady": "kubelet", "PodNotReady": "kubelet",
        "PodFailed": "kubelet", "PodDeleted": "kubelet", "ProxySynced": "kube-proxy",
        "RulesFlushed": "kube-proxy", "ScalingReplicaSet": "deployment-controller",
        "EndpointsChanged": "endpointslice-controller", "Sync": "nginx-ingress-controller",
        "RELOAD": "nginx-ingress-controller", "Pulling": "kubelet", "Pulled": "kubelet",
        "Failed": "kubelet", "BackOff": "kubelet"}
REASON = {"PodCreated": "Scheduled"}
WARNINGS = {"PodFailed", "PodNotReady", "RulesFlushed", "Failed", "BackOff"}


def tabwrite(text: str) -> str:
    """Go's text/tabwriter as kubectl sets it up (minwidth 0, padding 2, spaces)."""
    lines = [line.split("\t") for line in text.split("\n")]
    widths: list[dict[int, int]] = [{} for _ in lines]

    def block(start: int, end: int, col: int) -> None:
        i = start
        while i < end:
            if len(lines[i]) - 1 <= col:
                i += 1
                continue
            j = i
            while j < end and len(lines[j]) - 1 > col:
                j += 1
            w = max(len(lines[k][col]) for k in range(i, j)) + PADDING
            for k in range(i, j):
                widths[k][col] = w
            block(i, j, col + 1)
            i = j

    block(0, len(lines), 0)
    out = []
    for cells, w in zip(lines, widths):
        out.append("".join(c.ljust(w[n]) if n in w else c for n, c in enumerate(cells)).rstrip())
    return "\n".join(out)


def timestamp(iso: str) -> str:
    """kubectl's time format (RFC 1123 with a numeric zone): Wed, 02 Dec 2026 18:30:27 +0000."""
    if not iso:
        return "<unknown>"
    t = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return t.strftime("%a, %d %b %Y %H:%M:%S %z")


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat()


def _map(label: str, items: dict, sep: str = "=", level: int = 0) -> list[str]:
    """Labels/Annotations: the first on the label's line, the rest below it, aligned."""
    pad = "  " * level
    if not items:
        return [f"{pad}{label}:\t<none>"]
    pairs = [f"{k}{sep}{v}" for k, v in sorted(items.items())]
    return [f"{pad}{label}:\t{pairs[0]}"] + [f"{pad}\t{p}" for p in pairs[1:]]


# ---- events -------------------------------------------------------------------------------

def events_for(kind: str, obj: dict, events: list[dict]) -> list[dict]:
    meta = obj["metadata"]
    key = f"{meta.get('namespace', '')}/{meta['name']}"
    if kind == "pods":
        return [e for e in events if e.get("pod") == key]
    if kind == "nodes":
        return [e for e in events if e.get("node") == meta["name"]
                or (isinstance(e.get("nodes"), list) and meta["name"] in e["nodes"])]
    if kind == "deployments":
        return [e for e in events if e.get("deployment") == key]
    if kind == "services":
        return [e for e in events if key in e.get("services", ())]
    if kind == "Ingress":
        return [e for e in events if e.get("ingress") == key]
    return []


def events_section(events: list[dict], now: dt.datetime | None = None) -> list[str]:
    """kubectl's Events table; identical events are one row: AGE (xN over FIRST)."""
    if not events:
        return ["Events:\t<none>"]
    rows: dict[tuple, list] = {}
    for e in events:
        kind = e["type"]
        k = ("Warning" if kind in WARNINGS else "Normal", REASON.get(kind, kind),
             FROM.get(kind, "minikp"), e["message"])
        if k in rows:
            rows[k][1], rows[k][2] = e["time"], rows[k][2] + 1
        else:
            rows[k] = [e["time"], e["time"], 1]
    latest = sorted(rows.items(), key=lambda kv: kv[1][1])[-RECENT:]
    out = ["Events:", "  Type\tReason\tAge\tFrom\tMessage", "  ----\t------\t----\t----\t-------"]
    for (typ, reason, source, message), (first, last, count) in latest:
        when = age(_iso(last), now)
        if count > 1:
            when += f" (x{count} over {age(_iso(first), now)})"
        out.append(f"  {typ}\t{reason}\t{when}\t{source}\t{message}")
    return out


# ---- kinds --------------------------------------------------------------------------------

def _ports(container: dict) -> tuple[str, str, str]:
    """('Port' or 'Ports', the ports, the host ports) as kubectl words them."""
    ports = container.get("ports") or []
    if not ports:
        return "Port", "<none>", "<none>"
    text = ", ".join(f"{p['containerPort']}/{p['protocol']}" for p in ports)
    host = ", ".join(f"0/{p['protocol']}" for p in ports)
    return ("Ports" if len(ports) > 1 else "Port"), text, host


def _command(c: dict, level: int) -> list[str]:
    pad = "  " * level
    out = []
    for field, label in (("command", "Command"), ("args", "Args")):
        if c.get(field):
            out.append(f"{pad}{label}:")
            out += [f"{pad}  {part}" for part in c[field]]
    return out


def describe_pod(p: dict, events: list[dict], now=None) -> list[str]:
    meta, spec, status = p["metadata"], p["spec"], p["status"]
    owner = next((o for o in meta.get("ownerReferences", []) if o.get("controller")), None)
    out = [f"Name:\t{meta['name']}", f"Namespace:\t{meta['namespace']}", "Priority:\t0",
           "Service Account:\tdefault", f"Node:\t{spec['nodeName']}/{status.get('hostIP', '')}",
           f"Start Time:\t{timestamp(meta.get('creationTimestamp', ''))}"]
    out += _map("Labels", meta.get("labels", {}))
    out += _map("Annotations", meta.get("annotations", {}), ": ")
    out += [f"Status:\t{'Terminating' if meta.get('deletionTimestamp') else status['phase']}",
            f"IP:\t{status.get('podIP', '')}", "IPs:"]
    out += [f"  IP:\t{i['ip']}" for i in status.get("podIPs", [])]
    if owner:
        out.append(f"Controlled By:\t{owner['kind']}/{owner['name']}")
    out.append("Containers:")
    states = {c["name"]: c for c in status.get("containerStatuses", [])}
    for c in spec["containers"]:
        cs = states.get(c["name"], {})
        word, ports, host = _ports(c)
        out += [f"  {c['name']}:", f"    Image:\t{c['image']}", f"    {word}:\t{ports}",
                f"    Host {word}:\t{host}"]
        out += _command(c, 2)
        if cs.get("started"):
            out += ["    State:\tRunning",
                    f"      Started:\t{timestamp(meta.get('creationTimestamp', ''))}"]
        else:
            out += ["    State:\tTerminated", "      Reason:\tError"]
        out += [f"    Ready:\t{cs.get('ready', False)}",
                f"    Restart Count:\t{cs.get('restartCount', 0)}",
                "    Environment:\t<none>", "    Mounts:\t<none>"]
    out += ["Conditions:", "  Type\tStatus"]
    out += [f"  {c['type']}\t{c['status']}" for c in status.get("conditions", [])]
    out += ["Volumes:\t<none>", "QoS Class:\tBestEffort"]
    sel = spec.get("nodeSelector") or {}
    out += [f"Node-Selectors:\t{selector_text(sel) if sel else '<none>'}", "Tolerations:\t<none>"]
    return out + events_section(events, now)


def _port_name(p: dict) -> str:
    return p.get("name") or "<unset>"


def describe_service(s: dict, endpoints: dict | None, events: list[dict], now=None) -> list[str]:
    meta, spec = s["metadata"], s["spec"]
    out = [f"Name:\t{meta['name']}", f"Namespace:\t{meta['namespace']}"]
    out += _map("Labels", meta.get("labels", {}))
    out += _map("Annotations", meta.get("annotations", {}), ": ")
    out += [f"Selector:\t{selector_text(spec['selector']) if spec.get('selector') else '<none>'}",
            f"Type:\t{spec['type']}"]
    if spec["type"] == "ExternalName":
        out.append(f"External Name:\t{spec.get('externalName', '')}")
    else:
        out += ["IP Family Policy:\tSingleStack", "IP Families:\tIPv4",
                f"IP:\t{spec.get('clusterIP', '')}",
                f"IPs:\t{','.join(spec.get('clusterIPs', [])) or spec.get('clusterIP', '')}"]
    if spec.get("externalIPs"):
        out.append(f"External IPs:\t{','.join(spec['externalIPs'])}")
    ingress = s.get("status", {}).get("loadBalancer", {}).get("ingress", [])
    if ingress:
        out.append("LoadBalancer Ingress:\t" + ", ".join(
            f"{i['ip']} ({i['ipMode']})" if i.get("ipMode") else i["ip"] for i in ingress))
    for p in spec.get("ports", []):
        target = p.get("targetPort", p["port"])
        out += [f"Port:\t{_port_name(p)}  {p['port']}/{p['protocol']}",
                f"TargetPort:\t{target}/{p['protocol']}"]
        if p.get("nodePort"):
            out.append(f"NodePort:\t{_port_name(p)}  {p['nodePort']}/{p['protocol']}")
        out.append(f"Endpoints:\t{_port_endpoints(endpoints, p)}")
    out.append(f"Session Affinity:\t{spec.get('sessionAffinity', 'None')}")
    if spec.get("externalTrafficPolicy"):
        out.append(f"External Traffic Policy:\t{spec['externalTrafficPolicy']}")
    if spec.get("internalTrafficPolicy"):
        out.append(f"Internal Traffic Policy:\t{spec['internalTrafficPolicy']}")
    if spec.get("healthCheckNodePort"):
        out.append(f"HealthCheck NodePort:\t{spec['healthCheckNodePort']}")
    if spec.get("loadBalancerSourceRanges"):
        out.append(f"LoadBalancer Source Ranges:\t{','.join(spec['loadBalancerSourceRanges'])}")
    return out + events_section(events, now)


def _port_endpoints(ep: dict | None, port: dict) -> str:
    """The ready addresses serving this service port (the Endpoints subsets' port of the
    same name), as kubectl's describe lists them."""
    if not ep:  # no EndpointSlice at all; one without a ready address prints nothing
        return "<none>"
    name = port.get("name", "")
    subsets = []
    for sub in ep.get("subsets", []):
        ports = [q for q in sub.get("ports", []) if q.get("name", "") == name
                 and q.get("protocol") == port["protocol"]]
        if ports:
            subsets.append({"addresses": sub.get("addresses", []), "ports": ports})
    text = endpoints_text({"subsets": subsets})
    return "" if text == "<none>" else text


def _ingress_backend(b: dict, namespace: str, st: dict) -> str:
    """kubectl's describeBackendV1: SERVICE:PORT (the endpoints behind that Service port)."""
    svc = b.get("service") or {}
    name, port = svc.get("name", ""), svc.get("port") or {}
    shown = port.get("name") or port.get("number", "")
    spec = next((x for x in st.get("services", []) if x["metadata"]["name"] == name
                 and x["metadata"]["namespace"] == namespace), None)
    ep = next((e for e in st.get("endpoints", []) if e["metadata"]["name"] == name
               and e["metadata"]["namespace"] == namespace), None)
    sp = next((p for p in (spec or {}).get("spec", {}).get("ports", [])
               if p.get("name") == port.get("name") or p["port"] == port.get("number")), None)
    if spec is None or sp is None:
        return f'{name}:{shown} (<error: endpoints "{name}" not found>)'
    return f"{name}:{shown} ({_port_endpoints(ep, sp) or '<none>'})"


def describe_ingress(i: dict, st: dict, events: list[dict], now=None) -> list[str]:
    meta, spec = i["metadata"], i.get("spec") or {}
    ns = meta.get("namespace", "default")
    out = [f"Name:\t{meta['name']}"] + _map("Labels", meta.get("labels", {}))
    lb = ((i.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    out += [f"Namespace:\t{ns}", f"Address:\t{','.join(x.get('ip', '') for x in lb)}",
            f"Ingress Class:\t{spec.get('ingressClassName') or '<none>'}"]
    default = (_ingress_backend(spec["defaultBackend"], ns, st) if spec.get("defaultBackend")
               else "<default>")
    out.append(f"Default backend:\t{default}")
    if spec.get("tls"):
        out.append("TLS:")
        out += [f"  {t['secretName']} terminates {','.join(t.get('hosts', []))}" if t.get("secretName")
                else f"  SNI routes {','.join(t.get('hosts', []))}" for t in spec["tls"]]
    out += ["Rules:", "  Host\tPath\tBackends", "  ----\t----\t--------"]
    http_rules = [r for r in spec.get("rules", []) if r.get("http")]
    for r in http_rules:
        out.append(f"  {r.get('host') or '*'}\t")
        out += [f"    \t{p.get('path', '')} \t{_ingress_backend(p.get('backend', {}), ns, st)}"
                for p in r["http"].get("paths", [])]
    if not http_rules:
        out.append(f"  *\t*\t{default}")
    out += _map("Annotations", meta.get("annotations", {}), ": ")
    return out + events_section(events, now)


def _template(t: dict) -> list[str]:
    out = ["Pod Template:"] + _map("Labels", t["metadata"].get("labels", {}), level=1)
    out.append("  Containers:")
    for c in t["spec"]["containers"]:
        word, ports, host = _ports(c)
        out += [f"   {c['name']}:", f"    Image:\t{c['image']}", f"    {word}:\t{ports}",
                f"    Host {word}:\t{host}"]
        out += _command(c, 2)
        out += ["    Environment:\t<none>", "    Mounts:\t<none>"]
    return out + ["  Volumes:\t<none>", "  Node-Selectors:\t<none>", "  Tolerations:\t<none>"]


def describe_deployment(d: dict, replicasets: list[dict], events: list[dict], now=None) -> list[str]:
    meta, spec, st = d["metadata"], d["spec"], d["status"]
    out = [f"Name:\t{meta['name']}", f"Namespace:\t{meta['namespace']}",
           f"CreationTimestamp:\t{timestamp(meta.get('creationTimestamp', ''))}"]
    out += _map("Labels", meta.get("labels", {}))
    out += _map("Annotations", meta.get("annotations", {}), ": ")
    strategy = spec.get("strategy", {})
    out += [f"Selector:\t{selector_text(spec['selector'])}",
            f"Replicas:\t{spec['replicas']} desired | {st.get('updatedReplicas', 0)} updated | "
            f"{st.get('replicas', 0)} total | {st.get('availableReplicas', 0)} available | "
            f"{st.get('unavailableReplicas', 0)} unavailable",
            f"StrategyType:\t{strategy.get('type', 'RollingUpdate')}", "MinReadySeconds:\t0"]
    if "rollingUpdate" in strategy:
        ru = strategy["rollingUpdate"]
        out.append(f"RollingUpdateStrategy:\t{ru['maxUnavailable']} max unavailable, "
                   f"{ru['maxSurge']} max surge")
    out += _template(spec["template"])
    out += ["Conditions:", "  Type\tStatus\tReason", "  ----\t------\t------"]
    out += [f"  {c['type']}\t{c['status']}\t{c.get('reason', '')}" for c in st.get("conditions", [])]
    mine = [r for r in replicasets if r["metadata"]["namespace"] == meta["namespace"] and any(
        o.get("name") == meta["name"] and o.get("kind") == "Deployment"
        for o in r["metadata"].get("ownerReferences", []))]

    def rs_text(rs):
        return (", ".join(f"{r['metadata']['name']} ({r['status'].get('replicas', 0)}/"
                          f"{r['spec']['replicas']} replicas created)" for r in rs) or "<none>")
    new, old = mine[:1], mine[1:]  # the current template's first (minikp.controller.objects)
    out += [f"OldReplicaSets:\t{rs_text(old)}", f"NewReplicaSet:\t{rs_text(new)}"]
    return out + events_section(events, now)


def describe_node(n: dict, pods: list[dict], events: list[dict], now=None) -> list[str]:
    meta, spec, status = n["metadata"], n["spec"], n["status"]
    info = status["nodeInfo"]
    out = [f"Name:\t{meta['name']}", "Roles:\t<none>"]
    out += _map("Labels", meta.get("labels", {}))
    out += _map("Annotations", meta.get("annotations", {}), ": ")
    out += [f"CreationTimestamp:\t{timestamp(meta.get('creationTimestamp', ''))}",
            "Taints:\t<none>", "Unschedulable:\tfalse", "Conditions:",
            "  Type\tStatus\tReason", "  ----\t------\t------"]
    out += [f"  {c['type']}\t{c['status']}\t{c.get('reason', '')}" for c in status["conditions"]]
    out.append("Addresses:")
    out += [f"  {a['type']}:\t{a['address']}" for a in status["addresses"]]
    out += ["System Info:", f"  OS Image:\t{info.get('osImage', '')}",
            f"  Container Runtime Version:\t{info.get('containerRuntimeVersion', '')}",
            f"  Kubelet Version:\t{info.get('kubeletVersion', '')}",
            f"  Kube-Proxy Version:\t{info.get('kubeProxyVersion', '')}",
            f"PodCIDR:\t{spec.get('podCIDR', '')}", f"PodCIDRs:\t{','.join(spec.get('podCIDRs', []))}"]
    mine = [p for p in pods if p["spec"].get("nodeName") == meta["name"]
            and p["status"]["phase"] not in ("Succeeded", "Failed")]
    out += [f"Non-terminated Pods:\t({len(mine)} in total)",
            "  Namespace\tName\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge",
            "  ---------\t----\t------------\t----------\t---------------\t-------------\t---"]
    out += [f"  {p['metadata']['namespace']}\t{p['metadata']['name']}\t0 (0%)\t0 (0%)\t0 (0%)\t0 (0%)\t"
            f"{age(p['metadata'].get('creationTimestamp', ''), now)}" for p in mine]
    return out + events_section(events, now)


def describe(kind: str, obj: dict, st: dict, events: list[dict], now=None) -> str:
    """The object described as kubectl does, with its events from `events` (the log)."""
    mine = events_for(kind, obj, events)
    if kind == "pods":
        lines = describe_pod(obj, mine, now)
    elif kind == "services":
        m = obj["metadata"]
        ep = next((e for e in st.get("endpoints", []) if e["metadata"]["name"] == m["name"]
                   and e["metadata"]["namespace"] == m["namespace"]), None)
        lines = describe_service(obj, ep, mine, now)
    elif kind == "deployments":
        lines = describe_deployment(obj, st.get("replicasets", []), mine, now)
    elif kind == "nodes":
        lines = describe_node(obj, st.get("pods", []), mine, now)
    elif kind == "Ingress":
        lines = describe_ingress(obj, st, mine, now)
    else:
        raise ValueError(kind)
    return tabwrite("\n".join(lines))
