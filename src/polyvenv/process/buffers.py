"""Large buffers cross through shared memory segments that are reused.

Out-of-band pickle-5 buffers of at least THRESHOLD bytes are copied into a
segment the sending side owns; the receiver maps the segment once (its file
descriptor came over the socket) and unpickles them in place, so each
direction costs one copy, like a memcpy. Fresh memory costs as much again in
page faults, so a segment is reused as soon as the receiver says that every
object made from it is gone (a note on its next message).

Segments are anonymous (memfd): nothing is named, nothing outlives the two
processes, and no resource tracker can delete a segment under the other side
(multiprocessing.shared_memory's does, before 3.13: research/process-isolation.md).
"""

from __future__ import annotations

import collections
import itertools
import mmap
import os
import tempfile
import threading
import weakref
from pickle import PickleBuffer

THRESHOLD = 1 << 20  # smaller buffers travel inside the pickle
ALIGN = 64
KEEP = 4  # free segments kept for reuse


def _anonymous_file(size: int) -> int:
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("polyvenv", os.MFD_CLOEXEC)
    else:  # macOS: an unlinked temporary file
        with tempfile.TemporaryFile() as f:
            fd = os.dup(f.fileno())
    os.ftruncate(fd, size)
    return fd


class _Segment:
    __slots__ = ("id", "map", "size", "fd")

    def __init__(self, sid: int, size: int) -> None:
        self.id, self.size = sid, size
        self.fd: int | None = _anonymous_file(size)
        self.map = mmap.mmap(self.fd, size)


class Outgoing:
    """This side's segments, where the large buffers of its messages are placed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[_Segment] = []
        self._busy: dict[int, _Segment] = {}
        self._ids = itertools.count(1)
        self.dropped: list[int] = []  # segments closed here, for the peer to unmap

    def place(self, buffers: list[PickleBuffer]) -> tuple[list[tuple[int, int, int]], int | None]:
        """Copy ``buffers`` into one segment: their places, and the segment's fd if the peer has not seen it."""
        raws = [b.raw() for b in buffers]
        offsets, total = [], 0
        for raw in raws:
            offsets.append(total)
            total += -(-raw.nbytes // ALIGN) * ALIGN
        with self._lock:
            fits = [s for s in self._free if s.size >= total]
            segment = min(fits, key=lambda s: s.size) if fits else None
            if segment is None:
                segment = _Segment(next(self._ids), -(-total // THRESHOLD) * THRESHOLD)
                while len(self._free) >= KEEP:  # make room: the smallest free one goes
                    old = min(self._free, key=lambda s: s.size)
                    self._free.remove(old)
                    old.map.close()
                    self.dropped.append(old.id)
            else:
                self._free.remove(segment)
            self._busy[segment.id] = segment
        with memoryview(segment.map) as view:
            for raw, offset in zip(raws, offsets):
                view[offset:offset + raw.nbytes] = raw
        fd, segment.fd = segment.fd, None
        return [(segment.id, offset, raw.nbytes) for raw, offset in zip(raws, offsets)], fd

    def freed(self, ids: list[int]) -> None:
        """The peer let go of everything made from these segments: reuse them."""
        with self._lock:
            for sid in ids:
                segment = self._busy.pop(sid, None)
                if segment is not None:
                    self._free.append(segment)

    def take_dropped(self) -> list[int]:
        with self._lock:
            dropped, self.dropped = self.dropped, []
        return dropped


class Incoming:
    """The peer's segments mapped here, and which of them are no longer used by any object here."""

    def __init__(self) -> None:
        self._maps: dict[int, memoryview] = {}
        self._live: dict[int, int] = {}
        self.released: collections.deque[int] = collections.deque()  # appended by finalizers, any thread
        self._lock = threading.Lock()  # never taken by a finalizer: they only append

    def map(self, sid: int, fd: int) -> None:
        try:
            self._maps[sid] = memoryview(mmap.mmap(fd, os.fstat(fd).st_size))
        finally:
            os.close(fd)

    def views(self, places: list[tuple[int, int, int]]) -> list[PickleBuffer]:
        """Buffers over the placed bytes. Each slice is its own exporter, so it lives exactly as long
        as what was unpickled from it (numpy arrays keep it as their base's buffer owner)."""
        out = []
        for sid, offset, length in places:
            part = self._maps[sid][offset:offset + length]
            weakref.finalize(part, self.released.append, sid).atexit = False
            out.append(PickleBuffer(part))
        with self._lock:
            self._live[places[0][0]] = self._live.get(places[0][0], 0) + len(places)
        return out

    def take_freed(self) -> list[int]:
        """Segments whose every view is gone since the last call (to tell the peer)."""
        freed = []
        with self._lock:
            while self.released:
                sid = self.released.popleft()
                self._live[sid] -= 1
                if not self._live[sid]:
                    del self._live[sid]
                    freed.append(sid)
        return freed

    def drop(self, ids: list[int]) -> None:
        """The peer closed these segments: forget them (objects still using one keep its mapping)."""
        for sid in ids:
            self._maps.pop(sid, None)
