"""The probe: what of an env loads side by side, proven by loading it in a scratch process.

``isolation = "auto"`` (at ``sync``, after each build) and ``polyvenv check``
run it. The scratch process is the host's interpreter with polyvenv's runtime:
it loads the env under its aliases and imports every top-level module of the
env and each of its submodules, with the guard on (a module of a real name of
the env appearing in ``sys.modules`` while the env imports is a leak: the env
would bind the host's copy) and the process-global-state checks on
(runtime/native/globalstate.py). A plain copy of the same distributions is
importable under the real names in that process, so leaks show instead of
failing, and then that copy is imported too, as a host would have it: a copy
that breaks beside the env's (state set on objects both share) shows as well.
The build itself is never touched.

Each module is then ``loaded``; ``refused`` (polyvenv's own error, with its
reason); ``unsafe`` (it loaded, but leaked, changed state the host shares, or
broke the host's copy); ``failed`` (the library's own error, which a plain venv
of the env gives too: checked in the env's own interpreter, so that is never
blamed on polyvenv); ``broken`` (an error only side by side); or ``crashed``
(the scratch process died or hung: caught, and the probe goes on with the
rest in a fresh one). The verdict is ``namespace`` when no module is refused,
unsafe, broken or crashed, else ``process``, with those modules as reasons.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import IO, Any, Callable, Iterable, NamedTuple

STATUSES = ("loaded", "refused", "unsafe", "failed", "broken", "crashed")
AGAINST = ("refused", "unsafe", "broken", "crashed")  # what sends an env to a worker
SKIPPED = ("__main__", "tests", "test", "conftest")  # submodules a probe does not import (a CLI's main, test suites)
_NOT_LIBRARIES = ("_virtualenv",)  # what a venv's tools leave in site-packages
MAX_MODULES = 3000  # per env: a bound on the walk
MAX_RESTARTS = 5  # scratch processes started again after a crash, per probe
TIMEOUT = 60.0  # seconds one module may take before the probe calls it hung ($POLYVENV_PROBE_TIMEOUT)
_REASONS = 10  # reasons a verdict keeps


class ModuleResult(NamedTuple):
    module: str
    status: str  # one of STATUSES
    reason: str = ""


class Verdict(NamedTuple):
    """What a probe found: the isolation it calls for, why, and each module's result."""

    isolation: str  # "namespace" or "process"
    reasons: tuple[str, ...]
    modules: tuple[ModuleResult, ...] = ()
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        return {s: n for s in STATUSES if (n := sum(m.status == s for m in self.modules))}

    def summary(self) -> str:
        """``namespace (34 modules: 33 loaded, 1 failed)``."""
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items())
        return f"{self.isolation} ({len(self.modules)} module{'s' * (len(self.modules) != 1)}" + (
            f": {counts})" if counts else ")")

    def as_json(self) -> dict[str, Any]:
        return {"verdict": self.isolation, "reasons": list(self.reasons), "seconds": round(self.seconds, 3),
                "counts": self.counts(), "modules": [m._asdict() for m in self.modules]}


def probe(name: str, build: Path, *, source: str | Path | None = None, shared: Iterable[str] = (),
          log: IO[str] | None = None, timeout: float | None = None) -> Verdict:
    """Probe env ``name`` built at ``build`` (its manifest read there) in scratch processes.

    Each module's result is written to ``log`` as it comes (a progress display shows its last line).
    """
    from .abi import mismatch
    from .manifest import read_manifest
    from .sitedir import site_packages

    started = time.monotonic()
    manifest = read_manifest(build)
    site = site_packages(build)
    roots = [str(r) for r in (site, source) if r]
    differs = mismatch(manifest, [Path(r) for r in roots])
    if differs:
        return Verdict("process", (f"its Python is not the host's: {differs}",), (), time.monotonic() - started)
    timeout = timeout or _timeout()
    say = (lambda line: (log.write(line + "\n"), log.flush())) if log else (lambda line: None)
    results: dict[str, ModuleResult] = {}
    host_errors: dict[str, str | None] = {}  # what the host's own copy of each module raised beside the env's
    never: list[str] = []
    for _attempt in range(MAX_RESTARTS + 1):
        request = {"name": name, "roots": roots, "site": str(site) if site else None, "shared": list(shared),
                   "done": list(results), "host_done": list(host_errors), "never": never}
        current, died = _scratch(request, results, host_errors, say, timeout)
        if died is None:
            break
        if not current:  # before its first module: the env itself could not be loaded
            say(f"# the probe could not load the env: {died}")
            return Verdict("process", (f"the probe could not load the env: {died}",), tuple(results.values()),
                           time.monotonic() - started)
        never.append(current)
        module = current.partition(":")[2] if current.startswith("host:") else current
        if current.startswith("host:"):
            died = f"importing the host's own copy beside the env's: {died}"
        results[module] = ModuleResult(module, "crashed", died)
        say(f"{module}: crashed: {died}")
    else:
        say(f"# gave up after {MAX_RESTARTS + 1} scratch processes crashed")
    for module, error in host_errors.items():
        if error is not None and module in results and results[module].status == "loaded":
            results[module] = ModuleResult(module, "unsafe", f"the host's own copy fails beside the env's: {error}")
    _check_plain(results, manifest.python if manifest and manifest.python else None, build, say, timeout)
    modules = tuple(results.values())
    against = [m for m in modules if m.status in AGAINST]
    reasons = [f"{m.module}: {m.status}: {m.reason}" for m in against[:_REASONS]]
    if len(against) > _REASONS:
        reasons.append(f"and {len(against) - _REASONS} more modules")
    return Verdict("process" if against else "namespace", tuple(reasons), modules, time.monotonic() - started)


def _timeout() -> float:
    try:
        return max(0.1, float(os.environ.get("POLYVENV_PROBE_TIMEOUT", TIMEOUT)))
    except ValueError:
        return TIMEOUT


def _bytecode() -> list[str]:
    """Where the plain copy's bytecode goes: polyvenv's cache, never the build (its files stay as installed),
    and the next probe of the same files reads it from there."""
    from .locations import user_cache_dir

    return ["-X", f"pycache_prefix={os.path.join(user_cache_dir(), 'probe-bytecode')}"]


def _scratch(request: dict[str, Any], results: dict[str, ModuleResult], host_errors: dict[str, str | None],
             say: Callable[[str], object], timeout: float) -> tuple[str, str | None]:
    """Run one scratch process of the host's interpreter on ``request``; gather what it reports.
    Return the module it was importing when it died or hung (with how), or ("", None) if it finished."""
    package = Path(__file__).resolve().parents[1]  # this very polyvenv, whatever else sys.path holds
    code = ("import importlib.util as u, sys\n"
            f"s = u.spec_from_file_location('polyvenv', {str(package / '__init__.py')!r}, "
            f"submodule_search_locations=[{str(package)!r}])\n"
            "m = sys.modules['polyvenv'] = u.module_from_spec(s); s.loader.exec_module(m)\n"
            "from polyvenv.runtime.probe import main; main()")

    def event(data: dict[str, Any]) -> None:
        if "host_error" in data:
            host_errors[data["module"]] = data["host_error"]
        elif "status" in data:
            result = ModuleResult(data["module"], data["status"], data.get("reason", ""))
            results[result.module] = result
            if result.status != "error":
                say(f"{result.module}: {result.status}" + (f": {result.reason}" if result.reason else ""))

    return _run([sys.executable, *_bytecode(), "-X", "faulthandler", "-c", code], request, event, timeout)


def _run(argv: list[str], request: dict[str, Any], event: Callable[[dict[str, Any]], None],
         timeout: float) -> tuple[str, str | None]:
    """Run ``argv`` with ``request`` as its last argument and a pipe for its events (its fd appended
    to the request); return ("", None) when it said it was done, else the module it had started last
    and how it ended (killed by a signal, exited, or hung and killed after ``timeout`` s)."""
    import selectors
    import subprocess
    import tempfile

    read_end, write_end = os.pipe()
    current, done = "", False
    with tempfile.TemporaryFile("w+") as output, tempfile.TemporaryDirectory(prefix="polyvenv-probe-") as cwd:
        try:
            proc = subprocess.Popen([*argv, json.dumps({**request, "fd": write_end})], pass_fds=[write_end], cwd=cwd,
                                    stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True)
        finally:
            os.close(write_end)
        hung = False
        try:
            with os.fdopen(read_end, "rb") as events, selectors.DefaultSelector() as selector:
                selector.register(events, selectors.EVENT_READ)
                buffer = b""
                while not done:
                    if not selector.select(timeout):
                        hung = True
                        break
                    chunk = os.read(events.fileno(), 65536)
                    if not chunk:
                        break
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        data = json.loads(line)
                        if data.get("event") == "start":
                            current = data["module"]
                        elif data.get("event") == "done":
                            done = True
                        else:
                            event(data)
            code = None if hung else proc.wait(timeout=timeout)  # it said done, or closed its end: it is ending
        except subprocess.TimeoutExpired:
            code = None
        finally:
            if proc.poll() is None:  # hung, or the probe itself was interrupted: the scratch process goes too
                proc.kill()
                proc.wait()
        if done:
            return "", None
        if hung or code is None:
            return current, f"no answer in {timeout:g} s (hung; killed)"
        output.seek(0)
        said = [line.strip() for line in output.read().splitlines() if line.strip()]
        last = f" ({said[-1][:200]})" if said else ""
        if code < 0:
            import signal

            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
            fatal = next((line for line in said if line.startswith("Fatal Python error")), "")
            return current, how + (f" ({fatal[:200]})" if fatal else last)
        return current, f"the process exited with code {code}{last}"


_PLAIN = r"""
import json, os, sys, traceback
request = json.loads(sys.argv[-1])
out = os.fdopen(request["fd"], "w", buffering=1)
for module in request["modules"]:
    if module in request["never"]:
        continue
    out.write(json.dumps({"event": "start", "module": module}) + "\n")
    out.flush()
    try:
        __import__(module)
        error = None
    except BaseException as e:
        error = "%s: %s" % (type(e).__name__, str(e).splitlines()[0][:300] if str(e) else "")
    out.write(json.dumps({"module": module, "plain": error}) + "\n")
    out.flush()
out.write(json.dumps({"event": "done"}) + "\n")
out.flush()
os._exit(0)
"""


def _check_plain(results: dict[str, ModuleResult], python: str | None, build: Path,
                 say: Callable[[str], object], timeout: float) -> None:
    """Each module that failed side by side, imported in a plain venv (the env's own interpreter):
    ``failed`` if it fails there too, ``broken`` if only side by side."""
    from .files import venv_python

    pending = [m for m, r in results.items() if r.status == "error"]
    plain: dict[str, str | None] = {}
    never: list[str] = []
    interpreter = str(venv_python(build)) if venv_python(build).exists() else python
    for _attempt in range(MAX_RESTARTS + 1):
        todo = [m for m in pending if m not in plain and m not in never]
        if not todo or interpreter is None:
            break

        def event(data: dict[str, Any]) -> None:
            plain[data["module"]] = data["plain"]

        request = {"modules": todo, "never": never}
        current, died = _run([interpreter, "-I", *_bytecode(), "-c", _PLAIN], request, event, timeout)
        if died is None:
            break
        never.append(current)
        plain[current] = f"the process {died}"
    for module in pending:
        error = results[module].reason
        if module in plain and plain[module] is None:
            results[module] = ModuleResult(module, "broken", f"{error} (only side by side: it imports in a plain venv "
                                                              "of the env)")
        else:
            there = plain.get(module) or error
            results[module] = ModuleResult(module, "failed", f"{there} (in a plain venv of the env too)")
        say(f"{module}: {results[module].status}: {results[module].reason}")


# -- the scratch process -----------------------------------------------------------


def main() -> None:
    """The scratch process: load the env, import its modules one by one, report each on the pipe."""
    import warnings

    request = json.loads(sys.argv[-1])
    out = os.fdopen(request["fd"], "w", buffering=1)

    def say(**data: Any) -> None:
        out.write(json.dumps(data) + "\n")
        out.flush()

    from ..errors import EnvImportError, PolyvenvError, ProcessGlobalStateWarning
    from .env import Env
    from .native import globalstate

    globalstate.REPLACED = True  # values replaced on shared objects count too (a host checks sizes only)

    env = Env(request["name"], request["roots"], request["shared"])
    names = env.names
    if request["site"]:  # the plain copy, under the real names: after the standard library, before the rest
        at = next((i for i, p in enumerate(sys.path) if "site-packages" in p), len(sys.path))
        sys.path.insert(at, request["site"])
    done, host_done, never = set(request["done"]), set(request["host_done"]), set(request["never"])
    roots = tuple(os.path.join(os.path.realpath(r), "") for r in request["roots"])
    queue = [t for t in sorted(names.own) if t not in _NOT_LIBRARIES]
    seen: set[str] = set()
    loaded = []
    while queue and len(seen) < MAX_MODULES:
        module = queue.pop(0)
        if module in seen or module in never:
            continue
        seen.add(module)
        report = module not in done  # one a crashed scratch process reported: imported again, not reported
        say(event="start", module=module)  # what the parent blames if this process dies now
        before = set(sys.modules)
        status, reason, imported = "loaded", "", None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                imported = env.import_module(module)
            except EnvImportError as e:
                status, reason = "error", _error(e)
            except PolyvenvError as e:
                status, reason = "refused", str(e)
            except BaseException as e:  # the library's own (or so it seems: checked in a plain venv)
                status, reason = "error", _error(e)
        leaked = sorted(k for k in set(sys.modules) - before if k.partition(".")[0] in names.own)
        for key in leaked:
            sys.modules.pop(key, None)
        state = [str(w.message) for w in caught if issubclass(w.category, ProcessGlobalStateWarning)]
        file = getattr(imported, "__file__", None)
        where = os.path.realpath(file) if isinstance(file, str) and file else ""
        if leaked:
            status, reason = "unsafe", (f"its code imported the host's {', '.join(leaked[:3])} (a module of a real "
                                        "name appeared: the env would bind another version's objects)")
        elif state:
            status, reason = "unsafe", state[0]
        elif imported is not None and where and not where.startswith(roots):
            status, reason = "unsafe", f"the env got {where}, not its own module"
        if report:
            say(module=module, status=status, reason=reason)
        if imported is None:
            continue
        if status != "error":
            loaded.append(module)
        for child in _submodules(imported, module):
            queue.append(child)
    if request["site"]:
        _import_host_copies(loaded, host_done, never, say)
    say(event="done")
    os._exit(0)  # now: threads or atexit handlers a module left must not keep the scratch process alive


def _submodules(module: Any, name: str) -> list[str]:
    import pkgutil

    path = getattr(module, "__path__", None)
    if path is None:
        return []
    try:
        found = sorted(info.name for info in pkgutil.iter_modules(list(path)))
    except Exception:
        return []
    return [f"{name}.{sub}" for sub in found if sub not in SKIPPED and sub.isidentifier()]


def _import_host_copies(modules: list[str], done: set[str], never: set[str], say: Callable[..., None]) -> None:
    """Import the plain copy of each module under its real name, as a host with its own copy would:
    a copy that fails beside the env's is reported (its module is then unsafe)."""
    import importlib

    for module in modules:
        if module in done or f"host:{module}" in never:
            continue
        say(event="start", module=f"host:{module}")
        try:
            importlib.import_module(module)
        except BaseException as e:
            say(module=module, host_error=_error(e))
        else:
            say(module=module, host_error=None)


def _error(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300]}" if text else type(e).__name__
