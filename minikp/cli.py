"""The `minikp` command: verbs → minikp.client calls; nothing here beyond arguments and printing.

Exit codes: 0 success, 1 a failed operation or check, 2 bad input (file, flag, object).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time

from minikp import client, clusterlock, names, tables
from minikp.errors import InputError, OperationError

KERNEL_VERBS = {"up", "down", "exec", "curl", "rules", "diff-rules", "trace", "test", "apply",
                "delete", "scale", "events", "describe", "tui"}


class Parser(argparse.ArgumentParser):
    def error(self, message):  # bad flags are bad input: exit 2, one clear line
        self.print_usage(sys.stderr)
        print(f"minikp: error: {message}", file=sys.stderr)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="minikp", description="Kubernetes Service networking on network namespaces.")
    sub = ap.add_subparsers(dest="verb", required=True, parser_class=Parser)

    def verb(name, help_text):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--name", default="minikp", help="cluster name (default: minikp)")
        return p

    p = verb("up", "build a cluster from scenario files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--proxy-mode")
    p.add_argument("--kubernetes-version", help="kube-proxy's rule layout of this release (default 1.33)")
    p.add_argument("--nodes", type=int)
    p.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C tears down")
    p = verb("down", "remove a cluster: namespaces, links, processes, state")
    p.add_argument("--all", action="store_true", help="every minikp cluster on this machine")
    p = verb("get", "kubectl-shaped tables: nodes, pods, svc, endpoints, deploy, rs, ns, all, ...")
    p.add_argument("kind")
    p.add_argument("object_name", nargs="?", metavar="NAME")
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-o", "--output", choices=["wide", "json", "yaml", "name"])
    p.add_argument("-w", "--watch", action="store_true", help="then a row for each change")
    p = verb("describe", "kubectl describe of a pod, svc, deploy, node or ingress, with its recent events")
    p.add_argument("kind", metavar="KIND")
    p.add_argument("object_name", metavar="NAME")
    p.add_argument("-n", "--namespace", default="default")
    p = verb("exec", "run a command in a pod, node/NAME or client/NAME")
    p.add_argument("target", metavar="TARGET")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD")
    p = verb("curl", "send requests and show which backends answered "
                     "(http://, https://, tcp://HOST:PORT, udp://HOST:PORT, dns://NAME)")
    p.add_argument("url", metavar="URL")
    p.add_argument("--from", dest="source", metavar="TARGET")
    p.add_argument("-c", "--count", type=int, default=10)
    p.add_argument("--timeout", type=float, default=2.0)
    p = verb("rules", "what a node's proxy programmed, as the kernel's own tools print it")
    p.add_argument("node", metavar="NODE")
    p.add_argument("--format", help="the proxy mode's own tool (iptables mode: iptables)")
    p.add_argument("--table", help="one table only (iptables mode: filter, nat, mangle, raw)")
    p.add_argument("-w", "--watch", action="store_true",
                   help="then, for each sync of the node's proxy, what it changed")
    p = verb("diff-rules", "a real node's saved iptables-save (nft list ruleset, ipvsadm -Ln) "
                           "against what minikp's proxy wrote in that node")
    p.add_argument("node", metavar="NODE")
    p.add_argument("file", metavar="FILE")
    p = verb("trace", "the chains one connection crosses and the endpoint it reached")
    p.add_argument("--from", dest="source", required=True, metavar="TARGET")
    p.add_argument("--to", dest="dest", required=True, metavar="IP:PORT")
    p.add_argument("--proto", default="tcp", choices=["tcp", "udp"])
    p = verb("apply", "change a running cluster: add or change objects, like kubectl apply")
    p.add_argument("files", nargs="+", metavar="FILE")
    p = verb("delete", "delete a pod, deployment, replicaset, service or ingress")
    p.add_argument("kind", choices=["pod", "pods", "po", "deployment", "deploy", "replicaset",
                                    "rs", "svc", "service", "ingress", "ing"])
    p.add_argument("object_name", metavar="NAME")
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("--grace-period", type=int, default=-1, metavar="SECONDS",
                   help="seconds a pod gets to stop (preStop, SIGTERM) before SIGKILL; 0: now; "
                   "-1 (default): its terminationGracePeriodSeconds")
    p.add_argument("--wait", default="true", choices=["true", "false"],
                   help="wait until a deleted pod is gone (true, as kubectl), or return while "
                   "it is Terminating")
    p = verb("scale", "set the replicas of a deployment or replicaset")
    p.add_argument("kind", choices=["deployment", "deploy", "replicaset", "rs"])
    p.add_argument("object_name", metavar="NAME")
    p.add_argument("--replicas", type=int, required=True)
    p.add_argument("-n", "--namespace", default="default")
    p = verb("logs", "a pod container's output, like kubectl logs (every runtime)")
    p.add_argument("pod", metavar="[NS/]POD|pod/KEY=VALUE|deployment/NAME")
    p.add_argument("-c", "--container", metavar="CONTAINER")
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("-f", "--follow", action="store_true")
    p = verb("events", "what the supervisor did: pods, endpoints, proxy syncs")
    p.add_argument("-w", "--watch", action="store_true")
    p = verb("test", "build a scenario, run its checks and steps, tear down")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--proxy-mode")
    p.add_argument("--kubernetes-version", help="kube-proxy's rule layout of this release (default 1.33)")
    verb("tui", "a terminal dashboard: watch and change the cluster (Textual)")
    verb("doctor", "what this machine can run")
    return ap


# ---- verbs ------------------------------------------------------------------------------

def warn(warnings: list[str]) -> None:
    for w in warnings:
        print(f"minikp: warning: {w}", file=sys.stderr)


def cmd_up(a) -> int:
    """The cluster lock comes first, so that a `down` run meanwhile finds this `up` and
    stops it; then the scenario (bad input: exit 2), then the supervisor."""
    t0 = time.monotonic()
    stop = clusterlock.StopOnSignal().install()
    lock = None
    try:
        lock = client.take_lock_for_up(a.name)
        scenario = client.load_checked(a.files, a.proxy_mode, a.nodes, a.kubernetes_version)  # exit 2 early
        warn(scenario.warnings)
        show = progress_printer(sys.stdout)
        if a.foreground:
            def report(r):
                show(None)
                print(summary(a.name, t0) if r["ok"] else f"minikp: {r['error']}",
                      file=sys.stdout if r["ok"] else sys.stderr, flush=True)
            return client.run_cluster(a.name, a.files, a.proxy_mode, a.nodes, report, lock,
                                      on_event=show, scenario=scenario)
        try:
            client.start_cluster(a.name, a.files, a.proxy_mode, a.nodes, lock=lock, stop=stop,
                                 on_event=show, scenario=scenario)
        finally:
            show(None)
    except clusterlock.Stopped as e:
        raise OperationError(f'up of cluster "{a.name}" stopped ({e}, e.g. by `minikp down`) '
                             "before it came up; nothing of it was left") from None
    finally:  # the supervisor (or start_cluster) removed whatever was made
        if lock is not None:
            client.release_lock(a.name, lock)
    try:
        text = summary(a.name, t0)
    except OperationError:
        if not stop.requested.is_set():
            raise
    if stop.requested.is_set():  # e.g. a `down` right after the report: say so, not "up"
        raise OperationError(f'cluster "{a.name}" came up and was stopped at once (a signal, '
                             "e.g. `minikp down`)")
    print(text)
    return 0


def progress_printer(out):
    """`up`'s progress: on a terminal one line redrawn as events arrive; otherwise a plain
    line per finished phase. Called with None: done (the terminal line is cleared)."""
    from minikp.progress import Progress

    p, tty = Progress(), out.isatty()

    def show(ev):
        if ev is None:
            if tty:
                out.write("\r\x1b[K")
                out.flush()
            return
        if not p.feed(ev):
            return
        if tty:
            out.write("\r\x1b[K" + p.line())
        while (done := p.phase_done()) is not None:
            if not tty:
                out.write(done + "\n")
        out.flush()
    return show


def summary(name, t0) -> str:
    st = client.read_state(name)
    lb = sum(1 for s in st["services"] if s["spec"]["type"] == "LoadBalancer")
    return (f'cluster "{name}" is up in {time.monotonic() - t0:.2f}s: {len(st["nodes"])} nodes, '
            f'{len(st["pods"])} pods, {len(st["services"])} services ({lb} LoadBalancer), '
            f'{len(st["clients"])} clients; proxy {st["proxy"]}'
            + "".join(f"\n{line}" for line in waiting_pods(st)))


def waiting_pods(st) -> list[str]:
    """Pods `up` did not wait for, and why: a container waiting (ImagePullBackOff with the
    image and the engine's reason, CrashLoopBackOff)."""
    return [f'pod {p["metadata"]["namespace"]}/{p["metadata"]["name"]} not ready: '
            f'{w["reason"]}' + (f': {w["message"]}' if w.get("message") else "")
            for p in st["pods"] for c in p["status"].get("containerStatuses", [])
            for w in [c.get("state", {}).get("waiting")] if w]


def cmd_down(a) -> int:
    if not a.all:
        if not client.remove_cluster(a.name):
            print(f'minikp: cluster "{a.name}" not found', file=sys.stderr)
            return 1
        print(f'cluster "{a.name}" deleted')
        return 0
    clusters = client.clusters()
    for c in clusters:
        client.remove_cluster(c)
        print(f'cluster "{c}" deleted')
    if not clusters:
        print("no minikp clusters")
    return 0


KINDS = {"nodes": "nodes", "node": "nodes", "no": "nodes",
         "pods": "pods", "pod": "pods", "po": "pods",
         "services": "services", "service": "services", "svc": "services",
         "endpoints": "endpoints", "ep": "endpoints",
         "endpointslices": "endpointslices", "endpointslice": "endpointslices",
         "deployments": "deployments", "deployment": "deployments", "deploy": "deployments",
         "replicasets": "replicasets", "replicaset": "replicasets", "rs": "replicasets",
         "namespaces": "namespaces", "namespace": "namespaces", "ns": "namespaces",
         "all": "all"}


# `-o name`'s prefix where it is not the singular, and the resource as kubectl's errors
# name it (with the API group of the kinds outside the core group)
NAME_PREFIX = {"deployments": "deployment.apps", "replicasets": "replicaset.apps",
               "endpointslices": "endpointslice.discovery.k8s.io"}
RESOURCE = {"deployments": "deployments.apps", "replicasets": "replicasets.apps",
            "endpointslices": "endpointslices.discovery.k8s.io",
            "Ingress": "ingresses.networking.k8s.io"}

# kinds listed from the objects minikp keeps as given (the Ingress too): resource name -> kind
STORED_KINDS = {alias: kind for kind, aliases in {
    "ConfigMap": ("configmaps", "configmap", "cm"), "Secret": ("secrets", "secret"),
    "ServiceAccount": ("serviceaccounts", "serviceaccount", "sa"),
    "Ingress": ("ingresses", "ingress", "ing"), "IngressClass": ("ingressclasses", "ingressclass"),
    "NetworkPolicy": ("networkpolicies", "networkpolicy", "netpol"),
    "Role": ("roles", "role"), "RoleBinding": ("rolebindings", "rolebinding"),
    "ClusterRole": ("clusterroles", "clusterrole"),
    "ClusterRoleBinding": ("clusterrolebindings", "clusterrolebinding"),
}.items() for alias in aliases}


def cmd_get(a) -> int:
    kind = KINDS.get(a.kind) or STORED_KINDS.get(a.kind)
    if kind is None:
        raise InputError(f'unknown resource type "{a.kind}"; valid: nodes, pods, svc, endpoints, '
                         "endpointslices, deploy, rs, ns, all, " + ", ".join(sorted({k for k in STORED_KINDS
                                                                if k.endswith("s")})), field="get")
    if kind == "all":
        return _get_all(a)
    objs = _objects(a, kind)
    if a.object_name and not objs:
        print(f'Error from server (NotFound): {RESOURCE.get(kind, kind)} "{a.object_name}" not found',
              file=sys.stderr)
        return 1
    if a.output in ("json", "yaml"):
        _dump(objs[0] if a.object_name else {"apiVersion": "v1", "kind": "List", "items": objs},
              a.output)
        return 0
    if a.output == "name":
        prefix = kind.lower() if kind in STORED_KINDS.values() else NAME_PREFIX.get(kind, kind.rstrip("s"))
        print("\n".join(f"{prefix}/{o['metadata']['name']}" for o in objs))
        return 0
    if not objs and not a.watch:
        where = "" if kind == "nodes" or a.all_namespaces else f" in {a.namespace} namespace"
        print(f"No resources found{where}.", file=sys.stderr)
        return 0
    print(_table(a, kind, objs), flush=True)
    if a.watch:
        _watch_table(a, kind, objs)
    return 0


def _objects(a, kind: str, st: dict | None = None) -> list[dict]:
    return client.objects(st or client.read_state(a.name), kind,
                          None if a.all_namespaces else a.namespace, a.object_name)


def _table(a, kind: str, objs: list[dict]) -> str:
    wide = a.output == "wide"
    if kind == "nodes":
        return tables.nodes_table(objs, wide)
    if kind == "Ingress":
        return tables.ingresses_table(objs, wide, a.all_namespaces)
    if kind in STORED_KINDS.values():
        return tables.stored_table(objs, a.all_namespaces)
    return tables.TABLES[kind](objs, wide, a.all_namespaces)


def _dump(doc: dict, fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(doc, indent=4))
    else:
        import yaml
        print(yaml.safe_dump(doc, sort_keys=False), end="")


def _get_all(a) -> int:
    """kubectl get all: pods, services, deployments, replicasets, a table each."""
    if a.object_name or a.watch:
        raise InputError("get all takes no NAME and no --watch", field="get all")
    st = client.read_state(a.name)
    by_kind = {kind: _objects(a, kind, st) for kind, _ in tables.ALL_KINDS}
    if a.output == "name":
        print("\n".join(f"{prefix}/{o['metadata']['name']}" for kind, prefix in tables.ALL_KINDS
                        for o in by_kind[kind]))
        return 0
    if a.output in ("json", "yaml"):
        _dump({"apiVersion": "v1", "kind": "List",
               "items": [o for objs in by_kind.values() for o in objs]}, a.output)
        return 0
    if not any(by_kind.values()):
        where = "" if a.all_namespaces else f" in {a.namespace} namespace"
        print(f"No resources found{where}.", file=sys.stderr)
        return 0
    print(tables.all_tables(by_kind, a.output == "wide", a.all_namespaces))
    return 0


def _watch_table(a, kind: str, objs: list[dict]) -> None:
    """kubectl get -w: after the table, one row each time an object changes or goes."""
    def key(o):
        return (o["metadata"].get("namespace", ""), o["metadata"]["name"])

    def same(o):  # what a row shows, without the ever-changing age
        return json.dumps({**o, "metadata": {**o["metadata"], "creationTimestamp": ""}}, sort_keys=True)

    shown = {key(o): o for o in objs}
    for st in client.watch_state(a.name):
        now = {key(o): o for o in _objects(a, kind, st)}
        changed = [o for k, o in now.items() if k not in shown or same(shown[k]) != same(o)]
        changed += [o for k, o in shown.items() if k not in now]  # gone: its last row
        for o in changed:
            print(_table(a, kind, [o]).splitlines()[-1], flush=True)
        shown = now


DESCRIBE_KINDS = ("pods", "services", "deployments", "nodes", "Ingress")


def cmd_describe(a) -> int:
    from minikp.describe import describe

    kind = KINDS.get(a.kind) or STORED_KINDS.get(a.kind)
    if kind not in DESCRIBE_KINDS:
        raise InputError(f'cannot describe "{a.kind}"; valid: pod, svc, deploy, node, ingress',
                         field="KIND")
    st = client.read_state(a.name)
    objs = client.objects(st, kind, a.namespace, a.object_name)
    if not objs:
        print(f'Error from server (NotFound): {RESOURCE.get(kind, kind)} "{a.object_name}" not found',
              file=sys.stderr)
        return 1
    print(describe(kind, objs[0], st, client.events(a.name)))
    return 0


def cmd_exec(a) -> int:
    """Nodes: a shell of the machine (privileged, as before). Pods and clients: the sandbox
    of their running command, joined as `kubectl exec` does, or, when they run none (a
    built-in workload), a fresh sandbox of the same make for this one command."""
    import signal

    from minikp.nsenter import enter

    argv = a.command
    if "--" in argv:  # REMAINDER also took the flags between TARGET and "--"
        cut = argv.index("--")
        flags, argv = argv[:cut], argv[cut + 1:]
        sub = Parser(prog="minikp exec")
        sub.add_argument("--name", default=a.name)
        a.name = names.check_cluster_name(sub.parse_args(flags).name)
    if not argv:
        raise InputError("no command given; usage: minikp exec TARGET -- CMD...", field="CMD")
    st = client.read_state(a.name)
    host = client.find_host(a.name, st, a.target)
    if host.kind == "node":  # its `iptables` is the one its proxy wrote with
        overlays = client.node_overlays(a.name, st, host.name)
        try:
            enter(host.netns, host.hostname, host.resolv_conf, overlays)
        except OSError as e:  # before the command: not its "not found"
            raise OperationError(f"cannot enter node/{host.name}: {e}") from None
    try:
        if host.kind == "node":
            os.execvp(argv[0], argv)
        proc = client.exec_in(a.name, host, argv)
    except FileNotFoundError:
        raise InputError(f"{argv[0]}: command not found", field="CMD") from None
    def interrupt(*_):
        """Ctrl-C reaches the command from the terminal, but a PID 1 (a fresh sandbox's)
        ignores what it does not handle, as in any container: end it, as the user asked."""
        if client.is_sandbox_init(proc.pid):
            proc.kill()
    signal.signal(signal.SIGINT, interrupt)
    code = proc.wait()
    return code if code >= 0 else 128 - code


def default_source(st: dict) -> str:
    return f"node/{st['nodes'][0]['metadata']['name']}"


def cmd_curl(a) -> int:
    mode, target = client.curl_target(a.url)  # bad URL: exit 2 before the cluster is read
    st = client.read_state(a.name)
    source = a.source or default_source(st)
    host = client.find_host(a.name, st, source)
    results = client.probe(a.name, host, mode, target, a.count, a.timeout)
    answered = collections.Counter(r["body"] for r in results if r["ok"])
    errors = collections.Counter(r["error"] for r in results if not r["ok"])
    print(f"{len(results)} requests from {host.kind}/{host.name} to {a.url}: "
          f"{sum(answered.values())} answered, {sum(errors.values())} failed")
    width = max((len(b) for b in list(answered) + list(errors)), default=0)
    for body, n in sorted(answered.items()):
        print(f"  {body.ljust(width)}  {n:4d}  {'#' * round(40 * n / len(results))}")
    for err, n in errors.items():
        print(f"  {('error: ' + err).ljust(width)}  {n:4d}")
    return 0 if not errors else 1


def cmd_diff_rules(a) -> int:
    """Exit 0 "no differences", 1 with a unified diff (saved -, minikp +), 2 bad input."""
    from minikp import diffrules

    try:
        with open(a.file, encoding="utf-8") as f:
            saved = f.read(diffrules.MAX_FILE_BYTES + 1)
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read: {getattr(e, 'strerror', None) or e}", file=a.file) from None
    if len(saved) > diffrules.MAX_FILE_BYTES:
        raise InputError(f"larger than {diffrules.MAX_FILE_BYTES >> 20} MiB: refused", file=a.file)
    fmt = diffrules.file_format(saved)
    if fmt is None:
        raise InputError("not the output of iptables-save, `nft list ruleset` or `ipvsadm -Ln`",
                         file=a.file)
    st = client.read_state(a.name)
    if st["proxyMode"] not in diffrules.MODES[fmt]:
        raise InputError(f"{fmt} output, but this cluster runs the proxy in {st['proxyMode']} "
                         f"mode (it compares with: {', '.join(diffrules.MODES[fmt])})", file=a.file)
    ours = client.node_proxier(a.name, st, a.node).rules_text(None, fmt)
    lines = diffrules.compare(saved, ours, fmt, a.file, f"minikp node {a.node}")
    for line in lines:
        print(line)
    print(f"{sum(1 for l in lines if l[:1] in '+-' and l[:3] not in ('+++', '---'))} lines differ"
          if lines else "no differences")
    return 1 if lines else 0


def cmd_rules(a) -> int:
    st = client.read_state(a.name)
    proxier = client.node_proxier(a.name, st, a.node)
    if a.format is not None and a.format not in proxier.formats:
        raise InputError(f'{a.format}: this cluster runs the proxy in {st["proxyMode"]} mode; '
                         f'available: {", ".join(proxier.formats)}', field="--format")
    if not a.watch:
        print(proxier.rules_text(a.table, a.format), end="")
        return 0
    import datetime as dt

    for ev, text, changed in client.watch_rules(a.name, a.node, a.table, a.format):
        if ev is None:
            print(text, end="", flush=True)
            continue
        t = dt.datetime.fromtimestamp(ev["time"]).strftime("%H:%M:%S.%f")[:-3]
        print(f"--- {t} {ev['message']}: "
              + (f"{sum(1 for l in changed if l[:1] in '+-')} lines changed" if changed
                 else "no change"), flush=True)
        for line in changed:
            print(f"  {line}", flush=True)
    return 0


def cmd_trace(a) -> int:
    t = client.trace(a.name, a.source, a.dest, a.proto)
    host = t.host
    print(f"{a.proto} {host.kind}/{host.name} ({host.ip}) -> {a.dest}")
    for leg in t.legs:
        counted = "its packets" if leg.exact else "per-rule counters, all traffic"
        print(f"{leg.title} ({counted}):")
        if not leg.nodes:
            print("  no node's rules saw it")
        for node, hits in leg.nodes:
            print(f"  through node {node}:")
            for table, chain, rule, packets in hits:
                print(f"    {table:6s} {chain:28s} {packets:3d} pkt  {rule}")
        r = leg.result
        print(f"  answer: {r['body']}" if r["ok"] else f"  failed: {r['error']}")
    return 0 if t.result["ok"] else 1


def cmd_tui(a) -> int:
    from minikp.tui.app import run

    client.read_state(a.name)  # a cluster that is not up: one clear line, before the screen
    return run(a.name)


def cmd_doctor(a) -> int:
    from minikp.doctor import checks

    bad = 0
    for name, ok, detail in checks():
        print(f"{'ok ' if ok else 'NO '} {name:22s} {detail}")
        bad += not ok
    return 0


def cmd_apply(a) -> int:
    loaded = client.load_files(a.files, a.name)  # bad input: exit 2 before the cluster is touched
    warn([w for s in loaded for w in s.warnings])
    for f, scenario in zip(a.files, loaded):
        print(client.apply(a.name, f, scenario), flush=True)
    client.wait_pods_gone(a.name)  # the pods it replaced or scaled away have stopped
    return 0


def cmd_delete(a) -> int:
    said = client.delete(a.name, a.kind, a.object_name, a.namespace, a.grace_period)
    print(said, flush=True)
    if a.wait == "true" and a.kind in ("pod", "pods", "po"):  # NAME may be a label: use the name said
        client.wait_pods_gone(a.name, [said.split('"')[1]], a.namespace)
    elif a.wait == "true":  # a workload's pods
        client.wait_pods_gone(a.name)
    return 0


def cmd_scale(a) -> int:
    print(client.scale(a.name, a.kind, a.object_name, a.replicas, a.namespace), flush=True)
    client.wait_pods_gone(a.name)  # the pods scaled away have stopped
    return 0


def cmd_logs(a) -> int:
    from minikp import logs
    st = client.read_state(a.name)
    kind = a.pod.partition("/")[0]
    if kind in ("deployment", "pod", "pods") and "/" in a.pod:  # as exec: a ready pod of it
        host = client.find_host(a.name, st, a.pod)
        ns, pod = host.namespace, host.name
    else:
        ns, _, pod = a.pod.rpartition("/")
    try:
        logs.stream(a.name, st, ns or a.namespace, pod, a.container, a.follow)
    except KeyboardInterrupt:
        pass
    return 0


def cmd_events(a) -> int:
    import datetime as dt

    def show(ev):
        t = dt.datetime.fromtimestamp(ev["time"]).strftime("%H:%M:%S.%f")[:-3]
        print(f"{t}  {ev['type']:16s} {ev['message']}", flush=True)

    seq = 0
    for ev in client.events(a.name):
        show(ev)
        seq = ev["seq"]
    if a.watch:
        for ev in client.watch_events(a.name, seq):
            show(ev)
    return 0


def cmd_test(a) -> int:
    from minikp.testrun import run_test

    scenario = client.load_checked([a.file], a.proxy_mode, kubernetes_version=a.kubernetes_version)  # exit 2
    warn(scenario.warnings)
    return run_test(a.file, a.name, lambda files: client.start_cluster(
        a.name, files, a.proxy_mode, scenario=scenario if files == [a.file] else None,
        kubernetes_version=a.kubernetes_version),
                    lambda: client.remove_cluster(a.name))


VERBS = {"apply": cmd_apply, "delete": cmd_delete, "scale": cmd_scale, "events": cmd_events,
         "logs": cmd_logs, "describe": cmd_describe,
         "test": cmd_test, "up": cmd_up, "down": cmd_down, "get": cmd_get, "exec": cmd_exec, "curl": cmd_curl,
         "rules": cmd_rules, "diff-rules": cmd_diff_rules, "trace": cmd_trace, "doctor": cmd_doctor, "tui": cmd_tui}


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    problem = names.cluster_name_problem(a.name)
    if problem:  # before anything is built from it (paths, namespaces)
        print(f"minikp: {problem}", file=sys.stderr)
        return 2
    if a.verb in KERNEL_VERBS and os.geteuid() != 0:
        print(f"minikp {a.verb}: needs root (network namespaces and the kernel's packet "
              f"filter); run: sudo minikp {a.verb} ...", file=sys.stderr)
        return 1
    try:
        return VERBS[a.verb](a)
    except (InputError, OperationError) as e:
        print(f"minikp: {e}", file=sys.stderr)
        return e.exit_code
    except clusterlock.Stopped as e:  # a signal while a cluster was coming up (minikp test)
        print(f"minikp: stopped ({e}); the cluster was removed", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
