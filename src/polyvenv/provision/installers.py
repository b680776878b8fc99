"""The two ways an env gets made: uv (the default) and venv + pip (the fallback).

Both speak one small protocol: ``create`` an empty venv at a path, then
``install`` into it from requirements or from a lock file. Every command's
output goes to the build's log; a failure raises InstallerFailed with the
lines of that output that say why.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import IO, NamedTuple, Protocol, Sequence

from ..errors import BuildError, Interrupted
from ..runtime.files import venv_python
from .interpreters import Interpreter
from .probes import ProbeCache


class InstallerFailed(BuildError):
    """An installer command exited non-zero; ``reason`` is the gist of its output."""

    def __init__(self, command: str, reason: str) -> None:
        self.command = command
        self.reason = reason
        super().__init__(f"{command} failed: {reason}")


class Sources(NamedTuple):
    """Where distributions may come from."""

    offline: bool = False
    wheelhouse: Path | None = None


class Wants(NamedTuple):
    """What to install: a lock file (exact, hashed) or requirements to resolve."""

    requirements: Sequence[str] = ()
    requirements_file: Path | None = None
    lock_file: Path | None = None


class Installer(Protocol):
    name: str
    link_mode: str | None  # how installed files come from the installer's cache; None: its default

    def version(self) -> str: ...

    def create(self, target: Path, python: Interpreter, with_pip: bool, log: IO[str]) -> None: ...

    def install(self, target: Path, wants: Wants, sources: Sources, cwd: Path, log: IO[str],
                reinstall: Sequence[str] = ()) -> None: ...

    def forget(self, distributions: Sequence[str], log: IO[str]) -> bool: ...


def run_logged(argv: Sequence[str], log: IO[str], *, cwd: Path | None = None,
               env: dict[str, str] | None = None, what: str = "") -> None:
    """Run a command with its output in ``log``; raise InstallerFailed with the gist on failure.

    The command stops with polyvenv (interrupts.py): a signal raises Interrupted, not a failure.
    """
    from . import interrupts

    log.write(f"$ {' '.join(map(str, argv))}\n")
    log.flush()
    try:
        returncode, output = interrupts.run([str(a) for a in argv], cwd=cwd, env=env, sink=log)
    except Interrupted:
        log.write("[stopped: polyvenv was interrupted]\n")
        raise
    log.write(f"[exit {returncode}]\n")
    log.flush()
    if returncode:
        raise InstallerFailed(what or Path(str(argv[0])).name, _killed_by(returncode) or gist(output))


def _killed_by(returncode: int) -> str:
    """What a negative exit code says: a signal killed the command (one polyvenv did not get)."""
    import signal

    if returncode >= 0:
        return ""
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"killed by {name}"


def gist(output: str) -> str:
    """The lines of an installer's output that say what went wrong, on one line."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in output.splitlines()]
    lines = [line for line in lines if line]
    first = next((i for i, line in enumerate(lines) if re.match(r"^(error|ERROR|×)", line)), None)
    keep = lines[first:first + 8] if first is not None else lines[-3:]
    text = re.sub(r"\s+", " ", " ".join(keep))
    text = re.sub(r"^(error|ERROR):\s*", "", text)
    text = re.sub(r"\s*\b(cause|[Cc]aused by):\s*", ": ", text)
    return text[:600] or "no output"


class Uv:
    """uv from its PyPI wheel (``uv.find_uv_bin()``): hardlinks from a shared cache, unless
    ``link_mode`` says copy or clone."""

    name = "uv"

    def __init__(self, cache: ProbeCache, link_mode: str | None = None) -> None:
        from uv import find_uv_bin

        self.binary = find_uv_bin()
        self.link_mode = link_mode
        self._cache = cache

    def version(self) -> str:
        return self._cache.get(self.binary, _program_version)["version"]

    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        env["UV_PYTHON_DOWNLOADS"] = "never"  # an env's interpreter is the one asked for, never a download
        env.pop("VIRTUAL_ENV", None)
        return env

    def create(self, target: Path, python: Interpreter, with_pip: bool, log: IO[str]) -> None:
        argv = [self.binary, "venv", "--no-config", "--no-project", "--allow-existing", "--python", python.path,
                str(target)]
        if with_pip:
            argv.insert(2, "--seed")
        run_logged(argv, log, env=self.environ(), what="uv venv")

    def install(self, target: Path, wants: Wants, sources: Sources, cwd: Path, log: IO[str],
                reinstall: Sequence[str] = ()) -> None:
        argv: list[str | Path] = [self.binary, "pip"]
        if wants.lock_file:
            argv += ["sync", "--require-hashes", wants.lock_file]
        else:
            if not wants.requirements and not wants.requirements_file:
                return
            argv += ["install", *wants.requirements]
            if wants.requirements_file:
                argv += ["-r", wants.requirements_file]
        argv += ["--no-config", "--python", venv_python(target), *self.source_args(sources)]
        if self.link_mode:
            argv += ["--link-mode", self.link_mode]
        for name in reinstall:
            argv += ["--reinstall-package", name]
        run_logged(argv, log, cwd=cwd, env=self.environ(), what=f"uv pip {argv[2]}")

    def forget(self, distributions: Sequence[str], log: IO[str]) -> bool:
        """Drop these distributions from uv's cache, so the next install unpacks them afresh.

        ``--refresh-package`` is not enough: it revalidates the source, finds the
        same wheel and links the same unpacked (damaged) files again.
        """
        run_logged([self.binary, "cache", "clean", "--no-config", *distributions], log,
                   env=self.environ(), what="uv cache clean")
        return True

    @staticmethod
    def source_args(sources: Sources) -> list[str]:
        args = []
        if sources.offline:
            args += ["--offline", "--no-index"]
        if sources.wheelhouse:
            args += ["--find-links", str(sources.wheelhouse)]
        return args


class Pip:
    """``python -m venv --without-pip`` plus the pip polyvenv itself runs with (``pip --python``)."""

    name = "pip"
    link_mode = None  # pip copies every file out of the wheel: no installed file is shared

    def version(self) -> str:
        try:
            from importlib.metadata import version

            return version("pip")
        except Exception:
            raise BuildError(
                "the pip installer needs pip installed beside polyvenv; "
                f"run: {sys.executable} -m ensurepip, or use the default installer (uv)"
            ) from None

    def create(self, target: Path, python: Interpreter, with_pip: bool, log: IO[str]) -> None:
        argv = [python.path, "-m", "venv", str(target)]
        if not with_pip:
            argv.insert(3, "--without-pip")
        run_logged(argv, log, what="python -m venv")

    def install(self, target: Path, wants: Wants, sources: Sources, cwd: Path, log: IO[str],
                reinstall: Sequence[str] = ()) -> None:
        argv: list[str | Path] = [
            sys.executable, "-m", "pip", "--python", venv_python(target), "install",
            "--no-input", "--disable-pip-version-check", "--no-compile",
        ]
        if wants.lock_file:
            argv += ["--require-hashes", "--no-deps", "-r", wants.lock_file]
        else:
            if not wants.requirements and not wants.requirements_file:
                return
            argv += list(wants.requirements)
            if wants.requirements_file:
                argv += ["-r", wants.requirements_file]
        if sources.offline:
            argv += ["--no-index"]
        if sources.wheelhouse:
            argv += ["--find-links", str(sources.wheelhouse)]
        env = {k: v for k, v in os.environ.items() if k != "PIP_REQUIRE_VIRTUALENV"}
        run_logged(argv, log, cwd=cwd, env=env, what="pip install")

    def forget(self, distributions: Sequence[str], log: IO[str]) -> bool:
        return False  # pip's cache holds whole wheels, never files an env links to


def installer_named(name: str, cache: ProbeCache, link_mode: str | None = None) -> Installer:
    return Uv(cache, link_mode) if name == "uv" else Pip()


def _program_version(program: str) -> dict[str, str]:
    import subprocess

    out = subprocess.run([program, "--version"], capture_output=True, text=True, check=True).stdout
    return {"version": out.split()[1] if len(out.split()) > 1 else out.strip()}
