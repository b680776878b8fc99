"""An env's name map for one load: which top-level names are its own, under which aliases, and what it shares.

Everything that decides what a module name means for an env's code lives
here: the names found in its directories, the aliases reserved for them
(runtime/names.py), the names shared with the host, how a name the code
writes becomes the name it has in this process (``replace``, ``module_name``),
``sys.modules`` as that code sees it, and the per-directory finders of this
load. The finder and loaders (runtime/importer.py) read it; the host-facing
``Env`` (runtime/env.py) makes one per load and releases it on ``unload()``.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Mapping, Sequence

from .envbuiltins import env_builtins
from .envsys import env_sys, pth_files, pth_paths, stdlib_entries
from .names import STDLIB, Aliases, top_level_names
from .sitedir import distributions, normalize

FACADED = ("importlib", "builtins", "sys")  # names the env's code gets an env-bound facade of (facades.py,
# envbuiltins.py, envsys.py)
# Packages whose objects are the vocabulary of other packages' APIs: a user's typing_extensions.TypedDict
# or annotated_types.Gt must be the very objects the env's pydantic knows (research/renaming.md, trap 4).
# Shared with the host when the versions match; a mismatch is reported, never silently renamed away.
VOCABULARY = ("typing_extensions", "annotated_types", "mypy_extensions")
MISSING = "_polyvenv_missing"  # what an alias of the names an env lacks stands for


class NameMap:
    """Real top-level names -> aliases for one load of env ``env`` from ``roots``.

    ``found``: each top-level name in the roots, with its root; ``tops``: each name the env's code
    gets its own module of (its own names and the facades) -> its alias; ``real``: the reverse;
    ``own``: the env's own top-level names; ``shared``: the top-level names it uses the host's
    modules of; ``missing``: the alias under which names the env lacks fail to import.
    """

    def __init__(self, env: str, roots: Iterable[Path], shared: Iterable[str] = ()) -> None:
        self.env = env
        self.roots = list(roots)
        self.found = top_level_names(self.roots)
        self.shared = {s.partition(".")[0] for s in shared} | _same_vocabulary(env, self.found)
        self.tops: dict[str, str] = {}
        for real in sorted(self.found):
            # the host's wins for a backport shadowing the standard library, and for what is shared
            if real not in STDLIB and real not in self.shared:
                self.tops[real] = ALIASES.reserve(real, self)
        for name in FACADED:
            self.tops[name] = ALIASES.reserve(name, self)
        self.missing = ALIASES.reserve(MISSING, self)
        self.real = {alias: real for real, alias in self.tops.items()}
        self.own = {real for real in self.tops if real not in FACADED}
        self.digest = hashlib.sha256(
            repr([sorted(self.tops.items()), self.missing, sorted(self.shared)]).encode()).hexdigest()[:16]
        self.builtins = env_builtins(self)
        self.stdlib = frozenset(stdlib_entries())  # the host's sys.path entries of the standard library
        # the env's sys: its own path, meta_path, path_hooks (runtime/envsys.py), extended by its .pth files
        self.sys = env_sys(self.tops["sys"], self.stdlib, self.roots)
        self.pth = pth_files(self.roots)
        for directory, _, lines in self.pth:
            self.sys.path += pth_paths(directory, lines)
        self.standard_hooks = tuple(self.sys.path_hooks)

    @property
    def aliases(self) -> tuple[str, ...]:
        """Every first component this load's modules have in ``sys.modules``."""
        return (*self.tops.values(), self.missing)

    def replace(self, top: str, importing: bool) -> str | None:
        """The new first component for a module name the env's code uses (None: unchanged)."""
        alias = self.tops.get(top)
        if alias is not None:
            return alias if importing or top not in FACADED else None
        if not importing or top in STDLIB or top in self.shared or top in self.real or top == self.missing:
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

    def recorded(self, dotted: object) -> object:
        """What a module name the env's code records without importing it (a ``__module__`` it builds at
        run time) is in this process: its own names carry their alias, any other name stays as it is."""
        if not isinstance(dotted, str):
            return dotted
        top, dot, rest = dotted.partition(".")
        new = self.replace(top, False)
        return new + dot + rest if new else dotted

    def import_(self, name: str, globals: Mapping[str, object] | None = None,
                locals: Mapping[str, object] | None = None, fromlist: Sequence[str] = (),
                level: int = 0) -> ModuleType:
        """``__import__`` as the env's code gets it when it takes it explicitly (``builtins.__import__``,
        ``__builtins__["__import__"]``): absolute names mean the env's modules."""
        import builtins

        return builtins.__import__(self.module_name(name) if level == 0 else name, globals, locals, fromlist, level)

    def modules_view(self) -> dict[str, ModuleType]:
        """``sys.modules`` as the env's code sees it: its own modules under the names it knows,
        the standard library's and its shared ones; not the host's others, not other envs'."""
        view = {}
        for key, module in list(sys.modules.items()):
            top, dot, rest = key.partition(".")
            real = self.real.get(top)
            if real is not None and real not in FACADED:
                view[real + dot + rest] = module
            elif real is None and (top in STDLIB or top in self.shared):
                view.setdefault(key, module)
        return view

    def entry_finder(self, entry: str, make: Callable[[str], Any]) -> Any:
        """This load's finder of path entry ``entry`` (``make(entry)`` the first time, None for an entry
        no hook takes), kept in the env's ``sys.path_importer_cache``: a directory's listing is cached.
        Threads asking first may each make one; the first kept is the one every thread uses."""
        cache = self.sys.path_importer_cache
        try:
            return cache[entry]
        except KeyError:
            return cache.setdefault(entry, make(entry))

    def invalidate_caches(self) -> None:
        for finder in list(self.sys.path_importer_cache.values()):
            if hasattr(finder, "invalidate_caches"):
                finder.invalidate_caches()

    def release(self) -> None:
        """The load is over: its aliases are free for others, its finders forgotten."""
        ALIASES.release(self)
        self.sys.path_importer_cache.clear()


ALIASES: Aliases[NameMap] = Aliases()


def _same_vocabulary(env: str, found: dict[str, Path]) -> set[str]:
    """Vocabulary packages the env may share with the host (same version); warn about the others."""
    shared = set()
    for top in VOCABULARY:
        if top not in found:
            continue
        ours = distributions(found[top]).get(normalize(top))
        try:
            import importlib.metadata

            theirs = importlib.metadata.version(top)
        except Exception:  # the host has none: nothing to share
            continue
        if ours == theirs:
            shared.add(top)
        else:
            import warnings

            from ..errors import VocabularyConflictWarning

            warnings.warn(VocabularyConflictWarning(
                f"env {env!r} has {top} {ours}, the host has {theirs}: the host's {top} objects are not "
                f"the env's (its code may reject or ignore them); pin {top}=={theirs} in the env to share it"),
                stacklevel=4)
    return shared
