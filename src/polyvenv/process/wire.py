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

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Sequence

HEADER = struct.Struct("<BqqQI")  # kind, request id, chain, payload length, buffer count
_HEAD = HEADER.size
_pack, _unpack_from = HEADER.pack, HEADER.unpack_from
PLACE = struct.Struct("<IQQ")  # segment, offset, length
REQUEST, REPLY, ERROR, HELLO, CANCEL = 1, 2, 3, 4, 5
WITH_FD = 0x80  # flags in the kind byte: a descriptor rides on the payload's first byte
NOTES = 0x40  # the payload is (notes, body): what the sender let go of (channel.py)
PURE = 0x20  # the payload is pure: plain data naming nothing (codec.py)
KIND = 0x1F  # the kind itself
_FD_SPACE = _socket.CMSG_SPACE(4 * array.array("i").itemsize)
_CLOEXEC = getattr(_socket, "MSG_CMSG_CLOEXEC", 0)  # a received descriptor is never inherited either
BUFFER = 1 << 18


class Closed(Exception):
    """The peer is gone: the socket reached its end, or broke."""


class Wire:
    """Whole frames in, whole frames out; sending is thread-safe, reading is one thread's at a time."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.midframe = False  # a read stopped inside a frame: the stream can no longer be trusted
        self._send_lock = threading.Lock()
        self._buffer = bytearray(BUFFER)
        self._view = memoryview(self._buffer)
        self._whole = [self._buffer]  # recvmsg_into's buffers when nothing is buffered
        self._recvmsg_into = sock.recvmsg_into
        self._sendall = sock.sendall
        self._start = self._end = 0
        self._fds: list[int] = []

    def send(self, kind: int, rid: int, chain: int, payload: bytes, places: list = (),
             fd: int | None = None) -> None:
        if places or fd is not None or len(payload) >= 65536:
            self._send_parts(kind, rid, chain, payload, places, fd)
            return
        message = _pack(kind, rid, chain, len(payload), 0) + payload  # one system call for most messages
        with self._send_lock:
            try:
                self._sendall(message)
            except OSError as e:
                raise Closed(str(e)) from None

    def _send_parts(self, kind: int, rid: int, chain: int, payload: bytes, places: list, fd: int | None) -> None:
        head = HEADER.pack(kind | (WITH_FD if fd is not None else 0), rid, chain, len(payload), len(places))
        if places:
            head += b"".join(PLACE.pack(*p) for p in places)
        with self._send_lock:
            try:
                if fd is not None:
                    self.sock.sendall(head)
                    sent = self.sock.sendmsg([payload], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                                          array.array("i", [fd]))])
                    if sent < len(payload):
                        self.sock.sendall(memoryview(payload)[sent:])
                elif len(payload) < 65536:
                    self.sock.sendall(head + payload)
                else:
                    self.sock.sendall(head)
                    self.sock.sendall(payload)
            except OSError as e:
                raise Closed(str(e)) from None

    def recv(self) -> tuple[int, int, int, Sequence[tuple], bytes, int | None]:
        """The next frame: (kind, request id, chain, places, payload, fd or None).

        Reads are buffered: one system call usually brings a whole small frame
        (or several). An interrupted read loses nothing: what came stays buffered.
        """
        start = self._start
        if start == self._end:  # nothing buffered, the usual case: read into the whole buffer
            try:
                n, ancillary, _flags, _addr = self._recvmsg_into(self._whole, _FD_SPACE, _CLOEXEC)
            except OSError as e:
                raise Closed(str(e)) from None
            if ancillary or not n:
                self._received(n, ancillary)
            self._start = start = 0
            self._end = end = n
        else:
            end = self._end
        if end - start >= _HEAD:
            kind, rid, chain, size, count = _unpack_from(self._buffer, start)
            stop = start + _HEAD + size
            if stop <= end and not count and not kind & WITH_FD:  # a small frame, all here: most of them
                self._start = stop
                return kind, rid, chain, (), self._buffer[start + _HEAD:stop], None
        return self._recv_in_parts()

    def _recv_in_parts(self) -> tuple[int, int, int, Sequence[tuple], bytes, int | None]:
        """``recv`` for a frame not all buffered, or with large buffers or a descriptor."""
        self._fill(_HEAD)
        kind, rid, chain, size, count = HEADER.unpack_from(self._buffer, self._start)
        table = HEADER.size + PLACE.size * count
        if table + size <= len(self._buffer):
            self._fill(table + size)
        else:
            self._fill(table)
        places = [PLACE.unpack_from(self._buffer, self._start + HEADER.size + i * PLACE.size)
                  for i in range(count)]
        if table + size <= len(self._buffer):
            payload = bytes(self._view[self._start + table:self._start + table + size])
            self._start += table + size
        else:
            payload = self._large(table, size)
        fd = None
        if kind & WITH_FD:
            kind &= ~WITH_FD
            fd = self._fds.pop(0)
        return kind, rid, chain, places, payload, fd

    def _fill(self, need: int) -> None:
        """At least ``need`` bytes buffered from ``_start`` on."""
        if self._end - self._start >= need:
            return
        if self._start + need > len(self._buffer):  # move what is left to the front
            left = self._end - self._start
            self._view[:left] = self._view[self._start:self._end]
            self._start, self._end = 0, left
        while self._end - self._start < need:
            self._end += self._read_into([self._view[self._end:]])

    def _read_into(self, buffers: list) -> int:
        try:
            n, ancillary, _flags, _addr = self.sock.recvmsg_into(buffers, _FD_SPACE, _CLOEXEC)
        except OSError as e:
            raise Closed(str(e)) from None
        self._received(n, ancillary)
        return n

    def _received(self, n: int, ancillary: list) -> None:
        """What came beside ``n`` bytes read: the end of the stream, or descriptors (kept in order)."""
        if not n:
            raise Closed("end of stream")
        for level, kind, raw in ancillary:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(raw[: len(raw) - len(raw) % fds.itemsize])
                self._fds.extend(fds)

    def _large(self, table: int, size: int) -> bytes:
        """A payload larger than the buffer: what is buffered, then the rest straight into place."""
        payload = bytearray(size)
        have = min(self._end - self._start - table, size)
        payload[:have] = self._view[self._start + table:self._start + table + have]
        self._start = self._end = 0
        self.midframe = True  # from here on an interruption would lose part of the frame
        with memoryview(payload) as view:
            while have < size:
                have += self._read_into([view[have:]])
        self.midframe = False
        return bytes(payload)

    def pending(self) -> bool:
        """Whether bytes wait to be read (buffered here, or on the socket): without reading them."""
        if self._end > self._start:
            return True
        try:
            self.sock.recv(1, _socket.MSG_PEEK | _socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            pass
        return True  # a byte, or the end: a reader finds out which

    def close(self) -> None:
        """End the stream (a thread blocked reading it sees the end), then the socket."""
        try:
            self.sock.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
