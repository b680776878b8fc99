"""Compiled, rewritten code of env modules, cached on disk outside the env.

The env's own files are never written to (its ``__pycache__`` belongs to
code compiled from the unrewritten source). An entry is keyed like a .pyc
by the source file's path, mtime and size, plus the env's name map and the
rewriter's version, so a warm import reads one file and unmarshals it.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
from types import CodeType

from .locations import user_cache_dir, write_cache_file

# Bump when rewrite.py changes what it makes of the same source (cached code would be stale).
REWRITE_VERSION = 16


class CodeCache:
    def __init__(self, directory: str | None = None) -> None:
        self.directory = os.path.join(directory or user_cache_dir(), "code", f"py{sys.hexversion:x}")

    def key(self, path: str, st: os.stat_result, names_digest: str) -> str:
        text = f"{REWRITE_VERSION}\0{path}\0{st.st_mtime_ns}\0{st.st_size}\0{names_digest}"
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    def get(self, key: str) -> CodeType | None:
        try:
            with open(os.path.join(self.directory, key[:2], key), "rb") as f:
                return marshal.loads(f.read())  # one read: marshal.load(f) reads in many small calls
        except (OSError, EOFError, ValueError, TypeError):
            return None

    def put(self, key: str, code: CodeType) -> None:
        write_cache_file(os.path.join(self.directory, key[:2], key), marshal.dumps(code))


CODE_CACHE = CodeCache()
