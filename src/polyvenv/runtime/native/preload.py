"""Before a relocated copy is loaded: what the dynamic loader would share with files already loaded, by name.

Two rules of the loader bind across copies whatever the renaming does:

- a library already loaded under a name (its soname, or its file name) is used for every later
  DT_NEEDED of that name, without any search: an env's extension whose own library was not
  found beside its copy would silently run on the host's (or another env's) library of that name;
- a symbol of binding ``STB_GNU_UNIQUE`` (C++ statics of inline functions and templates) has one
  definition per process, even with ``RTLD_LOCAL``: two versions of one extension then share
  objects that each lays out its own way (plain ``ctypes.CDLL`` of both segfaults).

Both are read from the ELF files (elf.py) and from ``/proc/self/maps`` before loading, and
refused with the way out. What each mapped file says is read once (cached by path and
inode); an extension that needs no library of its package's and defines no unique symbol
costs one read of the maps.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from typing import NamedTuple

from ...errors import ExtensionNotSupported
from .libraries import find_library

# unique symbols of the C++ runtime (std::, __gnu_cxx::, __cxxabiv1::) are meant to be one per process
_RUNTIME = re.compile(r"_Z(?:Z|GVZ|TH|TW)?N?K?(?:S[tsabiod]|9__gnu_cxx|10__cxxabiv1)")
_WAY_OUT = 'give this env isolation = "process"'
_HASHED = re.compile(r"-[0-9a-f]{8}\.so")  # auditwheel names a library it bundles after a hash of its bytes


class _Facts(NamedTuple):
    names: frozenset[str]  # the names the loader knows it by: its file name and soname
    needed: tuple[str, ...]
    search: tuple[str, ...]
    unique: dict[str, bytes | None]  # STB_GNU_UNIQUE symbols it defines (elf.py), the C++ runtime's left out


_FACTS: dict[tuple[str, int], _Facts | None] = {}


def refuse_shared_by_name(copy: str, original: str, root: str, env: str) -> list[str]:
    """Raise ExtensionNotSupported if loading ``copy`` (the relocated copy of ``original``, a file of the env
    ``env`` whose site-packages is ``root``) would bind a library or a unique symbol of another file; else
    return the files of the env's copy tree that loading it maps: the copy, then its libraries' copies.

    Most copies need no library but their own copies and the system's, and define no unique symbol: then
    the answer depends on those files alone, and is remembered across processes (remembered.py), checked
    by their identities; the others are checked against what this process has loaded, every time."""
    if not sys.platform.startswith("linux"):
        return [copy]
    from ..files import file_identity
    from .remembered import remembered

    def files_alone() -> list[tuple[str, tuple[int, int, int] | None]] | None:
        incoming, alone = _check(copy, original, root, env)
        return [(path, file_identity(path)) for path in incoming] if alone else None

    known = remembered("preload verdict 1", copy, files_alone)
    if known is not None and all(file_identity(path) == tuple(identity or ()) for path, identity in known[1:]):
        return [path for path, _ in known]
    return _check(copy, original, root, env)[0]


def _check(copy: str, original: str, root: str, env: str) -> tuple[list[str], bool]:
    """``refuse_shared_by_name``'s check: the files loading ``copy`` maps, and whether that answer depends on
    those files alone (not on what is loaded)."""
    tree = _real(os.path.join(os.path.dirname(copy), os.path.relpath(root, os.path.dirname(original))))
    ours = (tree + os.sep, _real(root) + os.sep)
    mapped: dict[str, int] = {}  # read only when needed: most extensions never need it
    alone = True
    pending, incoming = [os.path.join(_real(os.path.dirname(copy)), os.path.basename(copy))], []  # a file, no link
    while pending:
        path = pending.pop()
        facts = _facts(path)
        if facts is None or path in incoming:
            continue
        incoming.append(path)
        here = os.path.dirname(path)
        for name in facts.needed:
            found = find_library(name, facts.search, here)
            if found is None:
                beside = find_library(name, facts.search, _in_env(here, tree, root)) if here.startswith(ours[0]) \
                    else None
                if beside is not None:
                    raise _refusal(env, original, f"its library {beside} is not where its relocated copy looks for "
                                                  f"it, so the loader would take any other library named {name!r}")
                continue  # a system library: the same for the host and every env
            found = _real(found)
            if found.startswith(ours[0]):
                pending.append(found)  # the env's own copy, under the env's own name (libraries.py)
                continue
            if _HASHED.search(name) and os.path.basename(os.path.dirname(found)).endswith(".libs"):
                continue  # auditwheel's: a name only these bytes have
            mapped, alone = mapped or _mapped(), False
            other = next((p for p, inode in mapped.items() if p != found and name in _names(p, inode)), None)
            if other is not None and not _same_bytes(found, other):
                raise _refusal(env, original, f"it needs its own {name!r} ({found}) but {other} is loaded under "
                                              "that name, and the loader would give it that one")
            pending.append(found)
    unique = {symbol: (path, value) for path in incoming for symbol, value in (_facts(path) or _EMPTY).unique.items()}
    if not unique:
        return incoming or [copy], alone

    def whose(symbol: str) -> str:
        return "it" if unique[symbol][0] == incoming[0] else "a library of its package"

    for path, inode in (mapped or _mapped()).items():
        if path.startswith(ours):
            continue  # the env's own files share these as they would in a plain venv
        held = _unique(path, inode)
        # one constant table of the same bytes serves both alike; state, or other bytes, does not
        shared = sorted(s for s in set(unique) & set(held) if unique[s][1] is None or unique[s][1] != held[s])
        if shared:
            raise _refusal(env, original, f"{whose(shared[0])} defines the symbol {shared[0]!r} of binding "
                                          f"STB_GNU_UNIQUE, one per process, which {path} already holds")
    state = sorted(s for s, (_, value) in unique.items() if value is None)
    host = _hosts_own(original, root, ours) if state else None
    if host is not None:  # the first definition wins: the host's copy, imported later, would run on the env's
        raise _refusal(env, original, f"{whose(state[0])} defines the symbol {state[0]!r} of binding "
                                      f"STB_GNU_UNIQUE, one per process, which the host's own {host} would share "
                                      "if imported after it")
    return incoming, False


# The real paths of an env's files and of their relocated copies, for the process: a build never changes in
# place (a sync makes a new one), nor does a copy tree's layout, and resolving them again (an lstat per
# component of deep paths, a few each extension) was half of this check's cost.
_real = functools.lru_cache(maxsize=4096)(os.path.realpath)


def _hosts_own(original: str, root: str, ours: tuple[str, ...]) -> str | None:
    """Where the host would import its own module of the top-level name ``original`` belongs to, if anywhere."""
    from importlib.machinery import PathFinder

    top = os.path.relpath(original, root).split(os.sep)[0].partition(".")[0]
    path = [p for p in sys.path if not os.path.realpath(p or ".").startswith(ours)
            and os.path.realpath(p or ".") + os.sep not in ours]
    spec = PathFinder.find_spec(top, path)
    if spec is None:
        return None
    where = spec.origin if spec.origin not in (None, "namespace") \
        else next(iter(spec.submodule_search_locations or ()), None)  # a namespace package
    return None if where is None or os.path.realpath(where).startswith(ours) else where


_EMPTY = _Facts(frozenset(), (), (), {})


def _refusal(env: str, original: str, why: str) -> ExtensionNotSupported:
    return ExtensionNotSupported(f"env {env!r}: {original} cannot share the process: {why}; {_WAY_OUT}",
                                 env=env, path=original)


def _in_env(directory: str, tree: str, root: str) -> str:
    """The env's directory (in ``root``) that ``directory`` of the copy tree ``tree`` (a real path) mirrors."""
    return os.path.join(root, os.path.relpath(directory, tree))


_MAPS_LINE = re.compile(rb"^\S+ \S+ \S+ \S+ (\d+) +(/[^\n]*/[^/\n]*\.so[^/\n]*)$", re.M)


def _mapped() -> dict[str, int]:
    """The shared objects this process has mapped: path -> inode."""
    try:
        with open("/proc/self/maps", "rb") as f:
            maps = f.read()
    except OSError:
        return {}
    return {path.decode("utf-8", "replace"): int(inode) for inode, path in _MAPS_LINE.findall(maps)
            if not path.endswith(b" (deleted)")}


def _facts(path: str, inode: int | None = None) -> _Facts | None:
    """What the shared object at ``path`` says (cached by path and inode), or None if it is none."""
    if inode is None:
        try:
            inode = os.stat(path).st_ino
        except OSError:
            return None
    key = (path, inode)
    if key not in _FACTS:
        _FACTS[key] = _read(path)
    return _FACTS[key]


def _read(path: str) -> _Facts | None:
    from .remembered import remembered

    try:
        facts = remembered("preload facts 1", path, lambda: _parse(path))
    except OSError:
        return None
    return None if facts is None else _Facts(*facts)


def _parse(path: str) -> tuple | None:
    """``_Facts`` as a plain tuple (what the cache keeps), or None if the file is no ELF shared object."""
    import mmap

    from .elf import dynamic, unique_symbols

    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            info = dynamic(data)
            if info is None:
                return None
            unique = {s: v for s, v in unique_symbols(data).items() if not _RUNTIME.match(s)}
    except ValueError:  # not mappable (empty) or malformed
        return None
    names = {os.path.basename(path)} | ({info.soname} if info.soname else set())
    return (frozenset(names), info.needed, info.search, unique)


def _names(path: str, inode: int) -> frozenset[str]:
    return (_facts(path, inode) or _EMPTY).names | {os.path.basename(path)}


def _unique(path: str, inode: int) -> dict[str, bytes | None]:
    return (_facts(path, inode) or _EMPTY).unique


_SAME: dict[tuple[str, str], bool] = {}


def _same_bytes(a: str, b: str) -> bool:
    """Whether two library files hold the same bytes (auditwheel's hashed names in two envs, or the host's)."""
    if (a, b) not in _SAME:
        try:
            sa, sb = os.stat(a), os.stat(b)
            same = (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino) \
                or (sa.st_size == sb.st_size and _digest(a) == _digest(b))
        except OSError:
            same = False
        _SAME[(a, b)] = same
    return _SAME[(a, b)]


def _digest(path: str) -> bytes:
    import hashlib

    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").digest() if hasattr(hashlib, "file_digest") \
            else hashlib.sha256(f.read()).digest()
