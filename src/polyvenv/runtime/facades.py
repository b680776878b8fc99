"""``importlib`` and ``builtins`` as an env's code sees them: the host's, except where a module name is
involved (and the env's ``sys``, runtime/envsys.py, and its facades of the standard library's name
resolvers, runtime/resolvers.py, handed out by the same loader).

``import_module``, ``util.find_spec``, the ``resources`` functions and
``__import__`` map the names they are given to the env's aliases (names
computed at run time, which the rewriter cannot see), and ``metadata``
answers from the env's own distributions only. Every other attribute is the
host's own object.
"""

from __future__ import annotations

import importlib
import types
from importlib.machinery import ModuleSpec
from typing import TYPE_CHECKING, Any, Callable

from .forwarding import rebound_namespace

if TYPE_CHECKING:
    from .namemap import NameMap

_SUBMODULES = ("metadata", "util", "resources", "machinery")
_RESOURCE_FUNCTIONS = ("files", "open_binary", "open_text", "read_binary", "read_text", "contents",
                       "is_resource", "path")


class _Facade(types.ModuleType):
    """A module whose missing attributes are those of the module it stands for."""

    def __getattr__(self, attr: str) -> Any:
        real = self.__dict__["__polyvenv_real__"]
        return getattr(importlib.import_module(real), attr)


class FacadeLoader:
    def __init__(self, names: NameMap, real: str) -> None:
        self.names = names
        self.real = real

    def create_module(self, spec: ModuleSpec) -> types.ModuleType:
        if self.real == "sys":  # the env's own, made with its name map (runtime/envsys.py)
            return self.names.sys
        if self.real == "builtins":
            from .envbuiltins import builtins_module

            return builtins_module(self.names)
        if not self.real.startswith("importlib"):  # a standard-library resolver's (runtime/resolvers.py)
            from .resolvers import facade

            return facade(self.names, spec.name, self.real)
        module = _Facade(spec.name)
        module.__dict__["__polyvenv_real__"] = self.real
        make = _MAKERS.get(self.real.partition(".")[2] or "") if self.real.startswith("importlib") else None
        if make:
            make(module, self.names, spec.name)
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def spec(names: NameMap, fullname: str, real: str) -> ModuleSpec | None:
    """The spec of the env's facade of ``real``; None where the host has no such module (as a venv
    would answer): a facade of a package is a package whose submodules are facades too."""
    if real not in ("sys", "builtins"):
        try:
            host = importlib.import_module(real)
        except ImportError:
            return None
        package = hasattr(host, "__path__")
    else:
        package = False
    found = ModuleSpec(fullname, FacadeLoader(names, real), is_package=package)
    if package:
        found.submodule_search_locations = []
    return found


def _top(module: types.ModuleType, names: NameMap, alias: str) -> None:
    def import_module(name: str, package: str | None = None):
        return importlib.import_module(*_absolute(names, name, package))

    def submodule(attr: str) -> Any:
        if attr in _SUBMODULES:
            return importlib.import_module(f"{alias}.{attr}")
        return getattr(importlib, attr)

    module.__dict__.update(import_module=import_module, __import__=names.import_)
    module.__getattr__ = submodule  # type: ignore[method-assign]  # PEP 562 module __getattr__


def _util(module: types.ModuleType, names: NameMap, alias: str) -> None:
    import importlib.util

    def find_spec(name: str, package: str | None = None):
        return importlib.util.find_spec(*_absolute(names, name, package))

    module.__dict__["find_spec"] = find_spec


def _machinery(module: types.ModuleType, names: NameMap, alias: str) -> None:
    import importlib.machinery

    real = importlib.machinery.PathFinder

    class PathFinder(real):  # type: ignore[misc, valid-type]
        """The env's PathFinder: without a path it searches the env's ``sys.path`` (runtime/envsys.py), as
        a venv's searches its own (pytest's assertion rewriter finds the user's tests this way)."""

        @classmethod
        def find_spec(cls, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
            if path is None:
                from .importer import path_spec

                return path_spec(names, fullname)
            return real.find_spec(fullname, path, target)

    module.__dict__["PathFinder"] = PathFinder


def _resources(module: types.ModuleType, names: NameMap, alias: str) -> None:
    import importlib.resources

    def mapped(function: Callable[..., Any]) -> Callable[..., Any]:
        def call(package: Any, *args: Any, **kwargs: Any) -> Any:
            return function(names.module_name(package) if isinstance(package, str) else package, *args, **kwargs)
        call.__name__ = call.__qualname__ = function.__name__
        call.__doc__ = function.__doc__
        return call

    for name in _RESOURCE_FUNCTIONS:
        function = getattr(importlib.resources, name, None)
        if callable(function):
            module.__dict__[name] = mapped(function)


def _metadata(module: types.ModuleType, names: NameMap, alias: str) -> None:
    def import_module(name: str) -> types.ModuleType:
        return importlib.import_module(names.module_name(name))

    module.__dict__.update(metadata_namespace([str(root) for root in names.roots], import_module))


def metadata_namespace(paths: list[str], import_module: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """``importlib.metadata``'s namespace with its own functions re-bound to one whose ``Distribution``
    discovers the distributions in ``paths`` only: ``version``, ``metadata``, ``entry_points``... then
    answer for those directories (an env's own, whether its code runs here or in a worker). With
    ``import_module`` (a real module name -> the env's module), entry points load through it
    (runtime/entrypoints.py), never from the host."""
    import importlib.metadata as real

    class Distribution(real.Distribution):  # type: ignore[misc]  # only its class methods are used
        @classmethod
        def discover(cls, **kwargs: Any):
            if kwargs.get("context") is None:
                kwargs.pop("context", None)
                kwargs.setdefault("path", paths)
            return map(wrap, real.Distribution.discover(**kwargs))

        @classmethod
        def from_name(cls, name: str):
            for found in cls.discover(name=name):
                return found
            raise real.PackageNotFoundError(name)

        @staticmethod
        def at(path: Any):
            return wrap(real.Distribution.at(path))

    env: dict[str, Any] = {}
    if import_module is not None:
        from .entrypoints import env_classes

        env = env_classes(real, import_module, Distribution)
    wrap = env.pop("wrap", lambda dist: dist)
    namespace = rebound_namespace(real, Distribution=Distribution, **env)
    return {k: v for k, v in namespace.items() if not k.startswith("__") or k == "__all__"}


_MAKERS: dict[str, Callable[[types.ModuleType, NameMap, str], None]] = {
    "": _top, "util": _util, "resources": _resources, "metadata": _metadata, "machinery": _machinery,
}


def _absolute(names: NameMap, name: str, package: str | None) -> tuple[str, str | None]:
    """``(name, package)`` in the process's names: a relative name keeps its dots, its package is mapped
    (pydantic 2's ``import_module('.', package='pydantic_core')``)."""
    if name.startswith("."):
        return name, names.module_name(package) if isinstance(package, str) else package
    return names.module_name(name), package
