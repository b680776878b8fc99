"""Wheels a wheelhouse built from sdists, and the lock pins they stand for.

A lock pins each distribution by the hashes of the files its index
publishes. For a distribution published only as an sdist, `polyvenv
wheelhouse` builds a wheel (pip wheel, which first checks the sdist against
the lock's hashes). That wheel's hash is in no lock, and cannot be: a build
is not byte-reproducible, so an offline install from the lock would stop on
"Hash mismatch". The wheelhouse therefore records, in ``polyvenv-built.json``
beside its wheels, which wheel it built for which pin (name, version and the
lock's hashes); an install from a lock and that wheelhouse adds the built
wheel's hash to exactly that pin, in a copy of the lock, and every other
hash check stays as the lock says.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import NamedTuple

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from ..errors import ForeignPath
from ..runtime.files import write_atomic

RECORD = "polyvenv-built.json"
_FORMAT = "wheels this wheelhouse built from sdists"  # the proof the record is polyvenv's
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


class Pin(NamedTuple):
    name: str  # canonical
    version: str
    hashes: frozenset[str]
    line: int  # the line of the lock its entry starts on


def pins(text: str) -> list[Pin]:
    """Each ``name==version`` entry of a hashed requirements lock, with its sha256 hashes."""
    found: list[Pin] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.strip() or line[0].isspace() or line.startswith(("#", "-")):
            continue
        try:
            req = Requirement(line.rstrip(" \\"))
        except InvalidRequirement:
            continue
        exact = [s.version for s in req.specifier if s.operator == "=="]
        hashes: set[str] = set()
        for follow in lines[i + 1:]:
            if follow.strip() and not follow[0].isspace():
                break
            hashes.update(_HASH.findall(follow))
        if exact:
            found.append(Pin(canonicalize_name(req.name), exact[0], frozenset(hashes), i))
    return found


def record(wheelhouse: Path, lock: Path, fresh: Path) -> None:
    """Move the wheels ``pip wheel`` wrote into ``fresh`` (for the pins of ``lock``) into
    ``wheelhouse``, recording those whose hash the lock does not name: the ones it built."""
    target = wheelhouse / RECORD
    if os.path.lexists(target) and (target.is_symlink() or _load(target) is None):
        raise ForeignPath(f"{target} exists and was not written by `polyvenv wheelhouse`: refusing to overwrite it; "
                          "move it away, or fill another directory")
    by_pin = {(p.name, p.version): p for p in pins(lock.read_text())}
    built = {entry["wheel"]: entry for entry in _read(wheelhouse)}
    for wheel in sorted(fresh.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        digest = _sha256(wheel)
        pin = by_pin.get((canonicalize_name(name), str(version)))
        os.replace(wheel, wheelhouse / wheel.name)
        if pin is not None and pin.hashes and digest not in pin.hashes:
            built[wheel.name] = {"wheel": wheel.name, "name": pin.name, "version": pin.version,
                                 "sha256": digest, "for": sorted(pin.hashes)}
        else:
            built.pop(wheel.name, None)  # downloaded as the lock names it: nothing to add
    record = {"polyvenv": _FORMAT, "format": 1, "built": sorted(built.values(), key=lambda e: e["wheel"])}
    write_atomic(target, json.dumps(record, indent=1) + "\n")


def installable(lock: Path, wheelhouse: Path | None, scratch: Path) -> tuple[Path, list[str]]:
    """The lock to install from ``wheelhouse``: ``lock`` itself, or a copy in ``scratch`` whose
    pins the wheelhouse built a wheel for also name that wheel's hash; and those wheels."""
    built = _read(wheelhouse) if wheelhouse is not None else []
    if not built:
        return lock, []
    text = lock.read_text()
    lines = text.splitlines()
    added: list[str] = []
    for pin in reversed(pins(text)):
        for entry in built:
            if ((entry["name"], entry["version"]) == (pin.name, pin.version) and pin.hashes
                    and frozenset(entry["for"]) == pin.hashes and (wheelhouse / entry["wheel"]).is_file()):
                lines.insert(pin.line + 1, f"    --hash=sha256:{entry['sha256']} \\")
                added.append(entry["wheel"])
    if not added:
        return lock, []
    copy = scratch / lock.name
    copy.write_text("\n".join(lines) + "\n")
    return copy, sorted(added)


def _read(wheelhouse: Path) -> list[dict]:
    data = _load(wheelhouse / RECORD)
    return data["built"] if data is not None and data.get("format") == 1 else []


def _load(path: Path) -> dict | None:
    """The record at ``path`` if it is polyvenv's (its ``polyvenv`` key), else None."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("polyvenv") == _FORMAT else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
