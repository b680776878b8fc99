"""`remove` and `gc`: delete envs and builds, each under the lock its builder takes."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ..config import Config, counted, did_you_mean, name_problem
from ..errors import EnvNotFound, UsageError
from . import shims
from .retire import IN_USE, retire
from .spec import HASH_LENGTH
from .store import Store

_BUILD_LOG = re.compile(rf"^.+-[0-9a-f]{{{HASH_LENGTH}}}\.log$")


def remove(config: Config, name: str) -> str:
    """Delete every build, the link and the shims of one env; say what happened."""
    problem = name_problem(name)
    if problem:
        raise UsageError(f"remove: {problem}")
    store = Store(config.envs_dir)
    if not store.builds(name) and not store.owned_link(name):
        if name in config.envs:
            return f"{name}: not built, nothing to remove"
        hint = did_you_mean(name, [*config.envs, *store.built_names()])
        raise EnvNotFound(f"no env named {name!r} is built or declared in {config.describe()}{hint}")
    with store.lock(name):
        store.unlink(name)
        kept = [build for build in store.builds(name) if not retire(build, store.link(name))]
    removed = shims.remove_for(config, name)
    note = "; it is still declared, so the next `polyvenv sync` builds it again" if name in config.envs else ""
    note += "".join(f"; kept {build}: {IN_USE}" for build in kept)
    return f"{name}: removed ({counted(removed, 'shim')}){note}"


def gc(config: Config, kept: list[Path] | None = None) -> list[Path]:
    """Delete builds no link points at, and envs no longer declared; return what went.
    Builds a running process still loads from stay (added to ``kept``)."""
    store = Store(config.envs_dir)
    removed: list[Path] = []
    for name in sorted(store.built_names()):
        declared = name in config.envs
        with store.lock(name):
            current = store.current(name) if declared else None
            for build in store.builds(name):
                if build == current:
                    continue
                if retire(build, store.link(name)):
                    removed.append(build)
                elif kept is not None:
                    kept.append(build)
            for leftover in store.root.glob(f".{name}.*.link"):
                leftover.unlink()  # left by a process killed mid-switch (we hold the lock a switch needs)
            if not declared and store.owned_link(name):
                store.unlink(name)
                removed.append(store.link(name))
        if not declared:
            shims.remove_for(config, name)
    for leftover in (store.root / ".builds").glob(".*.trash-*"):
        shutil.rmtree(leftover, ignore_errors=True)  # a delete cut short by a kill
    kept = {build.name for name in store.built_names() for build in store.builds(name)}
    for log in (store.root / ".logs").glob("*.log"):
        if _BUILD_LOG.match(log.name) and log.stem not in kept:
            log.unlink()
    return removed
