"""Every CPython 3.9-3.13 found on PATH or under pyenv as an env's interpreter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import python_or_skip
from wheelgen import c_extension_wheel, pure_wheel

SRC = Path(__file__).parent.parent / "src"


def test_env_on_each_python_with_a_c_extension(make_workspace, any_python, tmp_path):
    wh = tmp_path / "wh"
    pure_wheel(wh, "alpha", "1.0")
    c_extension_wheel(wh, any_python, version="2.5")
    ws = make_workspace("p")
    ws.write(f"""
        wheelhouse = "{wh}"
        offline = true
        [envs.c]
        requirements = ["alpha", "cspeed"]
        python = "{any_python}"
    """, offline=False)
    ws.cli("sync")
    out = ws.run_in("c", "import sys, alpha, cspeed; print('%d.%d' % sys.version_info[:2], cspeed.add(40, 2), cspeed.__version__)")
    minor = Path(any_python).parent.parent.name.rsplit(".", 1)[0]
    assert out == f"{minor} 42 2.5"
    status = ws.status()["c"]
    assert status["state"] == "ok" and status["python"]["version"].startswith(minor)


def test_python_by_version_picks_the_newest_patch(make_workspace, any_python):
    minor = Path(any_python).parent.parent.name.rsplit(".", 1)[0]
    ws = make_workspace("v")
    ws.write(f"""
        [envs.a]
        requirements = ["alpha==1.0"]
        python = "{minor}"
    """)
    ws.cli("sync")
    assert ws.run_in("a", "import sys; print('%d.%d' % sys.version_info[:2])") == minor


def test_runtime_imports_only_the_standard_library(any_python):
    """The runtime half must import on every Python with nothing but the standard library."""
    code = (
        "import sys, sysconfig; sys.path.insert(0, sys.argv[1]); before = set(sys.modules)\n"
        "import polyvenv, polyvenv.runtime.workspace, polyvenv.runtime.manifest, polyvenv.runtime.import_map\n"
        "import polyvenv.runtime.env, polyvenv.runtime.importer, polyvenv.runtime.facades, polyvenv.snapshot\n"
        "import polyvenv.runtime.native.relocate, polyvenv.runtime.native.binpatch, polyvenv.runtime.native.elfsplit\n"
        "import polyvenv.runtime.native.codetable, polyvenv.runtime.native.globalstate, polyvenv.process\n"
        "stdlib = sysconfig.get_paths()['stdlib']\n"
        "bad = sorted(n for n in set(sys.modules) - before if not n.startswith('polyvenv') and\n"
        "    getattr(sys.modules[n], '__file__', None) and not sys.modules[n].__file__.startswith(stdlib))\n"
        "print(bad)"
    )
    out = subprocess.run([any_python, "-I", "-S", "-c", code, str(SRC)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _copy_interpreter(minor: str, where: Path) -> Path:
    """A private copy of a pyenv interpreter binary (it still finds its stdlib by its built-in prefix)."""
    source = python_or_skip(minor)
    where.parent.mkdir(parents=True, exist_ok=True)
    target = where.with_name(where.name + ".tmp")
    shutil.copy2(os.path.realpath(source), target)
    os.replace(target, where)
    return where


def test_an_interpreter_upgraded_in_place_makes_the_env_stale_and_sync_rebuilds(make_workspace, tmp_path):
    interp = _copy_interpreter("3.11", tmp_path / "py" / "bin" / "python3")
    ws = make_workspace("upgrade")
    ws.write(f"""
        [envs.a]
        requirements = ["alpha==1.0"]
        python = "{interp}"
    """)
    ws.cli("sync")
    assert ws.run_in("a", "import sys; print(sys.version_info[:2])") == "(3, 11)"
    _copy_interpreter("3.12", interp)  # the same path now holds another version
    status = ws.status()["a"]
    assert status["state"] == "stale"
    assert any("interpreter changed" in r and "3.12" in r for r in status["reasons"]), status
    ws.cli("sync")
    assert ws.status()["a"]["state"] == "ok"
    assert ws.run_in("a", "import sys, alpha; print(sys.version_info[:2], alpha.__version__)") == "(3, 12) 1.0"


def test_a_vanished_interpreter_is_reported_with_the_fix(make_workspace, tmp_path):
    interp = _copy_interpreter("3.11", tmp_path / "py" / "bin" / "python3")
    ws = make_workspace("gone")
    ws.write(f"""
        [envs.a]
        requirements = ["alpha==1.0"]
        python = "{interp}"
    """)
    ws.cli("sync")
    interp.unlink()
    status = ws.status()["a"]
    assert status["state"] == "broken"
    assert "is gone" in status["reasons"][0] and "reinstall Python 3.11" in status["fix"]
    proc = ws.cli("doctor", check=False)
    assert proc.returncode == 1 and "is gone" in proc.stderr
    proc = ws.cli("sync", check=False)
    assert proc.returncode == 2 and "is not an executable file" in proc.stderr.splitlines()[0]
    _copy_interpreter("3.11", interp)  # reinstalled: sync brings the env back
    ws.cli("sync")
    assert ws.status()["a"]["state"] == "ok"
