"""Where polyvenv keeps per-user state (imports only ``os``: the no-op fast path uses it)."""

from __future__ import annotations

import os


def user_cache_dir() -> str:
    """polyvenv's per-user cache (``$POLYVENV_CACHE_DIR``, else the XDG cache directory)."""
    explicit = os.environ.get("POLYVENV_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "polyvenv")


def write_cache_file(path: str | os.PathLike[str], data: bytes) -> bool:
    """Write a cache file whole or not at all (temp file + rename); False if it could not be written.

    Callers are caches: a file that cannot be written costs work next time, nothing worse.
    """
    from .files import write_atomic

    path = os.fspath(path)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomic(path, data)
        return True
    except OSError:
        return False
