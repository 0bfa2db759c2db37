"""kube-proxy 1.33's nftables object names (pkg/proxy/nftables/proxier.go hashAndTruncate,
servicePortChainNameBase, servicePortEndpointChainNameBase).

A service port's base is "ns/name/proto/portName" (lower-case proto; an unnamed port leaves a
trailing "/"), an endpoint's "…__epIP/epPort" (an IPv6 address with ":" turned into ".", since
nftables names may not hold ":"). Both become HASH-base, HASH = the first 8 characters of
base32(sha256(base)), cut to 237 characters + "..." past 240 (knftables NameLengthMax 256 minus
the longest prefix, 16). Prefixes: service- (Cluster policy), local-, external-, firewall-,
endpoint-; affinity- names a set. Service chains are the only ones with a "/" in their name.
"""

from __future__ import annotations

import base64
import functools
import hashlib

from minikp.proxy.snapshot import Endpoint, ServicePortInfo

NAME_LENGTH_MAX = 256  # knftables.NameLengthMax
BASE_LENGTH_MAX = NAME_LENGTH_MAX - 16  # chainNameBaseLengthMax
AFFINITY_PREFIX = "affinity-"


@functools.lru_cache(maxsize=1 << 17)  # every full sync names every chain again
def hash_and_truncate(name: str) -> str:
    digest = base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()
    out = digest[:8] + "-" + name
    return out[:BASE_LENGTH_MAX - 3] + "..." if len(out) > BASE_LENGTH_MAX else out


def service_base(sp: ServicePortInfo) -> str:
    return hash_and_truncate(f"{sp.namespace}/{sp.name}/{sp.protocol.lower()}/{sp.port_name}")


def endpoint_base(sp: ServicePortInfo, ep: Endpoint) -> str:
    ip = ep.ip.replace(":", ".")
    return hash_and_truncate(f"{sp.namespace}/{sp.name}/{sp.protocol.lower()}/{sp.port_name}__{ip}/{ep.port}")


def service_chain(sp: ServicePortInfo) -> str:
    return "service-" + service_base(sp)


def local_chain(sp: ServicePortInfo) -> str:
    return "local-" + service_base(sp)


def external_chain(sp: ServicePortInfo) -> str:
    return "external-" + service_base(sp)


def firewall_chain(sp: ServicePortInfo) -> str:
    return "firewall-" + service_base(sp)


def endpoint_chain(sp: ServicePortInfo, ep: Endpoint) -> str:
    return "endpoint-" + endpoint_base(sp, ep)


def affinity_set(sp: ServicePortInfo, ep: Endpoint) -> str:
    return AFFINITY_PREFIX + endpoint_base(sp, ep)


def is_service_chain(name: str) -> bool:
    return "/" in name


def is_affinity_set(name: str) -> bool:
    return name.startswith(AFFINITY_PREFIX)
