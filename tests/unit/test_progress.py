"""`up`'s progress from the supervisor's events (issue 12 item 11)."""

from minikp.progress import Progress


def ev(kind, **fields):
    return {"type": kind, "message": "", **fields}


def test_phases_and_counts_advance_with_the_events():
    p = Progress()
    assert p.feed(ev("UpStarted", nodes=2, pods=3, dnsPods=1))
    assert p.line() == "[nodes] nodes 0/2, pods ready 0/3, proxies synced 0/2, DNS 0/1"
    p.feed(ev("NodesBuilt"))
    assert p.phase_done() == "nodes: 2 built" and p.phase_done() is None
    assert not p.feed(ev("PodCreated", pod="default/a"))
    p.feed(ev("PodReady", pod="kube-system/coredns-x"))
    p.feed(ev("PodReady", pod="default/a"))
    assert p.line() == "[pods] nodes 2/2, pods ready 2/3, proxies synced 0/2, DNS 1/1"
    p.feed(ev("PodReady", pod="default/b"))
    assert p.phase_done() == "pods: 3/3 ready"
    p.feed(ev("ProxySynced", node="node-1"))
    assert p.line() == "[proxies] nodes 2/2, pods ready 3/3, proxies synced 1/2, DNS 1/1"
    p.feed(ev("ProxySynced", node="node-2"))
    assert [p.phase_done(), p.phase_done()] == ["proxies: 2/2 synced", "DNS: 1/1 ready"]
    assert p.line().startswith("[done]")


def test_a_docker_pods_pull_is_shown_while_it_lasts():
    p = Progress()
    p.feed({"type": "UpStarted", "nodes": 1, "pods": 1})
    assert p.feed({"type": "Pulling", "image": "r:5000/app:v1"})
    assert p.line().endswith("pulling r:5000/app:v1")
    p.feed({"type": "Pulled", "message": 'pulled image "r:5000/app:v1" in 1.2s'})
    assert "pulling" not in p.line()
    assert p.phase_done() == 'image: pulled image "r:5000/app:v1" in 1.2s'
