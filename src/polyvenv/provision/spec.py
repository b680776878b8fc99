"""What one build must produce, and the hash that names it.

The spec hash covers everything that changes an env's contents: the
requirements (and the requirements file's text), the lock file when there
is one, the interpreter (resolved path, full version, implementation), the
installer and its version, the platform, and `link-mode` when it is set
(whether the env's files are uv's cache's own; unset, it leaves the hashes
of earlier builds as they were). Equal hashes mean nothing to do; this is
all a no-op `sync` computes, without starting any program.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, NamedTuple

from ..config import Config, EnvSpec
from ..errors import InterpreterNotFound
from .installers import Installer, Wants, installer_named
from .interpreters import Interpreter, resolve
from .probes import ProbeCache

HASH_LENGTH = 16


class BuildSpec(NamedTuple):
    env: EnvSpec
    interpreter: Interpreter
    installer: Installer
    installer_version: str
    lock_file: Path | None
    with_pip: bool = False

    @property
    def name(self) -> str:
        return self.env.name

    def wants(self) -> Wants:
        return Wants(self.env.requirements, self.env.requirements_file, self.lock_file)

    def inputs(self) -> dict[str, Any]:
        return {
            "requirements": list(self.env.requirements),
            "requirements_file": _text(self.env.requirements_file),
            "lock": _text(self.lock_file),
            "interpreter": {
                "path": self.interpreter.path,
                "version": self.interpreter.version,
                "implementation": self.interpreter.implementation,
            },
            "installer": {"name": self.installer.name, "version": self.installer_version},
            "platform": self.interpreter.platform,
            "with_pip": self.with_pip,
            **({"link_mode": self.installer.link_mode} if self.installer.link_mode else {}),
            **({"private": sorted(self.env.private)} if self.env.private else {}),
        }

    @property
    def hash(self) -> str:
        canonical = json.dumps(self.inputs(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LENGTH]


class Planner:
    """Turns declared envs into BuildSpecs, probing each interpreter and tool at most once."""

    def __init__(self, config: Config, installer: str | None = None) -> None:
        self.config = config
        self.cache = ProbeCache(config.envs_dir / ".cache" / "probes.json")
        self.installer = installer_named(installer or config.installer, self.cache, config.link_mode)
        self._installer_version: str | None = None

    def spec(self, env: EnvSpec, *, with_pip: bool = False, lock: bool = True) -> BuildSpec:
        """``lock=False``: ignore any lock file (``create`` has none)."""
        if self._installer_version is None:
            self._installer_version = self.installer.version()
        lock_file = lock_path(self.config, env.name) if lock else None
        try:
            interpreter = resolve(env.python, self.config.root, self.cache)
        except InterpreterNotFound as e:
            raise InterpreterNotFound(f"{self._where(env)}{e}") from None
        return BuildSpec(
            env=env,
            interpreter=interpreter,
            installer=self.installer,
            installer_version=self._installer_version,
            lock_file=lock_file if lock_file and lock_file.is_file() else None,
            with_pip=with_pip,
        )

    def _where(self, env: EnvSpec) -> str:
        """Where an env's settings come from, as config problems name it."""
        path = self.config.path
        if path is None:
            return f"env {env.name!r}: "
        table = "tool.polyvenv.envs" if path.name == "pyproject.toml" else "envs"
        return f"{path}: [{table}.{env.name}] "

    def close(self) -> None:
        self.cache.save()


def lock_path(config: Config, name: str) -> Path:
    """Env ``name``'s lock file: ``<name>.txt``, or with ``lock-format = "pylock"`` PEP 751's
    ``pylock.<name>.toml``."""
    return config.locks_dir / (f"pylock.{name}.toml" if config.lock_format == "pylock" else f"{name}.txt")


def _text(path: Path | None) -> str | None:
    return path.read_text() if path is not None else None
