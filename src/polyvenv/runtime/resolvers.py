"""The standard library's name resolvers, resolving for the env whose code calls them.

``pydoc.locate``, ``pkgutil.resolve_name``, ``runpy.run_module``, the
``unittest`` and ``doctest`` loaders, ``unittest.mock.patch`` targets and
``logging.config``'s factories import a module *name* they are given, with
the host's import: from env code they would bind the host's copy of that
name (or fail). The rewriter maps the names env code writes itself
(runtime/rewrite.py); these take names from anywhere (a config file, the
command line, a string built at run time), so each is taught to map the name
when the code that called it, the nearest frame outside the standard library,
is an env's (its builtins are the env's). Called from anywhere else, each
does exactly what it did, for the price of that one look at the stack; so
the host's modules keep working as before, and nothing is imported for this:
a resolver module is taught when it is first imported (the env finder sees
the import, runtime/importer.py), or at the first env load if it already was.
"""

from __future__ import annotations

import functools
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable

from .names import STDLIB

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType

    from .namemap import NameMap

HELPER = "__polyvenv__"  # in an env's builtins: its name map (runtime/envbuiltins.py)

# module -> (attribute path, index of the module-name argument counting ``self``, its keyword name);
# "__import__" puts a global ``__import__`` in the module: its explicit ``__import__(...)`` calls map;
# "compile" a global ``compile``: source it compiles for env code is rewritten as the env's modules are.
RESOLVERS: dict[str, tuple[tuple[str, int, str], ...]] = {
    "pydoc": (("safeimport", 0, "path"),),  # locate() goes through it
    "pkgutil": (("resolve_name", 0, "name"), ("walk_packages", 1, "prefix"), ("get_data", 0, "package")),
    "runpy": (("run_module", 0, "mod_name"), ("run_path", 0, "path_name")),
    "doctest": (("__import__", 0, "name"),),  # _normalize_module: DocTestSuite("pkg.mod"), testmod
    "unittest.loader": (("__import__", 0, "name"), ("TestLoader._get_module_from_name", 1, "name")),
    "unittest.main": (("TestProgram.__init__", 1, "module"),),
    "unittest.mock": (("_get_target", 0, "target"), ("_patch_multiple", 0, "target"),
                      ("patch.multiple", 0, "target"), ("_patch_dict.__init__", 1, "in_dict"),
                      ("__import__", 0, "name")),  # targets mapped where the env's code makes the patch
    "logging.config": (("__import__", 0, "name"), ("BaseConfigurator.importer", 0, "name")),  # "()", "class"
    # a pickle made in the env's own venv (or worker) names the real modules: env code loads the env's
    "pickle": (("load", 0, ""), ("loads", 0, ""), ("_Unpickler.find_class", 1, "module")),
    "timeit": (("compile", 0, "source"),),  # timeit.timeit("...", setup="import pkg")
    "codeop": (("compile", 0, "source"),),  # code.interact(), code.InteractiveConsole
}
_TAUGHT = "__polyvenv_resolves_for_envs__"
_lock = threading.Lock()


def caller_names(depth: int = 2) -> NameMap | None:
    """The name map of the env whose code called, through standard-library frames only, the function
    ``depth - 1`` frames up; None when the nearest frame outside the standard library is the host's."""
    frame: Any = sys._getframe(depth)
    while frame is not None:
        names = frame.f_builtins.get(HELPER)
        if names is not None:
            return names  # type: ignore[no-any-return]
        top = str(frame.f_globals.get("__name__")).partition(".")[0]
        if top not in STDLIB or top == "__main__":  # the host's code (its script too)
            return None
        frame = frame.f_back
    return None


def _mapped(names: NameMap, value: Any) -> Any:
    """``value`` as the env means it, when it is a dotted module name, or ``"module:attribute"``
    (``resolve_name``), not ``""`` (``walk_packages``' prefix) nor relative."""
    if not isinstance(value, str):
        return value
    module, colon, attr = value.partition(":")
    if not module.partition(".")[0].isidentifier():
        return value
    return names.module_name(module) + colon + attr


def _resolving(function: Callable[..., Any], index: int, keyword: str) -> Callable[..., Any]:
    """``function``, with its module-name argument mapped when an env's code called it."""
    kind = function.__name__

    @functools.wraps(function)
    def resolve(*given: Any, **kwargs: Any) -> Any:
        names = caller_names()
        if names is None:
            return function(*given, **kwargs)
        args = list(given)
        if kind == "run_path":
            return _run_path(names, function, *args, **kwargs)
        if kind in ("load", "loads") and not keyword:  # pickle's
            return _unpickle(names, kind, *args, **kwargs)
        if index < len(args):
            given_name, name = args[index], _mapped(names, args[index])
            args[index] = name
        elif keyword in kwargs:
            given_name, name = kwargs[keyword], _mapped(names, kwargs[keyword])
            kwargs[keyword] = name
        else:
            return function(*args, **kwargs)
        if kind == "safeimport":
            return _safeimport(function, names, given_name, name, *args, **kwargs)
        if kind == "run_module":  # the module's code runs with the env's builtins, as every env module does
            if len(args) > 1:
                args[1] = {**(args[1] or {}), "__builtins__": names.builtins}
            else:
                kwargs["init_globals"] = {**(kwargs.get("init_globals") or {}), "__builtins__": names.builtins}
        return function(*args, **kwargs)

    setattr(resolve, _TAUGHT, True)
    return resolve


def _safeimport(function: Callable[..., Any], names: NameMap, given: str, name: str, *args: Any,
                **kwargs: Any) -> Any:
    """``pydoc.safeimport`` for env code: None for a module the env has not (as for a module a venv
    has not: ``locate()`` then tries builtins), whichever name its import error gives."""
    import pydoc

    if str(name).startswith(names.missing + "."):
        return None
    try:
        return function(*args, **kwargs)
    except pydoc.ErrorDuringImport as error:
        if isinstance(error.value, ImportError) and error.value.name in (given, name):
            return None
        raise


def _import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    """``__import__``, mapping an absolute name for the env whose code called the resolver."""
    import builtins

    names = caller_names() if level == 0 else None
    return builtins.__import__(_mapped(names, name) if names is not None else name, globals, locals, fromlist,
                               level)


setattr(_import, _TAUGHT, True)


def _compile(source: Any, filename: Any, mode: str, *args: Any, **kwargs: Any) -> Any:
    """``compile``, rewriting the source for the env whose code called the resolver."""
    import builtins

    names = caller_names()
    compile_ = names.builtins["compile"] if names is not None else builtins.compile
    return compile_(source, filename, mode, *args, **kwargs)


def _run_path(names: NameMap, run_path: Callable[..., Any], path_name: Any, init_globals: Any = None,
              run_name: Any = None) -> Any:
    """``runpy.run_path`` of a script for env code: the script's code rewritten for the env, as the
    env's modules are, and run with its builtins."""
    import os
    import runpy
    import zipfile

    init = {**(init_globals or {}), "__builtins__": names.builtins}
    if not os.path.isfile(path_name) or zipfile.is_zipfile(path_name) or str(path_name).endswith(".pyc"):
        from ..errors import NotResolvable

        raise NotResolvable(
            f"env {names.env!r}: runpy.run_path({os.fspath(path_name)!r}) would run a directory's or archive's "
            "__main__ with the host's modules, not the env's; run its __main__.py as a script, or give the env "
            'isolation = "process"', env=names.env, path=path_name)
    with open(path_name, "rb") as f:
        code = names.builtins["compile"](f.read(), os.fspath(path_name), "exec")
    return runpy._run_module_code(code, init, run_name or "<run_path>",  # type: ignore[attr-defined]
                                  pkg_name="", script_name=os.fspath(path_name))


def _unpickle(names: NameMap, kind: str, data: Any, **kwargs: Any) -> Any:
    """``pickle.load``/``loads`` for env code: the modules a pickle names are the env's."""
    import io

    unpickler = _env_unpickler()(io.BytesIO(data) if kind == "loads" else data, **kwargs)
    unpickler.names = names
    return unpickler.load()


@functools.lru_cache(maxsize=None)
def _env_unpickler() -> type:
    import _pickle

    class EnvUnpickler(_pickle.Unpickler):  # type: ignore[misc]  # the C unpickler, asked for each global
        names: NameMap

        def find_class(self, module: str, name: str) -> Any:
            return super().find_class(_mapped(self.names, module), name)

    return EnvUnpickler


def teach(module: ModuleType) -> None:
    """Make ``module``'s resolvers resolve names for the env that calls them (once)."""
    namespace = module.__dict__
    if namespace.get(_TAUGHT):
        return
    for path, index, keyword in RESOLVERS.get(module.__name__, ()):
        if path in ("__import__", "compile"):
            namespace[path] = _import if path == "__import__" else _compile
            continue
        owner: Any = module
        *outer, attr = path.split(".")
        for part in outer:
            owner = getattr(owner, part, None)
        real = getattr(owner, "__dict__", {}).get(attr)
        if real is None:
            continue  # not in this Python's version of the module
        if isinstance(real, staticmethod):  # logging.config's importer = staticmethod(__import__)
            setattr(owner, attr, staticmethod(_import))
        elif callable(real) and not getattr(real, _TAUGHT, False):
            setattr(owner, attr, _resolving(real, index, keyword))
    namespace[_TAUGHT] = True


def install() -> None:
    """Teach the resolver modules already imported; the others are taught as they are imported."""
    with _lock:
        for name in RESOLVERS:
            module = sys.modules.get(name)
            if module is not None:
                teach(module)


def find_spec(fullname: str, path: Any, target: Any, skip: object) -> ModuleSpec | None:
    """The spec the rest of ``sys.meta_path`` finds for resolver module ``fullname``, loaded as always
    and then taught (its loader is its own again once it ran)."""
    for finder in sys.meta_path:
        if finder is skip or not hasattr(finder, "find_spec"):
            continue
        spec = finder.find_spec(fullname, path, target)
        if spec is not None:
            break
    else:
        return None
    if spec.loader is not None and hasattr(spec.loader, "exec_module"):
        spec.loader = _Teaching(spec.loader, spec)  # type: ignore[assignment]
    return spec


class _Teaching:
    """A resolver module's own loader, teaching the module once it ran, then putting itself away."""

    def __init__(self, loader: Any, spec: ModuleSpec) -> None:
        self.loader = loader
        self.spec = spec

    def create_module(self, spec: ModuleSpec) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.spec.loader = module.__loader__ = self.loader
        module.__dict__.pop(_TAUGHT, None)  # importlib.reload(): the fresh functions are taught again
        self.loader.exec_module(module)
        teach(module)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.loader, attr)
