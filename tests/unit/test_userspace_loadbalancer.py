"""Round robin and ClientIP affinity as roundrobin.go (kube-proxy 1.25) does them; the cases
follow its roundrobin_test.go (rotation, endpoint changes, sticky clients, reset after a
failed connect, stale sessions)."""

import pytest

from minikp.proxy.userspace.loadbalancer import (CLIENT_IP, DEFAULT_AFFINITY_TTL_S, NONE, MissingEndpoints,
                                                 MissingService, RoundRobin)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def keep_order(lst):
    pass


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def lb(clock):
    return RoundRobin(clock=clock, shuffle=keep_order)


EPS = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]


def picks(lb, n, client="1.1.1.1", key="ns/svc"):
    return [lb.next_endpoint(key, client) for _ in range(n)]


def test_no_service_and_no_endpoints_are_errors(lb):
    with pytest.raises(MissingService):
        lb.next_endpoint("ns/svc", "1.1.1.1")
    lb.new_service("ns/svc", NONE, 0)
    with pytest.raises(MissingEndpoints):
        lb.next_endpoint("ns/svc", "1.1.1.1")


def test_rotation_over_three_endpoints(lb):
    lb.new_service("ns/svc", NONE, 0)
    lb.set_endpoints("ns/svc", EPS)
    assert picks(lb, 7) == EPS + EPS + EPS[:1]


def test_the_new_list_is_shuffled_and_the_index_reset(clock):
    lb = RoundRobin(clock=clock, shuffle=lambda lst: lst.reverse())
    lb.new_service("ns/svc", NONE, 0)
    lb.set_endpoints("ns/svc", EPS)
    assert picks(lb, 2) == EPS[::-1][:2]
    lb.set_endpoints("ns/svc", EPS + ["10.0.0.4:80"])  # a change: reshuffled, from the start
    assert picks(lb, 4) == ["10.0.0.4:80"] + EPS[::-1]


def test_an_unchanged_set_keeps_the_rotation(lb):
    lb.new_service("ns/svc", NONE, 0)
    lb.set_endpoints("ns/svc", EPS)
    assert picks(lb, 1) == EPS[:1]
    assert lb.set_endpoints("ns/svc", EPS[::-1]) is False  # same set, other order
    assert picks(lb, 2) == EPS[1:]


def test_no_endpoints_resets_the_port(lb):
    lb.new_service("ns/svc", CLIENT_IP, 60)
    lb.set_endpoints("ns/svc", EPS)
    picks(lb, 1)
    lb.set_endpoints("ns/svc", [])
    assert not lb.has_endpoints("ns/svc")
    lb.set_endpoints("ns/svc", EPS)
    assert picks(lb, 1, client="2.2.2.2") == EPS[:1]  # index back to 0


def test_client_ip_affinity_sticks_until_the_ttl(lb, clock):
    lb.new_service("ns/svc", CLIENT_IP, 10)
    lb.set_endpoints("ns/svc", EPS)
    assert picks(lb, 3, client="1.1.1.1") == [EPS[0]] * 3
    assert picks(lb, 2, client="2.2.2.2") == [EPS[1]] * 2
    clock.t += 9.9  # int(9.9) = 9 < 10: still sticky, and refreshed
    assert picks(lb, 1) == [EPS[0]]
    clock.t += 10.0  # 10 s since the last use
    assert picks(lb, 1) == [EPS[2]]  # a fresh pick from the rotation, now sticky
    assert picks(lb, 1) == [EPS[2]]


def test_affinity_reset_after_a_failed_connect_walks_the_rotation(lb):
    lb.new_service("ns/svc", CLIENT_IP, 0)
    lb.set_endpoints("ns/svc", EPS)
    assert lb.next_endpoint("ns/svc", "1.1.1.1") == EPS[0]
    # The dial to EPS[0] failed: the retry skips the sticky entry and records the new pick.
    assert lb.next_endpoint("ns/svc", "1.1.1.1", affinity_reset=True) == EPS[1]
    assert lb.next_endpoint("ns/svc", "1.1.1.1") == EPS[1]


def test_endpoints_that_leave_lose_their_sticky_clients(lb):
    lb.new_service("ns/svc", CLIENT_IP, 0)
    lb.set_endpoints("ns/svc", EPS)
    assert picks(lb, 1, client="1.1.1.1") == [EPS[0]]
    assert picks(lb, 1, client="2.2.2.2") == [EPS[1]]
    lb.set_endpoints("ns/svc", EPS[1:])
    assert lb.services["ns/svc"].sticky.keys() == {"2.2.2.2"}
    assert picks(lb, 1, client="2.2.2.2") == [EPS[1]]


def test_stale_sticky_sessions_are_cleaned(lb, clock):
    lb.new_service("ns/svc", CLIENT_IP, 5)
    lb.set_endpoints("ns/svc", EPS)
    picks(lb, 1, client="1.1.1.1")
    clock.t += 3
    picks(lb, 1, client="2.2.2.2")
    clock.t += 2.5  # 1.1.1.1 idle 5.5 s (>= 5), 2.2.2.2 idle 2.5 s
    lb.cleanup_stale_sticky_sessions()
    assert lb.services["ns/svc"].sticky.keys() == {"2.2.2.2"}


def test_ttl_zero_is_three_hours_and_new_service_keeps_the_first_ttl(lb):
    lb.new_service("ns/a", CLIENT_IP, 0)
    assert lb.services["ns/a"].ttl_s == DEFAULT_AFFINITY_TTL_S == 10800
    lb.new_service("ns/a", NONE, 60)  # upstream: only the type changes on an existing port
    assert (lb.services["ns/a"].affinity, lb.services["ns/a"].ttl_s) == (NONE, 10800)


def test_endpoints_before_the_service_create_a_port_without_affinity(lb):
    lb.set_endpoints("ns/svc", EPS)
    assert lb.services["ns/svc"].affinity == NONE
    lb.new_service("ns/svc", CLIENT_IP, 30)
    assert lb.services["ns/svc"].affinity == CLIENT_IP
    assert picks(lb, 2) == [EPS[0]] * 2


def test_ports_rotate_independently(lb):
    for key in ("ns/svc:a", "ns/svc:b"):
        lb.new_service(key, NONE, 0)
        lb.set_endpoints(key, EPS)
    assert picks(lb, 2, key="ns/svc:a") == EPS[:2]
    assert picks(lb, 1, key="ns/svc:b") == EPS[:1]
    lb.delete_service("ns/svc:a")
    with pytest.raises(MissingService):
        lb.next_endpoint("ns/svc:a", "1.1.1.1")
