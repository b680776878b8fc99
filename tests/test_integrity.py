"""Integrity means content: a damaged installed file is found, and `sync --repair` really mends it.

uv hardlinks installed files from its cache, so a file damaged in place in one
env (truncated by a stray script, an editor saving in place, a disk error) is
damaged in uv's cache too, and in every env built from it. Every test that
damages files gives its polyvenv and uv processes private caches under
tmp_path: the shared caches are never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from conftest import Workspace
from wheelgen import make_wheel

ALPHA = "alpha/__init__.py"


@pytest.fixture
def caches(tmp_path) -> dict[str, str]:
    """A private uv cache and polyvenv cache for every CLI run of one test."""
    env = dict(os.environ, UV_CACHE_DIR=str(tmp_path / "uv-cache"), POLYVENV_CACHE_DIR=str(tmp_path / "pv-cache"))
    env.pop("VIRTUAL_ENV", None)
    return env


def site(ws: Workspace, name: str) -> Path:
    return next((ws.root / ".polyvenv" / name).resolve().glob("lib/python*/site-packages"))


def truncate(path: Path) -> None:
    """Damage a file in place, as a stray script would: same inode, so every hard link sees it."""
    with open(path, "r+b") as f:
        f.truncate(3)


def cache_copies(cache: str, path: Path) -> list[Path]:
    """The files in uv's cache that are the very file ``path`` (the same inode)."""
    inode = path.stat().st_ino
    return [p for p in Path(cache).rglob(path.name) if p.stat().st_ino == inode]


def wheel_bytes(ws: Workspace, wheel: str, member: str) -> bytes:
    with zipfile.ZipFile(ws.wheelhouse / wheel) as zf:
        return zf.read(member)


def status(ws: Workspace, env: dict[str, str], *args: str) -> dict[str, dict]:
    return {e["name"]: e for e in json.loads(ws.cli("list", "--json", *args, env=env).stdout)}


def alpha_version(ws: Workspace, name: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(ws.env_python(name)), "-c", "import alpha; print(alpha.__version__)"],
                          capture_output=True, text=True, env=env)


def test_a_truncated_file_is_found_by_list_and_doctor(workspace, caches):
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
    """)
    workspace.cli("sync", env=caches)
    damaged = site(workspace, "a") / ALPHA
    truncate(damaged)
    assert status(workspace, caches)["a"]["state"] == "broken"
    listed = workspace.cli("list", env=caches).stdout
    assert "broken" in listed and str(damaged) in listed
    proc = workspace.cli("doctor", env=caches, check=False)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if str(damaged) in line]
    assert len(lines) == 1, proc.stderr
    assert "a: broken" in lines[0] and "RECORD" in lines[0] and "fix: `polyvenv sync --repair a`" in lines[0]


def test_a_same_size_edit_is_found_by_doctor_and_list_verify_not_by_a_plain_list(workspace, caches):
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
    """)
    workspace.cli("sync", env=caches)
    damaged = site(workspace, "a") / ALPHA
    text = damaged.read_bytes()
    with open(damaged, "r+b") as f:
        f.write(text.replace(b"1.0", b"6.6"))  # same size: only the sha256 tells
    assert status(workspace, caches)["a"]["state"] == "ok"  # the cheap check compares sizes only
    verified = status(workspace, caches, "--verify")["a"]
    assert verified["state"] == "broken" and any(str(damaged) in r and "sha256" in r for r in verified["reasons"])
    proc = workspace.cli("doctor", env=caches, check=False)
    assert proc.returncode == 1 and str(damaged) in proc.stderr


def test_repair_mends_a_file_damaged_in_uv_cache_too(workspace, caches):
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
    """)
    workspace.cli("sync", env=caches)
    damaged = site(workspace, "a") / ALPHA
    truncate(damaged)
    cached = cache_copies(caches["UV_CACHE_DIR"], damaged)
    assert cached, "uv hardlinked the file from its cache: the cache copy is damaged too"
    assert "up to date" in workspace.cli("sync", env=caches).stderr  # a plain sync trusts the stamp
    proc = workspace.cli("sync", "--repair", env=caches)
    assert "1 built" in proc.stderr
    assert "uv's cache entry for alpha 1.0 was damaged and was refreshed" in proc.stderr
    assert alpha_version(workspace, "a", caches).stdout.strip() == "1.0"
    repaired = site(workspace, "a") / ALPHA
    assert repaired.read_bytes() == wheel_bytes(workspace, "alpha-1.0-py3-none-any.whl", ALPHA)
    assert workspace.cli("doctor", env=caches).returncode == 0
    assert status(workspace, caches)["a"]["state"] == "ok"
    assert "up to date" in workspace.cli("sync", "--repair", env=caches).stderr  # whole now: nothing to do


def test_a_fresh_env_built_from_a_damaged_cache_is_never_stamped_ok_while_broken(workspace, caches):
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
    """)
    workspace.cli("sync", env=caches)
    truncate(site(workspace, "a") / ALPHA)
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
        [envs.b]
        requirements = ["beta==1.0", "alpha==1.0"]
    """)
    proc = workspace.cli("sync", "b", env=caches)
    assert "uv's cache entry for alpha 1.0 was damaged and was refreshed" in proc.stderr
    assert status(workspace, caches, "--verify")["b"]["state"] == "ok"
    assert alpha_version(workspace, "b", caches).stdout.strip() == "1.0"
    # env a still holds the damaged file (its own link to it): found, and mended from the good cache
    assert status(workspace, caches)["a"]["state"] == "broken"
    proc = workspace.cli("sync", "--repair", env=caches)
    assert "was damaged" not in proc.stderr  # the cache was refreshed already: a plain rebuild is whole
    assert alpha_version(workspace, "a", caches).stdout.strip() == "1.0"
    assert workspace.cli("doctor", env=caches).returncode == 0


def test_a_removed_dist_info_is_found_by_list(workspace, caches):
    workspace.write("""
        [envs.a]
        requirements = ["beta==1.0", "alpha==1.0"]
    """)
    workspace.cli("sync", env=caches)
    import shutil

    shutil.rmtree(site(workspace, "a") / "alpha-1.0.dist-info")  # its RECORD goes with it: no file check sees alpha
    a = status(workspace, caches)["a"]
    assert a["state"] == "broken" and any("alpha 1.0 is gone" in r for r in a["reasons"]), a["reasons"]


def test_a_wheel_whose_files_disagree_with_its_record_fails_the_build(tmp_path, caches):
    wheelhouse = tmp_path / "wheels"
    wheel = make_wheel(wheelhouse, "liar", "1.0", {"liar/__init__.py": "X = 1\n"})
    with zipfile.ZipFile(wheel) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["liar/__init__.py"] = b"X = 2\n"  # same size, another content than RECORD's sha256
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    root = tmp_path / "project"
    root.mkdir()
    ws = Workspace(root, wheelhouse)
    ws.write("""
        [envs.a]
        requirements = ["liar==1.0"]
    """)
    proc = ws.cli("sync", env=caches, check=False)
    assert proc.returncode == 1
    first = next(line for line in proc.stderr.splitlines() if line.startswith("polyvenv: error:"))
    assert "liar/__init__.py" in first and "RECORD" in first
    assert status(ws, caches)["a"]["state"] == "missing"  # never stamped, never used


def test_link_mode_copy_shares_nothing_with_uv_cache(workspace, caches):
    workspace.write("""
        link-mode = "copy"
        [envs.a]
        requirements = ["alpha==1.0"]
    """)
    workspace.cli("sync", env=caches)
    installed = site(workspace, "a") / ALPHA
    assert installed.stat().st_nlink == 1 and not cache_copies(caches["UV_CACHE_DIR"], installed)
    truncate(installed)  # an edit in this env stays in this env
    workspace.write("""
        link-mode = "copy"
        [envs.a]
        requirements = ["alpha==1.0"]
        [envs.b]
        requirements = ["beta==1.0", "alpha==1.0"]
    """)
    proc = workspace.cli("sync", "b", env=caches)
    assert "was damaged" not in proc.stderr
    assert alpha_version(workspace, "b", caches).stdout.strip() == "1.0"


def test_link_mode_is_validated(workspace):
    workspace.write("""
        link-mode = "symlink"
        [envs.a]
        requirements = ["alpha==1.0"]
    """)
    proc = workspace.cli("list", check=False)
    assert proc.returncode == 2
    first = proc.stderr.splitlines()[0]
    assert first.startswith("polyvenv: error:") and "link-mode" in first and "'symlink'" in first
    assert "hardlink" in first and "copy" in first  # says what is allowed
