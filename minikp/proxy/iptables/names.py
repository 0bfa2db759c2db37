"""kube-proxy's chain names: KUBE-SVC/SVL/EXT/FW-<hash> per service port and
KUBE-SEP-<hash> per endpoint (pkg/proxy/iptables/proxier.go portProtoHash and
servicePortEndpointChainName). hash = base32(sha256(parts))[:16], parts joined with no
separator."""

from __future__ import annotations

import base64
import functools
import hashlib

from minikp.proxy.snapshot import Endpoint, ServicePortInfo, endpoint_string

SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-",
                          "KUBE-XLB-")  # XLB: before 1.24


@functools.lru_cache(maxsize=1 << 17)  # every sync names every chain again
def _hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def port_proto_hash(port_name: str, protocol: str) -> str:
    """Hash of "ns/name:port" + lower-case protocol, shared by SVC/SVL/EXT/FW chains."""
    return _hash(port_name + protocol.lower())


def svc_chain(sp: ServicePortInfo) -> str:
    return "KUBE-SVC-" + port_proto_hash(sp.port_name_string, sp.protocol)


def svl_chain(sp: ServicePortInfo) -> str:
    return "KUBE-SVL-" + port_proto_hash(sp.port_name_string, sp.protocol)


def ext_chain(sp: ServicePortInfo) -> str:
    return "KUBE-EXT-" + port_proto_hash(sp.port_name_string, sp.protocol)


def fw_chain(sp: ServicePortInfo) -> str:
    return "KUBE-FW-" + port_proto_hash(sp.port_name_string, sp.protocol)


def sep_hash(port_name: str, protocol: str, endpoint: str) -> str:
    """Hash of "ns/name:port" + lower-case protocol + "ip:port": the KUBE-SEP chain's."""
    return _hash(port_name + protocol.lower() + endpoint)


def sep_chain(sp: ServicePortInfo, ep: Endpoint) -> str:
    return "KUBE-SEP-" + sep_hash(sp.port_name_string, sp.protocol, endpoint_string(ep))


def is_service_chain(name: str) -> bool:
    """Chains kube-proxy garbage-collects from nat when no service needs them."""
    return name.startswith(SERVICE_CHAIN_PREFIXES)
