"""Command shims in ``bin-dir``: console scripts of an env, and a discovered module's bin/ scripts.

A console script's shim is a symlink to the script inside the env's stable
path (``<envs-dir>/<name>/bin/<script>``), so a rebuild never breaks it. A
Python script from a module's ``bin/`` gets a two-line wrapper that runs it
with the env's interpreter. Every shim polyvenv made is listed in
``<bin-dir>/.polyvenv-shims.json``: only those are ever replaced or removed,
and a name two envs want, or a file polyvenv did not make, is an error.

The registry alone proves nothing: a user may have put a file of their own
at a shim's name since. Right before a shim is replaced or removed, the file
is compared with what polyvenv wrote (the link's target, the wrapper's
text); one that differs is the user's now: it is left alone, dropped from
the registry, and reported.
"""

from __future__ import annotations

import configparser
import fnmatch
import json
import os
import shlex
import sys
from pathlib import Path

from ..config import Config, EnvSpec
from ..errors import ShimConflict
from ..runtime.files import replace_atomic, write_atomic
from ..runtime.sitedir import site_packages
from .store import Store

REGISTRY = ".polyvenv-shims.json"


def console_scripts(env_dir: Path) -> list[str]:
    """Names of the console and GUI scripts the env's distributions declare."""
    sp = site_packages(env_dir)
    names: set[str] = set()
    for entry_points in sp.glob("*.dist-info/entry_points.txt") if sp else ():
        parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            parser.read(entry_points)
        except configparser.Error:
            continue
        for section in ("console_scripts", "gui_scripts"):
            if parser.has_section(section):
                names.update(parser.options(section))
    return sorted(names)


def python_scripts(script_dir: Path) -> list[Path]:
    """Files in a module's bin/ whose shebang names python."""
    found = []
    for path in sorted(script_dir.iterdir()) if script_dir.is_dir() else ():
        try:
            with open(path, "rb") as f:
                first = f.readline(200)
        except OSError:
            continue
        if path.is_file() and first.startswith(b"#!") and b"python" in first:
            found.append(path)
    return found


def wanted(config: Config, env: EnvSpec) -> dict[str, dict[str, str]]:
    """The shims one built env asks for: name -> how to make it."""
    link = config.envs_dir / env.name
    shims: dict[str, dict[str, str]] = {}
    if env.scripts:
        for script in console_scripts(link):
            if any(fnmatch.fnmatchcase(script, pattern) for pattern in env.scripts):
                shims[script] = {"env": env.name, "kind": "link", "target": str(link / "bin" / script)}
    if env.script_dir:
        for script in python_scripts(env.script_dir):
            shims[script.name] = {"env": env.name, "kind": "wrapper", "target": str(script),
                                  "python": str(link / "bin" / "python")}
    return shims


def update(config: Config, bin_dir: Path | None = None) -> str:
    """Bring ``bin_dir`` in line with the built envs; return a short summary of changes."""
    bin_dir = bin_dir or config.bin_dir
    if bin_dir is None:
        return ""
    store = Store(config.envs_dir)
    with store.lock("workspace"):
        registry_path = bin_dir / REGISTRY
        registry = _read(registry_path)
        ours = _intact(bin_dir, registry, str(config.envs_dir))
        desired: dict[str, dict[str, str]] = {}
        for env in config.envs.values():
            if store.current(env.name) is None:  # not built (or failed): keep what it had
                desired.update({n: s for n, s in ours.items() if s["env"] == env.name})
                continue
            for name, shim in wanted(config, env).items():
                if name in desired and desired[name]["env"] != env.name:
                    raise ShimConflict(
                        f"command {name!r} is exported by envs {desired[name]['env']!r} and {env.name!r}: "
                        "narrow `scripts` in one of them"
                    )
                desired[name] = {**shim, "workspace": str(config.envs_dir)}
        for name, shim in desired.items():
            owner = registry.get(name)
            if owner and owner.get("workspace") != shim["workspace"]:
                raise ShimConflict(f"command {name!r} in {bin_dir} belongs to another workspace "
                                   f"({owner.get('workspace')}): remove it there first")
            if not owner and os.path.lexists(bin_dir / name):
                raise ShimConflict(f"{bin_dir / name} exists and was not made by polyvenv "
                                   f"(env {shim['env']!r} wants it): move it away or narrow `scripts`")
        return _apply(bin_dir, registry, ours, desired)


def _intact(bin_dir: Path, registry: dict, workspace: str) -> dict[str, dict[str, str]]:
    """This workspace's registry entries whose file is still exactly what polyvenv wrote (or gone).

    The others are dropped from ``registry``: the file at that name is the user's now.
    """
    ours = {}
    for name, shim in list(registry.items()):
        if shim.get("workspace") != workspace:
            continue
        if _is_ours(bin_dir / name, shim):
            ours[name] = shim
        else:
            del registry[name]
            _save(bin_dir, registry)
            print(f"polyvenv: warning: kept {bin_dir / name}: it changed since polyvenv made it as a shim of env "
                  f"{shim.get('env')!r}, so it is yours now (delete it yourself if it should go)", file=sys.stderr)
    return ours


def _is_ours(path: Path, shim: dict[str, str]) -> bool:
    """``path`` is absent, or is the very shim polyvenv wrote there."""
    if not os.path.lexists(path):
        return True
    if shim.get("kind") == "link":
        return path.is_symlink() and os.readlink(path) == shim.get("target")
    try:
        return not path.is_symlink() and path.read_text() == _wrapper_text(shim)
    except (OSError, UnicodeDecodeError, KeyError):
        return False


def _apply(bin_dir: Path, registry: dict, ours: dict, desired: dict) -> str:
    bin_dir.mkdir(parents=True, exist_ok=True)
    added = changed = removed = 0
    for name, shim in desired.items():
        if ours.get(name) == shim and os.path.lexists(bin_dir / name):
            continue
        _write(bin_dir / name, shim, ours.get(name))
        added += name not in ours
        changed += name in ours
        registry[name] = shim
    for name in set(ours) - set(desired):
        path = bin_dir / name
        if os.path.lexists(path):
            _check_ours(path, ours[name])
            path.unlink()
        registry.pop(name)
        removed += 1
    if added or changed or removed:
        _save(bin_dir, registry)
    parts = [f"{n} {what}" for n, what in ((added, "added"), (changed, "updated"), (removed, "removed")) if n]
    return ", ".join(parts)


def _save(bin_dir: Path, registry: dict) -> None:
    write_atomic(bin_dir / REGISTRY, json.dumps(registry, indent=2, sort_keys=True) + "\n")


def _check_ours(path: Path, shim: dict[str, str] | None) -> None:
    """Right before replacing or deleting ``path``: it must still be what polyvenv wrote."""
    if os.path.lexists(path) and (shim is None or not _is_ours(path, shim)):
        raise ShimConflict(f"{path} changed since polyvenv checked it: refusing to replace it; "
                           "move it away and run `polyvenv shims` again")


def _write(path: Path, shim: dict[str, str], previous: dict[str, str] | None) -> None:
    """Create the shim beside its final name and rename it into place: never half-written.

    ``previous`` is the registry's word for what is at ``path`` now (None: nothing of ours).
    """
    def make(tmp: str) -> None:
        if shim["kind"] == "link":
            os.symlink(shim["target"], tmp)
        else:
            Path(tmp).write_text(_wrapper_text(shim))
            os.chmod(tmp, 0o755)

    replace_atomic(path, make, check=lambda: _check_ours(path, previous))


def _wrapper_text(shim: dict[str, str]) -> str:
    return ("#!/bin/sh\n# polyvenv shim: runs this script with its env's interpreter\n"
            f"exec {shlex.quote(shim['python'])} {shlex.quote(shim['target'])} \"$@\"\n")


def _read(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def remove_for(config: Config, env_name: str, bin_dir: Path | None = None) -> int:
    """Delete the shims of one env (used by `remove` and `gc`)."""
    bin_dir = bin_dir or config.bin_dir
    if bin_dir is None:
        return 0
    with Store(config.envs_dir).lock("workspace"):
        registry = _read(bin_dir / REGISTRY)
        ours = _intact(bin_dir, registry, str(config.envs_dir))
        desired = {n: s for n, s in ours.items() if s["env"] != env_name}
        _apply(bin_dir, registry, ours, desired)
        return len(ours) - len(desired)
