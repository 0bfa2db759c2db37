"""How a Deployment replaces its pods when its template changes (pure): the strategy's
budgets resolved against the replicas, and the rounds of a rollout.

Rounds are (start, stop): start that many new pods and wait until they are Ready, then
stop that many old ones (they leave every node's endpoints before their workload ends).
Each round keeps the Deployment controller's two bounds: at most replicas + maxSurge pods,
and at least replicas - maxUnavailable of them Ready.
"""

from __future__ import annotations

import math

from minikp.scenario.model import DeploymentStrategy


def scaled(value: int | str, replicas: int, round_up: bool) -> int:
    """An int, or "N%" of the replicas rounded as Kubernetes' GetScaledValueFromIntOrPercent."""
    if isinstance(value, int):
        return value
    exact = int(value.rstrip("%")) * replicas / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def budgets(strategy: DeploymentStrategy, replicas: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) in pods: surge rounds up, unavailable down; both 0 would
    never progress, so unavailable becomes 1 (ResolveFenceposts)."""
    surge = scaled(strategy.max_surge, replicas, True)
    unavailable = scaled(strategy.max_unavailable, replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def rounds(strategy: DeploymentStrategy, old: int, replicas: int) -> list[tuple[int, int]]:
    """The (start, stop) rounds that take `old` pods of the old template to `replicas` pods
    of the new one."""
    if strategy.type == "Recreate":  # every old pod goes, then the new ones come
        return [(0, old), (replicas, 0)] if old else [(replicas, 0)]
    surge, unavailable = budgets(strategy, replicas)
    new, out = 0, []
    while new < replicas or old:
        start = max(0, min(replicas - new, replicas + surge - (new + old)))
        new += start
        # every pod is Ready once started: stop old ones down to replicas - unavailable
        stop = max(0, min(old, new + old - (replicas - unavailable)))
        old -= stop
        if not start and not stop:
            raise AssertionError("a rollout round made no progress")  # budgets forbid it
        out.append((start, stop))
    return out
