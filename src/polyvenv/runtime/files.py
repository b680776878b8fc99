"""The three file facts both halves need: a whole-or-nothing write, a file's identity, a venv's interpreter.

Imports only ``os`` and ``itertools`` (not even pathlib): the no-op fast path and the runtime use it.
"""

from __future__ import annotations

import itertools
import os

TYPE_CHECKING = False  # typing itself costs the no-op fast path more than the rest of it (5-10 ms)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Callable, Optional, Tuple, Union

    Identity = Tuple[int, int, int]  # (inode, size, mtime_ns): a file replaced or rewritten has another
    StrPath = Union[str, "os.PathLike[str]"]

_serial = itertools.count()


def replace_atomic(path: StrPath, make: Callable[[str], None], check: Optional[Callable[[], None]] = None) -> None:
    """Put what ``make(tmp)`` creates at ``path`` whole or not at all: ``tmp`` is beside ``path``, named
    for this process and call (two writers of one path never share it), and renamed over ``path``;
    ``check()`` runs right before the rename (it raises to refuse), and ``tmp`` is gone if anything fails."""
    directory, name = os.path.split(os.fspath(path))
    tmp = os.path.join(directory, f".{name}.{os.getpid()}-{next(_serial)}.tmp")
    if os.path.lexists(tmp):  # left by a killed process whose pid this one reuses
        os.unlink(tmp)
    try:
        make(tmp)
        if check is not None:
            check()
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def write_atomic(path: StrPath, data: Union[bytes, str], check: Optional[Callable[[], None]] = None,
                 durable: bool = False) -> None:
    """Write ``data`` to ``path`` whole or not at all (``replace_atomic``); ``durable``: on disk before
    the rename, for a file whose presence promises what came before it (a build's manifest)."""
    raw = data.encode() if isinstance(data, str) else data

    def make(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(raw)
            if durable:
                f.flush()
                os.fsync(f.fileno())

    replace_atomic(path, make, check)


def file_identity(path: StrPath) -> Optional[Identity]:
    """What identifies a file's content without reading it (inode, size, mtime), or None if absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def venv_bin(prefix: StrPath) -> Path:
    """A venv's scripts directory."""
    from pathlib import Path

    return Path(prefix) / ("Scripts" if os.name == "nt" else "bin")


def venv_python(prefix: StrPath) -> Path:
    """A venv's interpreter."""
    return venv_bin(prefix) / ("python.exe" if os.name == "nt" else "python")
