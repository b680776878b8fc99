"""Faults a user meets: `kill -9` mid-build, many `sync`s at once, and bad input.

Everything here drives the real CLI in real subprocesses: builds are killed
with SIGKILL sent to their whole process group (polyvenv and the uv it runs),
at seeded random moments spread over a build's measured duration. What is
checked is what a user would see afterwards: `polyvenv list --json`, the
env's own interpreter importing its packages, every file its RECORDs name
(checked independently of polyvenv), and a plain rerun that finishes the job.

Set POLYVENV_FAULT_SEED to replay other kill moments.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import Workspace, missing_record_files

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="kills process groups, reads /proc")

SEED = int(os.environ.get("POLYVENV_FAULT_SEED", "20240611"))
BIG_MODULE = "bigpkg.mod1499"  # the last of bigpkg's 1500 modules

# name -> (requirements besides bigpkg, the versions its interpreter must import)
ENVS = {
    "one": (["alpha==1.0"], {"alpha": "1.0", "bigpkg": "1.0"}),
    "two": (["alpha==2.0", "beta==1.0"], {"alpha": "2.0", "beta": "1.0", "bigpkg": "1.0"}),
    "three": (["beta==1.0", "alpha==1.0"], {"alpha": "1.0", "beta": "1.0", "bigpkg": "1.0"}),
}


# -- helpers ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_env(tmp_path_factory) -> dict[str, str]:
    """The environment every polyvenv process here runs with: its own uv and create caches, so
    kills never touch the user's caches (one per module, warmed by the first build)."""
    caches = tmp_path_factory.mktemp("caches")
    env = dict(os.environ, UV_CACHE_DIR=str(caches / "uv"), POLYVENV_CACHE_DIR=str(caches / "polyvenv"))
    env.pop("VIRTUAL_ENV", None)
    return env


def polyvenv(*args: str) -> list[str]:
    return [sys.executable, "-m", "polyvenv", *args]


def config_text(wheelhouse: Path, generation: int) -> str:
    """Three envs, each with bigpkg; a new ``generation`` changes every env's spec (a user editing
    requirements), so each generation is real work for `sync`."""
    lines = [f'wheelhouse = "{wheelhouse}"', "offline = true", ""]
    for name, (requirements, _) in ENVS.items():
        reqs = [f"bigpkg!=0.0.{generation}", *requirements]  # != a version that does not exist: still bigpkg 1.0
        lines += [f"[envs.{name}]", f"requirements = {json.dumps(reqs)}", ""]
    return "\n".join(lines)


def imported_versions(python: Path, modules: list[str], env: dict[str, str],
                      also: str | None = BIG_MODULE) -> dict[str, str]:
    """The versions the env's own interpreter imports (after importing ``also``, which must load)."""
    code = ("import importlib, json, sys; "
            + (f"importlib.import_module({also!r}); " if also else "")
            + "print(json.dumps({m: importlib.import_module(m).__version__ for m in sys.argv[1:]}))")
    proc = subprocess.run([str(python), "-c", code, *modules], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, f"{python} cannot import {modules}:\n{proc.stderr}"
    return json.loads(proc.stdout)


def list_json(root: Path, env: dict[str, str]) -> dict[str, dict]:
    proc = subprocess.run(polyvenv("list", "--json"), cwd=root, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, f"`polyvenv list --json` exited {proc.returncode}:\n{proc.stderr}"
    return {e["name"]: e for e in json.loads(proc.stdout)}


def states(status: dict[str, dict]) -> dict[str, str]:
    return {name: entry["state"] for name, entry in status.items()}


def has_valid_stamp(directory: Path) -> bool:
    try:
        stamp = json.loads((directory / "polyvenv.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and stamp.get("format") == 1 and bool(stamp.get("spec_hash"))


def unstamped_builds(envs_dir: Path) -> set[tuple[str, int]]:
    """Build directories without a valid stamp, with their inode (a rebuild makes a new one)."""
    builds = envs_dir / ".builds"
    if not builds.is_dir():
        return set()
    return {(p.name, p.stat().st_ino) for p in builds.iterdir() if p.is_dir() and not has_valid_stamp(p)}


def live_members(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that have not yet died (zombies excluded)."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()  # state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry))
    return alive


def kill_group(proc: subprocess.Popen) -> int:
    """SIGKILL every process of ``proc``'s group; return once all of them are dead."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    returncode = proc.wait(timeout=30)
    give_up = time.monotonic() + 10  # the group may outlive its leader for a moment
    while live_members(proc.pid):
        assert time.monotonic() < give_up, f"processes of group {proc.pid} survived SIGKILL"
        time.sleep(0.005)
    return returncode


class Killed:
    """A polyvenv command started in its own session, then SIGKILLed, with every process of its
    group (uv included), after ``delay`` seconds unless it finished first."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], delay: float, log: Path) -> None:
        with open(log, "w") as out:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + delay
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        self.finished = proc.poll() is not None
        self.returncode = proc.returncode if self.finished else kill_group(proc)
        self.output = log.read_text()


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    assert proc.returncode == 0, f"{' '.join(argv[2:])} exited {proc.returncode}:\n{proc.stderr}"
    return seconds


# -- 1. kill -9 during `polyvenv sync` ---------------------------------------------------------------

@pytest.mark.fault
def test_sync_killed_at_random_moments_never_shows_a_partial_env_as_ok(tmp_path, wheelhouse, cli_env):
    rng = random.Random(SEED)
    root = tmp_path / "project"
    root.mkdir()
    config = root / "polyvenv.toml"
    envs_dir = root / ".polyvenv"

    # Measure, in a workspace of its own, a real build of all three envs (with the uv cache warm,
    # as it is from the first build on) and a no-op sync (start, read config and stamps, exit).
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "polyvenv.toml").write_text(config_text(wheelhouse, 999))
    timed(polyvenv("sync"), probe, cli_env)
    (probe / "polyvenv.toml").write_text(config_text(wheelhouse, 998))
    duration = timed(polyvenv("sync"), probe, cli_env)
    startup = timed(polyvenv("sync"), probe, cli_env)
    assert startup < duration

    kills, interrupted, partially_done, with_missing = 24, [], 0, 0
    had_a_build: set[str] = set()
    for i in range(kills):
        generation = i // 2  # each config is killed twice: once fresh, once resuming its own leftovers
        config.write_text(config_text(wheelhouse, generation))
        before = unstamped_builds(envs_dir)
        delay = rng.uniform(0.5 * startup, 1.1 * duration)  # from before the first build starts to the end
        run = Killed(polyvenv("sync"), root, cli_env, delay, tmp_path / f"sync-{i}.log")
        where = f"kill {i} (seed {SEED}, after {delay:.3f}s of a {duration:.3f}s sync, {startup:.3f}s of it startup)"
        if run.finished:
            assert run.returncode == 0, f"{where}: sync failed on its own:\n{run.output}"

        status = list_json(root, cli_env)
        assert set(status) == set(ENVS), where
        if run.finished:
            assert all(status[n]["state"] == "ok" for n in ENVS), f"{where}: sync succeeded, yet: {states(status)}"
        for name in had_a_build:  # a killed build leaves the previous env in place and in use
            assert status[name]["state"] in ("ok", "stale"), (
                f"{where}: env {name!r} had a complete build before this sync and is now "
                f"{status[name]['state']!r}: {status[name]['reasons']}")
        for name, (_, versions) in ENVS.items():
            env_dir = envs_dir / name
            state = status[name]["state"]
            if state in ("ok", "stale"):  # both claim a complete build is in place
                missing = missing_record_files(env_dir)
                assert not missing, (f"{where}: env {name!r} is reported {state!r} but {len(missing)} files "
                                     f"its RECORDs name are missing, e.g. {missing[:3]}")
            if state == "ok":
                assert status[name]["distributions"] == versions, where
                python = env_dir / "bin" / "python"
                assert imported_versions(python, sorted(versions), cli_env) == versions, where
            else:
                assert state in ("stale", "missing"), f"{where}: env {name!r} is {state!r}: {status[name]}"

        had_a_build |= {n for n in ENVS if status[n]["state"] in ("ok", "stale")}
        fresh_partials = unstamped_builds(envs_dir) - before
        not_ok = [n for n in ENVS if status[n]["state"] != "ok"]
        if fresh_partials:
            interrupted.append(i)
        if fresh_partials and len(not_ok) < len(ENVS):
            partially_done += 1
        with_missing += any(status[n]["state"] == "missing" for n in ENVS)

    # The kills must have hit builds, or this test proves nothing.
    assert len(interrupted) >= 3, (f"only kills {interrupted} of {kills} interrupted a build "
                                   f"(build took {duration:.3f}s; seed {SEED})")

    # One plain sync finishes everything.
    proc = subprocess.run(polyvenv("sync"), cwd=root, capture_output=True, text=True, env=cli_env)
    assert proc.returncode == 0, f"sync after {kills} kills exited {proc.returncode}:\n{proc.stderr}"
    status = list_json(root, cli_env)
    for name, (_, versions) in ENVS.items():
        assert status[name]["state"] == "ok", status[name]
        assert missing_record_files(envs_dir / name) == []
        assert imported_versions(envs_dir / name / "bin" / "python", sorted(versions), cli_env) == versions
    print(f"sync kills: {kills}, interrupted a build: {len(interrupted)}, with some envs already done: "
          f"{partially_done}, with an env missing: {with_missing}; sync {duration:.3f}s, startup {startup:.3f}s")


# -- 2. kill -9 during `polyvenv create` ----------------------------------------------------------

@pytest.mark.fault
def test_create_killed_at_random_moments_keeps_the_old_venv_working(tmp_path, wheelhouse, cli_env):
    """A rebuild is made beside the venv in use and switched to last: whenever `create` is killed,
    the venv users see is a whole one (the old or the new), and a rerun finishes the job."""
    rng = random.Random(SEED + 1)
    reqs = tmp_path / "requirements.txt"
    venv = tmp_path / "venvs" / "app"
    venv.parent.mkdir()
    versions = {"alpha": "1.0", "beta": "1.0", "bigpkg": "1.0"}

    def write_requirements(revision: int) -> None:  # a user editing the file: a rebuild each time
        reqs.write_text(f"# revision {revision}\nbigpkg\nbeta==1.0\nalpha==1.0\n")

    create = polyvenv("create", str(venv), "-r", str(reqs), "--offline", "--wheelhouse", str(wheelhouse))
    write_requirements(0)
    timed(create, tmp_path, cli_env)  # the first also warms the uv cache
    write_requirements(1)
    duration = timed(create, tmp_path, cli_env)  # a real rebuild: build beside, switch
    startup = timed(create, tmp_path, cli_env)  # up to date: start, read the stamp, exit
    assert startup < duration

    kills, interrupted = 12, 0
    for i in range(kills):
        before = os.path.realpath(venv)
        write_requirements(2 + i)
        delay = rng.uniform(0.5 * startup, 1.1 * duration)
        run = Killed(create, tmp_path, cli_env, delay, tmp_path / f"create-{i}.log")
        where = f"kill {i} (seed {SEED + 1}, after {delay:.3f}s of a {duration:.3f}s create)"
        if run.finished:
            assert run.returncode == 0, f"{where}: create failed on its own:\n{run.output}"
        assert has_valid_stamp(venv), f"{where}: {venv} is not a whole venv any more"
        missing = missing_record_files(venv)
        assert not missing, f"{where}: {venv} is stamped complete but misses {missing[:3]}"
        assert imported_versions(venv / "bin" / "python", sorted(versions), cli_env) == versions, where
        interrupted += os.path.realpath(venv) == before

    assert interrupted >= 3, f"only {interrupted} of {kills} kills interrupted a create (seed {SEED + 1})"

    proc = subprocess.run(create, cwd=tmp_path, capture_output=True, text=True, env=cli_env)
    assert proc.returncode == 0, f"create after {kills} kills exited {proc.returncode}:\n{proc.stderr}"
    assert "rebuilt" in proc.stderr
    assert has_valid_stamp(venv)
    assert missing_record_files(venv) == []
    assert imported_versions(venv / "bin" / "python", sorted(versions), cli_env) == versions
    home = venv.parent / ".app.polyvenv"
    assert sorted(p.name for p in home.iterdir() if p.is_dir()) == [os.path.basename(os.readlink(venv))], \
        "builds the kills interrupted were not cleared by the next run"


@pytest.mark.fault
def test_create_killed_mid_rebuild_of_an_in_place_venv_keeps_it(tmp_path, wheelhouse, cli_env):
    """A venv an earlier polyvenv built in place (a real directory with its stamp) is rebuilt
    beside it too: killed while the new build installs, the old directory is untouched and works.
    The kill is real; only its moment is chosen, by watching for the half-made new build."""
    reqs = tmp_path / "requirements.txt"
    venv = tmp_path / "venvs" / "app"
    venv.parent.mkdir()
    create = polyvenv("create", str(venv), "-r", str(reqs), "--offline", "--wheelhouse", str(wheelhouse))
    reqs.write_text("bigpkg\nalpha==1.0\n")
    timed(create, tmp_path, cli_env)
    home = venv.parent / ".app.polyvenv"
    build = home / os.readlink(venv).rpartition("/")[2]
    os.unlink(venv)  # make it look like an in-place venv of an earlier polyvenv
    os.replace(build, venv)
    for script in (venv / "bin").iterdir():  # its scripts name the directory they live in
        if script.is_file() and not script.is_symlink() and script.read_bytes().startswith(b"#!"):
            script.write_text(script.read_text().replace(str(build), str(venv)))
    assert imported_versions(venv / "bin" / "python", ["alpha"], cli_env, also=None) == {"alpha": "1.0"}
    inode = venv.stat().st_ino

    def mid_build() -> bool:
        return any(p.is_dir() and not has_valid_stamp(p) and (p / "lib").is_dir() for p in home.iterdir())

    reqs.write_text("# edited\nbigpkg\nalpha==1.0\n")
    proc = subprocess.Popen(create, cwd=tmp_path, env=cli_env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    while proc.poll() is None and not mid_build():
        time.sleep(0.0005)
    assert proc.poll() is None, "create finished before the new build could be caught half-made"
    kill_group(proc)
    assert venv.is_dir() and not venv.is_symlink() and venv.stat().st_ino == inode
    assert missing_record_files(venv) == []
    assert imported_versions(venv / "bin" / "python", ["alpha", "bigpkg"], cli_env) == {"alpha": "1.0",
                                                                                        "bigpkg": "1.0"}

    proc = subprocess.run(create, cwd=tmp_path, capture_output=True, text=True, env=cli_env)
    assert proc.returncode == 0, proc.stderr
    assert venv.is_symlink() and has_valid_stamp(venv) and missing_record_files(venv) == []
    assert imported_versions(venv / "bin" / "python", ["alpha", "bigpkg"], cli_env) == {"alpha": "1.0",
                                                                                        "bigpkg": "1.0"}
    assert sorted(p.name for p in home.iterdir() if p.is_dir()) == [os.readlink(venv).rpartition("/")[2]]


# -- 3. many `sync`s at once --------------------------------------------------------------------------

def test_concurrent_syncs_build_each_env_exactly_once(tmp_path, wheelhouse, cli_env):
    root = tmp_path / "project"
    root.mkdir()
    (root / "polyvenv.toml").write_text(config_text(wheelhouse, 0))
    logs = [tmp_path / f"sync-{i}.log" for i in range(8)]
    procs = []
    for log in logs:
        with open(log, "w") as out:
            procs.append(subprocess.Popen(polyvenv("sync"), cwd=root, env=cli_env, stdin=subprocess.DEVNULL,
                                          stdout=out, stderr=subprocess.STDOUT))
    codes = [p.wait(timeout=120) for p in procs]
    assert codes == [0] * 8, "\n".join(f"sync {i} exited {c}:\n{log.read_text()}"
                                       for i, (c, log) in enumerate(zip(codes, logs)) if c)

    history = root / ".polyvenv" / ".logs" / "builds.jsonl"
    builds = Counter(json.loads(line)["env"] for line in history.read_text().splitlines())
    assert builds == Counter({name: 1 for name in ENVS}), f"builds per env: {dict(builds)}"
    assert unstamped_builds(root / ".polyvenv") == set()
    assert len(list((root / ".polyvenv" / ".builds").iterdir())) == len(ENVS)
    status = list_json(root, cli_env)
    for name, (_, versions) in ENVS.items():
        assert status[name]["state"] == "ok", status[name]
        assert missing_record_files(root / ".polyvenv" / name) == []
        assert imported_versions(root / ".polyvenv" / name / "bin" / "python", sorted(versions), cli_env) == versions


# -- 4. bad input leaves the envs there untouched --------------------------------------------------

GOOD = """
[envs.app]
requirements = ["beta==1.0", "alpha==1.0"]
"""

# (what is wrong, the config, what the first error line must name besides the file)
BAD_CONFIGS = [
    ("unknown key", """
        [envs.app]
        requirements = ["beta==1.0", "alpha==1.0"]
        pyhton = "3.11"
     """, "pyhton"),
    ("wrong type (string for list)", """
        [envs.app]
        requirements = "beta==1.0"
     """, "requirements"),
    ("wrong type (number for string)", """
        [envs.app]
        requirements = ["beta==1.0", "alpha==1.0"]
        python = 3.12
     """, "python"),
    ("env name escaping the envs dir", """
        [envs.app]
        requirements = ["beta==1.0", "alpha==1.0"]
        [envs."../x"]
        requirements = ["alpha==2.0"]
     """, "../x"),
    ("invalid PEP 508 requirement", """
        [envs.app]
        requirements = ["beta==1.0", "alpha = = 2.0"]
     """, "requirements"),
    ("missing requirements file", """
        [envs.app]
        requirements = ["beta==1.0"]
        requirements-file = "no-such-requirements.txt"
     """, "requirements-file"),
    ("unknown python", """
        [envs.app]
        requirements = ["beta==1.0", "alpha==1.0"]
        python = "3.99"
     """, "python"),
]


@pytest.mark.parametrize("what,body,key", BAD_CONFIGS, ids=[b[0] for b in BAD_CONFIGS])
def test_bad_config_is_refused_and_leaves_the_existing_env_untouched(workspace: Workspace, cli_env,
                                                                     what, body, key):
    config = workspace.write(GOOD)
    workspace.cli("sync", env=cli_env)
    envs_dir = workspace.root / ".polyvenv"
    link = envs_dir / "app"
    target, stamp = os.readlink(link), (link / "polyvenv.json").read_bytes()
    builds, history = sorted(p.name for p in (envs_dir / ".builds").iterdir()), workspace.builds()

    workspace.write(body)
    proc = workspace.cli("sync", check=False, env=cli_env)
    assert proc.returncode == 2, f"{what}: exit {proc.returncode}:\n{proc.stderr}"
    first = proc.stderr.splitlines()[0] if proc.stderr else ""
    assert first.startswith("polyvenv: error:"), f"{what}: {proc.stderr}"
    assert str(config) in first, f"{what}: the first error line does not name the file {config}:\n{first}"
    assert key in first, f"{what}: the first error line does not name {key!r}:\n{first}"

    assert os.readlink(link) == target
    assert (link / "polyvenv.json").read_bytes() == stamp
    assert sorted(p.name for p in (envs_dir / ".builds").iterdir()) == builds
    assert workspace.builds() == history
    assert not (workspace.root / "x").exists() and not (workspace.root.parent / "x").exists()
    versions = imported_versions(workspace.env_python("app"), ["alpha", "beta"], cli_env, also=None)
    assert versions == {"alpha": "1.0", "beta": "1.0"}
