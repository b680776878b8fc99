"""Process-global state an env sets while it imports: what envs cannot each own.

One process has one set of signal handlers, one ``atexit`` list, one C locale,
and one copy of each standard-library module and class. Two envs whose code
claims them overwrite each other, whatever the renaming does; such an env
belongs in its own process (``isolation = "process"``). Checked cheaply:

- around each extension's initialisation (``snapshot``/``warn_if_changed``):
  the handlers of the signals libraries claim (as the OS has them, so a
  handler set from C counts too), the number of ``atexit`` callbacks, and the
  C locale;
- around each outermost import of an env's module (``shared_snapshot``/
  ``warn_if_shared_changed``): the attributes of the standard library's (and
  the env's ``shared``) modules and classes, which the host shares. An
  interface library setting ``__implemented__`` on ``collections.abc`` classes
  makes the host's copy of that library fail (RecursionError), and until then
  the host's answers come from the env's objects.
"""

from __future__ import annotations

import atexit
import locale
import signal
import warnings
from types import ModuleType
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


# Attributes the standard library itself sets lazily on its own objects, whoever triggers it.
_LAZY = frozenset({
    "__warningregistry__",  # a module that warned once
    "__slotnames__",  # copyreg caches it on a class whose instance was copied or pickled
})
_IMMUTABLE = 1 << 8  # Py_TPFLAGS_IMMUTABLETYPE: builtin and static types, which no code can change


class SharedSnapshot(NamedTuple):
    """The namespaces of the modules and classes an env shares with the host, copied."""

    namespaces: list[tuple[str, object, dict[str, object]]]  # (qualified name, object, its attributes then)
    shared: frozenset[str] = frozenset()  # the host's top-level names the env imports as they are


def shared_snapshot(shared: frozenset[str] | set[str] = frozenset()) -> SharedSnapshot:
    """A copy of the attributes of every loaded standard-library module (and of the top-level names
    ``shared``), and of every class they define that code can change (a few thousand dict copies:
    1-3 ms; which classes a module holds is remembered while its namespace keeps its size)."""
    import sys

    from ..names import STDLIB

    namespaces: list[tuple[str, object, dict[str, object]]] = []
    seen: set[int] = set()
    for key, module in list(sys.modules.items()):
        top = key.partition(".")[0]
        if key == "__main__" or not (top in STDLIB or top in shared) or not isinstance(module, ModuleType):
            continue
        names = vars(module)
        namespaces.append((key, module, names.copy()))
        for cls in _classes(module, names):
            if id(cls) not in seen:
                seen.add(id(cls))
                namespaces.append((f"{cls.__module__}.{cls.__qualname__}", cls, cls.__dict__.copy()))
    return SharedSnapshot(namespaces, frozenset(shared))


def _classes(module: ModuleType, names: dict[str, object]) -> list[type]:
    """The classes in ``module``'s namespace that code can change, remembered by the namespace's size."""
    known = _CLASSES.get(id(module))
    if known is None or known[0] is not module or known[1] != len(names):
        classes = [v for v in list(names.values()) if isinstance(v, type) and not v.__flags__ & _IMMUTABLE]
        known = _CLASSES[id(module)] = (module, len(names), classes)
    return known[2]


_CLASSES: dict[int, tuple[ModuleType, int, list[type]]] = {}


def shared_changes(before: SharedSnapshot) -> list[str]:
    """``module.attr`` / ``module.Class.attr`` for each attribute set, replaced or deleted since ``before``.

    What the standard library does lazily by itself is left out: a submodule appearing on its
    package, a global initialised from None on first use, a warning registry, copyreg's cache; and
    so is what a module the env shares with the host sets when the env imports it first (the host's
    own typing_extensions installing its backports into ``typing``): the value is the host's.
    """
    changed = []
    for name, obj, then in before.namespaces:
        now = obj.__dict__
        try:
            if now == then:  # the common case, at C speed: values compared by identity first
                continue
        except Exception:  # a replaced value whose == raises (an array): changed
            pass
        for attr in sorted(now.keys() | then.keys()):
            old, new = then.get(attr, _ABSENT), now.get(attr, _ABSENT)
            if old is new or attr in _LAZY or isinstance(new, ModuleType) or (
                    isinstance(obj, ModuleType) and old is None) or _defined_in(new, before.shared):
                continue
            changed.append(f"{name}.{attr}")
    return changed


_ABSENT = object()


def _defined_in(value: object, tops: frozenset[str]) -> bool:
    """Whether ``value`` (a function or class, or an instance of one) comes from a module of ``tops``."""
    if not tops:
        return False
    named = value if isinstance(value, type) or callable(value) and hasattr(value, "__qualname__") else type(value)
    module = getattr(named, "__module__", None)
    return isinstance(module, str) and module.partition(".")[0] in tops


def warn_if_shared_changed(before: SharedSnapshot, env: str, module: str) -> list[str]:
    """Warn that importing the env's ``module`` set attributes on objects the host shares; return them."""
    changed = shared_changes(before)
    if changed:
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        warnings.warn(ProcessGlobalStateWarning(
            f"env {env!r}: importing {module} set attributes on objects the host and every env share "
            f"({', '.join(changed[:5])}{more}): the host's own copy of that code may fail or answer from the "
            "env's objects; give this env isolation = \"process\" (or \"auto\")"), stacklevel=3)
    return changed
