"""Rewrite an env module's code so every module name in it means that env's module.

Import statements are rewritten, not hooked: the rewritten code runs on
CPython's own import fast path, as fast as the host's imports. Strings are
rewritten only where they are module names by context (the research found
half of all literals equal to a module name are data): the first argument
of ``importlib.import_module``, ``find_spec``, ``__import__``,
``pkgutil.get_data``, ``importlib.resources.files``, ``set_module``; keys of
``sys.modules``; ``__module__`` assignments, comparisons and ``startswith`` prefixes, ``setattr(x, "__module__", ...)``
(httpx tidies its public names so) and ``module=`` arguments (the functional
``Enum``, ``make_dataclass``, ``namedtuple``); ``"module:attribute"`` strings;
the value under the key ``"__module__"`` of a class namespace being built
(``ns["__module__"] = name``, ``{"__module__": name}``, ``dict(__module__=name)``:
protobuf's generated message classes get their module so, from a literal
their ``_pb2`` module passes), and the literal a ``__module__`` is compared
with. A value in a ``__module__`` position is the name a class records: it
is never data, and a name the env lacks stays as it is. A value built at run time (sqlalchemy 1.4's
``"sqlalchemy" + location``) is mapped when it is made.
``__import__`` taken from a builtins dict (``__builtins__["__import__"]``,
``.get("__import__")``, ``getattr(..., "__import__")``) is the env's mapping
``__import__``; the ``builtins`` module env code imports has it already
(runtime/envbuiltins.py), while the dict keeps the host's for the fast path.
Names computed at run time in those places go through ``__polyvenv__.name``; a ``sys.modules`` key env code
sets or deletes goes through ``__polyvenv__.written`` (the standard library's entries are the host's).
Where env code walks ``sys.modules`` (``for m in sys.modules``, ``list(...)``,
``.items()``), it walks ``__polyvenv__.modules_view()``: the modules the env
sees, under the names its code knows (requests registers its vendored
packages that way).
"""

from __future__ import annotations

import ast
import re
from typing import Any, Callable

HELPER = "__polyvenv__"  # in the env's builtins: an object with .name(str) -> str

_NAME_CALLS = {"import_module", "find_spec", "__import__", "find_loader", "set_module", "get_loader"}
_SYS_MODULES_METHODS = {"get", "pop", "setdefault", "__getitem__", "__contains__", "__delitem__", "__setitem__"}
_WRITING_METHODS = {"pop", "setdefault", "__delitem__", "__setitem__"}
_ITERATING_CALLS = {"list", "tuple", "set", "frozenset", "sorted", "dict", "iter", "len", "enumerate"}
_VIEW_METHODS = {"keys", "items", "values", "copy"}
_ENTRY = re.compile(r"^[A-Za-z_]\w*(\.\w+)*:\w+(\.\w+)*$")
# node types the walk never enters: they hold nothing to rewrite (contexts, operators; a Name's parts are
# an identifier and a context, and its users' visitors read it: the Rewriter has no visit_Name)
_LEAVES = frozenset([ast.Name, *(kind for base in (ast.expr_context, ast.boolop, ast.operator, ast.unaryop, ast.cmpop)
                                 for kind in base.__subclasses__())])
_VISITORS: dict[type, Callable[..., Any]] = {}  # node type -> the Rewriter method that visits it


def _visitor(kind: type) -> Callable[..., Any]:
    visitor = _VISITORS.get(kind)
    if visitor is None:
        visitor = _VISITORS[kind] = getattr(Rewriter, "visit_" + kind.__name__, Rewriter.generic_visit)
    return visitor


class Rewriter(ast.NodeTransformer):
    """``replace(top, importing)`` gives the new first component of a module name, or None.

    ``importing`` is true where the name is imported or looked up in
    ``sys.modules`` (a name the env lacks must then fail or be absent), false
    where it is only recorded (``__module__``, ``"module:attr"``).
    """

    def __init__(self, replace: Callable[[str, bool], str | None], own: str | None = None) -> None:
        self.replace = replace
        self.own = own  # the real dotted name of the module being rewritten, when it is one
        self.namespaces: set[str] = set()  # names bound to the module's globals() (``_globals = globals()``)
        self.name_calls = set(_NAME_CALLS)  # and the names this module imports them as (numpy's _set_module)

    # -- the walk: NodeTransformer's, without its cost per node -------------------------------

    def visit(self, node: ast.AST) -> Any:
        return _visitor(type(node))(self, node)

    def generic_visit(self, node: ast.AST) -> ast.AST:
        """As ``NodeTransformer.generic_visit`` (a child visited to None is removed, to a list spliced in),
        skipping the nodes that hold nothing to rewrite (``_LEAVES``: half of all nodes) and putting a list
        back only where a child changed: rewriting a package is mostly this walk."""
        for field in node._fields:
            value = getattr(node, field, None)
            if type(value) is list:
                items, changed = [], False
                for item in value:
                    kind = type(item)
                    if kind not in _LEAVES and isinstance(item, ast.AST):
                        new = (_VISITORS.get(kind) or _visitor(kind))(self, item)
                        if new is not item:
                            changed = True
                            if new is None:
                                continue
                            if not isinstance(new, ast.AST):
                                items.extend(new)
                                continue
                        item = new
                    items.append(item)
                if changed:
                    value[:] = items
            elif type(value) not in _LEAVES and isinstance(value, ast.AST):
                new = (_VISITORS.get(type(value)) or _visitor(type(value)))(self, value)
                if new is None:
                    delattr(node, field)
                elif new is not value:
                    setattr(node, field, new)
        return node

    def _is_globals(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.namespaces
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "globals" \
            and not node.args

    # -- names -------------------------------------------------------------------

    def name(self, dotted: str, importing: bool = True) -> str:
        if dotted.startswith("."):  # relative: resolved against the caller's package, already an alias
            return dotted
        top, dot, rest = dotted.partition(".")
        new = self.replace(top, importing)
        return new + dot + rest if new else dotted

    def _name_expr(self, node: ast.expr, importing: bool = True) -> ast.expr:
        """A module-name expression, mapped now if constant, else at run time."""
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                return ast.copy_location(ast.Constant(self.name(node.value, importing)), node)
            return node
        if isinstance(node, ast.Starred):
            return node
        args = [node] if importing else [node, ast.Constant(False)]
        call = ast.Call(ast.Attribute(ast.Name(HELPER, ast.Load()), "name", ast.Load()), args, [])
        return ast.fix_missing_locations(ast.copy_location(call, node))

    # -- import statements -----------------------------------------------------------

    def visit_Import(self, node: ast.Import):
        statements: list[ast.stmt] = []  # one per name, in source order: `import a, b` imports a first
        for alias in node.names:
            top, dot, rest = alias.name.partition(".")
            new = self.replace(top, True)
            if new is None:
                statements.append(ast.Import(names=[alias]))
            elif alias.asname or not dot:
                statements.append(ast.Import(names=[ast.alias(name=new + dot + rest, asname=alias.asname or top)]))
            else:  # `import a.b` binds `a`: import the alias, bind `a` to it, drop the alias name
                first, _, _ = new.partition(".")
                if first == new:
                    bind: ast.stmt = ast.Assign(targets=[ast.Name(top, ast.Store())], value=ast.Name(new, ast.Load()))
                else:  # a dotted alias (`_polyvenv_missing.a`: a name the env's own finder serves, awscli's
                    # vendored botocore): `from _polyvenv_missing import a`, which finds `a` in sys.modules even
                    # while it is initialising (a circular import), as `import a.b` does
                    parent, _, last = new.rpartition(".")
                    bind = ast.ImportFrom(module=parent, names=[ast.alias(name=last, asname=top)], level=0)
                statements += [
                    ast.Import(names=[ast.alias(name=new + dot + rest, asname=None)]),
                    bind,
                    ast.Delete(targets=[ast.Name(first, ast.Del())]),
                ]
        for statement in statements:
            ast.copy_location(statement, node)
            ast.fix_missing_locations(statement)
        return statements

    def visit_ImportFrom(self, node: ast.ImportFrom):
        if node.level == 0 and node.module:
            node.module = self.name(node.module)
        self.name_calls.update(a.asname for a in node.names if a.asname and a.name in _NAME_CALLS)
        return node

    # -- module names in strings, by context ------------------------------------------

    def visit_Call(self, node: ast.Call):
        self.generic_visit(node)
        if self.own is not None and any(self._is_globals(a) for a in node.args):
            # the module hands its own dotted name with its namespace to a builder that fills it (a generated
            # _pb2 module to protobuf's builder, which may be the host's shared protobuf): its __name__
            node.args = [self._name_expr(a, importing=False) if _is_str(a, self.own) else a for a in node.args]
            for keyword in node.keywords:
                if _is_str(keyword.value, self.own):
                    keyword.value = self._name_expr(keyword.value, importing=False)
        func = node.func
        terminal = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        for keyword in node.keywords:  # Enum("E", "a b", module="pkg.x"), make_dataclass(..., module=...)
            if keyword.arg == "module" and _is_str(keyword.value):
                keyword.value = self._name_expr(keyword.value, importing=False)
            elif keyword.arg == "__module__":  # dict(DESCRIPTOR=d, __module__=name): a class namespace
                keyword.value = self._name_expr(keyword.value, importing=False)
        if not node.args:
            return node
        if _takes_import(node, terminal):  # getattr(b, "__import__"), __builtins__.get("__import__")
            return self._helper("import_", node)
        if terminal == "setattr" and isinstance(func, ast.Name) and len(node.args) == 3 and (
                _is_str(node.args[1], "__module__")):
            node.args[2] = self._name_expr(node.args[2], importing=False)
        if terminal == "startswith" and isinstance(func, ast.Attribute) and _is_module_attr(func.value):
            # `cls.__module__.startswith("setuptools")`: the env's classes carry the alias, as for `==` below
            first = node.args[0]
            if isinstance(first, ast.Tuple):
                first.elts = [self._name_expr(e, importing=False) if _is_str(e) else e for e in first.elts]
            elif _is_str(first):
                node.args[0] = self._name_expr(first, importing=False)
        if isinstance(func, ast.Name) and terminal in _ITERATING_CALLS:
            node.args[0] = self._view(node.args[0])
        if terminal == "__import__" and not _absolute_import_call(node):
            return node  # a relative __import__: the name is resolved against the caller's package
        on_modules = (terminal in _SYS_MODULES_METHODS and isinstance(func, ast.Attribute)
                      and _is_sys_modules(func.value))
        if on_modules and terminal in _WRITING_METHODS:
            node.args[0] = self._written(node.args[0])
        elif on_modules or terminal in self.name_calls or (terminal == "files" and _is_resources(func)) or (
                terminal == "get_data" and _is_pkgutil_get_data(func)):
            node.args[0] = self._name_expr(node.args[0])
        return node

    def _written(self, node: ast.expr) -> ast.expr:
        """A ``sys.modules`` key env code sets or deletes: ``__polyvenv__.written(key)``, at run time (the
        standard library's names are written under the env's own key, runtime/namemap.py)."""
        if isinstance(node, ast.Starred):
            return node
        call = ast.Call(ast.Attribute(ast.Name(HELPER, ast.Load()), "written", ast.Load()), [node], [])
        return ast.fix_missing_locations(ast.copy_location(call, node))

    def visit_Delete(self, node: ast.Delete):
        """``del sys.modules[k]``: ``sys.modules.pop(__polyvenv__.written(k), None)`` (the env's entry of a
        name that is not its own may be absent: nothing to forget then, and the host's stays)."""
        self.generic_visit(node)
        if not any(_is_modules_item(t) for t in node.targets):
            return node
        statements: list[ast.stmt] = []
        for target in node.targets:
            if _is_modules_item(target):
                pop = ast.Call(ast.Attribute(target.value, "pop", ast.Load()),  # type: ignore[attr-defined]
                               [target.slice, ast.Constant(None)], [])  # type: ignore[attr-defined]
                statements.append(ast.Expr(pop))
            else:
                statements.append(ast.Delete(targets=[target]))
        for statement in statements:
            ast.copy_location(statement, node)
            ast.fix_missing_locations(statement)
        return statements

    def _helper(self, attr: str, node: ast.expr) -> ast.expr:
        """``__polyvenv__.<attr>`` in place of ``node``."""
        helper = ast.Attribute(ast.Name(HELPER, ast.Load()), attr, ast.Load())
        return ast.fix_missing_locations(ast.copy_location(helper, node))

    def _view(self, node: ast.expr) -> ast.expr:
        """``sys.modules`` where env code iterates it: the env's view instead."""
        if not _is_sys_modules(node):
            return node
        view = ast.Call(ast.Attribute(ast.Name(HELPER, ast.Load()), "modules_view", ast.Load()), [], [])
        return ast.fix_missing_locations(ast.copy_location(view, node))

    def visit_For(self, node: ast.For):
        self.generic_visit(node)
        node.iter = self._view(node.iter)
        return node

    def visit_comprehension(self, node: ast.comprehension):
        self.generic_visit(node)
        node.iter = self._view(node.iter)
        return node

    def visit_Attribute(self, node: ast.Attribute):
        self.generic_visit(node)
        if node.attr in _VIEW_METHODS:
            node.value = self._view(node.value)
        return node

    def visit_Subscript(self, node: ast.Subscript):
        self.generic_visit(node)
        if isinstance(node.ctx, ast.Load) and _is_str(node.slice, "__import__"):  # __builtins__["__import__"]
            return self._helper("import_", node)
        if _is_sys_modules(node.value) and isinstance(node.slice, ast.expr):
            node.slice = self._name_expr(node.slice) if isinstance(node.ctx, ast.Load) else self._written(node.slice)
        return node

    def visit_Compare(self, node: ast.Compare):
        self.generic_visit(node)
        if (len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn))
                and _is_sys_modules(node.comparators[0])):
            node.left = self._name_expr(node.left)
        elif len(node.ops) == 1 and isinstance(node.ops[0], (ast.Eq, ast.NotEq)):
            # `DType.__module__ == "numpy.dtypes"`: the env's classes (and its compiled types, whose names the
            # byte patch renames) carry the alias, so the literal they are compared with does too
            left, right = node.left, node.comparators[0]
            if _is_module_attr(left) and isinstance(right, ast.Constant) and isinstance(right.value, str):
                node.comparators[0] = self._name_expr(right, importing=False)
            elif _is_module_attr(right) and isinstance(left, ast.Constant) and isinstance(left.value, str):
                node.left = self._name_expr(left, importing=False)
        return node

    def visit_Assign(self, node: ast.Assign):
        self.generic_visit(node)
        if self._is_globals(node.value) and isinstance(node.value, ast.Call):
            self.namespaces.update(t.id for t in node.targets if isinstance(t, ast.Name))
        # a constant now; a name built at run time (sqlalchemy 1.4's "sqlalchemy" + ...) when it is made; not
        # another object's __module__ copied over (functools.wraps' way), which carries its alias already
        if any(_is_module_attr(t) for t in node.targets) and not _is_module_attr(node.value):
            node.value = self._name_expr(node.value, importing=False)
        return node

    def visit_Dict(self, node: ast.Dict):
        """``{"__module__": name}``: a class namespace (protobuf 3's generated classes, ``type(...)``)."""
        self.generic_visit(node)
        node.values = [self._name_expr(v, importing=False) if k is not None and _is_str(k, "__module__") else v
                       for k, v in zip(node.keys, node.values)]
        return node

    def visit_Constant(self, node: ast.Constant):
        if isinstance(node.value, str) and _ENTRY.match(node.value):
            module, colon, attr = node.value.partition(":")
            mapped = self.name(module, importing=False)
            if mapped != module:
                return ast.copy_location(ast.Constant(mapped + colon + attr), node)
        return node


def rewrite(tree: ast.AST, replace: Callable[[str, bool], str | None], own: str | None = None) -> ast.AST:
    """The same tree, rewritten in place (every node made here gets its location where it is made); ``own``:
    the module's real dotted name, a literal of which passed to a call means the module's ``__name__``."""
    return Rewriter(replace, own).visit(tree)


def _absolute_import_call(node: ast.Call) -> bool:
    """Whether an ``__import__(name, globals, locals, fromlist, level)`` call has level 0."""
    level = node.args[4] if len(node.args) > 4 else next((k.value for k in node.keywords if k.arg == "level"), None)
    return level is None or (isinstance(level, ast.Constant) and level.value == 0)


def _is_str(node: ast.AST, value: str | None = None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and value in (None, node.value)


def _takes_import(node: ast.Call, terminal: str | None) -> bool:
    """``getattr(x, "__import__"[, default])`` or ``x.get("__import__"[, default])``: reading a builtins
    namespace's ``__import__``."""
    if terminal == "getattr" and isinstance(node.func, ast.Name):
        return 2 <= len(node.args) <= 3 and _is_str(node.args[1], "__import__")
    return (terminal == "get" and isinstance(node.func, ast.Attribute) and 1 <= len(node.args) <= 2
            and _is_str(node.args[0], "__import__"))


def _is_sys_modules(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "modules"
            and isinstance(node.value, ast.Name) and node.value.id == "sys")


def _is_modules_item(node: ast.AST) -> bool:
    return isinstance(node, ast.Subscript) and _is_sys_modules(node.value)


def _is_pkgutil_get_data(func: ast.AST) -> bool:
    """``pkgutil.get_data(package, ...)`` or a bare ``get_data``; not a loader's ``.get_data(path)``."""
    return isinstance(func, ast.Name) or (isinstance(func.value, ast.Name) and func.value.id == "pkgutil")


def _is_resources(func: ast.AST) -> bool:
    value = func.value if isinstance(func, ast.Attribute) else None
    return (isinstance(value, ast.Name) and value.id == "resources") or (
        isinstance(value, ast.Attribute) and value.attr == "resources")


def _is_module_attr(target: ast.AST) -> bool:
    """``__module__``, ``x.__module__``, ``namespace["__module__"]`` (protobuf's builder makes its message
    classes so) or ``getattr(x, "__module__"[, default])``."""
    if isinstance(target, ast.Subscript):
        return _is_str(target.slice, "__module__")
    if isinstance(target, ast.Call):
        return (isinstance(target.func, ast.Name) and target.func.id == "getattr" and 2 <= len(target.args) <= 3
                and _is_str(target.args[1], "__module__"))
    return (isinstance(target, ast.Name) and target.id == "__module__") or (
        isinstance(target, ast.Attribute) and target.attr == "__module__")
