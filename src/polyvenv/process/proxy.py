"""A proxy: an object of the other side (module, class, instance, function), used as if it were here.

Every operation is one request to the side where the object lives, answered
with plain data by value or with another proxy (codec.py). Nothing is cached:
the remote object may change between two looks.
"""

from __future__ import annotations

from typing import Any

from .ops import BINARY, COMPARE, UNARY


class Proxy:
    """An object living on the other side of a channel; every operation on it runs there."""

    __slots__ = ("_pv_channel", "_pv_handle", "__weakref__")

    def __init__(self, channel: Any, handle: int) -> None:
        object.__setattr__(self, "_pv_channel", channel)
        object.__setattr__(self, "_pv_handle", handle)

    def _pv(self, op: str, *args: Any) -> Any:
        return self._pv_channel.request(op, args)

    # attributes and calls
    def __getattr__(self, name: str) -> Any:
        if name.startswith("_pv_"):
            raise AttributeError(name)
        return self._pv_channel.request("getattr", (self, name))

    def __setattr__(self, name: str, value: Any) -> None:
        self._pv_channel.request("setattr", (self, name, value))

    def __delattr__(self, name: str) -> None:
        self._pv_channel.request("delattr", (self, name))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:  # the usual request: its target by handle already
        return self._pv_channel.request("call", (args, kwargs), self._pv_handle)

    def __dir__(self) -> list[str]:
        return self._pv("dir", self)

    __doc__ = property(lambda self: self._pv("getattr", self, "__doc__"))  # type: ignore[assignment]
    __module__ = property(lambda self: self._pv("getattr", self, "__module__"))  # type: ignore[assignment]

    # text and conversions
    def __repr__(self) -> str:
        if self._pv_channel.closed:  # never raise here: debuggers and tracebacks show proxies
            return f"<remote object #{self._pv_handle} of the {self._pv_channel.peer_name}, which is gone>"
        return self._pv("repr", self)

    def __str__(self) -> str:
        return self._pv("str", self)

    def __format__(self, spec: str) -> str:
        return self._pv("format", self, spec)

    def __bytes__(self) -> bytes:
        return self._pv("bytes", self)

    def __int__(self) -> int:
        return self._pv("int", self)

    def __float__(self) -> float:
        return self._pv("float", self)

    def __complex__(self) -> complex:
        return self._pv("complex", self)

    def __bool__(self) -> bool:
        return self._pv("bool", self)

    def __hash__(self) -> int:
        return self._pv("hash", self)

    # containers and iteration
    def __len__(self) -> int:
        return self._pv("len", self)

    def __contains__(self, item: Any) -> bool:
        return self._pv("contains", self, item)

    def __getitem__(self, key: Any) -> Any:
        return self._pv("getitem", self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._pv("setitem", self, key, value)

    def __delitem__(self, key: Any) -> None:
        self._pv("delitem", self, key)

    def __iter__(self) -> Any:
        return self._pv("iter", self)

    def __next__(self) -> Any:
        return self._pv("next", self)

    def __reversed__(self) -> Any:
        return self._pv("reversed", self)

    # context managers
    def __enter__(self) -> Any:
        return self._pv("enter", self)

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> Any:
        described = None if error is None else (
            kind.__name__ if getattr(kind, "__module__", None) == "builtins" else None, str(error))
        return self._pv("exit", self, described)

    # classes on the other side answer isinstance/issubclass about objects of that side
    def __instancecheck__(self, obj: Any) -> bool:
        return self._pv("isinstance", obj, self)

    def __subclasscheck__(self, cls: Any) -> bool:
        return self._pv("issubclass", cls, self)

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("a proxy of a remote object cannot be pickled or copied; it lives in the other process")


def _operator(name: str) -> Any:
    """The remote object's own ``__<name>__`` (ops.py: one side only; Python here does the reflection)."""
    return lambda self, *other: self._pv_channel.request(name, (self, *other))


for _name in BINARY:
    setattr(Proxy, f"__{_name}__", _operator(_name))
    setattr(Proxy, f"__r{_name}__", _operator("r" + _name))
for _name in UNARY + COMPARE:
    setattr(Proxy, f"__{_name}__", _operator(_name))
