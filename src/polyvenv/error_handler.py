"""The command line's one error boundary (pre-commit's error_handler pattern).

Whatever goes wrong inside a command ends here and the user sees one line
first, ``polyvenv: error: ...``: polyvenv's own errors say what failed and
what to do (exit 2 for usage and configuration, 1 for failed work); a signal
says the command was interrupted (128 + its number); anything else is a bug
or an environment polyvenv did not expect, so its full traceback goes to a
log file under the user cache dir, the line says where, and the exit code is
1. ``SystemExit`` passes: a script run by `polyvenv python` chooses its own.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from typing import Iterator

from .errors import PolyvenvError

LOG_NAME = "polyvenv.log"


class Outcome:
    """The exit code the boundary settled on (0 until something failed), and whether an
    unexpected error's traceback is printed too (``-v``, known once the options are parsed)."""

    def __init__(self, verbose: bool = False) -> None:
        self.code = 0
        self.verbose = verbose


def log_path() -> str:
    """Where unexpected tracebacks go: ``<user cache dir>/polyvenv.log`` ($POLYVENV_CACHE_DIR)."""
    from .runtime.locations import user_cache_dir

    return os.path.join(user_cache_dir(), LOG_NAME)


class _Style:
    color: bool | None = None  # None: auto (a terminal, and no NO_COLOR)


def use_color(when: str) -> None:
    """``--color``: "always", "never" or "auto" (colored on a terminal unless NO_COLOR is set)."""
    _Style.color = {"always": True, "never": False}.get(when)


def error(message: str) -> None:
    color = _Style.color
    if color is None:
        color = sys.stderr.isatty() and "NO_COLOR" not in os.environ
    prefix = "\x1b[1;31merror\x1b[0m" if color else "error"
    print(f"polyvenv: {prefix}: {message}", file=sys.stderr)


@contextlib.contextmanager
def error_handler(verbose: bool = False) -> Iterator[Outcome]:
    """Turn every exception of the body into one line on stderr and an exit code in the Outcome."""
    outcome = Outcome(verbose)
    try:
        yield outcome
    except PolyvenvError as e:
        error(str(e))
        for extra in getattr(e, "problems", [])[1:]:
            error(extra)
        outcome.code = e.exit_code
    except KeyboardInterrupt:
        from .provision.interrupts import received

        error(f"interrupted ({received().name}) before it finished: run the same command again to finish its work")
        outcome.code = 128 + received()
    except Exception as e:  # the boundary: anything else is unexpected, and said so in one line
        where = _write_log(e)
        kind = type(e).__name__
        saved = f"the full traceback is in {where}" if where else "the traceback could not be saved"
        said = f": {_one_line(e)}" if str(e) else ""
        error(f"unexpected {kind}{said}; {saved}: please report it with that file")
        if outcome.verbose:
            traceback.print_exception(type(e), e, e.__traceback__, file=sys.stderr)
        outcome.code = 1


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]


def _write_log(e: BaseException) -> str | None:
    """Write the traceback, with the command line and the versions, to the log; its path or None.

    The log holds the last unexpected error only (as pre-commit's does): it never grows."""
    from . import __version__

    path = log_path()
    text = (f"### {time.strftime('%Y-%m-%d %H:%M:%S')} polyvenv {__version__}, Python {sys.version.split()[0]} "
            f"({sys.executable})\n$ polyvenv {' '.join(sys.argv[1:])}\n"
            + "".join(traceback.format_exception(type(e), e, e.__traceback__)) + "\n")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    except OSError:
        return None
    return path
