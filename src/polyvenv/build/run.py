"""`polyvenv run NAME -- CMD`: a command inside one env, as if that venv were activated."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Sequence

from ..config import Config
from ..errors import UsageError
from .sync import sync


def run(config: Config, name: str, command: Sequence[str]) -> int:
    """Build the env if needed, run ``command`` in it, and return its exit code."""
    outcome = sync(config, [name])[0]
    if outcome.error:
        raise outcome.error
    env_dir = config.envs_dir / name
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    environ = dict(os.environ)
    environ.pop("PYTHONHOME", None)
    environ["VIRTUAL_ENV"] = str(env_dir)
    environ["PATH"] = os.pathsep.join([str(bin_dir), environ.get("PATH", "")])
    program = shutil.which(command[0], path=environ["PATH"])
    if program is None:
        raise UsageError(f"env {name!r}: command {command[0]!r} not found in {bin_dir} or on PATH")
    try:
        return subprocess.run([program, *command[1:]], env=environ).returncode
    except KeyboardInterrupt:
        return 130
