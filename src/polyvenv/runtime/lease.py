"""The build a running env loads from, and the lease that keeps it on disk while it does.

``<envs-dir>/<name>`` is a link that another process's ``sync`` may switch at
any moment. A process that followed the link at every import would load half
an env from one build and half from the next; so an env resolves its link
once, at first use, and loads everything (modules, metadata, extension
copies, its worker's interpreter) from that build until it is unloaded.

While it does, it holds a lease on that build: a shared ``flock`` on the
build's stamp (``polyvenv.json``, written last by every build), opened
read-only. ``gc`` and ``remove`` delete a build only when they can take the
same lock exclusively (``retiring``). The kernel drops the lock when the env
is unloaded or its process dies, however it dies: no lease outlives its
holder, a host writes nothing, and a read-only envs dir works.

Where ``flock`` does not exist, a build no longer current is kept for
``GRACE`` seconds after its env's link last changed instead.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Iterator

from .manifest import MANIFEST

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux or macOS
    fcntl = None  # type: ignore[assignment]

GRACE = 24 * 3600.0
_ATTEMPTS = 16  # resolutions raced by a concurrent switch and delete before giving up (each one a switch)


class Lease:
    """A process's hold on one build: ``build`` is where the env's files are read from."""

    def __init__(self, build: Path, fd: int | None = None) -> None:
        self.build = build
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def fileno(self) -> int | None:
        """The open stamp the lock is on: a child process given it holds the build as long as it lives."""
        return self._fd

    def release(self) -> None:
        """Let go of the build (gc may delete it once no other process holds it)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __repr__(self) -> str:
        return f"<polyvenv lease {'on' if self.held else 'of (unheld)'} {self.build}>"


def hold(env_dir: Path) -> Lease:
    """Resolve ``env_dir`` (a workspace env's link, or any venv) to the build it is now, and hold it.

    A directory without a stamp (a venv polyvenv did not build, a site-packages
    directory) is resolved but not held: nothing of polyvenv's deletes it.
    The lock is taken, then the stamp checked again: a build deleted between
    the resolution and the lock is noticed, and the link resolved anew.
    """
    for _ in range(_ATTEMPTS):
        build = Path(os.path.realpath(env_dir))
        stamp = build / MANIFEST
        try:
            fd = os.open(stamp, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            if os.path.realpath(env_dir) != str(build):
                continue  # switched (and the old build deleted) while we looked
            return Lease(build)
        if fcntl is None:  # pragma: no cover - the grace period protects it instead
            os.close(fd)
            return Lease(build)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a gc is deleting this very build
            if _same_file(fd, stamp):
                return Lease(build, fd)
        except OSError:
            pass
        os.close(fd)  # deleted while we waited: the link points elsewhere now
    from ..errors import NotBuilt

    raise NotBuilt(f"env at {env_dir} kept changing while it was being loaded ({_ATTEMPTS} switches): "
                   "load it again once its `polyvenv sync` or `gc` is done")


@contextlib.contextmanager
def retiring(build: Path, switched_at: float | None = None) -> Iterator[bool]:
    """Whether ``build`` may be deleted: True when no process holds it, and then none can start to
    until the block ends (the build half deletes it inside). ``switched_at``: when its env's link
    last changed (for the grace period where there is no flock; None: now)."""
    fd = None
    for mode in (os.O_RDWR, os.O_RDONLY):  # NFS emulates flock with POSIX locks: exclusive needs write access
        try:
            fd = os.open(build / MANIFEST, mode | getattr(os, "O_CLOEXEC", 0))
            break
        except FileNotFoundError:  # no stamp: an interrupted build, which nothing loads from
            yield True
            return
        except OSError:
            continue
    if fd is None:  # a stamp we may not even read: not ours to judge, so kept
        yield False
        return
    try:
        if fcntl is None:  # pragma: no cover
            superseded_for = 0.0 if switched_at is None else time.time() - switched_at
            yield superseded_for > GRACE
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False  # a running process loads from it
            return
        yield True
    finally:
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return False
    held = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (held.st_dev, held.st_ino)
