"""Per-env lock files: exact pins with hashes, written by ``uv pip compile``.

Two formats, one header: hashed requirements (``<env>.txt``, the default:
both installers install it, and its ``# via`` lines make a readable diff)
or PEP 751's ``pylock.<env>.toml`` (``lock-format = "pylock"``; pylock.py).

Each lock starts with a header recording a hash of what it was resolved
from (the requirements, the requirements file's text, the interpreter's
minor version and platform). ``sync`` compares that hash with the current
declaration: a cheap check that needs no resolver. Out of date, a plain
``sync`` locks again (online) or refuses (offline), ``sync --locked``
refuses, ``sync --frozen`` installs the lock as it is (uv's semantics).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from ..errors import BuildError, ForeignPath, LockFileOutdated
from ..runtime.files import write_atomic
from . import pylock
from .installers import InstallerFailed, Sources, Uv, run_logged
from .spec import BuildSpec, Planner

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


def is_current(spec: BuildSpec, lock: Path) -> bool:
    """The lock was resolved from exactly ``spec``'s declaration (its recorded input hash):
    a header read, no resolver, so the no-op `sync` can afford it."""
    return recorded_input(lock) == input_hash(spec)


def outdated_offline(names: list[str], locks: list[Path]) -> LockFileOutdated:
    """The one line an offline `sync` stops with on out-of-date locks: it does not resolve."""
    fix = f"polyvenv lock {' '.join(names)}" if len(names) <= 3 else "polyvenv lock"  # same pins: same bytes
    which = (f"the lock file of env {names[0]!r} ({locks[0]}) is" if len(names) == 1 else
             f"the lock files of {len(names)} envs ({', '.join(names)}) are")
    return LockFileOutdated(f"{which} out of date with {'its' if len(names) == 1 else 'their'} requirements and an "
                            f"offline sync does not lock: run `{fix}` online (or `polyvenv sync --frozen` to install "
                            "the old lock as it is)")


def uv_for(planner: Planner) -> Uv:
    """The uv that resolves locks: the installer's own when it is uv (same version, same cache)."""
    return planner.installer if isinstance(planner.installer, Uv) else Uv(planner.cache)


def check_current(spec: BuildSpec, lock: Path) -> None:
    """Raise LockFileOutdated unless ``lock`` exists and matches ``spec``'s declaration."""
    if not lock.is_file():
        raise LockFileOutdated(f"env {spec.name!r} has no lock file ({lock}): run `polyvenv lock {spec.name}`")
    if not is_current(spec, lock):
        raise LockFileOutdated(f"the lock file of env {spec.name!r} ({lock}) is out of date with its requirements: "
                               f"run `polyvenv lock {spec.name}`")


def write_lock(spec: BuildSpec, lock: Path, uv: Uv, sources: Sources, cwd: Path, log_path: Path) -> Path:
    """Resolve ``spec``'s requirements for its interpreter and write the lock atomically.

    The same declaration resolved to the same pins writes the same bytes (no
    temporary path in it), and a lock whose bytes would not change is left
    as it is: its identity too, so neither the env nor the no-op memo is
    made stale by a `lock` that changed nothing.
    """
    import tempfile

    env = spec.env
    check_ours(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="polyvenv-lock-") as tmp:
        requirements_in = Path(tmp) / "requirements.in"
        requirements_in.write_text("".join(f"{r}\n" for r in env.requirements))
        files: list[str | Path] = [requirements_in]
        if env.requirements_file:
            files.append(_relative(env.requirements_file, cwd))  # `# via -r` names it as the user does
        standard = pylock.is_pylock(lock)
        out = Path(tmp) / ("pylock.toml" if standard else "lock.txt")  # uv takes only PEP 751's names for one
        argv = [
            uv.binary, "pip", "compile", "--no-config", "--quiet", "--no-header", "--generate-hashes",
            "--python", spec.interpreter.path, *(["--format", "pylock.toml"] if standard else []),
            "-o", out, *files, *uv.source_args(sources),
        ]
        try:
            with open(log_path, "w") as log:
                run_logged(argv, log, cwd=cwd, env=uv.environ(), what="uv pip compile")
        except InstallerFailed as e:
            raise BuildError(f"locking env {env.name!r}: {e} (log: {log_path})", env=env.name,
                             log=str(log_path)) from None
        header = (
            f"{_HEADER} for env {env.name!r}: Python {spec.interpreter.minor} "
            f"({spec.interpreter.implementation}, {spec.interpreter.platform}).\n"
            f"# Written by `polyvenv lock`; `polyvenv sync` installs exactly this.\n"
            f"# input: {input_hash(spec)}\n"
        )
        text = header + out.read_text().replace(f"-r {requirements_in}", f"the requirements of env {env.name!r}")
        if _read(lock) == text:
            return lock
        write_atomic(lock, text, check=lambda: check_ours(lock))  # checked again right before replacing it
    return lock


def _relative(path: Path, root: Path) -> Path:
    """``path`` relative to ``root`` when inside it: a lock names no directory of this machine."""
    try:
        return path.resolve().relative_to(root.resolve())
    except ValueError:
        return path


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


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

