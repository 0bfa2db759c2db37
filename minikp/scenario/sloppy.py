"""IP addresses as kube-proxy reads them from a real cluster: k8s.io/utils/net ParseIPSloppy
and ParseCIDRSloppy (pure).

Go 1.17 stopped accepting IPv4 fields with leading zeros; objects stored before then may still
carry them (`010.096.000.001`), so Kubernetes keeps Go 1.16's parser: each field is read as
DECIMAL, any number of leading zeros allowed (never octal: `010` is ten), at most 255.
  parse_ip(s)   -> "10.96.0.1", or None when not an address at all
  parse_cidr(s) -> "10.244.1.0/24" (the network, as net.ParseCIDR's IPNet), or None
IPv6 text goes to Python's parser unchanged (its legacy forms are not what dumps carry)."""

from __future__ import annotations

import ipaddress


def _decimal(field: str) -> int | None:
    # Go 1.16 dtoi: one or more ASCII digits, value checked by the caller
    if not field or not field.isascii() or not field.isdigit():
        return None
    return int(field)


def parse_ip(s: str) -> str | None:
    if not isinstance(s, str):
        return None
    if ":" in s:
        try:
            return str(ipaddress.IPv6Address(s))
        except ValueError:
            return None
    fields = s.split(".")
    if len(fields) != 4:
        return None
    octets = [_decimal(f) for f in fields]
    if any(o is None or o > 255 for o in octets):
        return None
    return ".".join(str(o) for o in octets)


def parse_cidr(s: str) -> str | None:
    if not isinstance(s, str):
        return None
    addr, sep, bits = s.partition("/")
    ip = parse_ip(addr)
    n = _decimal(bits)
    if not sep or ip is None or n is None or n > (128 if ":" in ip else 32):
        return None
    return str(ipaddress.ip_network(f"{ip}/{n}", strict=False))
