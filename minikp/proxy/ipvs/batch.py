"""Many netlink requests in a few send() calls, each acknowledged, on a plain socket made in a
node's namespace.

Why: a full sync adds one virtual server per service port and frontend, five real servers
each, and as many set entries and addresses; through pyroute2's per-call API each request
is a round trip through its asyncio machinery and generic encoder (~0.2 ms here, ~10 ms in
the VM tier). The messages come from struct encoders (wire, rtnl); here they are sent
CHUNK requests per send, and the acknowledgements matched back by sequence number.

Batch(netns_path, protocol).run([(encode(seq) -> bytes, label), ...], tolerate={errno})
-> [(label, errno)] of the requests that failed with an errno not tolerated;
.dump(encode) -> the reply messages (whole, header included) of one dump request, or
OSError(errno) when the kernel refuses it.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct

from minikp.nsenter import in_netns

NLMSG_ERROR, NLMSG_DONE = 2, 3
CHUNK = 200  # requests per send: their acks (>= 36 bytes each) stay far below the receive buffer
SO_RCVBUFFORCE = 33


class Batch:
    def __init__(self, netns_path: str, protocol: int) -> None:
        with in_netns(netns_path):
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
        self.sock.bind((0, 0))
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20)
        except OSError:
            pass
        self.seq = itertools.count(1)

    def close(self) -> None:
        self.sock.close()

    def run(self, requests, tolerate: frozenset[int] | set[int] = frozenset()) -> list[tuple[object, int]]:
        failed: list[tuple[object, int]] = []
        requests = list(requests)
        for start in range(0, len(requests), CHUNK):
            labels: dict[int, object] = {}
            data = bytearray()
            for build, label in requests[start:start + CHUNK]:
                seq = next(self.seq)
                labels[seq] = label
                data += build(seq)
            self.sock.send(data)
            while labels:
                reply = self.sock.recv(1 << 20)
                offset = 0
                while offset + 16 <= len(reply):
                    length, kind, _flags, seq = struct.unpack_from("=IHHI", reply, offset)
                    if kind == NLMSG_ERROR and seq in labels:
                        err = -struct.unpack_from("=i", reply, offset + 16)[0]
                        label = labels.pop(seq)
                        if err and err not in tolerate:
                            failed.append((label, err))
                    offset += (length + 3) & ~3
                    if length == 0:
                        break
        return failed

    def dump(self, build) -> list[bytes]:
        seq = next(self.seq)
        self.sock.send(build(seq))
        out: list[bytes] = []
        while True:
            reply = self.sock.recv(1 << 20)
            offset = 0
            while offset + 16 <= len(reply):
                length, kind, _flags, got = struct.unpack_from("=IHHI", reply, offset)
                if length < 16:
                    return out
                if got == seq:
                    if kind == NLMSG_DONE:
                        return out
                    if kind == NLMSG_ERROR:
                        err = -struct.unpack_from("=i", reply, offset + 16)[0]
                        if err:
                            raise OSError(err, os.strerror(err))
                        return out
                    out.append(reply[offset:offset + length])
                offset += (length + 3) & ~3
