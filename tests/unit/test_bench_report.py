"""bench/report.py's every-mode table and bench/figures.py's PNGs, from results dicts (no
measuring, no root)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
import report  # noqa: E402


def _dp(direct, cip, np_, lb):
    mk = lambda v: {"rps": {"median": v, "min": v, "max": v, "runs": 1},  # noqa: E731
                    "p50_ms": {"median": 0.2, "min": 0.2, "max": 0.2, "runs": 1}, "runs": [{}], "errors": 0}
    return {"seconds": 2, "paths": {"pod IP (from pod)": mk(direct), "ClusterIP (from pod)": mk(cip),
                                    "NodePort (from client)": mk(np_), "LoadBalancer (from client)": mk(lb)}}


RES = {
    "sync": {"cap_s": 60.0, "rows": [
        {"services": 1000, "backend": "legacy", "sync_full_s": 0.2, "sync_partial_s": 0.1},
        {"services": 10000, "backend": "legacy", "sync_full_s": 4.0, "sync_partial_s": 1.0},
        {"services": 10000, "backend": "nft", "capped": True}]},
    "nftables_sync": {"rows": [{"services": 10000, "sync_full_s": 32.0, "sync_partial_s": 0.6}]},
    "userspace_sync": {"rows": [{"services": 10000, "sync_full_s": 20.0, "sync_partial_s": 0.2}]},
    "ipvs_sync": {"rows": [{"services": 10000, "ipvs_full_s": 60.0, "ipvs_partial_s": 0.015,
                            "iptables_full_s": 70.0, "iptables_partial_s": 12.0}]},
    "datapath": _dp(1000, 900, 800, 700),
    "datapath_modes": {"nftables": _dp(1000, 950, 850, 750)},
    "scale": {10: {"minikp_up": {"median": 0.5, "min": 0.4, "max": 0.6, "runs": 2},
                   "mininet_up": {"median": 0.6, "min": 0.5, "max": 0.7, "runs": 2}},
              100: {"minikp_up": {"median": 0.9, "min": 0.8, "max": 1.0, "runs": 2},
                    "mininet_up": {"median": 5.0, "min": 4.0, "max": 6.0, "runs": 2}}},
}


def test_every_mode_row_with_its_same_machine_ratio():
    text = "\n".join(report.modes_section(RES))
    assert "| iptables-legacy | host | 200 ms | 100 ms | 4.00 s | 1.00 s | (reference) |" in text
    assert "| iptables-nft | host | – | – | > 60 s (capped) | – |" in text
    assert "| nftables | host | – | – | 32.00 s | 600 ms | 8.00× / 0.60× |" in text
    assert "| userspace | host | – | – | 20.00 s | 200 ms | 5.00× / 0.20× |" in text
    assert "| ipvs | VM | – | – | 60.00 s | 15 ms | 0.86× / 1/800 |" in text  # vs iptables in the VM
    assert "| iptables | 1000 | 900 (90%) | 800 (80%) | 700 (70%) |" in text
    assert "| nftables | 1000 | 950 (95%) |" in text and "ipvs: not measured here" in text


def test_figures_are_drawn_from_stored_results(tmp_path):
    import figures  # matplotlib: scripts/setup.sh installs it
    made = figures.draw(RES, str(tmp_path))
    assert [p for _, p in made] == ["figures/bringup.png", "figures/sync.png"]
    for name in ("bringup.png", "sync.png"):
        with open(tmp_path / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "![sync time" in "\n".join(report.modes_section({**RES, "figures": made}))


def _size(minikp_up, mininet_up):
    one = lambda v: {"median": v, "min": v, "max": v, "runs": 1}  # noqa: E731
    return {"minikp_up": one(minikp_up), "mininet_up": one(mininet_up), "up_ratio": one(mininet_up / minikp_up)}


def test_small_cluster_goals_say_met_or_what_bounds_them():
    res = {"scale": {10: _size(0.8, 0.6), 200: _size(1.0, 5.0), 1000: _size(4.0, 28.0)},
           "lab": {"up": {"median": 0.22, "min": 0.2, "max": 0.3, "runs": 7}}}
    rows = {goal: (measured, ok, why) for goal, measured, ok, why in report.goals(res)}
    measured, ok, why = rows["every size up at least as fast as Mininet"]
    assert not ok and why.startswith("10 pods: minikp 0.80 s, Mininet 0.60 s") and "interpreter" in why
    assert rows["200 pods up in ≤ 0.15× Mininet's time"][:2] == ("0.20× (1.00 s vs 5.00 s)", False)
    measured, ok, _ = rows["3-pod hostnames lab up in < 0.25 s"]
    assert ok and measured == "0.22 (0.20–0.30) s"
    res["scale"][10] = _size(0.5, 0.6)
    assert report.goals(res)[1][2]  # every size at least as fast now


def test_the_200_pod_goal_names_the_kernel_floor_against_what_the_goal_leaves():
    res = {"scale": {200: _size(1.66, 5.91)},
           "fabric": [{"pods": 100, "per_pod_ms": 2.9, "nodes_s": 0.04, "pods_s": 0.29},
                      {"pods": 1000, "per_pod_ms": 3.4, "nodes_s": 0.18, "pods_s": 3.38}]}
    why = {goal: why for goal, _, _, why in report.goals(res)}["200 pods up in ≤ 0.15× Mininet's time"]
    assert why.startswith("the goal leaves 0.89 s;") and "2.9 ms per pod, is 0.58 s" in why
