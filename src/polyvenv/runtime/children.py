"""Child processes of env code: a ``spawn`` or ``forkserver`` child finds the env modules it is sent.

A child started by ``spawn`` or ``forkserver`` (the default on Linux from
3.14) is a fresh interpreter: it unpickles the function, class or object it
is sent by module name, and an env's module names are this process's
aliases (``Plug``, ``nUmpy``), which mean nothing there, or another env's
modules if the child loads envs in another order. So the env's facades of
``multiprocessing``, ``multiprocessing.pool`` and ``concurrent.futures``
(runtime/resolvers.py) hand env code contexts whose processes pickle an
*adoption* first: every env and unit loaded in this process, with the
aliases it has here. The child unpickles it before anything else of the
process object (and so before any task), and loads those envs under the
same aliases (``Env(..., aliases=...)``, units by their share keys), lazily:
name maps only, each module imported when a task names it. A child whose
main module already gave one of those aliases to something else refuses
with ``NotResolvable``, naming the env and the ways out, rather than bind
another module under that name.

Every other attribute of those modules is the host's own object, and the
host's own processes are untouched: a ``fork`` child inherits the env as it
is, and the adoption is pickled only when the process object is.
"""

from __future__ import annotations

import functools
import sys
from multiprocessing import context as _context
from pathlib import Path
from types import ModuleType
from typing import Any

EnvEntry = tuple[str, list[str], list[str], dict[str, str]]  # name, roots, shared names, real name -> alias


def adoption() -> tuple[list[EnvEntry], dict[str, dict[str, str]]]:
    """What a child needs to know this process's env modules by their names here: each loaded env, and
    each unit's aliases by its share key."""
    from .namemap import ALIASES

    loaded = [names for names in ALIASES.owners() if not names.lender]
    envs = [(names.env, [str(r) for r in names.roots], sorted(names.shared), _own_aliases(names)) for names in loaded]
    units: dict[str, dict[str, str]] = {}
    reached = [unit for names in loaded for unit in names.units]
    while reached:
        unit = reached.pop()
        if unit.key not in units:
            units[unit.key] = _own_aliases(unit.names)
            reached.extend(unit.names.units)
    return envs, units


def _own_aliases(names: Any) -> dict[str, str]:
    """Real top-level name -> alias, for the names ``names`` owns (not a unit's it borrows)."""
    from .namemap import MISSING

    return {**{real: alias for real, alias in names.tops.items() if real not in names.borrowed},
            MISSING: names.missing}


_ADOPTED: list[Any] = []  # the envs a child loaded for its parent's objects: kept for the child's life
_adopted = False


def adopt(envs: list[EnvEntry], units: dict[str, dict[str, str]]) -> None:
    """In a child: load the parent's envs and units under the parent's aliases (``adoption``). An env its
    main module already loaded from the same directories under the same aliases is that one; an alias
    given to anything else here is refused."""
    global _adopted
    from . import units as unit_registry
    from .env import Env
    from .namemap import ALIASES

    if _adopted:
        return
    fresh = []
    for name, roots, shared, aliases in envs:
        owners = {alias: ALIASES.owner(alias) for alias in aliases.values()}
        taken = [(real, alias) for real, alias in aliases.items() if owners[alias] is not None or alias in sys.modules]
        if not taken:
            fresh.append((name, roots, shared, aliases))
            continue
        other = [(real, alias) for real, alias in taken if owners[alias] is None or owners[alias].env != name
                 or [str(r) for r in owners[alias].roots] != roots or _own_aliases(owners[alias]).get(real) != alias]
        if other or len(taken) < len(aliases):  # not this env as the main module loaded it here
            raise _refused(name, *(other or taken)[0])
    unit_registry.ADOPTED.update(units)
    try:
        for name, roots, shared, aliases in fresh:
            env = Env(name, [Path(r) for r in roots], shared, aliases=aliases)
            _ADOPTED.append(env)
            env.names  # the name map, with the parent's aliases; modules load as tasks name them
    finally:
        unit_registry.ADOPTED.clear()
    for key, aliases in units.items():  # a unit the main module made here first may have other names
        unit = unit_registry.UNITS.get(key)
        here = _own_aliases(unit.names) if unit is not None else aliases
        wrong = [(real, alias) for real, alias in aliases.items() if here.get(real) != alias]
        if wrong:
            raise _refused(unit.names.env, *wrong[0])
    _adopted = True


def _refused(env: str, real: str, alias: str) -> Exception:
    from ..errors import NotResolvable

    return NotResolvable(
        f"env {env!r}: this child process cannot load it under the name its module {real!r} has in the parent "
        f"({alias!r}): its main module already gave that name to other modules here. Load envs under "
        "`if __name__ == '__main__':`, start the child with the 'fork' method, or give the env "
        'isolation = "process"', env=env)


class _Adoption:
    """Pickled first in an env's process object: unpickling it adopts the parent's envs."""

    def __reduce__(self) -> tuple[Any, ...]:
        return adopt, adoption()


def _rebuilt(adopted: None, cls: type, state: dict[str, Any]) -> Any:
    """A process object in the child, unpickled after the adoption (an argument before ``state``)."""
    process = cls.__new__(cls)
    process.__dict__.update(state)
    return process


class _Adopting:
    """A process class of the env's contexts: its pickle adopts the parent's envs first."""

    def __reduce__(self) -> tuple[Any, ...]:
        cls = type(self)
        return _rebuilt, (_Adoption(), _HOST_CLASS.get(cls, cls), self.__dict__)


_HOST_CLASS: dict[type, type] = {}  # an adopting process or context class -> the host's it stands for


@functools.lru_cache(maxsize=None)
def _adopting_process(host: type) -> type:
    made = type(host.__name__, (_Adopting, host), {"__module__": host.__module__, "__qualname__": host.__qualname__})
    _HOST_CLASS[made] = host
    return made


def _adopting_class(host: type) -> type:
    """A concrete context type whose processes adopt, and whose ``get_context(method)`` gives such a one."""

    def get_context(self: Any, method: str | None = None) -> Any:
        return self if method is None else context(_context.BaseContext.get_context(self, method))

    made = type(host.__name__, (host,), {"Process": _adopting_process(host.Process), "get_context": get_context,
                                         "__module__": host.__module__, "__qualname__": host.__qualname__})
    _HOST_CLASS[made] = host
    return made


def context(host: Any) -> Any:
    """The env's context standing for the host's context ``host``: one per start method, per process."""
    if isinstance(host, _context.DefaultContext):
        return DEFAULT
    kind = type(host)
    if kind in _HOST_CLASS:  # one of these already
        return host
    made = _CONTEXTS.get(kind)
    if made is None:
        made = _CONTEXTS.setdefault(kind, _adopting_class(kind)())
    return made


_CONTEXTS: dict[type, Any] = {}  # the host's context type -> the env's context


class _DefaultContext(_context.DefaultContext):
    """``multiprocessing`` as env code sees it: the host's default start method (``set_start_method`` is
    the process's, as in a venv), with contexts whose processes adopt."""

    Process = _adopting_process(_context.Process)

    def __init__(self, host: Any) -> None:  # no state of its own: the host's default context has it
        self._host = host

    def get_context(self, method: str | None = None) -> Any:
        return context(self._host.get_context(method))

    def get_start_method(self, allow_none: bool = False) -> Any:
        return self._host.get_start_method(allow_none)

    def set_start_method(self, method: str | None, force: bool = False) -> None:
        self._host.set_start_method(method, force)


DEFAULT = _DefaultContext(_context._default_context)


def multiprocessing_attributes(module: ModuleType) -> dict[str, Any]:
    """The ``multiprocessing`` facade's own attributes: the default context's methods, and ``Process``."""
    host = _context._default_context
    own: dict[str, Any] = {"Process": DEFAULT.Process}
    for name in getattr(module, "__all__", ()):
        value = getattr(module, name, None)
        if getattr(value, "__self__", None) is host:
            own[name] = getattr(DEFAULT, name)
    return own


def pool_attributes(module: ModuleType) -> dict[str, Any]:
    """``multiprocessing.pool``'s ``Pool``: its processes adopt (``ThreadPool`` starts none)."""
    host = module.Pool

    class Pool(host):  # type: ignore[misc, valid-type]
        __doc__ = host.__doc__

        def __init__(self, processes: Any = None, initializer: Any = None, initargs: Any = (),
                     maxtasksperchild: Any = None, context: Any = None) -> None:
            super().__init__(processes, initializer, initargs, maxtasksperchild,
                             _env_context(context))

    Pool.__module__, Pool.__qualname__ = host.__module__, host.__qualname__
    return {"Pool": Pool}


def executor_attributes(module: ModuleType) -> dict[str, Any]:
    """``concurrent.futures.process``'s ``ProcessPoolExecutor``: its workers adopt."""
    host = module.ProcessPoolExecutor

    class ProcessPoolExecutor(host):  # type: ignore[misc, valid-type]
        __doc__ = host.__doc__

        def __init__(self, max_workers: Any = None, mp_context: Any = None, *args: Any, **kwargs: Any) -> None:
            if mp_context is None:  # the host's choice: the default, or spawn to replace a worker
                mp_context = DEFAULT.get_context("spawn" if kwargs.get("max_tasks_per_child") is not None else None)
            super().__init__(max_workers, _env_context(mp_context), *args, **kwargs)

    ProcessPoolExecutor.__module__, ProcessPoolExecutor.__qualname__ = host.__module__, host.__qualname__
    return {"ProcessPoolExecutor": ProcessPoolExecutor}


def _env_context(given: Any) -> Any:
    return DEFAULT.get_context() if given is None else context(given) if isinstance(given, _context.BaseContext) \
        else given
