"""`polyvenv lock`: write each env's lock file (lockfiles.py resolves one), under one planner."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from ..config import Config


def lock(config: Config, names: Sequence[str] = (), offline: bool | None = None,
         wheelhouse: Path | None = None) -> None:
    """Resolve and write the lock file of ``names`` (default: every env), saying each path written."""
    from . import lockfiles
    from .spec import lock_path
    from .store import Store
    from .sync import plan, select, sources_for

    planner, specs = plan(config, select(config, names))
    try:
        uv = lockfiles.uv_for(planner)
        sources = sources_for(config, offline, wheelhouse)
        store = Store(config.envs_dir)
        for spec in specs:
            path = lock_path(config, spec.name)
            log = store.root / ".logs" / f"{spec.name}.lock.log"
            lockfiles.write_lock(spec, path, uv, sources, config.root, log)  # fails as one BuildError line
            print(f"polyvenv: {spec.name}: wrote {path}", file=sys.stderr)
    finally:
        planner.close()
