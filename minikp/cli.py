"""The `minikp` command: verbs → calls, no logic of its own beyond arguments and printing.

Exit codes: 0 success, 1 a failed operation or check, 2 bad input (file, flag, object).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time

from minikp import names, state, tables
from minikp.errors import InputError, OperationError

KERNEL_VERBS = {"up", "down", "exec", "curl", "rules", "trace", "test", "apply", "delete",
                "scale", "events"}


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
    p.add_argument("--nodes", type=int)
    p.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C tears down")
    p = verb("down", "remove a cluster: namespaces, links, processes, state")
    p.add_argument("--all", action="store_true", help="every minikp cluster on this machine")
    p = verb("get", "kubectl-shaped tables of nodes, pods, svc, endpoints")
    p.add_argument("kind")
    p.add_argument("object_name", nargs="?", metavar="NAME")
    p.add_argument("-n", "--namespace", default="default")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-o", "--output", choices=["wide", "json", "yaml", "name"])
    p.add_argument("-w", "--watch", action="store_true", help="then a row for each change")
    p = verb("exec", "run a command in a pod, node/NAME or client/NAME")
    p.add_argument("target", metavar="TARGET")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD")
    p = verb("curl", "send requests and show which backends answered")
    p.add_argument("url", metavar="URL")
    p.add_argument("--from", dest="source", metavar="TARGET")
    p.add_argument("-c", "--count", type=int, default=10)
    p.add_argument("--timeout", type=float, default=2.0)
    p = verb("rules", "what a node's proxy programmed, as the kernel's own tools print it")
    p.add_argument("node", metavar="NODE")
    p.add_argument("--format", default="iptables", choices=["iptables", "ipvs", "nft"])
    p.add_argument("--table", choices=["filter", "nat", "mangle", "raw"])
    p = verb("trace", "the chains one connection crosses and the endpoint it reached")
    p.add_argument("--from", dest="source", required=True, metavar="TARGET")
    p.add_argument("--to", dest="dest", required=True, metavar="IP:PORT")
    p.add_argument("--proto", default="tcp", choices=["tcp", "udp"])
    p = verb("apply", "change a running cluster: add or change objects, like kubectl apply")
    p.add_argument("files", nargs="+", metavar="FILE")
    p = verb("delete", "delete a pod, deployment, replicaset or service")
    p.add_argument("kind", choices=["pod", "pods", "po", "deployment", "deploy", "replicaset",
                                    "rs", "svc", "service"])
    p.add_argument("object_name", metavar="NAME")
    p.add_argument("-n", "--namespace", default="default")
    p = verb("scale", "set the replicas of a deployment or replicaset")
    p.add_argument("kind", choices=["deployment", "deploy", "replicaset", "rs"])
    p.add_argument("object_name", metavar="NAME")
    p.add_argument("--replicas", type=int, required=True)
    p.add_argument("-n", "--namespace", default="default")
    p = verb("events", "what the supervisor did: pods, endpoints, proxy syncs")
    p.add_argument("-w", "--watch", action="store_true")
    p = verb("test", "build a scenario, run its checks and steps, tear down")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--proxy-mode")
    verb("doctor", "what this machine can run")
    return ap


# ---- verbs ------------------------------------------------------------------------------

def load_checked(files, **overrides):
    """The scenario of `files` (bad input: InputError, exit 2), its warnings printed."""
    from minikp.scenario.load import load_scenario

    scenario = load_scenario(files, **overrides)
    for w in scenario.warnings:
        print(f"minikp: warning: {w}", file=sys.stderr)
    return scenario


def cmd_up(a) -> int:
    from minikp.scenario.plan import plan_cluster

    plan_cluster(load_checked(a.files, proxy_mode=a.proxy_mode, nodes=a.nodes))  # exit 2 early
    files = [os.path.abspath(f) for f in a.files]
    t0 = time.monotonic()
    if a.foreground:
        from minikp.controller.supervisor import run

        def report(r):
            print(summary(a.name, t0) if r["ok"] else f"minikp: {r['error']}",
                  file=sys.stdout if r["ok"] else sys.stderr, flush=True)
        return run(a.name, files, a.proxy_mode, a.nodes, report)
    start_cluster(a.name, files, a.proxy_mode, a.nodes)
    print(summary(a.name, t0))
    return 0


def start_cluster(name: str, files: list[str], proxy_mode=None, nodes=None) -> None:
    """Start the cluster's supervisor in the background; return once it reports the cluster
    up, or raise what went wrong (it has then removed everything it made)."""
    os.makedirs(names.state_dir(name), exist_ok=True)
    read_fd, write_fd = os.pipe()
    argv = [sys.executable, "-m", "minikp.controller.supervisor", "--name", name,
            "--notify-fd", str(write_fd)]
    argv += (["--proxy-mode", proxy_mode] if proxy_mode else [])
    argv += (["--nodes", str(nodes)] if nodes else []) + [os.path.abspath(f) for f in files]
    with open(os.path.join(names.state_dir(name), "supervisor.log"), "a") as logf:
        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                         pass_fds=(write_fd,), start_new_session=True)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        line = f.readline()
    if not line:
        raise OperationError(f"the supervisor died during start-up; see "
                             f"{names.state_dir(name)}/supervisor.log")
    r = json.loads(line)
    if not r["ok"]:
        raise (InputError if r["exit"] == 2 else OperationError)(r["error"])


def summary(name, t0) -> str:
    st = state.read(name)
    lb = sum(1 for s in st["services"] if s["spec"]["type"] == "LoadBalancer")
    return (f'cluster "{name}" is up in {time.monotonic() - t0:.2f}s: {len(st["nodes"])} nodes, '
            f'{len(st["pods"])} pods, {len(st["services"])} services ({lb} LoadBalancer), '
            f'{len(st["clients"])} clients; proxy {st["proxyMode"]} ({st["iptablesBackend"]})')


def stop_supervisor(cluster: str) -> None:
    """End the cluster's supervisor by its PID (from the lock it holds), never by name."""
    try:
        with open(os.path.join(names.state_dir(cluster), "lock")) as f:
            pid = int(f.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        return
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().split(b"\0")
    except FileNotFoundError:
        return
    if b"minikp.controller.supervisor" not in cmd or cluster.encode() not in cmd:
        return  # the PID was reused by someone else
    import select
    import signal
    try:
        fd = os.pidfd_open(pid)  # pins the process: no PID reuse between check and kill
    except ProcessLookupError:
        return
    try:
        signal.pidfd_send_signal(fd, signal.SIGTERM)
        # readable once it has exited (a zombie counts: its parent, init, reaps it later)
        if not select.select([fd], [], [], 10)[0]:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
            select.select([fd], [], [], 5)
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)


def remove_cluster(cluster: str) -> None:
    from minikp.fabric.teardown import destroy_cluster

    stop_supervisor(cluster)
    destroy_cluster(cluster)


def cmd_down(a) -> int:
    from minikp.fabric.teardown import list_clusters

    clusters = list_clusters() if a.all else [a.name]
    for c in clusters:
        remove_cluster(c)
        print(f'cluster "{c}" deleted')
    if a.all and not clusters:
        print("no minikp clusters")
    return 0


KINDS = {"nodes": "nodes", "node": "nodes", "no": "nodes",
         "pods": "pods", "pod": "pods", "po": "pods",
         "services": "services", "service": "services", "svc": "services",
         "endpoints": "endpoints", "ep": "endpoints",
         "endpointslices": "endpointslices", "endpointslice": "endpointslices"}


# kinds minikp keeps and lists but does not act on: resource name -> kind
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
                         "endpointslices, " + ", ".join(sorted({k for k in STORED_KINDS
                                                                if k.endswith("s")})), field="get")
    objs = _objects(a, kind)
    if a.object_name and not objs:
        print(f'Error from server (NotFound): {kind} "{a.object_name}" not found', file=sys.stderr)
        return 1
    if a.output in ("json", "yaml"):
        doc = objs[0] if a.object_name else {"apiVersion": "v1", "kind": "List", "items": objs}
        if a.output == "json":
            print(json.dumps(doc, indent=4))
        else:
            import yaml
            print(yaml.safe_dump(doc, sort_keys=False), end="")
        return 0
    if a.output == "name":
        prefix = kind.lower() if kind in STORED_KINDS.values() else kind.rstrip("s")
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


def _objects(a, kind: str) -> list[dict]:
    st = state.read(a.name)
    objs = st[kind] if kind in st else [o for o in st.get("stored", []) if o["kind"] == kind]
    namespaced = kind != "nodes" and any("namespace" in o["metadata"] for o in objs)
    if namespaced and not a.all_namespaces:
        objs = [o for o in objs if o["metadata"]["namespace"] == a.namespace]
    if a.object_name:
        objs = [o for o in objs if o["metadata"]["name"] == a.object_name]
    return objs


def _table(a, kind: str, objs: list[dict]) -> str:
    wide = a.output == "wide"
    if kind == "nodes":
        return tables.nodes_table(objs, wide)
    if kind in STORED_KINDS.values():
        return tables.stored_table(objs, a.all_namespaces)
    return {"pods": tables.pods_table, "services": tables.services_table,
            "endpoints": tables.endpoints_table,
            "endpointslices": tables.endpointslices_table}[kind](objs, wide, a.all_namespaces)


def _watch_table(a, kind: str, objs: list[dict]) -> None:
    """kubectl get -w: after the table, one row each time an object changes or goes."""
    from minikp.controller.control import request, watch

    def key(o):
        return (o["metadata"].get("namespace", ""), o["metadata"]["name"])

    def same(o):  # what a row shows, without the ever-changing age
        return json.dumps({**o, "metadata": {**o["metadata"], "creationTimestamp": ""}}, sort_keys=True)

    shown = {key(o): o for o in objs}
    past = request(a.name, "events")
    for _ in watch(a.name, since=past[-1]["seq"] if past else 0):
        time.sleep(0.05)  # the state file follows the event
        now = {key(o): o for o in _objects(a, kind)}
        changed = [o for k, o in now.items() if k not in shown or same(shown[k]) != same(o)]
        changed += [o for k, o in shown.items() if k not in now]  # gone: its last row
        for o in changed:
            print(_table(a, kind, [o]).splitlines()[-1], flush=True)
        shown = now


def cmd_exec(a) -> int:
    from minikp.nsenter import enter

    argv = a.command
    if "--" in argv:  # REMAINDER also took the flags between TARGET and "--"
        cut = argv.index("--")
        flags, argv = argv[:cut], argv[cut + 1:]
        sub = Parser(prog="minikp exec")
        sub.add_argument("--name", default=a.name)
        a.name = sub.parse_args(flags).name
    if not argv:
        raise InputError("no command given; usage: minikp exec TARGET -- CMD...", field="CMD")
    host = state.find_host(a.name, state.read(a.name), a.target)
    enter(host.netns, host.hostname, host.resolv_conf)
    try:
        os.execvp(argv[0], argv)
    except FileNotFoundError:
        raise InputError(f"{argv[0]}: command not found", field="CMD") from None


def probe(cluster: str, host, mode: str, target: str, count: int = 1, timeout: float = 2.0,
          interval: float = 0.0) -> list[dict]:
    """Run minikp.probe inside `host` (its network, hostname and resolv.conf)."""
    from minikp.nsenter import popen_in

    argv = [sys.executable, "-m", "minikp.probe", mode, target, "--count", str(count),
            "--timeout", str(timeout), "--interval", str(interval)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = popen_in(host.netns, argv, hostname=host.hostname, resolv_conf=host.resolv_conf,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = p.communicate()
    if p.returncode != 0:
        raise OperationError(f"probe from {host.kind}/{host.name} failed: {err.strip()}")
    return json.loads(out)["results"]


def default_source(st: dict) -> str:
    return f"node/{st['nodes'][0]['metadata']['name']}"


def cmd_curl(a) -> int:
    st = state.read(a.name)
    source = a.source or default_source(st)
    host = state.find_host(a.name, st, source)
    results = probe(a.name, host, "http", a.url, a.count, a.timeout)
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


def cmd_rules(a) -> int:
    st = state.read(a.name)
    node = next((n for n in st["nodes"] if n["metadata"]["name"] == a.node), None)
    if node is None:
        raise InputError(f'no node "{a.node}"; nodes: '
                         + ", ".join(n["metadata"]["name"] for n in st["nodes"]), field="NODE")
    if a.format != "iptables":
        raise InputError(f'--format {a.format}: this cluster runs the proxy in '
                         f'{st["proxyMode"]} mode; available: iptables', field="--format")
    from minikp.proxy.iptables.sync import save

    print(save(names.netns_path(names.node_netns(a.name, a.node)), st["iptablesBackend"],
               a.table), end="")
    return 0


def cmd_trace(a) -> int:
    from minikp.proxy.iptables.trace import hits, read_counters

    st = state.read(a.name)
    host = state.find_host(a.name, st, a.source)
    node = host.node or node_for_address(st, a.dest)
    node_ns = names.netns_path(names.node_netns(a.name, node))
    before = read_counters(node_ns, st["iptablesBackend"])
    result = probe(a.name, host, a.proto, a.dest, 1, 2.0)[0]
    after = read_counters(node_ns, st["iptablesBackend"])
    print(f"{a.proto} {host.kind}/{host.name} ({host.ip}) -> {a.dest}, through node {node}:")
    for table, chain, rule, packets in hits(before, after):
        print(f"  {table:6s} {chain:28s} {packets:3d} pkt  {rule}")
    print(f"answer: {result['body']}" if result["ok"] else f"failed: {result['error']}")
    return 0 if result["ok"] else 1


def node_for_address(st: dict, dest: str) -> str:
    ip = dest.rpartition(":")[0]
    for n in st["nodes"]:
        if n["status"]["addresses"][0]["address"] == ip:
            return n["metadata"]["name"]
    return st["nodes"][0]["metadata"]["name"]


def cmd_doctor(a) -> int:
    from minikp.doctor import checks

    bad = 0
    for name, ok, detail in checks():
        print(f"{'ok ' if ok else 'NO '} {name:22s} {detail}")
        bad += not ok
    return 0


def _ref(a) -> dict:
    return {"kind": a.kind, "name": a.object_name, "namespace": a.namespace}


def cmd_apply(a) -> int:
    from minikp.controller.control import request

    for f in a.files:
        load_checked([f])  # bad input: exit 2 before the cluster is touched
    for f in a.files:
        print(request(a.name, "apply", spec=os.path.abspath(f)))
    return 0


def cmd_delete(a) -> int:
    from minikp.controller.control import request

    print(request(a.name, "delete", spec=_ref(a)))
    return 0


def cmd_scale(a) -> int:
    from minikp.controller.control import request

    print(request(a.name, "scale", spec={**_ref(a), "replicas": a.replicas}))
    return 0


def cmd_events(a) -> int:
    import datetime as dt
    from minikp.controller.control import request, watch

    def show(ev):
        t = dt.datetime.fromtimestamp(ev["time"]).strftime("%H:%M:%S.%f")[:-3]
        print(f"{t}  {ev['type']:16s} {ev['message']}", flush=True)

    seq = 0
    for ev in request(a.name, "events"):
        show(ev)
        seq = ev["seq"]
    if a.watch:
        for ev in watch(a.name, seq):
            show(ev)
    return 0


def cmd_test(a) -> int:
    from minikp.testrun import run_test

    load_checked([a.file], proxy_mode=a.proxy_mode)  # bad input: exit 2, warnings shown
    return run_test(a.file, a.name, lambda files: start_cluster(a.name, files, a.proxy_mode),
                    lambda: remove_cluster(a.name))


VERBS = {"apply": cmd_apply, "delete": cmd_delete, "scale": cmd_scale, "events": cmd_events,
         "test": cmd_test, "up": cmd_up, "down": cmd_down, "get": cmd_get, "exec": cmd_exec, "curl": cmd_curl,
         "rules": cmd_rules, "trace": cmd_trace, "doctor": cmd_doctor}


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    if a.verb in KERNEL_VERBS and os.geteuid() != 0:
        print(f"minikp {a.verb}: needs root (network namespaces and the kernel's packet "
              f"filter); run: sudo minikp {a.verb} ...", file=sys.stderr)
        return 1
    try:
        return VERBS[a.verb](a)
    except (InputError, OperationError) as e:
        print(f"minikp: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
