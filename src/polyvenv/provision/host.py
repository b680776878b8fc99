"""`polyvenv python`: the host interpreter with the workspace's import map installed.

It behaves as ``python`` would for the user's code: ``-c CODE``, ``-m MODULE``,
``SCRIPT`` or an interactive prompt, ``sys.argv`` as python sets it, and an
exception in the user's code prints the user's traceback (none of polyvenv's
frames above it) and exits 1. A module or script that does not exist is one
line, as every polyvenv failure is.

``--watch``: a watch (runtime/watch.py) runs beside the user's code, on every
env it loads, with stderr as its log: each reload is one line there, a failed
one keeps the old generation running. The user's code rebinds what it took
from a reloaded env by importing it again, or in a ``polyvenv.on_reload``
callback. The watch stops when the code ends, however it ends (an exception,
``sys.exit``, Ctrl-C), before the exit code is the code's.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import TracebackType
from typing import Callable, Sequence

from ..config import Config
from ..errors import PolyvenvError, UsageError


class NoSuchModule(PolyvenvError):
    """``polyvenv python -m MODULE`` found no such module (the host's path and the import map)."""


def run_python(config: Config, argv: Sequence[str], watch: float | None = None) -> int:
    """Sync the workspace, install its import map, and run ``argv`` as python's own arguments; with
    ``watch`` (an interval in seconds), reload the envs it loads when they change meanwhile."""
    from ..runtime.import_map import install_import_map
    from ..runtime.workspace import Workspace
    from .sync import raise_first_failure, sync

    raise_first_failure(sync(config, quiet=True))
    workspace = Workspace(config)
    install_import_map(workspace)
    if watch is None:
        return _run(config, list(argv))
    with workspace.watch(interval=watch, log=sys.stderr):
        return _run(config, list(argv))


def _run(config: Config, argv: list[str]) -> int:
    import runpy

    if not argv:
        import code

        code.interact(banner=f"polyvenv python: import map of {config.describe()} installed", local={})
        return 0
    if argv[0] == "-c" and len(argv) > 1:
        sys.argv = ["-c", *argv[2:]]
        return _as_python(lambda: exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"}))
    if argv[0] == "-m" and len(argv) > 1:
        _check_module(argv[1])
        sys.argv = [argv[1], *argv[2:]]
        return _as_python(lambda: runpy.run_module(argv[1], run_name="__main__", alter_sys=True))
    if argv[0].startswith("-"):
        raise UsageError(f"python {argv[0]}: only -c CODE and -m MODULE are python's options here (`--watch` and "
                         "`--interval S` come first); polyvenv's own go before `python` (e.g. "
                         f"`polyvenv {argv[0]} ... python SCRIPT`)")
    script = Path(argv[0])
    if not script.is_file():
        raise UsageError(f"cannot run {script}: no such file")
    sys.argv = argv
    sys.path.insert(0, str(script.resolve().parent))
    return _as_python(lambda: runpy.run_path(str(script), run_name="__main__"))


def _check_module(name: str) -> None:
    """Raise NoSuchModule unless ``name`` can be found (python's own "No module named" case)."""
    import importlib.util

    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a parent package missing, or a name like "a..b"
        found = None
    if found is None:
        raise NoSuchModule(f"python -m {name}: no module named {name!r} on the host's path nor in the import map "
                           "of this workspace: check the name, or add an env that `provides` it")


def _as_python(run: Callable[[], object]) -> int:
    """Run the user's code; an exception it raises is printed as python prints it, from the
    user's first frame on, and the exit code is 1, 130 for Ctrl-C (SystemExit keeps its own code)."""
    try:
        run()
    except SystemExit:
        raise
    except BaseException as e:
        users = _users_frames(e.__traceback__)
        sys.excepthook(type(e), e.with_traceback(users), users)  # the hook prints the exception's own
        return 128 + signal.SIGINT if isinstance(e, KeyboardInterrupt) else 1  # as a shell reports python's
    return 0


def _users_frames(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` without its leading frames of polyvenv and runpy (the machinery that started the code)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    while tb is not None and tb.tb_next is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not (filename.startswith(here + os.sep) or "runpy" in os.path.basename(filename)):
            break
        tb = tb.tb_next
    return tb
