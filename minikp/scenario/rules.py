"""Kubernetes' own validation rules (apimachinery's validation package), as functions that
return what is wrong, or None. The messages say what is valid, as the API server's do."""

from __future__ import annotations

import ipaddress
import re

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")

PROTOCOLS = ("TCP", "UDP", "SCTP")
REPR = "'"  # show()'s quote for repr style
SHOWN_CHARS = 80  # a bad value longer than this is cut in messages


def show(v, quote: str = '"') -> str:
    """A value as a message shows it: a string in `quote`s (REPR: Python's repr), anything else as
    its repr, cut to SHOWN_CHARS."""
    if isinstance(v, str):
        text = repr(v) if quote == "'" else f"{quote}{v}{quote}"
    else:
        text, quote = repr(v), ""
    if len(text) <= SHOWN_CHARS:
        return text
    length = f"{len(v)} characters" if isinstance(v, str) else f"{len(text)} characters as text"
    return f"{text[:SHOWN_CHARS - 20]}...{quote} ({length})"


def shorten(message: str) -> str:
    """A message with every overlong word cut (a value echoed by code that did not use show)."""
    return re.sub(r"\S{%d,}" % (SHOWN_CHARS + 40), lambda m: show(m.group(), quote=""), message)
NODE_PORT_RANGE = (30000, 32767)


def dns1123_label(v) -> str | None:
    if not isinstance(v, str) or len(v) > 63 or not _DNS1123_LABEL.match(v):
        return (f'{show(v)}: must be a lowercase RFC 1123 label: at most 63 characters of a-z, 0-9 '
                "and '-', starting and ending with a letter or digit")
    return None


def dns1123_subdomain(v) -> str | None:
    if not isinstance(v, str) or len(v) > 253 or not _DNS1123_SUBDOMAIN.match(v):
        return (f'{show(v)}: must be a lowercase RFC 1123 subdomain: labels of a-z, 0-9 and \'-\' '
                "joined by '.', each starting and ending with a letter or digit")
    return None


def dns1035_label(v) -> str | None:
    if not isinstance(v, str) or len(v) > 63 or not _DNS1035_LABEL.match(v):
        return (f'{show(v)}: a Service name must be an RFC 1035 label: at most 63 characters of '
                "a-z, 0-9 and '-', starting with a letter and ending with a letter or digit")
    return None


def label_key(k) -> str | None:
    if not isinstance(k, str):
        return f"{show(k, REPR)}: a label key must be a string"
    prefix, _, name = k.rpartition("/")
    if prefix and dns1123_subdomain(prefix):
        return f'{show(k)}: the prefix must be a DNS subdomain (e.g. example.com/name)'
    if len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (f'{show(k)}: a label key is an optional DNS prefix and "/" then at most 63 '
                "characters of A-Z, a-z, 0-9, '-', '_' and '.', starting and ending alphanumeric")
    return None


def label_value(v) -> str | None:
    if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE.match(v):
        return (f"{show(v, REPR)}: a label value is a string of at most 63 characters of A-Z, a-z, "
                "0-9, '-', '_' and '.', starting and ending alphanumeric (quote numbers)")
    return None


def port_number(v) -> str | None:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 65535:
        return f"{show(v, REPR)}: must be a port number between 1 and 65535, inclusive"
    return None


def port_name(v) -> str | None:
    """IANA_SVC_NAME: what containerPort names and named targetPorts must be."""
    if (not isinstance(v, str) or len(v) > 15 or not _IANA_SVC_NAME.match(v)
            or "--" in v or not re.search(r"[a-z]", v)):
        return (f'{show(v)}: a port name is at most 15 characters of a-z, 0-9 and \'-\', with at '
                "least one letter, no '--', not starting or ending with '-'")
    return None


def protocol(v) -> str | None:
    if v not in PROTOCOLS:
        return f'{show(v)}: supported values: "TCP", "UDP", "SCTP"'
    return None


def one_of(v, values) -> str | None:
    if v not in values:
        return f'{show(v)}: supported values: ' + ", ".join(f'"{x}"' for x in values)
    return None


def ipv4(v) -> str | None:
    try:
        ipaddress.IPv4Address(v)
    except (ipaddress.AddressValueError, ValueError):
        return f'{show(v)}: must be a valid IPv4 address (e.g. 10.9.8.7)'
    return None


def cidr(v) -> str | None:
    try:
        ipaddress.IPv4Network(v, strict=True)
    except (ipaddress.AddressValueError, ValueError):
        return f'{show(v)}: must be an IPv4 network in CIDR notation with no host bits (e.g. 10.0.0.0/16)'
    return None


def dns_name(v) -> str | None:
    """A host name clients answer to (ExternalName targets): a DNS-1123 subdomain."""
    if not isinstance(v, str) or dns1123_subdomain(v.rstrip(".")):
        return f'{show(v)}: must be a DNS name such as db.example.test'
    return None
