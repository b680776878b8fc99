"""A venv's site-packages directory, and which distributions are installed in it (both halves use it)."""

from __future__ import annotations

import glob
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


def has_module(root: str, dotted: str) -> bool:
    """Whether ``dotted`` is a module or package found under ``root`` (source, compiled or namespace)."""
    base = os.path.join(root, *dotted.split("."))
    return os.path.isdir(base) or os.path.isfile(base + ".py") or bool(glob.glob(glob.escape(base) + ".*so"))
