"""Showing builds as they happen: a live display on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO


class Progress(Protocol):
    def started(self, name: str, what: str) -> None: ...

    def finished(self, name: str, outcome: str) -> None: ...

    def close(self) -> None: ...


class Lines:
    """One line per event, for logs and pipes (and CI)."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet

    def started(self, name: str, what: str) -> None:
        self._say(f"polyvenv: {name}: {what}...")

    def finished(self, name: str, outcome: str) -> None:
        self._say(f"polyvenv: {name}: {outcome}")

    def _say(self, line: str) -> None:
        if not self.quiet:
            self.stream.write(line + "\n")  # one write per line: builder threads never interleave within one
            self.stream.flush()

    def close(self) -> None:
        pass


class Live:
    """A rich live table: one row per env being built, with a spinner and elapsed time."""

    def __init__(self) -> None:
        import threading

        from rich.console import Console
        from rich.live import Live as RichLive

        self._rows: dict[str, tuple[str, float, bool]] = {}
        self._lock = threading.Lock()
        self._console = Console(stderr=True)
        self._live = RichLive(get_renderable=self._render, console=self._console,
                              refresh_per_second=8, transient=False)
        self._live.start()

    def _render(self):
        from rich.spinner import Spinner
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        with self._lock:
            rows = list(self._rows.items())
        for name, (text, since, done) in rows:
            mark = "" if done else Spinner("dots")
            table.add_row(mark, f"[bold]{name}[/]", text, "" if done else f"{time.monotonic() - since:.1f}s")
        return table

    def started(self, name: str, what: str) -> None:
        with self._lock:
            self._rows[name] = (what + "...", time.monotonic(), False)

    def finished(self, name: str, outcome: str) -> None:
        with self._lock:
            self._rows[name] = (outcome, time.monotonic(), True)

    def close(self) -> None:
        self._live.stop()


def for_terminal(quiet: bool = False) -> Progress:
    if not quiet and sys.stderr.isatty():
        return Live()
    return Lines(quiet=quiet)
