"""A plain no-op `sync` is answered from a memo of file identities; any change must still be seen."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import find_python


def _sync_imports(workspace) -> str:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "polyvenv", "sync"], cwd=workspace.root,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_a_repeated_noop_sync_parses_nothing(workspace):
    (workspace.root / "reqs.txt").write_text("alpha==1.0\n")
    workspace.write("""
        [envs.a]
        requirements-file = "reqs.txt"
        [envs.b]
        requirements = ["beta==1.0"]
    """)
    workspace.cli("sync")
    first = _sync_imports(workspace)  # the full path decides, and leaves the memo
    assert "tomllib" in first or "tomli" in first
    second = _sync_imports(workspace)
    assert "2 envs: 0 built, 2 up to date, 0 failed" in second
    assert "tomllib" not in second and "pathlib" not in second.split("polyvenv")[-1]


def _edit_requirements_file(ws):
    (ws.root / "reqs.txt").write_text("alpha==2.0\n")
    return "2.0"


def _add_lock(ws):
    ws.cli("lock")
    return "1.0"


def _remove_env(ws):
    ws.cli("remove", "a")
    return "1.0"


def _damage_stamp(ws):
    (ws.root / ".polyvenv" / "a" / "polyvenv.json").write_text("{torn")
    return "1.0"


CHANGES = {
    "requirements file edited": _edit_requirements_file,
    "lock file added": _add_lock,
    "env removed": _remove_env,
    "stamp damaged": _damage_stamp,
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_input_change_is_seen_after_a_memo(workspace, change):
    (workspace.root / "reqs.txt").write_text("alpha==1.0\n")
    workspace.write("""
        [envs.a]
        requirements-file = "reqs.txt"
    """)
    workspace.cli("sync")
    workspace.cli("sync")  # writes the memo
    assert "0 built" in workspace.cli("sync").stderr  # answered by it
    expected = CHANGES[change](workspace)
    proc = workspace.cli("sync")
    assert "1 built" in proc.stderr or "switched" in proc.stderr, proc.stderr
    assert workspace.run_in("a", "import alpha; print(alpha.__version__)") == expected
    assert workspace.status()["a"]["state"] == "ok"


def test_config_edit_is_seen_after_a_memo(workspace):
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
    """)
    workspace.cli("sync")
    workspace.cli("sync")
    workspace.write("""
        [envs.a]
        requirements = ["alpha==2.0"]
    """)
    assert "1 built" in workspace.cli("sync").stderr
    assert workspace.run_in("a", "import alpha; print(alpha.__version__)") == "2.0"


def test_discovered_envs_are_seen_after_a_memo(workspace):
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
    """)
    workspace.cli("sync")
    workspace.cli("sync")
    (workspace.root / "modules" / "m").mkdir(parents=True)
    (workspace.root / "modules" / "m" / "requirements.txt").write_text("alpha==2.0\n")
    workspace.cli("sync", "--discover", "modules")
    proc = workspace.cli("sync")
    assert "2 envs: 0 built, 2 up to date" in proc.stderr


def test_an_interpreter_replaced_in_place_is_seen_after_a_memo(make_workspace, tmp_path):
    sources = [find_python("3.11"), find_python("3.12")]
    if None in sources:
        pytest.skip("needs CPython 3.11 and 3.12 (under pyenv or on PATH)")
    interp = tmp_path / "py" / "bin" / "python3"
    interp.parent.mkdir(parents=True)
    shutil.copy2(os.path.realpath(sources[0]), interp)
    ws = make_workspace("w")
    ws.write(f"""
        [envs.a]
        requirements = ["alpha==1.0"]
        python = "{interp}"
    """)
    ws.cli("sync")
    ws.cli("sync")
    shutil.copy2(os.path.realpath(sources[1]), str(interp) + ".new")
    os.replace(str(interp) + ".new", interp)
    assert "1 built" in ws.cli("sync").stderr
    assert ws.run_in("a", "import sys; print(sys.version_info[:2])") == "(3, 12)"
