"""The reliability tier for cluster names and lifecycles (issue 9.1, 9.2, 9.5; issue 12.6):
crash cycles with SIGKILLed supervisors leave nothing, clusters whose names extend each
other live side by side and go independently, `down` racing `up` never reports what did not
happen, and `--name` cannot reach outside the state root. About half a minute."""

import os
import time

import pytest

from crashcycle import (SCENARIO, big_scenario, census, cli, crash_cycle, host_view,
                        netns_inodes, netns_of, race_once, supervisor_pid)
from minikp import clusterlock, names

CRASH_CYCLES = 3  # each cycle is the same and counted on its own; `make soak` runs 100


def down(name):
    return cli("down", "--name", name)


@pytest.fixture
def scenario(tmp_path):
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO)
    return str(path)


def test_dotdot_name_deletes_nothing_outside_the_state_root(tmp_path):
    """The issue's repro: `down --name a/..` emptied MINIKP_STATE_ROOT."""
    root = tmp_path / "sr"
    (root / "a").mkdir(parents=True)
    (root / "other").mkdir()
    (root / "other" / "canary").write_text("")
    env = {**os.environ, "MINIKP_STATE_ROOT": str(root)}
    for argv in (["down", "--name", "a/.."], ["down", "--name", "a/../.."],
                 ["up", str(tmp_path / "x.yaml"), "--name", "a/b"],
                 ["up", str(tmp_path / "x.yaml"), "--name", "x" * 250]):
        r = cli(*argv, env=env)
        assert r.returncode == 2, (argv, r.stderr)
        assert "must be a DNS-1123 label" in r.stderr and "Traceback" not in r.stderr
    assert (root / "other" / "canary").exists()
    assert sorted(os.listdir(root)) == ["a", "other"]


def test_down_of_a_cluster_that_does_not_exist_says_so():
    r = down("mkt-rn-nothing")
    assert r.returncode == 1
    assert 'cluster "mkt-rn-nothing" not found' in r.stderr and "deleted" not in r.stdout
    assert not os.path.exists(names.state_dir("mkt-rn-nothing"))


def test_crash_cycles_leave_nothing(scenario):
    name = "mkt-rn-crash"
    down(name)
    before = host_view()
    times = []
    for i in range(CRASH_CYCLES):
        seconds, left = crash_cycle(name, scenario)
        assert not any(left.values()), f"cycle {i + 1}: {left}"
        times.append(seconds)
    assert host_view() == before
    print(f"\n{CRASH_CYCLES} crash cycles, {sum(times) / len(times):.2f} s each")


def test_clusters_whose_names_extend_each_other_are_independent(scenario):
    """The issue's repro: `c5-node`'s up removed `c5`'s node namespaces
    (minikp-c5-node-node-1), and its down did the same."""
    short, longer = "mkt-rn-c5", "mkt-rn-c5-node"
    for n in (short, longer):
        down(n)
    try:
        for n in (short, longer):
            r = cli("up", scenario, "--name", n)
            assert r.returncode == 0, r.stderr
        both = {n: (netns_of(n), supervisor_pid(n)) for n in (short, longer)}
        assert not set(both[short][0]) & set(both[longer][0])
        for gone, kept in ((short, longer), (longer, short)):
            inodes = netns_inodes(gone)
            assert down(gone).returncode == 0
            assert not any(census(gone, inodes, both[gone][1]).values())
            assert netns_of(kept) == both[kept][0]  # every namespace of the other is there
            for argv in (["get", "pods"], ["rules", "node-1", "--table", "nat"],
                         ["exec", "node/node-1", "--", "true"], ["curl", "http://web/", "--from", "pod/sleeper", "-c", "3"],
                         ["scale", "deployment", "web", "--replicas", "3"]):
                r = cli(argv[0], "--name", kept, *argv[1:])
                assert r.returncode == 0, (kept, argv, r.stdout, r.stderr)
            r = cli("up", scenario, "--name", gone)  # and back
            assert r.returncode == 0, r.stderr
            both[gone] = (netns_of(gone), supervisor_pid(gone))
    finally:
        for n in (short, longer):
            down(n)


def test_down_racing_up_never_reports_what_did_not_happen(tmp_path):
    """The issue's repro: `up big.yaml & sleep 0.05; down` printed deleted, then the cluster
    came up. Triggers: the issue's 50 ms, the `up` holding the lock (loading its files), the
    supervisor building (the world namespace exists), the supervisor about to report."""
    name = "mkt-rn-race"
    down(name)
    path = tmp_path / "big.yaml"
    path.write_text(big_scenario(120))

    def after(seconds):
        return lambda: time.sleep(seconds)

    def when(cond):
        def wait():
            deadline = time.monotonic() + 30
            while not cond() and time.monotonic() < deadline:
                time.sleep(0.002)
        return wait

    locked = when(lambda: clusterlock.holder_role(name) in ("up", "supervisor"))
    building = when(lambda: os.path.exists(names.netns_path(names.world_netns(name))))
    # the state file is written just before the supervisor reports: down meets the report
    reporting = when(lambda: os.path.exists(os.path.join(names.state_dir(name), "state.json")))
    triggers = [after(0.05), locked, building, reporting, after(0.3)]  # each once; `make soak` races 20
    outcomes = [race_once(str(path), name, t) for t in triggers]
    print(f"\nraces: {outcomes}")
    for i, t in enumerate(triggers):  # once the up holds the lock, down must find it
        if t in (locked, building, reporting):
            assert outcomes[i] != "before", outcomes
    assert netns_of(name) == []
