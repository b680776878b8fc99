"""Watching a workspace's loaded envs: reload what changed on disk, then tell the host.

``Workspace.watch(callback, interval)`` starts one daemon thread that, every
``interval`` seconds, takes a *snapshot* of each loaded env: the stat
identities (inode, size, mtime) of every file in its ``source`` tree
(``os.scandir``, ``__pycache__`` and dot-directories left out) and the build
its link points at. The first is taken before ``watch`` returns, so an edit
made right after it is reloaded. A snapshot that differs from the last one reloaded is
reloaded once it holds still for one more interval, so a burst of edits (an
editor saving several files, a ``sync`` switching the link) gives one reload,
two if the burst outlasts an interval; an edit made during a reload differs
from the snapshot taken before it and is reloaded next. ``Env.reload()``
itself decides, per top-level name, what to reload (runtime/generation.py).

Then ``callback(env, changed)``: the names reloaded (the host unregisters the
old generation's hooks and registers the new one's, as Blender add-ons do with
``unregister()``/``register()``), or the ReloadFailed when the new generation
did not import (the old one keeps running), which is also warned as a
ReloadWarning. An env that nothing changed in is never reloaded. An
in-process env first loaded after the watch started is checked against what
it loaded (``Env.reload()`` compares the files its loaders read), so an edit
made between its load and the watch's next look is reloaded too; a process
env's reload always starts a fresh worker, so its baseline is what the watch
first sees.

``log=stream`` (``polyvenv python --watch`` gives stderr) tells each reload
in one line there: which env, the names reloaded, how long it took; and,
instead of warning them, the failures: a ReloadFailed's line says the old
generation keeps running. ``polyvenv.on_reload(callback)`` registers a
callback every watch of the process calls as it calls its own: the way a
script run by ``polyvenv python --watch``, which has no watch of its own,
rebinds what it took from a reloaded env.

Add-on folders: ``watch(callback, addons="addons/", **sync_options)`` also
watches that directory the way ``Workspace.discover`` reads it: one env per
folder holding a requirements.txt (what is there when ``watch`` returns is
the baseline: the host discovers and syncs it itself). When its folders
change, then hold still for an interval, the watch thread runs ``discover``,
and tells the host each step as ``callback(env, AddonChange(kind, ...))``:

- a folder dropped in is built (``Workspace.sync(name, **sync_options)``:
  ``progress=``, ``offline=``, ``wheelhouse=``, ...; the build half is
  imported then, never for a watch without ``addons``) and its env made:
  ``"installed"``, the host imports and registers it;
- a folder taken out: ``"removing"`` first, its modules still loaded, so the
  host unregisters it (its ``unregister()`` may still import; wait there for
  calls in flight); then ``Workspace.remove_env`` unloads it and deletes its
  env: ``"removed"``. ``env`` is the env object the host loaded from, None if
  this process never made one;
- a build that failed: ``callback(None, AddonChange("failed", ...))`` and a
  ReloadWarning; it is built again when a file of its folder changes.

A source folder that is gone is an uninstall, never an edit to reload. The
add-on directory costs one more stat walk of its folders per interval.

Costs: polling stats every file of every loaded env's source each interval
(about 1 µs a file: a 1000-file source tree costs ~1 ms every 0.5 s) and
reacts within one to two intervals. With ``watchfiles`` importable (optional,
``watcher="watchfiles"``, or ``"auto"``), the thread sleeps in the kernel's
file notification (inotify, FSEvents) instead and wakes on the first change,
then compares snapshots the same way: no stat walk while nothing changes, a
Rust extension and a thread of its own in the host.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Dict, FrozenSet, List, NamedTuple, Optional, Tuple, Union

if TYPE_CHECKING:
    from ..errors import ReloadFailed
    from ..process.env import ProcessEnv
    from .env import Env
    from .workspace import Workspace

Snapshot = Tuple[str, FrozenSet[Tuple[str, int, int, int]]]
Callback = Callable[["Env | ProcessEnv | None", "Union[list[str], ReloadFailed, AddonChange]"], Any]
_SETTLE_LIMIT = 10  # intervals a source may keep changing before it is reloaded anyway
_ON_RELOAD: List[Callback] = []  # polyvenv.on_reload's callbacks: every watch calls them


def on_reload(callback: Callback) -> Callback:
    """Have every watch of this process call ``callback(env, changed)`` after its own callback: the names
    it reloaded, the ReloadFailed that kept the old generation, or an AddonChange. For a script run by
    ``polyvenv python --watch``, whose watch it does not make: rebind there what it took from the env
    (``import plug`` again gives the new generation). Returns ``callback``, so it is a decorator too."""
    _ON_RELOAD.append(callback)
    return callback


class AddonChange(NamedTuple):
    """What a watch of an add-on directory does to one add-on folder (``kind``): ``"installed"`` (built
    and its env made: import and register it), ``"removing"`` (its folder is gone: unregister it now, its
    modules are unloaded when the callback returns), ``"removed"`` (unloaded, its env deleted) or
    ``"failed"`` (its build failed; built again when a file of its folder changes). ``detail``: the
    build for ``"installed"``, what ``remove_env`` deleted for ``"removed"``, why for ``"failed"``."""

    kind: str
    name: str
    folder: Path
    detail: str


class Watch:
    """A running watch (a context manager; ``stop()`` ends it). ``reloads``: how many reloads it made."""

    def __init__(self, workspace: Workspace, callback: Optional[Callback] = None, interval: float = 0.5,
                 watcher: str = "auto", addons: Union[str, Path, None] = None, log: Optional[IO[str]] = None,
                 **sync_options: Any) -> None:
        if interval <= 0:
            raise ValueError(f"watch interval must be positive, not {interval!r}")
        if watcher not in ("auto", "poll", "watchfiles"):
            raise ValueError(f"watcher must be 'auto', 'poll' or 'watchfiles', not {watcher!r}")
        self.workspace = workspace
        self.callback = callback
        self.interval = interval
        self.watcher = _watcher(watcher)
        self.reloads = 0
        self.log = log
        self.addons = None if addons is None else Path(addons).resolve()
        if self.addons is None and sync_options:
            raise ValueError(f"watch: {', '.join(sync_options)} are options of the add-ons' sync: pass addons=DIR too")
        self._sync_options = sync_options
        self._addons_seen: Optional[FrozenSet[Tuple[str, int, int, int]]] = None  # the folders last acted on
        self._addons_pending: Optional[FrozenSet[Tuple[str, int, int, int]]] = None
        self._failed: set[str] = set()  # add-ons whose build failed: built again when their folder changes
        self._seen: Dict[str, Snapshot] = {}  # what each env was last reloaded (or first seen) at
        self._pending: Dict[str, Tuple[Snapshot, int]] = {}  # a change seen, waiting to hold still
        for name, _env in self._loaded():  # what is on disk now is the baseline: a change after this is new
            self._seen[name] = self._snapshot(name)
        if self.addons is not None:
            self._addons_seen = self._addon_folders()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="polyvenv-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """End the watch; a reload under way finishes first."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        if self.watcher == "watchfiles":
            self._run_notified()
            return
        self.poll()
        while not self._stop.wait(self.interval):
            self.poll()

    def _run_notified(self) -> None:
        import watchfiles

        self.poll()
        while not self._stop.is_set():
            paths = self._paths()
            for _changes in watchfiles.watch(*paths, stop_event=self._stop, yield_on_timeout=True,
                                             rust_timeout=int(self.interval * 1000), debounce=int(self.interval * 1000),
                                             raise_interrupt=False):
                self.poll()
                if self._paths() != paths:  # an env loaded or unloaded: watch its paths too
                    break

    def _paths(self) -> list[str]:
        paths = {str(self.workspace.config.envs_dir)}
        if self.addons is not None:
            paths.add(str(self.addons))
        for name, _env in self._loaded():
            source = self.workspace.config.env(name).source
            if source is not None and Path(source).is_dir():
                paths.add(str(source))
        return sorted(paths)

    def poll(self) -> None:
        """One look at the add-on directory and every loaded env; install, uninstall and reload what
        has held still for an interval since it changed."""
        if self.addons is not None:
            self._poll_addons()
        for name, env in self._loaded():
            source = self.workspace.config.env(name).source
            if source is not None and not os.path.isdir(source):
                continue  # a folder taken out is an uninstall (above), not an edit to reload
            now = self._snapshot(name)
            if name not in self._seen:  # loaded since the last look
                self._seen[name] = now
                from .env import Env

                if isinstance(env, Env):  # its reload() compares with what it loaded (a ProcessEnv's restarts)
                    self._reload(env, counted=False)
                continue
            if now == self._seen[name]:
                self._pending.pop(name, None)
                continue
            pending = self._pending.get(name)
            if pending is None or (pending[0] != now and pending[1] < _SETTLE_LIMIT):
                self._pending[name] = (now, 0 if pending is None else pending[1] + 1)
                continue  # still changing: wait for it to hold still
            del self._pending[name]
            self._seen[name] = now  # what this reload reads, at the latest: later edits differ from it
            self._reload(env)
        for name in set(self._seen) - {name for name, _ in self._loaded()}:
            self._seen.pop(name, None)  # unloaded: seen afresh when loaded again
            self._pending.pop(name, None)

    def _reload(self, env: Env | ProcessEnv, counted: bool = True) -> None:
        """Reload ``env`` and tell what it did; ``counted=False``: a check that reloads only if something
        changed (an env first seen), so not counted in ``reloads`` when nothing did."""
        import time

        from ..errors import ReloadFailed

        outcome: Union[list[str], ReloadFailed]
        started = time.perf_counter()
        try:
            outcome = env.reload()
        except ReloadFailed as failed:
            self._warn(str(failed))
            outcome = failed
        except Exception as error:  # never the thread's end: the next change is watched for all the same
            self._warn(f"env {env.name!r}: reload failed: {type(error).__name__}: {error}")
            return
        if counted or outcome != []:
            self.reloads += 1
        if outcome != []:
            if self.log is not None and isinstance(outcome, list):
                self._say(f"env {env.name!r}: reloaded {', '.join(outcome)} in "
                          f"{(time.perf_counter() - started) * 1000:.0f} ms")
            self._tell(env, env.name, outcome)

    def _tell(self, env: Env | ProcessEnv | None, name: str,
              change: Union[list[str], ReloadFailed, AddonChange]) -> None:
        """``callback(env, change)``, then each ``on_reload`` callback's; what one raises is warned (or
        logged), never the thread's end."""
        for callback in [self.callback, *_ON_RELOAD]:
            if callback is None:
                continue
            try:
                callback(env, change)
            except Exception as error:
                self._warn(f"env {name!r}: the watch callback {callback!r} raised {type(error).__name__}: {error}")

    def _warn(self, message: str) -> None:
        """A ReloadWarning, or with ``log``, a line there."""
        if self.log is not None:
            self._say(message)
            return
        import warnings

        from ..errors import ReloadWarning

        warnings.warn(ReloadWarning(message), stacklevel=2)

    def _say(self, line: str) -> None:
        assert self.log is not None
        try:
            print(f"polyvenv: {line}", file=self.log, flush=True)
        except (OSError, ValueError):  # the stream closed: the watch goes on
            pass

    # -- the add-on directory -------------------------------------------------------------

    def _poll_addons(self) -> None:
        """Act on the add-on directory once its folders differ from the last look acted on and have held
        still for an interval (a folder being copied in is installed once it is complete)."""
        now = self._addon_folders()
        if self._addons_seen is None or now == self._addons_seen:
            self._addons_seen, self._addons_pending = now, None
            return
        if now != self._addons_pending:
            self._addons_pending = now
            return
        self._addons_seen, self._addons_pending = now, None
        self._discover()

    def _addon_folders(self) -> FrozenSet[Tuple[str, int, int, int]]:
        """The add-on directory's folders holding a requirements file, with every file's stat identity."""
        from ..config import Discovery, discover

        assert self.addons is not None
        files: set[tuple[str, int, int, int]] = set()
        if self.addons.is_dir():
            for spec in discover(Discovery(self.addons)):
                if spec.source is not None:
                    _walk(str(spec.source), files, depth=0)
        return frozenset(files)

    def _discover(self) -> None:
        """What discover found changed: uninstall the folders gone, install those added (and those
        that failed before, their folder changed since)."""
        from ..errors import PolyvenvError

        assert self.addons is not None
        try:
            found = self.workspace.discover(self.addons)
        except PolyvenvError as error:
            self._warn(f"add-ons in {self.addons}: {error}")
            return
        for name in found.gone:
            self._uninstall(name)
        self._failed &= set(found.envs)
        for name in sorted(set(found.added) | self._failed):
            self._install(name)

    def _install(self, name: str) -> None:
        from ..errors import PolyvenvError

        assert self.addons is not None
        folder = self.addons / name
        try:
            self.workspace.sync(name, **self._sync_options)
            env = self.workspace.env(name)
        except PolyvenvError as error:
            self._failed.add(name)
            self._warn(f"add-on {name!r} ({folder}) was not installed: {error}")
            self._tell(None, name, AddonChange("failed", name, folder, str(error)))
            return
        self._failed.discard(name)
        self._tell(env, name, AddonChange("installed", name, folder, str(self.workspace.env_dir(name).resolve())))

    def _uninstall(self, name: str) -> None:
        from ..errors import PolyvenvError

        assert self.addons is not None
        env = self.workspace._envs.get(name)
        self._tell(env, name, AddonChange("removing", name, self.addons / name, ""))
        try:
            removed = self.workspace.remove_env(name)
        except PolyvenvError as error:
            self._warn(f"add-on {name!r} was not uninstalled: {error}")
            return
        self._failed.discard(name)
        self._seen.pop(name, None)
        self._pending.pop(name, None)
        self._tell(env, name, AddonChange("removed", name, self.addons / name, removed))

    def _loaded(self) -> list[tuple[str, Env | ProcessEnv]]:
        """The workspace's envs loaded now (imported from, not unloaded since)."""
        envs = dict(self.workspace._envs)
        return [(name, env) for name, env in sorted(envs.items()) if env.build is not None]

    def _snapshot(self, name: str) -> Snapshot:
        source = self.workspace.config.env(name).source
        files: set[tuple[str, int, int, int]] = set()
        if source is not None:
            _walk(str(source), files, depth=0)
        return os.path.realpath(self.workspace.env_dir(name)), frozenset(files)


def _walk(directory: str, files: set[tuple[str, int, int, int]], depth: int) -> None:
    """Every file under ``directory`` with its stat identity (bounded depth: a link loop ends)."""
    if depth > 32:
        return
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name == "__pycache__":
            continue
        try:
            if entry.is_dir():
                _walk(entry.path, files, depth + 1)
            else:
                st = entry.stat()
                files.add((entry.path, st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            continue


def _watcher(asked: str) -> str:
    """``"poll"`` or ``"watchfiles"``: what was asked, ``"auto"`` being watchfiles when importable."""
    if asked == "poll":
        return asked
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        if asked == "watchfiles":
            from ..errors import UsageError

            raise UsageError("watch(watcher='watchfiles') needs the watchfiles package, which is not "
                             "importable: install it (pip install watchfiles), or watch with watcher='poll'") from None
        return "poll"
    return "watchfiles"
