"""A memo of the last `sync` that found nothing to do, checked with stat calls alone.

A no-op `sync` must cost little more than starting Python, but deciding it
the full way means importing the TOML parser, pathlib, argparse and the
build modules (about 50 ms). So when a plain `sync` finds every env up to
date, it records every file that decision read, with its identity (inode,
size, mtime): the config file, each env's requirements and lock file (or
their absence), the env's link and stamp, its interpreter, uv. Those
identities are taken before the decision is made once more from the files
as they are then, so a file saved while `sync` was deciding is either seen
by that second look (no memo) or differs from what is recorded. The next
plain `sync` compares those identities and, if none changed, is answered
here: the same inputs give the same decision. Anything else (a changed
file, an option, discovery, shims, a ``python = "3.12"`` version request
whose answer depends on what is installed) takes the full path.

This module imports only ``os``, ``sys`` and ``marshal`` (and runtime/files.py): that is the point.
"""

from __future__ import annotations

import marshal
import os
import sys

from ..runtime.files import file_identity
from ..runtime.locations import user_cache_dir, write_cache_file

FORMAT = 1
PLAIN_SYNC = (["sync"], ["sync", "-q"], ["sync", "--quiet"], ["-q", "sync"], ["--quiet", "sync"])
_CANDIDATES = ("polyvenv.toml", "pyproject.toml")
_ENVIRON = ("POLYVENV_CONFIG", "POLYVENV_OFFLINE")  # they change what a plain `sync` reads: the full path decides


def answer(argv: list[str]) -> bool:
    """Answer a plain no-op `sync` from the memo; False when the full path must decide."""
    if argv not in PLAIN_SYNC or any(os.environ.get(v) for v in _ENVIRON):
        return False
    config = _nearest_config(os.getcwd())
    if config is None:
        return False
    try:
        with open(_memo_path(config), "rb") as f:
            memo = marshal.load(f)
    except (OSError, EOFError, ValueError, TypeError):
        return False
    if not isinstance(memo, dict) or memo.get("key") != _key():
        return False
    if any(_identity(path, follow) != identity for path, follow, identity in memo["files"]):
        return False
    quiet = argv != ["sync"] or os.environ.get("POLYVENV_QUIET", "").strip().lower() in ("1", "true", "yes", "on")
    if not quiet:
        count = memo["envs"]
        sys.stderr.write(f"polyvenv: {count} env{'s' * (count != 1)}: 0 built, {count} up to date, 0 failed\n")
    return True


def identities(files: list[tuple[str, bool]]) -> list[tuple[str, bool, tuple[int, int, int] | str | None]]:
    """Each of ``files`` with its identity now: taken BEFORE the decision they justify is made (or
    checked), so a file changed while deciding differs from what the memo records."""
    return [(path, follow, _identity(path, follow)) for path, follow in files]


def remember(config_path: str, envs: int, files: list[tuple[str, bool, tuple[int, int, int] | str | None]]) -> None:
    """Record that a plain `sync` of ``config_path`` found its ``envs`` up to date, given ``files``
    with the identities they had before that was decided (``identities``)."""
    memo = {"key": _key(), "envs": envs, "files": files}
    write_cache_file(_memo_path(config_path), marshal.dumps(memo))


def _nearest_config(start: str) -> str | None:
    """The first polyvenv.toml or pyproject.toml at or above ``start``.

    The full path skips a pyproject.toml without [tool.polyvenv]; no memo is
    ever written for such a file, so stopping at it just means no answer.
    """
    directory = start
    while True:
        for name in _CANDIDATES:
            candidate = os.path.join(directory, name)
            if os.path.isfile(candidate):
                return candidate
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _memo_path(config_path: str) -> str:
    name = os.path.realpath(config_path).replace(os.sep, "%")
    return os.path.join(user_cache_dir(), "noop", name)


def _key() -> list[str | int]:
    from .. import __version__

    return [FORMAT, __version__, sys.executable, sys.version]


def _identity(path: str, follow: bool) -> tuple[int, int, int] | str | None:
    """What identifies a file's content (inode, size, mtime), a link's target, or None if absent."""
    if follow:
        return file_identity(path)
    try:
        return os.readlink(path)
    except OSError:
        return None
