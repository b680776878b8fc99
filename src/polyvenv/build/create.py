"""`polyvenv create DIR -r REQS`: one venv at a path, no config, the same guarantees (seed 004).

The venv is built in place (its scripts name their own path), under a lock
file beside it, stamped last. A directory without a valid stamp that a
polyvenv run left (or any venv) is cleared and rebuilt; anything else is
refused rather than deleted.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Config, EnvSpec
from ..errors import UsageError
from . import health
from .builder import BUILDING_MARK, build
from ..runtime.locations import user_cache_dir
from .spec import Planner
from .store import exclusive_lock, read_stamp
from .sync import sources_for


def create(
    target: Path,
    requirements: Path,
    *,
    python: str | None = None,
    offline: bool = False,
    wheelhouse: Path | None = None,
    with_pip: bool = False,
    installer: str | None = None,
) -> str:
    """Create or update the venv at ``target``; return "up to date", "created" or "rebuilt"."""
    target = target.resolve()
    requirements = requirements.resolve()
    if not requirements.is_file():
        raise UsageError(f"requirements file {requirements} does not exist")
    config = Config(root=Path.cwd(), path=None, envs_dir=_cache_dir(), locks_dir=target.parent, envs={})
    planner = Planner(config, installer)
    try:
        spec = planner.spec(EnvSpec(name=target.name, requirements_file=requirements, python=python),
                            with_pip=with_pip, lock=False)
    finally:
        planner.close()
    if _complete(target, spec.hash):
        return "up to date"
    sources = sources_for(config, offline, wheelhouse)
    with exclusive_lock(target.parent / f".{target.name}.polyvenv.lock"):
        if _complete(target, spec.hash):
            return "up to date"  # a concurrent run built it while we waited
        existed = target.exists()
        if existed and not _ours_to_clear(target):
            raise UsageError(
                f"{target} exists and is not a virtualenv: refusing to delete it; choose another path"
            )
        build(spec, target, sources, Path.cwd(), target.parent / f".{target.name}.polyvenv.log")
        return "rebuilt" if existed else "created"


def _complete(target: Path, spec_hash: str) -> bool:
    stamp = read_stamp(target)
    return bool(stamp and stamp["spec_hash"] == spec_hash and not health.problems(target, stamp))


def _ours_to_clear(target: Path) -> bool:
    if not target.is_dir():
        return False
    markers = ("pyvenv.cfg", BUILDING_MARK, "polyvenv.json")
    return not any(target.iterdir()) or any((target / m).exists() for m in markers)


def _cache_dir() -> Path:
    return Path(user_cache_dir())
