"""An env with process isolation: its code runs in a worker process of its own interpreter.

The same API as the in-process Env: ``import_module`` gives a proxy of the
env's module, and every object reached from it is a proxy too, except plain
data, which is copied (codec.py). The worker starts on first use; if it dies,
the pending call and the objects it held raise WorkerDied, and the next call
starts a fresh one; ``unload()`` stops it. A call interrupted in the host
(Ctrl-C) is cancelled in the worker; if it still runs ``GRACE`` seconds later
the worker is stopped with a WorkerRestarted warning (channel.py), so it
never blocks later calls.

The env's link is resolved once, at first use (runtime/lease.py): the worker
runs that build's own interpreter, so its ``sys.prefix`` and site-packages
are the build's, and a later ``sync`` that switches the link changes nothing
for it; the build is held until ``unload()``.

The worker is trusted like any installed package: the channel is a socket
pair only the two processes hold, but what the env's code does is its own,
host objects handed to it included (codec.py).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import NotBuilt, RemoteError, WorkerDied, WorkerRestarted
from ..runtime.files import venv_python
from ..runtime.lease import Lease, hold
from ..runtime.manifest import Manifest, read_manifest
from ..runtime.sitedir import site_packages
from .channel import Channel
from .ops import OPS
from .wire import HELLO, Closed

if TYPE_CHECKING:
    from importlib.metadata import Distribution, EntryPoints, PackagePath

WORKER = Path(__file__).with_name("worker.py")
_ENVS: "weakref.WeakSet[ProcessEnv]" = weakref.WeakSet()  # this process's, for a forked child to let go of


class ProcessEnv:
    """One env whose modules are imported and run in a worker process."""

    def __init__(self, name: str, path: str | Path, manifest: Manifest | None = None,
                 source: str | Path | None = None) -> None:
        self.name = name
        self.path = Path(path)
        self.manifest = manifest
        self.source = Path(source) if source else None
        self._lock = threading.RLock()
        self._worker: _Worker | None = None
        self._lease: Lease | None = None
        self._metadata: tuple[Path, ModuleType] | None = None  # for which build
        self._imported: list[str] = []  # what import_module was asked, in order: what reload() imports again
        self._host_names: set[str] = set()  # names the import map gave this env's modules in sys.modules
        _ENVS.add(self)

    @classmethod
    def from_path(cls, path: str | Path, name: str | None = None) -> ProcessEnv:
        """Any existing venv, no config: its own interpreter runs the worker."""
        path = Path(path).absolute()
        manifest = read_manifest(path)
        if not venv_python(path).exists():
            raise NotBuilt(f"{path} is not a virtualenv (no {venv_python(path).relative_to(path)}): process "
                           "isolation runs the env's own interpreter", path=path)
        source = manifest.source if manifest else None
        return cls(name or (manifest.name if manifest else None) or path.name, path, manifest, source)

    @property
    def build(self) -> Path | None:
        """The directory this env reads from (its link resolved at first use, held until unload()),
        or None before its first use."""
        lease = self._lease
        return lease.build if lease is not None else None

    def _resolved(self) -> Path:
        lease = self._lease
        if lease is None:
            with self._lock:
                lease = self._lease
                if lease is None:
                    lease = self._lease = hold(self.path)
                    if lease.held:  # this build's manifest, not whatever the link points at now
                        self.manifest = read_manifest(lease.build) or self.manifest
        return lease.build

    @property
    def python(self) -> Path:
        """The interpreter the worker runs: the build's own, so the worker never sees another build."""
        return venv_python(self._resolved())

    def import_module(self, name: str) -> Any:
        """A proxy of the env's module ``name``, imported in the worker (started if need be)."""
        proxy = self._channel().request("import", (name,))
        if name not in self._imported:
            self._imported.append(name)
        return proxy

    def reload(self) -> list[str]:
        """A fresh worker on the env's build as its link points now, and its ``source`` as it is now; the
        modules imported (their names as asked, ``[]`` when no worker ran).

        Every module the old worker was asked for is imported in the new one before it takes over, so a
        failure (a syntax or import error) raises ReloadFailed and leaves the old worker serving. Then
        the old worker is stopped: proxies of its objects raise WorkerDied saying the env was reloaded
        (they are not re-bound: an object's state lives in the worker that made it); take the new
        generation's objects from ``import_module`` again.
        """
        from ..errors import ReloadFailed

        with self._lock:
            old = self._worker
            if old is None or old.channel.closed:
                return []
            lease = hold(self.path)
            try:
                manifest = read_manifest(lease.build) if lease.held else None
                new = _Worker(self, venv_python(lease.build))
            except BaseException:
                lease.release()
                raise
            names = list(self._imported)
            try:
                for name in names:
                    new.channel.request("import", (name,))
            except Exception as error:  # what the import raised in the worker, or the worker's death
                new.stop()
                lease.release()
                where = f" at {error.filename}:{error.lineno}" if isinstance(error, SyntaxError) else ""
                raise ReloadFailed(f"env {self.name!r}: reload failed in its new worker{where}: "
                                   f"{type(error).__name__}: {error}; the old worker keeps serving: fix it and "
                                   "reload again", env=self.name) from error
            except BaseException:
                new.stop()
                lease.release()
                raise
            previous, self._lease = self._lease, lease
            self.manifest = manifest or self.manifest
            self._worker, self._metadata = new, None
            self._forget_host_names()  # host code importing them again gets the new worker's
        old.reloaded = True
        old.stop()
        if previous is not None:
            previous.release()
        return names

    # metadata, answered for this env only and read here: no worker needed
    @property
    def metadata(self) -> ModuleType:
        """``importlib.metadata`` answering for this env's build (as an in-process Env's code sees it)."""
        build = self._resolved()
        made = self._metadata
        if made is None or made[0] != build:
            with self._lock:  # one module, whichever threads ask first
                made = self._metadata
                if made is None or made[0] != build:
                    from ..runtime.facades import metadata_namespace

                    module = ModuleType("importlib.metadata", f"importlib.metadata of env {self.name!r}")
                    site = site_packages(build)
                    module.__dict__.update(metadata_namespace([str(r) for r in (site, self.source) if r],
                                                               self.import_module))
                    made = self._metadata = (build, module)
        return made[1]

    def distributions(self) -> Iterable[Distribution]:
        return self.metadata.distributions()  # type: ignore[no-any-return]

    def distribution(self, name: str) -> Distribution:
        return self.metadata.distribution(name)  # type: ignore[no-any-return]

    def version(self, name: str) -> str:
        """The installed version of distribution ``name`` in this env."""
        return self.distribution(name).version

    def entry_points(self, **params: Any) -> EntryPoints:
        """The env's entry points (``importlib.metadata.entry_points``; on Python 3.9, its dict by group)."""
        return self.metadata.entry_points(**params)  # type: ignore[no-any-return]

    def files(self, name: str) -> list[PackagePath] | None:
        return self.metadata.files(name)  # type: ignore[no-any-return]

    def unload(self) -> None:
        """Stop the worker: its objects are gone (their proxies raise WorkerDied); the next import
        starts a fresh worker, which reads the env afresh (a rebuilt env gives its new versions)."""
        with self._lock:
            worker, self._worker = self._worker, None
            lease, self._lease = self._lease, None
            self._metadata = None
            self._imported = []
            self._forget_host_names()
        if worker is not None:
            worker.stop()
        if lease is not None:
            lease.release()  # after the worker is gone: it no longer loads from the build

    def also_known_as(self, host_name: str) -> None:
        """Record that ``sys.modules[host_name]`` stands for one of this env's modules (the import map's):
        reload and unload remove it."""
        self._host_names.add(host_name)

    def _forget_host_names(self) -> None:
        for key in self._host_names:
            sys.modules.pop(key, None)
        self._host_names.clear()

    @property
    def pid(self) -> int | None:
        """The worker's process id, or None while no worker runs."""
        worker = self._worker
        return worker.proc.pid if worker is not None and not worker.channel.closed else None

    def __repr__(self) -> str:
        pid = self.pid
        return (f"<polyvenv.ProcessEnv {self.name!r} at {self.path} "
                f"({f'worker pid {pid}' if pid else 'no worker'})>")

    def _channel(self) -> Channel:
        worker = self._worker
        if worker is None or worker.channel.closed:
            with self._lock:
                worker = self._worker
                if worker is None or worker.channel.closed:
                    worker = self._worker = _Worker(self)
        return worker.channel


class _Worker:
    """One worker process and the host's end of its channel."""

    def __init__(self, env: ProcessEnv, python: Path | None = None) -> None:
        self.env = env.name
        self.stopped = self.stuck = self.forked = self.reloaded = False
        python = python or env.python
        if not python.exists():
            raise NotBuilt(f"env {env.name!r} has no interpreter at {python}: run `polyvenv sync {env.name}`")
        ours, theirs = socket.socketpair()
        descriptors, their_descriptors = socket.socketpair()  # wire.py: a new segment's descriptor
        self.bell, bell = socket.socketpair()
        passed = [theirs.fileno(), their_descriptors.fileno(), bell.fileno()]
        args = [str(python), "-I", str(WORKER), *map(str, passed), "1" if "numpy" in sys.modules else "0"]
        if env.source:
            args.append(str(env.source))
        try:
            # a session of its own: the terminal's Ctrl-C interrupts the host's call, not the worker
            self.proc = subprocess.Popen(args, pass_fds=passed,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            for sock in (theirs, their_descriptors, bell):
                sock.close()
        self.channel = Channel(ours, descriptors, 0, OPS, RemoteError, self.error, f"worker of env {env.name!r}",
                               serve=False, ring=self.bell.send)
        self.channel.on_close = self.bell.close
        self.channel.on_stuck = self.restart
        try:
            kind, _rid, _chain, _places, payload, _fd = self.channel.wire.recv()
        except Closed:
            self.channel.close()
            raise self.error(starting=True) from None
        import pickle

        assert kind == HELLO, kind
        _pid, _version, self.channel.peer_numpy = pickle.loads(payload)

    def error(self, starting: bool = False) -> WorkerDied:
        """What the calls of a closed channel raise: which env, what became of its worker, what next."""
        pid = self.proc.pid
        if self.forked:
            return WorkerDied(f"env {self.env!r}: its worker process (pid {pid}) serves the process this one was "
                              "forked from; import from the env again to start a worker of this process's own")
        if self.reloaded:
            return WorkerDied(f"env {self.env!r} was reloaded: its previous worker process (pid {pid}) was stopped, "
                              "and the objects it held with it; take the new ones from env.import_module(...)")
        if self.stopped:
            return WorkerDied(f"env {self.env!r} was unloaded: its worker process (pid {pid}) was stopped; "
                              "import from the env again to start a fresh worker")
        if self.stuck:
            return WorkerDied(f"env {self.env!r}: {self.why_stopped()}; the objects it held are gone, and the next "
                              "call on the env (env.import_module(...)) starts a fresh worker")
        if starting:
            return WorkerDied(f"env {self.env!r}: its worker process (pid {pid}) {self.status()} while starting "
                              "(its error output, if any, is above)")
        return WorkerDied(f"env {self.env!r}: its worker process (pid {pid}) {self.status()}; the objects it held "
                          "are gone, and the next call on the env (env.import_module(...)) starts a fresh worker")

    def status(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return "stopped answering and was killed"
        if code < 0:
            import signal

            try:
                return f"was killed by signal {-code} ({signal.Signals(-code).name})"
            except ValueError:
                return f"was killed by signal {-code}"
        return f"exited with code {code}"

    def why_stopped(self) -> str:
        return (f"its worker process (pid {self.proc.pid}) was stopped because an interrupted call did not stop "
                f"within {self.channel.grace:g} s")

    def restart(self) -> None:
        """A call given up in the host (Ctrl-C) goes on in the worker: stop the worker, so it blocks nothing."""
        import warnings

        self.stuck = True
        warnings.warn(WorkerRestarted(f"env {self.env!r}: {self.why_stopped()}; the objects it held are gone "
                                      "(their proxies raise WorkerDied) and the next call on the env starts a "
                                      "fresh worker"), stacklevel=1)
        self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def let_go(self) -> None:
        """In a forked child: the parent's worker stays the parent's (two writers would garble its
        socket), so close this copy of the channel's ends, without ending the stream for the parent."""
        self.forked = self.channel.closed = True
        self.channel.wire.sock.close()
        self.channel.wire.descriptors.close()
        self.bell.close()

    def stop(self) -> None:
        self.stopped = True
        self.channel.close()  # the worker sees the end of its socket and exits
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _forked() -> None:
    for env in list(_ENVS):
        env._lock = threading.RLock()  # another thread of the parent may have held it
        if env._worker is not None:
            env._worker.let_go()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forked)
