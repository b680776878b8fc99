"""The first start after ``sync`` is warm: a build's code rewritten and its extensions patched before any load.

``sync`` runs ``warm`` in a scratch process of its own interpreter (the
host's, as for the probe), after each build and before switching to it. It
makes the name maps of the env as a host loading it alone would (the env's,
and those of its units, the distributions loaded once for the envs that agree
on them: runtime/units.py), and fills the caches a load reads: the
rewritten, compiled code of every ``.py`` module of their own top-level names
(codecache.py: with placeholders, so any aliases a host gives the env hit it,
a reload's and a second env's colliding ones too), and the patched copy of
every compiled extension (native/relocate.py), with what a load reads of
each copy's ELF tables (native/remembered.py). No module of the env is
imported (its ``.pth`` files run, as at every load, and what they import is
loaded). The copies are made for the aliases of those name maps: each
name's variant preferred by the env's name or the unit's share key
(runtime/names.py), which a host loading this env picks too, alone or
after others, in any order, unless another load holds that variant already
(a reload's old generation, or a rare collision); such a load patches its own
copies, as without warming.

Files in a package's ``tests``/``test`` directory are left out (its test
suite, which its code never imports: most of numpy's and pandas' files).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

_SKIPPED = ("tests", "test", "__pycache__")


class Warmed(NamedTuple):
    modules: int  # .py files whose code is in the cache now
    rewritten: int  # of them, the ones this warm-up rewrote (the others were cached already)
    extensions: int  # compiled extensions with a patched copy now
    failed: int  # files that could not be warmed (a syntax error, an extension the patch refuses): done at load
    seconds: float

    def summary(self) -> str:
        """``warmed 412 modules (412 rewritten), 17 extensions in 3.1s``."""
        failed = f", {self.failed} left to the first load" if self.failed else ""
        return (f"warmed {self.modules} modules ({self.rewritten} rewritten), {self.extensions} extension"
                f"{'s' * (self.extensions != 1)}{failed} in {self.seconds:.1f}s")


def warm(name: str, build: Path, shared: Iterable[str] = (), say: Callable[[str], object] = lambda line: None,
         extensions: bool = True) -> Warmed:
    """Fill the caches env ``name``'s first load from ``build`` reads (in this process: ``sync`` calls
    it in a scratch one, ``main``)."""
    from importlib.machinery import EXTENSION_SUFFIXES

    from .codecache import CODE_CACHE
    from .env import Env
    from .importer import patched_copy
    from .native.preload import refuse_shared_by_name
    from .native.threadstate import read_ahead

    started = time.monotonic()
    env = Env.from_path(build, name, shared)
    # the env's own distributions with its name map, each unit's (runtime/units.py) with the unit's: the
    # maps a load gives their code, whose aliases are the ones a load prefers (runtime/names.py)
    maps = [env.names, *(unit.names for unit in env.names.units)]
    files = sorted(((real, fullname, path, names) for names in maps
                    for real, fullname, path in env_files(names.found, set(names.own) - set(names.borrowed))),
                   key=lambda file: file[:3])
    modules = rewritten = patched = failed = 0
    try:
        for real, fullname, path, names in files:
            if path.endswith(".py"):
                try:
                    before = CODE_CACHE.rewritten
                    CODE_CACHE.code(names, names.module_name(fullname), path, os.stat(path),
                                    lambda: Path(path).read_bytes(), loading=False)
                except (OSError, SyntaxError, ValueError, RecursionError, MemoryError) as e:
                    failed += 1
                    say(f"{path}: not warmed ({type(e).__name__}: {e})")
                    continue
                modules += 1
                rewritten += CODE_CACHE.rewritten - before
            elif extensions and path.endswith(tuple(EXTENSION_SUFFIXES)) and _is_extension(path):
                try:
                    copy = patched_copy(names, real, path)
                    # what its load asks of the copy and of its libraries' copies, read now (native/remembered.py)
                    read_ahead(refuse_shared_by_name(copy, path, str(names.found[real]), names.env))
                except Exception as e:  # refused or out of the patch's reach: the load says why, as before
                    failed += 1
                    say(f"{path}: not warmed ({type(e).__name__}: {e})")
                    continue
                patched += 1
            if (modules + patched) % 100 == 0:
                say(f"{modules} modules, {patched} extensions")
    finally:
        env.unload()
    return Warmed(modules, rewritten, patched, failed, time.monotonic() - started)


def _is_extension(path: str) -> bool:
    """Whether the compiled file ``path`` is an extension module (it defines ``PyInit_<its name>``), not a
    library a package ships (``libfoo.so``), which only its users' copies copy, as they need it."""
    stem = os.path.basename(path).partition(".")[0]
    try:
        with open(path, "rb") as f:
            return b"PyInit_" + stem.encode() + b"\0" in f.read()
    except OSError:
        return False


def env_files(found: dict[str, Path], own: Iterable[str]) -> Iterator[tuple[str, str, str]]:
    """(top-level name, module name, path) of each ``.py`` and compiled file of the env's own names."""
    for real in own:
        root = found.get(real)
        if root is None:
            continue
        base = os.path.join(root, real)
        if os.path.isdir(base):
            for directory, subdirs, files in os.walk(base):
                subdirs[:] = sorted(d for d in subdirs if d not in _SKIPPED and d.isidentifier())
                package = os.path.relpath(directory, root).replace(os.sep, ".")
                for file in files:
                    stem, _, suffix = file.partition(".")
                    if not stem.isidentifier():
                        continue
                    module = package if stem == "__init__" else f"{package}.{stem}"
                    yield real, module, os.path.join(directory, file)
        else:
            for entry in os.listdir(root):
                if entry.partition(".")[0] == real and entry.endswith((".py", ".so", ".pyd")):
                    yield real, real, os.path.join(root, entry)


def main() -> None:
    """The scratch process: ``warm`` the env of the request (argv's last), one progress line at a time on
    stdout, then the result as JSON."""
    request = json.loads(sys.argv[-1])

    def say(line: str) -> None:
        print(line, flush=True)

    warmed = warm(request["name"], Path(request["build"]), request["shared"], say)
    print(json.dumps(warmed._asdict()), flush=True)
    sys.stdout.flush()
    os._exit(0)  # now: nothing was imported whose threads or atexit handlers could matter, but be sure
