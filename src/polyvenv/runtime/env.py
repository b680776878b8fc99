"""An environment loaded side by side with the host and other envs, in this interpreter.

An env's modules live in ``sys.modules`` under alias names (runtime/names.py)
and run code rewritten so that every module name means the env's own module
(runtime/rewrite.py). Within an env, a top-level name resolves to:

- the env's own distribution or source module of that name (its alias);
- ``importlib``: an env-bound facade, so ``import_module``, ``find_spec``,
  ``resources.files`` and ``metadata`` answer for the env (facades.py);
- the host's module, for the standard library and the env's ``shared`` names;
- otherwise nothing: importing it raises EnvImportError, as in a venv
  without system site-packages.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import sys
import threading
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable

from ..errors import EnvImportError, NotBuilt
from . import facades
from .importer import FINDER, install_finder
from .lease import Lease, hold
from .manifest import read_manifest
from .names import ALIASES, STDLIB, top_level_names
from .sitedir import distributions, normalize, site_packages

_FACADED = ("importlib",)
# Packages whose objects are the vocabulary of other packages' APIs: a user's typing_extensions.TypedDict
# or annotated_types.Gt must be the very objects the env's pydantic knows (research/renaming.md, trap 4).
# Shared with the host when the versions match; a mismatch is reported, never silently renamed away.
VOCABULARY = {"typing_extensions": "typing_extensions", "annotated_types": "annotated_types",
              "mypy_extensions": "mypy_extensions"}


class Env:
    """One env: its directories, its names, and its modules once imported.

    ``prefix`` is the venv the ``roots`` are in; for a workspace env, its link,
    which ``sync`` may switch to a new build at any time. Each load resolves it
    once (runtime/lease.py): every module, file and distribution of that load
    comes from the build it pointed at then, held until ``unload()``.
    """

    def __init__(self, name: str, roots: Iterable[str | Path], shared: Iterable[str] = (),
                 manifest: dict[str, Any] | None = None, prefix: str | Path | None = None) -> None:
        self.name = name
        self.roots = [Path(r) for r in roots]
        self.prefix = Path(prefix) if prefix is not None else None
        self.shared = tuple(shared)
        self.manifest = manifest
        self._lock = threading.RLock()
        self._state: _Names | None = None
        self._host_names: set[str] = set()  # names the import map gave this env's modules

    # -- construction -------------------------------------------------------------

    @classmethod
    def from_path(cls, path: str | Path, name: str | None = None, shared: Iterable[str] = ()) -> "Env":
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
            raise NotBuilt(f"{path} is neither a virtualenv nor a site-packages directory")
        roots = [site]
        if manifest and manifest.get("source"):
            roots.append(Path(manifest["source"]))
        return cls(name or (manifest or {}).get("name") or path.name, roots, shared, manifest, prefix=path)

    # -- the host's API -------------------------------------------------------------

    def import_module(self, name: str) -> ModuleType:
        """The env's module ``name`` (a dotted name as the env's code would write it)."""
        return importlib.import_module(self.names.module_name(name))

    def unload(self) -> None:
        """Forget every module this env loaded: they are collected once the host drops them.

        The next import reads the env's directories afresh, so an env rebuilt
        with other versions is loaded anew without restarting the host; the
        build this load held is let go (gc may delete it once superseded).
        """
        with self._lock:
            state, self._state = self._state, None
            if state is None:
                return
            prefixes = (*state.tops.values(), state.missing)
            for key in [k for k in sys.modules if k.partition(".")[0] in prefixes]:
                sys.modules.pop(key, None)
            for key in self._host_names:
                sys.modules.pop(key, None)
            self._host_names.clear()
            _forget_in_typing(prefixes)
            FINDER.forget(self)
            ALIASES.release(state)
            if state.lease is not None:
                state.lease.release()

    def also_known_as(self, host_name: str) -> None:
        """Record that ``sys.modules[host_name]`` is one of this env's modules (unload removes it)."""
        self._host_names.add(host_name)

    @property
    def loaded(self) -> list[str]:
        """Names (as the env's code writes them) of this env's modules now in ``sys.modules``."""
        state = self._state
        if state is None:
            return []
        own = {alias: real for alias, real in state.real.items() if real not in _FACADED}
        loaded = []
        for key in list(sys.modules):
            top, dot, rest = key.partition(".")
            if top in own:
                loaded.append(own[top] + dot + rest)
        return sorted(loaded)

    # metadata, answered for this env only
    def distributions(self):
        return self.metadata.distributions()

    def distribution(self, name: str):
        return self.metadata.distribution(name)

    def version(self, name: str) -> str:
        return self.metadata.version(name)

    def entry_points(self, **params: Any):
        return self.metadata.entry_points(**params)

    def files(self, name: str):
        return self.metadata.files(name)

    @property
    def metadata(self) -> ModuleType:
        """This env's ``importlib.metadata`` (what its own code gets for that import)."""
        return self.import_module("importlib.metadata")

    @property
    def build(self) -> Path | None:
        """The directory this load of the env reads from (its link resolved at first use), or None
        before the first import."""
        state = self._state
        return state.lease.build if state is not None and state.lease is not None else None

    def __repr__(self) -> str:
        return f"<polyvenv.Env {self.name!r} at {', '.join(map(str, self.roots))}>"

    @property
    def names(self) -> "_Names":
        """The env's name map for its current load (made on first use, dropped by unload)."""
        state = self._state
        if state is None:
            with self._lock:
                if self._state is None:
                    self._state = _Names(self)
                    install_finder()
                state = self._state
        return state


class _Names:
    """An env's name map for one load: real top-level names -> aliases, and the finder's answers."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.lease = _resolve(env)
        self.roots = [_in_build(root, env.prefix, self.lease) for root in env.roots]
        self.found = top_level_names(self.roots)  # real top-level name -> root it is in
        self.shared_tops = {s.partition(".")[0] for s in env.shared} | _same_vocabulary(env, self.found)
        self.tops: dict[str, str] = {}  # real or facade or missing name -> reserved alias
        for real in sorted(self.found):
            # the host's wins for a backport shadowing the standard library, and for what is shared
            if real not in STDLIB and real not in self.shared_tops:
                self.tops[real] = ALIASES.reserve(real, self)
        for name in _FACADED:
            self.tops[name] = ALIASES.reserve(name, self)
        self.missing = ALIASES.reserve("_polyvenv_missing", self)
        self.real = {alias: real for real, alias in self.tops.items()}
        self.own = {real for real in self.tops if real not in _FACADED}  # the env's own top-level names
        self.digest = hashlib.sha256(
            repr([sorted(self.tops.items()), self.missing, sorted(self.shared_tops)]).encode()).hexdigest()[:16]
        self.builtins = _env_builtins(self)

    # ALIASES owners must answer find_spec (the finder dispatches on the alias's owner)
    def find_spec(self, fullname: str, path: Any) -> ModuleSpec | None:
        top, dot, rest = fullname.partition(".")
        if top == self.missing:  # `import x` of a name the env lacks became `import <missing>.x`
            if not dot:
                return _empty_package(top)
            raise EnvImportError(self.env.name, rest, [str(r) for r in self.roots])
        real = self.real.get(top)
        if real is None:
            return None
        if real in _FACADED:
            return facades.spec(self, fullname, real + dot + rest)
        if not dot:
            return self._find_top(fullname, real)
        for directory in path or ():
            spec = FINDER.file_finder(self.env, directory).find_spec(fullname)
            if spec is not None:
                return spec
        return None

    def _find_top(self, alias: str, real: str) -> ModuleSpec | None:
        portions = []
        for root in self.roots:
            spec = FINDER.file_finder(self.env, str(root)).find_spec(real)
            if spec is None:
                continue
            if spec.loader is not None:
                found = ModuleSpec(alias, spec.loader.__class__(self.env, alias, spec.origin),
                                   origin=spec.origin, is_package=spec.submodule_search_locations is not None)
                if spec.submodule_search_locations is not None:
                    found.submodule_search_locations = list(spec.submodule_search_locations)
                found.has_location = True
                return found
            portions += list(spec.submodule_search_locations or ())
        if portions:  # a namespace package, possibly spread over the env's roots
            found = _empty_package(alias)
            found.submodule_search_locations = portions
            return found
        return None

    def replace(self, top: str, importing: bool) -> str | None:
        """The new first component for a module name the env's code uses (None: unchanged)."""
        alias = self.tops.get(top)
        if alias is not None:
            return alias if importing or top not in _FACADED else None
        if not importing or top in STDLIB or top in self.shared_tops or top in self.real or top == self.missing:
            return None
        return f"{self.missing}.{top}"

    def module_name(self, dotted: str) -> str:
        """What ``dotted``, as the env's code writes it, is called in this process."""
        if not isinstance(dotted, str) or dotted.startswith("."):
            return dotted
        top, dot, rest = dotted.partition(".")
        new = self.replace(top, True)
        return new + dot + rest if new else dotted

    name = module_name  # the rewritten code's ``__polyvenv__.name(...)``

    def modules_view(self) -> dict[str, ModuleType]:
        """``sys.modules`` as the env's code sees it: its own modules under the names it knows,
        the standard library's and its shared ones; not the host's others, not other envs'."""
        view = {}
        for key, module in list(sys.modules.items()):
            top, dot, rest = key.partition(".")
            real = self.real.get(top)
            if real is not None and real not in _FACADED:
                view[real + dot + rest] = module
            elif real is None and (top in STDLIB or top in self.shared_tops):
                view.setdefault(key, module)
        return view


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


def _same_vocabulary(env: Env, found: dict[str, Path]) -> set[str]:
    """Vocabulary packages the env may share with the host (same version); warn about the others."""
    shared = set()
    for top, dist in VOCABULARY.items():
        if top not in found:
            continue
        ours = distributions(found[top]).get(normalize(dist))
        try:
            import importlib.metadata

            theirs = importlib.metadata.version(dist)
        except Exception:  # the host has none: nothing to share
            continue
        if ours == theirs:
            shared.add(top)
        else:
            import warnings

            from ..errors import VocabularyConflict

            warnings.warn(VocabularyConflict(
                f"env {env.name!r} has {dist} {ours}, the host has {theirs}: the host's {top} objects are not "
                f"the env's (its code may reject or ignore them); pin {dist}=={theirs} in the env to share it"),
                stacklevel=4)
    return shared


def _forget_in_typing(prefixes: tuple[str, ...]) -> None:
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


def _empty_package(name: str) -> ModuleSpec:
    spec = ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = []
    return spec


def _env_builtins(names: _Names) -> dict[str, Any]:
    """The env's builtins: the host's, but ``compile``/``exec``/``eval`` rewrite source strings first
    (jinja2 compiles templates that import ``jinja2.runtime``), and ``__polyvenv__`` maps names at
    run time. ``__import__`` stays the host's own, which keeps CPython's import fast path."""
    import functools

    env_builtins = dict(builtins.__dict__)
    real_compile, real_exec, real_eval = builtins.compile, builtins.exec, builtins.eval

    @functools.lru_cache(maxsize=256)  # code objects are immutable: the same source compiles once
    def compile_text(source, filename, mode, flags, dont_inherit, optimize):
        import ast

        from .rewrite import rewrite

        tree = real_compile(source, filename, mode, flags | ast.PyCF_ONLY_AST, dont_inherit, optimize)
        return real_compile(rewrite(tree, names.replace), filename, mode, flags, dont_inherit, optimize)

    def env_compile(source, filename, mode, flags=0, dont_inherit=False, optimize=-1, **kw):
        import ast

        from .rewrite import rewrite

        if flags & ast.PyCF_ONLY_AST:
            return real_compile(source, filename, mode, flags, dont_inherit, optimize, **kw)
        if isinstance(source, (str, bytes)) and not kw:
            return compile_text(source, filename, mode, flags, dont_inherit, optimize)
        if isinstance(source, ast.AST):
            source = rewrite(source, names.replace)
        return real_compile(source, filename, mode, flags, dont_inherit, optimize, **kw)

    def _frame_namespaces(globals_, locals_):
        if globals_ is None:
            caller = sys._getframe(2)
            globals_, locals_ = caller.f_globals, caller.f_locals if locals_ is None else locals_
        if "__builtins__" not in globals_:
            globals_["__builtins__"] = env_builtins
        return globals_, locals_

    def env_exec(source, globals=None, locals=None, **kw):
        globals, locals = _frame_namespaces(globals, locals)
        if isinstance(source, (str, bytes)):
            source = env_compile(source, "<string>", "exec")
        return real_exec(source, globals, locals, **kw)

    def env_eval(source, globals=None, locals=None):
        globals, locals = _frame_namespaces(globals, locals)
        if isinstance(source, (str, bytes)):
            source = env_compile(source.lstrip(" \t") if isinstance(source, str) else source, "<string>", "eval")
        return real_eval(source, globals, locals)

    env_builtins.update(compile=env_compile, exec=env_exec, eval=env_eval, __polyvenv__=names)
    return env_builtins
