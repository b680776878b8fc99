"""What crosses by value, and what stays behind as a handle: pickle protocol 5 with persistent ids.

Plain data (None, bool, int, float, complex, str, bytes, bytearray, slice,
range, the builtin containers of them, and the builtin classes) is copied; so
are the standard library's value types (VALUE_TYPES: dates and times,
Decimal, Fraction, UUID, paths, IP addresses, the collections containers),
and numpy arrays and scalars when both sides have numpy, rebuilt from dtype,
shape and buffer so that numpy 1.x and 2.x read each other. Anything else is
exported as a handle and arrives as a proxy; a proxy sent back arrives as the
object itself. Nothing is ever found by module and name except the builtins
and the value types listed here, so neither side can make the other import
or run anything else.
"""

from __future__ import annotations

import builtins
import importlib
import io
import pickle
import sys
import types
from typing import Any

from .buffers import THRESHOLD
from .proxy import Proxy

PLAIN = frozenset({type(None), bool, int, float, complex, str, bytearray, tuple, list, dict, set, frozenset,
                   slice, range, type(Ellipsis), type(NotImplemented), pickle.PickleBuffer})
_CLASSES = frozenset(v for v in vars(builtins).values() if isinstance(v, type))  # int, float, ValueError...
_GLOBALS = {c.__name__ for c in _CLASSES} | {"Ellipsis", "NotImplemented"}  # all plain data may name
_FUNCTIONS = (types.BuiltinFunctionType, types.BuiltinMethodType, types.FunctionType, types.MethodType)
# The standard library's value types, by (module, qualified name): the same on both sides, whatever the env.
VALUE_TYPES = frozenset(
    [("datetime", n) for n in ("date", "datetime", "time", "timedelta", "timezone")]
    + [("decimal", "Decimal"), ("fractions", "Fraction"), ("uuid", "UUID"), ("uuid", "SafeUUID"),
       ("zoneinfo", "ZoneInfo"), ("zoneinfo", "ZoneInfo._unpickle"),
       ("builtins", "getattr")]  # how pickle names a classmethod: getattr(ZoneInfo, "_unpickle")
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
            return None  # by value; what it holds goes through here in turn
        if issubclass(kind, type) or kind in _FUNCTIONS:  # a value type, or its unpickling function: by name
            owner = getattr(obj, "__self__", None)  # a classmethod's class (ZoneInfo._unpickle)
            module = owner.__module__ if isinstance(owner, type) else getattr(obj, "__module__", None)
            if (module, getattr(obj, "__qualname__", None)) in VALUE_TYPES:
                return None
        if kind is bytes:
            return ("b", pickle.PickleBuffer(obj)) if len(obj) >= THRESHOLD else None
        if kind is Proxy and obj._pv_channel is self.channel:
            return ("y", obj._pv_handle)
        if kind is memoryview:
            return ("b", pickle.PickleBuffer(obj) if obj.c_contiguous else obj.tobytes())
        numpy = sys.modules.get("numpy") if self.channel.peer_numpy else None
        if numpy is not None:
            if kind is numpy.ndarray and not obj.dtype.hasobject:
                obj = obj if obj.flags.c_contiguous else obj.copy(order="C")
                return ("a", _dtype(obj.dtype), obj.shape, pickle.PickleBuffer(obj))
            if isinstance(obj, numpy.generic) and not obj.dtype.hasobject:
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
        numpy = sys.modules.get("numpy") or importlib.import_module("numpy")
        if tag == "a":
            return numpy.frombuffer(pid[3], numpy.dtype(pid[1])).reshape(pid[2])
        if tag == "s":
            return numpy.frombuffer(pid[2], numpy.dtype(pid[1]))[0]
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
