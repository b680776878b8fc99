"""A JSON copy of a validated config, for hosts on Python < 3.11 without a TOML parser.

`polyvenv sync` (the build half, which can read TOML) writes it to the
per-user cache, keyed by the config file's path, with the identity (inode,
size, mtime) of that file, of the remembered discoveries and of the envs declared from code. The runtime
uses it only while all three are unchanged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .config import DECLARED_FILE, DISCOVERED_FILE, Config, Discovery, EnvSpec, load_config
from .errors import ConfigError
from .runtime.files import file_identity
from .runtime.locations import user_cache_dir, write_cache_file

_PATHS = {"root", "path", "envs_dir", "locks_dir", "bin_dir", "wheelhouse", "requirements_file", "source",
          "script_dir", "dir"}


def write(config: Config) -> None:
    """Leave the copy of ``config``, which its caller read from its file a moment ago.

    A save in between must not be recorded as matching the older text: the
    identities are taken first, then the file is read again, and the copy is
    written only if that still says ``config``.
    """
    if config.path is None:
        return
    inputs = _inputs(config.path, config.envs_dir)
    try:
        if load_config(config.root, config.path) != config:
            return  # saved meanwhile: no copy is current until the next sync writes one
    except ConfigError:
        return
    data = {"inputs": inputs, "config": _plain(config._asdict())}
    write_cache_file(_location(config.path), json.dumps(data).encode())


def read(path: Path) -> Config | None:
    """The snapshot of the config at ``path``, if it is still what that file says."""
    try:
        with open(_location(path)) as f:
            data = json.load(f)
        raw = data["config"]
        config = _config(raw)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return config if data["inputs"] == _inputs(path, config.envs_dir) else None


def _location(path: Path) -> str:
    return os.path.join(user_cache_dir(), "configs", os.path.realpath(path).replace(os.sep, "%") + ".json")


def _inputs(path: Path, envs_dir: Path) -> list[Any]:
    identities = (file_identity(file) for file in (path, envs_dir / DISCOVERED_FILE, envs_dir / DECLARED_FILE))
    return [list(identity) if identity else None for identity in identities]  # JSON's form


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return _plain(value._asdict())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _fields(raw: dict[str, Any]) -> dict[str, Any]:
    return {k: (Path(v) if k in _PATHS and v is not None else tuple(v) if isinstance(v, list) else v)
            for k, v in raw.items()}


def _config(raw: dict[str, Any]) -> Config:
    fields = _fields({k: v for k, v in raw.items() if k not in ("envs", "discoveries")})
    envs = {name: EnvSpec(**_fields(spec)) for name, spec in raw["envs"].items()}
    discoveries = tuple(Discovery(**_fields(d)) for d in raw["discoveries"])
    return Config(envs=envs, discoveries=discoveries, **fields)
