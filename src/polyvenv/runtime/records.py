"""What the build found out about each distribution of an env: the facts sharing is decided on.

`sync` writes ``polyvenv-records.json`` into each build before its manifest
(provision/records.py); the runtime reads it here with the standard library
only. A distribution's record says which one it is (name, version, and a
digest of its installed files by their RECORD hashes: two installs with the
same digest are the same distribution), which top-level names it installs,
and which top-level names its code can reference (static imports, module
names the rewriter finds by context, module names in its compiled files).
``discovers``: its code enumerates distributions at run time (entry points,
``importlib.metadata.distributions()``, pkg_resources), so it can reach
every distribution of the env; ``given``: its code imports a name it is
given (numpy's ``add_newdoc(place, ...)`` imports its caller's module), which
can be any module of the env that calls it; ``metadata``: the distributions
whose metadata it asks by name (``importlib.metadata.version("pkg")``);
``groups``: the entry-point groups its code enumerates by a constant name
(``entry_points(group="g")``), which reach only the distributions that
``offers`` entry points in them. Records of format 2 before ``given``
counted such code as ``discovers``; those of format 3, enumerations by group.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, NamedTuple

RECORDS = "polyvenv-records.json"
# 2: code importing a name it is given counts as discovering (format 1 reads as unrecorded); 3: compiled files'
# names found unterminated too (Rust's), which units need (format 2 reads as unrecorded: sync again to share);
# 4: entry-point groups enumerated and offered (format 3 reads as is: its enumerations are all ``discovers``)
RECORDS_FORMAT = 4
_READ_FORMATS = (3, 4)
# files of a dist-info that the installer writes per install: not what makes two installs the same
_PER_INSTALL = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json", "uv_cache.json", "uv_build.json")


class Record(NamedTuple):
    """One installed distribution, as sharing sees it."""

    name: str  # normalized
    version: str
    digest: str
    tops: tuple[str, ...]
    references: tuple[str, ...] = ()  # top-level names its code can import (the standard library's too)
    discovers: bool = False
    metadata: tuple[str, ...] = ()  # distributions (normalized) whose metadata its code asks by name
    given: bool = False  # its code imports a name it is given
    groups: tuple[str, ...] = ()  # entry-point groups its code enumerates by name (only their offerers reached)
    offers: tuple[str, ...] = ()  # entry-point groups it offers (its entry_points.txt)


class Records(NamedTuple):
    """The records of one build's site-packages, and the env's ``private`` distributions."""

    distributions: tuple[Record, ...]
    private: tuple[str, ...] = ()

    def as_json(self, site_packages: str) -> dict[str, Any]:
        return {"format": RECORDS_FORMAT, "site_packages": site_packages, "private": list(self.private),
                "distributions": [r._asdict() for r in self.distributions]}


def read_records(site: Path) -> Records | None:
    """The records `sync` left for the site-packages directory ``site``, or None (a venv polyvenv did not
    build, or a build from before records)."""
    for build in (site.parent.parent.parent, site.parent.parent):  # lib/pythonX.Y/site-packages, Lib/site-packages
        try:
            data = json.loads((build / RECORDS).read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("format") not in _READ_FORMATS:
            return None
        if os.path.normpath(build / str(data.get("site_packages"))) != os.path.normpath(site):
            continue
        try:
            return Records(tuple(Record(**{**r, **{k: tuple(r.get(k, ())) for k in _TUPLES}})
                                 for r in data["distributions"]), tuple(data.get("private", ())))
        except (TypeError, KeyError):
            return None
    return None


_TUPLES = ("tops", "references", "metadata", "groups", "offers")


def offered_groups(info: Path) -> tuple[str, ...]:
    """The entry-point groups a dist-info's ``entry_points.txt`` offers entry points in (its section names)."""
    try:
        text = (info / "entry_points.txt").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    lines = (line.strip() for line in text.splitlines())
    return tuple(sorted({line[1:-1].strip() for line in lines if line.startswith("[") and line.endswith("]")}))


def record_rows(info: Path) -> list[tuple[str, str]] | None:
    """``(path, hash)`` of each file a dist-info's RECORD lists inside site-packages, without the
    per-install files; None if RECORD cannot be read."""
    import csv

    try:
        with open(info / "RECORD", newline="", encoding="utf-8", errors="replace") as f:
            lines = list(csv.reader(f))
    except OSError:
        return None
    rows = []
    own = info.name + "/"
    for line in lines:
        path, rest = (line[0], line[1]) if len(line) >= 2 else (line[0] if line else "", "")
        if not path or path.startswith(("../", "/")) or "__pycache__/" in path:
            continue  # scripts (their shebang names the env), absolute paths, bytecode
        if path.startswith(own) and path[len(own):] in _PER_INSTALL:
            continue
        rows.append((path, rest))
    return sorted(rows)


def digest(rows: Iterable[tuple[str, str]]) -> str:
    """The identity of an install: its files and their RECORD hashes."""
    h = hashlib.sha256()
    for path, hashed in rows:
        h.update(f"{path}\0{hashed}\n".encode())
    return base64.urlsafe_b64encode(h.digest()[:18]).decode()


def tops_of(paths: Iterable[str]) -> tuple[str, ...]:
    """The top-level names a distribution installs, from its RECORD paths (as runtime/names.py finds them)."""
    found = set()
    for path in paths:
        head, slash, _ = path.partition("/")
        if slash:
            if head.isidentifier() and head != "__pycache__":
                found.add(head)
        elif head.endswith((".py", ".pyc")):
            found.add(head.rsplit(".", 1)[0])
        elif head.endswith((".so", ".pyd")):
            found.add(head.split(".", 1)[0])
    return tuple(sorted(n for n in found if n.isidentifier() and n not in ("_distutils_hack", "__editable__")
                        or n.endswith("__mypyc")))
