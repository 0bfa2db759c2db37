"""kube-proxy's chain names: KUBE-SVC/SVL/EXT/FW-<hash> per service port and
KUBE-SEP-<hash> per endpoint (pkg/proxy/iptables/proxier.go portProtoHash and
servicePortEndpointChainName). hash = base32(sha256(parts))[:16], parts joined with no
separator."""

from __future__ import annotations

import functools
import hashlib

from minikp.proxy.snapshot import Endpoint, ServicePortInfo, endpoint_string

SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-",
                          "KUBE-XLB-")  # XLB: before 1.24


# base32's alphabet, two letters (10 bits) at a time: base64.b32encode is pure Python and
# took most of a cold render's naming time, for the 16 letters kept.
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648
_PAIRS = [a + b for a in _B32 for b in _B32]


@functools.lru_cache(maxsize=1 << 17)  # every sync names every chain again
def _hash(text: str) -> str:
    """base32(sha256(text))[:16]: the first 80 bits, 5 to a letter."""
    n = int.from_bytes(hashlib.sha256(text.encode()).digest()[:10], "big")
    p = _PAIRS
    return (p[n >> 70] + p[n >> 60 & 1023] + p[n >> 50 & 1023] + p[n >> 40 & 1023]
            + p[n >> 30 & 1023] + p[n >> 20 & 1023] + p[n >> 10 & 1023] + p[n & 1023])


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
