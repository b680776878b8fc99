"""Envs declared from code (``Workspace.add_env``), kept beside their builds and checked as the config's own.

A host such as Blender or a node-pack server learns its add-ons at run time
and owns no config file, yet the envs it declares must survive a restart
(and ``gc`` must not take their builds meanwhile). So each declaration is
kept in ``<envs-dir>/declared.json``: a file polyvenv makes, in the
directory it owns (rule 2: nothing is written into the user's config). It
holds each env in the config's own spelling (TOML keys, paths as given,
relative to the workspace root), and every load checks it with the very
checks an ``[envs.NAME]`` table gets: the same errors, the same lines.

An entry that no longer passes them when the workspace is loaded (the
add-on's folder was deleted meanwhile) is left out with a
DeclaredEnvWarning saying how to declare it again or forget it: one broken
add-on never keeps the workspace, and the other add-ons, from loading.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .config import DECLARED_FILE, Config, EnvSpec, _Checker, _env_spec, env_table, name_problem
from .errors import ConfigError

FORMAT = 1
WHERE = "Workspace.add_env"  # where problems with a declaration from code are said to come from


def declarations(envs_dir: Path) -> dict[str, dict[str, Any]]:
    """The envs declared from code in ``envs_dir``: name -> its settings in TOML spelling ({} if none)."""
    try:
        with open(envs_dir / DECLARED_FILE) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    envs = data.get("envs") if isinstance(data, dict) else None
    return envs if isinstance(envs, dict) else {}


def table(settings: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments as the env table a config file would hold: ``requirements_file`` is the key
    ``requirements-file``, a path is its string, a tuple its list (so the config's checks apply as they are)."""
    def plain(value: Any) -> Any:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value

    return {key.replace("_", "-"): plain(value) for key, value in settings.items()}


def declare(config: Config, name: str, settings: dict[str, Any]) -> Config:
    """``config`` with env ``name`` declared (or changed) as ``settings`` say, the declaration kept on disk.

    ConfigError, with the config's own messages, for settings a config file could not hold either,
    and for a name the config file or a discovery declares already (it is changed there).
    """
    body = table(settings)
    spec = _checked(config, name, body, WHERE)
    kept = declarations(config.envs_dir)
    if name in config.envs and not _from_code(config, name, kept):
        raise ConfigError(f"{WHERE}: env {name!r} is {_origin(config, config.envs[name])}: change it there, "
                          "or declare this one under another name", env=name)
    if kept.get(name) != body:
        _write(config.envs_dir, name, body)
    return config._replace(envs={**config.envs, name: spec})


def forget(config: Config, name: str) -> Config:
    """``config`` without the env ``name`` declared from code, its declaration gone from disk too (nothing
    is done for a name no declaration has: a discovered env whose folder is gone is forgotten already).
    ConfigError for an env the config file or a discovery declares: only they can remove it."""
    kept = declarations(config.envs_dir)
    if name in config.envs and not _from_code(config, name, kept):
        raise ConfigError(f"Workspace.remove_env: env {name!r} is {_origin(config, config.envs[name])}, not "
                          "declared from code: remove it there", env=name)
    if name in kept:
        _write(config.envs_dir, name, None)
    return config._replace(envs={n: spec for n, spec in config.envs.items() if n != name})


def merge_declared(config: Config) -> Config:
    """``config`` (as its file and discoveries declare it) with the envs declared from code added; one that
    no longer passes the config's checks, or that the file or a discovery declares too (they win), is left
    out with a DeclaredEnvWarning."""
    kept = declarations(config.envs_dir)
    if not kept:
        return config
    envs = dict(config.envs)
    for name, body in kept.items():
        where = str(config.envs_dir / DECLARED_FILE)
        try:
            if name in envs:
                raise ConfigError(f"{where}: env {name!r} declared from code is also {_origin(config, envs[name])}, "
                                  "which wins")
            envs[name] = _checked(config, name, body, where)
        except ConfigError as e:
            _warn(name, e)
    return config._replace(envs=envs)


# -- internals ---------------------------------------------------------------

def _checked(config: Config, name: str, body: Any, where: str) -> EnvSpec:
    """The EnvSpec of one env table, through the config's own checks; ConfigError listing every problem."""
    if not isinstance(name, str):
        raise ConfigError(f"{where}: an env name is a string, got {type(name).__name__} {name!r}")
    check = _Checker(config.path, where)
    spec = _env_spec(check, env_table("", name), name, body, config.root)
    if check.problems or spec is None:
        raise ConfigError(check.problems, env=name if name_problem(name) is None else None)
    return spec


def _from_code(config: Config, name: str, kept: dict[str, dict[str, Any]]) -> bool:
    """The env ``name`` of ``config`` is the one declared from code (``kept``), not one of the config
    file or of a discovery (which win over a declaration from code of the same name)."""
    if name not in kept:
        return False
    try:
        return _checked(config, name, kept[name], WHERE) == config.envs[name]
    except ConfigError:
        return False


def _origin(config: Config, spec: EnvSpec) -> str:
    if spec.script_dir is not None and spec.requirements_file is not None:  # discover() sets both
        return f"discovered from {spec.requirements_file.parent}"
    return f"declared in {config.describe()}"


def _write(envs_dir: Path, name: str, body: dict[str, Any] | None) -> None:
    """Keep (or, for None, drop) one declaration, under the workspace's lock: two processes declaring
    at once both keep theirs; the file is whole at every moment (write_atomic)."""
    from .provision.store import Store
    from .runtime.files import write_atomic

    store = Store(envs_dir)
    with store.lock():  # claims (marks) the envs dir first: declared.json is in a directory polyvenv owns
        envs = declarations(envs_dir)
        if body is None:
            envs.pop(name, None)
        else:
            envs[name] = body
        write_atomic(envs_dir / DECLARED_FILE, json.dumps({"format": FORMAT, "envs": envs}, indent=2) + "\n")


def _warn(name: str, error: ConfigError) -> None:
    import warnings

    from .errors import DeclaredEnvWarning

    fix = (f"declare it again with Workspace.add_env({name!r}, ...), or forget it with "
           f"Workspace.remove_env({name!r})")
    warnings.warn(DeclaredEnvWarning(f"{error.problems[0]}; env {name!r} declared from code is left out: {fix}"),
                  stacklevel=2)
