"""Which top-level names an env has, and the aliases its modules live under in this process.

Every module an env loads gets a real, unique dotted name: the env's
top-level name with an *alias* of the same length in place of the first
component (``jinja2`` -> ``Jinja2``, ``jInja2``, ...). ``sys.modules``,
``__name__``, pickle, loggers and C code (once its strings are patched the
same way) all agree on it, so nothing needs swapping at run time. Same
length, so compiled extensions can be patched byte for byte later.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import keyword
import os
import sys
import threading
from pathlib import Path
from typing import Generic, Iterable, Iterator, TypeVar

_EXTENSION_SUFFIXES = (".so", ".pyd")
_NOT_MODULES = ("__pycache__", "__editable__")
# standard-library names an env's own code serves in place of the standard library's, as in its own venv:
# setuptools' shim (_distutils_hack, installed by its .pth file) serves `distutils` from setuptools/_distutils
# unless SETUPTOOLS_USE_DISTUTILS says "stdlib"
SERVED_BY_ENV = {"distutils": "_distutils_hack"}


def stdlib_names() -> frozenset[str]:
    """Top-level names of the standard library (``sys.stdlib_module_names`` from 3.10)."""
    names = getattr(sys, "stdlib_module_names", None)
    if names is None:  # Python 3.9: list the standard library's directories
        import sysconfig

        paths = sysconfig.get_paths()
        found = set(sys.builtin_module_names)
        for directory in {paths["stdlib"], paths["platstdlib"], os.path.join(paths["platstdlib"], "lib-dynload")}:
            try:
                found.update(e.split(".", 1)[0] for e in os.listdir(directory) if e != "site-packages")
            except OSError:
                continue
        names = {n for n in found if n.isidentifier()}
    return frozenset(names) | {"__main__"}


STDLIB = stdlib_names()


def top_level_names(roots: Iterable[Path]) -> dict[str, Path]:
    """Importable top-level names found directly in ``roots``, with the root each comes from."""
    found: dict[str, Path] = {}
    for root in roots:
        try:
            entries = sorted(os.scandir(root), key=lambda e: e.name)
        except OSError:
            continue
        path = Path(root)  # one object for all its names: a Path per name costs a listing of the stdlib 10x
        for entry in entries:
            name = entry.name
            if entry.is_dir():
                if name.isidentifier() and name not in _NOT_MODULES and "." not in name:
                    found.setdefault(name, path)
            elif name.endswith((".py", ".pyc")):
                stem = name.rsplit(".", 1)[0]
                if stem.isidentifier() and stem not in _NOT_MODULES:
                    found.setdefault(stem, path)
            elif name.endswith(_EXTENSION_SUFFIXES):
                stem = name.split(".", 1)[0]
                if stem.isidentifier() or _is_mypyc_library(stem):
                    found.setdefault(stem, path)
    return found


def served_by_env(found: Iterable[str]) -> list[str]:
    """The standard-library names (SERVED_BY_ENV) the env's own code serves, given its top-level names: its
    code's imports of them, and its ``sys.modules`` entries of them, are the env's, never the host's
    (setuptools' ``_distutils_hack`` puts ``distutils`` in ``sys.modules`` and the host's copy away)."""
    enabled = os.environ.get("SETUPTOOLS_USE_DISTUTILS", "local") == "local"
    return [name for name, server in SERVED_BY_ENV.items() if enabled and name in STDLIB and server in found]


def _is_mypyc_library(stem: str) -> bool:
    """``<hash>__mypyc``: the shared library of a mypyc build. No ``import`` statement can name it (it
    starts with a digit), but the build's compiled modules import it by that name from C, so it is a
    top-level name of the env like any other: the env gets its own copy, never the host's."""
    head, _, tail = stem.partition("__")
    return tail == "mypyc" and head.isalnum() and head.isascii()


Owner = TypeVar("Owner")
PREFERRED_AMONG = 64  # the variants an alias is preferred among (``preferred``)


class Aliases(Generic[Owner]):
    """The process-wide registry of alias names; no two envs ever share one (runtime/namemap.py has the one
    instance, whose owners are name maps)."""

    def __init__(self) -> None:
        self._owner: dict[str, Owner] = {}
        self._retired: dict[str, str] = {}  # alias -> env: a reloaded generation's, reserved while its modules live
        # name -> its variants after the last one reserved: those before are taken until an alias is freed, so
        # the next reserve goes on from there (thirty envs' facades each tried every alias before theirs)
        self._rest: dict[str, Iterator[str]] = {}
        self._freed: list[tuple[str, ...]] = []  # retired aliases collected meanwhile: freed under the lock
        self._lock = threading.Lock()

    def reserve(self, name: str, owner: Owner, prefer: str | None = None) -> str:
        """A new alias of ``name`` (same length) for ``owner``: ``prefer`` (its variant ``preferred`` by the
        owner's seed) if free, else the first free one in a fixed order."""
        with self._lock:
            self._free_collected()
            if prefer is not None and self._free(prefer):
                self._owner[prefer] = owner
                return prefer
            candidates = self._rest.pop(name, None) or _variants(name)
            for candidate in candidates:
                if self._free(candidate):
                    self._owner[candidate] = owner
                    self._rest[name] = candidates
                    return candidate
        raise RuntimeError(f"no free alias of the same length for {name!r}")

    def release(self, owner: Owner) -> None:
        """Free every alias ``owner`` reserved."""
        with self._lock:
            for alias in [a for a, o in self._owner.items() if o is owner]:
                del self._owner[alias]
            self._rest.clear()  # an earlier variant may be free again

    def transfer(self, aliases: Iterable[str], owner: Owner) -> None:
        """Give ``aliases`` (reserved by another owner) to ``owner``: a new generation of an env takes
        over the names it keeps (runtime/generation.py)."""
        with self._lock:
            for alias in aliases:
                self._owner[alias] = owner

    def retire(self, aliases: Iterable[str], env: str) -> None:
        """``aliases`` no longer name loaded modules, but modules of theirs may still be alive (a callback
        the host saved): no owner answers them, and none may take them until ``free(aliases)``."""
        with self._lock:
            for alias in aliases:
                self._owner.pop(alias, None)
                self._retired[alias] = env

    def free(self, aliases: Iterable[str]) -> None:
        """Retired ``aliases`` whose modules are all collected: free for any env again, from the next
        ``reserve`` on. Called by a finalizer (runtime/generation.py), so at any moment, in any thread,
        the collection maybe triggered inside this registry's own lock: it only notes them."""
        self._freed.append(tuple(aliases))

    def _free_collected(self) -> None:
        while self._freed:
            for alias in self._freed.pop():
                self._retired.pop(alias, None)
            self._rest.clear()

    def retired(self, alias: str) -> str | None:
        """The env whose reloaded generation ``alias`` named, while it is retired."""
        return self._retired.get(alias)

    def owner(self, alias: str) -> Owner | None:
        return self._owner.get(alias)

    def owners(self) -> list[Owner]:
        """Every owner holding an alias now, once each."""
        with self._lock:
            return list({id(o): o for o in self._owner.values()}.values())

    def _free(self, candidate: str) -> bool:
        lowered = candidate.lower()
        return (
            candidate not in self._owner
            and candidate not in self._retired
            and candidate not in sys.modules
            and lowered not in _STDLIB_LOWER
            and not keyword.iskeyword(candidate)
        )


_STDLIB_LOWER = frozenset(n.lower() for n in STDLIB)


def preferred(name: str, seed: str, among: int = PREFERRED_AMONG) -> str | None:
    """The alias of ``name`` an owner with ``seed`` (an env's name, a unit's share key) tries first: one of
    the first ``among`` variants, by a hash of both (a name every env and unit has an alias of, a facade's,
    picks among more: runtime/namemap.py). The same in every process, whatever was loaded before, so
    the extension copies ``sync`` patched for an env (runtime/warmup.py) are the ones a host loading many
    envs in any order uses; different seeds seldom want the same one (then the fixed order decides)."""
    first, size = _first_variants(name, among), len(name)
    if not first:
        return None
    digest = hashlib.sha256(f"{seed}\0{name}".encode()).digest()
    at = int.from_bytes(digest[:4], "little") % (len(first) // size) * size
    return first[at:at + size]


@functools.lru_cache(maxsize=1024)
def _first_variants(name: str, among: int) -> str:
    """The variants ``preferred`` picks among (asked for every alias of every load): those no load can have
    left out (a standard-library name's case variants never are free), joined: each has ``name``'s length,
    and one string kept for the process's life takes a fraction of the memory of hundreds (the facades')."""
    usable = (v for v in _variants(name) if v.lower() not in _STDLIB_LOWER and not keyword.iskeyword(v))
    return "".join(itertools.islice(usable, among))


def _variants(name: str) -> Iterator[str]:
    """Same-length variants of ``name`` in a fixed order: one letter's case toggled, then two, then
    a digit in place of any character but the first (which must stay a letter or '_'), alone and
    with the first letter's case toggled too (so even ``z3`` or ``h2`` has a few dozen), then two
    digits in place of two such characters (a standard-library name has no case variants: ``sys``
    facades of dozens of envs and units need these)."""
    letters = [i for i, c in enumerate(name) if c.isalpha()]
    toggled = [name[:i] + name[i].swapcase() + name[i + 1:] for i in letters]
    yield from toggled
    for a in range(len(letters)):
        for b in range(a + 1, len(letters)):
            i, j = letters[a], letters[b]
            yield name[:i] + name[i].swapcase() + name[i + 1:j] + name[j].swapcase() + name[j + 1:]
    for base in [name, *toggled[:1]]:
        for i in range(1, len(base)):
            for digit in "0123456789":
                if digit != base[i]:
                    yield base[:i] + digit + base[i + 1:]
    for base in [name, *toggled[:1]]:
        for i in range(1, len(base)):
            for j in range(i + 1, len(base)):
                for first in "0123456789":
                    for second in "0123456789":
                        if first != base[i] and second != base[j]:
                            yield base[:i] + first + base[i + 1:j] + second + base[j + 1:]
