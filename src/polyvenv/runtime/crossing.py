"""Objects that cross between envs (or an env and the host) that do not share their distribution.

In one process every env's objects can reach every other env's code: a plugin returns an array to
the host, the host hands it to another plugin. Where the two load the distribution separately, its
types are two types, and the receiving code sees a stranger. Pure Python code then fails its own
``isinstance`` checks with its own TypeError; numpy's override protocols go further: each copy
takes the other's ``ndarray`` for an override and hands the call back (``ndarray.__array_ufunc__``
calls the ufunc it was given, whose dispatch calls ``__array_ufunc__`` again), a RecursionError, or
a crash where no recursion check lies on that path (numpy 2's ufuncs).

Which env an object comes from is known for any object: its type's ``__module__`` starts with the
alias of one env's load (``ALIASES.owner``), or with a real name, the host's. ``origin`` answers it;
``ObjectFromAnotherEnv`` says both sides, the distribution, and what to do. For numpy, each env's
copy has guards at the two ends of that loop, at no cost to anything else (native/trampoline.py):
its ``ndarray.__array_ufunc__`` refuses a ufunc of another numpy, and its ufuncs' ``__call__`` (what
another numpy's ``__array_ufunc__`` calls back, never a plain call) refuses another numpy's arrays.
The host's numpy is never touched.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

# the real names of the extension module that defines numpy's ndarray and ufunc (1.x, 2.x)
NUMPY_CORE = ("numpy.core._multiarray_umath", "numpy._core._multiarray_umath")


def origin(obj: object) -> tuple[str | None, str]:
    """Where ``obj``'s type comes from: (the env's name, or None for the host; the real top-level name
    of its module)."""
    return type_origin(type(obj))


def type_origin(cls: type) -> tuple[str | None, str]:
    """``origin`` of the instances of ``cls``."""
    from .namemap import ALIASES

    top = str(getattr(cls, "__module__", "") or "").partition(".")[0]
    owner = ALIASES.owner(top)
    if owner is not None:
        return owner.env, owner.real.get(top, top)
    retired = ALIASES.retired(top)
    return (retired, top) if retired is not None else (None, top)


def _side(env: str | None) -> str:
    return f"env {env!r}" if env is not None else "the host"


def _version(module: str) -> str:
    version = getattr(sys.modules.get(module.partition(".")[0]), "__version__", None)
    return f" {version}" if isinstance(version, str) else ""


def crossing_error(receiver: object, what: str, obj: object) -> Exception:
    """The error for ``obj`` (of one env, or the host) handed to ``receiver`` (of another) by ``what``
    (the receiver's qualified name as the user knows it: ``numpy.add``)."""
    from ..errors import ObjectFromAnotherEnv

    into, dist = origin(receiver)
    came, _ = origin(obj)
    kind = type(obj)
    theirs = f"{type_origin(kind)[1]}.{kind.__name__}"
    mine, yours = _version(type(receiver).__module__), _version(kind.__module__)
    both = "the host and " + _side(came or into) if None in (into, came) else f"envs {into!r} and {came!r}"
    return ObjectFromAnotherEnv(
        f"{what} of {_side(into)} ({dist}{mine}) got a {theirs} of {_side(came)} ({dist}{yours}): {both} load "
        f"{dist} separately (they do not share it), so neither computes on the other's objects; convert it first "
        f"with the receiving side's {dist} ({dist}.asarray(obj) takes an array over the buffer protocol, without a "
        f"copy), or let both share one {dist} (the same pins; `polyvenv why {dist}` says what differs)",
        env=into, origin=came, distribution=dist)


def after_extension(names: Any, fullname: str, module: ModuleType) -> None:
    """An env's extension module ``fullname`` was initialised: numpy's core gets its crossing guards."""
    top, dot, rest = fullname.partition(".")
    if names.real.get(top, top) + dot + rest in NUMPY_CORE:
        guard_numpy(module)


def guard_numpy(core: ModuleType) -> bool:
    """Put the crossing guards on an env copy of numpy's core (``_multiarray_umath``); False where the
    platform cannot (native/trampoline.py), which leaves numpy as it was."""
    from .native import trampoline

    ndarray, ufunc = getattr(core, "ndarray", None), type(getattr(core, "add", None))
    if not isinstance(ndarray, type) or not isinstance(ufunc, type) or not trampoline.available():
        return False

    def array_ufunc(original: Any) -> Any:
        def guard(self: Any, args: tuple[Any, ...], kwds: dict[str, Any] | None = None) -> Any:
            called = args[0] if args else None
            if type(called) is not ufunc and _is_numpy(type(called), "ufunc"):
                raise crossing_error(called, f"numpy.{getattr(called, '__name__', 'ufunc')}", self)
            return original(self, *args, **(kwds or {}))
        return guard

    def call(self: Any, args: tuple[Any, ...], kwds: dict[str, Any] | None = None) -> Any:
        out = (kwds or {}).get("out", ())
        for obj in (*args, *(out if isinstance(out, tuple) else (out,))):
            if not isinstance(obj, ndarray) and any(_is_numpy(c, "ndarray") for c in type(obj).__mro__):
                raise crossing_error(self, f"numpy.{getattr(self, '__name__', 'ufunc')}", obj)
        return self(*args, **(kwds or {}))

    return trampoline.guard_method(ndarray, "__array_ufunc__", array_ufunc) & trampoline.guard_call(ufunc, call)


def _is_numpy(cls: type, name: str) -> bool:
    """Whether ``cls`` is numpy's class ``name`` (of any copy: the host's or an env's)."""
    return cls.__name__ == name and type_origin(cls)[1] == "numpy"
