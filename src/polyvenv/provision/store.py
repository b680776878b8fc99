"""The envs directory on disk: versioned builds, their manifests, the current-build links, locks.

Layout (``envs-dir``, ``.polyvenv`` by default)::

    .polyvenv-envs          the marker: this directory is polyvenv's (written before anything else)
    <name>                  symlink -> .builds/<name>-<spec hash>: the env users and hosts see
    .builds/<name>-<hash>/  a real venv; complete only once it holds a valid manifest
    .locks/<name>.lock      held while building <name>; .locks/workspace.lock for gc and shims
    .logs/<name>-<hash>.log the installer output of that build
    .logs/builds.jsonl      one line per finished build

The manifest (``polyvenv.json`` inside a build, runtime/manifest.py) is its
stamp: written last, through a temp file and ``os.replace``, so a build
without it was interrupted and is never used.

Ownership: polyvenv deletes or replaces only what it can prove it made.
The envs dir is its own when it carries the marker (config validation
refuses any other non-empty directory); an entry ``<name>`` is an env link
only while it is a symlink into ``.builds/`` (``owned_link``); anything else
at an env's location is refused with ForeignPath, never replaced.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..config import ENVS_MARKER
from ..errors import ForeignPath
from ..runtime.manifest import read_manifest


class Store:
    def __init__(self, envs_dir: Path) -> None:
        self.root = envs_dir

    # -- paths ---------------------------------------------------------------

    def link(self, name: str) -> Path:
        return self.root / name

    def build_dir(self, name: str, spec_hash: str) -> Path:
        return self.root / ".builds" / f"{name}-{spec_hash}"

    def log_path(self, name: str, spec_hash: str) -> Path:
        return self.root / ".logs" / f"{name}-{spec_hash}.log"

    def builds(self, name: str) -> list[Path]:
        """Every build directory of ``name``, complete or not."""
        parent = self.root / ".builds"
        if not parent.is_dir():
            return []
        return sorted(p for p in parent.iterdir() if p.name.rpartition("-")[0] == name)

    def built_names(self) -> set[str]:
        """Names with a build or an env link on disk, declared or not (for gc)."""
        names = {p.name.rpartition("-")[0] for p in (self.root / ".builds").glob("[!.]*-*")}
        if self.root.is_dir():
            names |= {p.name for p in self.root.iterdir() if not p.name.startswith(".") and self.owned_link(p.name)}
        return names

    # -- ownership -------------------------------------------------------------

    def claim(self) -> None:
        """Make the envs dir (or adopt an empty one) and mark it polyvenv's, before anything is put in it.

        Config validation already refused a directory holding anything else.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        marker = self.root / ENVS_MARKER
        if marker.is_file():
            return
        try:  # exclusive create: concurrent builders race here, and any one of them may win
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return
        with os.fdopen(fd, "w") as f:
            f.write("This directory holds polyvenv's environments; polyvenv deletes what is in it.\n")

    def owned_link(self, name: str) -> bool:
        """``<name>`` is an env link polyvenv made: a symlink to a build of that name in ``.builds/``."""
        link = self.link(name)
        if not link.is_symlink():
            return False
        target = os.readlink(link)
        return os.path.dirname(target) == ".builds" and os.path.basename(target).rpartition("-")[0] == name

    def check_link_location(self, name: str) -> None:
        """Raise ForeignPath unless ``<name>`` is absent or an env link polyvenv made."""
        link = self.link(name)
        if os.path.lexists(link) and not self.owned_link(name):
            raise ForeignPath(
                f"env {name!r}: {link} exists and was not made by polyvenv: refusing to replace it; "
                "move it away, or rename the env"
            )

    # -- the current build --------------------------------------------------

    def current(self, name: str) -> Path | None:
        """The build the link points at, if it is complete."""
        link = self.link(name)
        if not self.owned_link(name):
            return None
        target = link.parent / os.readlink(link)
        return target if read_manifest(target) is not None else None

    def switch(self, name: str, build: Path) -> None:
        """Point ``<name>`` at ``build`` atomically: readers see the old or the new, never neither."""
        link = self.link(name)
        self.check_link_location(name)
        tmp = link.with_name(f".{name}.{os.getpid()}.link")
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(os.path.relpath(build, link.parent), target_is_directory=True)
        try:
            self.check_link_location(name)  # again, right before replacing: a user may have put a file there
            os.replace(tmp, link)
        except BaseException:
            tmp.unlink()
            raise

    def unlink(self, name: str) -> None:
        """Remove the env link, if it is one polyvenv made (anything else there is left alone)."""
        if self.owned_link(name):
            self.link(name).unlink()

    # -- locks and the build log -----------------------------------------------------

    def lock(self, name: str = "workspace"):
        """The lock a builder of ``name`` holds (``workspace``: for gc and shims).

        Whoever locks is about to write here: the directory is claimed first.
        """
        self.claim()
        return exclusive_lock(self.root / ".locks" / f"{name}.lock")

    def record_build(self, event: dict[str, Any]) -> None:
        history = self.root / ".logs" / "builds.jsonl"
        history.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(event, sort_keys=True) + "\n"
        fd = os.open(history, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())  # one small O_APPEND write: lines never interleave
        finally:
            os.close(fd)


def exclusive_lock(path: Path):
    """An inter-process lock (flock), released if its holder dies; never the silent soft fallback."""
    import filelock

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return filelock.FileLock(str(path), fallback_to_soft=False)
    except TypeError:  # filelock 3.x: FileLock is fcntl-based wherever fcntl exists, no fallback
        return filelock.FileLock(str(path))


def remove_tree(path: Path) -> None:
    """Delete a directory so it is gone at once: renamed aside first, then removed.

    A delete cut short by a kill leaves only a hidden ``.<name>.trash-<pid>``
    sibling (removed by the next delete of that name, or by gc), never a
    half-deleted directory under the real name. Callers hold the name's lock.
    """
    import shutil

    if path.is_symlink() or path.is_file():
        path.unlink()
        return
    if path.exists():
        trash = path.with_name(f".{path.name}.trash-{os.getpid()}")
        if trash.exists():
            shutil.rmtree(trash)
        os.replace(path, trash)
    for leftover in path.parent.glob(f".{path.name}.trash-*"):
        shutil.rmtree(leftover, ignore_errors=True)
