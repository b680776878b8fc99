"""The meta-path finder and loaders that load env modules under their alias names.

One finder sits first on ``sys.meta_path`` and answers only names whose
first component is an alias some env's name map reserved (runtime/namemap.py);
everything else (all of the host's imports) falls through at the cost of one dict lookup, and only on a
``sys.modules`` miss: cached imports never reach a finder. For an env's names it runs the env's own
import system (runtime/envsys.py): the finders and path entries the env's code added serve the env.
"""

from __future__ import annotations

import functools
import itertools
import operator
import os
import sys
import threading
from importlib.machinery import (
    BYTECODE_SUFFIXES,
    EXTENSION_SUFFIXES,
    SOURCE_SUFFIXES,
    BuiltinImporter,
    ExtensionFileLoader,
    FileFinder,
    FrozenImporter,
    ModuleSpec,
    PathFinder,
    SourceFileLoader,
    SourcelessFileLoader,
)
from types import ModuleType
from typing import Any, Callable
from zipimport import zipimporter

from ..errors import EnvImportError, ExtensionNotSupported, LoaderNotSupported
from . import facades
from .codecache import CODE_CACHE
from .namemap import ALIASES, FACADED, NameMap
from .names import STDLIB


def record_file(names: NameMap, fullname: str, path: str, st: os.stat_result) -> None:
    """Record that a loader of ``names`` read ``path`` for module ``fullname`` (its stat then): what
    ``Env.reload()`` compares with the disk (runtime/generation.py)."""
    real = names.real.get(fullname.partition(".")[0])
    if real is not None:
        names.files.setdefault(real, {})[path] = (st.st_ino, st.st_size, st.st_mtime_ns)


def patched_copy(names: NameMap, real: str, path: str) -> str:
    """The copy of the env's extension file ``path`` (of top-level name ``real``) patched to the aliases of
    ``names`` (native/relocate.py), made now unless it is up to date."""
    from .native.relocate import relocated
    from .sitedir import has_module

    listings: dict[str, list[str]] = {}  # for this copy's questions (thousands, where a patch is made)
    return relocated(path, str(names.found[real]), {n: names.tops[n] for n in names.own},
                     lambda dotted: has_module(str(names.found[dotted.partition(".")[0]]), dotted, listings))


class EnvSourceLoader(SourceFileLoader):
    """Loads a ``.py`` file of an env: rewritten code, the env's builtins, cached compiled code."""

    def __init__(self, names: NameMap, fullname: str, path: str) -> None:
        super().__init__(fullname, path)
        self.names = names

    def get_code(self, fullname: str):
        path = self.get_filename(fullname)
        st = os.stat(path)
        record_file(self.names, fullname, path, st)
        return CODE_CACHE.code(self.names, fullname, path, st, lambda: self.get_data(path))

    def exec_module(self, module) -> None:
        module.__dict__["__builtins__"] = self.names.builtins
        with watched(self.names, self.name):
            super().exec_module(module)
        from .crossing import after_exec

        after_exec(self.names, self.name, module)


class EnvExtensionLoader(ExtensionFileLoader):
    """Loads a compiled extension of an env from a copy patched to the env's alias (native/relocate.py).

    An extension the guard refuses, or whose initialisation fails (its names out of the patch's
    reach: a string table whose lengths were not found, a packed one that does not pack again to
    its size; or a sibling it cimports fell back), and whose distribution ships the module's
    source too (charset_normalizer, mypyc builds, pydantic 1) runs that source instead, as the
    package itself would without its compiled code; an ``ImportWarning`` (hidden by default) says
    so. Not a stand-in that only a compiler can use (Cython's pure-Python mode): the refusal shows.
    """

    def __init__(self, names: NameMap, fullname: str, path: str) -> None:
        super().__init__(fullname, path)
        self.names = names
        self._source_instead = False
        self._fallback: str | None = ""  # "": not looked for yet
        self._watch: _Watch | None = None  # from its creation to the end of its execution (``_checked``)

    def create_module(self, spec: ModuleSpec) -> Any:
        try:
            return self._create(spec)
        except Exception as refused:  # refused, or failing on a name (or a sibling) the patch could not reach
            if self._source() is None:
                raise
            self._warn_source_instead(refused)
            self._source_instead = True
            return None  # a plain module, which exec_module fills from the source

    def _source(self) -> str | None:
        """The ``.py`` file of the same (non-package) module beside the extension, if any, and if it
        can run without being compiled."""
        if self._fallback == "":
            source = os.path.join(os.path.dirname(self.path), self.name.rpartition(".")[2] + ".py")
            usable = "." in self.name and os.path.isfile(source) and _runs_uncompiled(
                source, has_cython="cython" in self.names.found)
            self._fallback = source if usable else None
        return self._fallback

    def _warn_source_instead(self, refused: Exception) -> None:
        import warnings

        warnings.warn(f"env {self.names.env!r}: {self.path} did not load side by side ({refused}); running "
                      f"its source {self._source()} instead", ImportWarning, stacklevel=2)

    def _create(self, spec: ModuleSpec) -> Any:
        import _imp

        from .native.binpatch import strings_module
        from .native.preload import refuse_shared_by_name
        from .native.relocate import copy_tree
        from .native.threadstate import own_thread_state

        strings_module()  # what a relocated Cython 3.2 extension unpacks its strings with
        names = self.names
        record_file(names, spec.name, self.path, os.stat(self.path))
        alias, _, rest = spec.name.partition(".")
        real = names.real[alias]
        root = str(names.found[real])
        patched = patched_copy(names, real, self.path)
        loaded = refuse_shared_by_name(patched, self.path, root, names.env)  # the copy, and its libraries' copies
        own_thread_state(loaded, self.path, copy_tree(root, {n: names.tops[n] for n in names.own}), names.env)
        self._watch = _Watch()
        if rest:
            module = self._guarded(lambda: _imp.create_dynamic(ModuleSpec(spec.name, self, origin=patched)))
            module.__file__ = self.path  # the env's file, as for every module: data beside it is found
            return module
        # A top-level extension (or compiled package __init__): its init function is named after the
        # real name, so create it under that name, then give it the alias (research: renaming.md).
        saved = sys.modules.get(real)
        try:
            module = self._guarded(lambda: _imp.create_dynamic(ModuleSpec(real, self, origin=patched)))
        finally:
            if saved is None:
                sys.modules.pop(real, None)
            else:
                sys.modules[real] = saved
        module.__name__ = spec.name
        module.__file__ = self.path
        self._real_paths(module)
        return module

    def _real_paths(self, module: ModuleType) -> None:
        """A module the extension's code gave a file and path by its name (mypyc 2 does, for its package
        shims and the modules its compiled siblings import directly: the group library's directory
        joined with the dotted name): with the alias in that name they are a directory that does not
        exist, where its submodules are not found. The env's own, by the real name, instead."""
        names = self.names
        top = str(getattr(module, "__name__", "")).partition(".")[0]
        real = names.real.get(top)
        if real is None or real not in names.found:
            return
        wrong, right = os.path.join(str(names.found[real]), top), os.path.join(str(names.found[real]), real)

        def fixed(path: Any) -> Any:
            return right + path[len(wrong):] if isinstance(path, str) and (
                path == wrong or path.startswith(wrong + os.sep)) else path

        if fixed(getattr(module, "__file__", None)) is not getattr(module, "__file__", None):
            module.__file__ = fixed(module.__file__)
        path = getattr(module, "__path__", None)
        if isinstance(path, list) and any(fixed(p) is not p for p in path):
            module.__path__ = [fixed(p) for p in path]
        spec = getattr(module, "__spec__", None)
        if isinstance(spec, ModuleSpec) and fixed(spec.origin) is not spec.origin:
            spec.origin = fixed(spec.origin)
            if spec.submodule_search_locations is not None:
                spec.submodule_search_locations = [fixed(p) for p in spec.submodule_search_locations]
            if type(spec.loader) is ExtensionFileLoader:  # reloaded, it must load the env's copy
                spec.loader = module.__loader__ = EnvExtensionLoader(names, spec.name, spec.origin)

    def _keep_host_entries(self, before: _Entries, module: ModuleType) -> None:
        """Put back the ``sys.modules`` entries the C code of ``module`` (just created or executed) set
        under names of no env since ``before``.

        An extension may register modules under the name they were built with: cffi's do, as
        ``<name>`` and ``<name>.lib``, for their own module (``_x`` for ``pkg/_x.so``, at its
        creation) or for one made by another extension (cryptography's Rust ``_rust`` makes cffi's
        ``_openssl`` when it is executed, a multi-phase module). That name is none of the env's nor
        one the patch can reach, so each env's copy would replace the host's entries. The host's
        entries are put back as they were (or the new ones taken out); the env's own are kept under
        the module's name where they are the module or below it (``pKg._x.lib``: what the env's
        code asks for, ``from pkg._x.lib import f``).
        Entries the import system made (a module imported by its spec's name) stay, and so do the
        standard library's (``os.path``, ``typing.io``: set by its own code) and the env's real names,
        which ``_checked`` refuses."""
        own, set_by_code = self.names.own, {}
        changed, earlier = before.changed()
        for key in changed:  # the entries set or replaced meanwhile
            value, top = sys.modules[key], key.partition(".")[0]
            if earlier.get(key) is value or ALIASES.owner(top) is not None or top in own or top in STDLIB or (
                    key not in earlier and getattr(getattr(value, "__spec__", None), "name", None) == key):
                continue
            set_by_code[key] = value
            if key in earlier:
                sys.modules[key] = earlier[key]
            else:
                del sys.modules[key]
        for name in [k for k, v in set_by_code.items() if v is module]:
            for key, value in set_by_code.items():
                if key.startswith(name + "."):
                    sys.modules.setdefault(self.name + key[len(name):], value)

    def exec_module(self, module) -> None:
        with watched(self.names, self.name):
            self._exec(module)
        from .crossing import after_exec

        after_exec(self.names, self.name, module)  # numpy's guards against objects of another env's numpy

    def _exec(self, module) -> None:
        import _imp

        if self._source_instead:
            module.__file__ = self._source()
            EnvSourceLoader(self.names, self.name, self._source()).exec_module(module)
            return
        watch, self._watch = self._watch or _Watch(), None  # none: executed again (importlib.reload)
        try:
            self._guarded(lambda: _imp.exec_dynamic(module))
            self._checked(module, watch)
        except Exception as refused:
            if self._source() is None:
                raise
            self._warn_source_instead(refused)
            # the refused module object belongs to the extension: a fresh one takes its place,
            # and the import system returns what sys.modules holds once the loader is done
            fresh = ModuleType(self.name)
            fresh.__dict__.update(__spec__=module.__spec__, __loader__=self, __package__=module.__package__,
                                  __file__=self._source())
            sys.modules[self.name] = fresh
            try:
                EnvSourceLoader(self.names, self.name, self._source()).exec_module(fresh)
            except BaseException:
                sys.modules.pop(self.name, None)
                raise

    def _guarded(self, load: Any) -> Any:
        """Run a step of an extension's initialisation (its creation, its execution): an ImportError of one
        of the env's real names is the patch's miss, refused as such (``_checked``)."""
        try:
            return load() if self._source() is None else self._load_holding_warnings(load)
        except ImportError as failed:  # it imported one of the env's names by its real name, which the host lacks
            if isinstance(failed, ExtensionNotSupported) or (failed.name or "").partition(".")[0] not in self.names.own:
                raise
            raise self._unpatched([str(failed.name)]) from failed

    def _checked(self, loaded: ModuleType, watch: _Watch) -> None:
        """Make sure the C code of the extension, created and executed since ``watch`` began, bound nothing
        by a real name.

        Names stored where byte patching cannot reach them (a Cython string table whose lengths
        were not found, a packed one that would not pack to its size again) would import the
        host's module of that name, or fail: either is refused here, loudly, rather than leave
        another version's objects in the env. So is a host class or function it bound by such a
        name; its own classes and functions named after a real module at run time get the alias
        (native/claims.py). Checked once for both steps: between them only the import system runs
        (a single-phase module did everything at its creation, a multi-phase one does at execution).
        """
        from .native.claims import claimed
        from .native.globalstate import warn_if_changed

        own = self.names.own
        before, state = watch.entries, watch.state
        self._keep_host_entries(before, loaded)
        warn_if_changed(state, self.names.env, self.path)
        new = before.added()
        leaked = sorted(k for k in new if k.partition(".")[0] in own)
        bound = sorted({v.__name__ for v in vars(loaded).values() if isinstance(v, ModuleType)
                        and v.__name__.partition(".")[0] in own})
        # names its C code built at run time: the env's own objects get the alias, the host's are refused
        made = [sys.modules[k] for k in new
                if k.partition(".")[0] in self.names.real and sys.modules[k] is not loaded]  # psycopg2.errors
        host, immutable = claimed([loaded, *made], lambda top: self.names.tops[top] if top in own else None)
        if leaked or bound or host or immutable:
            for key in (*leaked, self.name):  # single-phase modules put themselves in sys.modules
                sys.modules.pop(key, None)
            if leaked or bound or host:
                raise self._unpatched(leaked or bound or host)
            raise self._unpatched(immutable, "made", "under a module name polyvenv could not patch nor set",
                                  "claim another version's module")
        for key in new:
            if key.partition(".")[0] in self.names.real and key in sys.modules:
                self._real_paths(sys.modules[key])

    def _unpatched(self, names: list[str], did: str = "imported", how: str = "by a name polyvenv could not patch",
                   harm: str = "bind another version's objects") -> ExtensionNotSupported:
        more = f" (and {len(names) - 3} more)" if len(names) > 3 else ""
        return ExtensionNotSupported(
            f"env {self.names.env!r}: the compiled code of {self.path} {did} "
            f"{', '.join(repr(n) for n in names[:3])}{more} {how} "
            f"(its compiler stored it where the patch cannot read it): it would {harm}; "
            "give this env isolation = \"process\"",
            name=self.name, path=self.path,
        )

    @staticmethod
    def _load_holding_warnings(load: Any) -> Any:
        """``load()``; what a failed attempt warns (Cython's "size changed") is no news when the source
        runs instead, so warnings are passed on only if it loads, a sibling's fallback notice always."""
        import warnings

        loaded = False
        try:
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always")
                result = load()
            loaded = True
            return result
        finally:
            for message in said:
                if loaded or message.category is ImportWarning:
                    warnings.warn_explicit(message.message, message.category, message.filename, message.lineno)


class _Watch:
    """What an extension's initialisation is checked against (``EnvExtensionLoader._checked``): ``sys.modules``
    and the process-global state as they were before it."""

    def __init__(self) -> None:
        from .native.globalstate import snapshot

        self.entries, self.state = _Entries(), snapshot()


class _Entries:
    """``sys.modules`` as it was (its keys and values in order: two lists, made at C speed), to find what
    an extension's creation or execution changed. With thousands of modules loaded (30 envs), a copy
    of the dict, a set of its keys and a pass over both, twice per extension, were a tenth of the load;
    the usual answer, entries added at the end and nothing else, is found by two comparisons."""

    def __init__(self) -> None:
        self.keys, self.values = list(sys.modules), list(sys.modules.values())
        self._kept = False  # every entry there was found in its place by ``changed``

    def _now(self) -> tuple[list[str], bool]:
        """``sys.modules``' keys now, and whether every entry there was is still there, in its place, the same
        object."""
        keys, count = list(sys.modules), len(self.keys)
        try:  # identity is tried before __eq__, which for a module is identity too; one that raises is a change
            return keys, keys[:count] == self.keys and list(sys.modules.values())[:count] == self.values
        except Exception:  # noqa: BLE001 - an odd object in sys.modules: the slow way
            return keys, False

    def changed(self) -> tuple[list[str], dict[str, object]]:
        """The keys set or replaced since, in ``sys.modules``' order, and the entries there were before
        (empty when entries were only added)."""
        keys, self._kept = self._now()
        if self._kept:
            return keys[len(self.keys):], {}
        before, after = dict(zip(self.keys, self.values)), dict(sys.modules)
        changed = (after.keys() - before.keys()).union(
            itertools.compress(before, map(operator.is_not, map(after.get, before), before.values())))
        return list(filter(changed.__contains__, after)), before

    def added(self) -> list[str]:
        """The keys in ``sys.modules`` now that were not there. Asked after ``changed`` and the putting back
        of what changed (``_keep_host_entries``, which touches nothing else), entries found in their place
        then still are."""
        keys, kept = (list(sys.modules), True) if self._kept else self._now()
        if kept:
            return keys[len(self.keys):]
        return list(set(keys).difference(self.keys))


def _runs_uncompiled(source: str, has_cython: bool) -> bool:
    """Whether ``source`` is real source, not the stand-in of a module meant only to be compiled:
    Cython's pure-Python mode, whose file refuses to run uncompiled (``if not cython.compiled:
    raise ...``) or imports Cython's own module, which the env does not have."""
    import re

    try:
        with open(source, "rb") as f:
            text = f.read()
    except OSError:
        return False
    if b"cython" not in text:
        return True
    if re.search(rb"^[ \t]*if\s+not\s+cython\.compiled\s*:\s*(?:#[^\n]*)?\s*raise\b", text, re.M):
        return False
    return has_cython or not re.search(rb"^[ \t]*(?:import\s+cython\b|from\s+cython\s+import\b)", text, re.M)


class watched:
    """Around the outermost import of an env's module in a thread (the modules it imports in turn
    included): warn if it set attributes on the standard library's or shared modules and classes
    (native/globalstate.py); and if it ended in a refusal, take out the modules of its package it had
    run, so that the package's next import is refused again, as a whole. Inner imports cost a counter."""

    _depth = threading.local()

    def __init__(self, names: NameMap, fullname: str) -> None:
        self.names, self.fullname = names, fullname
        self.outermost = False
        self.first_new = 0

    def __enter__(self) -> None:
        depth = getattr(self._depth, "n", 0)
        self._depth.n = depth + 1
        if depth == 0:
            from .native.globalstate import SHARED

            self.outermost = True
            self.first_new = len(sys.modules)  # modules added from now on come after it (dicts keep order)
            SHARED.changes(self.names.shared)  # what changed before this import is not the env's doing

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        self._depth.n -= 1
        if self.outermost:
            from .native.globalstate import warn_if_shared_changed

            if _refusal_in(error):
                self._forget_half_imported()
            top, dot, rest = self.fullname.partition(".")
            warn_if_shared_changed(self.names.env, self.names.real.get(top, top) + dot + rest, self.names.shared)

    def _forget_half_imported(self) -> None:
        """The package's source modules (and namespace packages) this import ran before a refusal ended it.

        The import system takes out only the modules whose execution failed: a submodule imported
        later then finds its parents half run (``pandas.core`` without ``pandas``: pandas' options
        never registered, ``KeyError: 'compute'``) instead of the refusal. Compiled modules stay: they
        cannot be initialised twice, and their next import finds them."""
        top = self.fullname.partition(".")[0]
        for key in list(sys.modules)[self.first_new:]:
            module = sys.modules.get(key)
            if key.partition(".")[0] == top and (isinstance(getattr(module, "__loader__", None), EnvSourceLoader) or (
                    isinstance(module, ModuleType) and module.__dict__.get("__file__") is None
                    and hasattr(module, "__path__"))):
                del sys.modules[key]


def _refusal_in(error: object) -> bool:
    """Whether ``error``, or an exception it was raised from or while handling, is polyvenv's refusal."""
    for _ in range(16):
        if isinstance(error, ExtensionNotSupported):
            return True
        if not isinstance(error, BaseException):
            return False
        error = error.__cause__ or error.__context__
    return False


class EnvUnsupportedLoader(SourceFileLoader):
    """Bytecode-only modules of a namespace env: refused, never loaded without the rewrite."""

    def __init__(self, names: NameMap, fullname: str, path: str) -> None:
        super().__init__(fullname, path)
        self.names = names

    def create_module(self, spec: ModuleSpec) -> Any:
        raise ExtensionNotSupported(
            f"env {self.names.env!r}: {self.path} is bytecode without its source, which namespace isolation "
            "cannot rewrite; install the distribution with its sources",
            name=spec.name, path=self.path,
        )

    def exec_module(self, module) -> None:  # pragma: no cover - create_module always raises
        raise ImportError(self.path)


class EnvOutsideLoader(EnvUnsupportedLoader):
    """Compiled modules outside the env's directories (a path entry its code added, an editable
    install's sources): refused, as their copy could not be patched to the env's names."""

    def create_module(self, spec: ModuleSpec) -> Any:
        raise ExtensionNotSupported(
            f"env {self.names.env!r}: {self.path} is compiled code outside the env's directories (found "
            "through a sys.path entry or finder the env's code added), which namespace isolation cannot "
            "patch; install it in the env, or give this env isolation = \"process\"",
            name=spec.name, path=self.path,
        )


class EnvRefusedLoader:
    """A module the env's own import system provides with a loader polyvenv cannot load as env code."""

    def __init__(self, error: ImportError) -> None:
        self.error = error

    def create_module(self, spec: ModuleSpec) -> Any:
        raise self.error

    def exec_module(self, module: ModuleType) -> None:  # pragma: no cover - create_module always raises
        raise self.error


class EnvForeignLoader:
    """A loader the env's own code made (pytest's assertion rewriter, six's ``moves``), loading a module of
    the env: it runs as it is, and the code it compiles and executes goes through the env's builtins
    (rewritten to the env's names); a module it leaves bound to a name the env does not own (the host's
    copy) is refused, loudly, as compiled code's would be."""

    def __init__(self, names: NameMap, loader: Any, real: str) -> None:
        self.names = names
        self.loader = loader
        self.real = real

    def create_module(self, spec: ModuleSpec) -> Any:
        create = getattr(self.loader, "create_module", None)
        module = create(spec) if create is not None else None
        if module is not None and getattr(module, "__name__", None) == self.real:
            # named by its real name (setuptools' distutils shim renames its module `distutils`): its relative
            # imports would then import the host's module of that name; it is named as the env's modules are
            module.__name__ = spec.name
        return module

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        names = self.names
        bound = sorted({v.__name__ for v in list(vars(module).values()) if isinstance(v, ModuleType)
                        and _foreign_to(names, v.__name__)})
        if bound:
            raise LoaderNotSupported(
                f"env {names.env!r}: {self.real!r}, loaded by {self.loader!r} (the env's code added it), bound "
                f"the host's {', '.join(repr(n) for n in bound[:3])}: its code was not rewritten to the env's "
                "names; give this env isolation = \"process\"", name=self.real)

    def __getattr__(self, attr: str) -> Any:  # the loader's other methods (get_source, is_package, ...)
        return getattr(self.loader, attr)


def _foreign_to(names: NameMap, module_name: str) -> bool:
    """Whether a module of this name, bound in the env's code, is neither the env's nor what it shares."""
    top = module_name.partition(".")[0]
    return not (top in STDLIB or top in names.shared or ALIASES.owner(top) is names or top in names.real)


class EnvFinder:
    """Finds alias-named modules as their env's own import system would: its ``sys.meta_path``, in its
    order, with the env's directories (its ``sys.path``) searched where ``PathFinder`` stands
    (runtime/envsys.py); names of the host and of no env fall through at once."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        top, dot, rest = fullname.partition(".")
        names = ALIASES.owner(top)
        if names is None:
            env = ALIASES.retired(top)
            if env is not None:  # a module of a generation reload() replaced, imported by that generation's code
                from . import generation

                return generation.find_spec(fullname) or _retired(env, fullname)
            return None
        if top == names.missing:  # `import x` of a name the env lacks (in its directories) became `<missing>.x`
            if not dot:
                return _empty_package(top)
            real, top_level = rest, "." not in rest
        else:
            alias_of = names.real.get(top)
            if alias_of is None:
                return None
            if alias_of in FACADED:
                return facades.spec(names, fullname, alias_of + dot + rest)
            real, top_level = alias_of + dot + rest, not dot
        entries = [e for e in list(names.sys.path) if e not in names.stdlib] if top_level else list(path or ())
        for finder in list(names.sys.meta_path):
            if finder is PathFinder:  # where a venv searches its sys.path: the env's directories
                spec = _path_search(names, fullname, real, entries)
            elif finder is BuiltinImporter or finder is FrozenImporter or finder is FINDER:
                continue  # the standard library's names never come here
            else:  # a finder the env's code added (six.moves, a vendored SDK, an editable install)
                spec = _foreign_search(names, finder, fullname, real, (None if top_level else path,))
            if spec is not None:
                return spec
        return _not_found(names, real, entries, top_level)

    def invalidate_caches(self) -> None:
        for names in ALIASES.owners():
            names.invalidate_caches()


def _not_found(names: NameMap, real: str, looked_in: list[str], top_level: bool = False) -> None:
    """A name the env does not have: None, as a venv's finders answer ``importlib.util.find_spec``; but
    for an import (statement, ``import_module``, ``__import__``) EnvImportError, the ModuleNotFoundError
    a venv raises with polyvenv's context: the real name, the env, where it looked, what to do."""
    if _importing():
        raise EnvImportError(names.env, real, looked_in, top_level=top_level)
    return None


def _retired(env: str, fullname: str) -> None:
    """Code of a generation ``reload()`` replaced imports a module of it that is no longer loaded: its
    loaded objects keep working, but it cannot load more (that would mix generations)."""
    if _importing():
        from ..errors import GenerationRetired

        raise GenerationRetired(
            f"env {env!r}: {fullname!r} belongs to a generation that reload() replaced, and code of that "
            "generation cannot import more of it; call the new generation's objects (env.import_module(...) "
            "again after reload)", name=fullname, env=env)
    return None


def _importing() -> bool:
    """Whether the import system asks in order to import the name, not to answer ``find_spec``: both
    call finders the same way, only the import has ``_find_and_load_unlocked`` below them (CPython
    3.9-3.13; were it renamed, a missing name would fail with the import system's own message)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") in (__name__, "importlib._bootstrap"):
        if frame.f_code.co_name == "_find_and_load_unlocked":
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _path_search(names: NameMap, fullname: str, real: str, entries: list[str]) -> ModuleSpec | None:
    """``fullname`` in path entries, as PathFinder searches them: the first module found, else the
    portions of a namespace package spread over them."""
    portions: list[str] = []
    for entry in entries:
        finder = names.entry_finder(entry, lambda entry: _entry_finder(names, entry))
        if finder is None:
            continue
        if isinstance(finder, FileFinder):  # looks up the last component: an alias's is not the real one
            found = finder.find_spec(fullname if "." in fullname else real)
        else:
            found = _foreign_search(names, finder, fullname, real, ())
        if found is None:
            continue
        if found.loader is not None:
            return _adopted(names, found, fullname, real, finder)
        portions += list(found.submodule_search_locations or ())
    if portions:
        spec = _empty_package(fullname)
        spec.submodule_search_locations = portions
        return spec
    return None


def path_spec(names: NameMap, fullname: str) -> ModuleSpec | None:
    """``fullname`` as the env's ``importlib.machinery.PathFinder.find_spec(fullname)`` finds it: in the env's
    ``sys.path``, under the name it was asked by."""
    return _path_search(names, fullname, fullname, [e for e in list(names.sys.path) if e not in names.stdlib])


def _entry_finder(names: NameMap, entry: str) -> Any:
    """The finder of one entry of the env's ``sys.path``, as its ``sys.path_hooks`` make it: the env's own
    FileFinder where the standard directory hook stands, an env hook's finder otherwise; None for the
    standard library's entries (never an env's name) and for entries no hook takes."""
    if entry in names.stdlib:
        return None
    for hook in list(names.sys.path_hooks):
        if hook in names.standard_hooks and hook is not zipimporter:
            if os.path.isdir(entry or "."):
                return _file_finder(names, entry)
            continue
        try:
            return hook(entry)
        except ImportError:
            continue
    return None


def _foreign_search(names: NameMap, finder: Any, fullname: str, real: str, path: tuple) -> ModuleSpec | None:
    """Ask a finder the env's code added: by the env's name first (six keys its ``moves`` on its
    ``__name__``, the alias), then by the name the code writes (a vendored SDK's finder). ``path``: the
    meta-path finder's argument, or ``()`` for a path entry's finder, which takes none."""
    find = getattr(finder, "find_spec", None)
    if find is None:
        if not hasattr(finder, "find_module") or sys.version_info >= (3, 12):
            return None
        find = functools.partial(_find_module, finder)  # six < 1.16: as Python < 3.12 still does
    asked = (real,) if fullname.partition(".")[0] == names.missing or fullname == real else (fullname, real)
    for name in asked:
        found = find(name, *path)
        if found is not None:
            return _adopted(names, found, fullname, real, finder)
    return None


def _find_module(finder: Any, name: str, *path: Any) -> ModuleSpec | None:
    """A spec from a finder of the pre-3.4 protocol (``find_module``), as Python < 3.12 makes one."""
    from importlib.util import spec_from_loader

    loader = finder.find_module(name, *path)
    return spec_from_loader(name, loader) if loader is not None else None


def _adopted(names: NameMap, found: ModuleSpec, fullname: str, real: str, where: Any) -> ModuleSpec:
    """``found`` as a spec of the env: named ``fullname``, its code run rewritten with the env's
    builtins. A file the standard library's loaders would run gets the env's loader of its kind; a
    loader of the env's own code runs as it is, checked (EnvForeignLoader); any other loader would run
    code polyvenv cannot rewrite: refused (rule 1), with the way out."""
    loader = found.loader
    if loader is None or type(loader).__name__ in ("NamespaceLoader", "_NamespaceLoader"):
        spec = _empty_package(fullname)  # a namespace package
        spec.submodule_search_locations = list(found.submodule_search_locations or ())
        return spec
    kind: Any
    if isinstance(loader, (EnvSourceLoader, EnvExtensionLoader, EnvUnsupportedLoader)):
        if found.name == fullname:
            return found
        kind = loader.__class__
    elif isinstance(loader, SourceFileLoader):
        kind = EnvSourceLoader
    elif isinstance(loader, SourcelessFileLoader):
        kind = EnvUnsupportedLoader
    elif isinstance(loader, ExtensionFileLoader):
        kind = EnvOutsideLoader
    elif _env_code(names, loader) and hasattr(loader, "exec_module"):
        spec = ModuleSpec(fullname, EnvForeignLoader(names, loader, real), origin=found.origin,
                          loader_state=found.loader_state, is_package=found.submodule_search_locations is not None)
        if found.submodule_search_locations is not None:
            spec.submodule_search_locations = list(found.submodule_search_locations)
        spec.has_location = found.has_location
        return spec
    elif found.name == fullname and _env_code(names, loader):  # a pre-3.4 loader (six < 1.16): as it is
        return found
    else:
        return ModuleSpec(fullname, EnvRefusedLoader(LoaderNotSupported(
            f"env {names.env!r}: {real!r} comes from {where!r}, which the env's code added to its import "
            f"system, with loader {loader!r}: polyvenv cannot run that code under the env's names (it would "
            "bind the host's modules); give this env isolation = \"process\"", name=real)))
    spec = ModuleSpec(fullname, kind(names, fullname, found.origin), origin=found.origin,
                      is_package=found.submodule_search_locations is not None)
    if found.submodule_search_locations is not None:
        spec.submodule_search_locations = list(found.submodule_search_locations)
    spec.has_location = True
    return spec


def _env_code(names: NameMap, obj: Any) -> bool:
    """Whether ``obj`` (or its class) was defined by this env's code."""
    top = str(getattr(obj, "__module__", "")).partition(".")[0]
    return top in names.real or top == names.missing


def _file_finder(names: NameMap, directory: str) -> FileFinder:
    """The env's FileFinder of ``directory``: its loaders run rewritten code; compiled modules load patched
    to the env's names only from the env's own directories."""
    inside = any(directory == str(r) or directory.startswith(str(r) + os.sep) for r in names.roots)
    return names.entry_finder(directory, lambda directory: FileFinder(
        # as CPython's: a compiled module wins over its source (pydantic 1, mypyc)
        directory,
        (_loader(EnvExtensionLoader if inside else EnvOutsideLoader, names), EXTENSION_SUFFIXES),
        (_loader(EnvSourceLoader, names), SOURCE_SUFFIXES),
        (_loader(EnvUnsupportedLoader, names), BYTECODE_SUFFIXES),
    ))


def _loader(kind: type[EnvSourceLoader | EnvExtensionLoader | EnvUnsupportedLoader],
            names: NameMap) -> Callable[[str, str], Any]:
    return lambda fullname, path: kind(names, fullname, path)


def _empty_package(name: str) -> ModuleSpec:
    spec = ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = []
    return spec


FINDER = EnvFinder()
_install_lock = threading.Lock()


def install_finder() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    with _install_lock:
        if FINDER not in sys.meta_path:
            sys.meta_path.insert(0, FINDER)
