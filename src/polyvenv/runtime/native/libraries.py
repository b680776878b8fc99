"""The shared libraries a package ships in its own tree, each env's its own beside its relocated copies.

An extension finds a library of its package (scipy 1.15's ``special/libsf_error_state.so``,
pyarrow's ``libarrow.so.*``) through a DT_RUNPATH/DT_RPATH entry relative to ``$ORIGIN``,
its own directory. The relocated copy lives in another directory, and the dynamic
loader has a second rule besides: a library already loaded under the same name (its
soname, or the name it was asked for) is used again, whoever loaded it, without any
search. So each such library gets a byte copy of its own per env, at the place the
copy's ``$ORIGIN`` entry points to, under a name of the same length that belongs to
that env: written into the library's DT_SONAME and into the DT_NEEDED of each copy that
needs it. Two extensions of one env then share one library (and its state), as they do in
a plain venv; the host's library of that name and another env's stay apart.

auditwheel's ``<dist>.libs`` directories are linked as a whole instead (relocate.py): the
names of their libraries carry a hash of their bytes, so two of one name are one library.
"""

from __future__ import annotations

import hashlib
import os
from typing import Callable

from .elf import dynamic, rename_needed

ORIGIN = ("$ORIGIN", "${ORIGIN}")


def search_dirs(search: tuple[str, ...], origin: str) -> list[str]:
    """The directories of DT_RUNPATH/DT_RPATH entries relative to ``$ORIGIN``, for an object in ``origin``."""
    found = []
    for entry in search:
        for token in ORIGIN:
            if entry.startswith(token):
                found.append(os.path.normpath(origin + entry[len(token):]))
                break
    return found


def find_library(name: str, search: tuple[str, ...], origin: str) -> str | None:
    """Where an object in directory ``origin`` finds the library ``name`` through its ``$ORIGIN`` entries."""
    for directory in search_dirs(search, origin):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    return None


def library_alias(name: str, key: str) -> str | None:
    """``name`` with the end of its stem replaced by a tag from ``key``: same length, the env's own.

    ``libsf_error_state.so`` -> ``libsf_err3f9c2a1e.so``; None for a name with no stem to change.
    """
    end = name.find(".so")
    end = len(name) if end < 0 else end
    start = 3 if name.startswith("lib") and end > 3 else 0
    size = min(end - start, 8)
    if size <= 0:
        return None
    digest = hashlib.sha256(key.encode()).hexdigest()
    for at in range(0, len(digest) - size, size):
        alias = name[:end - size] + digest[at:at + size] + name[end:]
        if alias != name:
            return alias
    return None


def own_libraries(data: bytearray, path: str, root: str, tree: str,
                  copy: Callable[[str, str, str, str], None]) -> None:
    """Point ``data`` (the relocated copy of ``path``, in place) at the env's own copies of the libraries its
    package ships in its tree (inside ``root``, outside ``<dist>.libs``), made by ``copy(library, target,
    needed, alias)`` under ``tree``. A name that cannot be changed is left as it is (the check before loading,
    preload.py, refuses a copy that would then find no library or another one)."""
    info = dynamic(data)
    if info is None:
        return
    renames = {}
    for name in info.needed:
        found = find_library(name, info.search, os.path.dirname(path))
        if found is None:
            continue
        inside = os.path.relpath(os.path.realpath(found), os.path.realpath(root))
        top = inside.split(os.sep)[0]
        if top == os.pardir or top.endswith(".libs"):
            continue  # outside the env's tree, or auditwheel's (linked whole)
        alias = library_alias(name, os.path.basename(tree) + "/" + inside)
        if alias is None:
            continue
        copy(found, os.path.join(tree, os.path.relpath(os.path.dirname(found), root), alias), name, alias)
        renames[name] = alias
    rename_needed(data, renames)


def own_soname(data: bytearray, needed: str, alias: str) -> None:
    """Give the copy of a library (needed as ``needed``, copied as ``alias``) its env's own DT_SONAME."""
    info = dynamic(data)
    if info is None or info.soname is None:
        return  # the loader knows it by the name it was asked for: the alias
    new = alias if info.soname == needed else library_alias(info.soname, alias)
    if new is not None:
        rename_needed(data, {info.soname: new})
