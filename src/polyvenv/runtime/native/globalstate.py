"""Process-global native state an extension sets while it initialises: what envs cannot each own.

One process has one set of signal handlers, one ``atexit`` list, one C locale.
Two envs whose compiled code claims them overwrite each other, whatever the
renaming does; such an env belongs in its own process (``isolation =
"process"``). Checked around each extension's initialisation, cheaply: the
handlers of the signals libraries claim (as the OS has them, so a handler set
from C counts too), the number of ``atexit`` callbacks, and the C locale.
"""

from __future__ import annotations

import atexit
import locale
import signal
import warnings
from typing import NamedTuple

from ...errors import ProcessGlobalStateWarning

# the signals libraries claim (crash reporters, profilers, servers, child reapers): checked per extension,
# so a short list keeps the check cheap (~20 sigaction calls)
_SIGNALS = tuple(getattr(signal, n) for n in (
    "SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGPIPE", "SIGCHLD", "SIGALRM", "SIGUSR1", "SIGUSR2", "SIGSEGV",
    "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT", "SIGWINCH", "SIGPROF", "SIGVTALRM", "SIGXCPU") if hasattr(signal, n))


class Snapshot(NamedTuple):
    handlers: tuple
    exit_callbacks: int
    c_locale: str


def snapshot() -> Snapshot:
    return Snapshot(_handlers(), atexit._ncallbacks(), locale.setlocale(locale.LC_ALL))


def _handlers() -> tuple:
    """Each signal's handler as the OS has it (sigaction), or as Python's signal module knows it."""
    sigaction = _sigaction()
    if sigaction is None:
        return tuple(id(signal.getsignal(s)) for s in _SIGNALS)
    import ctypes

    found = []
    for s in _SIGNALS:
        old = (ctypes.c_void_p * 32)()  # room for any libc's struct sigaction; the handler comes first
        found.append(old[0] if sigaction(int(s), None, old) == 0 else None)
    return tuple(found)


def _sigaction():
    global _SIGACTION
    if _SIGACTION is False:
        try:
            import ctypes
            import sys

            _SIGACTION = ctypes.CDLL(None).sigaction if sys.platform.startswith("linux") else None
        except (ImportError, OSError, AttributeError):
            _SIGACTION = None
    return _SIGACTION


_SIGACTION = False


def warn_if_changed(before: Snapshot, env: str, path: str) -> None:
    """Say which process-global state the extension at ``path`` changed, and what to do about it."""
    after = snapshot()
    changed = [f"the handler of {s.name}" for s, old, new in zip(_SIGNALS, before.handlers, after.handlers)
               if old != new]
    if after.exit_callbacks != before.exit_callbacks:
        changed.append("atexit callbacks")
    if after.c_locale != before.c_locale:
        changed.append(f"the C locale ({before.c_locale!r} -> {after.c_locale!r})")
    if changed:
        warnings.warn(ProcessGlobalStateWarning(
            f"env {env!r}: initialising {path} changed process-global state ({', '.join(changed)}), which every "
            "env and the host share: if another env or the host relies on it, give this env "
            "isolation = \"process\""), stacklevel=3)
