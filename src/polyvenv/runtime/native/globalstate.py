"""Process-global state an env sets while it imports: what envs cannot each own.

One process has one set of signal handlers, one ``atexit`` list, one C locale,
and one copy of each standard-library module and class. Two envs whose code
claims them overwrite each other, whatever the renaming does; such an env
belongs in its own process (``isolation = "process"``). Checked cheaply:

- around each extension's initialisation (``snapshot``/``warn_if_changed``):
  the handlers of the signals libraries claim (as the OS has them, so a
  handler set from C counts too), the number of ``atexit`` callbacks, and the
  C locale;
- around each outermost import of an env's module (``SHARED.changes()``, then
  ``warn_if_shared_changed``): the attributes of the standard library's
  modules and classes, which the host and every env share (what the env's
  ``shared`` names are for is the user's to say, and left alone). An
  interface library setting ``__implemented__`` on ``collections.abc`` classes
  makes the host's copy of that library fail (RecursionError), and until then
  the host's answers come from the env's objects.
"""

from __future__ import annotations

import atexit
import itertools
import locale
import operator
import signal
import warnings
from types import ModuleType
from typing import Any, NamedTuple

from ...errors import ProcessGlobalStateWarning

# the signals libraries claim (crash reporters, profilers, servers, child reapers): checked per extension,
# so a short list keeps the check cheap (~20 sigaction calls)
_SIGNALS = tuple(getattr(signal, n) for n in (
    "SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGPIPE", "SIGCHLD", "SIGALRM", "SIGUSR1", "SIGUSR2", "SIGSEGV",
    "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT", "SIGWINCH", "SIGPROF", "SIGVTALRM", "SIGXCPU") if hasattr(signal, n))
_NUMBERS = tuple(int(s) for s in _SIGNALS)


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
    old = (ctypes.c_void_p * 32)()  # room for any libc's struct sigaction; the handler comes first
    for s in _NUMBERS:  # one buffer for all: made per signal, it was half the cost (twice per extension)
        found.append(old[0] if sigaction(s, None, old) == 0 else None)
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


class SharedObjects:
    """A copy of the namespace of every loaded standard-library module, and of every class they define
    that code can change, kept up to date.

    ``changes()`` says what was set, replaced or deleted since its last call and refreshes the copy
    of only what changed (and of modules loaded since): the common case is one dict comparison per
    namespace at C speed (~1 ms for a few thousand), so it can run around every import of an env's
    module. Around: once before, which takes in what the host (or the stdlib's lazy state) changed
    meanwhile, and once after, whose answer is the env's doing.
    """

    def __init__(self) -> None:
        import threading

        self._names: list[str] = []  # of each object copied: a module, or a class one of them holds
        self._objects: list[object] = []
        # and its namespace: a module's dict, a class's live mappingproxy (taken once: vars() of each at every
        # call made a proxy per class, half the cost of the common case)
        self._namespaces: list[Any] = []
        self._copies: list[dict[str, object]] = []  # each object's namespace when last seen
        self._sizes: list[int] = []  # and its size
        self._ids: set[int] = set()
        self._modules: dict[str, ModuleType] = {}  # the modules copied, by name
        self._scanned = 0  # len(sys.modules) when it was last scanned for modules to copy
        self._keys: list[str] = []  # the keys it held then, in order (no env's module is kept alive by them)
        self._looked: dict[str, object] = {}  # what the standard library's keys held when last looked at
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Let go of every copy (no env is loaded: nothing to check until one is, which starts afresh)."""
        with self._lock:
            for held in (self._names, self._objects, self._namespaces, self._copies, self._sizes, self._keys):
                held.clear()
            self._ids.clear()
            self._modules.clear()
            self._looked.clear()
            self._scanned = 0

    def changes(self, shared: frozenset[str] | set[str] = frozenset()) -> list[str]:
        """``module.attr`` / ``module.Class.attr`` for each attribute set or deleted since the last call
        (nothing on the first), and with ``REPLACED`` on, each one replaced too.

        Attributes set or deleted change a namespace's size, which a host's imports check for at C
        speed (~0.1 ms); values replaced need every value compared (1-4 ms for a few thousand
        namespaces), which the probe does (runtime/probe.py). What the standard library does lazily
        by itself is left out: a submodule appearing on its package, a global initialised from None
        on first use, a warning registry, copyreg's cache; and so is what a module the env shares
        with the host sets when the env imports it first (the host's own typing_extensions
        installing its backports into ``typing``): the value is the host's.
        """
        import operator

        tops = frozenset(shared)
        replaced = REPLACED
        changed: list[str] = []
        with self._lock:
            try:  # the common case, at C speed: no namespace changed
                same = (all(map(operator.eq, self._namespaces, self._copies)) if replaced
                        else list(map(len, self._namespaces)) == self._sizes)
            except Exception:  # a replaced value whose == raises (an array): look one by one
                same = False
            if not same:
                for i, (name, obj, then) in enumerate(zip(self._names, self._objects, list(self._copies))):
                    now = self._namespaces[i]
                    try:
                        if (now == then) if replaced else len(now) == self._sizes[i]:
                            continue
                    except Exception:
                        pass
                    changed += _differences(name, obj, then, now, tops, replaced)
                    self._copies[i], self._sizes[i] = now.copy(), len(now)
                    if isinstance(obj, ModuleType):
                        self._add_classes(obj)
            self._add_modules()
        return changed

    def _add(self, name: str, obj: object) -> None:
        self._ids.add(id(obj))
        self._names.append(name)
        self._objects.append(obj)
        self._namespaces.append(vars(obj))
        self._copies.append(vars(obj).copy())
        self._sizes.append(len(self._copies[-1]))

    def _add_modules(self) -> None:
        import sys

        from ..names import STDLIB

        if len(sys.modules) == self._scanned:
            return
        now = dict(sys.modules)
        self._scanned = len(now)
        # only the entries added since the last scan, and the standard library's replaced since, found at C
        # speed (a pass in Python over every module, at each outermost import of an env, was 30 ms for 30 envs):
        # where no entry was removed meanwhile, those added are the keys after the ones it had (dicts keep order)
        keys, seen, looked = list(now), self._keys, self._looked
        added = keys[len(seen):] if keys[:len(seen)] == seen else list(filter((now.keys() - seen).__contains__, keys))
        replaced = set(itertools.compress(looked, map(operator.is_not, map(now.get, looked), looked.values())))
        self._keys = keys
        for key in added + list(filter(replaced.__contains__, keys)) if replaced else added:
            module = now[key]
            if key.partition(".")[0] not in STDLIB:
                continue
            looked[key] = module
            if self._modules.get(key) is module or key == "__main__" or not isinstance(module, ModuleType) \
                    or id(module) in self._ids:
                continue
            self._modules[key] = module
            self._add(key, module)
            self._add_classes(module)

    def _add_classes(self, module: ModuleType) -> None:
        for value in list(vars(module).values()):
            if isinstance(value, type) and id(value) not in self._ids and not value.__flags__ & _IMMUTABLE:
                self._add(f"{value.__module__}.{value.__qualname__}", value)


def _differences(name: str, obj: object, then: dict[str, object], now: dict[str, object],
                 shared: frozenset[str], replaced: bool) -> list[str]:
    changed = []
    for attr in sorted(now.keys() | then.keys() if replaced else now.keys() ^ then.keys()):
        old, new = then.get(attr, _ABSENT), now.get(attr, _ABSENT)
        if old is new or attr in _LAZY or isinstance(new, ModuleType) or (
                isinstance(obj, ModuleType) and old is None) or _defined_in(new, shared):
            continue
        changed.append(f"{name}.{attr}")
    return changed


SHARED = SharedObjects()
REPLACED = False  # whether SHARED.changes() compares every value too (the probe turns it on)
_ABSENT = object()


def _defined_in(value: object, tops: frozenset[str]) -> bool:
    """Whether ``value`` (a function or class, or an instance of one) comes from a module of ``tops``."""
    if not tops:
        return False
    named = value if isinstance(value, type) or callable(value) and hasattr(value, "__qualname__") else type(value)
    module = getattr(named, "__module__", None)
    return isinstance(module, str) and module.partition(".")[0] in tops


def warn_if_shared_changed(env: str, module: str, shared: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Warn that importing the env's ``module`` set attributes on objects the host shares (since the
    last ``SHARED.changes()``, which the import began with); return them."""
    changed = SHARED.changes(shared)
    if changed:
        more = f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        warnings.warn(ProcessGlobalStateWarning(
            f"env {env!r}: importing {module} set attributes on objects the host and every env share "
            f"({', '.join(changed[:5])}{more}): the host's own copy of that code may fail or answer from the "
            "env's objects; give this env isolation = \"process\" (or \"auto\")"), stacklevel=3)
    return changed
