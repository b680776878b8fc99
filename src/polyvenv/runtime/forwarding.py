"""Modules that stand for a host module in env code: every attribute read, set and deleted on the host's.

The env's ``sys`` (runtime/envsys.py) and its facades of the standard library's resolvers
(runtime/resolvers.py) are such modules: env code imports them under the real name and sees the host's
very objects (``sys.stdout``, ``logging.getLogger``, ``pickle.dumps``), and what it assigns is the
process's, as in a venv; only the attributes the facade keeps (``own``) are its own. ``vars()`` of one
looks like the module it stands for, with the facade's own attributes in place.
"""

from __future__ import annotations

import functools
import sys
from types import FunctionType, ModuleType
from typing import Any, Collection

# what the import system records on a module it imports (and module machinery): the facade's own
MODULE_ATTRIBUTES = frozenset(dir(ModuleType("m"))) | {"__file__", "__path__", "__cached__", "__builtins__",
                                                        "__getattr__", "__dir__"}
_own_dict = ModuleType.__dict__["__dict__"].__get__


def _forwarded(module: ModuleType, name: str) -> property:
    """``name`` read, set and deleted on ``module``: a property whose getter is C code,
    ``getattr(module, name, <the facade>)`` (a module ``__getattr__`` costs a caught AttributeError per
    read, 30-80x a plain one, measured; a Python getter 6x)."""
    return property(functools.partial(getattr, module, name), lambda self, value: setattr(module, name, value),
                    lambda self: delattr(module, name))


def forwarding_class(module: ModuleType, own: Collection[str], slow: Collection[str] = ()) -> type[ModuleType]:
    """A module type standing for ``module``: attributes in ``own`` (and the import system's) are each
    instance's, the others ``module``'s. ``slow``: attributes ``module`` has only at times, read through
    the instance's ``__getattr__`` (as are the attributes it gets after this class is made)."""
    keep = frozenset(own) | MODULE_ATTRIBUTES

    class Forwarding(ModuleType):
        def __setattr__(self, attr: str, value: Any) -> None:
            if attr in keep:
                ModuleType.__setattr__(self, attr, value)
            elif _is_submodule(self, value):  # the import system records the facade's submodule on it
                _own_dict(self)[attr] = value
            else:
                setattr(module, attr, value)

        def __delattr__(self, attr: str) -> None:
            if attr in keep or attr in _own_dict(self):
                ModuleType.__delattr__(self, attr)
            else:
                delattr(module, attr)

        @property  # type: ignore[misc]  # vars(facade): the module's namespace, with the facade's own in place
        def __dict__(self) -> dict[str, Any]:  # type: ignore[override]
            found = dict(module.__dict__)
            found.update((k, v) for k, v in _own_dict(self).items() if k not in MODULE_ATTRIBUTES)
            return found

    Forwarding.__name__ = Forwarding.__qualname__ = f"Forwarding_{module.__name__.replace('.', '_')}"
    for name in list(vars(module)):  # what the module has now; names it gets later go through __getattr__
        if name not in keep and name not in slow:
            setattr(Forwarding, name, _forwarded(module, name))
    return Forwarding


def _is_submodule(facade: ModuleType, value: Any) -> bool:
    return isinstance(value, ModuleType) and str(getattr(value, "__name__", "")).startswith(facade.__name__ + ".")


def own_dict(module: ModuleType) -> dict[str, Any]:
    """A forwarding module's own attributes (under its ``__dict__`` property)."""
    return _own_dict(module)  # type: ignore[no-any-return]


def rebound(function: FunctionType, namespace: dict[str, Any]) -> FunctionType:
    """A copy of ``function`` whose globals are ``namespace``: the same code, resolving the names it
    looks up (``__import__``, ``importlib``, a helper of its module) in the env's copy of its module.
    It adds no frame: ``sys._getframe(depth)`` in it (doctest's caller's module) sees what it saw."""
    copy = FunctionType(function.__code__, namespace, function.__name__, function.__defaults__, function.__closure__)
    copy.__kwdefaults__ = function.__kwdefaults__
    copy.__doc__, copy.__qualname__, copy.__module__ = function.__doc__, function.__qualname__, function.__module__
    copy.__dict__.update(function.__dict__)
    return copy


def rebound_namespace(module: ModuleType, **names: Any) -> dict[str, Any]:
    """An env's copy of ``module``'s namespace, ``names`` in place, with every function defined there
    rebound to the copy (so they call each other's copies); its classes and other objects are the
    host's own. What such a function assigns with ``global`` is the env's (doctest's ``master``)."""
    namespace = dict(module.__dict__)
    for name, value in module.__dict__.items():
        if isinstance(value, FunctionType) and value.__globals__ is module.__dict__:
            namespace[name] = rebound(value, namespace)
    namespace.update(names)
    return namespace


def rebound_functions(namespace: dict[str, Any], module: ModuleType) -> dict[str, Any]:
    """The functions of ``namespace`` rebound from ``module`` (rebound_namespace)."""
    return {name: value for name, value in namespace.items()
            if isinstance(value, FunctionType) and value.__globals__ is namespace
            and isinstance(module.__dict__.get(name), FunctionType)}


def rebound_class(cls: type, namespace: dict[str, Any]) -> type:
    """A subclass of the host's ``cls`` (``isinstance`` holds both ways it needs to) whose own methods are
    rebound to ``namespace``, under the same names."""
    module_globals = sys.modules[cls.__module__].__dict__
    methods = {name: rebound(value, namespace) for name, value in vars(cls).items()
               if isinstance(value, FunctionType) and value.__globals__ is module_globals}
    return type(cls)(cls.__name__, (cls,), {"__module__": cls.__module__, "__qualname__": cls.__qualname__,
                                            "__doc__": cls.__doc__, **methods})
