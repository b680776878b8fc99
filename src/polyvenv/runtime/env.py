"""An environment loaded side by side with the host and other envs, in this interpreter.

An env's modules live in ``sys.modules`` under alias names (runtime/names.py)
and run code rewritten so that every module name means the env's own module
(runtime/rewrite.py). Within an env, a top-level name resolves to:

- the env's own distribution or source module of that name (its alias);
- ``importlib``: an env-bound facade, so ``import_module``, ``find_spec``,
  ``resources.files`` and ``metadata`` answer for the env (facades.py);
- ``sys``: the host's, but ``path``, ``meta_path``, ``path_hooks`` and
  ``path_importer_cache`` are the env's own (envsys.py);
- the host's module, for the standard library and the env's ``shared`` names;
- what a finder or path entry the env's code (or its ``.pth`` files) added
  provides, under the env's names;
- otherwise nothing, as in a venv without system site-packages: importing it
  raises EnvImportError (a ModuleNotFoundError), ``find_spec`` gives None.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ..errors import NotBuilt
from .envsys import run_pth
from .importer import install_finder
from .lease import Lease, hold
from .manifest import Manifest, read_manifest
from .namemap import ALIASES, FACADED, NameMap
from .sitedir import site_packages

if TYPE_CHECKING:
    from importlib.metadata import Distribution, EntryPoints, PackagePath


class Env:
    """One env: its directories, its names, and its modules once imported.

    ``prefix`` is the venv the ``roots`` are in; for a workspace env, its link,
    which ``sync`` may switch to a new build at any time. Each load resolves it
    once (runtime/lease.py): every module, file and distribution of that load
    comes from the build it pointed at then, held until ``unload()``.
    """

    def __init__(self, name: str, roots: Iterable[str | Path], shared: Iterable[str] = (),
                 manifest: Manifest | None = None, prefix: str | Path | None = None,
                 aliases: Mapping[str, str] | None = None) -> None:
        """``aliases``: real top-level name -> the alias its modules must have in this process, for the
        first load (a child process of env code loads its parent's envs so: runtime/children.py)."""
        self.name = name
        self._aliases = dict(aliases or {})
        self.roots = [Path(r) for r in roots]
        self.prefix = Path(prefix) if prefix is not None else None
        self.shared = tuple(shared)
        self.manifest = manifest
        self._lock = threading.RLock()
        self._state: NameMap | None = None
        self._lease: Lease | None = None
        self._kept_leases: list[Lease] = []  # older builds that modules kept by reload() came from
        self._host_names: set[str] = set()  # names the import map gave this env's modules

    # -- construction -------------------------------------------------------------

    @classmethod
    def from_path(cls, path: str | Path, name: str | None = None, shared: Iterable[str] = ()) -> Env:
        """Any existing venv (or a site-packages directory itself), no build step, no config.

        Links in ``path`` are resolved at each load, not here: for a workspace
        env (a link to its current build), the env loads from the build the
        link points at on first use, and after ``unload()`` from the one it
        points at then, so a rebuilt env loads its new versions.
        """
        path = Path(path).absolute()
        manifest = read_manifest(path)
        site = site_packages(path)
        if site is None:
            raise NotBuilt(f"{path} is neither a virtualenv nor a site-packages directory", path=path)
        roots = [site]
        if manifest and manifest.source:
            roots.append(Path(manifest.source))
        return cls(name or (manifest.name if manifest else None) or path.name, roots, shared, manifest, prefix=path)

    # -- the host's API -------------------------------------------------------------

    def import_module(self, name: str) -> ModuleType:
        """The env's module ``name`` (a dotted name as the env's code would write it), of its current
        generation: asked again if a reload switched generations meanwhile (the aliases of the one it
        asked by may be retired, or even free again, by the time the import looks them up)."""
        for _ in range(8):
            names = self.names
            try:
                module = importlib.import_module(names.module_name(name))
            except ImportError:
                if self._state is names:
                    raise
                continue
            if self._state is names:
                return module
        return importlib.import_module(self.names.module_name(name))

    def reload(self) -> list[str]:
        """Replace what changed on disk by a new generation; the top-level names reloaded (for the host
        to register their new objects), ``[]`` when nothing changed or nothing is loaded yet.

        The env's ``source`` and its build (its link as it points now, after a ``sync``) are read
        afresh. A top-level name the env loaded is reloaded if one of its files changed, or its
        distribution did, or it imports one that is reloaded; the others keep their modules
        (runtime/generation.py). The new generation is imported completely before it replaces the
        old one in one step, so threads calling the env see the old or the new, never half of one;
        objects of the old one keep working and are collected once the host drops them. A failure
        (a syntax or import error) raises ReloadFailed naming the file, and leaves the old
        generation running untouched.
        """
        from . import generation

        with self._lock:
            old = self._state
            if old is None:
                return []
            lease = _resolve(self)
            try:
                self.check_interpreter()
                roots = [_in_build(root, self.prefix, lease) for root in self.roots]
                plan = generation.plan(old, roots)
            except BaseException:
                if lease is not None:
                    lease.release()
                raise
            if plan.unchanged:
                if lease is not None:
                    lease.release()
                return []
            generation.prepare(generation.leaving(plan.retired))  # long before the switch (see there)
            missing = {old.missing} - set(sys.modules)  # made by the new generation, if it fails to import a name
            new, facades = None, None
            try:
                new = NameMap(self.name, roots, self.shared, inherit=plan.inherit)
                new.files.update((real, files) for real, files in old.files.items() if real in plan.inherit)
                # a name of its own the new generation gets from a unit (no longer private): its old modules leave
                plan.retired += [old.tops[real] for real in plan.inherit if real in new.borrowed and real in old.own]
                facades = generation.facade_entries(old)  # after new took their aliases: imported anew as new's
                run_pth(new)
                generation.stage(new, plan)
            except BaseException as error:
                staged = set(new.aliases) - set(plan.inherit.values()) if new is not None else set()
                if facades is not None:
                    staged |= {old.tops[f] for f in FACADED}
                generation.drop(staged | missing)
                sys.modules.update(facades or {})
                ALIASES.transfer(plan.inherit.values(), old)
                if new is not None:
                    new.release()
                if lease is not None:
                    lease.release()
                if not isinstance(error, Exception):
                    raise
                raise _reload_failed(self.name, self.roots, error) from error
            generation.retire(self.name, plan.retired, generation.leaving(plan.retired))  # its code imports itself
            self._state = new  # the switch: from here on the env's names are the new generation's
            ALIASES.retire(plan.retired, self.name)
            generation.drop(plan.retired)
            generation.sweep(self.name)
            for key in [k for k in self._host_names if _alias_of(k) in plan.retired]:
                sys.modules.pop(key, None)
                self._host_names.discard(key)
            forget_in_typing(tuple(plan.retired))
            old.release()  # what it still reserves: names no generation has now
            self._keep_leases(lease)
            return plan.reloaded

    def _keep_leases(self, lease: Lease | None) -> None:
        """Hold the new build, and every older one a module kept by a reload was loaded from."""
        previous = [held for held in (self._lease, *self._kept_leases) if held is not None]
        self._lease, self._kept_leases = lease, []
        state = self._state
        files = [path for real in (state.own if state else ()) for path in state.files.get(real, {})] if state else []
        for held in previous:
            if lease is not None and held.build == lease.build or not any(
                    path.startswith(str(held.build) + os.sep) for path in files):
                held.release()
            else:
                self._kept_leases.append(held)

    def unload(self) -> None:
        """Forget every module this env loaded: they are collected once the host drops them (until
        then, code of theirs still imports its own loaded modules, and no other env gets their names).

        The next import reads the env's directories afresh, so an env rebuilt
        with other versions is loaded anew without restarting the host; the
        build this load held is let go (gc may delete it once superseded).
        """
        with self._lock:
            state, self._state = self._state, None
            lease, self._lease = self._lease, None
            if state is None:
                return
            prefixes = state.aliases
            from . import generation

            generation.leave(self.name, prefixes)  # retired: a callback the host kept still imports its own
            generation.sweep(self.name)  # what a reload's old generation put back leaves too
            for key in self._host_names:
                sys.modules.pop(key, None)
            self._host_names.clear()
            forget_in_typing(prefixes)
            state.release()
            if lease is not None:
                lease.release()
            for held in self._kept_leases:
                held.release()
            self._kept_leases = []
            from .namemap import ALIASES

            if not ALIASES.owners():  # the last env (and unit) gone: the copies of the stdlib's namespaces too
                from .native.globalstate import SHARED

                SHARED.forget()

    def also_known_as(self, host_name: str) -> None:
        """Record that ``sys.modules[host_name]`` is one of this env's modules (unload removes it)."""
        self._host_names.add(host_name)

    @property
    def loaded(self) -> list[str]:
        """Names (as the env's code writes them) of this env's modules now in ``sys.modules``."""
        state = self._state
        if state is None:
            return []
        own = {alias: real for alias, real in state.real.items() if real not in FACADED}
        loaded = []
        for key in list(sys.modules):
            top, dot, rest = key.partition(".")
            if top in own:
                loaded.append(own[top] + dot + rest)
        return sorted(loaded)

    # metadata, answered for this env only
    def distributions(self) -> Iterable[Distribution]:
        return self.metadata.distributions()  # type: ignore[no-any-return]

    def distribution(self, name: str) -> Distribution:
        return self.metadata.distribution(name)  # type: ignore[no-any-return]

    def version(self, name: str) -> str:
        return self.metadata.version(name)  # type: ignore[no-any-return]

    def entry_points(self, **params: Any) -> EntryPoints:
        """The env's entry points (``importlib.metadata.entry_points``; on Python 3.9, its dict by group)."""
        return self.metadata.entry_points(**params)  # type: ignore[no-any-return]

    def files(self, name: str) -> list[PackagePath] | None:
        return self.metadata.files(name)  # type: ignore[no-any-return]

    @property
    def metadata(self) -> ModuleType:
        """This env's ``importlib.metadata`` (what its own code gets for that import)."""
        return self.import_module("importlib.metadata")

    @property
    def build(self) -> Path | None:
        """The directory this load of the env reads from (its link resolved at first use), or None
        before the first import."""
        lease = self._lease
        return lease.build if lease is not None else None

    def check_interpreter(self) -> None:
        """Raise InterpreterMismatch if the env is built for another Python than this one (version,
        ABI, free-threaded or not): loading it side by side would run its code in the wrong interpreter."""
        from .abi import mismatch

        differs = mismatch(self.manifest, self.roots)
        if differs:
            from ..errors import InterpreterMismatch

            raise InterpreterMismatch(
                f"env {self.name!r} is built for {differs}: namespace isolation loads an env into the host's own "
                "interpreter; give the env isolation = \"process\" (or \"auto\"), or build it for the host's "
                "Python", env=self.name, path=self.prefix)

    def __repr__(self) -> str:
        return f"<polyvenv.Env {self.name!r} at {', '.join(map(str, self.roots))}>"

    @property
    def names(self) -> NameMap:
        """The env's name map for its current load (made on first use, dropped by unload)."""
        state = self._state
        if state is None:
            with self._lock:
                if self._state is None:
                    lease = _resolve(self)
                    try:
                        self.check_interpreter()
                    except BaseException:
                        if lease is not None:
                            lease.release()
                        raise
                    roots = [_in_build(root, self.prefix, lease) for root in self.roots]
                    try:
                        names = NameMap(self.name, roots, self.shared, inherit=self._aliases)
                        self._aliases = {}
                    except BaseException:
                        if lease is not None:
                            lease.release()
                        raise
                    install_finder()  # before another thread can see the names and import by them
                    run_pth(names)  # as site does for a venv; threads wait for it, as for a venv's start
                    self._lease = lease
                    self._state = names
                state = self._state
        return state


def _resolve(env: Env) -> Lease | None:
    """The build this load reads from, held; None for an env without a prefix (its roots as given)."""
    if env.prefix is None:
        return None
    lease = hold(env.prefix)
    if lease.held:
        env.manifest = read_manifest(lease.build) or env.manifest  # this build's, not the link's now
    return lease


def _in_build(root: Path, prefix: Path | None, lease: Lease | None) -> Path:
    """``root`` (a path through the env's prefix, e.g. its site-packages) inside the resolved build."""
    if prefix is None or lease is None:
        return root
    try:
        inside = root.relative_to(prefix)
    except ValueError:  # the env's source, or another directory outside the venv: as declared
        return root
    moved = lease.build / inside
    if not moved.is_dir() and inside.parts[:1] == ("lib",):  # rebuilt for another Python: its site-packages
        moved = site_packages(lease.build) or moved
    return moved


def _alias_of(host_name: str) -> str:
    """The first component of the env module ``sys.modules[host_name]`` is (the import map's names)."""
    return str(getattr(sys.modules.get(host_name), "__name__", "")).partition(".")[0]


def _reload_failed(env: str, roots: list[Path], error: BaseException) -> Exception:
    """One line: the env, the file (and line) of the env's that failed, the error, and what to do."""
    from ..errors import ReloadFailed

    where = ""
    if isinstance(error, SyntaxError) and error.filename:
        where = f"{error.filename}:{error.lineno}"
    else:
        import traceback

        inside = [str(r) for r in roots]
        frames = [f for f in traceback.extract_tb(error.__traceback__)
                  if any(f.filename.startswith(r + os.sep) for r in inside)]
        if frames:
            where = f"{frames[-1].filename}:{frames[-1].lineno}"
    return ReloadFailed(f"env {env!r}: reload failed{' at ' + where if where else ''}: "
                        f"{type(error).__name__}: {error}; the old generation keeps running: fix it and reload again",
                        env=env, path=where.rpartition(":")[0] or None)


def forget_in_typing(prefixes: tuple[str, ...]) -> None:
    """Drop what the standard library's typing keeps of unloaded modules: ``@overload`` stubs by
    module name (3.11+) and its lru caches of generic aliases, which hold the env's classes."""
    typing = sys.modules.get("typing")
    if typing is None:
        return
    registry = getattr(typing, "_overload_registry", {})
    for module_name in [m for m in list(registry) if m.partition(".")[0] in prefixes]:
        registry.pop(module_name, None)
    for clear in list(getattr(typing, "_cleanups", ())):
        clear()
