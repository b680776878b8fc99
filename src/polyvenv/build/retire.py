"""Deleting a build only once no running process loads from it (the lease: runtime/lease.py)."""

from __future__ import annotations

import os
from pathlib import Path

from ..runtime.lease import retiring
from ..runtime.manifest import MANIFEST
from .store import remove_tree

IN_USE = "in use by a running process; `polyvenv gc` deletes it once that process unloads the env or exits"


def retire(build: Path, link: Path) -> bool:
    """Delete ``build`` (a build of the env whose link is ``link``) unless a running process holds it;
    True if it is gone. The caller holds the env's lock, so no switch makes it current meanwhile."""
    with retiring(build, _switched_at(build, link)) as unused:
        if unused:
            remove_tree(build)
        return unused


def _switched_at(build: Path, link: Path) -> float | None:
    """When ``build`` stopped being current, at the latest (for the grace period where there is no flock)."""
    for path in (link, build / MANIFEST):
        try:
            return os.lstat(path).st_mtime
        except OSError:
            continue
    return None
