"""The hostnames shape (3 serve_hostname pods behind a ClusterIP Service) under every proxy mode
this kernel runs: 60 requests from a pod reach all 3 pods, and `minikp rules` prints what that
mode programmed, with the kernel's own tool. (ipvs: in the VM tier, tests/kernel/test_ipvs*.py
and the ipvs labs.)"""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOSTNAMES = open(os.path.join(ROOT, "scenarios", "hostnames.yaml")).read()

EXPECT = {
    "nftables": ["table ip kube-proxy {", "numgen random mod 3", 'comment "rules for kube-proxy"'],
    "userspace": ["-A KUBE-PORTALS-CONTAINER", "-A KUBE-PORTALS-HOST", "-j REDIRECT --to-ports"],
    "iptables": ["-A KUBE-SVC-", "--probability 0.33333333349"],
}


@pytest.mark.parametrize("mode", sorted(EXPECT))
def test_hostnames_in_every_mode(cluster_factory, mode):
    c = cluster_factory(HOSTNAMES, name=f"mkt-mode-{mode[:5]}", args=("--proxy-mode", mode))
    answers = c.answers("pod/app=curl", "http://hostnames/", 60)
    assert len(answers) == 60 and not [a for a in answers if a.startswith("ERROR")], answers
    assert {a for a in answers} == {p["metadata"]["name"] for p in c.pods("hostnames-")}
    rules = c.cli("rules", "node-1").stdout
    for text in EXPECT[mode]:
        assert text in rules, f"{text!r} not in:\n{rules}"
