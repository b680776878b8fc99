"""Entry points that load into the env they were found in.

``EntryPoint.load`` is standard-library code: it imports the module an entry
point names with the host's ``import_module``, which gives the host's copy of
that name (or none). The env's ``importlib.metadata`` (runtime/facades.py)
hands out entry points of a subclass whose ``load`` imports through the env
instead; ``name``, ``value``, ``module`` and ``attr`` read as in a venv (real
names), and so do the distributions they come from, whether the env's own
code or the host (``Env.entry_points``) asks.
"""

from __future__ import annotations

import functools
import types
from typing import Any, Callable, Iterable

Importer = Callable[[str], types.ModuleType]


def env_classes(real: types.ModuleType, import_module: Importer, distribution: type) -> dict[str, Any]:
    """``EntryPoint``, ``PathDistribution`` and the ``wrap`` of a discovered distribution, bound to one env's
    ``import_module`` (a module name as the env's code writes it -> the env's module); the env's
    distributions are instances of ``distribution`` too (its ``importlib.metadata.Distribution``)."""

    class EntryPoint(real.EntryPoint):  # type: ignore[misc,name-defined]
        __doc__ = real.EntryPoint.__doc__

        def load(self) -> Any:
            """The object this entry point names, imported from the env (not the host)."""
            match = self.pattern.match(self.value)
            module = import_module(match.group("module"))
            attrs = filter(None, (match.group("attr") or "").split("."))
            return functools.reduce(getattr, attrs, module)

    EntryPoint.__module__ = real.__name__

    def ours(found: Iterable[Any], dist: Any) -> Any:
        """The env's entry points in the container the standard library returned them in."""
        made = []
        for point in found:
            mine = EntryPoint(point.name, point.value, point.group)
            made.append(mine._for(dist) if hasattr(mine, "_for") else mine)  # Python 3.10+ knows its dist
        return type(found)(made) if not isinstance(found, types.GeneratorType) else iter(made)

    subclasses: dict[type, type] = {}

    def subclass(kind: type) -> type:
        made = subclasses.get(kind)
        if made is None:
            def entry_points(self: Any) -> Any:
                return ours(super(made, self).entry_points, self)  # type: ignore[arg-type]

            made = subclasses[kind] = type(kind.__name__, (kind, distribution), {
                "entry_points": property(entry_points, doc=kind.entry_points.__doc__),
                "__module__": kind.__module__, "__qualname__": kind.__qualname__})
        return made

    def wrap(dist: Any) -> Any:
        """``dist`` as one of the env's distributions: its entry points load into the env."""
        if type(dist) in subclasses.values():
            return dist
        mine = object.__new__(subclass(type(dist)))
        mine.__dict__.update(vars(dist))
        return mine

    return {"EntryPoint": EntryPoint, "PathDistribution": subclass(real.PathDistribution), "wrap": wrap}
