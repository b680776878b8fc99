"""Env objects in pickles: written by their real module names, read by the env's.

A class or function of an env is named by its alias in this process
(``Plug.sub.Thing``), which means nothing in another process, or another
env's module there if that process loaded envs in another order: a pickle
naming it would bind the wrong class, silently. So what env code pickles
(its ``pickle.dumps``, ``dump``, ``Pickler`` and ``_Pickler``, and their
subclasses: joblib's, cloudpickle's) names env classes and functions as the
env's own venv would, ``plug.sub.Thing``, written as
``pkgutil.resolve_name("plug.sub:Thing")`` (only the standard library's
names appear in the stream, so any Python reads it; env code reading it
resolves the name for the env, a unit's code too, which has no ``pkgutil``
facade of its own). What env code
unpickles (``pickle.loads``...) maps real names to the env's aliases: a pickle
from the env's own venv, its worker, or another process's load of it loads
the env's classes. Host code reads such a pickle as the env would with
``env.import_module("pickle").loads(data)``; the host's own ``pickle`` reads
real names as the host's, as it would any pickle.

Pickles the host's code makes (its ``pickle.dumps``, multiprocessing's) keep
the aliases: in-process round trips give the very objects, and children of
env code know the parent's aliases (runtime/children.py).
"""

from __future__ import annotations

import functools
import io
import sys
from types import BuiltinFunctionType, FunctionType, ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .namemap import NameMap

_NAMED = (type, FunctionType, BuiltinFunctionType)  # what pickle writes by module and name


def by_real_name(obj: Any) -> Any:
    """A ``reducer_override``: an env's class or function as its real name (NotImplemented: anything
    else, pickled as pickle does, aliases of names no load owns now included)."""
    if not isinstance(obj, _NAMED):
        return NotImplemented
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return NotImplemented  # pickle's own error for a lambda or a local class
    from .namemap import ALIASES, FACADED

    top, dot, rest = module.partition(".")
    owner = ALIASES.owner(top)
    real = owner.real.get(top) if owner is not None else None
    if real is None or real in FACADED:
        return NotImplemented
    found: Any = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if found is not obj:  # not reachable by its name: pickle says so
        return NotImplemented
    import pkgutil

    return pkgutil.resolve_name, (f"{real}{dot}{rest}:{qualname}",)


def _chained(theirs: Any) -> Any:
    """A subclass's own ``reducer_override`` (cloudpickle's), asked after ``by_real_name``."""

    @functools.wraps(theirs)
    def reducer_override(self: Any, obj: Any) -> Any:
        found = by_real_name(obj)
        return theirs(self, obj) if found is NotImplemented else found

    return reducer_override


class _RealNames:
    """A pickler of the env: writes env objects by their real names, in its subclasses too."""

    reducer_override = staticmethod(by_real_name)  # called for each object pickle meets: one call, not two

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        theirs = cls.__dict__.get("reducer_override")
        if theirs is not None:
            cls.reducer_override = _chained(theirs)  # type: ignore[method-assign]


def pickle_attributes(names: NameMap, module: ModuleType) -> dict[str, Any]:
    """The env's ``pickle`` facade's own attributes: picklers writing real names, unpicklers reading
    them as the env's (subclasses of these, joblib's and dill's, resolve through ``find_class`` too)."""
    import _pickle

    def resolve_name(name: str) -> Any:  # what env pickles call (``by_real_name``): the name as the env means it
        import pkgutil

        module, colon, attr = name.partition(":")
        return pkgutil.resolve_name(names.module_name(module) + colon + attr)

    class Unpickler(_pickle.Unpickler):  # type: ignore[misc]  # the C unpickler, asked for each global
        __doc__ = _pickle.Unpickler.__doc__

        def find_class(self, module_name: str, name: str) -> Any:
            if module_name == "pkgutil" and name == "resolve_name":  # the env's own, facade or not (a unit)
                return resolve_name
            return super().find_class(names.module_name(module_name), name)

    class _Unpickler(module._Unpickler):  # type: ignore[misc, name-defined]
        __doc__ = module._Unpickler.__doc__

        def find_class(self, module_name: str, name: str) -> Any:
            if module_name == "pkgutil" and name == "resolve_name":
                return resolve_name
            return super().find_class(names.module_name(module_name), name)

    class Pickler(_RealNames, _pickle.Pickler):  # type: ignore[misc]
        __doc__ = _pickle.Pickler.__doc__

    class _Pickler(_RealNames, module._Pickler):  # type: ignore[misc, name-defined]
        __doc__ = module._Pickler.__doc__

    for made in (Unpickler, _Unpickler, Pickler, _Pickler):
        made.__module__, made.__qualname__ = module.__name__, made.__name__

    @functools.wraps(module.load)  # named as the host's: a pickle of the function names it
    def load(file: Any, **kwargs: Any) -> Any:
        return Unpickler(file, **kwargs).load()

    @functools.wraps(module.loads)
    def loads(data: Any, /, **kwargs: Any) -> Any:
        return Unpickler(io.BytesIO(data), **kwargs).load()

    @functools.wraps(module.dump)
    def dump(obj: Any, file: Any, protocol: Any = None, **kwargs: Any) -> None:
        Pickler(file, protocol, **kwargs).dump(obj)

    @functools.wraps(module.dumps)
    def dumps(obj: Any, protocol: Any = None, **kwargs: Any) -> bytes:
        buffer = io.BytesIO()
        Pickler(buffer, protocol, **kwargs).dump(obj)
        return buffer.getvalue()

    return {"Unpickler": Unpickler, "_Unpickler": _Unpickler, "load": load, "loads": loads,
            "Pickler": Pickler, "_Pickler": _Pickler, "dump": dump, "dumps": dumps}
