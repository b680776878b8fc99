"""What a compiled file says, remembered across processes by the file's identity.

Reading the tables of an ELF file (its dynamic section, its unique symbols, the GOT slots of a
function) maps it and parses a few of its pages: about 0.1 ms a file, and a warm load of numpy and
pandas asks it of over a hundred files (relocated copies, their libraries), in every process, as
much as the rest of the extensions' loading. The answers depend only on the file's bytes, so they
are kept in polyvenv's cache under the file's path, with its identity (inode, size, mtime), as the
relocated copies' stamps are (relocate.py): a file replaced or rewritten is read again.
"""

from __future__ import annotations

import hashlib
import marshal
import os
from typing import Callable, TypeVar

from ..locations import user_cache_dir, write_cache_file

T = TypeVar("T")


def remembered(question: str, path: str, read: Callable[[], T]) -> T:
    """``read()``, the answer to ``question`` (its name, with the version of the code that answers it) about
    the file ``path``, from the cache when the file is the one it was asked of; ``read()`` raising is not
    remembered. The answer must be marshallable (tuples, lists, dicts, frozensets, str, bytes, int, None)."""
    try:
        st = os.stat(path)
    except OSError:
        return read()
    identity = (st.st_ino, st.st_size, st.st_mtime_ns)
    key = hashlib.sha256(f"{question}\0{path}".encode()).hexdigest()[:32]
    cached = os.path.join(user_cache_dir(), "elf-facts", key[:2], key)
    try:
        with open(cached, "rb", buffering=0) as f:
            held, answer = marshal.loads(f.read())
        if held == identity:
            return answer  # type: ignore[no-any-return]
    except (OSError, EOFError, ValueError, TypeError):
        pass
    answer = read()
    try:
        write_cache_file(cached, marshal.dumps((identity, answer)))
    except ValueError:  # not marshallable: a caller's mistake, which costs only the reading
        pass
    return answer
