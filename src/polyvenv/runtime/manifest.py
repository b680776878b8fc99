"""The manifest beside each built env: what was built, where, from what. It is also the build's stamp.

The builder writes it last (``write_manifest``), so a manifest that reads back
whole (``read_manifest``) means a complete env. The runtime reads it without
TOML or the build half: JSON, and a NamedTuple (no dataclasses, whose import
a host would pay for).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, NamedTuple

MANIFEST = "polyvenv.json"
MANIFEST_FORMAT = 1


class BuiltWith(NamedTuple):
    """The interpreter a build was made with."""

    path: str
    version: str
    implementation: str = "cpython"
    abi: str | None = None  # "cpython-312", "cpython-313t" (free-threaded): what in-process loading needs equal


class InstalledBy(NamedTuple):
    """The installer a build was made with."""

    name: str
    version: str


class Manifest(NamedTuple):
    """One complete build of an env (``polyvenv.json``). Fields that old or hand-made manifests may lack
    have defaults; ``spec_hash`` identifies the inputs the build was made from."""

    name: str
    spec_hash: str
    path: str | None = None  # the build directory
    python: str | None = None  # the build's own interpreter
    site_packages: str | None = None
    interpreter: BuiltWith | None = None
    interpreter_identity: tuple[int, ...] = ()
    installer: InstalledBy | None = None
    requirements: tuple[str, ...] = ()
    requirements_file: str | None = None
    lock_file: str | None = None
    source: str | None = None
    isolation: str = "namespace"
    shared: tuple[str, ...] = ()
    private: tuple[str, ...] = ()  # distributions kept private (polyvenv-records.json says which the runtime uses)
    provides: tuple[str, ...] = ()
    distributions: dict[str, str] | None = None  # name -> version, as installed
    link_mode: str | None = None
    built_at: float | None = None
    build_seconds: float | None = None
    cache_refreshed: tuple[str, ...] = ()  # distributions found damaged in the installer's cache, refreshed
    verdict: str | None = None  # isolation = "auto": "namespace" or "process", as the probe of this build found
    verdict_reasons: tuple[str, ...] = ()  # why "process" (each: what failed, for which module)
    probe_seconds: float | None = None

    def as_json(self) -> dict[str, Any]:
        """The manifest as ``polyvenv.json`` holds it."""
        data: dict[str, Any] = {"format": MANIFEST_FORMAT}
        for field, value in zip(self._fields, self):
            if field in _OMITTED_WHEN_EMPTY and not value:
                continue
            if isinstance(value, (BuiltWith, InstalledBy)):
                value = value._asdict()
            elif isinstance(value, tuple):
                value = list(value)
            data[field] = value
        return data

    @classmethod
    def from_json(cls, data: Any) -> Manifest | None:
        """The manifest ``data`` describes, or None if it is not one (another format, torn, hand-broken)."""
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT or not data.get("spec_hash"):
            return None
        try:
            fields: dict[str, Any] = {k: v for k, v in data.items() if k in cls._fields and v is not None}
            if "interpreter" in fields:
                fields["interpreter"] = BuiltWith(**fields["interpreter"])
            if "installer" in fields:
                fields["installer"] = InstalledBy(**fields["installer"])
            for field in _TUPLES:
                if field in fields:
                    fields[field] = tuple(fields[field])
            if not isinstance(fields.get("distributions", {}), dict) or not isinstance(fields["spec_hash"], str):
                return None
            return cls(**fields)
        except TypeError:
            return None


_TUPLES = ("interpreter_identity", "requirements", "shared", "private", "provides", "cache_refreshed",
           "verdict_reasons")
_OMITTED_WHEN_EMPTY = ("private", "link_mode", "cache_refreshed", "build_seconds", "built_at", "verdict",
                       "verdict_reasons", "probe_seconds")


def read_manifest(env_dir: Path) -> Manifest | None:
    """The manifest of a complete build, else None (missing, torn, or from another format)."""
    try:
        data = json.loads((env_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return Manifest.from_json(data)


def write_manifest(build: Path, manifest: Manifest) -> Manifest:
    """Mark a build complete: the last write of every build (on disk before its name appears)."""
    manifest = manifest._replace(built_at=time.time())
    _write(build, manifest)
    return manifest


def record_verdict(build: Path, manifest: Manifest, verdict: str, reasons: tuple[str, ...],
                   seconds: float) -> Manifest:
    """The complete build's manifest with the verdict of its probe (``isolation = "auto"``), written
    whole in its place: the build stays complete whatever happens, with or without a verdict."""
    manifest = manifest._replace(verdict=verdict, verdict_reasons=tuple(reasons), probe_seconds=round(seconds, 3))
    _write(build, manifest)
    return manifest


def _write(build: Path, manifest: Manifest) -> None:
    from .files import write_atomic

    write_atomic(build / MANIFEST, json.dumps(manifest.as_json(), indent=2, sort_keys=True) + "\n", durable=True)
