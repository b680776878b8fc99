"""Deleting a build only once no running process loads from it (the lease: runtime/lease.py).

A polyvenv host holds the lease; a process started from the build's own files
does not: a console script (its shebang names the build's ``bin/python``,
which is what a shim runs) or a command with the build as its working
directory. On Linux those are found in ``/proc`` (each process's command
line, executable and working directory) and keep the build too.
"""

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
        if unused and not running_from(build):
            remove_tree(build)
            return True
        return False


def running_from(build: Path) -> list[int]:
    """Pids of processes whose command line, executable or working directory lies in ``build``
    (Linux; elsewhere, and for processes this user may not read, none are found)."""
    prefix = os.fsencode(os.path.realpath(build)) + b"/"
    found = []
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return []
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                words = f.read().split(b"\0")
            places = [os.fsencode(os.readlink(f"/proc/{pid}/{what}")) + b"/" for what in ("exe", "cwd")]
        except OSError:
            continue
        if any(word.startswith(prefix) for word in words + places):
            found.append(pid)
    return found


def _switched_at(build: Path, link: Path) -> float | None:
    """When ``build`` stopped being current, at the latest (for the grace period where there is no flock)."""
    for path in (link, build / MANIFEST):
        try:
            return os.lstat(path).st_mtime
        except OSError:
            continue
    return None
