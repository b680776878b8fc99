"""Building envs from a generated wheelhouse, offline: the core promises of `sync`."""

from __future__ import annotations

import json
import os
import subprocess

from conftest import missing_record_files


def test_sync_builds_real_venvs_usable_on_their_own(workspace):
    workspace.write("""
        [envs.old]
        requirements = ["alpha==1.0"]
        [envs.new]
        requirements = ["beta==1.0", "alpha==2.0"]
    """)
    proc = workspace.cli("sync")
    assert "2 built" in proc.stderr
    assert workspace.run_in("old", "import alpha; print(alpha.__version__)") == "1.0"
    assert workspace.run_in("new", "import alpha, beta; print(alpha.__version__, beta.__version__)") == "2.0 1.0"
    status = workspace.status()
    assert status["old"]["state"] == "ok" and status["old"]["distributions"] == {"alpha": "1.0"}
    assert status["new"]["distributions"] == {"alpha": "2.0", "beta": "1.0"}


def test_c_extension_wheel_installs_and_imports(workspace):
    workspace.write("""
        [envs.fast]
        requirements = ["cspeed"]
    """)
    workspace.cli("sync")
    assert workspace.run_in("fast", "import cspeed; print(cspeed.add(2, 3), cspeed.__version__)") == "5 1.0"


def test_noop_sync_starts_no_installer(workspace):
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
    """)
    workspace.cli("sync")
    before = workspace.builds()
    # With uv made unrunnable, a sync that starts any installer would fail.
    env = dict(os.environ, PATH="/nonexistent")
    proc = workspace.cli("sync", env=env)
    assert "1 up to date" in proc.stderr
    assert workspace.builds() == before


def test_changed_requirements_rebuild_beside_the_working_env(workspace):
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
    """)
    workspace.cli("sync")
    first = os.readlink(workspace.root / ".polyvenv" / "a")
    workspace.write("""
        [envs.a]
        requirements = ["alpha==2.0"]
    """)
    assert workspace.status()["a"]["state"] == "stale"
    workspace.cli("sync")
    second = os.readlink(workspace.root / ".polyvenv" / "a")
    assert first != second
    assert workspace.run_in("a", "import alpha; print(alpha.__version__)") == "2.0"
    # the old build is kept for rollback until gc
    assert (workspace.root / ".polyvenv" / first / "polyvenv.json").exists()
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
    """)
    proc = workspace.cli("sync")
    assert "switched to its existing build" in proc.stderr
    assert os.readlink(workspace.root / ".polyvenv" / "a") == first
    workspace.cli("gc")
    assert not (workspace.root / ".polyvenv" / second).exists()
    assert workspace.run_in("a", "import alpha; print(alpha.__version__)") == "1.0"


def test_failed_build_leaves_previous_env_in_use(workspace):
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
    """)
    workspace.cli("sync")
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0", "doesnotexist==9"]
    """)
    proc = workspace.cli("sync", check=False)
    assert proc.returncode == 1
    first = proc.stderr.strip().splitlines()[-1]
    assert first.startswith("polyvenv: error: build of env 'a' failed")
    assert "doesnotexist" in first and "log:" in first
    log = first.rsplit("log: ", 1)[1]
    assert "doesnotexist" in open(log).read()
    assert workspace.run_in("a", "import alpha; print(alpha.__version__)") == "1.0"
    assert workspace.status()["a"]["state"] == "stale"


def test_offline_names_the_missing_distribution(workspace):
    workspace.write("""
        [envs.a]
        requirements = ["alpha==3.0"]
    """)
    proc = workspace.cli("sync", check=False)
    assert proc.returncode == 1
    assert "alpha" in proc.stderr.splitlines()[-1] and "3.0" in proc.stderr


def test_offline_without_wheelhouse_is_a_usage_error(workspace):
    workspace.write("""
        offline = true
        [envs.a]
        requirements = ["alpha==1.0"]
    """, offline=False)
    proc = workspace.cli("sync", check=False)
    assert proc.returncode == 2
    assert "wheelhouse" in proc.stderr.splitlines()[0]


def test_pip_installer_fallback(workspace):
    workspace.write("""
        installer = "pip"
        [envs.a]
        requirements = ["beta==1.0"]
    """)
    workspace.cli("sync")
    assert workspace.run_in("a", "import beta, alpha; print(beta.__version__, alpha.__version__)") == "1.0 2.0"
    stamp = json.loads((workspace.root / ".polyvenv" / "a" / "polyvenv.json").read_text())
    assert stamp["installer"]["name"] == "pip"


def test_every_installed_file_exists_after_sync(workspace):
    workspace.write("""
        [envs.big]
        requirements = ["bigpkg"]
    """)
    workspace.cli("sync")
    assert missing_record_files(workspace.root / ".polyvenv" / "big") == []


def test_deleted_files_are_found_by_doctor_and_fixed_by_sync_repair(workspace):
    workspace.write("""
        [envs.a]
        requirements = ["bigpkg"]
    """)
    workspace.cli("sync")
    site = next((workspace.root / ".polyvenv" / "a").glob("lib/python*/site-packages"))
    (site / "bigpkg" / "mod7.py").unlink()
    assert workspace.status()["a"]["state"] == "broken"
    proc = workspace.cli("doctor", check=False)
    assert proc.returncode == 1
    assert "mod7.py" in proc.stderr and "fix: `polyvenv sync --repair a`" in proc.stderr
    workspace.cli("sync")  # trusts the stamp: the no-op path checks no files
    assert workspace.status()["a"]["state"] == "broken"
    workspace.cli("sync", "--repair")
    assert workspace.status()["a"]["state"] == "ok"
    assert missing_record_files(workspace.root / ".polyvenv" / "a") == []


def test_run_passes_exit_code_and_uses_the_env(workspace):
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
    """)
    proc = workspace.cli("run", "a", "--", "python", "-c",
                         "import alpha, sys; print(alpha.__version__); sys.exit(7)", check=False)
    assert proc.returncode == 7
    assert proc.stdout.strip() == "1.0"


def test_remove_deletes_env(workspace):
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
    """)
    workspace.cli("sync")
    proc = workspace.cli("remove", "a")
    assert "still declared" in proc.stderr
    assert not (workspace.root / ".polyvenv" / "a").exists()
    assert list((workspace.root / ".polyvenv" / ".builds").iterdir()) == []
    assert workspace.status()["a"]["state"] == "missing"


def test_gc_removes_undeclared_envs(workspace):
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
        [envs.b]
        requirements = ["alpha==2.0"]
    """)
    workspace.cli("sync")
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
    """)
    workspace.cli("gc")
    assert not (workspace.root / ".polyvenv" / "b").exists()
    assert [p.name.split("-")[0] for p in (workspace.root / ".polyvenv" / ".builds").iterdir()] == ["a"]
    assert workspace.run_in("a", "import alpha; print(alpha.__version__)") == "1.0"
