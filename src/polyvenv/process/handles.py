"""Handles: objects that stay on their side, named by a number on the other.

The exporting side counts how many times it sent each handle; the importing
side keeps one proxy per handle and, when the proxy is collected, gives back
the count it received. An object is forgotten when every send is given back,
so a handle already on its way back to the importer is never released under it.
"""

from __future__ import annotations

import collections
import itertools
import threading
import weakref
from typing import Any, Callable


class Exports:
    """Objects of this side that the peer holds handles to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[int, list] = {}  # handle -> [object, times sent]
        self._handles: dict[int, int] = {}  # id(object) -> handle: one handle per live object
        self._next = itertools.count(1)

    def export(self, obj: Any) -> int:
        with self._lock:
            handle = self._handles.get(id(obj))
            if handle is None:
                handle = self._handles[id(obj)] = next(self._next)
                self._objects[handle] = [obj, 1]
            else:
                self._objects[handle][1] += 1
        return handle

    def __getitem__(self, handle: int) -> Any:
        try:
            return self._objects[handle][0]
        except KeyError:
            raise LookupError(f"handle {handle} was already released") from None

    def release(self, counts: list[tuple[int, int]]) -> None:
        with self._lock:
            for handle, count in counts:
                entry = self._objects.get(handle)
                if entry is not None:
                    entry[1] -= count
                    if entry[1] <= 0:
                        del self._objects[handle]
                        del self._handles[id(entry[0])]

    def __len__(self) -> int:
        return len(self._objects)


class Imports:
    """Proxies of the peer's objects: one live proxy per handle, and the counts to give back."""

    def __init__(self, make: Callable[[int], Any]) -> None:
        self._make = make
        self._lock = threading.Lock()  # never taken by a weakref callback: they only append
        self._proxies: dict[int, tuple[weakref.ref, list[int]]] = {}
        self.dead: collections.deque = collections.deque()

    def proxy(self, handle: int) -> Any:
        with self._lock:
            entry = self._proxies.get(handle)
            proxy = entry[0]() if entry is not None else None
            if proxy is None:
                proxy = self._make(handle)
                count = [1]
                ref = weakref.ref(proxy, lambda ref, h=handle, c=count: self.dead.append((h, c, ref)))
                self._proxies[handle] = (ref, count)
            else:
                entry[1][0] += 1
        return proxy

    def take_released(self) -> list[tuple[int, int]]:
        """(handle, count) for the proxies collected since the last call."""
        released = []
        with self._lock:
            while self.dead:
                handle, count, ref = self.dead.popleft()
                entry = self._proxies.get(handle)
                if entry is not None and entry[0] is ref:
                    del self._proxies[handle]
                released.append((handle, count[0]))
        return released
