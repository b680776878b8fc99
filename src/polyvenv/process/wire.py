"""Frames on the socket between the host and a worker: a fixed header, then a pickle.

A frame is a header (kind, request id, chain, payload length, how many large
buffers), the large buffers' places in shared memory (buffers.py), then the
payload. A new shared memory segment's file descriptor rides as SCM_RIGHTS on
the payload's first byte, sent apart from the header, so a plain header read
never meets it.

It uses ``_socket`` rather than ``socket``: the worker starts ~10 ms sooner
without ``socket``'s imports (enum, selectors), and the C type has every
method needed here.
"""

from __future__ import annotations

import _socket
import array
import struct
import threading

HEADER = struct.Struct("<BqqQI")  # kind, request id, chain, payload length, buffer count
PLACE = struct.Struct("<IQQ")  # segment, offset, length
REQUEST, REPLY, ERROR, HELLO = 1, 2, 3, 4
WITH_FD = 0x80
_WAITALL = _socket.MSG_WAITALL
_FD_SPACE = _socket.CMSG_SPACE(array.array("i").itemsize)


class Closed(Exception):
    """The peer is gone: the socket reached its end, or broke."""


class Wire:
    """Whole frames in, whole frames out; sending is thread-safe, reading is one thread's at a time."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.midframe = False  # a read stopped inside a frame: the stream can no longer be trusted
        self._send_lock = threading.Lock()

    def send(self, kind: int, rid: int, chain: int, payload: bytes, places: list = (),
             fd: int | None = None) -> None:
        head = HEADER.pack(kind | (WITH_FD if fd is not None else 0), rid, chain, len(payload), len(places))
        if places:
            head += b"".join(PLACE.pack(*p) for p in places)
        try:
            with self._send_lock:
                if fd is not None:
                    self.sock.sendall(head)
                    sent = self.sock.sendmsg([payload], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                                          array.array("i", [fd]))])
                    if sent < len(payload):
                        self.sock.sendall(memoryview(payload)[sent:])
                elif len(payload) < 65536:
                    self.sock.sendall(head + payload)  # one syscall for the small messages that dominate
                else:
                    self.sock.sendall(head)
                    self.sock.sendall(payload)
        except OSError as e:
            raise Closed(str(e)) from None

    def recv(self) -> tuple[int, int, int, list, bytes, int | None]:
        """The next frame: (kind, request id, chain, places, payload, fd or None)."""
        head = self._exactly(HEADER.size)
        self.midframe = True
        kind, rid, chain, size, count = HEADER.unpack(head)
        places = []
        if count:
            table = self._exactly(PLACE.size * count)
            places = [PLACE.unpack_from(table, i * PLACE.size) for i in range(count)]
        fd = None
        if kind & WITH_FD:
            kind &= ~WITH_FD
            payload, fd = self._with_fd(size)
        else:
            payload = self._exactly(size)
        self.midframe = False
        return kind, rid, chain, places, payload, fd

    def _exactly(self, n: int) -> bytes:
        try:
            data = self.sock.recv(n, _WAITALL)
        except OSError as e:
            raise Closed(str(e)) from None
        if len(data) == n:
            return data
        if not data:
            raise Closed("end of stream")
        self.midframe = True
        parts, got = [data], len(data)
        while got < n:
            more = self.sock.recv(n - got, _WAITALL)
            if not more:
                raise Closed("end of stream inside a frame")
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    def _with_fd(self, size: int) -> tuple[bytes, int | None]:
        data, ancillary, _flags, _addr = self.sock.recvmsg(size, _FD_SPACE, _WAITALL)
        if not data:
            raise Closed("end of stream inside a frame")
        fd = None
        for level, kind, raw in ancillary:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(raw[: len(raw) - len(raw) % fds.itemsize])
                fd = fds[0]
        if len(data) < size:
            data += self._exactly(size - len(data))
        return data, fd

    def close(self) -> None:
        """End the stream (a thread blocked reading it sees the end), then the socket."""
        try:
            self.sock.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
