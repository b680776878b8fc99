"""Build one venv at one path so that it is either complete and stamped, or never used.

The order is the guarantee: clear whatever an interrupted run left, create,
install, check every installed file is on disk, and only then write the
stamp. Nothing before the stamp is trusted, so a kill at any moment leaves
a directory the next run deletes and builds again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..errors import BuildError
from ..runtime.sitedir import site_packages
from .health import distributions, missing_files
from .installers import Sources, env_python
from .probes import file_identity
from .spec import BuildSpec
from .store import remove_tree, write_stamp

BUILDING_MARK = ".polyvenv-building"


def build(spec: BuildSpec, target: Path, sources: Sources, cwd: Path, log_path: Path) -> dict[str, Any]:
    """Build ``spec`` at ``target`` (cleared first); return the stamp written last."""
    started = time.monotonic()
    remove_tree(target)  # whatever an interrupted run left, and its half-deleted leftovers
    target.mkdir(parents=True)
    (target / BUILDING_MARK).touch()  # lets `create` recognise a partial of its own
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(log_path, "w") as log:
            log.write(f"# polyvenv build of env {spec.name!r} at {target}\n")
            spec.installer.create(target, spec.interpreter, spec.with_pip, log)
            spec.installer.install(target, spec.wants(), sources, cwd, log)
    except BuildError as e:
        raise BuildError(f"build of env {spec.name!r} failed: {e}", env=spec.name, log=str(log_path)) from None
    except OSError as e:
        raise BuildError(f"build of env {spec.name!r} failed: {e}", env=spec.name, log=str(log_path)) from None
    missing = missing_files(target)
    if missing:
        raise BuildError(
            f"build of env {spec.name!r} is incomplete: {len(missing)} installed files missing "
            f"(first: {missing[0]})", env=spec.name, log=str(log_path),
        )
    try:
        (target / BUILDING_MARK).unlink()
        stamp = manifest(spec, target)
        stamp["build_seconds"] = round(time.monotonic() - started, 3)
        write_stamp(target, stamp)
    except OSError as e:  # a full disk, most often: the build stays unstamped, so it is never used
        raise BuildError(f"build of env {spec.name!r} could not be marked complete: {e.strerror or e} "
                         f"({target}); free some space and run again", env=spec.name, log=str(log_path)) from None
    return stamp


def manifest(spec: BuildSpec, target: Path) -> dict[str, Any]:
    """What the runtime needs to load this env without reading TOML or importing the build half."""
    env = spec.env
    sp = site_packages(target)
    return {
        "name": env.name,
        "spec_hash": spec.hash,
        "path": str(target),
        "python": str(env_python(target)),
        "site_packages": str(sp) if sp else None,
        "interpreter": {
            "path": spec.interpreter.path,
            "version": spec.interpreter.version,
            "implementation": spec.interpreter.implementation,
        },
        "interpreter_identity": file_identity(spec.interpreter.path),
        "installer": {"name": spec.installer.name, "version": spec.installer_version},
        "requirements": list(env.requirements),
        "requirements_file": str(env.requirements_file) if env.requirements_file else None,
        "lock_file": str(spec.lock_file) if spec.lock_file else None,
        "source": str(env.source) if env.source else None,
        "isolation": env.isolation,
        "shared": list(env.shared),
        "provides": list(env.provides),
        "distributions": distributions(target),
    }
