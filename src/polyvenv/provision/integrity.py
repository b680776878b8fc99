"""Is every installed file the one its wheel shipped? Each is checked against its RECORD row.

A RECORD row is ``path,sha256=<urlsafe base64, no padding>,size``, the path
relative to site-packages (``../../../bin/tool`` for scripts). Rows without a
hash (RECORD itself, ``.pyc`` files) are checked for existence only, and
files added after the install are in no RECORD. The installer writes RECORD
for what it wrote: uv's generated entry points and its rewritten ``#!python``
shebangs carry their new hash and size (checked on uv 0.13's output), while
files it links from its cache keep the wheel's own.

Two depths. ``content=False`` compares sizes: one ``stat`` per file, what an
existence check costs anyway, so `list` affords it and a truncated file
shows. ``content=True`` also hashes every file: `doctor`, `list --verify`,
`sync --repair`, and every build before its stamp.

uv hardlinks installed files from its cache, so a file damaged in place in
one env is damaged in the cache and in every env linked to it; ``links``
counts those hard links. For the same reason ten envs often hold one numpy:
a caller checking several envs passes one ``digests`` dict, and each file
(one inode) is hashed once per call, not once per env.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import os
import stat
from pathlib import Path
from typing import Dict, Iterator, NamedTuple, Tuple

from ..runtime.sitedir import normalize, site_packages

LIMIT = 20  # damaged files reported per env: enough to say what is wrong, cheap when everything is
SMALL = 1 << 20  # files up to this size are read whole: most are a few KB, and file_digest's buffer costs more

Digests = Dict[Tuple[int, int, int, int, str], str]  # (device, inode, size, mtime_ns, algorithm) -> digest


class Damage(NamedTuple):
    """One installed file that is not what its distribution's RECORD says."""

    path: str
    distribution: str  # normalized name, "" when no distribution owns the path
    version: str
    problem: str  # "missing", "3 bytes, RECORD says 65", "content differs from RECORD's sha256"
    links: int = 0  # hard links to the file: above 1, uv's cache (and other envs) hold the same bytes

    def __str__(self) -> str:
        return f"{self.path} ({self.problem})"


def damaged_files(env: Path, *, content: bool = False, limit: int = LIMIT,
                  digests: Digests | None = None) -> list[Damage]:
    """Installed files of the venv ``env`` that are missing, of another size, or (``content``)
    of another sha256 than their RECORD row says; at most ``limit``. ``digests``: the files
    hashed so far by this caller, shared between the envs it checks."""
    sp = site_packages(env)
    if sp is None:
        return [Damage(str(env / "lib"), "", "", "no site-packages")]
    found: list[Damage] = []
    for info in sorted(sp.glob("*.dist-info")):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        for path, problem, links in _check(info / "RECORD", sp, content, {} if digests is None else digests):
            found.append(Damage(path, normalize(name), version, problem, links))
            if len(found) >= limit:
                return found
    return found


def describe(damage: list[Damage], limit: int = LIMIT) -> str:
    """One line for a user: how many files, the first one and what is wrong with it."""
    first = damage[0]
    if len(damage) == 1:
        text = f"installed file {first.path} does not match its RECORD ({first.problem})"
    else:
        more = "+" if len(damage) >= limit else ""
        text = (f"{len(damage)}{more} installed files do not match their RECORDs "
                f"(first: {first.path}, {first.problem})")
    links = max(d.links for d in damage)
    if links > 1:
        text += f"; the file has {links} hard links: uv's cache and envs built from it may hold the same damaged bytes"
    return text


def _check(record: Path, sp: Path, content: bool, digests: Digests) -> Iterator[tuple[str, str, int]]:
    try:
        with open(record, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        yield str(record), "missing" if isinstance(e, FileNotFoundError) else f"unreadable: {e.strerror}", 0
        return
    for row in rows:
        if not row or not row[0]:
            continue
        path = os.path.normpath(os.path.join(sp, row[0]))
        hashed, size = (row[1], row[2]) if len(row) >= 3 else ("", "")
        try:
            st = os.stat(path)
        except OSError:
            yield path, "missing", 0
            continue
        if not stat.S_ISREG(st.st_mode):
            yield path, "not a file", 0
        elif size.isdigit() and st.st_size != int(size):
            yield path, f"{st.st_size} bytes, RECORD says {size}", st.st_nlink
        elif content and hashed:
            algorithm, _, digest = hashed.partition("=")
            if algorithm not in hashlib.algorithms_guaranteed:
                continue
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, algorithm)
            if key not in digests:
                digests[key] = _digest(path, algorithm, st.st_size)
            if digests[key] != digest:
                yield path, f"content differs from RECORD's {algorithm}", st.st_nlink


def _digest(path: str, algorithm: str, size: int) -> str:
    """The file's digest as RECORD writes it: urlsafe base64 without padding."""
    with open(path, "rb") as f:
        if size <= SMALL:
            h = hashlib.new(algorithm, f.read())
        elif hasattr(hashlib, "file_digest"):  # Python 3.11+: the loop runs in C
            h = hashlib.file_digest(f, algorithm)
        else:
            h = hashlib.new(algorithm)
            for chunk in iter(lambda: f.read(SMALL), b""):
                h.update(chunk)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
