"""A scenario loaded once: the CLI's load handed to the supervisor through the cluster's
state directory, read back once, and nothing from elsewhere taken."""

import pytest

from minikp import names
from minikp.errors import InputError
from minikp.scenario.handover import hand_over, take_over
from minikp.scenario.load import load_scenario


@pytest.fixture
def state_root(tmp_path, monkeypatch):
    monkeypatch.setattr(names, "STATE_ROOT", str(tmp_path))
    (tmp_path / "seams-h").mkdir()
    return tmp_path


def test_a_handed_over_scenario_comes_back_equal_and_once(state_root, tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
                 "spec: {selector: {app: web}, ports: [{port: 80}]}\n")
    loaded = load_scenario([str(f)])
    path = hand_over("seams-h", loaded, "up")
    assert path.startswith(str(state_root / "seams-h") + "/")
    assert take_over("seams-h", path) == loaded
    with pytest.raises(FileNotFoundError):  # read once: the file is gone
        take_over("seams-h", path)


def test_a_file_outside_the_clusters_state_directory_is_not_taken(state_root, tmp_path):
    stray = tmp_path / "elsewhere.scenario"
    stray.write_bytes(b"not read")
    with pytest.raises(InputError, match="must be in the cluster's state directory"):
        take_over("seams-h", str(stray))
    assert stray.read_bytes() == b"not read"
