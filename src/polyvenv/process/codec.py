"""What crosses by value, and what stays behind as a handle: pickle protocol 5 with persistent ids.

Plain data (None, bool, int, float, complex, str, bytes, bytearray, slice,
range, the builtin containers of them, and the builtin classes) is copied; so
are the standard library's value types (VALUE_TYPES: dates and times,
Decimal, Fraction, UUID, paths, IP addresses, the collections containers),
and numpy arrays and scalars when both sides have numpy, rebuilt from dtype,
shape and bytes so that numpy 1.x and 2.x read each other (datetime64 and
timedelta64 included); an object array is rebuilt from its items, which
cross as items do. Anything else is
exported as a handle and arrives as a proxy; a proxy sent back arrives as the
object itself.

Nothing is ever found by module and name except the builtin classes and the
value types listed here (the decoder refuses any other name, builtins.getattr
included): a class named by the peer would be this side's class of that name,
another version of it or none at all, since the two sides' packages differ.
That keeps values exact; it is not a security boundary. The peer may use
every object it is handed (a function's attributes lead to its module), and
the operations of ops.py work on plain values too: the host trusts the
worker like an installed package (env.py).
"""

from __future__ import annotations

import builtins
import importlib
import io
import pickle
import sys
from typing import Any

from .buffers import THRESHOLD
from .proxy import Proxy

PLAIN = frozenset({type(None), bool, int, float, complex, str, bytearray, tuple, list, dict, set, frozenset,
                   slice, range, type(Ellipsis), type(NotImplemented), pickle.PickleBuffer})
_CLASSES = frozenset(v for v in vars(builtins).values() if isinstance(v, type))  # int, float, ValueError...
_GLOBALS = {c.__name__ for c in _CLASSES} | {"Ellipsis", "NotImplemented"}  # all plain data may name
_RAW = frozenset("biufcSUVMm")  # numpy dtype kinds whose bytes are their values (datetimes: int64 counts)
# The standard library's value types, by (module, qualified name): the same on both sides, whatever the env.
VALUE_TYPES = frozenset(
    [("datetime", n) for n in ("date", "datetime", "time", "timedelta", "timezone")]
    + [("decimal", "Decimal"), ("fractions", "Fraction"), ("uuid", "UUID"), ("uuid", "SafeUUID"),
       ("zoneinfo", "ZoneInfo")]  # an instance crosses as its key (persistent id "z")
    + [(m, n) for m in ("pathlib", "pathlib._local")
       for n in ("PurePath", "PurePosixPath", "PureWindowsPath", "Path", "PosixPath", "WindowsPath")]
    + [("ipaddress", n) for n in ("IPv4Address", "IPv6Address", "IPv4Network", "IPv6Network",
                                   "IPv4Interface", "IPv6Interface")]
    + [("collections", n) for n in ("OrderedDict", "deque", "Counter", "defaultdict")])


class Encoder(pickle.Pickler):
    """Pickles messages for ``channel``'s peer (one thread's: it is reused, a new one costs 1-2 µs)."""

    def __init__(self, channel: Any) -> None:
        self.file = io.BytesIO()
        super().__init__(self.file, 5, buffer_callback=self._buffer)
        self.channel = channel
        self.large: list[pickle.PickleBuffer] = []

    def encode(self, message: Any) -> tuple[bytes, list[pickle.PickleBuffer]]:
        """The pickled message and its large out-of-band buffers."""
        self.file.seek(0)
        self.file.truncate()
        self.clear_memo()
        self.large = []
        try:
            self.dump(message)
            return self.file.getvalue(), self.large
        finally:
            self.clear_memo()  # hold no object past the message

    def _buffer(self, buffer: pickle.PickleBuffer) -> bool:
        if buffer.raw().nbytes < THRESHOLD:
            return True  # in band
        self.large.append(buffer)
        return False

    def persistent_id(self, obj: Any) -> Any:
        kind = type(obj)
        if kind in PLAIN:
            return None
        if kind is type and obj in _CLASSES:
            return None
        if (kind.__module__, kind.__qualname__) in VALUE_TYPES:
            if kind.__name__ == "ZoneInfo":  # pickle would name its classmethod, through builtins.getattr
                return ("z", obj.key) if obj.key is not None else ("m", self.channel.export(obj))
            return None  # by value; what it holds goes through here in turn
        if issubclass(kind, type) and (obj.__module__, obj.__qualname__) in VALUE_TYPES:
            return None  # a value type itself: by name
        if kind is bytes:
            return ("b", pickle.PickleBuffer(obj)) if len(obj) >= THRESHOLD else None
        if kind is Proxy and obj._pv_channel is self.channel:
            return ("y", obj._pv_handle)
        if kind is memoryview:
            return ("b", pickle.PickleBuffer(obj) if obj.c_contiguous else obj.tobytes())
        numpy = sys.modules.get("numpy") if self.channel.peer_numpy else None
        if numpy is not None:
            if kind is numpy.ndarray and obj.dtype.kind in _RAW and not obj.dtype.hasobject:
                obj = obj if obj.flags.c_contiguous else obj.copy(order="C")
                raw = obj.reshape(-1).view(numpy.uint8)  # bytes: the buffer protocol has no datetime64
                return ("a", _dtype(obj.dtype), obj.shape, pickle.PickleBuffer(raw))
            if kind is numpy.ndarray and obj.dtype == object:
                return ("o", obj.shape, obj.ravel().tolist())  # its items cross as items do
            if isinstance(obj, numpy.generic) and obj.dtype.kind in _RAW and not obj.dtype.hasobject:
                return ("s", _dtype(obj.dtype), obj.tobytes())
        return ("m", self.channel.export(obj))


class Decoder(pickle.Unpickler):
    """Unpickles one message from ``channel``'s peer."""

    def __init__(self, channel: Any, payload: bytes, buffers: list) -> None:
        super().__init__(io.BytesIO(payload), buffers=buffers)
        self.channel = channel

    def persistent_load(self, pid: Any) -> Any:
        tag = pid[0]
        if tag == "m":
            return self.channel.imports.proxy(pid[1])
        if tag == "y":
            return self.channel.exports[pid[1]]
        if tag == "b":
            return bytes(pid[1])
        if tag == "z":
            return importlib.import_module("zoneinfo").ZoneInfo(pid[1])
        numpy = sys.modules.get("numpy") or importlib.import_module("numpy")
        if tag == "a":
            return numpy.frombuffer(pid[3], numpy.dtype(pid[1])).reshape(pid[2])
        if tag == "s":
            return numpy.frombuffer(pid[2], numpy.dtype(pid[1]))[0]
        if tag == "o":
            array = numpy.empty(len(pid[2]), dtype=object)
            for i, item in enumerate(pid[2]):  # one by one: a list item stays a list, not a new axis
                array[i] = item
            return array.reshape(pid[1])
        raise pickle.UnpicklingError(f"unknown persistent id {tag!r}")

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in _GLOBALS:
            return getattr(builtins, name)
        if (module, name) in VALUE_TYPES:
            found: Any = importlib.import_module(module)
            for part in name.split("."):
                found = getattr(found, part)
            return found
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")


def decode(channel: Any, payload: bytes, buffers: list) -> Any:
    return Decoder(channel, payload, buffers).load()


def _dtype(dtype: Any) -> Any:
    return dtype.str if dtype.fields is None else dtype.descr
