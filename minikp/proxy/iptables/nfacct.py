"""nfacct counters, as kube-proxy creates them on a full sync (pkg/proxy/util/nfacct):
one NFNL_MSG_ACCT_NEW netlink request per counter, sent from inside the node's namespace
(nfacct objects are per network namespace). No nfacct binary is needed.

ensure(netns_path, names) -> bool: True when every counter exists afterwards; False when
the kernel has no nfnetlink_acct (kube-proxy then writes its rules without `-m nfacct`).
"""

from __future__ import annotations

import errno
import socket
import struct

from minikp.nsenter import in_netns

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ACCT = 7
NFNL_MSG_ACCT_NEW = 0
NFACCT_NAME = 1
NLM_F_REQUEST, NLM_F_ACK, NLM_F_CREATE = 0x1, 0x4, 0x400
NLMSG_ERROR = 2


def _attr(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _request(name: str, seq: int) -> bytes:
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, 0) + _attr(NFACCT_NAME, name.encode() + b"\0")
    kind = (NFNL_SUBSYS_ACCT << 8) | NFNL_MSG_ACCT_NEW
    return struct.pack("=IHHII", 16 + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE, seq, 0) + body


def ensure(netns_path: str, names: tuple[str, ...]) -> bool:
    try:
        with in_netns(netns_path):  # a netlink socket stays in the netns it was made in
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    except OSError:
        return False
    try:
        sock.settimeout(2.0)
        sock.bind((0, 0))
        for seq, name in enumerate(names, 1):
            sock.send(_request(name, seq))
            reply = sock.recv(65536)
            kind = struct.unpack_from("=H", reply, 4)[0]
            if kind != NLMSG_ERROR:
                return False
            err = -struct.unpack_from("=i", reply, 16)[0]
            # An existing counter answers EBUSY (EEXIST with NLM_F_EXCL): both are fine.
            if err not in (0, errno.EBUSY, errno.EEXIST):
                return False
        return True
    except OSError:
        return False
    finally:
        sock.close()
