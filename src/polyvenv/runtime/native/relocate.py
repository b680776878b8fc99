"""Byte-patched copies of an env's compiled extension modules, so their C code means the env's alias.

C code imports by the real dotted name (``PyImport_ImportModule("markupsafe")``)
and names its own module in its definition. A copy of the ``.so`` with the
top-level name replaced by the env's alias (same length, so no offset moves)
in its string constants imports, and is named, like the env's Python code.
Where the name is stored and how it is replaced: binpatch.py.

Copies live outside the env, in a tree per env that mirrors its site-packages:
``$ORIGIN``-relative RPATHs find the env's bundled ``*.libs`` through links, and
the libraries a package ships in its own tree as byte copies of the env's own
(libraries.py); the keys of C++ binding registries are the env's own too
(registries.py). Copies are made again whenever the original file changes. The
env's own files are never modified.
"""

from __future__ import annotations

import hashlib
import os
from typing import Callable

from ..files import file_identity
from ..locations import user_cache_dir, write_cache_file

RELOCATE_VERSION = 22


def relocated(path: str, root: str, names: dict[str, str],
              is_module: Callable[[str], bool] = lambda dotted: False) -> str:
    """A copy of the extension file ``path`` (inside the env directory ``root``) whose module names
    (the keys of ``names``) are their aliases."""
    tree = copy_tree(root, names)
    target = os.path.join(tree, os.path.relpath(path, root))
    _copy(path, target, _Env(root, tree, names, is_module), set())
    return target


def copy_tree(root: str, names: dict[str, str]) -> str:
    """The directory of the env's relocated copies: one per env directory and name map, whose files are one
    set of loaded copies with state of their own (threadstate.py, registries.py)."""
    return os.path.join(user_cache_dir(), "relocated",
                        hashlib.sha256(repr([root, sorted(names.items())]).encode()).hexdigest()[:24])


class _Env:
    def __init__(self, root: str, tree: str, names: dict[str, str], is_module: Callable[[str], bool]) -> None:
        self.root, self.tree, self.names, self.is_module = root, tree, names, is_module


def _copy(path: str, target: str, env: _Env, making: set[str], needed: str = "") -> None:
    """Make ``target``, the env's copy of the extension (or, ``needed`` by that name, the library) ``path``,
    unless it is up to date."""
    found = file_identity(path)
    if found is None:
        raise FileNotFoundError(path)
    inode, size, mtime_ns = found
    identity = f"{RELOCATE_VERSION} {inode} {size} {mtime_ns}".encode()
    stamp = target + ".source"
    if target in making:
        return
    try:
        with open(stamp, "rb") as f:
            if f.read() == identity:
                return
    except OSError:
        pass
    from .binpatch import patch  # only to make a copy: a warm load never imports the patching code
    from .elf import uses_python
    from .libraries import own_libraries, own_soname
    from .modulenames import importable_names
    from .registries import private_registries

    making.add(target)
    _link_bundled_libraries(env.root, env.tree)
    with open(path, "rb") as f:
        data = f.read()
    blobs: dict[str, bytes] = {}
    if not needed or uses_python(data):  # a library Python code calls into names modules as extensions do
        patched = patch(data, env.names, target + ".strings", env.is_module,
                        importable_names(env.root, path, set(env.names)))
        data, blobs = patched.data, patched.blobs
    out = bytearray(private_registries(data, os.path.basename(env.tree)))
    if needed:
        own_soname(out, needed, os.path.basename(target))
    own_libraries(out, path, env.root, env.tree,
                  lambda library, copy, name, alias: _copy(library, copy, env, making, name))
    files = [*blobs.items(), (target, bytes(out)), (stamp, identity)]  # the stamp last
    if not all(write_cache_file(file, data) for file, data in files):
        raise OSError(f"cannot write the relocated copy of {path} to {target}")


def _link_bundled_libraries(root: str, tree: str) -> None:
    """Make ``<tree>/<x>.libs`` (auditwheel's bundled shared libraries) point at the env's own."""
    os.makedirs(tree, exist_ok=True)
    for entry in os.listdir(root):
        if entry.endswith(".libs") and not os.path.lexists(os.path.join(tree, entry)):
            try:
                os.symlink(os.path.join(root, entry), os.path.join(tree, entry))
            except FileExistsError:
                pass
