"""Names an extension's C code builds at run time, out of the byte patch's reach: given their alias at load.

The patch renames the strings that provably name a module (modulenames.py).
Some module names are only put together when the code runs: psycopg2 makes
its exceptions from a table of ``"psycopg2.Warning"``... that a loop hands to
``PyErr_NewException``, so no user of those strings shows in the file. Such
a class then says ``__module__ == "psycopg2"``: pickle and every comparison
would look for the host's module. After the extension's initialisation, each
class and function in its module whose ``__module__`` claims one of the env's
real names is one of two things:

- the env's own object (nothing in the host's module of that name is it):
  its ``__module__`` is writable on classes made at run time and on
  functions, and gets the alias, as everything of the env carries; a type
  whose ``__module__`` cannot be set (an immutable one) is refused;
- the host's object, bound by a name the patch missed: always refused.

The extension's own module is looked at, and the env's modules its
initialisation imported: psycopg2 puts its ``"psycopg2.errors.%s"`` classes in
``psycopg2.errors``, a Python module it imports then (a module imported
before is not looked at again: that would cost a pass over every module at
every extension's load).
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Callable

_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a static type's __module__ is its tp_name's, which the patch renames
_FUNCTIONS = {"builtin_function_or_method", "cython_function_or_method", "fused_cython_function", "function"}


def claimed(modules: list[ModuleType], alias: Callable[[str], str | None]) -> tuple[list[str], list[str]]:
    """Give the alias to the objects of ``modules`` (the extension's, and the env's modules its initialisation
    imported) that claim a real name (``alias(top)``: its alias, None for a name that is not the env's own);
    answer the host's objects they bind and the objects that cannot take their alias (as ``"module.name"``),
    which the caller refuses."""
    host: list[str] = []
    immutable: list[str] = []
    for value in [v for m in modules if isinstance(m, ModuleType) for v in list(vars(m).values())]:
        kind = type(value)
        if isinstance(value, type):
            owner = value.__dict__.get("__module__") if value.__flags__ & _HEAPTYPE else None
        elif kind.__name__ in _FUNCTIONS:
            owner = getattr(value, "__module__", None)
        else:
            continue
        if not isinstance(owner, str):
            continue
        top, dot, rest = owner.partition(".")
        new = alias(top)
        if new is None:
            continue
        name = getattr(value, "__name__", "?")
        holder = sys.modules.get(owner)  # under a real name: the host's module (or this one, being made)
        if holder is not None and holder not in modules and getattr(holder, "__dict__", {}).get(name) is value:
            host.append(f"{owner}.{name}")
            continue
        try:
            value.__module__ = new + dot + rest
        except (AttributeError, TypeError):
            immutable.append(f"{owner}.{name}")
    return host, immutable
