"""Stopping a build on Ctrl-C or SIGTERM: the installers stop with polyvenv, nothing switches after.

A signal reaches polyvenv alone (``kill PID``, a service manager stopping it)
or its whole process group (a terminal's Ctrl-C, which reaches the installers
too). Either way every installer command polyvenv runs is stopped (SIGTERM,
then SIGKILL after a short grace), no build starts, no env is switched from
then on, and what the signal stopped raises Interrupted: an installer killed
by it is the interruption, never reported as a failed install. The command
then says in one line what was switched and what was not.

The installers stay in polyvenv's process group, so a ``kill -9`` of that
group still takes them down with it.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import IO, Any, Sequence

from ..errors import Interrupted

GRACE = 0.5  # seconds an installer has to exit after SIGTERM before it is killed
SETTLE = 0.2  # seconds an installer's own death by SIGINT/SIGTERM waits for polyvenv's signal

_stop = threading.Event()
_received = signal.SIGINT
_children: set[Any] = set()  # the subprocess.Popen of every installer command running
_changed = threading.Condition()


def handle_signals() -> None:
    """Make SIGINT and SIGTERM stop the installers and raise KeyboardInterrupt (main thread only)."""
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)


def received() -> signal.Signals:
    """The signal that stopped polyvenv (SIGINT when none was seen: a KeyboardInterrupt)."""
    return _received


def requested() -> bool:
    return _stop.is_set()


def check() -> None:
    """Raise Interrupted once a stop was requested: called before anything that must not happen after."""
    if _stop.is_set():
        raise Interrupted(f"interrupted ({_received.name})", _received)


def clear() -> None:
    """Forget an earlier stop: a host may sync again after catching an interrupted one."""
    global _received
    _received = signal.SIGINT
    _stop.clear()


def stop() -> None:
    """Stop every installer command running and keep any from starting; return once they are gone."""
    import time

    _stop.set()
    with _changed:
        running = list(_children)
    for proc in running:
        _send(proc, signal.SIGTERM)
    deadline = time.monotonic() + GRACE
    with _changed:
        while _children and _changed.wait(max(0.0, deadline - time.monotonic())):
            pass
        running = list(_children)
    for proc in running:
        _send(proc, signal.SIGKILL)
    with _changed:
        _changed.wait_for(lambda: not _children, timeout=GRACE)


def run(argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        sink: IO[str] | None = None) -> tuple[int, str]:
    """Run an installer command to its end: its exit code and its output (stdout and stderr).

    Each line of output is written to ``sink`` (the build's log) as it comes, so progress can
    show the installer's last line while it runs. Raises Interrupted instead if polyvenv was
    stopped before or while it ran.
    """
    import subprocess

    with _changed:
        check()  # under the lock: stop() sees this command, or this command sees stop()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        _children.add(proc)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if sink is not None:
                sink.write(line)
                sink.flush()
        proc.wait()
    except BaseException:  # a KeyboardInterrupt in the main thread (`create`): the command goes too
        proc.kill()
        proc.wait()
        raise
    finally:
        proc.stdout.close()  # type: ignore[union-attr]
        with _changed:
            _children.discard(proc)
            _changed.notify_all()
    if proc.returncode in (-signal.SIGINT, -signal.SIGTERM):
        _stop.wait(SETTLE)  # a terminal's Ctrl-C reaches the installer and polyvenv at once
    check()
    return proc.returncode, "".join(lines)


def acquire(lock: Any) -> None:
    """Take a filelock lock, waiting for it as long as it takes unless polyvenv is stopped meanwhile."""
    import filelock

    while True:
        check()
        try:
            lock.acquire(timeout=0.1)
            return
        except filelock.Timeout:
            continue


def _send(proc: Any, sig: signal.Signals) -> None:
    try:
        proc.send_signal(sig)
    except (ProcessLookupError, OSError):
        pass  # already gone


def _on_signal(signum: int, frame: Any) -> None:
    global _received
    if _stop.is_set():
        return  # the first one is being handled: it ends the command in a moment
    _received = signal.Signals(signum)
    _stop.set()
    raise KeyboardInterrupt
