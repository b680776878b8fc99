"""Build one venv at one path so that it is either complete and stamped, or never used.

The order is the guarantee: clear whatever an interrupted run left, create,
install, check every installed file against its RECORD (size and sha256),
and only then write the stamp. Nothing before the stamp is trusted, so a
kill at any moment leaves a directory the next run deletes and builds again.

A fresh install that does not match its RECORDs got damaged bytes from
uv's cache (uv hardlinks them, so damage done in place in any env is in the
cache too): those distributions are dropped from the cache and installed
again, and the stamp names them (``cache_refreshed``) so `sync` can say so.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import IO

from ..errors import BuildError
from ..runtime.files import file_identity, venv_python
from ..runtime.manifest import BuiltWith, InstalledBy, Manifest, write_manifest
from ..runtime.sitedir import site_packages
from . import builtwheels, integrity, pylock
from .health import distributions
from .installers import Sources, Wants
from .spec import BuildSpec
from .store import remove_tree

BUILDING_MARK = ".polyvenv-building"


def build(spec: BuildSpec, target: Path, sources: Sources, cwd: Path, log_path: Path,
          spec_hash: str | None = None) -> Manifest:
    """Build ``spec`` at ``target`` (cleared first); return the manifest written last (its stamp).

    ``spec_hash``: the hash ``target`` is named after (default: the spec's now). The installer
    reads the requirements and lock files again as it installs, so a file saved meanwhile would
    give a build whose contents are not what its name says: such a build is never stamped.
    """
    started = time.monotonic()
    spec_hash = spec_hash or spec.hash
    remove_tree(target)  # whatever an interrupted run left, and its half-deleted leftovers
    target.mkdir(parents=True)
    (target / BUILDING_MARK).touch()  # lets `create` recognise a partial of its own
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(log_path, "w") as log, tempfile.TemporaryDirectory(prefix="polyvenv-build-") as scratch:
            log.write(f"# polyvenv build of env {spec.name!r} at {target}\n")
            wants = _installable(spec.wants(), sources, Path(scratch), log)
            spec.installer.create(target, spec.interpreter, spec.with_pip, log)
            spec.installer.install(target, wants, sources, cwd, log)
            damage, refreshed = verified(spec, wants, target, sources, cwd, log)
    except BuildError as e:
        raise BuildError(f"build of env {spec.name!r} failed: {e}", env=spec.name, log=str(log_path)) from None
    except OSError as e:
        raise BuildError(f"build of env {spec.name!r} failed: {e}", env=spec.name, log=str(log_path)) from None
    if damage:
        again = " even after a fresh unpack of its wheel (the wheel itself disagrees with its RECORD)" * bool(refreshed)
        raise BuildError(f"build of env {spec.name!r} is not whole{again}: {integrity.describe(damage)}",
                         env=spec.name, log=str(log_path))
    if spec.hash != spec_hash:
        raise BuildError(f"build of env {spec.name!r} is not marked complete: its requirements or lock file "
                         "changed while it was being built; run the same command again", env=spec.name,
                         log=str(log_path))
    try:
        from .records import write_records

        write_records(target, spec.env.private)  # what sharing is decided on: before the stamp, like every file
        (target / BUILDING_MARK).unlink()
        built = manifest(spec, target, spec_hash)._replace(cache_refreshed=tuple(refreshed),
                                                           build_seconds=round(time.monotonic() - started, 3))
        built = write_manifest(target, built)
    except OSError as e:  # a full disk, most often: the build stays unstamped, so it is never used
        raise BuildError(f"build of env {spec.name!r} could not be marked complete: {e.strerror or e} "
                         f"({target}); free some space and run again", env=spec.name, log=str(log_path)) from None
    return built


def _installable(wants: Wants, sources: Sources, scratch: Path, log: IO[str]) -> Wants:
    """``wants`` with its lock as hashed requirements (a pylock.toml converted) accepting the
    wheels the wheelhouse built from the sdists it pins."""
    if not wants.lock_file:
        return wants
    lock, added = builtwheels.installable(pylock.as_requirements(wants.lock_file, scratch), sources.wheelhouse, scratch)
    if added:
        log.write(f"# the lock accepts these wheels {sources.wheelhouse} built from its sdists: {', '.join(added)}\n")
    return wants._replace(lock_file=lock)


def verified(spec: BuildSpec, wants: Wants, target: Path, sources: Sources, cwd: Path,
             log: IO[str]) -> tuple[list[integrity.Damage], list[str]]:
    """Check a fresh install against its RECORDs; what is damaged, drop from the installer's cache
    and install again. Return what is still damaged and the distributions refreshed ("alpha 1.0")."""
    damage = integrity.damaged_files(target, content=True)
    owners = sorted({(d.distribution, d.version) for d in damage if d.distribution})
    if not owners or not spec.installer.forget([name for name, _ in owners], log):
        return damage, []
    log.write(f"# damaged after install, refreshed from the source: {integrity.describe(damage)}\n")
    spec.installer.install(target, wants, sources, cwd, log, reinstall=[name for name, _ in owners])
    return integrity.damaged_files(target, content=True), [f"{name} {version}" for name, version in owners]


def manifest(spec: BuildSpec, target: Path, spec_hash: str) -> Manifest:
    """What the runtime needs to load this env without reading TOML or importing the build half."""
    env = spec.env
    sp = site_packages(target)
    return Manifest(
        name=env.name,
        spec_hash=spec_hash,
        path=str(target),
        python=str(venv_python(target)),
        site_packages=str(sp) if sp else None,
        interpreter=BuiltWith(spec.interpreter.path, spec.interpreter.version, spec.interpreter.implementation,
                              spec.interpreter.abi or None),
        interpreter_identity=tuple(file_identity(spec.interpreter.path) or ()),
        installer=InstalledBy(spec.installer.name, spec.installer_version),
        requirements=tuple(env.requirements),
        requirements_file=str(env.requirements_file) if env.requirements_file else None,
        lock_file=str(spec.lock_file) if spec.lock_file else None,
        source=str(env.source) if env.source else None,
        isolation=env.isolation,
        shared=tuple(env.shared),
        private=tuple(env.private),
        provides=tuple(env.provides),
        distributions=distributions(target),
        link_mode=spec.installer.link_mode or None,
    )
