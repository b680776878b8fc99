"""Find the Python interpreter an env asks for, and what it is.

``python = "3.12"`` means the newest CPython 3.12.x found on PATH or under
pyenv, with the GIL (``"3.13t"`` or ``"3.13+freethreaded"`` asks for a
free-threaded build, whose ABI differs: a namespace env must match the
host's); a value with a path separator is a path. uv's own discovery is not
used: it stops at the first pyenv shim that cannot run the asked version,
and from 3.14 it may choose a free-threaded build; uv gets the exact path.
"""

from __future__ import annotations

import json
import os
import re
import sys
import sysconfig
from pathlib import Path
from typing import NamedTuple

from ..errors import InterpreterNotFound
from .probes import ProbeCache

_PROBE = (  # valid Python 2 too: an old interpreter is identified, then refused by name and version
    "import json, sys, sysconfig; print(json.dumps({"
    "'version': '%d.%d.%d' % tuple(sys.version_info[:3]), "
    "'implementation': getattr(getattr(sys, 'implementation', None), 'name', 'cpython'), "
    "'platform': sysconfig.get_platform(), "
    "'abi': (getattr(getattr(sys, 'implementation', None), 'cache_tag', None) or '') + getattr(sys, 'abiflags', '')"
    "}))"
)
_VERSION_REQUEST = re.compile(r"^(?:c?python)?(\d+(?:\.\d+){0,2})(t|\+freethreaded|\+gil)?$")


class Interpreter(NamedTuple):
    """An interpreter's identity: what goes into an env's spec hash."""

    path: str
    version: str
    implementation: str
    platform: str
    abi: str = ""  # "cpython-312", "cpython-313t" (free-threaded); not in the spec hash (the path and version are)

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


def current() -> Interpreter:
    """The interpreter running polyvenv (its base, outside any venv): the default for envs."""
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    path = base if base.exists() else Path(sys.executable)
    return Interpreter(
        path=os.path.realpath(path),
        version="%d.%d.%d" % sys.version_info[:3],
        implementation=sys.implementation.name,
        platform=sysconfig.get_platform(),
        abi=sys.implementation.cache_tag + getattr(sys, "abiflags", ""),
    )


def resolve(request: str | None, root: Path, cache: ProbeCache) -> Interpreter:
    """The interpreter for an env's ``python`` setting (None: the one running polyvenv)."""
    if request is None:
        return current()
    if is_path(request):
        path = (root / request).resolve()
        if not path.is_file() or not os.access(path, os.X_OK):
            raise InterpreterNotFound(f"python = {request!r}: {path} is not an executable file")
        try:
            return _supported(request, _identify(str(path), cache))
        except InterpreterNotFound as e:
            raise InterpreterNotFound(f"python = {request!r}: {e}") from None
    match = _VERSION_REQUEST.match(request)
    if not match:
        raise InterpreterNotFound(
            f"python = {request!r}: expected a version such as '3.12' or a path to an interpreter"
        )
    wanted, threaded = match.group(1), match.group(2) in ("t", "+freethreaded")
    found, broken = [], []
    for candidate in _candidates(wanted):
        try:
            interpreter = _identify(candidate, cache)
        except InterpreterNotFound as e:
            broken.append(str(e))
            continue
        if (interpreter.implementation == "cpython" and _matches(interpreter.version, wanted)
                and interpreter.abi.endswith("t") == threaded):
            found.append(interpreter)
    if found:
        return _supported(request, max(found, key=lambda i: _version_key(i.version)))
    if broken and not any(_matches(i.version, wanted) for i in _all_known(cache)):
        raise InterpreterNotFound(f"python = {request!r}: found {broken[0]}")
    if not found:
        seen = sorted({i.version for i in _all_known(cache)}, key=_version_key)
        raise InterpreterNotFound(
            f"python = {request!r}: no CPython {wanted} found on PATH or under pyenv"
            f" (found: {', '.join(seen) or 'none'}); install it or give a path"
        )
    raise AssertionError("unreachable")


def _supported(request: str, interpreter: Interpreter) -> Interpreter:
    if not interpreter.version.startswith("3."):
        raise InterpreterNotFound(
            f"python = {request!r}: {interpreter.path} is Python {interpreter.version}; "
            "polyvenv builds envs for Python 3 only: install a Python 3 or give its path"
        )
    return interpreter


def _version_key(version: str) -> tuple[int, ...]:
    """"3.10.2" as (3, 10, 2): versions sort as versions, 3.9 before 3.10."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


def is_path(request: str) -> bool:
    """Whether a ``python`` setting names a file (else it is a version request)."""
    return os.sep in request or request.startswith(".")


def _matches(version: str, wanted: str) -> bool:
    return version == wanted or version.startswith(wanted + ".")


def _candidates(wanted: str) -> list[str]:
    """Executables that might be the wanted version, most specific names first."""
    import glob
    import shutil

    parts = wanted.split(".")
    names = [f"python{'.'.join(parts[:2])}"] if len(parts) >= 2 else []
    names += [f"python{parts[0]}", "python"]
    paths: list[str] = []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or "shims" in Path(directory).parts:  # pyenv shims fail for inactive versions
            continue
        for name in names:
            exe = shutil.which(name, path=directory)
            if exe:
                paths.append(os.path.realpath(exe))
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for directory in sorted(glob.glob(os.path.join(pyenv_root, "versions", f"{wanted}*"))):
        exe = next((e for e in (os.path.join(directory, "bin", n) for n in ("python3", "python2", "python"))
                    if os.path.exists(e)), None)
        if exe:
            paths.append(os.path.realpath(exe))
    return list(dict.fromkeys(paths))


def _all_known(cache: ProbeCache) -> list[Interpreter]:
    known = []
    for candidate in _candidates("3"):
        try:
            known.append(_identify(candidate, cache))
        except InterpreterNotFound:
            pass
    return known


def _identify(path: str, cache: ProbeCache) -> Interpreter:
    real = os.path.realpath(path)
    try:
        facts = cache.get(real, _probe, needs=("abi",))
    except OSError as e:
        raise InterpreterNotFound(f"{path}: cannot run: {e.strerror}") from None
    return Interpreter(path=real, **facts)


def _probe(path: str) -> dict[str, str]:
    import subprocess

    try:  # -E -s -S rather than -I: Python 2 has no -I, and the probe must identify it to refuse it by name
        proc = subprocess.run([path, "-E", "-s", "-S", "-c", _PROBE], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        raise InterpreterNotFound(f"{path}: not a working Python interpreter (it did not answer in 30 s)") from None
    try:
        if proc.returncode == 0:
            return json.loads(proc.stdout)
    except ValueError:
        pass
    said = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["no output"])[-1]
    raise InterpreterNotFound(f"{path}: not a working Python interpreter (it exited {proc.returncode}: {said[:200]})")
