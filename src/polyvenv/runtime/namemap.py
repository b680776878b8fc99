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
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from .envbuiltins import env_builtins
from .envsys import env_sys, pth_files, pth_paths, stdlib_entries
from .names import PREFERRED_AMONG, STDLIB, Aliases, preferred, served_by_env, top_level_names
from .sitedir import distributions, normalize

if TYPE_CHECKING:
    from .records import Records

# names the env's code gets an env-bound facade of (facades.py, envbuiltins.py, envsys.py, and the standard
# library's name resolvers, resolvers.py)
FACADED = ("importlib", "builtins", "sys", "pickle", "pkgutil", "pydoc", "runpy", "doctest", "unittest", "logging",
           "timeit", "codeop", "code", "multiprocessing", "concurrent")
# Packages whose objects are the vocabulary of other packages' APIs: a user's typing_extensions.TypedDict
# or annotated_types.Gt must be the very objects the env's pydantic knows (research/renaming.md, trap 4).
# Shared with the host by the rule like any distribution; one that differs is reported, never silently renamed away.
VOCABULARY = ("typing_extensions", "annotated_types", "mypy_extensions")
MISSING = "_polyvenv_missing"  # what an alias of the names an env lacks stands for
SHARED_AMONG = 256  # the variants a facade's (and MISSING's) alias is preferred among: ``sys`` has 240
MARK = "\uffff"  # a Unicode noncharacter: never in text, it marks a placeholder in compiled code (codecache.py)


def placeholder(real: str) -> str:
    """What stands for the alias of top-level name ``real`` in cached code, whichever alias a load gives it."""
    return f"{MARK}{real}{MARK}"


class NameMap:
    """Real top-level names -> aliases for one load of env ``env`` from ``roots``.

    ``found``: each top-level name in the roots, with its root; ``tops``: each name the env's code
    gets its own module of (its own names and the facades) -> its alias; ``real``: the reverse;
    ``own``: the env's own top-level names; ``shared``: the top-level names it uses the host's
    modules of (declared, and those of ``with_host``: its distributions the host has identically, with
    the same closure); ``missing``: the alias under which names the env lacks fail to import;
    ``borrowed``: its names loaded once with other envs, whose aliases (in ``tops``) are owned by the name
    map of their unit (runtime/units.py); ``units``: the units this load holds.
    """

    def __init__(self, env: str, roots: Iterable[Path], shared: Iterable[str] = (),
                 inherit: Mapping[str, str] | None = None) -> None:
        """``inherit``: real names -> aliases a previous generation of the env reserved that this one
        takes over (runtime/generation.py: what a reload keeps, the facades' and ``MISSING``'s)."""
        from .records import read_records

        self.env = env
        self.roots = list(roots)
        self.found = top_level_names(self.roots)
        declared = {s.partition(".")[0] for s in shared}
        records = read_records(self.roots[0]) if self.roots else None
        # distributions the host has identically, whose closure agrees with the host's (runtime/sharing.py)
        self.with_host = _with_host(env, records, self.roots, self.found, declared)
        self.shared = declared | {top for tops in self.with_host.values() for top in tops}
        self.stdlib = frozenset(stdlib_entries())  # the host's sys.path entries of the standard library
        self.pth = pth_files(self.roots)  # its .pth files: (directory, file, import lines)
        # distributions other envs agree on: loaded once, in units (runtime/units.py)
        lent: dict[str, Any] = {}
        if records is not None:
            from .units import share

            lent = share(self, records, self.roots[0])
        self.units = list({id(u): u for u in lent.values()}.values())
        self.lender = False  # a unit's map (of_unit): its code is shared by envs
        try:
            own = [real for real in sorted(self.found) if real not in STDLIB and real not in self.shared
                   and real not in lent]  # the host's wins for a backport shadowing the standard library
            own += served_by_env(self.found)  # the env's code serves it (its finder): never the host's
            self._name(own, {top: unit.names for top, unit in lent.items()}, inherit or {}, env)
        except BaseException:
            self._release_units()
            raise

    @classmethod
    def of_unit(cls, maker: NameMap, site: Path, found: dict[str, Path], own: Iterable[str],
                borrowed: dict[str, NameMap], host: Iterable[str], units: list[Any],
                references: Iterable[str], seed: str, inherit: Mapping[str, str] | None = None) -> NameMap:
        """The name map of a unit (runtime/units.py): ``own`` its top-level names, ``borrowed`` those of the
        units it depends on (their maps), ``host`` the names its code uses the host's modules of; made
        from the ``site`` of the env whose load ``maker`` makes it, and every other name is missing. Its
        facades: those of the names its code ``references`` (and ``sys``, ``importlib``, ``builtins``):
        fourteen aliases for each of thirty units cost a load more than the rest of its name map. ``seed``:
        the unit's share key (its preferred aliases: ``_name``). ``inherit``: the aliases it must have (the
        unit's in a parent process: runtime/children.py)."""
        self = cls.__new__(cls)
        self.env, self.roots, self.found, self.with_host, self.shared = maker.env, [site], found, {}, set(host)
        self.units, self.lender = units, True
        self.stdlib, self.pth = maker.stdlib, [pth for pth in maker.pth if pth[0] == str(site)]
        facades = {"sys", "importlib", "builtins", *references} & set(FACADED)
        codeop = ("codeop",) if "code" in facades else ()
        self._name(own, borrowed, inherit or {}, seed, (*(f for f in FACADED if f in facades), *codeop))
        return self

    def _name(self, own: Iterable[str], borrowed: Mapping[str, NameMap], inherit: Mapping[str, str], seed: str,
              facades: Iterable[str] = FACADED) -> None:
        """Reserve the aliases of ``own`` names, the facades and ``MISSING`` (each its variant preferred for
        ``seed`` if free: for own names, the one sync patched extensions for; ``borrowed`` names are units'
        aliases), and make the env's ``sys``."""
        # every alias its seed's preferred one, and so are its lenders': the same aliases in every process
        # (codecache.py keeps their code as loaded, not only with placeholders)
        self.canonical: bool = not inherit and all(lender.canonical for lender in borrowed.values())

        def alias(real: str, among: int = PREFERRED_AMONG) -> str:
            taken = inherit.get(real)
            if taken is None:
                want = preferred(real, seed, among) if seed else None
                taken = ALIASES.reserve(real, self, want)
                self.canonical = self.canonical and taken == want
                return taken
            ALIASES.transfer([taken], self)
            return taken

        self.borrowed = dict(borrowed)  # real top -> the unit's name map whose alias it is
        self.tops: dict[str, str] = {}
        for real in own:
            self.tops[real] = alias(real)
        for real, lender in self.borrowed.items():
            self.tops[real] = lender.tops[real]
        for name in facades:  # every map has these: more variants to prefer among, so seldom two want one
            self.tops[name] = alias(name, SHARED_AMONG)
        self.missing = alias(MISSING, SHARED_AMONG)
        self.real = {alias: real for real, alias in self.tops.items()}
        self._placeholders: dict[tuple[str, bool], str | None] = {}  # placeholder()'s answers
        self._aliased: dict[str, str] = {}  # aliased()'s
        self.files: dict[str, dict[str, tuple[int, int, int]]] = {}  # real top -> file -> identity, as loaded
        self.own = {real for real in self.tops if real not in FACADED}
        self.digest = hashlib.sha256(
            repr([sorted(self.tops.items()), self.missing, sorted(self.shared)]).encode()).hexdigest()[:16]
        self.builtins = env_builtins(self)
        # the env's sys: its own path, meta_path, path_hooks (runtime/envsys.py), extended by its .pth files
        self.sys = env_sys(self.tops["sys"], self.stdlib, self.roots)
        for directory, _, lines in self.pth:
            self.sys.path += pth_paths(directory, lines)
        self.standard_hooks = tuple(self.sys.path_hooks)

    @property
    def aliases(self) -> tuple[str, ...]:
        """Every first component this load's own modules have in ``sys.modules`` (not the units')."""
        return (*(a for real, a in self.tops.items() if real not in self.borrowed), self.missing)

    def files_of(self, real: str) -> dict[str, tuple[int, int, int]]:
        """The files the loaders read for top-level name ``real`` (a unit's, for a name it lends)."""
        return (self.borrowed.get(real) or self).files.get(real, {})

    def replace(self, top: str, importing: bool) -> str | None:
        """The new first component for a module name the env's code uses (None: unchanged)."""
        alias = self.tops.get(top)
        if alias is not None:
            return alias if importing or top not in FACADED else None
        if not importing or top in STDLIB or top in self.shared or top in self.real or top == self.missing:
            return None
        return f"{self.missing}.{top}"

    def placeholder(self, top: str, importing: bool) -> str | None:
        """``replace`` with each alias written as its placeholder (runtime/codecache.py): what a name
        means for this load's code, whatever alias it has, so compiled code is cached for every alias."""
        try:
            return self._placeholders[top, importing]
        except KeyError:
            pass
        new = self.replace(top, importing)
        if new is not None:
            alias, dot, rest = new.partition(".")
            new = placeholder(MISSING if alias == self.missing else self.real[alias]) + dot + rest
        self._placeholders[top, importing] = new
        return new

    def aliased(self, text: str) -> str:
        """``text`` with each placeholder (``placeholder``) in it replaced by this load's alias."""
        done = self._aliased.get(text)
        if done is None:  # the same few names and strings recur in every module of a package
            parts = text.split(MARK)  # text, real name, text, ...: the cache keeps only whole placeholders
            parts[1::2] = [self.missing if real == MISSING else self.tops[real] for real in parts[1::2]]
            done = self._aliased[text] = "".join(parts)
        return done

    def module_name(self, dotted: str, importing: bool = True) -> str:
        """What ``dotted``, as the env's code writes it, is called in this process (``importing``: as in
        ``replace``; False where it is only recorded, a class's ``__module__``)."""
        if not isinstance(dotted, str) or dotted.startswith("."):
            return dotted
        top, dot, rest = dotted.partition(".")
        new = self.replace(top, importing)
        return new + dot + rest if new else dotted

    def name(self, dotted: str, importing: bool = True) -> str:
        """The rewritten code's ``__polyvenv__.name(...)``: a module name computed at run time. In a unit's
        code (shared by several envs), a name that is none of the unit's nor the host's is its caller's:
        numpy's ``add_newdoc("scipy.sparse...")``, called by scipy, imports the scipy of the code up the
        stack that has one (a unit sharing it, every env that uses numpy's unit through it sees the same)
        or of the nearest env's own code, as that env's own numpy would (none: the name is missing)."""
        if self.lender and isinstance(dotted, str) and not dotted.startswith("."):
            top = dotted.partition(".")[0]
            frame = sys._getframe(1)
            while top not in self.tops and top not in STDLIB and top not in self.shared and top not in self.real:
                caller = _calling(frame, self)
                if caller is None:
                    break
                names, frame = caller
                if not names.lender or top in names.tops or top in names.real:
                    return names.module_name(dotted, importing)  # an env's, or a unit's the caller shares
        return self.module_name(dotted, importing)

    def written(self, dotted: str) -> str:
        """The ``sys.modules`` key under which the env's code sets or deletes ``dotted``: its own names' (and
        facades') as ``module_name``; a name that is not its own (the standard library's, a shared one) under
        the env's ``missing`` alias, where only the env's code reads it: the host's entry is never replaced
        nor removed by env code (``sys.modules["json"] = ...``; its own imports of ``json`` stay the host's)."""
        if not isinstance(dotted, str) or dotted.startswith("."):
            return dotted
        top = dotted.partition(".")[0]
        if top not in self.tops and (top in STDLIB or top in self.shared):
            return f"{self.missing}.{dotted}"
        return self.module_name(dotted)

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
        self._release_units()

    def _release_units(self) -> None:
        from .units import release

        units, self.units = self.units, []
        for unit in units:
            release(unit)


ALIASES: Aliases[NameMap] = Aliases()


def _calling(frame: Any, unit: NameMap) -> tuple[NameMap, Any] | None:
    """The name map of the nearest frame from ``frame`` up that runs code of another env's or unit's than
    ``unit`` (the host's and the standard library's frames are passed over), and the frame above it."""
    while frame is not None:
        names = frame.f_builtins.get("__polyvenv__") if isinstance(frame.f_builtins, dict) else None
        frame = frame.f_back
        if isinstance(names, NameMap) and names is not unit:
            return names, frame
    return None


def _with_host(env: str, records: Records | None, roots: list[Path], found: dict[str, Path],
               declared: set[str]) -> dict[str, tuple[str, ...]]:
    """The env's distributions loaded as the host's own modules (name -> its top-level names), by the
    rule (runtime/sharing.py) over the records its build left; warn about vocabulary packages that
    differ. Without records (a venv polyvenv did not build), only the vocabulary packages of the
    host's version are shared, as before the rule."""
    if records is None:
        return {top: (top,) for top in _same_vocabulary(env, found)}
    from .hostview import HostView, shared_with_host

    host = HostView()
    private = set(records.private)
    names = shared_with_host(records, found, roots[0], declared, host)
    with_host = {r.name: r.tops for r in records.distributions if r.name in names}
    for record in records.distributions:
        vocabulary = [top for top in record.tops if top in VOCABULARY]
        if vocabulary and record.name not in names and record.name not in private and vocabulary[0] in host.found:
            _warn_vocabulary(env, vocabulary[0], record.version, host.version(record.name))
    return with_host


def _warn_vocabulary(env: str, top: str, ours: str | None, theirs: str | None, stacklevel: int = 5) -> None:
    import warnings

    from ..errors import VocabularyConflictWarning

    if ours != theirs:
        how = f"pin {top}=={theirs} in the env to share it"
    else:
        how = f"its files or what it imports differ from the host's (`polyvenv why {top}` says which)"
    warnings.warn(VocabularyConflictWarning(
        f"env {env!r} has {top} {ours}, the host has {theirs}: the host's {top} objects are not "
        f"the env's (its code may reject or ignore them); {how}"), stacklevel=stacklevel)


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
            _warn_vocabulary(env, top, ours, theirs, stacklevel=6)
    return shared
