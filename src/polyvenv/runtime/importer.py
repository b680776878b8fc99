"""The meta-path finder and loaders that load env modules under their alias names.

One finder sits first on ``sys.meta_path`` and answers only names whose
first component is an alias some env's name map reserved (runtime/namemap.py);
everything else (all of the host's imports) falls through at the cost of one dict lookup, and only on a
``sys.modules`` miss: cached imports never reach a finder.
"""

from __future__ import annotations

import os
import sys
import threading
from importlib.machinery import (
    BYTECODE_SUFFIXES,
    EXTENSION_SUFFIXES,
    SOURCE_SUFFIXES,
    ExtensionFileLoader,
    FileFinder,
    ModuleSpec,
    SourceFileLoader,
)
from types import ModuleType
from typing import Any, Callable

from ..errors import EnvImportError, ExtensionNotSupported
from . import facades
from .codecache import CODE_CACHE
from .namemap import ALIASES, FACADED, NameMap


class EnvSourceLoader(SourceFileLoader):
    """Loads a ``.py`` file of an env: rewritten code, the env's builtins, cached compiled code."""

    def __init__(self, names: NameMap, fullname: str, path: str) -> None:
        super().__init__(fullname, path)
        self.names = names

    def get_code(self, fullname: str):
        path = self.get_filename(fullname)
        st = os.stat(path)
        names = self.names
        key = CODE_CACHE.key(path, st, names.digest)
        code = CODE_CACHE.get(key)
        if code is None:  # first load of this file by an env with these names: rewrite it once
            import ast

            from .rewrite import rewrite

            source = self.get_data(path)
            tree = ast.parse(source, path)
            code = compile(rewrite(tree, names.replace), path, "exec", dont_inherit=True)
            CODE_CACHE.put(key, code)
        return code

    def exec_module(self, module) -> None:
        module.__dict__["__builtins__"] = self.names.builtins
        super().exec_module(module)


class EnvExtensionLoader(ExtensionFileLoader):
    """Loads a compiled extension of an env from a copy patched to the env's alias (native/relocate.py).

    An extension the guard refuses, or whose initialisation fails (its names out of the patch's
    reach: Cython 3.3's LZSS-packed strings; or a sibling it cimports fell back), and whose
    distribution ships the module's source too (charset_normalizer, mypyc builds, pydantic 1)
    runs that source instead, as the package itself would without its compiled code; an
    ``ImportWarning`` (hidden by default) says so.
    """

    def __init__(self, names: NameMap, fullname: str, path: str) -> None:
        super().__init__(fullname, path)
        self.names = names
        self._source_instead = False

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
        """The ``.py`` file of the same (non-package) module beside the extension, if any."""
        if "." not in self.name:
            return None
        source = os.path.join(os.path.dirname(self.path), self.name.rpartition(".")[2] + ".py")
        return source if os.path.isfile(source) else None

    def _warn_source_instead(self, refused: Exception) -> None:
        import warnings

        warnings.warn(f"env {self.names.env!r}: {self.path} did not load side by side ({refused}); running "
                      f"its source {self._source()} instead", ImportWarning, stacklevel=2)

    def _create(self, spec: ModuleSpec) -> Any:
        import _imp

        from .native.binpatch import strings_module
        from .native.relocate import relocated
        from .sitedir import has_module

        strings_module()  # what a relocated Cython 3.2 extension unpacks its strings with
        names = self.names
        alias, _, rest = spec.name.partition(".")
        real = names.real[alias]
        patched = relocated(self.path, str(names.found[real]), {n: names.tops[n] for n in names.own},
                            lambda dotted: has_module(str(names.found[dotted.partition(".")[0]]), dotted))
        if rest:
            module = self._checked(lambda: _imp.create_dynamic(ModuleSpec(spec.name, self, origin=patched)))
            module.__file__ = self.path  # the env's file, as for every module: data beside it is found
            return module
        # A top-level extension (or compiled package __init__): its init function is named after the
        # real name, so create it under that name, then give it the alias (research: renaming.md).
        saved = sys.modules.get(real)
        try:
            module = self._checked(lambda: _imp.create_dynamic(ModuleSpec(real, self, origin=patched)), real)
        finally:
            if saved is None:
                sys.modules.pop(real, None)
            else:
                sys.modules[real] = saved
        module.__name__ = spec.name
        module.__file__ = self.path
        return module

    def exec_module(self, module) -> None:
        import _imp

        if self._source_instead:
            module.__file__ = self._source()
            EnvSourceLoader(self.names, self.name, self._source()).exec_module(module)
            return
        try:
            self._checked(lambda: _imp.exec_dynamic(module), module=module)
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

    def _checked(self, load: Any, allowed: str = "", module: Any = None) -> Any:
        """Run an extension's initialisation and make sure its C code bound nothing by a real name.

        Names stored where byte patching cannot reach them (Cython 3.3's LZSS-packed string tables,
        a Cython 3.2 table whose lengths were not found) would import the host's module of that
        name, or fail: either is refused here, loudly, rather than leave another version's objects
        in the env.
        """
        from .native.globalstate import snapshot, warn_if_changed

        own = self.names.own
        before = set(sys.modules)
        state = snapshot()
        result = load() if self._source() is None else self._load_holding_warnings(load)
        warn_if_changed(state, self.names.env, self.path)
        leaked = sorted(k for k in set(sys.modules) - before if k.partition(".")[0] in own and k != allowed)
        loaded = module if module is not None else result
        bound = sorted({v.__name__ for v in vars(loaded).values() if isinstance(v, ModuleType)
                        and v.__name__.partition(".")[0] in own and v.__name__ != allowed})
        if leaked or bound:
            for key in (*leaked, self.name):  # single-phase modules put themselves in sys.modules
                sys.modules.pop(key, None)
            names = leaked or bound
            more = f" (and {len(names) - 3} more)" if len(names) > 3 else ""
            raise ExtensionNotSupported(
                f"env {self.names.env!r}: the compiled code of {self.path} imported "
                f"{', '.join(repr(n) for n in names[:3])}{more} by a name polyvenv could not patch "
                "(its compiler stored it where the patch cannot read it): it would bind another "
                "version's objects; give this env isolation = \"process\"",
                name=self.name, path=self.path,
            )
        return result

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


class EnvFinder:
    """Finds alias-named modules in their env's directories, as that env's name map says."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> ModuleSpec | None:
        top, dot, rest = fullname.partition(".")
        names = ALIASES.owner(top)
        if names is None:
            if fullname in _RESOLVERS:  # pydoc, runpy...: taught to resolve names for env callers
                from .resolvers import find_spec

                return find_spec(fullname, path, target, self)
            return None
        if top == names.missing:  # `import x` of a name the env lacks became `import <missing>.x`
            if not dot:
                return _empty_package(top)
            raise EnvImportError(names.env, rest, [str(r) for r in names.roots])
        real = names.real.get(top)
        if real is None:
            return None
        if real in FACADED:
            return facades.spec(names, fullname, real + dot + rest)
        if not dot:
            return _find_top(names, fullname, real)
        for directory in path or ():
            spec = _file_finder(names, directory).find_spec(fullname)
            if spec is not None:
                return spec
        return None

    def invalidate_caches(self) -> None:
        for names in ALIASES.owners():
            names.invalidate_caches()


def _find_top(names: NameMap, alias: str, real: str) -> ModuleSpec | None:
    """The spec of top-level module ``real`` of the env, named ``alias``."""
    portions = []
    for root in names.roots:
        spec = _file_finder(names, str(root)).find_spec(real)
        if spec is None:
            continue
        if spec.loader is not None:
            found = ModuleSpec(alias, spec.loader.__class__(names, alias, spec.origin),  # type: ignore[call-arg]
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


def _file_finder(names: NameMap, directory: str) -> FileFinder:
    return names.file_finder(directory, lambda directory: FileFinder(
        # as CPython's: a compiled module wins over its source (pydantic 1, mypyc)
        directory,
        (_loader(EnvExtensionLoader, names), EXTENSION_SUFFIXES),
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
_RESOLVERS: dict[str, object] = {}  # the standard library's name resolvers (runtime/resolvers.py), once installed


def install_finder() -> None:
    """Put the finder first on ``sys.meta_path`` (once), and teach the standard library's resolvers."""
    with _install_lock:
        if FINDER not in sys.meta_path:
            from . import resolvers

            resolvers.install()
            _RESOLVERS.update(resolvers.RESOLVERS)
            sys.meta_path.insert(0, FINDER)
