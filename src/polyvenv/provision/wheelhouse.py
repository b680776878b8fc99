"""`polyvenv wheelhouse DIR`: every wheel the envs need, for offline builds (seed 004's practice).

Each env's exact pins come from its lock file (or are resolved on the spot
when it has none); pip, run by uv under the env's own interpreter so wheel
tags match, downloads the wheels and builds those published only as sdists; the
wheelhouse records which it built for which pin, so that an offline sync
from the lock accepts them (builtwheels.py).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Sequence

from ..config import Config, counted
from ..errors import BuildError
from . import builtwheels, lockfiles, pylock
from .installers import InstallerFailed, Sources, Uv, run_logged
from .progress import Lines, Progress
from .spec import lock_path
from .sync import plan, select


def fill(config: Config, directory: Path, names: Sequence[str] = (), progress: Progress | None = None) -> int:
    """Download the wheels of ``names`` (default: every env) into ``directory``; return the count.

    Each env is shown as it is filled (``progress``; default: plain lines on stderr): downloading
    and building wheels can take minutes."""
    progress = progress or Lines()
    planner, specs = plan(config, select(config, names))
    uv = Uv(planner.cache)
    directory.mkdir(parents=True, exist_ok=True)
    log_dir = config.envs_dir / ".logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        for spec in specs:
            log_path = log_dir / f"{spec.name}.wheelhouse.log"
            log_path.write_text("")  # this run's output only: progress shows its last line
            progress.started(spec.name, "filling the wheelhouse", log_path)
            before = len(list(directory.glob("*.whl")))
            with tempfile.TemporaryDirectory(prefix="polyvenv-wheelhouse-") as tmp:
                pins = lock_path(config, spec.name)
                if not pins.is_file():
                    pins = lockfiles.write_lock(spec, Path(tmp) / "pins.txt", uv, Sources(), config.root, log_path)
                pins = pylock.as_requirements(pins, Path(tmp))
                fresh = Path(tempfile.mkdtemp(prefix=".polyvenv-wheels-", dir=directory))  # same filesystem
                argv = [uv.binary, "tool", "run", "--no-config", "--python", spec.interpreter.path,
                        "--from", "pip", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
                        "-w", fresh, "-r", pins]
                try:
                    with open(log_path, "a") as log:
                        run_logged(argv, log, cwd=config.root, env=uv.environ(), what="pip wheel")
                    builtwheels.record(directory, pins, fresh)  # the wheels built from sdists, for offline syncs
                except InstallerFailed as e:
                    progress.finished(spec.name, f"FAILED (log: {log_path})")
                    raise BuildError(f"filling the wheelhouse for env {spec.name!r}: {e} (log: {log_path})",
                                     env=spec.name, log=str(log_path)) from None
                finally:
                    shutil.rmtree(fresh, ignore_errors=True)
            added = len(list(directory.glob("*.whl"))) - before
            progress.finished(spec.name, f"wheelhouse filled ({counted(added, 'new wheel')})")
    finally:
        progress.close()
        planner.close()
    return len(list(directory.glob("*.whl")))
