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


def _online(workspace, body: str) -> None:
    """Online (polyvenv's online path: it may lock), with the generated wheelhouse as uv's only
    index (UV_NO_INDEX, honoured by uv itself), so resolving stays hermetic."""
    workspace.write(f'wheelhouse = "{workspace.wheelhouse}"\n' + body, offline=False)


def _no_index():
    import os

    return {**os.environ, "UV_NO_INDEX": "1"}


def test_plain_sync_locks_again_what_is_out_of_date_and_installs_it(workspace):
    _online(workspace, """
        [envs.a]
        requirements = ["alpha==1.0"]
    """)
    workspace.cli("lock", env=_no_index())
    workspace.cli("sync", env=_no_index())
    _online(workspace, """
        [envs.a]
        requirements = ["alpha==1.0", "greeter"]
    """)
    status = workspace.status()["a"]
    assert status["state"] == "stale"
    assert any("lock file" in r and "out of date" in r for r in status["reasons"]), status["reasons"]
    doctor = workspace.cli("doctor", env=_no_index()).stderr
    assert "a: stale: " in doctor and "out of date" in doctor
    proc = workspace.cli("sync", env=_no_index())
    assert "locking again" in proc.stderr
    assert "greeter==1.0" in (workspace.root / "polyvenv-locks" / "a.txt").read_text()
    assert workspace.run_in("a", "import greeter, alpha; print(alpha.__version__)") == "1.0"
    assert workspace.status()["a"]["state"] == "ok"
    workspace.cli("sync", "--locked", env=_no_index())  # the new lock is current
    _online(workspace, """
        [envs.a]
        requirements = ["alpha==9.9"]
    """)
    proc = workspace.cli("sync", env=_no_index(), check=False)  # locking again fails: the env keeps its build
    assert proc.returncode == 1
    last = proc.stderr.splitlines()[-1]
    assert last.startswith("polyvenv: error: locking env 'a': ") and "alpha==9.9" in last and last.count("log: ") == 1
    assert workspace.run_in("a", "import greeter, alpha; print(alpha.__version__)") == "1.0"


def test_offline_sync_refuses_an_out_of_date_lock_in_one_line_and_frozen_installs_it(workspace):
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
    """)
    workspace.cli("lock")
    workspace.write("""
        [envs.a]
        requirements = ["alpha==2.0"]
    """)
    proc = workspace.cli("sync", check=False)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("polyvenv: error: ")
    assert "env 'a'" in lines[0] and "out of date" in lines[0] and "polyvenv lock a" in lines[0]
    assert not workspace.env_python("a").exists()  # nothing installed from the old lock
    workspace.cli("sync", "--frozen")
    assert workspace.run_in("a", "import alpha; print(alpha.__version__)") == "1.0"
    assert workspace.status()["a"]["state"] == "stale"  # frozen installed the lock; the lock is still old
    assert workspace.cli("sync", "--locked", check=False).returncode == 1
    assert workspace.cli("sync", check=False).returncode == 1  # no memo of the frozen sync answers a plain one


def test_a_second_lock_changes_no_byte_and_rebuilds_nothing(workspace, tmp_path):
    reqs = workspace.root / "plugin" / "requirements.txt"
    reqs.parent.mkdir()
    reqs.write_text("beta\n")
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
        requirements-file = "plugin/requirements.txt"
    """)
    workspace.cli("lock")
    lock = workspace.root / "polyvenv-locks" / "a.txt"
    first, identity = lock.read_bytes(), lock.stat()
    assert str(tmp_path) not in first.decode().split("# input:")[1].replace(str(workspace.root), "")
    assert "/tmp" not in first.decode() and "-r plugin/requirements.txt" in first.decode()
    workspace.cli("sync")
    built = len(workspace.builds())
    workspace.cli("lock")
    assert lock.read_bytes() == first
    assert (lock.stat().st_ino, lock.stat().st_mtime_ns) == (identity.st_ino, identity.st_mtime_ns)
    assert workspace.status()["a"]["state"] == "ok"
    workspace.cli("sync")
    assert len(workspace.builds()) == built


def test_a_failing_lock_is_one_error_line_exit_1(workspace):
    workspace.write("""
        [envs.a]
        requirements = ["alpha==9.9"]
    """)
    proc = workspace.cli("lock", check=False)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("polyvenv: error: locking env 'a': "), proc.stderr
    assert "alpha==9.9" in lines[0] and "log: " in lines[0]
    assert "Traceback" not in proc.stderr


def test_lock_wheelhouse_and_offline_sync_with_a_dependency_published_only_as_an_sdist(workspace):
    import os

    from wheelgen import sdist

    index = _wheelhouse_with(workspace, "alpha-1.0")  # the "index": alpha as a wheel, sdonly as an sdist only
    sdist(index, "sdonly", "1.0")
    hermetic = {**os.environ, "UV_NO_INDEX": "1", "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(index)}
    workspace.write(f"""
        wheelhouse = "{index}"
        [envs.a]
        requirements = ["sdonly", "alpha"]
    """, offline=False)
    workspace.cli("lock", env=hermetic)
    lock = (workspace.root / "polyvenv-locks" / "a.txt").read_text()
    assert "sdonly==1.0" in lock
    wheels = workspace.root / "wheels"
    workspace.cli("wheelhouse", str(wheels), env=hermetic)
    assert (wheels / "sdonly-1.0-py3-none-any.whl").is_file()  # built from the sdist, a hash no lock names
    workspace.cli("sync", "--offline", "--wheelhouse", str(wheels))
    assert workspace.run_in("a", "import sdonly, alpha; print(sdonly.__version__, alpha.__version__)") == "1.0 1.0"
    workspace.cli("sync", "--offline", "--wheelhouse", str(wheels), "--installer", "pip")  # pip too
    assert workspace.run_in("a", "import sdonly, alpha; print(sdonly.__version__, alpha.__version__)") == "1.0 1.0"
    assert (workspace.root / "polyvenv-locks" / "a.txt").read_text() == lock  # the lock is as it was


def test_a_built_wheel_is_accepted_only_for_the_pin_it_was_built_for(tmp_path):
    import hashlib
    import subprocess
    import sys

    from wheelgen import sdist

    from polyvenv.provision import builtwheels

    source = sdist(tmp_path / "index", "sdonly", "1.0")
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-index", "-q", "-w", str(tmp_path / "fresh"),
                    str(source)], check=True, capture_output=True)
    lock, wheels = tmp_path / "a.txt", tmp_path / "wheels"
    wheels.mkdir()
    lock.write_text(f"# polyvenv lock\nsdonly==1.0 \\\n    --hash=sha256:{sha}\n")
    builtwheels.record(wheels, lock, tmp_path / "fresh")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    copy, added = builtwheels.installable(lock, wheels, scratch)
    built = hashlib.sha256((wheels / "sdonly-1.0-py3-none-any.whl").read_bytes()).hexdigest()
    assert added == ["sdonly-1.0-py3-none-any.whl"] and built in copy.read_text() and built not in lock.read_text()
    lock.write_text(f"# polyvenv lock\nsdonly==1.0 \\\n    --hash=sha256:{'0' * 64}\n")  # another sdist
    assert builtwheels.installable(lock, wheels, scratch) == (lock, [])


def test_pylock_round_trip(workspace, tmp_path):
    """lock-format = "pylock": `lock` writes PEP 751's pylock.<env>.toml (with polyvenv's header),
    uv itself reads it, `sync` installs exactly it, offline too, and a second lock changes nothing."""
    import os
    import subprocess

    import tomllib
    from uv import find_uv_bin
    from wheelgen import sdist

    index = _wheelhouse_with(workspace, "alpha-1.0", "beta")
    sdist(index, "sdonly", "1.0")
    hermetic = {**os.environ, "UV_NO_INDEX": "1", "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(index)}
    workspace.write(f"""
        wheelhouse = "{index}"
        lock-format = "pylock"
        [envs.a]
        requirements = ["beta", "sdonly"]
    """, offline=False)
    workspace.cli("lock", env=hermetic)
    lock = workspace.root / "polyvenv-locks" / "pylock.a.toml"
    text = lock.read_text()
    assert text.startswith("# polyvenv lock for env 'a'")
    data = tomllib.loads(text)
    assert data["lock-version"] == "1.0"
    assert {p["name"]: p["version"] for p in data["packages"]} == {"alpha": "1.0", "beta": "1.0", "sdonly": "1.0"}
    venv = tmp_path / "by-uv"  # the standard's point: another tool installs polyvenv's lock as it is
    subprocess.run([find_uv_bin(), "venv", "-q", str(venv)], check=True)
    subprocess.run([find_uv_bin(), "pip", "install", "--no-config", "-q", "--python", str(venv / "bin" / "python"),
                    "-r", str(lock)], check=True, env=hermetic, capture_output=True)
    wheels = workspace.root / "wheels"
    workspace.cli("wheelhouse", str(wheels), env=hermetic)
    workspace.cli("sync", "--offline", "--wheelhouse", str(wheels))
    assert workspace.run_in("a", "import alpha, sdonly; print(alpha.__version__)") == "1.0"
    workspace.cli("sync", "--locked", env=hermetic)
    built = len(workspace.builds())
    workspace.cli("lock", env=hermetic)
    assert lock.read_text() == text and workspace.status()["a"]["state"] == "ok"
    workspace.write(f"""
        wheelhouse = "{index}"
        lock-format = "pylock"
        [envs.a]
        requirements = ["alpha", "sdonly"]
    """, offline=False)
    assert workspace.status()["a"]["state"] == "stale"
    workspace.cli("sync", env=hermetic)  # locked again, in the same format
    assert "beta" not in {p["name"] for p in tomllib.loads(lock.read_text())["packages"]}
    assert len(workspace.builds()) == built + 1


def test_wheelhouse_never_overwrites_a_record_it_did_not_write(tmp_path):
    import pytest

    from polyvenv.provision import builtwheels
    from polyvenv.errors import ForeignPath

    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / builtwheels.RECORD).write_text('{"mine": true}\n')
    (tmp_path / "a.txt").write_text("# polyvenv lock\n")
    (tmp_path / "fresh").mkdir()
    with pytest.raises(ForeignPath, match="was not written by `polyvenv wheelhouse`"):
        builtwheels.record(tmp_path / "wheels", tmp_path / "a.txt", tmp_path / "fresh")
    assert (tmp_path / "wheels" / builtwheels.RECORD).read_text() == '{"mine": true}\n'
