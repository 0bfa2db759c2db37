"""The userspace proxier has every member of the Proxier protocol (minikp.proxy.base), so the
factory can register it with one line; building one touches no kernel state."""

import inspect

from minikp.proxy import base
from minikp.proxy.userspace.proxier import UserspaceProxier, UserspaceSyncResult
from minikp.scenario.model import ClusterConfig


def test_userspace_proxier_implements_the_protocol():
    members = {n for n in vars(base.Proxier) if not n.startswith("_")} | set(base.Proxier.__annotations__)
    assert not {m for m in members if not hasattr(UserspaceProxier, m)}
    assert inspect.ismethod(UserspaceProxier.from_config)
    assert issubclass(UserspaceSyncResult, base.SyncResult)


def test_settings_rebuild_an_equal_proxier_without_touching_the_kernel():
    p = UserspaceProxier.from_config("/nonexistent/netns", ClusterConfig())
    again = UserspaceProxier.from_config("/nonexistent/netns", ClusterConfig(**p.settings()))
    assert (again.backend, again.describe()) == (p.backend, p.describe()) == ("legacy", "userspace (legacy)")
    assert not p.flushed()  # never synced: nothing to lose, nothing run
    p.close()  # no loop acquired yet: nothing to release
