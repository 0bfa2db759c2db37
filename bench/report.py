"""docs/benchmarks.md from the results run_all.py collected (pure: dict in, text out)."""

import os

GOAL_RATIO = 5.0  # minikp at least 5x faster per host than Mininet
GOAL_UP_1000_S = 5.0
GOAL_MEMORY_MB = 200.0
GOAL_CLUSTERIP = 0.90  # ClusterIP throughput within 10% of the direct pod IP
GOAL_LAB_S = 0.25  # the 3-pod hostnames lab up
GOAL_200_SHARE = 0.15  # 200 pods up in at most this share of Mininet's time for 200 hosts
SMALL = ("fixed costs of one `minikp up` process: the interpreter's start and imports are about two "
         "thirds of a small cluster's up; see \"Small clusters\" under \"What bounds each number\"")


def _s(x, digits=2):
    return "–" if x is None else f"{x:.{digits}f}"


def _mmm(s, digits=2, unit=""):
    """'median (min–max)' of a summary()."""
    if not s:
        return "–"
    if s["runs"] == 1:
        return f"{_s(s['median'], digits)}{unit}"
    return f"{_s(s['median'], digits)}{unit} ({_s(s['min'], digits)}–{_s(s['max'], digits)})"


def _met(ok):
    return "**met**" if ok else "**not met**"


def marginal(scale):
    """(lo, hi, minikp s/host, Mininet s/host) between the two largest sizes, or None."""
    if len(scale) < 2:
        return None
    lo, hi = sorted(scale)[-2:]
    mk = (scale[hi]["minikp_up"]["median"] - scale[lo]["minikp_up"]["median"]) / (hi - lo)
    mn = (scale[hi]["mininet_up"]["median"] - scale[lo]["mininet_up"]["median"]) / (hi - lo)
    return (lo, hi, mk, mn) if mk > 0 else None


def goals(res):
    """[(goal, measured, met?, reason)] for the goals the issue sets."""
    rows = []
    scale = res.get("scale") or {}
    if scale:
        worst = min(scale.items(), key=lambda kv: kv[1]["up_ratio"]["median"])
        ratios = ", ".join(f"{n} pods {v['up_ratio']['median']:.1f}x" for n, v in sorted(scale.items()))
        ok = all(v["up_ratio"]["median"] >= GOAL_RATIO for v in scale.values())
        reason = ("every size, median of the pairs" if ok else
                  f"at {worst[0]} pods the median pair is only {worst[1]['up_ratio']['median']:.1f}x: "
                  "minikp's fixed cost (CLI start, supervisor, 10 nodes, DNS) dominates small sizes")
        marg = marginal(scale)
        if marg:
            ratios += f"; marginal per added host {marg[3] / marg[2]:.1f}x"
        rows.append((f"bring-up ≥ {GOAL_RATIO:.0f}× faster per host than Mininet", ratios, ok, reason))
        ok = all(v["up_ratio"]["median"] >= 1.0 for v in scale.values())
        rows.append(("every size up at least as fast as Mininet", ratios.split(";")[0], ok,
                     "median pair at every size" if ok else
                     f"{worst[0]} pods: minikp {worst[1]['minikp_up']['median']:.2f} s, Mininet "
                     f"{worst[1]['mininet_up']['median']:.2f} s; {SMALL}"))
        mid = scale.get(200)
        if mid:
            share = 1 / mid["up_ratio"]["median"]
            ok = share <= GOAL_200_SHARE
            budget = GOAL_200_SHARE * mid["mininet_up"]["median"]
            fab = min(res.get("fabric") or (), key=lambda f: abs(f["pods"] - 200), default=None)
            why = SMALL if not fab else (
                f"the goal leaves {budget:.2f} s; the kernel's part alone, 200 pods' namespaces and "
                f"links at the fabric floor's {fab['per_pod_ms']:.1f} ms per pod, is "
                f"{0.2 * fab['per_pod_ms']:.2f} s, and a small cluster's fixed costs (the interpreter, "
                "imports, 10 nodes) come on top; see \"Small clusters\" under \"What bounds each number\"")
            rows.append((f"200 pods up in ≤ {GOAL_200_SHARE:.2f}× Mininet's time",
                         f"{share:.2f}× ({mid['minikp_up']['median']:.2f} s vs "
                         f"{mid['mininet_up']['median']:.2f} s)", ok, "median pair" if ok else why))
        big = scale.get(1000)
        if big:
            up = big["minikp_up"]["median"]
            ok = up < GOAL_UP_1000_S
            floor = next((f for f in res.get("fabric") or () if f["pods"] == 1000), None)
            reason = ("median of the runs, wall clock of `minikp up` until every pod answers" if ok else
                      f"the kernel's part alone, namespaces and links (the fabric floor below), took "
                      f"{floor['nodes_s'] + floor['pods_s']:.1f} s on this machine; see \"What bounds each number\""
                      if floor else "see \"What bounds each number\"")
            rows.append((f"1,000 pods up in < {GOAL_UP_1000_S:.0f} s", f"{up:.2f} s", ok, reason))
    lab = (res.get("lab") or {}).get("up")
    if lab:
        ok = lab["median"] < GOAL_LAB_S
        rows.append((f"3-pod hostnames lab up in < {GOAL_LAB_S} s", _mmm(lab) + " s", ok,
                     "median of the runs, `minikp up scenarios/hostnames.yaml` until it returns"
                     if ok else SMALL))
    mem = (scale.get(1000) or {}).get("memory") if scale else None
    if mem:
        ok = mem["pss_mb"] < GOAL_MEMORY_MB
        rows.append((f"1,000 pods in < {GOAL_MEMORY_MB:.0f} MB", f"{mem['pss_mb']:.0f} MB PSS "
                     f"({mem['rss_mb']:.0f} MB RSS), {mem['processes']} processes", ok,
                     "PSS summed over the supervisor and every process in the cluster's namespaces"
                     if ok else "see the per-command breakdown below"))
    rows += sync_goals(res.get("sync"))
    val = (res.get("validation") or {}).get(20000)
    if val:
        secs = val["seconds"]["median"]
        cpu = (val.get("cpu_seconds") or val["seconds"])["median"]
        rows.append(("validating 20,000 Services < 3 s", f"{secs:.2f} s ({cpu:.2f} s CPU)", secs < 3.0,
                     "load + plan in a fresh process, median of the runs" if secs < 3.0 else
                     "wall clock above CPU time: the machine was busy" if cpu < 3.0 else
                     "pure Python on one CPU: libyaml's events built into values (about two thirds), "
                     "then each object's fields checked and the cluster planned; see \"Validation\" "
                     "under \"What bounds each number\""))
    dp = res.get("datapath")
    if dp:
        direct = dp["paths"]["pod IP (from pod)"]["rps"]["median"]
        cip = dp["paths"]["ClusterIP (from pod)"]["rps"]["median"]
        ok = cip >= GOAL_CLUSTERIP * direct
        rows.append(("ClusterIP within 10% of direct pod IP", f"{cip / direct * 100:.0f}% of direct "
                     f"({cip:.0f} vs {direct:.0f} req/s)", ok,
                     "same backend pod, same client pod, wrk medians" if ok else
                     "the DNAT path costs more than 10% of the direct path's throughput"))
    return rows


def sync_goals(sync):
    """Issue 3's proxy goals, from bench_iptables_sync.py's rows (legacy: what auto picks)."""
    rows = []
    for r in (sync or {}).get("rows", []):
        if r["backend"] != "legacy" or not r.get("sync_full_s") or not r.get("bare_restore_s"):
            continue
        ratio = r.get("full_over_bare") or r["sync_full_s"] / r["bare_restore_s"]  # paired runs
        pairs = [f / b for f, b in zip(r.get("full_runs", []), r.get("bare_runs", []))]
        spread = f" ({min(pairs):.2f}–{max(pairs):.2f})" if len(pairs) > 1 else ""
        floor = ""
        if r.get("cpu_bare_s"):
            floor = (f"the sync's restore alone (the base chains too) used {r['cpu_restore_s']:.2f} CPU-s, "
                     f"{r['cpu_restore_s'] / r['cpu_bare_s']:.2f}× the bare restore's; the streamed render "
                     f"({r['cpu_python_s']:.2f} CPU-s) overlaps its parse but not its commit, which waits "
                     f"for the last line; with no second CPU free, their sum "
                     f"({(r['cpu_restore_s'] + r['cpu_python_s']) / r['cpu_bare_s']:.2f}×) is the floor")
        rows.append((f"full sync ≤ 1.2× a bare iptables-restore ({r['services']:,} services, legacy)",
                     f"{r['sync_full_s']:.2f} s vs {r['bare_restore_s']:.2f} s; run by run {ratio:.2f}×{spread}",
                     ratio <= 1.2, "the render streamed into one restore that also makes the base chains"
                     if ratio <= 1.2 else floor or "the Python render besides the restore"))
        if r["services"] >= 10000 and r.get("sync_partial_s"):
            p = r["sync_partial_s"]
            rows.append(("partial sync < 100 ms at 10,000 services", f"{p * 1000:.0f} ms "
                         f"({r.get('partial_lines')} restore lines)", p < 0.1,
                         "only the changed service's chains are written" if p < 0.1 else
                         "iptables-legacy-restore replaces the whole nat table blob (~230,000 rules) "
                         "even for a few changed lines: the kernel's x_tables floor"))
    return rows


def userspace_datapath(us):
    """The "Userspace datapath" section: the ClusterIP through the userspace proxy beside
    iptables DNAT and the pod IP (bench/userspace_datapath.py)."""
    if not us:
        return []
    out = ["", "## Userspace datapath", "",
           f"`bench/userspace_datapath.py`: `wrk -t1 -c{us['connections']} -d{us['seconds']}s --latency` "
           "from a pod to the built-in HTTP workload in another pod on the same node, through the "
           "pod IP, the ClusterIP with iptables-mode rules (DNAT in the kernel) and the ClusterIP with "
           "userspace-mode rules (REDIRECT to the proxy socket, which opens its own connection to "
           "the pod). Each with keep-alive connections and with one connection per request "
           "(`Connection: close`). Median (min–max) of "
           f"{len(next(iter(us['paths'].values()))['runs'])} interleaved runs.", "",
           "| path | requests/s | vs iptables | p50 ms | p99 ms | errors |", "|---|---:|---:|---:|---:|---:|"]
    for label, v in us["paths"].items():
        style = label[label.index("("):]
        ipt = us["paths"].get(f"ClusterIP, iptables mode {style}")
        ratio = f"{v['rps']['median'] / ipt['rps']['median'] * 100:.0f}%" if ipt else "–"
        out.append(f"| {label} | {_mmm(v['rps'], 0)} | {ratio} | {_mmm(v['p50_ms'])} | "
                   f"{_mmm(v['p99_ms'])} | {v['errors']} |")
    shares = []
    for style in ("keep-alive", "connection per request"):
        us_, ipt = (us["paths"].get(f"ClusterIP, {m} mode ({style})") for m in ("userspace", "iptables"))
        if us_ and ipt:
            shares.append(f"{us_['rps']['median'] / ipt['rps']['median'] * 100:.0f}% of iptables mode's "
                          f"requests/s with {style} (p50 {us_['p50_ms']['median']:.2f} ms vs "
                          f"{ipt['p50_ms']['median']:.2f} ms)")
    if shares:
        out += ["", "Userspace mode served " + "; ".join(shares) + "."]
    return out + ["", USERSPACE_WHY]


USERSPACE_WHY = (
    "Why userspace is slower: with iptables the kernel rewrites the destination of the first "
    "packet and conntrack does the rest, so a request costs about what one to the pod IP costs. The "
    "userspace proxy terminates every connection: each byte crosses into the proxy process and "
    "back out (two socket reads and two writes per exchange, with the copies and context switches "
    "they bring), and each new connection costs an accept and a second TCP connection, from the proxy "
    "to the pod, all in one Python event loop thread that shares the interpreter "
    "lock with the workload server. A new connection is where it hurts most: the proxy's own "
    "connect to the pod happens before the client's request can move. kube-proxy's Go proxy paid "
    "the same two hops without an interpreter; iptables mode became the default in 1.2.")


def _t(v):
    """Seconds as ms below 1 s."""
    return "–" if v is None else (f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s")


def _ratio(a, b):
    """a over b: "0.86×", or "1/800" when tiny."""
    if not (a and b):
        return "–"
    return f"{a / b:.2f}×" if a / b >= 0.01 else f"1/{b / a:.0f}"


def sync_modes(res):
    """[(mode, where, {services: (full s, one-endpoint s)}, reference mode)] from each sync
    benchmark's rows; the reference is iptables-legacy measured on the same machine."""
    out = []
    rows = (res.get("sync") or {}).get("rows", [])
    for backend in ("legacy", "nft"):
        got = {r["services"]: (r.get("sync_full_s"), r.get("sync_partial_s")) for r in rows if r["backend"] == backend}
        if got:
            out.append((f"iptables-{backend}", "host", got, "iptables-legacy" if backend == "nft" else None))
    for key, mode in (("nftables_sync", "nftables"), ("userspace_sync", "userspace")):
        got = {r["services"]: (r.get("sync_full_s"), r.get("sync_partial_s")) for r in (res.get(key) or {}).get("rows", [])}
        if got:
            out.append((mode, "host", got, "iptables-legacy"))
    vm = (res.get("ipvs_sync") or {}).get("rows", [])
    if vm:
        out.append(("ipvs", "VM", {r["services"]: (r.get("ipvs_full_s"), r.get("ipvs_partial_s")) for r in vm},
                    "iptables-legacy (VM)"))
        out.append(("iptables-legacy (VM)", "VM",
                    {r["services"]: (r.get("iptables_full_s"), r.get("iptables_partial_s")) for r in vm}, None))
    return out


DATAPATH_PATHS = ("ClusterIP (from pod)", "NodePort (from client)", "LoadBalancer (from client)")


def datapath_modes(res):
    """{mode: bench_datapath's result}: the per-mode runs, iptables from the main run."""
    out = dict(res.get("datapath_modes") or {})
    if res.get("datapath") and "iptables" not in out:
        out = {"iptables": res["datapath"], **out}
    return out


def modes_section(res):
    """Issue 18 item 4: every proxy mode side by side."""
    syncs = sync_modes(res)
    dps = datapath_modes(res)
    if not syncs and not dps:
        return []
    out = ["", "## Every proxy mode side by side", ""]
    if syncs:
        by_mode = {m: got for m, _w, got, _r in syncs}
        cap = (res.get("sync") or {}).get("cap_s")
        out += ["Syncs of one node for N ClusterIP services × 5 endpoints: a full sync of a fresh node and a "
                "one-endpoint change (one endpoint of one service removed or added back; median of the runs). "
                "From `bench/bench_iptables_sync.py` (iptables-legacy, iptables-nft), `bench_nftables_sync.py`, "
                "`bench_userspace_sync.py` on this host and `bench_ipvs_sync.py` inside the VM tier (this "
                "host has no IPVS; qemu TCG runs Python ~20-40× slower, so ipvs is compared with "
                "iptables-legacy measured in the same VM run, never with host numbers). Ratio: the mode's "
                "time over iptables-legacy's on the same machine. Each benchmark ran at its own minutes on a "
                "shared machine, so ratios across rows carry that noise; the ipvs row's ratio is side by side.", "",
                "| mode | where | full 1,000 | one-endpoint 1,000 | full 10,000 | one-endpoint 10,000 | "
                "vs iptables-legacy at 10,000: full / one-endpoint |",
                "|---|---|---:|---:|---:|---:|---:|"]
        for mode, where, got, ref in syncs:
            cells = []
            for n in (1000, 10000):
                full, part = got.get(n, (None, None))
                cells += [(_t(full) if full is not None or n not in got else f"> {cap or 0:.0f} s (capped)"), _t(part)]
            r = by_mode.get(ref, {}).get(10000, (None, None)) if ref else (None, None)
            mine = got.get(10000, (None, None))
            vs = f"{_ratio(mine[0], r[0])} / {_ratio(mine[1], r[1])}" if ref else "(reference)"
            out.append(f"| {mode} | {where} | {' | '.join(cells)} | {vs} |")
        out += ["", "What bounds each: iptables-legacy rewrites the whole nat table blob (x_tables) even for a "
                "one-endpoint change; iptables-nft's restore grows faster than linearly with chains; nftables "
                "pays nft's cache fill of the whole table before any partial transaction; ipvs changes one "
                "real server over netlink, after finding the changed port without a Python pass over all of them; "
                "userspace compares every service port in Python to find the changed one, then swaps the round "
                "robin's endpoint list (its full sync opens one socket per service port)."]
    if dps:
        out += ["", "Datapath per mode (`bench/datapath.py`, the same cluster shape in each mode): requests/s "
                "through the ClusterIP, a NodePort and the LoadBalancer address, as a share of the direct pod "
                "IP measured in the same run, and p50 latency.", "",
                "| mode | pod IP req/s | " + " | ".join(f"{p.split(' (')[0]} req/s (vs pod IP)" for p in DATAPATH_PATHS)
                + " | p50 ms: pod IP / ClusterIP / NodePort / LB | errors |",
                "|---|---:|---:|---:|---:|---|---:|"]
        for mode, dp in dps.items():
            paths = dp["paths"]
            direct = paths["pod IP (from pod)"]["rps"]["median"]
            cells = [f"{paths[p]['rps']['median']:.0f} ({paths[p]['rps']['median'] / direct * 100:.0f}%)"
                     if p in paths else "–" for p in DATAPATH_PATHS]
            p50 = " / ".join(f"{paths[p]['p50_ms']['median']:.2f}" if p in paths else "–"
                             for p in ("pod IP (from pod)", *DATAPATH_PATHS))
            errors = sum(v["errors"] for v in paths.values())
            out.append(f"| {mode} | {direct:.0f} | {' | '.join(cells)} | {p50} | {errors} |")
        if "ipvs" not in dps:
            out += ["", "ipvs: not measured here. This host's kernel has no IPVS, and inside the VM tier the "
                    "emulated CPU (qemu TCG), not the datapath, would set the number."]
        runs = {len(next(iter(d["paths"].values()))["runs"]) for d in dps.values()}
        secs = {d["seconds"] for d in dps.values()}
        out += ["", f"wrk runs per path: {', '.join(map(str, sorted(runs)))}, of "
                f"{', '.join(map(str, sorted(secs)))} s; the machine is shared, so compare within a row."]
    out += _figure(res, "figures/sync.png")
    return out


def _figure(res, path):
    """The markdown of a figure bench/figures.py drew, or nothing."""
    alt = {p: a for a, p in res.get("figures") or []}.get(path)
    return ["", f"![{alt}]({path})"] if alt else []


def render(res):
    m = res["machine"]
    out = ["# minikp benchmarks", "",
           "Written by `make bench` (`scripts/bench.sh` → `bench/run_all.py`); raw numbers in "
           "`bench/results.json`. Times are wall clock in seconds: median (min–max) over the runs.",
           "",
           f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB RAM, kernel {m['kernel']}, "
           f"Python {m['python']}, {m['iptables']}, Mininet {m['mininet']}, {m['wrk'].split(' Copyright')[0]}. "
           f"Run on {res['date']}." + "".join(
               f" Parts measured again on {u['date']} (kernel {u['machine']['kernel']}): "
               f"`run_all.py {' '.join(u['argv'])}`." for u in res.get("updates", [])), "", "## Goals", "",
           "| goal | measured | status | why |", "|---|---|---|---|"]
    rows = goals(res)
    for goal, measured, ok, reason in rows:
        out.append(f"| {goal} | {measured} | {_met(ok)} | {reason} |")
    if not rows:
        out.append("| (none measured in this run) | – | – | the scale and datapath parts were skipped |")
    scale = res.get("scale")
    if scale:
        out += ["", "## Bring-up and teardown: minikp vs Mininet", "",
                "minikp: `minikp up` of N `serve_hostname` pods (Deployments of 10 replicas, one "
                "ClusterIP Service each, plus the 2 cluster-DNS pods) over 10 nodes; `up` returns "
                "once every pod answers and every node's iptables rules are programmed. "
                "Mininet: `Mininet(LinearTopo(k=10, n=N/10), switch=LinuxBridge, controller=None, "
                "build=True)` then `net.start()` (N hosts over 10 Linux-bridge switches), "
                "`net.stop()` for teardown, under Debian's /usr/bin/python3, inside a throwaway "
                "network namespace. Each run is one pair measured back to back; the ratio is "
                "Mininet's time over minikp's in that pair (same N, so it is the per-host ratio).",
                "",
                "| pods / hosts | runs | minikp up | Mininet up | up: minikp faster by | "
                "minikp down | Mininet stop | down: faster by |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for n, v in sorted(scale.items()):
            out.append(f"| {n} | {v['minikp_up']['runs']} | {_mmm(v['minikp_up'])} | {_mmm(v['mininet_up'])} "
                       f"| {_mmm(v['up_ratio'], 1, '×')} | {_mmm(v['minikp_down'])} "
                       f"| {_mmm(v['mininet_stop'])} | {_mmm(v['down_ratio'], 1, '×')} |")
        out += ["", "Per host (median): " + "; ".join(
            f"{n}: minikp {v['minikp_up']['median'] / n * 1000:.1f} ms up, "
            f"Mininet {v['mininet_up']['median'] / n * 1000:.1f} ms" for n, v in sorted(scale.items())) + "."]
        marg = marginal(scale)
        if marg:
            lo, hi, mk, mn = marg
            out += ["", f"Marginal cost per added host ({lo} → {hi}, medians; removes the fixed cost of "
                    f"starting the CLI, the supervisor and the 10 nodes): minikp {mk * 1000:.2f} ms, "
                    f"Mininet {mn * 1000:.2f} ms, minikp faster by {mn / mk:.1f}×."]
        out += _figure(res, "figures/bringup.png")
    big = (scale or {}).get(1000) or (scale or {}).get(max(scale)) if scale else None
    if big and big.get("memory"):
        mem = big["memory"]
        n = max(scale)
        out += ["", f"## Memory at {n} pods", "",
                f"Proportional set size (`/proc/PID/smaps_rollup`, shared pages split among the "
                f"processes mapping them) of the supervisor, its descendants and every process in "
                f"one of the cluster's namespaces, taken right after `up` returned: "
                f"**{mem['pss_mb']:.0f} MB PSS** ({mem['rss_mb']:.0f} MB summed RSS), "
                f"{mem['processes']} processes. Mininet's {n} hosts + 10 switches: "
                f"{_s(big.get('mininet_pss_mb'), 0)} MB PSS (one shell per host).", "",
                "| process | count | PSS MB |", "|---|---:|---:|"]
        for c, (cnt, mb) in sorted(mem["by_command"].items(), key=lambda kv: -kv[1][1]):
            out.append(f"| {c} | {cnt} | {mb:.1f} |")
    rows += sync_goals(res.get("sync"))
    dp = res.get("datapath")
    if dp:
        out += ["", "## Datapath", "",
                f"`wrk -t{dp['threads']} -c{dp['connections']} -d{dp['seconds']}s --latency`, run with "
                f"`ip netns exec` inside the cluster, against the one replica of Service `web` "
                f"(pod `{dp['backend']}` on node-2; every path was checked to answer with that name). "
                "From the `wrk` pod on node-1: the pod IP and the ClusterIP; from the client `load` "
                "on the node network: node-1's NodePort and the LoadBalancer address (both SNATed "
                "to node-1, then forwarded to node-2). Paths interleaved; median (min–max) of "
                f"{len(next(iter(dp['paths'].values()))['runs'])} runs each.", "",
                "| path | URL | requests/s | vs pod IP | p50 ms | p99 ms | errors |",
                "|---|---|---:|---:|---:|---:|---:|"]
        direct = dp["paths"]["pod IP (from pod)"]["rps"]["median"]
        for label, v in dp["paths"].items():
            out.append(f"| {label} | `{v['url']}` | {_mmm(v['rps'], 0)} | "
                       f"{v['rps']['median'] / direct * 100:.0f}% | {_mmm(v['p50_ms'])} | "
                       f"{_mmm(v['p99_ms'])} | {v['errors']} |")
    out += userspace_datapath(res.get("userspace_datapath"))
    out += modes_section(res)
    val = res.get("validation")
    if val:
        out += ["", "## Validating large scenarios", "",
                "`bench/validation.py`: one file of N Services (two named ports, a selector) and "
                "N/10 Deployments on 10 nodes, read, validated and planned (`load_scenario` + "
                "`plan_cluster`, what `up` and `apply` do before touching the kernel) in a fresh "
                "process, import time excluded. Before issue 9 the same 20,000 Services took about "
                "31 s (a quadratic duplicate check and PyYAML's pure-Python parser); with these "
                "Deployments every Service's selector was also tried on every workload (26 s "
                "even once the parser was fast); now "
                "libyaml's events are built into values by one flat loop that also enforces "
                "the depth and alias limits, and selectors go through a label index.", "",
                "| Services | file KiB | seconds | CPU seconds | max RSS MB |", "|---:|---:|---:|---:|---:|"]
        for n, v in sorted(val.items(), key=lambda kv: int(kv[0])):
            cpu = _mmm(v["cpu_seconds"]) if "cpu_seconds" in v else "-"
            out.append(f"| {int(n):,} | {v['bytes'] >> 10} | {_mmm(v['seconds'])} | {cpu} | "
                       f"{v['max_rss_mb']} |")
    fab = res.get("fabric")
    if fab:
        out += ["", "## Fabric floor", "",
                "`bench/fabric_floor.py`: `minikp.fabric.Fabric` alone building the world, 10 nodes "
                "and N pod namespaces with their veths, addresses and routes, one pod after "
                "the other, then destroying them; no workloads, DNS or proxy rules. "
                "The kernel + netlink part of `minikp up`.", "",
                "| pods | world + 10 nodes s | pods s | ms per pod | destroy s |", "|---:|---:|---:|---:|---:|"]
        for f in fab:
            out.append(f"| {f['pods']} | {_s(f['nodes_s'])} | {_s(f['pods_s'])} | "
                       f"{_s(f['per_pod_ms'], 1)} | {_s(f['destroy_s'])} |")
    notes = res.get("notes_md")
    if notes:
        out += ["", notes.strip()]
    for key, title, doc, script in (
            ("iptables_md", "iptables proxy sync", "benchmarks-iptables.md", "bench_iptables_sync.py"),
            ("nftables_md", "nftables sync", "benchmarks-nftables.md", "bench_nftables_sync.py"),
            ("ipvs_md", "ipvs proxy sync", "benchmarks-ipvs.md", "bench_ipvs_sync.py")):
        text = res.get(key)
        if text:
            out += ["", f"## {title} (docs/{doc})", "",
                    f"Copied from `docs/{doc}` (written by `bench/{script}`).", "", _demote(text)]
    return "\n".join(out) + "\n"


def _demote(md):
    """A copied report's body under this one's heading: its title dropped, headings one level down."""
    lines = md.strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(("#" + l if l.startswith("#") else l) for l in lines).strip()


def read_optional(path):
    return open(path).read() if os.path.exists(path) else None
