"""minikp.proxy.portindex: the changed service ports, by identity first, then by value."""

from dataclasses import replace

from minikp.proxy.portindex import PortIndex
from minikp.proxy.snapshot import Endpoint as E, ServicePortInfo as SP


def key(sp):
    return (sp.namespace, sp.name, sp.port_name, sp.protocol)


def ports(n):
    return tuple(SP("default", f"s{i}", "", "TCP", f"10.96.0.{i}", 80, endpoints=(E(f"10.244.0.{i}", 80),))
                 for i in range(n))


def test_reset_reports_every_port_of_both():
    idx = PortIndex(key)
    a = ports(3)
    assert sorted(c[0][1] for c in idx.reset(a)) == ["s0", "s1", "s2"]
    got = idx.reset(a[:1])
    assert {(k[1], old is not None, new is not None) for k, old, new in got} == {
        ("s0", True, True), ("s1", True, False), ("s2", True, False)}


def test_one_endpoint_change_in_place_is_the_only_change():
    idx = PortIndex(key)
    a = ports(100)
    idx.reset(a)
    changed = replace(a[42], endpoints=())
    b = a[:42] + (changed,) + a[43:]
    assert idx.update(b) == [(key(a[42]), a[42], changed)]
    assert idx.ports[key(a[42])] is changed
    assert idx.update(b) == []


def test_added_and_removed_ports_by_id_difference():
    idx = PortIndex(key)
    a = ports(5)
    idx.reset(a)
    extra = SP("default", "new", "", "UDP", "10.96.1.1", 53)
    b = a[:2] + a[3:] + (extra,)  # s2 gone, "new" came: same length, positions shifted
    assert sorted((k[1], old, new) for k, old, new in idx.update(b)) == [("new", None, extra), ("s2", a[2], None)]
    c = b + (SP("default", "x", "", "TCP", "10.96.1.2", 80),)
    assert [k[1] for k, _, _ in idx.update(c)] == ["x"]
    assert set(idx.ports) == {key(sp) for sp in c}


def test_rebuilt_but_equal_objects_are_not_changes():
    idx = PortIndex(key)
    a = ports(4)
    idx.reset(a)
    rebuilt = tuple(replace(sp) for sp in a)
    rebuilt = rebuilt[:1] + (replace(a[1], port=81),) + rebuilt[2:]
    assert [(k[1], new.port) for k, _, new in idx.update(rebuilt)] == [("s1", 81)]


def test_differing_positions_shared_and_rebuilt():
    from minikp.proxy.portindex import _differing
    a = ports(300)
    b = list(a)
    for i in (0, 17, 18, 150, 299):
        b[i] = replace(a[i], port=99)
    assert _differing(a, tuple(b)) == [0, 17, 18, 150, 299]
    c = list(a)
    c[200] = replace(a[200], port=99)
    assert _differing(a, tuple(c)) == [200]  # shared objects: the halving path
    rebuilt = tuple(replace(sp) for sp in a)
    assert _differing(a, rebuilt) == list(range(300))  # rebuilt: every position, compared by value later
    assert _differing((), ()) == []


def test_mostly_rebuilt_snapshot_takes_the_by_key_pass():
    idx = PortIndex(key)
    a = ports(10)
    idx.reset(a)
    b = tuple(replace(sp) for sp in a[1:]) + (replace(a[0], port=81),)  # reordered, all rebuilt
    assert [(k[1], new.port) for k, _, new in idx.update(b)] == [("s0", 81)]
    assert idx.update(b[:-1]) == [(key(a[0]), b[-1], None)]
