"""The envs directory on disk: versioned builds, stamps, the current-build links, locks.

Layout (``envs-dir``, ``.polyvenv`` by default)::

    <name>                  symlink -> .builds/<name>-<spec hash>: the env users and hosts see
    .builds/<name>-<hash>/  a real venv; complete only once it holds a valid stamp
    .locks/<name>.lock      held while building <name>; .locks/workspace.lock for gc and shims
    .logs/<name>-<hash>.log the installer output of that build
    .logs/builds.jsonl      one line per finished build

The stamp (``polyvenv.json`` inside a build) is written last, through a temp
file and ``os.replace``: a build without it was interrupted and is never used.
It doubles as the manifest the runtime reads.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

from ..runtime.manifest import MANIFEST as STAMP, MANIFEST_FORMAT as STAMP_FORMAT, read_manifest as read_stamp


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
        """Names with a build or a link on disk, declared or not (for gc)."""
        names = {p.name.rpartition("-")[0] for p in (self.root / ".builds").glob("[!.]*-*")}
        if self.root.is_dir():
            names |= {p.name for p in self.root.iterdir() if p.is_symlink() and not p.name.startswith(".")}
        return names

    # -- the current build --------------------------------------------------

    def current(self, name: str) -> Path | None:
        """The build the link points at, if it is complete."""
        link = self.link(name)
        if not link.is_symlink():
            return None
        target = link.parent / os.readlink(link)
        return target if read_stamp(target) is not None else None

    def switch(self, name: str, build: Path) -> None:
        """Point ``<name>`` at ``build`` atomically: readers see the old or the new, never neither."""
        link = self.link(name)
        tmp = link.with_name(f".{name}.{os.getpid()}.link")
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(os.path.relpath(build, link.parent), target_is_directory=True)
        os.replace(tmp, link)

    def unlink(self, name: str) -> None:
        link = self.link(name)
        if link.is_symlink():
            link.unlink()

    # -- locks and history -----------------------------------------------------

    def lock(self, name: str = "workspace"):
        """The lock a builder of ``name`` holds (``workspace``: for gc and shims)."""
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

    def history(self) -> Iterator[dict[str, Any]]:
        try:
            lines = (self.root / ".logs" / "builds.jsonl").read_text().splitlines()
        except OSError:
            return
        for line in lines:
            try:
                yield json.loads(line)
            except ValueError:
                continue


def exclusive_lock(path: Path):
    """An inter-process lock (flock), released if its holder dies; never the silent soft fallback."""
    import filelock

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return filelock.FileLock(str(path), fallback_to_soft=False)
    except TypeError:  # filelock 3.x: FileLock is fcntl-based wherever fcntl exists, no fallback
        return filelock.FileLock(str(path))


def write_stamp(build: Path, stamp: dict[str, Any]) -> None:
    """Mark a build complete: the last write of every build."""
    stamp = {"format": STAMP_FORMAT, "built_at": time.time(), **stamp}
    tmp = build / f".{STAMP}.tmp"
    with open(tmp, "w") as f:
        json.dump(stamp, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, build / STAMP)


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
