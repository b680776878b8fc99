"""Distributions loaded once for every env that agrees on them: the units of sharing between envs (issue 13).

Two envs agree on a distribution when its share key (runtime/sharing.py) is
the same in both: the same files, and every name its code can reach resolves
to the same distributions, recursively. A key's distributions are one
strongly connected component of the env's import graph, so one key is one
*unit*: those distributions, loaded once per process under aliases of their
own, and the same module objects in every env that uses it (an array one
plugin's numpy made is an array to the other's).

A unit has a name map of its own (runtime/namemap.py), the owner of its
aliases: its own top-level names get its aliases; a name its code references
that another distribution of the closure installs maps to that distribution's
unit (acquired first, so units are made dependencies first); the host's
names stay the host's, and any other name is missing. Every sharer resolves
those names the same way (that is what an equal key means), so one rewrite
and one byte patch serve them all: the cold cost is paid once. Its files come
from the build of the env that made it; a lease holds that build while the
unit lives, so its files stay valid after that env is unloaded or re-synced.

Units are counted: each name map that uses one (an env's load or
generation, or a unit that depends on it) acquires it once and releases it
when it is released; the last release takes its modules out of
``sys.modules`` as a reload's switch takes an old generation's (their
aliases retired: code still running on them, such as a callback of the
generation a reload just replaced, imports them from the generation until
they are collected), and lets its lease go. ``private = [...]`` distributions, those the host shares, and
those whose closure reaches the env's own source or an ambiguous name have
no key: they never get a unit.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from .names import STDLIB, served_by_env
from .records import Records
from .sharing import HOST, OTHER, Owner, offerers, owners, share_keys

if TYPE_CHECKING:
    from .namemap import NameMap


class Unit:
    """One key's distributions, loaded once: ``names`` is the name map their code runs with (the owner
    of their aliases), ``build`` the build their files are read from (held while the unit lives; None:
    a directory no build stamps), ``users`` counts the name maps that use it."""

    def __init__(self, key: str, distributions: tuple[str, ...], names: NameMap, build: Path | None) -> None:
        self.key, self.distributions, self.names, self.build = key, distributions, names, build
        self.users = 0

    def __repr__(self) -> str:
        return f"<polyvenv unit {', '.join(self.distributions)} ({self.users} users)>"


UNITS: dict[str, Unit] = {}  # by share key: every unit loaded in this process
ADOPTED: dict[str, dict[str, str]] = {}  # share key -> the aliases a child's parent gave it (runtime/children.py)
_LOCK = threading.RLock()


def env_keys(records: Records, found: Mapping[str, Path], site: Path, shared: Iterable[str]) -> dict[str, str | None]:
    """Each distribution's share key in one env (``found`` its top-level names and their roots, ``site``
    the root its ``records`` describe, ``shared`` the names it uses the host's modules of), None for
    those that stay private: ``private`` ones, the host's, and those whose closure reaches one of
    those, the env's source, or a standard-library name the env's own code serves."""
    private = set(records.private)
    not_shared = {top for r in records.distributions if r.name in private for top in r.tops}
    not_shared |= set(served_by_env(found))
    resolve = owners(records.distributions, found, site, shared, STDLIB)

    def here(name: str) -> str | None:
        return OTHER if name in not_shared else resolve(name)

    # code that discovers distributions can reach the env's source too (an entry point into it); code that
    # reads named groups, only where a directory outside site-packages holds distributions of its own
    outside = next((name for name, root in found.items() if root != site), None)
    described = outside is not None and any(r.groups for r in records.distributions) and _holds_metadata(
        {root for root in found.values() if root != site})
    distributions = [r._replace(references=(*r.references, outside))
                     if outside and (r.discovers or r.groups and described) else r for r in records.distributions]
    keys = share_keys(distributions, here)
    return {name: None if name in private else key for name, key in keys.items()}


def share(maker: NameMap, records: Records, site: Path) -> dict[str, Unit]:
    """The units the load of an env (``maker``, its name map being made, its ``records`` of ``site``)
    uses, made where none is loaded yet, by the top-level names they give it; each is acquired once
    for the load (release each with ``release``)."""
    keys = env_keys(records, maker.found, site, maker.shared)
    if not any(keys.values()):
        return {}
    make = _maker(maker, records, site, keys, owners(records.distributions, maker.found, site, maker.shared, STDLIB))
    acquired: dict[str, Unit] = {}
    tops: dict[str, Unit] = {}
    with _LOCK:
        try:
            for record in records.distributions:
                key = keys.get(record.name)
                if key is None:
                    continue
                if key not in acquired:
                    acquired[key] = _acquire(key, make)
                tops.update((top, acquired[key]) for top in record.tops)
        except BaseException:
            for unit in acquired.values():
                release(unit)
            raise
    return tops


def release(unit: Unit) -> None:
    """One user less; the last one frees it: its modules leave ``sys.modules`` (retired), the units it
    depends on and the build it holds are let go."""
    with _LOCK:
        unit.users -= 1
        if unit.users > 0:
            return
        if UNITS.get(unit.key) is unit:
            del UNITS[unit.key]
    from .env import forget_in_typing
    from .generation import leave

    aliases = unit.names.aliases
    leave(unit.names.env, aliases)  # code of a generation a reload replaced may still import them
    forget_in_typing(aliases)
    unit.names.release()
    if unit.build is not None:
        _let_go(unit.build)


def _acquire(key: str, make: Callable[[str], Unit]) -> Unit:
    unit = UNITS.get(key)
    if unit is None:
        unit = UNITS[key] = make(key)
    unit.users += 1
    return unit


def _maker(maker: NameMap, records: Records, site: Path, keys: Mapping[str, str | None],
           owner: Owner) -> Callable[[str], Unit]:
    """How to make the unit of a key from this env's records (first loader: its build, its env's name in
    messages)."""

    def make(key: str) -> Unit:
        from .namemap import NameMap

        members = [r for r in records.distributions if keys.get(r.name) == key]
        own = sorted({top for r in members for top in r.tops})
        host: set[str] = set()
        reached: set[str] = set()  # the other distributions its code can import
        offering = offerers(records.distributions)
        for record in members:
            if record.discovers:  # reaches every distribution of the env (all have keys, or it had none)
                reached |= {r.name for r in records.distributions if keys.get(r.name) != key}
            reached |= {o for g in record.groups for o in offering.get(g, ()) if keys.get(o) != key}
            for name in record.references:
                who = owner(name)
                if who == HOST:
                    if name not in STDLIB:
                        host.add(name)
                elif who is not None and who != OTHER and keys.get(who) != key:
                    reached.add(who)
        depends: dict[str, Unit] = {}
        borrowed: dict[str, NameMap] = {}
        try:
            for record in records.distributions:
                if record.name not in reached:
                    continue
                dependency = keys[record.name]
                assert dependency is not None  # in a closure without OTHER: a key of its own
                if dependency not in depends:
                    depends[dependency] = _acquire(dependency, make)
                borrowed.update((top, depends[dependency].names) for top in record.tops)
            names = NameMap.of_unit(maker, site, {n: maker.found[n] for n in (*own, *borrowed)}, own, borrowed, host,
                                    list(depends.values()), {n for r in members for n in r.references},
                                    key, ADOPTED.get(key))
        except BaseException:
            for unit in depends.values():
                release(unit)
            raise
        return Unit(key, tuple(r.name for r in members), names, _hold_build(site))

    return make


def _holds_metadata(roots: Iterable[Path]) -> bool:
    """Some of ``roots`` holds a distribution's metadata (``*.dist-info``, ``*.egg-info``)."""
    for root in roots:
        try:
            if any(e.endswith((".dist-info", ".egg-info")) for e in os.listdir(root)):
                return True
        except OSError:
            continue
    return False


def _hold_build(site: Path) -> Path | None:
    """Hold the build ``site`` is in for one more unit: one lease (runtime/lease.py) per build, however
    many units it lends; None for a directory no build stamps."""
    from .lease import hold
    from .manifest import MANIFEST

    for build in (site.parent.parent.parent, site.parent.parent):  # lib/pythonX.Y/site-packages, Lib/site-packages
        if (build / MANIFEST).is_file():
            with _LOCK:
                held = _LEASES.get(build)
                if held is None:
                    held = _LEASES[build] = [hold(build), 0]
                held[1] += 1
            return build
    return None


def _let_go(build: Path) -> None:
    with _LOCK:
        held = _LEASES[build]
        held[1] -= 1
        if held[1] == 0:
            del _LEASES[build]
            held[0].release()


_LEASES: dict[Path, list[Any]] = {}  # build -> [its lease, how many units hold it]
