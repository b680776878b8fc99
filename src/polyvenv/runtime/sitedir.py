"""A venv's site-packages directory, and which distributions are installed in it (both halves use it)."""

from __future__ import annotations

import os
import re
from pathlib import Path


def site_packages(path: Path) -> Path | None:
    """A venv's site-packages, or ``path`` itself when it is a site-packages-like directory."""
    found = sorted(path.glob("lib/python*/site-packages")) or sorted(path.glob("Lib/site-packages"))
    if found:
        return found[0]
    if path.is_dir() and (path.name == "site-packages" or any(path.glob("*.dist-info"))):
        return path
    return None


def normalize(name: str) -> str:
    """A distribution name as packaging compares it (``Typing_Extensions`` -> ``typing-extensions``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def distributions(site: Path) -> dict[str, str]:
    """Installed distributions (normalized names) and their versions, from the dist-info directory names."""
    found = {}
    for info in site.glob("*.dist-info"):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        found[normalize(name)] = version
    return dict(sorted(found.items()))


def has_module(root: str, dotted: str, listings: dict[str, list[str]]) -> bool:
    """Whether ``dotted`` is a module or package found under ``root`` (source, compiled or namespace).
    ``listings``: directory -> its entries, kept by the caller, which asks of many names (a byte patch asks
    of thousands, and listing the directory each time was a glob per name)."""
    base = os.path.join(root, *dotted.split("."))
    if os.path.isdir(base) or os.path.isfile(base + ".py"):
        return True
    directory, last = os.path.split(base)
    if directory not in listings:
        try:
            listings[directory] = os.listdir(directory)
        except OSError:
            listings[directory] = []
    stem = last + "."  # a compiled module: <last>.*so
    return any(n.startswith(stem) and n.endswith("so") and len(n) >= len(stem) + 2 for n in listings[directory])
