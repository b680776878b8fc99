"""The host as the sharing rule sees it: which distribution each top-level name is, on the host's ``sys.path``.

Read from the directories alone (listings and RECORD files), never by
importing or searching through finders: asking must not load anything.
The host's distributions are identified by their RECORD rows, as the
build identified the env's (runtime/records.py); a name the host already
imported from somewhere else than where its path finds it is ``OTHER``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Iterable, Mapping, TypeVar

from .names import STDLIB, top_level_names
from .records import Record, Records, digest, offered_groups, record_rows
from .sharing import HOST, OTHER, owners, shareable
from .sitedir import normalize


def shared_with_host(records: Records, found: Mapping[str, Path], site: Path, declared: Iterable[str],
                     host: HostView | None = None) -> set[str]:
    """The distributions of an env (``records`` of its ``site``, ``found`` its top-level names, ``declared``
    its ``shared`` names) that the host has identically and agrees with on their closure."""
    host = host or HostView()
    private = set(records.private)
    here = owners(records.distributions, found, site, declared, STDLIB)
    return shareable(records.distributions, here, host.owner,
                     lambda record: record.name not in private and host.same(record), host.has_only, host.has,
                     host.offers)


class HostView:
    """Answers the rule's questions about the host (``path``: its ``sys.path`` now)."""

    def __init__(self, path: Iterable[str] | None = None) -> None:
        entries = [os.path.abspath(e or os.curdir) for e in (sys.path if path is None else path)]
        self.entries = [Path(e) for e in dict.fromkeys(entries) if os.path.isdir(e)]
        self.found = _Found(self.entries)
        self._infos: dict[Path, dict[str, Path]] = {}
        self._same: dict[str, bool] = {}
        self._installed: dict[str, Record] = {}  # records the host has identically, by top-level name
        self._offers: dict[str, set[str]] = {}

    def infos(self, entry: Path) -> dict[str, Path]:
        """Normalized name -> dist-info directory, in one ``sys.path`` entry."""
        if entry not in self._infos:
            self._infos[entry] = listed(entry, _INFOS, lambda: {
                normalize(p.name[: -len(".dist-info")].partition("-")[0]): p
                for p in sorted(entry.glob("*.dist-info"))})
        return self._infos[entry]

    def same(self, record: Record) -> bool:
        """Whether the host imports ``record``'s very distribution under its real names."""
        key = f"{record.name} {record.version} {record.digest}"
        if key not in self._same:
            self._same[key] = self._is_same(record)
            if self._same[key]:
                self._installed.update((top, record) for top in record.tops)
        return self._same[key]

    def _is_same(self, record: Record) -> bool:
        if not record.tops:
            return False
        entries = {self.found.get(top) for top in record.tops}
        if len(entries) != 1 or None in entries:
            return False
        entry = entries.pop()
        assert entry is not None
        info = self.infos(entry).get(record.name)
        if info is None or not info.name[: -len(".dist-info")].endswith("-" + record.version):
            return False
        rows = record_rows(info)
        if rows is None or digest(rows) != record.digest:
            return False
        return all(_loaded_from(top, entry) for top in record.tops)

    def owner(self, name: str) -> str | None:
        """Who provides ``name`` in the host (call ``same`` on the env's records first)."""
        if name in STDLIB:
            return HOST
        record = self._installed.get(name)
        if record is not None:
            return record.name
        return OTHER if name in self.found or name in sys.modules else None

    def version(self, name: str) -> str | None:
        """The version of distribution ``name`` the host's path finds first, if any."""
        for entry in self.entries:
            info = self.infos(entry).get(name)
            if info is not None:
                return info.name[: -len(".dist-info")].partition("-")[2]
        return None

    def has(self, name: str) -> bool:
        """Whether the host has a distribution ``name`` (normalized) on its path."""
        return self.version(name) is not None

    def offers(self, group: str) -> set[str]:
        """The host's distributions on its path offering entry points in ``group`` (an egg-info counts by its
        directory's name: no env's record has it, so it keeps a reader of the group private)."""
        if group not in self._offers:
            self._offers[group] = {name for entry in self.entries for name, info in self.infos(entry).items()
                                   if group in offered_groups(info)} | {
                p.name for entry in self.entries for p in entry.glob("*.egg-info") if group in offered_groups(p)}
        return self._offers[group]

    def has_only(self, names: set[str]) -> bool:
        """Whether the host has no distribution outside ``names`` on its path."""
        return all(set(self.infos(entry)) <= names for entry in self.entries)


def _loaded_from(top: str, entry: Path) -> bool:
    """A top-level module the host imported already came from ``entry`` (or it is not imported)."""
    module = sys.modules.get(top)
    if module is None:
        return True
    spec = getattr(module, "__spec__", None)
    places = list(getattr(spec, "submodule_search_locations", None) or ()) + [getattr(spec, "origin", None) or ""]
    return any(str(p).startswith(str(entry) + os.sep) for p in places)


class _Found:
    """Top-level name -> the first host ``sys.path`` entry that has it, each entry listed once, on first
    need (the standard library's directories are listed only for a name no earlier entry has)."""

    def __init__(self, entries: list[Path]) -> None:
        self.entries = entries
        self._listed: list[dict[str, Path]] = []

    def get(self, name: str) -> Path | None:
        for i, entry in enumerate(self.entries):
            if i == len(self._listed):
                self._listed.append(listed(entry, _NAMES, lambda: top_level_names([entry])))
            if name in self._listed[i]:
                return entry
        return None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None


T = TypeVar("T")
# What the host's directories hold, kept for the process: every env's load asks (thirty envs listed the
# standard library thirty times), and a directory is listed again only when its mtime changed, which adding
# or removing an entry does (what CPython's FileFinder trusts for its own listing cache).
_NAMES: dict[Path, tuple[int, dict[str, Path]]] = {}
_INFOS: dict[Path, tuple[int, dict[str, Path]]] = {}


def listed(entry: Path, cache: dict[Path, tuple[int, T]], make: Callable[[], T]) -> T:
    """``make()``, the listing of the directory ``entry``, unless ``cache`` holds it from the same mtime."""
    try:
        mtime = os.stat(entry).st_mtime_ns
    except OSError:
        return make()
    held = cache.get(entry)
    if held is None or held[0] != mtime:
        held = cache[entry] = (mtime, make())
    return held[1]
