"""The import map: host code's ``import dep_a`` loads ``dep_a`` from the env that provides it.

Each env provides the names in its ``provides``, else the top-level modules
of its ``source``. Installing the map puts a finder on ``sys.meta_path``
that answers those names (and their submodules) with the env's own module
objects, registered under the host's name as well as the env's alias.
"""

from __future__ import annotations

import sys
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterable

from ..config import EnvSpec
from ..errors import ConfigError

if TYPE_CHECKING:
    from .workspace import Workspace


def top_level_modules(source: Path) -> list[str]:
    """Packages (directories, namespace ones included) and modules directly in ``source``."""
    names = []
    for entry in sorted(source.iterdir()):
        if entry.name.startswith((".", "_")) or entry.name in ("bin", "tests", "requirements.txt"):
            continue
        if entry.is_dir() and entry.name.isidentifier():
            if any(entry.glob("*.py")) or (entry / "__init__.py").exists():
                names.append(entry.name)
        elif entry.suffix == ".py" and entry.stem.isidentifier() and entry.stem != "setup":
            names.append(entry.stem)
    return names


def provided_names(envs: Iterable[EnvSpec]) -> dict[str, list[str]]:
    """Each top-level name, with every env that provides it (more than one is a conflict)."""
    names: dict[str, list[str]] = {}
    for env in envs:
        provides = env.provides or (top_level_modules(env.source) if env.source else [])
        for name in provides:
            names.setdefault(name, []).append(env.name)
    return names


def conflicts(names: dict[str, list[str]]) -> list[str]:
    return [
        f"import name {name!r} is provided by several envs: {', '.join(envs)}; "
        "keep it in one env's `provides` (or rename it in the others)"
        for name, envs in sorted(names.items()) if len(envs) > 1
    ]


class ImportMapFinder:
    """Answers the mapped names with the providing env's modules."""

    def __init__(self, workspace: Workspace, routes: dict[str, str]) -> None:
        self.workspace = workspace
        self.routes = routes  # top-level name -> env name

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        env_name = self.routes.get(fullname.partition(".")[0])
        if env_name is None:
            return None
        env = self.workspace.env(env_name)
        module = env.import_module(fullname)
        env.also_known_as(fullname)  # reload and unload take it out of sys.modules
        if not isinstance(module, ModuleType):  # a process env's proxy
            return ModuleSpec(fullname, _Remote(module), is_package=hasattr(module, "__path__"))
        return ModuleSpec(fullname, _Existing(module), is_package=hasattr(module, "__path__"))


class _Existing:
    """Hands the import system a module that is already loaded, leaving its own spec in place."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.spec = module.__spec__

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return self.module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self.spec  # the import system set it to ours; the env's is the true one


class _Remote:
    """A module of an env in a worker process, for host code: a local module object (so sys.modules and
    the import system get a real module) whose attributes are the worker's module's (PEP 562)."""

    def __init__(self, proxy: Any) -> None:
        self.proxy = proxy

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        proxy = self.proxy
        module = ModuleType(spec.name)
        module.__getattr__ = lambda name: getattr(proxy, name)  # type: ignore[method-assign]
        module.__dir__ = lambda: dir(proxy)  # type: ignore[method-assign]
        return module

    def exec_module(self, module: ModuleType) -> None:
        pass  # it ran in the worker


def install_import_map(workspace: Workspace) -> ImportMapFinder:
    """From now on, host code's imports of the names envs provide load them from those envs."""
    names = provided_names(workspace.config.envs.values())
    clashes = conflicts(names)
    if clashes:
        raise ConfigError(clashes)
    for finder in [f for f in sys.meta_path if isinstance(f, ImportMapFinder) and f.workspace is workspace]:
        sys.meta_path.remove(finder)
    finder = ImportMapFinder(workspace, {name: envs[0] for name, envs in names.items()})
    sys.meta_path.insert(0, finder)
    return finder
