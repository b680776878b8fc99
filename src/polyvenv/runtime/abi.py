"""Whether an env's build can load into this interpreter: namespace isolation needs the host's own Python.

An env loaded side by side runs in the host's interpreter, so its compiled
code must be built for that interpreter's version and ABI (free-threaded or
not), and its pure code was installed for that version's markers. An env
built for another Python is refused at load, saying so; ``isolation =
"process"`` runs it in a worker of its own interpreter, and ``"auto"``
chooses that by itself.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:
    from pathlib import Path

    from .manifest import BuiltWith, Manifest


def host_abi() -> str:
    """This interpreter's ABI as a build records it: ``cpython-312``, ``cpython-313t`` (free-threaded)."""
    return sys.implementation.cache_tag + getattr(sys, "abiflags", "")


def describe(implementation: str, version: str, abi: str | None) -> str:
    """``CPython 3.12.1``, ``CPython 3.13.0 (free-threaded)``."""
    name = {"cpython": "CPython", "pypy": "PyPy"}.get(implementation, implementation)
    return f"{name} {version}" + (" (free-threaded)" if abi and abi.endswith("t") else "")


def mismatch(manifest: Manifest | None, roots: Iterable[Path] = ()) -> str | None:
    """How the env's Python differs from this one (``CPython 3.12.1 (path), the host's is CPython
    3.11.7 (path)``), or None when it is the same (or unknown: a venv without a manifest whose
    site-packages path names no version)."""
    built = manifest.interpreter if manifest is not None else None
    host_version = "%d.%d.%d" % sys.version_info[:3]
    host = f"the host's is {describe(sys.implementation.name, host_version, host_abi())} ({sys.executable})"
    if built is None:
        return _from_site_path(roots, host)
    if _differs(built):
        return f"{describe(built.implementation, built.version, built.abi)} ({built.path}), {host}"
    return None


def _differs(built: BuiltWith) -> bool:
    minor = ".".join(built.version.split(".")[:2])
    return (built.implementation != sys.implementation.name or minor != "%d.%d" % sys.version_info[:2]
            or (built.abi is not None and built.abi != host_abi()))


def _from_site_path(roots: Iterable[Path], host: str) -> str | None:
    for root in roots:
        found = re.search(r"python(\d+)\.(\d+)(t?)[/\\]site-packages", str(root))
        if found:
            major, minor, threaded = found.groups()
            if (int(major), int(minor)) != sys.version_info[:2] or (threaded == "t") != host_abi().endswith("t"):
                what = f"Python {major}.{minor}" + (" (free-threaded)" if threaded else "")
                return f"{what} (its site-packages is {root}), {host}"
    return None
