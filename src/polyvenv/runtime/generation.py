"""An env's next generation: what a reload reads afresh from disk, and what it keeps.

A load of an env is one *generation*: one name map (runtime/namemap.py) and
the modules loaded under its aliases. ``Env.reload()`` makes the next one:

- **What changed**, per top-level name the env has loaded: a file its loaders
  read (recorded as they read it: importer.py's ``record_file``) whose stat
  identity (inode, size, mtime) is not what it was, or, when the link points at
  another build, a distribution whose ``RECORD`` lines for that name differ
  (the same wheel installed in two builds is the same code).
- **What imports what changed**: the top-level names the loaded source files
  import (``import`` lines anywhere in the file, ``import_module`` of a
  constant), read from the files by pattern, once per file identity. A name
  that imports a changed one is reloaded too, and so on; reading the files
  also sees imports made later in functions, which recording the imports
  made while loading would miss. Compiled code's imports are not read.
- **Fresh aliases** for what is reloaded, never reused while a module of the
  old generation lives: a callback the host saved keeps its module's globals
  alive, and an alias given to other code meanwhile would let the old code
  import another generation's modules. The old aliases are *retired*
  (runtime/names.py): freed when the old modules' globals are collected
  (a token in each; ``weakref.finalize``), never for a generation holding a
  compiled extension, which CPython never unloads. Fresh aliases also give a
  changed extension a fresh patched copy, the only way to load a second copy
  of an extension that refuses a second initialisation per process (numpy's,
  PyO3's). What is kept keeps its modules and its aliases, compiled ones
  included, and the build it was loaded from stays held (runtime/lease.py).
- **Staged, then switched**: every module of the old generation that is
  reloaded is imported under the new aliases first, while the host still
  sees the old generation; then ``Env`` switches with one assignment and the
  old entries leave ``sys.modules``. A failure frees what was staged and
  leaves the old generation untouched.

Code of the old generation keeps running on its own objects, and imports its
own loaded modules from the generation (its builtins' ``__import__``, set at
the switch); importing more of them (a module not loaded before the reload)
raises GenerationRetired. The facades' aliases (``importlib``, ``sys``, ``builtins``)
are kept from generation to generation with modules of the new name map, so
kept modules that import them at run time resolve names in the newest
generation.
"""

from __future__ import annotations

import sys
import weakref
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from pathlib import Path
    from types import ModuleType

    from .namemap import NameMap

TOKEN = "__polyvenv_generation__"  # in each retired module's globals: (its token, itself, its package)


class Plan:
    """What a reload does: ``reloaded`` (real top-level names, dependencies first) get fresh aliases and
    their ``modules`` (real dotted names, as loaded before) are imported anew; ``inherit`` (real name ->
    alias) is what the new name map takes over; ``retired``: the old aliases that leave."""

    def __init__(self, reloaded: list[str], modules: list[str], inherit: dict[str, str], retired: list[str],
                 unchanged: bool) -> None:
        self.reloaded, self.modules, self.inherit, self.retired = reloaded, modules, inherit, retired
        self.unchanged = unchanged


def plan(old: NameMap, roots: list[Path]) -> Plan:
    """Compare generation ``old`` with the env's directories as they are now (``roots``, the build
    resolved anew)."""
    from .namemap import MISSING
    from .names import top_level_names

    found = top_level_names(roots)
    modules = _loaded_modules(old)
    tops = sorted({m.partition(".")[0] for m in modules})
    changed = {real for real in tops if real not in found or _changed(old, real, found[real])}
    # a unit's distribution (runtime/units.py) is no env's to reload: a new build of it is a new unit,
    # which the new name map acquires; what imports it is reloaded, and its alias is the unit's to free
    lent = set(old.borrowed)
    imports = {real: _imports(old, real) for real in tops}
    grew = True
    while grew:  # what imports a changed name is reloaded too, and what imports that
        grew = False
        for real in tops:
            if real not in changed and imports[real] & changed:
                changed.add(real)
                grew = True
    reloaded = _ordered([r for r in tops if r in changed and r in found], imports)
    inherit = {real: alias for real, alias in old.tops.items() if real not in changed and real not in lent}
    inherit[MISSING] = old.missing
    retired = [old.tops[real] for real in sorted(changed) if real not in lent]
    unchanged = not changed and found == old.found
    order = {real: i for i, real in enumerate(reloaded)}
    again = sorted((m for m in modules if m.partition(".")[0] in order),
                   key=lambda m: (order[m.partition(".")[0]], m.count("."), m))
    return Plan(reloaded, again, inherit, retired, unchanged)


def _loaded_modules(names: NameMap) -> list[str]:
    """Real dotted names of the env's own modules now in ``sys.modules`` (not the facades)."""
    from .namemap import FACADED

    found = []
    for key in list(sys.modules):
        top, dot, rest = key.partition(".")
        real = names.real.get(top)
        if real is not None and real not in FACADED:
            found.append(real + dot + rest)
    return found


def _changed(old: NameMap, real: str, root: Path) -> bool:
    """Whether top-level name ``real`` of ``old`` reads differently now from ``root``."""
    from .files import file_identity

    for path, identity in list(old.files.get(real, {}).items()):  # a unit's files: its own, never re-run
        if file_identity(path) != identity:
            return True
    before = old.found.get(real)
    if before is None or before == root:
        return False
    ours, theirs = _record(before, real), _record(root, real)
    return ours is None or ours != theirs


def _record(root: Path, real: str) -> list[str] | None:
    """The ``RECORD`` lines of the distribution installing ``real`` in ``root`` that belong to it (its
    files and hashes, bytecode left out), or None where no distribution installed it (a source tree)."""
    import csv

    lines: list[str] = []
    for record in root.glob("*.dist-info/RECORD"):
        try:
            rows = list(csv.reader(record.read_text(encoding="utf-8").splitlines()))
        except (OSError, UnicodeDecodeError, csv.Error):
            continue
        for row in rows:
            if not row or row[0].endswith(".pyc"):
                continue
            first = row[0].replace("\\", "/").split("/", 1)[0]
            if first == real or first.split(".", 1)[0] == real and not first.endswith(".dist-info"):
                lines.append(",".join(row))
    return sorted(lines) if lines else None


_IMPORTS: dict[str, tuple[tuple[int, int, int], frozenset[str]]] = {}  # by file: read once per identity


def _imports(names: NameMap, real: str) -> set[str]:
    """Top-level names the loaded source files of ``real`` import (other than itself)."""
    found: set[str] = set()
    for path, identity in list(names.files_of(real).items()):
        if path.endswith(".py"):
            known = _IMPORTS.get(path)
            if known is None or known[0] != identity:
                known = _IMPORTS[path] = (identity, _read_imports(path))
            found |= known[1]
    found.discard(real)
    return found


def _read_imports(path: str) -> frozenset[str]:
    """Top-level names ``import`` and ``from ... import`` lines (anywhere, functions too) and
    ``import_module("...")`` calls of the file name: read by pattern, ~10x faster than parsing, and a
    superset (an ``import`` line in a docstring counts), which at worst reloads one name more."""
    import re

    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError:
        return frozenset()
    found = set()
    for match in re.finditer(_IMPORT_LINE, text, re.M):
        module, names = match.group(1), match.group(2)
        for name in ([module] if module else names.split(b",")):
            first = name.strip().split()[0] if name.strip() else b""
            if first and not first.startswith(b"."):
                found.add(first.split(b".")[0].decode("ascii", "replace"))
    found.update(m.group(1).split(b".")[0].decode("ascii", "replace") for m in re.finditer(_IMPORT_CALL, text))
    return frozenset(n for n in found if n.isidentifier())


_IMPORT_LINE = rb"^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import\b|import[ \t]+([^\n#;]+))"
_IMPORT_CALL = rb"import_module\(\s*['\"]([\w.]+)['\"]"


def _ordered(reloaded: list[str], imports: dict[str, set[str]]) -> list[str]:
    """``reloaded``, each after the names it imports (a cycle in name order)."""
    done: list[str] = []
    seen: set[str] = set()

    def visit(real: str) -> None:
        if real in seen:
            return
        seen.add(real)
        for dependency in sorted(imports.get(real, ()) & set(reloaded)):
            visit(dependency)
        done.append(real)

    for real in reloaded:
        visit(real)
    return done


def stage(new: NameMap, plan: Plan) -> None:
    """Import every module of ``plan`` in generation ``new`` (its aliases unknown to the host yet)."""
    import importlib

    for dotted in plan.modules:
        try:
            importlib.import_module(new.module_name(dotted))
        except ModuleNotFoundError as missing:
            if "." in dotted and missing.name in (dotted, new.module_name(dotted)):
                continue  # a submodule the new version no longer has: nothing imports it now
            raise


def facade_entries(names: NameMap) -> dict[str, ModuleType]:
    """Take the facades' ``sys.modules`` entries (``importlib``, its submodules, ``sys``, ``builtins``)
    of ``names`` out: the next generation, which keeps their aliases, imports its own."""
    from .namemap import FACADED

    aliases = {names.tops[f] for f in FACADED}
    return {key: sys.modules.pop(key) for key in list(sys.modules) if key.partition(".")[0] in aliases}


def leaving(aliases: Iterable[str]) -> dict[str, ModuleType]:
    """The ``sys.modules`` entries under ``aliases`` (still in place): what a switch retires."""
    aliases = set(aliases)
    return {key: module for key, module in list(sys.modules.items()) if key.partition(".")[0] in aliases}


def drop(aliases: Iterable[str]) -> list[ModuleType]:
    """Take every module under ``aliases`` out of ``sys.modules``; the modules taken."""
    aliases = set(aliases)
    return [sys.modules.pop(key) for key in list(sys.modules) if key.partition(".")[0] in aliases]


def leave(env: str, aliases: Iterable[str]) -> None:
    """Take the modules under ``aliases`` out of ``sys.modules`` the way a switch does: retired first (their
    code still imports them from the generation while any of it lives), reserved from other envs, then
    dropped. A unit whose last user a reload let go leaves this way (runtime/units.py)."""
    from .namemap import ALIASES

    aliases = list(aliases)
    retire(env, aliases, leaving(aliases))
    ALIASES.retire(aliases, env)
    drop(aliases)


def retire(env: str, aliases: list[str], modules: dict[str, ModuleType]) -> None:
    """``aliases`` are about to leave ``sys.modules`` with ``modules`` (their entries): reserved until
    those are collected, or forever if one is a compiled extension (CPython keeps its copy loaded,
    under that name); meanwhile their code imports them again from the generation itself.

    Each module's globals hold the generation's token, the module object itself and its parent
    package: every function and class of it keeps them alive, and a package keeps its submodules (its
    attributes), so a callback the host saved can still run ``from .runtime import exported`` (jinja2,
    at each template compile) after the switch, from any thread, before or after the entries leave.
    The token knows the modules weakly: a module nothing reaches is collected as before (one held by
    a compiled extension keeps only what it reaches). Called before the switch, so no moment exists
    in which the old code's own modules cannot be imported."""
    token = _Token(modules)
    prepare(modules)
    compiled = False
    for key, module in modules.items():
        parent = modules.get(key.rpartition(".")[0]) if "." in key else None
        try:
            module.__dict__[TOKEN] = (token, module, parent)
        except (AttributeError, TypeError):  # pragma: no cover - a module without a dict
            compiled = True
        if not str(getattr(module, "__file__", None) or ".py").endswith(".py"):
            compiled = True
    for alias in aliases:
        _LIVE[alias] = weakref.ref(token)
    weakref.finalize(token, _collected, tuple(aliases), not compiled)


def prepare(modules: dict[str, ModuleType]) -> None:
    """Route the import statements of ``modules``' code through ``_import`` (their builtins'
    ``__import__``; until they retire, it is the host's import with one lookup more). Done when a
    reload starts, long before the switch: a thread inside an import statement that looked up
    ``__import__`` before this cannot still be there when the entries leave."""
    for module in modules.values():
        table = getattr(module, "__dict__", {}).get("__builtins__")
        if isinstance(table, dict) and "__polyvenv__" in table:
            table["__import__"] = _import


def find_spec(fullname: str) -> ModuleSpec | None:
    """The spec of ``fullname`` if it is a module of a retired generation that is still alive: an
    import statement of its code that began before the switch (and so went to the host's import) is
    served the module itself. The entry it puts back in ``sys.modules`` leaves again at the env's
    next reload or unload (``sweep``)."""
    live = _LIVE.get(fullname.partition(".")[0])
    token = live() if live is not None else None
    module = token.modules.get(fullname) if token is not None else None
    if module is None:
        return None
    from importlib.machinery import ModuleSpec

    return ModuleSpec(fullname, _Again(module), origin=getattr(module.__spec__, "origin", None))


class _Again:
    """The loader of a retired generation's module asked for again: the module itself, as it is."""

    def __init__(self, module: ModuleType) -> None:
        self.module, self.spec = module, module.__spec__

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return self.module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self.spec  # the import system set its own spec; the module keeps its own


def sweep(env: str) -> None:
    """Take out of ``sys.modules`` what ``find_spec`` put back there for a retired generation of ``env``."""
    from .namemap import ALIASES

    for key in [k for k in list(sys.modules) if k.partition(".")[0] in _LIVE]:
        if ALIASES.retired(key.partition(".")[0]) == env:
            sys.modules.pop(key, None)


def _collected(aliases: tuple[str, ...], free: bool) -> None:
    """A retired generation's modules are all collected: nothing imports them any more."""
    from .namemap import ALIASES

    for alias in aliases:
        _LIVE.pop(alias, None)
    if free:
        ALIASES.free(aliases)


class _Token:
    """Lives as long as a retired generation's modules (or their globals) do, and knows the modules
    (their ``sys.modules`` entries when they left) for the generation's own imports, weakly."""

    def __init__(self, modules: dict[str, ModuleType]) -> None:
        self.modules: weakref.WeakValueDictionary[str, ModuleType] = weakref.WeakValueDictionary(modules)


_LIVE: dict[str, weakref.ref[_Token]] = {}  # a retired alias -> its generation, while any of it lives


def _import(name: str, globals: dict[str, object] | None = None, locals: object = None,
            fromlist: tuple[str, ...] | list[str] | None = (), level: int = 0) -> ModuleType:
    """``__import__`` of a retired generation's builtins: a module of the generation comes from the
    generation (it left ``sys.modules``); anything else is the host's import, as before the reload.
    Code of the new generation never comes here: its builtins are its own, with CPython's fast path."""
    import builtins

    absolute = name if level == 0 else _absolute(name, globals, level)
    live = _LIVE.get(absolute.partition(".")[0]) if absolute else None
    token = live() if live is not None else None
    if token is not None:
        module = token.modules.get(absolute)
        if module is not None:
            if fromlist:
                if all(item == "*" or hasattr(module, item) for item in fromlist):
                    return module
            elif level == 0:  # `import a.b` binds `a`, kept alive by `a.b`'s globals (see ``retire``)
                top = token.modules.get(absolute.partition(".")[0])
                if top is not None:
                    return top
    return builtins.__import__(name, globals, locals, fromlist, level)  # type: ignore[arg-type]


def _absolute(name: str, globals: dict[str, object] | None, level: int) -> str | None:
    """The absolute name of a relative import, as the import system resolves it (None if it cannot)."""
    package = (globals or {}).get("__package__")
    if not isinstance(package, str) or not package:
        return None
    bits = package.rsplit(".", level - 1)
    if len(bits) < level:
        return None
    return f"{bits[0]}.{name}" if name else bits[0]
