"""kubectl-shaped tables from Kubernetes-shaped objects (pure): the columns, `<none>` and
`<pending>` markers, PORT(S) and AGE formats that `kubectl get` prints."""

from __future__ import annotations

import datetime as dt


def age(created: str, now: dt.datetime | None = None) -> str:
    """kubectl's HumanDuration: 45s, 3m12s, 10m, 5h3m, 2d4h..."""
    if not created:
        return "<unknown>"
    now = now or dt.datetime.now(dt.timezone.utc)
    start = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    s = max(0, int((now - start).total_seconds()))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    return f"{h // 24}d{h % 24}h" if h < 192 and h % 24 else f"{h // 24}d"


def render(header: list[str], rows: list[list[str]]) -> str:
    """Columns left-aligned and separated by three spaces, as kubectl's tabwriter does."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(r, widths)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def _ns_col(objs, all_ns, header, rows):
    if all_ns:
        header.insert(0, "NAMESPACE")
        for o, r in zip(objs, rows):
            r.insert(0, o["metadata"].get("namespace", ""))
    return header, rows


def nodes_table(nodes: list[dict], wide=False) -> str:
    header = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    if wide:
        header += ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
    rows = []
    for n in nodes:
        info = n["status"]["nodeInfo"]
        row = [n["metadata"]["name"], "Ready", "<none>", age(n["metadata"].get("creationTimestamp")),
               info["kubeProxyVersion"]]
        if wide:
            ip = next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP")
            row += [ip, "<none>", info["osImage"], "-", info["containerRuntimeVersion"]]
        rows.append(row)
    return render(header, rows)


def pod_status_text(p: dict) -> str:
    """As kubectl: Terminating, else a container's waiting or terminated reason
    (CrashLoopBackOff, ErrImagePull, Error), else the phase."""
    if p["metadata"].get("deletionTimestamp"):
        return "Terminating"
    for c in p["status"].get("containerStatuses", []):
        st = c.get("state", {})
        reason = (st.get("waiting") or st.get("terminated") or {}).get("reason")
        if reason:
            return reason
    return p["status"]["phase"]


def pods_table(pods: list[dict], wide=False, all_ns=False) -> str:
    header = ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    if wide:
        header += ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    rows = []
    for p in pods:
        cs = p["status"].get("containerStatuses", [])
        ready = sum(1 for c in cs if c["ready"])
        restarts = sum(c.get("restartCount", 0) for c in cs)
        row = [p["metadata"]["name"], f"{ready}/{len(cs)}", pod_status_text(p), str(restarts),
               age(p["metadata"].get("creationTimestamp"))]
        if wide:
            row += [p["status"].get("podIP") or "<none>", p["spec"].get("nodeName") or "<none>",
                    "<none>", "<none>"]
        rows.append(row)
    return render(*_ns_col(pods, all_ns, header, rows))


def ports_text(svc: dict) -> str:
    out = []
    for p in svc["spec"].get("ports", []):
        s = f"{p['port']}:{p['nodePort']}" if p.get("nodePort") else str(p["port"])
        out.append(f"{s}/{p['protocol']}")
    return ",".join(out) or "<none>"


def external_ip_text(svc: dict) -> str:
    spec = svc["spec"]
    if spec["type"] == "ExternalName":
        return spec.get("externalName", "<none>")
    ips = [i["ip"] for i in svc["status"].get("loadBalancer", {}).get("ingress", [])]
    ips += spec.get("externalIPs", [])
    if ips:
        return ",".join(ips)
    return "<pending>" if spec["type"] == "LoadBalancer" else "<none>"


def services_table(svcs: list[dict], wide=False, all_ns=False) -> str:
    header = ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    if wide:
        header.append("SELECTOR")
    rows = []
    for s in svcs:
        spec = s["spec"]
        row = [s["metadata"]["name"], spec["type"], spec.get("clusterIP") or "<none>",
               external_ip_text(s), ports_text(s), age(s["metadata"].get("creationTimestamp"))]
        if wide:
            sel = spec.get("selector")
            row.append(",".join(f"{k}={v}" for k, v in sel.items()) if sel else "<none>")
        rows.append(row)
    return render(*_ns_col(svcs, all_ns, header, rows))


def endpoints_text(ep: dict, limit=3) -> str:
    items = []
    for subset in ep.get("subsets", []):
        ports = subset.get("ports") or [{"port": None}]
        for p in ports:  # kubectl's formatEndpoints: ports outside, addresses inside
            for a in subset.get("addresses", []):
                items.append(f"{a['ip']}:{p['port']}" if p["port"] else a["ip"])
    if not items:
        return "<none>"
    text = ",".join(items[:limit])
    return text + (f" + {len(items) - limit} more..." if len(items) > limit else "")


def endpoints_table(eps: list[dict], wide=False, all_ns=False) -> str:
    header = ["NAME", "ENDPOINTS", "AGE"]
    rows = [[e["metadata"]["name"], endpoints_text(e), age(e["metadata"].get("creationTimestamp"))]
            for e in eps]
    return render(*_ns_col(eps, all_ns, header, rows))


def endpointslices_table(slices: list[dict], wide=False, all_ns=False) -> str:
    """kubectl's columns: the ports, then up to three endpoint addresses (ready or not)."""
    header = ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    rows = []
    for s in slices:
        ports = ",".join(str(p["port"]) for p in s.get("ports") or [] if p.get("port")) or "<unset>"
        addrs = [a for e in s.get("endpoints") or [] for a in e["addresses"]]
        shown = ",".join(addrs[:3]) + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "")
        rows.append([s["metadata"]["name"], s.get("addressType", "IPv4"), ports, shown or "<unset>",
                     age(s["metadata"].get("creationTimestamp"))])
    return render(*_ns_col(slices, all_ns, header, rows))


def stored_table(objs: list[dict], all_ns=False) -> str:
    """Kinds minikp only stores (ConfigMap, Secret, ...): NAME, DATA where kubectl shows it, AGE."""
    with_data = any(o["kind"] in ("ConfigMap", "Secret") for o in objs)
    header = ["NAME"] + (["DATA"] if with_data else []) + ["AGE"]
    rows = []
    for o in objs:
        data = len(o.get("data") or {}) + len(o.get("binaryData") or o.get("stringData") or {})
        rows.append([o["metadata"]["name"]] + ([str(data)] if with_data else [])
                    + [age(o["metadata"].get("creationTimestamp", ""))])
    return render(*_ns_col(objs, all_ns and any("namespace" in o["metadata"] for o in objs), header, rows))


def ingress_hosts_text(rules: list[dict]) -> str:
    """kubectl's formatHosts: the first three hosts, "*" for none, "+ N more..." after."""
    hosts = [r["host"] for r in rules[:3] if r.get("host")]
    if not hosts:
        return "*"
    return ",".join(hosts) + (f" + {len(rules) - 3} more..." if len(rules) > 3 else "")


def ingress_address_text(ing: dict, wide=False) -> str:
    """The status's load balancer addresses, cut to 16 characters unless wide (as kubectl)."""
    lb = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    text = ",".join(i.get("ip") or i.get("hostname", "") for i in lb)
    return text[:13] + "..." if not wide and len(text) > 16 else text


def ingresses_table(ings: list[dict], wide=False, all_ns=False) -> str:
    header = ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    rows = []
    for o in ings:
        spec = o.get("spec") or {}
        rows.append([o["metadata"]["name"], spec.get("ingressClassName") or "<none>",
                     ingress_hosts_text(spec.get("rules") or []), ingress_address_text(o, wide),
                     "80, 443" if spec.get("tls") else "80",
                     age(o["metadata"].get("creationTimestamp", ""))])
    return render(*_ns_col(ings, all_ns, header, rows))


def _images(template: dict) -> tuple[str, str]:
    cs = template["spec"]["containers"]
    return ",".join(c["name"] for c in cs), ",".join(c["image"] for c in cs)


def selector_text(selector: dict) -> str:
    """A matchLabels selector as kubectl prints it (key=value, comma-separated)."""
    labels = selector.get("matchLabels", selector)
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def deployments_table(deps: list[dict], wide=False, all_ns=False) -> str:
    header = ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    if wide:
        header += ["CONTAINERS", "IMAGES", "SELECTOR"]
    rows = []
    for d in deps:
        s = d["status"]
        row = [d["metadata"]["name"], f"{s.get('readyReplicas', 0)}/{d['spec']['replicas']}",
               str(s.get("updatedReplicas", 0)), str(s.get("availableReplicas", 0)),
               age(d["metadata"].get("creationTimestamp"))]
        if wide:
            row += [*_images(d["spec"]["template"]), selector_text(d["spec"]["selector"])]
        rows.append(row)
    return render(*_ns_col(deps, all_ns, header, rows))


def replicasets_table(sets: list[dict], wide=False, all_ns=False) -> str:
    header = ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    if wide:
        header += ["CONTAINERS", "IMAGES", "SELECTOR"]
    rows = []
    for r in sets:
        s = r["status"]
        row = [r["metadata"]["name"], str(r["spec"]["replicas"]), str(s.get("replicas", 0)),
               str(s.get("readyReplicas", 0)), age(r["metadata"].get("creationTimestamp"))]
        if wide:
            row += [*_images(r["spec"]["template"]), selector_text(r["spec"]["selector"])]
        rows.append(row)
    return render(*_ns_col(sets, all_ns, header, rows))


def namespaces_table(nss: list[dict], wide=False, all_ns=False) -> str:
    """kubectl has no wide columns for namespaces; they are cluster-scoped (no NAMESPACE)."""
    return render(["NAME", "STATUS", "AGE"],
                  [[n["metadata"]["name"], n["status"]["phase"],
                    age(n["metadata"].get("creationTimestamp"))] for n in nss])


# `kubectl get all`: these kinds, in this order, each its own table, names prefixed with
# the resource (kubectl spells the apps group's: deployment.apps/NAME)
ALL_KINDS = (("pods", "pod"), ("services", "service"), ("deployments", "deployment.apps"),
             ("replicasets", "replicaset.apps"))


def all_tables(by_kind: dict[str, list[dict]], wide=False, all_ns=False) -> str:
    """One table per kind that has objects, blank lines between, as `kubectl get all`."""
    tables = []
    for kind, prefix in ALL_KINDS:
        objs = by_kind.get(kind) or []
        if not objs:
            continue
        named = [{**o, "metadata": {**o["metadata"], "name": f"{prefix}/{o['metadata']['name']}"}}
                 for o in objs]
        tables.append(TABLES[kind](named, wide, all_ns))
    return "\n\n".join(tables)


TABLES = {"pods": pods_table, "services": services_table, "endpoints": endpoints_table,
          "endpointslices": endpointslices_table, "deployments": deployments_table,
          "replicasets": replicasets_table, "namespaces": namespaces_table}
