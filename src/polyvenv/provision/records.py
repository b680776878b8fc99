"""Record, at sync, what each distribution of a build is and what its code can reference.

The records (runtime/records.py) are written into the build before its
manifest, so a stamped build always has them. What a distribution's code
can reference is over-approximated, never under: every top-level name of
an ``import`` statement in any of its ``.py`` files (optional imports in
``try`` blocks included; not those under ``if TYPE_CHECKING:``, which never
run), every constant module name the rewriter maps by context
(``import_module``, ``__import__``, ``find_spec`` ...), every
``"module:attribute"`` string, and every string of its compiled files that
names one of the env's top-level modules. Code that imports a name it is
given (``__import__(place)``, ``import_module(name)`` with a name built from
anything but its own package's) can reach every module of the env that calls
it: it is marked ``given`` (shared with the host only where the whole env
agrees, as code that enumerates distributions, ``discovers``; in a unit shared
between envs, the name is the calling env's: runtime/units.py). An
enumeration of entry points narrowed to a group by a constant name
(``entry_points(group="g")``, pandas' ``entry_points().select(group=key)``)
is no discovery: it reaches only the distributions whose ``entry_points.txt``
offers that group (``groups`` and ``offers``). ``pkg_resources`` discovers
through its own distribution's record (setuptools'), reached by reference.
Left out: files under a package's ``tests``/``test`` directory (its test suite, which its code never imports:
58% of numpy's and pandas' source). A name too many only keeps a
distribution private; a name too few could share one wrongly.

The references of a distribution depend only on its files, so they are kept
in polyvenv's cache by digest: ten envs with one numpy parse it once.
"""

from __future__ import annotations

import ast
import json
import os
import re
import warnings
from pathlib import Path
from typing import NamedTuple

from ..runtime.locations import user_cache_dir, write_cache_file
from ..runtime.records import RECORDS, Record, Records, digest, offered_groups, record_rows, tops_of
from ..runtime.rewrite import _ENTRY, _NAME_CALLS
from ..runtime.sitedir import normalize, site_packages

CACHE_FORMAT = 5  # 4: a name it is given (``given``) apart from discovering; 5: entry-point groups
_SCOPED = {"entry_points", "iter_entry_points"}  # enumerations a group name can scope
_UNSCOPED = {"distributions", "working_set"}
_METADATA_MODULES = {"importlib.metadata", "importlib_metadata", "pkg_resources"}
_TESTS = {"tests", "test"}
# importlib.metadata's (and pkg_resources') lookups of one distribution by name
_METADATA_CALLS = {"version", "distribution", "metadata", "files", "requires", "get_distribution", "require"}


def write_records(build: Path, private: tuple[str, ...] = ()) -> Records | None:
    """The records of the build's site-packages, written to ``<build>/polyvenv-records.json``."""
    from ..runtime.files import write_atomic

    site = site_packages(build)
    if site is None:
        return None
    records = Records(tuple(distribution_records(site)), tuple(sorted(normalize(p) for p in private)))
    text = json.dumps(records.as_json(os.path.relpath(site, build)), sort_keys=True)
    write_atomic(build / RECORDS, text + "\n", durable=True)
    return records


def distribution_records(site: Path) -> list[Record]:
    """One record per distribution installed in ``site``."""
    found: list[tuple[str, str, list[tuple[str, str]], Path]] = []
    for info in sorted(site.glob("*.dist-info")):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        rows = record_rows(info)
        if rows is not None:
            found.append((normalize(name), version, rows, info))
    universe = {top for _, _, rows, _ in found for top in tops_of(p for p, _ in rows)}
    records = []
    for name, version, rows, info in found:
        paths = [p for p, _ in rows]
        tops = tops_of(paths)
        dist_digest = digest(rows)
        refs = _cached(dist_digest, site, paths)
        references = refs.references | {top for top in refs.compiled if top in universe}
        references |= _mentioned(dist_digest, site, paths, universe - references - set(tops))
        references -= set(tops)  # the standard library's names stay: which they are is the loading Python's
        records.append(Record(name, version, dist_digest, tops, tuple(sorted(references)), refs.discovers,
                              tuple(sorted(refs.metadata - {name})), refs.given, tuple(sorted(refs.groups)),
                              offered_groups(info)))
    return records


def _cached(dist_digest: str, site: Path, paths: list[str]) -> _Found:
    """What the code of a distribution's files references (``_Found``), from the cache when another build
    had the same files."""
    cache = Path(user_cache_dir()) / "records" / f"{dist_digest.replace('/', '_')}.json"
    try:
        data = json.loads(cache.read_text())
        if data.get("format") == CACHE_FORMAT:
            return _Found(set(data["references"]), bool(data["discovers"]), bool(data["given"]),
                          set(data["metadata"]), set(data["compiled"]), set(data["groups"]))
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        pass
    found = _Found(set(), False, False, set(), set(), set())
    for path in paths:
        full = site / path
        if _TESTS & set(path.split("/")[1:-1]):
            continue  # a package's own test suite: run by a test runner, never imported by the package's code
        if path.endswith(".py"):
            references, discovering, giving, asked, groups = python_references(full)
            found.references.update(references)
            found.metadata.update(asked)
            found.groups.update(groups)
            found = found._replace(discovers=found.discovers or discovering, given=found.given or giving)
        elif path.endswith((".so", ".pyd")) or ".so." in path:
            found.compiled.update(compiled_names(full))
    data = {"format": CACHE_FORMAT, **{k: sorted(v) if isinstance(v, set) else v for k, v in found._asdict().items()}}
    write_cache_file(cache, json.dumps(data).encode())
    return found


class _Found(NamedTuple):
    """What a distribution's files reference: top-level names in its Python code; whether it enumerates
    every distribution; whether it imports a name it is given; the distributions whose metadata it asks by
    name; top-level-like names in its compiled files' strings; the entry-point groups it enumerates."""

    references: set[str]
    discovers: bool
    given: bool
    metadata: set[str]
    compiled: set[str]
    groups: set[str]


def python_references(path: Path) -> tuple[set[str], bool, bool, set[str], set[str]]:
    """Top-level names a ``.py`` file can import, whether it enumerates distributions, whether it imports
    a name it is given, and the
    distributions whose metadata it asks by a constant name (``version("pkg")``)."""
    try:
        source = path.read_bytes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes and the like in third-party code
            tree = ast.parse(source, str(path))
    except (OSError, SyntaxError, ValueError):
        return set(), False, False, set(), set()  # a file the interpreter cannot run either (a template, py2 code)
    finder = _References(tree)
    finder.visit(tree)
    uses_metadata = bool(finder.tops & {"importlib_metadata", "pkg_resources"}) or b"metadata" in source
    asked = {normalize(n) for n in finder.metadata} if uses_metadata else set()
    return finder.tops, finder.discovers, finder.given, asked, finder.groups


class _References(ast.NodeVisitor):
    def __init__(self, tree: ast.AST) -> None:
        self.tops: set[str] = set()
        self.discovers = False
        self.given = False
        self.metadata: set[str] = set()
        self.groups: set[str] = set()  # the entry-point groups it enumerates by a constant name
        self.scopes = _Scopes(tree)
        self.called: set[int] = set()  # ids of the nodes called (a discovery function not called escapes)

    def add(self, dotted: str) -> None:
        top = dotted.partition(".")[0]
        if top.isidentifier():
            self.tops.add(top)

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
            for statement in node.orelse:  # its body never runs: imports for type checkers only
                self.visit(statement)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self.add(node.module)
            if node.module in _METADATA_MODULES and any(a.name in _UNSCOPED for a in node.names):
                self.discovers = True

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in _SCOPED and id(node) not in self.called and isinstance(node.ctx, ast.Load):
            self.discovers = True  # entry_points handed on uncalled: whoever calls it may enumerate everything

    def visit_Call(self, node: ast.Call) -> None:
        self.called.add(id(node.func))
        self.generic_visit(node)
        func = node.func
        terminal = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if terminal in _NAME_CALLS and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                if not first.value.startswith("."):
                    self.add(first.value)
            elif terminal in _IMPORT_CALLS:
                head = _constant_head(first)
                if head is not None:  # "pkg." + name, f"pkg.{name}": under pkg ("." + name: its own package)
                    self.add(head)
                elif not _own_name(first):
                    # a name it is given (numpy's add_newdoc(place, ...) imports its caller's module): it can
                    # import any module of the env that calls it
                    self.given = True
        if terminal in _SCOPED:  # entry_points(group="g"), entry_points().select(group="g"): only g's offerers
            groups = self.scopes.groups(node)
            if groups is None:
                self.discovers = True
            else:
                self.groups |= groups
        elif terminal in _UNSCOPED and isinstance(func, ast.Attribute):  # metadata.distributions(), ...
            self.discovers = True
        if terminal in _METADATA_CALLS and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                self.metadata.add(first.value)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and _ENTRY.match(node.value):
            self.add(node.value.partition(":")[0])


_IMPORT_CALLS = _NAME_CALLS - {"set_module"}  # set_module only records a name


class _Scopes:
    """Which entry-point groups an enumeration of one file reads, where constant names say so.

    ``entry_points(group="g")`` and ``iter_entry_points("g")`` read group g; so does a bare
    ``entry_points()`` whose result is only ever ``.select(group="g")``-ed, ``.get("g", ...)``-ed,
    indexed by ``"g"`` or asked ``hasattr`` of, directly or through one name (pandas' plotting
    backends). A name counts as a constant when its scope (or the module) assigns it once, a string.
    Anything else is an enumeration of every distribution (None)."""

    def __init__(self, tree: ast.AST) -> None:
        self.tree = tree
        self._parents: dict[ast.AST, ast.AST] | None = None

    @property
    def parents(self) -> dict[ast.AST, ast.AST]:  # made for the few files that enumerate entry points
        if self._parents is None:
            self._parents = {child: node for node in ast.walk(self.tree) for child in ast.iter_child_nodes(node)}
        return self._parents

    def groups(self, call: ast.Call) -> set[str] | None:
        terminal = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
        argument = next((k.value for k in call.keywords if k.arg == "group"), None)
        if argument is None and terminal == "iter_entry_points" and call.args:
            argument = call.args[0]
        if argument is not None:
            return self._named(argument)
        if call.args or call.keywords:
            return None  # entry_points(name=...): by name across every group
        parent = self.parents.get(call)
        if isinstance(parent, ast.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0], ast.Name):
            name = parent.targets[0].id
            uses = [n for n in ast.walk(self._scope(parent)) if isinstance(n, ast.Name) and n.id == name
                    and isinstance(n.ctx, ast.Load)]
            found: set[str] = set()
            for use in uses:
                read = self._read(use)
                if read is None and not self._asked_hasattr(use):
                    return None
                found |= read or set()
            return found
        return self._read(call)

    def _read(self, node: ast.AST) -> set[str] | None:
        """The group ``node`` (the enumeration's result) is narrowed to by its parent, or None."""
        parent = self.parents.get(node)
        if isinstance(parent, ast.Subscript) and parent.value is node:
            return self._named(parent.slice)
        if isinstance(parent, ast.Attribute) and parent.attr in ("select", "get"):
            call = self.parents.get(parent)
            if isinstance(call, ast.Call) and call.func is parent:
                if parent.attr == "select":
                    argument = next((k.value for k in call.keywords if k.arg == "group"), None)
                else:
                    argument = call.args[0] if call.args else None
                return None if argument is None else self._named(argument)
        return None

    def _asked_hasattr(self, node: ast.AST) -> bool:
        parent = self.parents.get(node)
        return (isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id == "hasattr"
                and bool(parent.args) and parent.args[0] is node)

    def _named(self, node: ast.AST) -> set[str] | None:
        """``{the string}`` a node is: a constant, or a name its scope (else the module) assigns once, a string."""
        if isinstance(node, ast.Constant):
            return {node.value} if isinstance(node.value, str) else None
        if not isinstance(node, ast.Name):
            return None
        scope: ast.AST | None = self._scope(node)
        while scope is not None:
            stores = [n for n in ast.walk(scope) if isinstance(n, ast.Name) and n.id == node.id
                      and not isinstance(n.ctx, ast.Load)]
            if stores:
                assign = self.parents.get(stores[0])
                if (len(stores) == 1 and isinstance(assign, ast.Assign) and len(assign.targets) == 1
                        and isinstance(assign.value, ast.Constant) and isinstance(assign.value.value, str)):
                    return {assign.value.value}
                return None
            scope = None if isinstance(scope, ast.Module) else self._module(scope)
        return None

    def _scope(self, node: ast.AST) -> ast.AST:
        while not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.Module)):
            parent = self.parents.get(node)
            if parent is None:
                return node
            node = parent
        return node

    def _module(self, node: ast.AST) -> ast.AST | None:
        while node in self.parents:
            node = self.parents[node]
        return node if isinstance(node, ast.Module) else None


def _own_name(node: ast.expr) -> bool:
    """``node`` builds a name under the module's own package (``__name__ + ".sub"``, ``f"{__package__}.{x}"``)."""
    if isinstance(node, ast.Name):
        return node.id in ("__name__", "__package__", "__spec__")
    if isinstance(node, ast.Attribute):
        return node.attr in ("__name__", "__package__") or _own_name(node.value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _own_name(node.left)
    if isinstance(node, ast.JoinedStr) and node.values:
        head = node.values[0]
        return isinstance(head, ast.FormattedValue) and _own_name(head.value)
    return False


def _constant_head(node: ast.expr) -> str | None:
    """The constant start of a name built as ``"pkg." + x`` or ``f"pkg.{x}"``, if it names a package."""
    head = node.left if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) else (
        node.values[0] if isinstance(node, ast.JoinedStr) and node.values else None)
    if isinstance(head, ast.Constant) and isinstance(head.value, str) and "." in head.value:
        return head.value
    return None


def _mentioned(dist_digest: str, site: Path, paths: list[str], names: set[str]) -> set[str]:
    """Which of the env's top-level ``names`` the compiled files of a distribution mention as ``name.`` or
    ``name\\0`` anywhere, terminated or not: Rust packs its strings without NULs (pydantic-core's
    ``"pydantic.version"``), which ``compiled_names`` misses; the byte patch renames them, so a unit
    sharing the distribution must have them in its closure. Cached by digest and names."""
    import hashlib

    compiled = [p for p in paths if p.endswith((".so", ".pyd")) or ".so." in p]
    if not compiled or not names:
        return set()
    asked = hashlib.sha256(repr(sorted(names)).encode()).hexdigest()[:16]
    cache = Path(user_cache_dir()) / "records" / f"{dist_digest.replace('/', '_')}.{asked}.mentions.json"
    try:
        return set(json.loads(cache.read_text()))
    except (OSError, ValueError, TypeError):
        pass
    found: set[str] = set()
    for path in compiled:
        try:
            data = (site / path).read_bytes()
        except OSError:
            continue
        found |= {n for n in names - found if n.encode() + b"." in data or n.encode() + b"\x00" in data}
    write_cache_file(cache, json.dumps(sorted(found)).encode())
    return found


_STRING = re.compile(rb"\x00([A-Za-z_][A-Za-z0-9_]*)(?=[.\x00])")


def compiled_names(path: Path) -> set[str]:
    """First components of the dotted strings of a compiled file that could name a module: each whole
    NUL-terminated string (native/modulenames.py decides which the byte patch renames; here every one
    counts). A scan for every identifier, terminated or not, costs 9x as much for the same names."""
    try:
        data = path.read_bytes()
    except OSError:
        return set()
    return {m.decode() for m in set(_STRING.findall(data)) if len(m) > 1}
