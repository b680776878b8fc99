"""Frames on the socket between the host and a worker: a fixed header, then a pickle.

A frame is a header (kind, request id, chain, payload length, how many large
buffers), the large buffers' places in shared memory (buffers.py), then the
payload. A new shared memory segment's file descriptor rides as SCM_RIGHTS on a
second socket pair of its own, the *descriptors*, sent just before its frame
(under the same lock, so descriptors come in the order of their frames): the
frames are then read with a plain ``recv_into``, ~0.5 µs a read cheaper than
``recvmsg_into`` with room for ancillary data.

It uses ``_socket`` rather than ``socket``: the worker starts ~10 ms sooner
without ``socket``'s imports (enum, selectors), and the C type has every
method needed here.
"""

from __future__ import annotations

import _socket
import array
import os
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
WITH_FD = 0x80  # flags in the kind byte: the frame's descriptor waits on the descriptors' socket
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

    def __init__(self, sock: _socket.socket, descriptors: _socket.socket) -> None:
        self.sock = sock
        self.descriptors = descriptors
        self.midframe = False  # a read stopped inside a frame: the stream can no longer be trusted
        self._send_lock = threading.Lock()
        self._buffer = bytearray(BUFFER)
        self._view = memoryview(self._buffer)
        self._recv_into = sock.recv_into
        self._sendall = sock.sendall
        self._start = self._end = 0
        self._fds: list[int] = []

    def send(self, kind: int, rid: int, chain: int, payload: bytes, places: list = (),
             fd: int | None = None) -> None:
        if places or fd is not None or len(payload) >= 65536:
            self._send_parts(kind, rid, chain, payload, places, fd)
            return
        message = _pack(kind, rid, chain, len(payload), 0) + payload  # one system call for most messages
        lock = self._send_lock
        lock.acquire()  # not ``with``: half the cost (no __exit__ call), the same release
        try:
            self._sendall(message)
        except OSError as e:
            raise Closed(str(e)) from None
        finally:
            lock.release()

    def _send_parts(self, kind: int, rid: int, chain: int, payload: bytes, places: list, fd: int | None) -> None:
        head = HEADER.pack(kind | (WITH_FD if fd is not None else 0), rid, chain, len(payload), len(places))
        if places:
            head += b"".join(PLACE.pack(*p) for p in places)
        with self._send_lock:
            try:
                if fd is not None:  # first: the reader waits for it once it has read the header
                    self.descriptors.sendmsg([b"\0"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                                        array.array("i", [fd]))])
                if len(payload) < 65536:
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
                n = self._recv_into(self._buffer)
            except OSError as e:
                raise Closed(str(e)) from None
            if not n:
                raise Closed("end of stream")
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
        if kind & WITH_FD and not self._fds:  # taken before the frame is: an interrupted read keeps it for the retry
            self.midframe = True  # a descriptor received but not yet kept would be lost: the stream, with it
            self._fds.append(self._descriptor())  # (it is already queued, sent before the frame: no wait here)
            self.midframe = False
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
            self._end += self._read_into(self._view[self._end:])

    def _read_into(self, buffer: memoryview) -> int:
        try:
            n = self.sock.recv_into(buffer)
        except OSError as e:
            raise Closed(str(e)) from None
        if not n:
            raise Closed("end of stream")
        return n

    def _descriptor(self) -> int:
        """The descriptor of the frame whose header was just read (its sender sent it first)."""
        try:
            data, ancillary, _flags, _addr = self.descriptors.recvmsg(1, _FD_SPACE, _CLOEXEC)
        except OSError as e:
            raise Closed(str(e)) from None
        fds = array.array("i")
        for level, kind, raw in ancillary:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                fds.frombytes(raw[: len(raw) - len(raw) % fds.itemsize])
        if not data or len(fds) != 1:
            for extra in fds:
                os.close(extra)
            raise Closed("the descriptors' socket ended, or brought no descriptor")
        return fds[0]

    def _large(self, table: int, size: int) -> bytes:
        """A payload larger than the buffer: what is buffered, then the rest straight into place."""
        payload = bytearray(size)
        have = min(self._end - self._start - table, size)
        payload[:have] = self._view[self._start + table:self._start + table + have]
        self._start = self._end = 0
        self.midframe = True  # from here on an interruption would lose part of the frame
        with memoryview(payload) as view:
            while have < size:
                have += self._read_into(view[have:])
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
        self.descriptors.close()
