"""Showing builds as they happen: a live display on a terminal, plain lines otherwise.

A build can take minutes (a resolver backtracking, an sdist compiling), so
either display shows it is alive: the live one redraws each running env with
its elapsed seconds and the installer's last line of output (read from the
build's log, which the installer writes as it goes); the plain one, for pipes
and CI, prints a "still ..." line per running env every ``HEARTBEAT`` seconds
($POLYVENV_PROGRESS_INTERVAL), with the same two facts.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple, Protocol, TextIO

HEARTBEAT = 10.0  # seconds between the plain display's "still ..." lines


class Progress(Protocol):
    def started(self, name: str, what: str, log: Path | None = None) -> None: ...

    def finished(self, name: str, outcome: str) -> None: ...

    def close(self) -> None: ...


class _Running(NamedTuple):
    what: str
    since: float
    log: Path | None


def last_line(log: Path | None) -> str:
    """The last non-empty line the installer wrote to ``log`` (its tail only is read), or ""."""
    if log is None:
        return ""
    try:
        with open(log, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip() and not line.startswith(("#", "["))]
    text = lines[-1] if lines else ""
    if text.startswith("$ "):  # a command starting: its program's name, not its path
        program, _, arguments = text[2:].partition(" ")
        text = f"$ {os.path.basename(program)} {arguments}"
    return text if len(text) <= 100 else text[:97] + "..."


class Lines:
    """One line per event, for logs and pipes (and CI), and a "still ..." line while a build runs long."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False, heartbeat: float | None = None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.heartbeat = heartbeat if heartbeat is not None else _interval()
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._ticker: threading.Thread | None = None

    def started(self, name: str, what: str, log: Path | None = None) -> None:
        self._say(f"polyvenv: {name}: {what}...")
        with self._lock:
            self._running[name] = _Running(what, time.monotonic(), log)
            if self._ticker is None and not self.quiet:
                self._ticker = threading.Thread(target=self._tick, name="polyvenv-progress", daemon=True)
                self._ticker.start()

    def finished(self, name: str, outcome: str) -> None:
        with self._lock:
            self._running.pop(name, None)
        self._say(f"polyvenv: {name}: {outcome}")

    def _tick(self) -> None:
        while not self._closed.wait(self.heartbeat):
            with self._lock:
                running = list(self._running.items())
            for name, run in running:
                doing = run.what.split(" (")[0]
                latest = last_line(run.log)
                self._say(f"polyvenv: {name}: still {doing}, {time.monotonic() - run.since:.0f}s"
                          + (f": {latest}" if latest else ""))

    def _say(self, line: str) -> None:
        if not self.quiet:
            self.stream.write(line + "\n")  # one write per line: builder threads never interleave within one
            self.stream.flush()

    def close(self) -> None:
        self._closed.set()


class Live:
    """A rich live table: one row per env being built, with a spinner, elapsed time and the
    installer's last line; started on the first build, so a no-op draws nothing."""

    def __init__(self, color: bool = True) -> None:
        self._rows: dict[str, tuple[str, float, bool, Path | None]] = {}
        self._lock = threading.Lock()
        self._color = color
        self._live: Any = None

    def _render(self) -> Any:
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 1))
        with self._lock:
            rows = list(self._rows.items())
        for name, (text, since, done, log) in rows:
            mark = "" if done else Spinner("dots")
            latest = "" if done else last_line(log)
            elapsed = "" if done else f"{time.monotonic() - since:.1f}s"
            table.add_row(mark, f"[bold]{name}[/]", Text(text, no_wrap=True, overflow="ellipsis"), elapsed,
                          Text(latest, style="dim", no_wrap=True, overflow="ellipsis"))
        return table

    def _start(self) -> None:
        if self._live is None:
            from rich.console import Console
            from rich.live import Live as RichLive

            console = Console(stderr=True, **({} if self._color else {"color_system": None}))  # None: no styles
            self._live = RichLive(get_renderable=self._render, console=console, refresh_per_second=8,
                                  transient=False)
            self._live.start()

    def started(self, name: str, what: str, log: Path | None = None) -> None:
        with self._lock:
            self._rows[name] = (what + "...", time.monotonic(), False, log)
        self._start()

    def finished(self, name: str, outcome: str) -> None:
        with self._lock:
            self._rows[name] = (outcome, time.monotonic(), True, None)
        self._start()

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()


def for_terminal(quiet: bool = False, live: bool = True, color: bool | None = None) -> Progress:
    """The live display on a terminal (unless ``live`` is False: --no-progress), plain lines otherwise."""
    if not quiet and live and sys.stderr.isatty():
        return Live(color=sys.stderr.isatty() and "NO_COLOR" not in os.environ if color is None else color)
    return Lines(quiet=quiet)


def _interval() -> float:
    try:
        return max(0.05, float(os.environ.get("POLYVENV_PROGRESS_INTERVAL", HEARTBEAT)))
    except ValueError:
        return HEARTBEAT

