"""The proxy-mode seam: one factory, and every registered mode implements the protocol."""

import importlib
import inspect

import pytest

from minikp.errors import InputError
from minikp.proxy import base
from minikp.scenario.model import ClusterConfig


def test_unknown_mode_is_refused_naming_the_available_ones():
    with pytest.raises(InputError) as e:
        base.new_proxier("userspace", "/nonexistent", ClusterConfig())
    assert e.value.exit_code == 2
    assert '"userspace" is not implemented' in str(e.value) and "iptables" in str(e.value)


def _protocol_members() -> set[str]:
    return {n for n in vars(base.Proxier) if not n.startswith("_")} | set(base.Proxier.__annotations__)


@pytest.mark.parametrize("mode", sorted(base.MODES))
def test_every_mode_implements_the_protocol(mode):
    module, _, name = base.MODES[mode].partition(":")
    cls = getattr(importlib.import_module(module), name)
    missing = {m for m in _protocol_members() if not hasattr(cls, m)}
    assert not missing, f"{cls.__name__} lacks {sorted(missing)}"
    assert inspect.ismethod(cls.from_config)  # a classmethod: new_proxier's constructor
    assert cls.formats, "at least one --format"
    for m in ("sync", "flushed", "rules_text", "counters", "hits", "describe", "settings", "close"):
        assert callable(getattr(cls, m))
