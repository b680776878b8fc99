"""``sys`` as an env's code sees it: the host's, except the import system's lists, which are the env's own.

Code extends the import system through ``sys``: six appends a finder for ``six.moves`` to
``sys.meta_path``, a CLI one for the SDK it vendors, setuptools' editable installs one for the project's
sources; a test runner inserts the project's root in ``sys.path``. On the host's ``sys`` those would serve
the host (its own ``import <vendored name>`` silently getting the env's copy) and not the env (whose
names go through its own finder). So the env's code gets this module for ``sys``: ``path``,
``meta_path``, ``path_hooks`` and ``path_importer_cache`` are the env's, which the env's finder
(runtime/importer.py) consults, in their order, for the names the env's code imports; every other
attribute is the host's ``sys``, read and assigned through (``sys.stdout = ...`` sets the process's).

The env's lists start as its own venv's would: the standard library's entries and the env's
directories in ``path`` (then what its ``.pth`` files add, as ``site`` does), the three standard
finders in ``meta_path`` (``PathFinder`` stands where the env's own directories are searched), and
the standard path hooks.

What this cannot reach: C code and the standard library read the host's ``sys`` (``site.addsitedir``,
``unittest``'s discovery inserting its top directory, ``pkgutil.iter_modules()`` without a path), so
entries they add serve the host and not the env; and a name an env's finder provides is looked up
under the env's names only when the env's code imports it (the rewrite), never for the host.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import TYPE_CHECKING, Any, Iterable

from .forwarding import forwarding_class, own_dict

if TYPE_CHECKING:
    from pathlib import Path

    from .namemap import NameMap

OWN = ("path", "meta_path", "path_hooks", "path_importer_cache")
# attributes sys has only at times (an interactive session's, the last uncaught exception's): read the slow way
_COME_AND_GO = ("ps1", "ps2", "last_type", "last_value", "last_traceback", "last_exc", "tracebacklimit",
                "__interactivehook__")
EnvSys = forwarding_class(sys, OWN, _COME_AND_GO)  # the env's sys: its import-system lists; the rest the host's


def env_sys(alias: str, stdlib: Iterable[str], roots: Iterable[Path]) -> Any:
    """A new env ``sys``, named ``alias`` as every module of the env is named in ``sys.modules``, for an
    env whose directories are ``roots`` (after the standard library's)."""
    from importlib.machinery import BuiltinImporter, FileFinder, FrozenImporter, PathFinder
    from zipimport import zipimporter

    module = EnvSys(alias, "the host's sys, with the env's own import system (polyvenv)")
    own_dict(module)["__getattr__"] = functools.partial(getattr, sys)  # names sys got after EnvSys was made
    module.path = [*(p for p in sys.path if p in stdlib), *(str(r) for r in roots)]
    module.meta_path = [BuiltinImporter, FrozenImporter, PathFinder]
    module.path_hooks = [h for h in sys.path_hooks if h is zipimporter or _is_directory_hook(h, FileFinder)]
    module.path_importer_cache = {}
    return module


def stdlib_entries() -> list[str]:
    """The host's ``sys.path`` entries that are its standard library (the env's code shares it)."""
    global _stdlib_entries
    path, entries = _stdlib_entries
    if path != tuple(sys.path):  # every env's load asks: resolving each entry again was a tenth of a small load
        path = tuple(sys.path)
        bases = tuple({os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix)})
        entries = [p for p in path if p and "-packages" not in p and os.path.realpath(p).startswith(bases)]
        _stdlib_entries = (path, entries)
    return list(entries)


_stdlib_entries: tuple[tuple[str, ...], list[str]] = ((), [])  # sys.path when last asked, and its answer


def pth_files(roots: Iterable[Path]) -> list[tuple[str, str, list[str]]]:
    """The env's ``.pth`` files as ``site`` reads them: (directory, file, its ``import`` lines), in order;
    the directories their other lines name are appended to ``env_path``, as ``site`` appends to sys.path.

    Old namespace packages' ``*-nspkg.pth`` lines are left out: they build a module by hand through
    the host's PathFinder, and the env's finder already makes those directories PEP 420 namespace
    packages."""
    found = []
    for root in roots:
        try:
            names = sorted(n for n in os.listdir(root) if n.endswith(".pth") and not n.startswith("."))
        except OSError:
            continue
        for name in names:
            try:
                with open(os.path.join(root, name), encoding="utf-8") as f:
                    lines = f.read().splitlines()
            except (OSError, UnicodeDecodeError):
                continue
            found.append((str(root), name, [] if name.endswith("-nspkg.pth") else lines))
    return found


def pth_paths(directory: str, lines: list[str]) -> list[str]:
    """The directories a ``.pth`` file's lines name (not its comments, ``import`` lines or missing paths)."""
    paths = []
    for line in lines:
        if not line.strip() or line.startswith(("#", "import ", "import\t")):
            continue
        path = os.path.abspath(os.path.join(directory, line.rstrip()))
        if os.path.exists(path):
            paths.append(path)
    return paths


def _is_directory_hook(hook: Any, file_finder: type) -> bool:
    """Whether ``hook`` is the standard library's ``FileFinder.path_hook(...)`` closure."""
    return getattr(hook, "__qualname__", "").startswith(file_finder.__name__ + ".path_hook")


def run_pth(names: NameMap) -> None:
    """Run the ``import`` lines of the env's ``.pth`` files, as ``site`` does for a venv, as the env's
    code (rewritten, its builtins, its ``sys``): setuptools' distutils shim, an editable install's
    finder. A failing line is a PthFileWarning naming it; the others still run."""
    for directory, name, lines in names.pth:
        for number, line in enumerate(lines, 1):
            if line.startswith(("import ", "import\t")):
                _run_line(names, directory, os.path.join(directory, name), number, line)


def _run_line(names: NameMap, sitedir: str, filename: str, number: int, line: str) -> None:
    """One line; ``sitedir`` is a local here because old ``.pth`` lines read it from their caller's frame."""
    try:
        exec(names.builtins["compile"](line, filename, "exec"), {"__builtins__": names.builtins, "__name__": "site"})
    except Exception as error:
        import warnings

        from ..errors import PthFileWarning

        warnings.warn(PthFileWarning(f"env {names.env!r}: line {number} of {filename} failed ({type(error).__name__}: "
                                     f"{error}); the env loads without it"), stacklevel=2)
