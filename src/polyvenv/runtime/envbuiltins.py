"""An env's builtins: the host's, but ``compile``/``exec``/``eval`` rewrite source strings first.

jinja2 compiles templates that import ``jinja2.runtime``: code made from a
string at run time must mean the env's modules as much as the env's files do.

Two objects: the dict env modules get as ``__builtins__`` (its ``__import__``
stays the host's, so import statements, already rewritten, keep CPython's
fast path), and the ``builtins`` *module* env code imports, whose
``__import__`` maps the names it is given (sqlalchemy 1.x imports through
``getattr(builtins, "__import__")``); its other attributes, ``vars()`` and
assignments are that dict's.
"""

from __future__ import annotations

import builtins
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .namemap import NameMap


def env_builtins(names: NameMap) -> dict[str, Any]:
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


_MODULE_ATTRIBUTES = frozenset({"__name__", "__spec__", "__loader__", "__package__", "__path__", "__file__",
                                "__cached__", "__doc__"})


def builtins_module(names: NameMap) -> types.ModuleType:
    """The ``builtins`` module of the env's code: a module over the env's builtins dict whose
    ``__import__`` maps absolute names to the env's (``names.import_``)."""
    namespace = names.builtins
    own = types.ModuleType.__dict__["__dict__"].__get__  # the module's own dict, under the property below

    class EnvBuiltins(types.ModuleType):
        @property  # type: ignore[misc]  # vars(builtins), builtins.__dict__: the env's builtins
        def __dict__(self) -> dict[str, Any]:  # type: ignore[override]
            return namespace

        def __getattr__(self, attr: str) -> Any:  # what the module's own dict lacks
            try:
                return namespace[attr]
            except KeyError:
                return getattr(builtins, attr)  # added to the host's builtins later (gettext's `_`)

        def __setattr__(self, attr: str, value: Any) -> None:
            if attr in _MODULE_ATTRIBUTES or attr == "__import__":
                types.ModuleType.__setattr__(self, attr, value)
            if attr not in _MODULE_ATTRIBUTES:
                namespace[attr] = value

        def __delattr__(self, attr: str) -> None:
            own(self).pop(attr, None)
            namespace.pop(attr, None)

    module = EnvBuiltins("builtins", builtins.__doc__)  # named as in a venv: `x.__module__ == builtins.__name__`
    types.ModuleType.__setattr__(module, "__import__", names.import_)
    return module
