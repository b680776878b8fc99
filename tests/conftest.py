"""Shared fixtures: generated wheelhouses, workspaces on disk, and the real CLI in a subprocess."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Callable

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from wheelgen import c_extension_wheel, pure_wheel  # noqa: E402

PYENV = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
MINORS = ("3.9", "3.10", "3.11", "3.12", "3.13")


def find_python(minor: str) -> str | None:
    """The newest CPython ``minor`` under pyenv (``$PYENV_ROOT/versions``), else ``python<minor>`` on
    PATH (pyenv's shims left out: they fail for versions not selected), or None."""
    found = sorted(glob.glob(str(PYENV / f"{minor}.*" / "bin" / "python3")),
                   key=lambda p: [int(x) for x in Path(p).parent.parent.name.split(".") if x.isdigit()])
    found = [p for p in found if Path(p).parent.parent.name.split(".")[:2] == minor.split(".")]
    if found:
        return found[-1]
    path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep) if "shims" not in Path(d).parts)
    return shutil.which(f"python{minor}", path=path)


@pytest.fixture(scope="session", autouse=True)
def private_cache_dir(tmp_path_factory):
    """polyvenv's own per-user cache (no-op memos, probes for `create`) kept inside the test run."""
    os.environ["POLYVENV_CACHE_DIR"] = str(tmp_path_factory.mktemp("polyvenv-cache"))


def python_or_skip(minor: str) -> str:
    """The CPython ``minor`` found, or a skip that says it is missing (never silently)."""
    python = find_python(minor)
    if python is None:
        pytest.skip(f"CPython {minor} not found under {PYENV} nor on PATH")
    return python


@pytest.fixture(params=MINORS)
def any_python(request) -> str:
    """Each CPython 3.9-3.13 found; a missing one is skipped with a message, never silently."""
    return python_or_skip(request.param)


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """Generated wheels: alpha 1.0/2.0, beta (needs alpha), a console-script tool, a big package,
    and cspeed with a C extension compiled for the interpreter running the tests."""
    wh = tmp_path_factory.mktemp("wheelhouse")
    pure_wheel(wh, "alpha", "1.0")
    pure_wheel(wh, "alpha", "2.0")
    pure_wheel(wh, "beta", "1.0", requires=["alpha>=1"])
    pure_wheel(wh, "greeter", "1.0", scripts={"greet": "greeter:main"})
    pure_wheel(wh, "othergreeter", "1.0", scripts={"greet": "othergreeter:main"})
    pure_wheel(wh, "bigpkg", "1.0", modules=1500)
    c_extension_wheel(wh, sys.executable)
    return wh


class Workspace:
    """A project directory with a polyvenv.toml, driven through the real CLI."""

    def __init__(self, root: Path, wheelhouse: Path) -> None:
        self.root = root
        self.wheelhouse = wheelhouse

    def write(self, body: str, *, offline: bool = True, filename: str = "polyvenv.toml") -> Path:
        head = f'wheelhouse = "{self.wheelhouse}"\noffline = {str(offline).lower()}\n' if offline else ""
        path = self.root / filename
        path.write_text(head + textwrap.dedent(body))
        return path

    def cli(self, *args: str, check: bool = True, cwd: Path | None = None, **kw) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "polyvenv", *args], cwd=cwd or self.root,
                              capture_output=True, text=True, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"polyvenv {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    def status(self) -> dict[str, dict]:
        return {e["name"]: e for e in json.loads(self.cli("list", "--json").stdout)}

    def env_python(self, name: str) -> Path:
        return self.root / ".polyvenv" / name / "bin" / "python"

    def run_in(self, name: str, code: str) -> str:
        return subprocess.run([str(self.env_python(name)), "-c", code], capture_output=True,
                              text=True, check=True).stdout.strip()

    def builds(self) -> list[dict]:
        history = self.root / ".polyvenv" / ".logs" / "builds.jsonl"
        return [json.loads(line) for line in history.read_text().splitlines()] if history.exists() else []


@pytest.fixture
def workspace(tmp_path, wheelhouse) -> Workspace:
    root = tmp_path / "project"
    root.mkdir()
    return Workspace(root, wheelhouse)


@pytest.fixture
def make_workspace(tmp_path, wheelhouse) -> Callable[[str], Workspace]:
    def make(name: str) -> Workspace:
        root = tmp_path / name
        root.mkdir()
        return Workspace(root, wheelhouse)
    return make


def missing_record_files(env_dir: Path) -> list[str]:
    """Independent of polyvenv: every file any installed RECORD names must exist."""
    missing = []
    for record in env_dir.glob("lib/python*/site-packages/*.dist-info/RECORD"):
        site = record.parent.parent
        for line in record.read_text().splitlines():
            path = line.rsplit(",", 2)[0]
            if path and not os.path.lexists(site / path):
                missing.append(str(site / path))
    return missing
