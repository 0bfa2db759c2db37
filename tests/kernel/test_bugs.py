"""The catalogue of reproduced upstream kube-proxy bugs: every scenarios/bugs/*.yaml passes
under `minikp test` (each shows the modelled release's behaviour, bug or fix)."""

import glob
import os

import pytest

from conftest import minikp, netns_of

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUGS = sorted(glob.glob(os.path.join(ROOT, "scenarios", "bugs", "*.yaml")))


@pytest.mark.parametrize("bug", BUGS, ids=[os.path.basename(p)[:-5] for p in BUGS])
def test_bug_scenario_shows_the_modelled_release(bug):
    name = "mkt-bug-" + os.path.basename(bug).split("-")[0]
    r = minikp("test", bug, "--name", name, check=False, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert " 0 failed" in r.stdout
    assert netns_of(name) == []
