"""Which top-level import names each env provides: its ``provides``, else its source's modules."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from ..config import EnvSpec


def top_level_modules(source: Path) -> list[str]:
    """Packages (directories, namespace ones included) and modules directly in ``source``."""
    names = []
    for entry in sorted(source.iterdir()):
        if entry.name.startswith((".", "_")) or entry.name in ("bin", "tests", "requirements.txt"):
            continue
        if entry.is_dir() and entry.name.isidentifier():
            if any(entry.glob("*.py")) or (entry / "__init__.py").exists():
                names.append(entry.name)
        elif entry.suffix == ".py" and entry.stem.isidentifier() and entry.stem != "setup":
            names.append(entry.stem)
    return names


def provided_names(envs: Iterable[EnvSpec]) -> dict[str, list[str]]:
    """Each top-level name, with every env that provides it (more than one is a conflict)."""
    names: dict[str, list[str]] = {}
    for env in envs:
        provides = env.provides or (top_level_modules(env.source) if env.source else [])
        for name in provides:
            names.setdefault(name, []).append(env.name)
    return names


def conflicts(names: dict[str, list[str]]) -> list[str]:
    return [
        f"import name {name!r} is provided by several envs: {', '.join(envs)}; "
        "keep it in one env's `provides` (or rename it in the others)"
        for name, envs in sorted(names.items()) if len(envs) > 1
    ]
