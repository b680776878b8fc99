"""Lock files: exact pins with hashes, installed by sync, checked by sync --locked."""

from __future__ import annotations

import shutil


def _wheelhouse_with(workspace, *names):
    wh = workspace.root / "wh"
    wh.mkdir()
    for wheel in workspace.wheelhouse.glob("*.whl"):
        if wheel.name.startswith(names):
            shutil.copy(wheel, wh)
    return wh


def test_lock_pins_with_hashes_and_sync_installs_exactly_the_lock(workspace):
    only_v1 = _wheelhouse_with(workspace, "alpha-1.0", "beta")
    workspace.write(f"""
        wheelhouse = "{only_v1}"
        offline = true
        [envs.a]
        requirements = ["beta"]
    """, offline=False)
    workspace.cli("lock")
    lock = (workspace.root / "polyvenv-locks" / "a.txt").read_text()
    assert "alpha==1.0" in lock and "beta==1.0" in lock and "--hash=sha256:" in lock
    assert "# input: " in lock
    # now every version is available, but the lock still decides
    workspace.write("""
        [envs.a]
        requirements = ["beta"]
    """)
    workspace.cli("sync", "--locked")
    assert workspace.run_in("a", "import alpha; print(alpha.__version__)") == "1.0"
    assert workspace.status()["a"]["state"] == "ok"


def test_sync_locked_fails_on_missing_or_outdated_lock(workspace):
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
    """)
    proc = workspace.cli("sync", "--locked", check=False)
    assert proc.returncode == 1
    assert "has no lock file" in proc.stderr and "polyvenv lock a" in proc.stderr
    workspace.cli("lock")
    workspace.cli("sync", "--locked")
    workspace.write("""
        [envs.a]
        requirements = ["alpha==2.0"]
    """)
    proc = workspace.cli("sync", "--locked", check=False)
    assert proc.returncode == 1
    assert "out of date" in proc.stderr.splitlines()[0]
    assert workspace.run_in("a", "import alpha; print(alpha.__version__)") == "1.0"


def test_changing_the_lock_makes_the_env_stale(workspace):
    workspace.write("""
        [envs.a]
        requirements = ["alpha"]
    """)
    workspace.cli("sync")
    assert workspace.status()["a"]["state"] == "ok"
    workspace.cli("lock")
    status = workspace.status()["a"]
    assert status["state"] == "stale" and "lock file added" in status["reasons"]
    workspace.cli("sync")
    assert workspace.status()["a"]["state"] == "ok"
