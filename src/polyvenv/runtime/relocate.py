"""Byte-patched copies of an env's compiled extension modules, so their C code means the env's alias.

C code imports by the real dotted name (``PyImport_ImportModule("markupsafe")``)
and names its own module in its definition. A copy of the ``.so`` with the
top-level name replaced by the env's alias (same length, so no offset moves)
in its string constants imports, and is named, like the env's Python code.
The rule that is safe for C strings (research/renaming.md): the name, not
preceded by an identifier character or by ``. / - : @`` (paths, URLs,
``PyInit_`` symbols), and followed by ``.`` or a NUL terminator.

Copies live outside the env, in a tree that mirrors its site-packages (so
``$ORIGIN``-relative RPATHs find the env's bundled ``*.libs`` through links),
and are made again whenever the original file changes. The env's own files
are never modified.
"""

from __future__ import annotations

import hashlib
import os
import re

from .locations import user_cache_dir, write_cache_file

RELOCATE_VERSION = 1


def patch(data: bytes, name: str, alias: str) -> bytes:
    """``data`` with the module name ``name`` replaced by ``alias`` where C strings use it as one."""
    assert len(name) == len(alias)
    pattern = re.compile(rb"(?<![A-Za-z0-9_./\-:@])" + re.escape(name.encode()) + rb"(?=[.\x00])")
    return pattern.sub(alias.encode(), data)


def relocated(path: str, root: str, name: str, alias: str) -> str:
    """A patched copy of the extension file ``path`` (inside the env directory ``root``)."""
    st = os.stat(path)
    identity = f"{RELOCATE_VERSION} {st.st_ino} {st.st_size} {st.st_mtime_ns}".encode()
    tree = os.path.join(user_cache_dir(), "relocated",
                        hashlib.sha256(f"{root}\0{name}\0{alias}".encode()).hexdigest()[:24])
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
        data = patch(f.read(), name, alias)
    if not write_cache_file(target, data) or not write_cache_file(stamp, identity):
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
