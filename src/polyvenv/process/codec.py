"""What crosses by value, and what stays behind as a handle: pickle protocol 5 with markers.

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

import _pickle
import builtins
import functools
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
    """Pickles messages for ``channel``'s peer (one thread's: it is reused, a new one costs 1-2 µs).

    ``reducer_override`` sees every object pickle has no fast path for, so plain data (None, bools and
    exact ints, floats, str, bytes, lists, tuples, dicts, sets) costs no Python call at all. A message of
    that alone writes no global and no marker: it is *pure*, and the peer reads it with ``pickle.loads``
    (``decode_pure``), which then has nothing to look up. Everything else is a global (the builtin classes,
    the value types) or a *marker*: one of this module's ``_m_*`` functions, called with what crosses
    instead of the object (a handle, a buffer) when the peer's ``Decoder`` finds it.
    """

    __slots__ = ("chunks", "channel", "large", "pure")  # no __dict__: ~0.3 µs less a message

    def __init__(self, channel: Any) -> None:
        self.chunks = _Chunks()
        super().__init__(self.chunks, 5, buffer_callback=self._buffer)
        self.channel = channel
        self.large: list[pickle.PickleBuffer] = []
        self.pure = True

    def encode(self, message: Any, lifted: bool = False) -> tuple[bytes, list[pickle.PickleBuffer], bool]:
        """The pickled message, its large out-of-band buffers, and whether it is pure."""
        self.pure = True
        chunks = self.chunks
        try:
            self.dump(message)
        except BaseException:
            self.large = []
            chunks.clear()
            raise
        finally:
            self.clear_memo()  # hold no object past the message
        payload = chunks.pop() if len(chunks) == 1 else b"".join(chunks)
        if chunks:
            chunks.clear()
        large = self.large
        if large or len(payload) >= THRESHOLD:  # rare: out-of-band buffers
            self.large = []
            if len(payload) >= THRESHOLD and not lifted:  # exact bytes skip reducer_override: lift large ones
                return self.encode(_lifted(message), True)
        return payload, large, self.pure

    def _buffer(self, buffer: pickle.PickleBuffer) -> bool:
        if buffer.raw().nbytes < THRESHOLD:
            return True  # in band
        self.large.append(buffer)
        return False

    def reducer_override(self, obj: Any) -> Any:
        self.pure = False
        kind = type(obj)
        if kind in PLAIN or (kind is _FUNCTION and obj in _MARKER_OBJECTS):  # pickle's way; a marker by name
            return NotImplemented
        if kind is type and obj in _CLASSES:
            return NotImplemented
        if (kind.__module__, kind.__qualname__) in VALUE_TYPES:
            if kind.__name__ == "ZoneInfo":  # pickle would name its classmethod, through builtins.getattr
                return (_m_zone, (obj.key,)) if obj.key is not None else (_m_handle, (self.channel.export(obj),))
            return NotImplemented  # by value; what it holds goes through here in turn
        if issubclass(kind, type) and (obj.__module__, obj.__qualname__) in VALUE_TYPES:
            return NotImplemented  # a value type itself: by name
        if kind is _Large:
            return (_m_bytes, (pickle.PickleBuffer(obj.data),))
        if kind is Proxy and obj._pv_channel is self.channel:
            return (_m_yours, (obj._pv_handle,))
        if kind is memoryview:
            return (_m_bytes, (pickle.PickleBuffer(obj) if obj.c_contiguous else obj.tobytes(),))
        numpy = sys.modules.get("numpy") if self.channel.peer_numpy else None
        if numpy is not None:
            if kind is numpy.ndarray and obj.dtype.kind in _RAW and not obj.dtype.hasobject:
                obj = obj if obj.flags.c_contiguous else obj.copy(order="C")
                raw = obj.reshape(-1).view(numpy.uint8)  # bytes: the buffer protocol has no datetime64
                return (_m_array, (_dtype(obj.dtype), obj.shape, pickle.PickleBuffer(raw)))
            if kind is numpy.ndarray and obj.dtype == object:
                return (_m_objects, (obj.shape, obj.ravel().tolist()))  # its items cross as items do
            if isinstance(obj, numpy.generic) and obj.dtype.kind in _RAW and not obj.dtype.hasobject:
                return (_m_scalar, (_dtype(obj.dtype), obj.tobytes()))
        return (_m_handle, (self.channel.export(obj),))


class _Chunks(list):
    """The pickler's file: each write is one chunk, and a small message is written whole, in one."""

    write = list.append


class _Large:
    """Exact bytes of THRESHOLD or more in a large message: out of band, as bytes again on the other side."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def _lifted(value: Any, depth: int = 5) -> Any:
    """``value`` with exact ``bytes`` of THRESHOLD or more wrapped in _Large, where a call puts them: at the
    top and in small builtin containers a few levels down (``f(data)``, ``f(x=data)``, ``obj[k] = data``,
    a returned tuple). Bytes deeper down, or in a long list, travel in band: slower, the same value."""
    kind = type(value)
    if kind is bytes:
        return _Large(value) if len(value) >= THRESHOLD else value
    if kind in (tuple, list, dict) and depth and len(value) <= 64:
        if kind is dict:
            return {k: _lifted(v, depth - 1) for k, v in value.items()}
        return kind(_lifted(v, depth - 1) for v in value)
    return value


# Markers: what the peer's Decoder calls (by name) to make an object that did not cross by value. Each
# gets the decoding channel first; the encoder only ever names them (their bodies never run on its side).
def _m_handle(channel: Any, handle: int) -> Any:  # one of the sender's objects: a proxy of it here
    return channel.imports.proxy(handle)


def _m_yours(channel: Any, handle: int) -> Any:  # a proxy sent back: the object itself
    return channel.exports[handle]


def _m_bytes(channel: Any, data: Any) -> bytes:
    return bytes(data)


def _m_zone(channel: Any, key: str) -> Any:
    return importlib.import_module("zoneinfo").ZoneInfo(key)


def _m_array(channel: Any, dtype: Any, shape: tuple, data: Any) -> Any:
    numpy = sys.modules.get("numpy") or importlib.import_module("numpy")
    return numpy.frombuffer(data, numpy.dtype(dtype)).reshape(shape)


def _m_scalar(channel: Any, dtype: Any, data: bytes) -> Any:
    numpy = sys.modules.get("numpy") or importlib.import_module("numpy")
    return numpy.frombuffer(data, numpy.dtype(dtype))[0]


def _m_objects(channel: Any, shape: tuple, items: list) -> Any:
    numpy = sys.modules.get("numpy") or importlib.import_module("numpy")
    array = numpy.empty(len(items), dtype=object)
    for i, item in enumerate(items):  # one by one: a list item stays a list, not a new axis
        array[i] = item
    return array.reshape(shape)


_MARKERS = {f.__name__: f for f in (_m_handle, _m_yours, _m_bytes, _m_zone, _m_array, _m_scalar, _m_objects)}
_MARKER_OBJECTS = frozenset(_MARKERS.values())
_FUNCTION = type(_m_bytes)
# this module's name on either side: polyvenv.process.codec in the host, _polyvenv_process.codec in a worker
_CODEC_MODULES = frozenset({"polyvenv.process.codec", "_polyvenv_process.codec"})


class Decoder(pickle.Unpickler):
    """Unpickles one message from ``channel``'s peer."""

    def __init__(self, channel: Any, payload: bytes, buffers: list | None) -> None:
        super().__init__(io.BytesIO(payload), buffers=buffers)
        self.channel = channel

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in _GLOBALS:
            return getattr(builtins, name)
        if (module, name) in VALUE_TYPES:
            found: Any = importlib.import_module(module)
            for part in name.split("."):
                found = getattr(found, part)
            return found
        if module in _CODEC_MODULES and name in _MARKERS:
            return functools.partial(_MARKERS[name], self.channel)
        raise pickle.UnpicklingError(f"{module}.{name} is not plain data")


def decode(channel: Any, payload: bytes, buffers: list | None) -> Any:
    return Decoder(channel, payload, buffers).load()


def decode_pure(payload: bytes, buffers: list | None) -> Any:
    """A pure message (see Encoder): builtin containers of str, bytes and numbers, naming nothing."""
    return _pickle.loads(payload, buffers=buffers)  # the C function: never a wrapper put on pickle.loads


def _dtype(dtype: Any) -> Any:
    return dtype.str if dtype.fields is None else dtype.descr
