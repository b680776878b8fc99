"""A sync's progress as events for a program's own display (``Workspace.sync(progress=callback)``).

A host such as Blender shows builds in its own UI, so it needs what the
terminal displays (progress.py) as data, not as text to parse: the same
``started`` and ``finished`` calls a sync makes, and the same heartbeat the
plain display prints while a build runs long, each handed over as one
SyncEvent; then one ``done`` event per env with its Outcome (up-to-date
envs included, which no display shows).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple, Sequence

from .progress import _interval, last_line

if TYPE_CHECKING:
    from .sync import Outcome

KINDS = ("started", "running", "finished", "done")


class SyncEvent(NamedTuple):
    """One step of a sync, for one env.

    ``kind``: ``"started"`` (a lock, a build or a probe of ``env`` begins: ``message`` says which, with
    what), ``"running"`` (a heartbeat every $POLYVENV_PROGRESS_INTERVAL seconds while it runs:
    ``message`` is the installer's last line of output), ``"finished"`` (that step ended: ``message``
    is the line the terminal shows, such as ``built in 3.1s``), ``"done"`` (the sync is over for
    ``env``: ``message`` is ``outcome.action``, ``outcome.error`` why it failed). ``log`` is the step's log
    file, ``elapsed`` the seconds since it started (for ``done``: the seconds the env's sync took).
    """

    env: str
    kind: str
    message: str = ""
    log: Path | None = None
    elapsed: float = 0.0
    outcome: Outcome | None = None


class Events:
    """A Progress (progress.py) that hands each event to ``callback``, one call at a time (a sync's
    builder threads and the heartbeat call it; an exception it raises stops the sync)."""

    def __init__(self, callback: Callable[[SyncEvent], object], heartbeat: float | None = None) -> None:
        self.callback = callback
        self.heartbeat = heartbeat if heartbeat is not None else _interval()
        self._running: dict[str, tuple[float, Path | None]] = {}
        self._lock = threading.RLock()  # one call of the callback at a time
        self._closed = threading.Event()
        self._ticker: threading.Thread | None = None

    def started(self, name: str, what: str, log: Path | None = None) -> None:
        with self._lock:
            self._running[name] = (time.monotonic(), log)
            self.callback(SyncEvent(name, "started", what, log))
            if self._ticker is None:
                self._ticker = threading.Thread(target=self._tick, name="polyvenv-progress", daemon=True)
                self._ticker.start()

    def finished(self, name: str, outcome: str) -> None:
        with self._lock:
            since, log = self._running.pop(name, (time.monotonic(), None))
            self.callback(SyncEvent(name, "finished", outcome, log, time.monotonic() - since))

    def done(self, outcomes: Sequence[Outcome]) -> None:
        """The ``done`` event of each env, in the order the sync was asked for them."""
        with self._lock:
            for outcome in outcomes:
                self.callback(SyncEvent(outcome.name, "done", outcome.action, None, outcome.seconds, outcome))

    def _tick(self) -> None:
        while not self._closed.wait(self.heartbeat):
            with self._lock:
                for name, (since, log) in list(self._running.items()):
                    self.callback(SyncEvent(name, "running", last_line(log), log, time.monotonic() - since))

    def close(self) -> None:
        """The sync's builds are over (sync calls this); ``done`` may still follow."""
        self._closed.set()
