"""Is a built env whole? Its interpreter still there and unchanged, every installed file present.

A killed installer can leave a distribution's RECORD in place with hundreds
of its files missing, and re-running it reports success (research note);
so health is judged from the RECORDs themselves, never from the installer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..runtime import sitedir
from ..runtime.sitedir import site_packages


def distributions(env: Path) -> dict[str, str]:
    """Installed distributions of a built env and their versions."""
    sp = site_packages(env)
    return sitedir.distributions(sp) if sp else {}


def missing_files(env: Path, limit: int = 20) -> list[str]:
    """Files named in installed RECORDs that are not on disk (at most ``limit``)."""
    import csv

    sp = site_packages(env)
    if sp is None:
        return [str(env / "lib")]
    missing = []
    for record in sp.glob("*.dist-info/RECORD"):
        try:
            with open(record, newline="") as f:
                rows = list(csv.reader(f))
        except OSError:
            missing.append(str(record))
            continue
        for row in rows:
            if row and not os.path.lexists(os.path.join(sp, row[0])):
                missing.append(os.path.normpath(os.path.join(sp, row[0])))
                if len(missing) >= limit:
                    return missing
    return missing


def interpreter_problem(stamp: dict[str, Any]) -> str | None:
    """Why the interpreter an env was built with cannot serve it any more, or None.

    An interpreter upgraded in place shows up elsewhere: its new version
    changes the env's spec hash, so the env is stale and `sync` rebuilds it.
    """
    python = stamp["interpreter"]
    if not os.path.exists(python["path"]):
        return f"its interpreter {python['path']} (Python {python['version']}) is gone"
    return None


def problems(env: Path, stamp: dict[str, Any]) -> list[str]:
    """Everything wrong with a complete build, most fundamental first."""
    found = []
    interpreter = interpreter_problem(stamp)
    if interpreter:
        found.append(interpreter)
    missing = missing_files(env)
    if missing:
        more = "+" if len(missing) >= 20 else ""
        found.append(f"{len(missing)}{more} installed files are missing (first: {missing[0]})")
    return found
