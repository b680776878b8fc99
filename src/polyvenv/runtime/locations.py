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
