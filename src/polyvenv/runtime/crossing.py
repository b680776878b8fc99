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
copy has guards at the two ends of that loop (native/trampoline.py): its ``ndarray.__array_ufunc__``
refuses a ufunc of another numpy, and its ufuncs' ``__call__`` and methods (``reduce``, ...: what
another numpy's ``__array_ufunc__`` calls back by name) refuse another numpy's arrays. A plain call
of a ufunc, an operator, or an override of the env's own never goes through a guard; the methods'
do, about 1 us a call (bench/crossing_bench.py). Where every override gave up, the copy's error
message functions say the same instead of numpy's "all returned NotImplemented". What converts over
a protocol (``numpy.asarray`` of another numpy's array: the buffer protocol) works as before, and
the host's numpy is never touched.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any, Iterable

# the real names of the extension module that defines numpy's ndarray and ufunc (1.x, 2.x)
NUMPY_CORE = ("numpy.core._multiarray_umath", "numpy._core._multiarray_umath")
NUMPY_INTERNAL = ("numpy.core._internal", "numpy._core._internal")
UFUNC_METHODS = ("reduce", "accumulate", "reduceat", "outer", "at")
_GUARDED: dict[str, type] = {}  # alias of an env's numpy whose core is guarded -> its ndarray


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
        return _sharers(owner), owner.real.get(top, top)
    retired = ALIASES.retired(top)
    return (retired, top) if retired is not None else (None, top)


def _sharers(names: Any) -> str:
    """The env a name map loads, or for a unit's (runtime/units.py) the envs that share it: "a, p1"."""
    if not getattr(names, "lender", False):
        return str(names.env)
    from .namemap import ALIASES
    from .units import UNITS

    unit = next((u for u in list(UNITS.values()) if u.names is names), None)
    users = sorted({o.env for o in ALIASES.owners()
                    if unit is not None and not getattr(o, "lender", True) and unit in getattr(o, "units", ())})
    return ", ".join(users) or str(names.env)


def _side(env: str | None) -> str:
    """The user's name of one side: the host, an env, or the envs sharing a unit."""
    if env is None:
        return "the host"
    return f"envs {env} (which share it)" if ", " in env else f"env {env!r}"


def _version(module: str) -> str:
    version = getattr(sys.modules.get(module.partition(".")[0]), "__version__", None)
    return f" {version}" if isinstance(version, str) else ""


def crossing_error(into: str, what: str, kind: type) -> Exception:
    """The error for an object of type ``kind`` (of one env, or the host) handed by ``what`` (the name the
    user knows: ``numpy.add``) to the code of module ``into`` (of another env, or the host)."""
    from ..errors import ObjectFromAnotherEnv

    into_env, dist = type_origin(type(into, (), {"__module__": into}))
    came, _ = type_origin(kind)
    mine, yours = _version(into), _version(kind.__module__)
    sides = (None, came or into_env) if None in (into_env, came) else (into_env, came)
    both = f"{_side(sides[0])} and {_side(sides[1])}"
    return ObjectFromAnotherEnv(
        f"{what} of {_side(into_env)} ({dist}{mine}) got a {type_origin(kind)[1]}.{kind.__name__} of {_side(came)} "
        f"({dist}{yours}): {both} load {dist} separately (they do not share it), so neither computes on the "
        f"other's objects; convert it first with the receiving side's {dist} ({dist}.asarray(obj) takes an array "
        f"over the buffer protocol, without a copy), or let both share one {dist} (the same pins; "
        f"`polyvenv why {dist}` says what differs)", env=into_env, origin=came, distribution=dist)


def after_exec(names: Any, fullname: str, module: ModuleType) -> None:
    """An env's module ``fullname`` was executed: numpy's core gets its crossing guards, numpy's
    ``_internal`` the error messages of its dispatchers that another numpy's arrays reach."""
    top, dot, rest = fullname.partition(".")
    real = names.real.get(top, top) + dot + rest
    if real in NUMPY_CORE:
        guard_numpy(module)
    elif real in NUMPY_INTERNAL:
        guard_messages(module)


def guard_numpy(core: ModuleType) -> bool:
    """Put the crossing guards on an env copy of numpy's core (``_multiarray_umath``); False where the
    platform cannot (native/trampoline.py), which leaves numpy as it was."""
    from .native import trampoline

    ndarray, ufunc = getattr(core, "ndarray", None), type(getattr(core, "add", None))
    if not isinstance(ndarray, type) or not isinstance(ufunc, type) or not trampoline.available():
        return False
    import weakref

    plain = frozenset((ndarray, int, float, complex, bool, type(None), tuple, list, str, slice))
    seen: weakref.WeakSet[type] = weakref.WeakSet()  # other types found to be no numpy's arrays

    def refuse(self: Any, args: tuple[Any, ...], kwds: dict[str, Any] | None) -> None:
        """Raise if ``args`` or an ``out=`` hold an array of another numpy (the fast path: its own)."""
        for obj in args:
            if type(obj) not in plain:
                foreign(self, obj)
        if kwds:
            out = kwds.get("out", ())
            for obj in out if isinstance(out, tuple) else (out,):
                foreign(self, obj)

    def foreign(self: Any, obj: Any) -> None:
        kind = type(obj)
        if kind not in seen and not isinstance(obj, ndarray):
            if _is_array(kind):
                raise crossing_error(ufunc.__module__, f"numpy.{getattr(self, '__name__', '')}", kind)
            seen.add(kind)  # no array of another numpy: never asked again

    def array_ufunc(original: Any) -> Any:
        def guard(self: Any, args: tuple[Any, ...], kwds: dict[str, Any] | None = None) -> Any:
            called = args[0] if args else None
            if type(called) is not ufunc and _is_numpy(type(called), "ufunc"):
                raise crossing_error(type(called).__module__, f"numpy.{getattr(called, '__name__', '')}", type(self))
            return original(self, *args, **(kwds or {}))
        return guard

    def array_function(original: Any) -> Any:
        def guard(self: Any, args: tuple[Any, ...], kwds: dict[str, Any] | None = None) -> Any:
            result = original(self, *args, **(kwds or {}))
            if result is NotImplemented and len(args) > 1:  # another numpy's arrays among the types: say so
                func = args[0]
                what = f"numpy.{getattr(func, '__name__', '')}"
                for kind in args[1]:
                    if isinstance(kind, type) and _is_array(kind) and not issubclass(kind, ndarray):
                        raise crossing_error(str(getattr(func, "__module__", "")), what, type(self))
            return result
        return guard

    def call(self: Any, args: tuple[Any, ...], kwds: dict[str, Any] | None = None) -> Any:
        refuse(self, args, kwds)
        return self(*args, **kwds) if kwds else self(*args)

    def method(original: Any) -> Any:
        def guard(self: Any, args: tuple[Any, ...], kwds: dict[str, Any] | None = None) -> Any:
            if kwds:
                refuse(self, args, kwds)
                return original(self, *args, **kwds)
            for obj in args:  # every call of the env's own reductions comes here: refuse() inlined
                if type(obj) not in plain:
                    foreign(self, obj)
            return original(self, *args)
        return guard

    try:
        guarded = (trampoline.guard_method(ndarray, "__array_ufunc__", array_ufunc)
                   & trampoline.guard_method(ndarray, "__array_function__", array_function)
                   & trampoline.guard_call(ufunc, call))
        for name in UFUNC_METHODS:  # what another numpy's ndarray.__array_ufunc__ calls back by name
            guarded &= trampoline.guard_method(ufunc, name, method)
    except (OSError, ValueError):  # no executable page here (a hardened kernel): each guard made stays correct
        return False
    _GUARDED[ufunc.__module__.partition(".")[0]] = ndarray
    return guarded


def guard_messages(internal: ModuleType) -> None:
    """Where every override gave up, numpy formats its TypeError with these two functions of its
    ``_internal``: an env copy's raise ObjectFromAnotherEnv instead when another numpy's arrays are why."""
    ufunc_message = getattr(internal, "array_ufunc_errmsg_formatter", None)
    function_message = getattr(internal, "array_function_errmsg_formatter", None)
    into = internal.__name__
    ndarray = _GUARDED.get(into.partition(".")[0])
    if ufunc_message is None or function_message is None or ndarray is None:
        return

    def foreign(what: str, kinds: Iterable[type]) -> None:
        for kind in kinds:
            if isinstance(kind, type) and _is_array(kind) and not issubclass(kind, ndarray):
                raise crossing_error(into, what, kind)

    def array_ufunc_errmsg_formatter(dummy: Any, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> str:
        out = kwargs.get("out", ())
        foreign(f"numpy.{getattr(ufunc, '__name__', '')}",
                (type(o) for o in (*inputs, *(out if isinstance(out, tuple) else (out,)))))
        return str(ufunc_message(dummy, ufunc, method, *inputs, **kwargs))

    def array_function_errmsg_formatter(public_api: Any, types: Iterable[type]) -> str:
        foreign(f"numpy.{getattr(public_api, '__name__', '')}", types)
        return str(function_message(public_api, types))

    internal.array_ufunc_errmsg_formatter = array_ufunc_errmsg_formatter
    internal.array_function_errmsg_formatter = array_function_errmsg_formatter


def _is_array(kind: type) -> bool:
    """Whether ``kind`` is (or derives from) the ndarray of some numpy."""
    return any(_is_numpy(c, "ndarray") for c in kind.__mro__)


def _is_numpy(cls: type, name: str) -> bool:
    """Whether ``cls`` is numpy's class ``name`` (of any copy: the host's or an env's)."""
    return cls.__name__ == name and type_origin(cls)[1] == "numpy"
