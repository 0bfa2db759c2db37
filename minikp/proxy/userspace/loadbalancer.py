"""Round robin per service port with ClientIP affinity, as kube-proxy's userspace
LoadBalancerRR did it (pkg/proxy/userspace/roundrobin.go, 1.25). Pure: the clock and the
shuffle are passed in.

- An endpoint-set change (compared as sorted lists) shuffles the new list, resets the index
  to 0 and drops affinity entries pointing at endpoints that left; an unchanged set keeps
  the rotation where it was. No endpoints: the port is reset (list, index, affinity).
- next_endpoint returns list[index] and advances the index modulo the length. With ClientIP
  affinity an entry younger than the TTL (whole seconds, `int(age) < ttl`) wins and is
  refreshed; any other pick is recorded for the client. `affinity_reset` (set by the caller
  after a failed connect) skips the lookup, so retries walk the rotation.
- new_service on an existing port only changes the affinity type, never the TTL: upstream's
  NewService keeps the state the endpoints created. A TTL of 0 means 10800 s (3 h).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

DEFAULT_AFFINITY_TTL_S = 10800  # v1.DefaultClientIPServiceAffinitySeconds
NONE, CLIENT_IP = "None", "ClientIP"  # v1.ServiceAffinity


class MissingService(LookupError):
    """ErrMissingServiceEntry"""


class MissingEndpoints(LookupError):
    """ErrMissingEndpoints"""


@dataclass
class _Sticky:
    endpoint: str
    last_used: float


@dataclass
class _Balancer:
    affinity: str
    ttl_s: int
    endpoints: list[str] = field(default_factory=list)
    index: int = 0
    sticky: dict[str, _Sticky] = field(default_factory=dict)  # client IP -> entry


class RoundRobin:
    def __init__(self, *, clock=time.monotonic, shuffle=random.shuffle) -> None:
        self.clock, self.shuffle = clock, shuffle
        self.services: dict[str, _Balancer] = {}

    def _state(self, key: str, affinity: str = "", ttl_s: int = 0) -> _Balancer:
        """newServiceInternal."""
        ttl_s = ttl_s or DEFAULT_AFFINITY_TTL_S
        state = self.services.get(key)
        if state is None:
            state = self.services[key] = _Balancer(affinity or NONE, ttl_s)
        elif affinity:
            state.affinity = affinity
        return state

    def new_service(self, key: str, affinity: str, ttl_s: int) -> None:
        self._state(key, affinity, ttl_s)

    def delete_service(self, key: str) -> None:
        self.services.pop(key, None)

    def set_endpoints(self, key: str, endpoints: list[str]) -> bool:
        """OnEndpointsUpdate for one port; True when the rotation was reset."""
        state = self.services.get(key)
        if not endpoints:
            if state is not None:  # resetService
                state.endpoints, state.index, state.sticky = [], 0, {}
            return state is not None
        if state is not None and sorted(state.endpoints) == sorted(endpoints):
            return False
        if state is not None:  # removeStaleAffinity
            keep = set(endpoints)
            state.sticky = {ip: s for ip, s in state.sticky.items() if s.endpoint in keep}
        state = self._state(key)
        state.endpoints = list(endpoints)
        self.shuffle(state.endpoints)
        state.index = 0
        return True

    def has_endpoints(self, key: str) -> bool:
        state = self.services.get(key)
        return bool(state and state.endpoints)

    def next_endpoint(self, key: str, client_ip: str, affinity_reset: bool = False) -> str:
        state = self.services.get(key)
        if state is None:
            raise MissingService(key)
        if not state.endpoints:
            raise MissingEndpoints(key)
        sticky = state.affinity == CLIENT_IP
        now = self.clock()
        if sticky and not affinity_reset:
            entry = state.sticky.get(client_ip)
            if entry is not None and int(now - entry.last_used) < state.ttl_s:
                entry.last_used = now
                return entry.endpoint
        endpoint = state.endpoints[state.index]
        state.index = (state.index + 1) % len(state.endpoints)
        if sticky:
            state.sticky[client_ip] = _Sticky(endpoint, now)
        return endpoint

    def cleanup_stale_sticky_sessions(self) -> None:
        """CleanupStaleStickySessions for every port (each sync does this)."""
        now = self.clock()
        for state in self.services.values():
            state.sticky = {ip: s for ip, s in state.sticky.items() if int(now - s.last_used) < state.ttl_s}
