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


def test_open_files_limit_is_raised_never_lowered():
    import resource
    from minikp.proxy.userspace.proxier import raise_open_files_limit
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    raise_open_files_limit(before[0])  # already there: unchanged
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == before
    raise_open_files_limit(before[0] - 1)  # lower: unchanged
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == before


def test_open_files_limit_is_raised_in_a_process_that_has_too_few():
    import subprocess
    import sys
    code = ("import resource; from minikp.proxy.userspace.proxier import raise_open_files_limit as r; "
            "h = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; "
            "resource.setrlimit(resource.RLIMIT_NOFILE, (256, h)); r(min(1000, h)); "
            "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], min(1000, h))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == out[1]
