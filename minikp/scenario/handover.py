"""A loaded, validated scenario handed from the CLI's process to the supervisor's, so that
each `up` and each `apply` loads and validates its files once: pickled into a file in the
cluster's state directory, read back and removed by the supervisor. Only files in that
directory are taken (it is root's, like the control socket that names them).

- hand_over(cluster, scenario, what) -> path
- take_over(cluster, path) -> Scenario
"""

from __future__ import annotations

import os
import pickle
import tempfile

from minikp import names
from minikp.errors import InputError
from minikp.scenario.model import Scenario


def hand_over(cluster: str, scenario: Scenario, what: str) -> str:
    fd, path = tempfile.mkstemp(prefix=f"{what}-", suffix=".scenario", dir=names.state_dir(cluster))
    with os.fdopen(fd, "wb") as f:
        pickle.dump(scenario, f, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def take_over(cluster: str, path: str) -> Scenario:
    if os.path.dirname(os.path.realpath(path)) != os.path.realpath(names.state_dir(cluster)):
        raise InputError(f"{path}: a handed-over scenario must be in the cluster's state "
                         "directory")
    try:
        with open(path, "rb") as f:
            scenario = pickle.load(f)
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    if not isinstance(scenario, Scenario):
        raise InputError(f"{path}: not a handed-over scenario")
    return scenario
