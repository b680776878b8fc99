"""Is a built env whole? Its interpreter still there, its distributions those it was built with,
every installed file what its RECORD says.

A killed installer can leave a distribution's RECORD in place with hundreds
of its files missing, and re-running it reports success (research note);
a file damaged in place is damaged in uv's cache too (hardlinks). So health
is judged from the RECORDs themselves, never from the installer: by size
cheaply, by sha256 with ``content`` (integrity.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..runtime import sitedir
from ..runtime.manifest import Manifest
from ..runtime.sitedir import site_packages
from . import integrity


def distributions(env: Path) -> dict[str, str]:
    """Installed distributions of a built env and their versions."""
    sp = site_packages(env)
    return sitedir.distributions(sp) if sp else {}


def missing_files(env: Path, limit: int = 20) -> list[str]:
    """Installed files that are missing or of another size than their RECORD says (at most ``limit``)."""
    return [d.path for d in integrity.damaged_files(env, limit=limit)]


def interpreter_problem(built: Manifest) -> str | None:
    """Why the interpreter an env was built with cannot serve it any more, or None.

    An interpreter upgraded in place shows up elsewhere: its new version
    changes the env's spec hash, so the env is stale and `sync` rebuilds it.
    """
    python = built.interpreter
    if python is not None and not os.path.exists(python.path):
        return f"its interpreter {python.path} (Python {python.version}) is gone"
    return None


def distribution_problem(env: Path, built: Manifest) -> str | None:
    """How the installed distributions differ from those the build installed, or None.

    A dist-info removed takes its RECORD with it, so no file check could see it.
    """
    was, now = built.distributions, distributions(env)
    if was is None or was == now:
        return None
    changes = [f"{name} {was[name]} is gone" if name not in now else f"{name} {was[name]} is now {now[name]}"
               for name in was if now.get(name) != was[name]]
    changes += [f"{name} {now[name]} was added" for name in now if name not in was]
    return "installed distributions changed since the build: " + ", ".join(changes)


def problems(env: Path, built: Manifest, *, content: bool = False,
             digests: integrity.Digests | None = None) -> list[str]:
    """Everything wrong with a complete build, most fundamental first.

    Files are checked by size, or with ``content`` by sha256 too (reads every
    file; ``digests`` spares files another env of this caller shares).
    """
    found = [p for p in (interpreter_problem(built), distribution_problem(env, built)) if p]
    damage = integrity.damaged_files(env, content=content, digests=digests)
    if damage:
        found.append(integrity.describe(damage))
    return found
