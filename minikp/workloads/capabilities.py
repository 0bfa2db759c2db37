"""Linux capabilities as a container runtime grants them. Pure: names, numbers, sets.

- CAPABILITIES: name (without CAP_) → number, as in <linux/capability.h>.
- DOCKER_DEFAULT: the 14 capabilities Docker and containerd give a container by default
  (moby's oci/caps/defaults.go): no SYS_ADMIN, NET_ADMIN, SYS_MODULE, SYS_PTRACE...
- normalize(name): "cap_net_admin" / "NET_ADMIN" → "NET_ADMIN"; None if unknown.
- container_capabilities(add, drop, privileged) → the set a container gets, in containerd's
  order (WithCapabilities): the defaults; add ALL → every capability; drop ALL → none; then
  the named adds; then the named drops (a drop wins over an add). privileged: every one.
- mask(caps): the bit mask for capset/the /proc/PID/status Cap* fields.
"""

from __future__ import annotations

CAPABILITIES = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5,
    "SETGID": 6, "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10,
    "NET_BROADCAST": 11, "NET_ADMIN": 12, "NET_RAW": 13, "IPC_LOCK": 14, "IPC_OWNER": 15,
    "SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_CHROOT": 18, "SYS_PTRACE": 19, "SYS_PACCT": 20,
    "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23, "SYS_RESOURCE": 24, "SYS_TIME": 25,
    "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28, "AUDIT_WRITE": 29, "AUDIT_CONTROL": 30,
    "SETFCAP": 31, "MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35,
    "BLOCK_SUSPEND": 36, "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}

DOCKER_DEFAULT = frozenset({
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
})

ALL = frozenset(CAPABILITIES)


def normalize(name: str) -> str | None:
    """A capability name as Kubernetes manifests write it (NET_ADMIN, also CAP_NET_ADMIN or
    lower case, as containerd accepts); "ALL" stays "ALL"; None when unknown."""
    n = name.strip().upper()
    n = n[4:] if n.startswith("CAP_") else n
    return n if n == "ALL" or n in CAPABILITIES else None


def container_capabilities(add=(), drop=(), privileged: bool = False) -> frozenset[str]:
    if privileged:
        return ALL
    add = {normalize(c) for c in add} - {None}
    drop = {normalize(c) for c in drop} - {None}
    caps = set(ALL if "ALL" in add else DOCKER_DEFAULT)
    if "ALL" in drop:
        caps = set()
    return frozenset((caps | (add - {"ALL"})) - drop)


def mask(caps) -> int:
    m = 0
    for c in caps:
        m |= 1 << CAPABILITIES[c]
    return m


def names_of(m: int) -> frozenset[str]:
    """The names in a mask (unknown high bits are ignored)."""
    return frozenset(n for n, bit in CAPABILITIES.items() if m >> bit & 1)
