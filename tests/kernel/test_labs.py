"""Every lab in scenarios/ passes under `minikp test`, and a failing check fails the run."""

import functools
import glob
import os
import subprocess
import uuid

import pytest
import yaml

from conftest import minikp, netns_of

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LABS = sorted(glob.glob(os.path.join(ROOT, "scenarios", "*.yaml")))


def mode_not_enabled(lab):
    """The loader's refusal when a lab names a proxy mode that is not switched on yet
    (a mode lands before it is wired into the supervisor); None when the lab loads."""
    from minikp.errors import InputError
    from minikp.scenario.load import load_scenario
    try:
        load_scenario([lab])
    except InputError as e:
        if "not implemented" in str(e):
            return str(e)
    return None


def proxy_mode(lab: str) -> str:
    for doc in yaml.safe_load_all(open(lab)):
        if isinstance(doc, dict) and doc.get("kind") == "Cluster":
            return ((doc.get("spec") or {}).get("proxy") or {}).get("mode", "iptables")
    return "iptables"


@functools.cache
def ipvs_gaps() -> list[str]:
    from minikp.proxy.ipvs.kernel import missing
    name = f"minikp-test-labs-probe-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        return missing(f"/run/netns/{name}")
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.mark.parametrize("lab", LABS, ids=[os.path.basename(p)[:-5] for p in LABS])
def test_lab_passes(lab):
    refused = mode_not_enabled(lab)
    if refused:
        pytest.skip(f"its proxy mode is not enabled in this build: {refused}")
    if proxy_mode(lab) == "ipvs" and ipvs_gaps():
        pytest.skip("an ipvs-mode lab; this kernel lacks " + "; ".join(ipvs_gaps()))
    name = "mkt-lab-" + os.path.basename(lab)[:-5][:12]
    r = minikp("test", lab, "--name", name, check=False, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert " 0 failed" in r.stdout
    assert netns_of(name) == []  # always torn down


def test_a_failing_check_fails_the_run(tmp_path):
    lab = tmp_path / "failing.yaml"
    lab.write_text(open(os.path.join(ROOT, "scenarios", "session-affinity.yaml")).read()
                   .replace("expect: {distinctBackends: 1, failures: 0}",
                            "expect: {distinctBackends: 3, failures: 0}"))
    r = minikp("test", str(lab), "--name", "mkt-lab-failing", check=False, timeout=300)
    assert r.returncode == 1
    assert "FAIL" in r.stdout and "1 failed" in r.stdout
    assert netns_of("mkt-lab-failing") == []
