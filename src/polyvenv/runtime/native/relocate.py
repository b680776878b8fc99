"""Byte-patched copies of an env's compiled extension modules, so their C code means the env's alias.

C code imports by the real dotted name (``PyImport_ImportModule("markupsafe")``)
and names its own module in its definition. A copy of the ``.so`` with the
top-level name replaced by the env's alias (same length, so no offset moves)
in its string constants imports, and is named, like the env's Python code.
Where the name is stored and how it is replaced: binpatch.py.

Copies live outside the env, in a tree that mirrors its site-packages (so
``$ORIGIN``-relative RPATHs find the env's bundled ``*.libs`` through links),
and are made again whenever the original file changes. The env's own files
are never modified.
"""

from __future__ import annotations

import hashlib
import os
from typing import Callable

from ..files import file_identity
from ..locations import user_cache_dir, write_cache_file
from .binpatch import patch
from .modulenames import importable_names

RELOCATE_VERSION = 16


def relocated(path: str, root: str, names: dict[str, str],
              is_module: Callable[[str], bool] = lambda dotted: False) -> str:
    """A copy of the extension file ``path`` (inside the env directory ``root``) whose module names
    (the keys of ``names``) are their aliases."""
    found = file_identity(path)
    if found is None:
        raise FileNotFoundError(path)
    inode, size, mtime_ns = found
    identity = f"{RELOCATE_VERSION} {inode} {size} {mtime_ns}".encode()
    tree = os.path.join(user_cache_dir(), "relocated",
                        hashlib.sha256(repr([root, sorted(names.items())]).encode()).hexdigest()[:24])
    target = os.path.join(tree, os.path.relpath(path, root))
    stamp = target + ".source"
    try:
        with open(stamp, "rb") as f:
            if f.read() == identity:
                return target
    except OSError:
        pass
    _link_bundled_libraries(root, tree)
    with open(path, "rb") as f:
        patched = patch(f.read(), names, target + ".strings", is_module, importable_names(root, path, set(names)))
    files = [*patched.blobs.items(), (target, patched.data), (stamp, identity)]  # the stamp last
    if not all(write_cache_file(file, data) for file, data in files):
        raise OSError(f"cannot write the relocated copy of {path} to {target}")
    return target


def _link_bundled_libraries(root: str, tree: str) -> None:
    """Make ``<tree>/<x>.libs`` (auditwheel's bundled shared libraries) point at the env's own."""
    os.makedirs(tree, exist_ok=True)
    for entry in os.listdir(root):
        if entry.endswith(".libs") and not os.path.lexists(os.path.join(tree, entry)):
            try:
                os.symlink(os.path.join(root, entry), os.path.join(tree, entry))
            except FileExistsError:
                pass
