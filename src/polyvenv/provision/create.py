"""`polyvenv create DIR -r REQS`: one venv at a path, no config, the same guarantees (seed 004).

Layout, as `sync` has it for an envs dir::

    DIR                     symlink -> .DIR.polyvenv/<spec hash>: the venv users see
    .DIR.polyvenv/          polyvenv's own (its marker inside): builds, the lock, the last log

A rebuild is made beside the venv in use, stamped last, and switched to by
replacing the link atomically, so a kill at any moment leaves the old venv
working (or, on a first build, no DIR at all). Only what polyvenv made is
ever deleted or replaced: DIR must be absent, an empty directory, a link
into its own ``.DIR.polyvenv``, or a venv an earlier polyvenv built in place
(its stamp inside). Anything else, another tool's venv included, is refused
before anything is written.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..config import Config, EnvSpec
from ..errors import ForeignPath, UsageError
from ..runtime.locations import user_cache_dir
from ..runtime.manifest import MANIFEST, read_manifest
from . import health
from .builder import BUILDING_MARK, build
from .progress import Lines, Progress
from .retire import retire
from .spec import Planner
from .store import exclusive_lock
from .sync import sources_for

MARKER = ".polyvenv-create"  # inside .DIR.polyvenv: this directory is polyvenv's


def create(
    target: Path,
    requirements: Path,
    *,
    python: str | None = None,
    offline: bool = False,
    wheelhouse: Path | None = None,
    with_pip: bool = False,
    installer: str | None = None,
    progress: Progress | None = None,
) -> str:
    """Create or update the venv at ``target``; return "up to date", "created" or "rebuilt".

    The build is shown as it runs (``progress``; default: plain lines on stderr)."""
    target = Path(os.path.abspath(target))
    target = target.parent.resolve() / target.name  # DIR itself may be our link: never follow it
    requirements = requirements.resolve()
    if not requirements.is_file():
        raise UsageError(f"requirements file {requirements} does not exist")
    _check_target(target)
    config = Config(root=Path.cwd(), path=None, envs_dir=Path(user_cache_dir()), locks_dir=target.parent, envs={})
    planner = Planner(config, installer)
    try:
        spec = planner.spec(EnvSpec(name=target.name, requirements_file=requirements, python=python),
                            with_pip=with_pip, lock=False)
    finally:
        planner.close()
    spec_hash = spec.hash  # read the requirements file once: what is built is what is named
    if _complete(target, spec_hash):
        return "up to date"
    sources = sources_for(config, offline, wheelhouse)
    home = _claim_home(target)
    with exclusive_lock(home / "lock"):
        if _complete(target, spec_hash):
            return "up to date"  # a concurrent run built it while we waited
        _check_target(target)  # again, under the lock
        existed = os.path.lexists(target)
        new = home / spec_hash
        progress = progress or Lines()
        progress.started(target.name, f"building {target}", home / "build.log")
        try:
            build(spec, new, sources, Path.cwd(), home / "build.log", spec_hash)
        except BaseException:
            progress.finished(target.name, "not built")
            raise
        else:
            progress.finished(target.name, "built")
        finally:
            progress.close()
        _switch(target, new, home)
        for old in home.iterdir():  # builds no link points at any more, partial ones included (home is ours)
            if old.is_dir() and not old.is_symlink() and old != new:
                retire(old, target)  # kept while a polyvenv host still loads from it; the next run retries
        return "rebuilt" if existed else "created"


def _home(target: Path) -> Path:
    return target.with_name(f".{target.name}.polyvenv")


def _check_target(target: Path) -> None:
    """Refuse, before writing anything, a target polyvenv cannot prove it made."""
    if not target.name or target == Path.home().resolve() or target == Path.cwd() or target in Path.cwd().parents:
        raise UsageError(f"create: {target} is the root, the home or the current directory (or one of its "
                         "parents): give a path for the venv itself, such as ./venv")
    if len(_home(target).name) > 255:
        raise UsageError(f"create: the name {target.name[:40]!r}... is too long for a file name")
    home = _home(target)
    if os.path.lexists(home) and not (home / MARKER).is_file():
        raise ForeignPath(f"{home} exists and was not made by polyvenv: refusing to use it; move it away")
    if _ours(target):
        return
    what = ("a virtualenv polyvenv did not make" if (target / "pyvenv.cfg").exists() and not target.is_symlink()
            else "not a venv polyvenv made")
    raise ForeignPath(f"{target} exists and is {what}: refusing to replace or delete it; "
                      "remove it yourself or choose another path")


def _ours(target: Path) -> bool:
    """``target`` is absent, an empty directory, or a venv polyvenv made (a link to its build, or in place)."""
    if not os.path.lexists(target):
        return True
    if target.is_symlink():
        return os.path.dirname(os.readlink(target)) == _home(target).name
    if not target.is_dir():
        return False
    return not any(target.iterdir()) or (target / MANIFEST).is_file() or (target / BUILDING_MARK).is_file()


def _claim_home(target: Path) -> Path:
    home = _home(target)
    home.mkdir(parents=True, exist_ok=True)
    marker = home / MARKER
    if not marker.is_file():
        marker.write_text(f"polyvenv's builds of the venv {target}; polyvenv deletes what is in here.\n")
    return home


def _switch(target: Path, build_dir: Path, home: Path) -> None:
    """Point ``target`` at ``build_dir``: one atomic rename when it is a link or absent.

    A venv an earlier polyvenv built in place (a real directory) is first moved
    into ``home``; a kill between the two renames leaves no ``target`` until the
    next run, never a half venv (once per venv: afterwards it is a link).
    """
    tmp = home / f".link.{os.getpid()}"
    if os.path.lexists(tmp):
        tmp.unlink()
    tmp.symlink_to(os.path.relpath(build_dir, target.parent), target_is_directory=True)
    try:
        _check_target(target)  # right before replacing it
        if target.is_dir() and not target.is_symlink():
            os.replace(target, home / f".old-{os.getpid()}")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink()
        raise


def _complete(target: Path, spec_hash: str) -> bool:
    built = read_manifest(target)
    return bool(built and built.spec_hash == spec_hash and not health.problems(target, built))
