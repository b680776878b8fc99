"""The rule: which distributions of an env may be loaded once with another env or the host (DESIGN.md rule 3).

A distribution D of env E is shareable with X (the host, or another env)
when X has the same D (same name, version and installed files: its
record's digest) and every name D's code can reference resolves in X to
what it resolves to in E: the same shareable distribution, recursively,
or nothing in both; and each distribution whose metadata its code asks
by name is, likewise, a shareable one or absent in both. A distribution
whose code enumerates distributions (``discovers``) can reach all of E: it
is shareable only if all of E is, and X has no distribution E lacks; so is, with the host, one
whose code imports a name it is given (``given``: the host's module would import the host's
module of that name). One that enumerates the entry points of named groups
(``groups``) reaches the distributions that offer entry points in them: those
must be shareable too, and X must have no other. Cycles need no special case: the
candidates shrink to the greatest set that agrees (a fixpoint), so two
distributions importing each other stay together or private together.

Names resolve to an *owner*: a distribution's normalized name, ``HOST``
(the host's module: the standard library, an env's ``shared`` names),
``OTHER`` (something that is no distribution both sides know: the env's
source, a name two distributions install, a module the host loaded from
elsewhere), or None (nothing). ``OTHER`` agrees with nothing.

``share_key`` gives each distribution a digest over its whole closure as
one env resolves it, so two envs agree on a distribution exactly when
their keys are equal: a dict lookup (runtime/units.py). Between envs, a name
a distribution is given resolves in the env that gives it, so ``given`` does
not widen its closure (its key says whether it has that code).
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Mapping, Optional

from .records import Record

HOST = "<host>"
OTHER = "<other>"

Owner = Callable[[str], Optional[str]]


def shareable(records: Iterable[Record], here: Owner, there: Owner, same_there: Callable[[Record], bool],
              there_has_only: Callable[[set[str]], bool] = lambda names: False,
              there_has: Callable[[str], bool] = lambda name: True,
              there_offers: Callable[[str], Optional[set[str]]] = lambda group: None) -> set[str]:
    """Names of the distributions of ``records`` (env E, names resolved by ``here``) shareable with X.

    ``same_there(record)``: X has that very distribution; ``there(name)``: a name's owner in X;
    ``there_has_only(names)``: X has no distribution outside ``names`` (for those that discover);
    ``there_has(distribution)``: X has a distribution of that name (for the metadata asked by name);
    ``there_offers(group)``: the distributions of X offering entry points in that group (None: unknown).
    """
    by_name = {r.name: r for r in records}
    candidates = {name for name, r in by_name.items() if same_there(r)}
    offering = offerers(by_name.values())

    def narrowed(record: Record) -> bool:  # each group it reads has the same offerers there, all shareable
        return all(offering.get(g, set()) <= candidates and there_offers(g) == offering.get(g, set())
                   for g in record.groups)

    def agrees(name: str) -> bool:
        ours = here(name)
        if ours == HOST:
            return there(name) == HOST
        return ours == there(name) and (ours is None or ours in candidates)

    changed = True
    while changed:
        changed = False
        for name in sorted(candidates):
            record = by_name[name]
            whole = not (record.discovers or record.given) or (
                candidates == set(by_name) and there_has_only(set(by_name)))
            # its own names too: one another distribution also installs (a namespace package split in two)
            # or an earlier directory of the env shadows is not the same module on both sides
            if not whole or not narrowed(record) or not all(agrees(n) for n in (*record.tops, *record.references)) \
                    or not all(m in candidates if m in by_name else not there_has(m) for m in record.metadata):
                candidates.discard(name)
                changed = True
    return candidates


def share_keys(records: Iterable[Record], here: Owner) -> dict[str, str | None]:
    """Each distribution's share key: a digest of every distribution its code can reach (digests, the
    names each references and what they resolve to), or None where its closure reaches an ``OTHER`` (or
    one of its own names is not its own in the env: a namespace package two distributions install)."""
    by_name = {r.name: r for r in records}
    offering = offerers(by_name.values())
    # each member once: the distributions it reaches directly, whether it reaches an OTHER, what it adds
    # to a key; a closure is then a walk over those edges (a load computes every key of its env)
    edges: dict[str, list[str]] = {}
    other: set[str] = set()
    blobs: dict[str, bytes] = {}
    for name, member in by_name.items():
        resolved = [(n, here(n)) for n in member.references]
        edges[name] = [*(by_name if member.discovers else ()), *(m for m in member.metadata if m in by_name),
                       *(o for g in member.groups for o in sorted(offering.get(g, ()))),
                       *(o for _, o in resolved if o is not None and o not in (HOST, OTHER))]
        # a name it installs that is not its own in the env (shadowed, or two install it) is an OTHER too
        if any(o == OTHER for _, o in resolved) or any(here(top) != name for top in member.tops):
            other.add(name)
        blobs[name] = repr((member.name, member.digest, member.discovers, member.given, member.groups, resolved,
                            [(m, m in by_name) for m in member.metadata])).encode()
    keys: dict[str, str | None] = {}
    for name in by_name:
        closure, todo = set(), [name]
        while todo:
            current = todo.pop()
            if current not in closure:
                closure.add(current)
                todo += edges[current]
        if closure & other:
            keys[name] = None
            continue
        h = hashlib.sha256()
        for current in sorted(closure):
            h.update(blobs[current])
        keys[name] = h.hexdigest()[:24]
    return keys


def offerers(records: Iterable[Record]) -> dict[str, set[str]]:
    """Entry-point group -> the distributions of ``records`` offering entry points in it."""
    found: dict[str, set[str]] = {}
    for record in records:
        for group in record.offers:
            found.setdefault(group, set()).add(record.name)
    return found


def owners(records: Iterable[Record], found: Mapping[str, object], site: object, shared: Iterable[str],
           stdlib: Iterable[str]) -> Owner:
    """How env E resolves top-level names: ``found`` maps each of its names to the root it is in, ``site``
    is the root its ``records`` describe, ``shared`` its names that are the host's."""
    installs: dict[str, set[str]] = {}
    for record in records:
        for top in record.tops:
            installs.setdefault(top, set()).add(record.name)
    host = set(shared) | set(stdlib)

    def owner(name: str) -> str | None:
        if name in host:
            return HOST
        if name not in found:
            return None
        dists = installs.get(name, set())
        return next(iter(dists)) if len(dists) == 1 and found[name] == site else OTHER

    return owner
