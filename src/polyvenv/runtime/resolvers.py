"""The standard library's name resolvers as an env's code imports them: facades that resolve for the env.

``pydoc.locate``, ``pkgutil.resolve_name``, ``runpy.run_module``, the
``unittest`` and ``doctest`` loaders, ``unittest.mock.patch`` targets,
``logging.config``'s factories, ``pickle.load(s)`` and the source ``timeit``
and ``code`` compile take a module *name* from anywhere (a config file, the
command line, a pickle, a string built at run time) and import it with the
host's import: from env code they would bind the host's copy of that name.
The rewriter maps the names env code writes itself (runtime/rewrite.py); for
these, the env's code gets its own facade of the module (as it does of
``importlib``, ``builtins`` and ``sys``): every attribute is the host module's
very object (runtime/forwarding.py), except the entry points below, which
resolve names for this env. The host's modules and functions are never
touched: host code pays nothing, whatever an env loads.

An entry point takes one of two shapes. Where it imports the name it is given,
it is the host's function called with the name mapped (only the first
component changes, so the names it derives, ``"pkg.mod:attr"`` split or
``"pkg.mod.Class"`` tried prefix by prefix, stay the env's). Where the name
travels inside the module (``locate`` to ``safeimport``, ``DocTestSuite`` to
``_normalize_module``, ``dictConfig`` to the configurator's ``importer``), it is
a per-env copy of the host's functions, the same code rebound to an env copy
of the module's namespace whose ``__import__`` (or ``compile``, ``importlib``)
is the env's: the copies add no frame (doctest looks up its caller's module by
depth) and need no state shared with the host's, which a swap of the host's
functions for the duration of a call would (and race other threads).
"""

from __future__ import annotations

import functools
import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

from .forwarding import forwarding_class, own_dict, rebound_class, rebound_functions, rebound_namespace

if TYPE_CHECKING:
    from .namemap import NameMap

Own = dict[str, Any]


def _mapped(names: NameMap, value: Any) -> Any:
    """``value`` as the env means it, when it is a dotted module name, or ``"module:attribute"``
    (``resolve_name``), not ``""`` (``walk_packages``' prefix) nor relative."""
    if not isinstance(value, str):
        return value
    module, colon, attr = value.partition(":")
    if not module.partition(".")[0].isidentifier():
        return value
    return names.module_name(module) + colon + attr


def _mapping(names: NameMap, function: Callable[..., Any], index: int, keyword: str) -> Callable[..., Any]:
    """The host's ``function``, its module-name argument (``index``, or ``keyword``) mapped for the env."""

    @functools.wraps(function)
    def resolve(*args: Any, **kwargs: Any) -> Any:
        if index < len(args):
            args = (*args[:index], _mapped(names, args[index]), *args[index + 1:])
        elif keyword in kwargs:
            kwargs[keyword] = _mapped(names, kwargs[keyword])
        return function(*args, **kwargs)

    return resolve


def _pickle(names: NameMap, module: ModuleType) -> Own:
    from .pickles import pickle_attributes

    return pickle_attributes(names, module)


def _pkgutil(names: NameMap, module: ModuleType) -> Own:
    return {name: _mapping(names, getattr(module, name), index, keyword)
            for name, index, keyword in (("resolve_name", 0, "name"), ("walk_packages", 1, "prefix"),
                                         ("get_data", 0, "package"), ("get_loader", 0, "module_or_name"),
                                         ("find_loader", 0, "fullname"))
            if hasattr(module, name)}


def _pydoc(names: NameMap, module: ModuleType) -> Own:
    """``locate()`` and what calls it (``resolve``, ``doc``, ``render_doc``...), with an env ``safeimport``:
    None for a module the env has not (``locate()`` then tries builtins, as for a module a venv has not),
    whichever name its import error gives."""
    host_safeimport = module.safeimport

    def safeimport(path: str, forceload: int = 0, cache: Any = None) -> Any:
        name = names.module_name(path)
        if str(name).startswith(names.missing + "."):
            return None
        try:
            return host_safeimport(name, forceload)
        except module.ErrorDuringImport as error:
            if isinstance(error.value, ImportError) and error.value.name in (path, name):
                return None
            raise

    namespace = rebound_namespace(module, safeimport=safeimport)
    return {**rebound_functions(namespace, module), "safeimport": safeimport}


def _runpy(names: NameMap, module: ModuleType) -> Own:
    run_module = module.run_module

    @functools.wraps(run_module)
    def env_run_module(mod_name: str, init_globals: Any = None, run_name: Any = None, alter_sys: bool = False) -> Any:
        """The module's code runs with the env's builtins, as every env module does."""
        init = {**(init_globals or {}), "__builtins__": names.builtins}
        return run_module(_mapped(names, mod_name), init, run_name, alter_sys)

    @functools.wraps(module.run_path)
    def run_path(path_name: Any, init_globals: Any = None, run_name: Any = None) -> Any:
        return _run_path(names, module, path_name, init_globals, run_name)

    return {"run_module": env_run_module, "run_path": run_path}


def _run_path(names: NameMap, runpy: Any, path_name: Any, init_globals: Any = None, run_name: Any = None) -> Any:
    """``runpy.run_path`` of a script for env code: the script's code rewritten for the env, as the
    env's modules are, and run with its builtins."""
    import os
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
    return runpy._run_module_code(code, init, run_name or "<run_path>", pkg_name="",
                                  script_name=os.fspath(path_name))


def _importing_functions(names: NameMap, module: ModuleType) -> Own:
    """Every function of ``module`` (doctest's ``DocTestSuite("pkg.mod")``, ``testfile``... through
    ``_normalize_module``), its ``__import__(name)`` calls importing the env's modules."""
    return rebound_functions(rebound_namespace(module, __import__=names.import_), module)


def _unittest_loader(names: NameMap, module: ModuleType) -> Own:
    namespace = rebound_namespace(module, __import__=names.import_)
    loader = rebound_class(module.TestLoader, namespace)  # loadTestsFromName, discover, _get_module_from_name
    namespace.update(TestLoader=loader, defaultTestLoader=loader())
    return {**rebound_functions(namespace, module), "TestLoader": loader,
            "defaultTestLoader": namespace["defaultTestLoader"]}


def _unittest_main(names: NameMap, module: ModuleType) -> Own:
    """``unittest.main(module="pkg.tests")``: the env's module, loaded by the env's ``defaultTestLoader``."""
    env_loader = importlib.import_module(names.tops["unittest"] + ".loader")
    namespace = rebound_namespace(module, __import__=names.import_, loader=env_loader)
    program: Any = rebound_class(module.TestProgram, namespace)
    init = program.__init__
    host_loader = sys.modules["unittest.loader"].defaultTestLoader
    init.__defaults__ = tuple(env_loader.defaultTestLoader if d is host_loader else d
                              for d in init.__defaults__ or ())
    namespace.update(TestProgram=program, main=program)
    return {"TestProgram": program, "main": program}


def _unittest_mock(names: NameMap, module: ModuleType) -> Own:
    """``mock.patch("pkg.mod.attr")`` targets mapped where the env's code makes the patch (it is resolved
    when the test runs, maybe by the host's runner)."""
    host = module.patch
    patch: Any = _mapping(names, host, 0, "target")
    patch.object, patch.stopall, patch.TEST_PREFIX = host.object, host.stopall, host.TEST_PREFIX
    patch.dict = _mapping(names, host.dict, 0, "in_dict")
    patch.multiple = _mapping(names, host.multiple, 0, "target")
    return {"patch": patch}


def _logging_config(names: NameMap, module: ModuleType) -> Own:
    """``dictConfig``'s ``"()"`` and ``"class"`` factories, ``fileConfig``'s classes: the env's."""
    namespace = rebound_namespace(module, __import__=names.import_)
    made: dict[str, Any] = {}
    for name in ("BaseConfigurator", "DictConfigurator"):  # configure_formatter's _resolve, resolve's importer
        made[name] = rebound_class(getattr(module, name), namespace)
        made[name].importer = staticmethod(names.import_)
    namespace.update(made, dictConfigClass=made["DictConfigurator"])
    return {**rebound_functions(namespace, module), **made, "dictConfigClass": made["DictConfigurator"]}


def _compiling(classes: tuple[str, ...], **more: Callable[[NameMap], Any]) -> Callable[[NameMap, ModuleType], Own]:
    """A maker for a module that compiles source for its caller (``timeit``, ``codeop``, ``code``): its
    functions and ``classes`` use the env's ``compile`` (the source rewritten as the env's modules are),
    and the names in ``more`` (another facade's objects)."""

    def make(names: NameMap, module: ModuleType) -> Own:
        namespace = rebound_namespace(module, compile=names.builtins["compile"],
                                      **{name: get(names) for name, get in more.items()})
        own = {name: rebound_class(getattr(module, name), namespace) for name in classes if hasattr(module, name)}
        namespace.update(own)
        return {**rebound_functions(namespace, module), **own}

    return make


def _children(maker: str) -> Callable[[NameMap, ModuleType], Own]:
    """A maker for a module that starts processes: theirs load the env's modules (runtime/children.py)."""

    def make(names: NameMap, module: ModuleType) -> Own:
        from . import children

        return getattr(children, maker)(module)  # type: ignore[no-any-return]

    return make


def _codeop(attr: str) -> Callable[[NameMap], Any]:
    return lambda names: getattr(importlib.import_module(names.tops["codeop"]), attr)


# real module -> the attributes its env facade has of its own: (names, the host's module) -> {name: object}
RESOLVERS: dict[str, Callable[[NameMap, ModuleType], Own]] = {
    "pickle": _pickle,
    "pkgutil": _pkgutil,
    "pydoc": _pydoc,
    "runpy": _runpy,
    "doctest": _importing_functions,
    "unittest.loader": _unittest_loader,
    "unittest.main": _unittest_main,
    "unittest.mock": _unittest_mock,
    "logging.config": _logging_config,
    "timeit": _compiling(("Timer",)),
    "codeop": _compiling(("Compile", "CommandCompiler")),
    "code": _compiling(("InteractiveInterpreter", "InteractiveConsole"), CommandCompiler=_codeop("CommandCompiler"),
                       compile_command=_codeop("compile_command")),
    "multiprocessing": _children("multiprocessing_attributes"),
    "multiprocessing.pool": _children("pool_attributes"),
    "concurrent.futures.process": _children("executor_attributes"),
}
# a package facade's attributes that are its submodules' facades' (resolved on first use): name -> (submodule, attr)
FROM_SUBMODULES: dict[str, dict[str, tuple[str, str | None]]] = {
    "unittest": {"main": ("main", "main"), "TestProgram": ("main", "TestProgram"),
                 "TestLoader": ("loader", "TestLoader"), "defaultTestLoader": ("loader", "defaultTestLoader"),
                 "loader": ("loader", None), "mock": ("mock", None)},
    "logging": {"config": ("config", None)},
    "multiprocessing": {"pool": ("pool", None)},
    "concurrent": {"futures": ("futures", None)},
    "concurrent.futures": {"ProcessPoolExecutor": ("process", "ProcessPoolExecutor"), "process": ("process", None)},
}


@functools.lru_cache(maxsize=None)
def _facade_class(real: str, own: frozenset[str]) -> type[ModuleType]:
    """One forwarding module type per host module (its properties read the host's; the same for every env)."""
    return forwarding_class(importlib.import_module(real), own)


def facade(names: NameMap, fullname: str, real: str) -> ModuleType:
    """The env's module ``fullname`` standing for the host's ``real``: the host's objects, and the
    entry points that resolve names for this env."""
    host = importlib.import_module(real)
    make = RESOLVERS.get(real)
    own = make(names, host) if make is not None else {}
    lazy = FROM_SUBMODULES.get(real, {})
    module = _facade_class(real, frozenset(own) | frozenset(lazy))(fullname, host.__doc__)
    namespace = own_dict(module)
    namespace.update(own)

    def __getattr__(attr: str) -> Any:  # what the class has no property for: the host's, or a submodule's facade
        where = lazy.get(attr)  # a submodule only once the host has it; an attribute of one always
        if where is None or where[1] is None and f"{real}.{where[0]}" not in sys.modules:
            return getattr(host, attr)
        submodule = importlib.import_module(f"{fullname}.{where[0]}")
        value = submodule if where[1] is None else getattr(submodule, where[1])
        namespace.setdefault(attr, value)
        return value

    namespace["__getattr__"] = __getattr__
    return module
