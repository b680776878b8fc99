"""`polyvenv run NAME -- CMD`: a command inside one env, as if that venv were activated."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from ..config import Config
from ..errors import UsageError
from ..runtime.files import venv_bin
from ..runtime.lease import hold
from .sync import raise_first_failure, sync


def run(config: Config, name: str, command: Sequence[str]) -> int:
    """Build the env if needed, run ``command`` in it, and return its exit code."""
    raise_first_failure(sync(config, [name]))
    # the build the env's link points at now, for the command's whole life: a sync meanwhile
    # cannot mix builds in it, and gc keeps it (the command inherits the lease) until it exits
    lease = hold(config.envs_dir / name)
    try:
        return _run_in(lease.build, name, command, lease.fileno())
    finally:
        lease.release()


def _run_in(env_dir: Path, name: str, command: Sequence[str], lease_fd: int | None) -> int:
    bin_dir = venv_bin(env_dir)
    environ = dict(os.environ)
    environ.pop("PYTHONHOME", None)
    environ["VIRTUAL_ENV"] = str(env_dir)
    environ["PATH"] = os.pathsep.join([str(bin_dir), environ.get("PATH", "")])
    program = shutil.which(command[0], path=environ["PATH"])
    if program is None:
        raise UsageError(f"env {name!r}: command {command[0]!r} not found in {bin_dir} or on PATH")
    try:
        return subprocess.run([program, *command[1:]], env=environ,
                              pass_fds=[lease_fd] if lease_fd is not None else []).returncode
    except KeyboardInterrupt:
        return 130
