"""Per-env lock files: exact pins with hashes, written by ``uv pip compile``.

Each lock starts with a header recording a hash of what it was resolved
from (the requirements, the requirements file's text, the interpreter's
minor version and platform). ``sync --locked`` compares that hash with the
current declaration: a cheap check that needs no resolver.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from ..errors import ForeignPath, LockFileOutdated
from .installers import Sources, Uv, run_logged
from .spec import BuildSpec

_HEADER = "# polyvenv lock"  # how every lock file polyvenv writes begins: the proof it is polyvenv's
_INPUT = re.compile(r"^# input: ([0-9a-f]+)$", re.M)


def input_hash(spec: BuildSpec) -> str:
    inputs = spec.inputs()
    data = {
        "requirements": inputs["requirements"],
        "requirements_file": inputs["requirements_file"],
        "python": [spec.interpreter.implementation, spec.interpreter.minor],
        "platform": spec.interpreter.platform,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def recorded_input(lock: Path) -> str | None:
    try:
        with open(lock) as f:
            head = f.read(1024)
    except OSError:
        return None
    match = _INPUT.search(head)
    return match.group(1) if match else None


def check_current(spec: BuildSpec, lock: Path) -> None:
    """Raise LockFileOutdated unless ``lock`` exists and matches ``spec``'s declaration."""
    if not lock.is_file():
        raise LockFileOutdated(f"env {spec.name!r} has no lock file ({lock}): run `polyvenv lock {spec.name}`")
    if recorded_input(lock) != input_hash(spec):
        raise LockFileOutdated(
            f"the lock file of env {spec.name!r} ({lock}) is out of date with its requirements: "
            f"run `polyvenv lock {spec.name}`"
        )


def write_lock(spec: BuildSpec, lock: Path, uv: Uv, sources: Sources, cwd: Path, log_path: Path) -> Path:
    """Resolve ``spec``'s requirements for its interpreter and write the lock atomically."""
    env = spec.env
    check_ours(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="polyvenv-lock-") as tmp:
        requirements_in = Path(tmp) / "requirements.in"
        lines = list(env.requirements)
        if env.requirements_file:
            lines.append(f"-r {env.requirements_file}")
        requirements_in.write_text("\n".join(lines) + "\n")
        out = Path(tmp) / "lock.txt"
        argv = [
            uv.binary, "pip", "compile", "--no-config", "--quiet", "--no-header", "--generate-hashes",
            "--python", spec.interpreter.path,
            "-o", out, requirements_in, *uv.source_args(sources),
        ]
        with open(log_path, "w") as log:
            run_logged(argv, log, cwd=cwd, env=uv.environ(), what="uv pip compile")
        header = (
            f"{_HEADER} for env {env.name!r}: Python {spec.interpreter.minor} "
            f"({spec.interpreter.implementation}, {spec.interpreter.platform}).\n"
            f"# Written by `polyvenv lock`; `polyvenv sync` installs exactly this.\n"
            f"# input: {input_hash(spec)}\n"
        )
        staged = lock.with_name(f".{lock.name}.{os.getpid()}.tmp")
        staged.write_text(header + out.read_text())
        try:
            check_ours(lock)  # again, right before replacing it
            staged.replace(lock)
        except BaseException:
            staged.unlink()
            raise
    return lock


def check_ours(lock: Path) -> None:
    """Raise ForeignPath if ``lock`` exists and is not a lock file `polyvenv lock` wrote (its header)."""
    if not os.path.lexists(lock):
        return
    try:
        with open(lock) as f:
            ours = f.read(len(_HEADER)) == _HEADER and not lock.is_symlink()
    except (OSError, UnicodeDecodeError):
        ours = False
    if not ours:
        raise ForeignPath(f"{lock} exists and was not written by `polyvenv lock`: refusing to overwrite it; "
                          "move it away, or set `locks-dir` to another directory")

