"""`remove` and `gc`: delete envs and builds, each under the lock its builder takes."""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from ..errors import EnvNotFound
from . import shims
from .store import Store, remove_tree


def remove(config: Config, name: str) -> str:
    """Delete every build, the link and the shims of one env; say what happened."""
    store = Store(config.envs_dir)
    if not store.builds(name) and not store.link(name).is_symlink():
        if name in config.envs:
            return f"{name}: not built, nothing to remove"
        raise EnvNotFound(f"no env named {name!r} is built or declared in {config.describe()}")
    with store.lock(name):
        store.unlink(name)
        for build in store.builds(name):
            remove_tree(build)
    removed = shims.remove_for(config, name)
    note = "; it is still declared, so the next `polyvenv sync` builds it again" if name in config.envs else ""
    return f"{name}: removed ({removed} shims){note}"


def gc(config: Config) -> list[Path]:
    """Delete builds no link points at, and envs no longer declared; return what went."""
    store = Store(config.envs_dir)
    removed: list[Path] = []
    for name in sorted(store.built_names()):
        declared = name in config.envs
        with store.lock(name):
            current = store.current(name) if declared else None
            for build in store.builds(name):
                if build != current:
                    remove_tree(build)
                    removed.append(build)
            if not declared and store.link(name).is_symlink():
                store.unlink(name)
                removed.append(store.link(name))
        if not declared:
            shims.remove_for(config, name)
    for log in (store.root / ".logs").glob("*-*.log"):
        if not log.with_suffix("").name in {b.name for b in store.builds(log.stem.rpartition("-")[0])}:
            log.unlink()
    return removed
