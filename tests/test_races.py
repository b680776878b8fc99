"""Races a user meets: a config saved while `sync` decides, syncs of older and newer configs at
once, and Ctrl-C or SIGTERM in the middle of a build.

Everything drives the real CLI in real subprocesses with real signals; what is checked is what a
user sees afterwards: the env's link, `polyvenv list --json`, the lines polyvenv printed, and
which processes are still running (read from /proc).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from polyvenv.config import load_config
from polyvenv.runtime.workspace import Workspace
from wheelgen import pure_wheel

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="sends signals to process groups, reads /proc")

SEED = int(os.environ.get("POLYVENV_FAULT_SEED", "20240611"))


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory) -> dict[str, str]:
    """Private uv and polyvenv caches: the signal tests stop uv mid-install."""
    caches = tmp_path_factory.mktemp("caches")
    env = dict(os.environ, UV_CACHE_DIR=str(caches / "uv"), POLYVENV_CACHE_DIR=str(caches / "polyvenv"))
    env.pop("VIRTUAL_ENV", None)
    return env


@pytest.fixture(scope="module")
def slow_wheelhouse(tmp_path_factory, wheelhouse) -> Path:
    """The generated wheels and hugepkg, 10,000 modules: unpacking it into an empty uv cache takes
    uv seconds, long enough to tell a stopped uv from one that finished on its own."""
    directory = tmp_path_factory.mktemp("slow-wheelhouse")
    for wheel in wheelhouse.glob("alpha-*.whl"):
        shutil.copy(wheel, directory)
    pure_wheel(directory, "hugepkg", "1.0", modules=10_000)
    return directory


def polyvenv(*args: str) -> list[str]:
    return [sys.executable, "-m", "polyvenv", *args]


def run(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(polyvenv(*args), cwd=root, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)


def list_json(root: Path, env: dict[str, str]) -> dict[str, dict]:
    proc = run(root, env, "list", "--json")
    assert proc.returncode == 0, proc.stderr
    return {e["name"]: e for e in json.loads(proc.stdout)}


def identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def snapshot_path(root: Path, env: dict[str, str]) -> Path:
    """The copy of the config `sync` leaves for the runtime, written right after it read the file."""
    name = os.path.realpath(root / "polyvenv.toml").replace(os.sep, "%") + ".json"
    return Path(env["POLYVENV_CACHE_DIR"], "configs", name)


def wait_for_change(path: Path, before: tuple[int, int] | None, proc: subprocess.Popen) -> bool:
    """Wait until ``path`` is written anew (True) or ``proc`` ends (False)."""
    while identity(path) == before:
        if proc.poll() is not None:
            return identity(path) != before
        time.sleep(0.0001)
    return True


def write_config(root: Path, wheelhouse: Path, envs: dict[str, list[str]]) -> None:
    """The whole file at once, as an editor saves it (a new file renamed over the old one)."""
    lines = [f'wheelhouse = "{wheelhouse}"', "offline = true", ""]
    for name, requirements in envs.items():
        lines += [f"[envs.{name}]", f"requirements = {json.dumps(requirements)}", ""]
    tmp = root / ".polyvenv.toml.saving"
    tmp.write_text("\n".join(lines))
    os.replace(tmp, root / "polyvenv.toml")


# -- 8. a config saved while a plain `sync` decides "nothing to do" --------------------------------

def test_a_config_saved_while_sync_decides_is_never_hidden_by_the_memo(tmp_path, wheelhouse, cli_env, monkeypatch):
    """The edit lands at a random moment of a plain no-op `sync`: before it reads the config,
    while it decides, or after it wrote its memo. Whichever, the next plain `sync` must bring the
    env to what the file says, and `list` must agree."""
    rng = random.Random(SEED)
    root = tmp_path / "project"
    root.mkdir()
    configs = [{"app": ["alpha==1.0"]}, {"app": ["alpha==2.0"]}]
    builds = []
    for config in configs:  # both builds exist: a toggle is a switch, no uv run
        write_config(root, wheelhouse, config)
        assert run(root, cli_env, "sync").returncode == 0
        builds.append(os.readlink(root / ".polyvenv" / "app"))
    assert builds[0] != builds[1]

    durations = []
    for _ in range(3):  # a no-op, on the full path (the config changed) or answered by the memo
        started = time.monotonic()
        assert run(root, cli_env, "sync").returncode == 0
        durations.append(time.monotonic() - started)
    duration = max(durations)  # the full path's

    # The decision is made between the config's read and the memo's write, a few ms of a run that
    # is mostly start-up: every other save is aimed there by watching for the copy of the config
    # that `sync` leaves for the runtime (written right after it read the file), the rest fall at
    # random moments of the whole run.
    snapshot = snapshot_path(root, cli_env)
    monkeypatch.setenv("POLYVENV_CACHE_DIR", cli_env["POLYVENV_CACHE_DIR"])
    iterations, hidden, stale_copies, aimed_hits, current = 50, [], [], 0, 1
    for i in range(iterations):
        wanted = 1 - current
        write_config(root, wheelhouse, configs[current])  # the same text saved again: no memo answers
        before = identity(snapshot)
        proc = subprocess.Popen(polyvenv("sync"), cwd=root, env=cli_env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if i % 2:
            moment = f"at {rng.uniform(0.2, 1.3) * duration:.3f}s"
            time.sleep(float(moment.split()[1][:-1]))
        else:
            aimed_hits += wait_for_change(snapshot, before, proc)
            moment = "right after its read"
            time.sleep(rng.uniform(0, 0.002))
        write_config(root, wheelhouse, configs[wanted])
        assert proc.wait(timeout=60) == 0
        if Workspace.load(root).config != load_config(root):  # what a host loads: the copy, if current
            stale_copies.append((i, moment))
        after = run(root, cli_env, "sync")  # must see the saved file, memo or not
        assert after.returncode == 0, after.stderr
        if os.readlink(root / ".polyvenv" / "app") != builds[wanted]:
            hidden.append((i, moment, after.stderr.strip()))
        current = wanted
    assert aimed_hits >= iterations // 4, f"only {aimed_hits} saves landed right after a sync read the config"
    state = list_json(root, cli_env)["app"]["state"]
    assert not hidden, (f"{len(hidden)} of {iterations} edits hidden by the no-op memo (seed {SEED}, sync "
                        f"{duration:.3f}s); (iteration, when saved, what the next sync said): {hidden[:5]}; "
                        f"list says {state!r}")
    assert state == "ok"
    assert not stale_copies, (f"{len(stale_copies)} of {iterations} syncs left a copy of the older config that "
                              f"hosts load as current (iteration, when saved): {stale_copies[:5]}")


# -- 9. syncs of older and newer configs at once ---------------------------------------------------

def test_staggered_syncs_with_edits_between_them_end_with_the_newest_config(tmp_path, slow_wheelhouse, cli_env):
    """Each sync starts after the previous one and after an edit of the config, so the older ones
    hold plans the file no longer declares. The first one's build is slow (hugepkg, unpacked into
    an empty uv cache), so the later ones queue for the env's lock and get it in any order. The
    last config on disk must win."""
    rng = random.Random(SEED + 9)
    root = tmp_path / "project"
    root.mkdir()
    write_config(root, slow_wheelhouse, {"app": ["alpha==1.0"]})  # warms the uv cache the later syncs use
    assert run(root, cli_env, "sync").returncode == 0

    # Each sync is started once the previous one has read its config (it leaves a copy for the
    # runtime right after), so each holds a plan of its own generation.
    snapshot = snapshot_path(root, cli_env)
    rounds, syncs = 2, 4
    for r in range(rounds):
        procs, logs = [], []
        for s in range(syncs):
            before = identity(snapshot)
            slow = s == 0
            write_config(root, slow_wheelhouse, {"app": ["hugepkg" if slow else "alpha==1.0", f"alpha!=0.0.{r}.{s}"]})
            env = dict(cli_env, UV_CACHE_DIR=str(tmp_path / f"uv-cache-{r}")) if slow else cli_env
            log = tmp_path / f"sync-{r}-{s}.log"
            with open(log, "w") as out:
                procs.append(subprocess.Popen(polyvenv("sync"), cwd=root, env=env, stdin=subprocess.DEVNULL,
                                              stdout=out, stderr=subprocess.STDOUT))
            logs.append(log)
            assert wait_for_change(snapshot, before, procs[-1]), log.read_text()
            time.sleep(rng.uniform(0, 0.1))
        codes = [p.wait(timeout=120) for p in procs]
        outputs = [log.read_text() for log in logs]
        where = f"round {r} (seed {SEED + 9})"
        assert codes[-1] == 0, f"{where}: the sync of the newest config exited {codes[-1]}:\n{outputs[-1]}"
        for code, output in zip(codes, outputs):
            assert code == 0 or "changed" in output, f"{where}: a sync of an older config failed:\n{output}"
        state = list_json(root, cli_env)["app"]["state"]
        assert state == "ok", (f"{where}: env app is {state!r}, not what the config on disk declares:\n"
                               + "\n---\n".join(outputs))
        again = run(root, cli_env, "sync")
        assert "0 built, 1 up to date" in again.stderr, again.stderr


# -- 10. Ctrl-C and SIGTERM in the middle of a build ---------------------------------------------

def processes() -> dict[int, tuple[int, int, str]]:
    """Every live process: pid -> (parent pid, process group, command line)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
            cmdline = Path("/proc", entry, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()  # state, ppid, pgrp, ...
        if fields[0] != "Z":
            found[int(entry)] = (int(fields[1]), int(fields[2]), cmdline)
    return found


def installing_uv(pid: int) -> int | None:
    """The pid of the `uv pip install` polyvenv ``pid`` runs, if one is running."""
    return next((child for child, (parent, _, cmdline) in processes().items()
                 if parent == pid and " pip install " in cmdline), None)


def group_members(pgid: int) -> list[str]:
    return [cmdline for _, group, cmdline in processes().values() if group == pgid]


@pytest.fixture
def mid_build(tmp_path, slow_wheelhouse, cli_env):
    """A workspace whose two envs have builds in use, and start(): a `polyvenv sync` of a changed
    config where both need hugepkg (in a session of its own, as a terminal runs a command),
    returned once a `uv pip install` is running, with an empty uv cache of its own to unpack into."""
    root = tmp_path / "project"
    root.mkdir()
    env = dict(cli_env, UV_CACHE_DIR=str(tmp_path / "uv-cache"))
    write_config(root, slow_wheelhouse, {"big": ["alpha==1.0"], "other": ["alpha==2.0"]})
    assert run(root, env, "sync").returncode == 0
    in_use = {name: os.readlink(root / ".polyvenv" / name) for name in ("big", "other")}
    write_config(root, slow_wheelhouse, {"big": ["hugepkg", "alpha==1.0"], "other": ["hugepkg", "alpha==2.0"]})

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(polyvenv("sync", "--jobs", "2"), cwd=root, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        deadline = time.monotonic() + 60
        while installing_uv(proc.pid) is None:
            assert proc.poll() is None, f"sync ended before it installed anything:\n{proc.communicate()[1]}"
            assert time.monotonic() < deadline, "no `uv pip install` started within 60 s"
            time.sleep(0.002)
        time.sleep(0.2)  # well into the install
        return proc

    return root, env, in_use, start


def interrupted_report(proc: subprocess.Popen, signal_name: str, code: int, in_use: dict[str, str],
                       root: Path, env: dict[str, str]) -> str:
    """What every interrupted sync must show: its exit code, one true error line and nothing
    claimed done that is not, no uv left running a second after the signal, no env switched."""
    signalled = time.monotonic()
    _, stderr = proc.communicate(timeout=30)
    while (left := group_members(proc.pid)) and time.monotonic() < signalled + 1.0:
        time.sleep(0.01)
    assert not left, f"still running 1 s after {signal_name}: {left}"
    assert proc.returncode == code, f"exit {proc.returncode} on {signal_name}:\n{stderr}"
    errors = [line for line in stderr.splitlines() if "error" in line.lower() or "fail" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("polyvenv: error: interrupted"), stderr
    assert "built in" not in stderr, stderr
    for name, build in in_use.items():
        assert os.readlink(root / ".polyvenv" / name) == build, f"env {name} switched after {signal_name}:\n{stderr}"
        assert name in errors[0].partition("not switched:")[2], f"{name} is not said to be not switched: {errors[0]}"
    assert {e["state"] for e in list_json(root, env).values()} == {"stale"}
    return errors[0]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_polyvenv_alone_stops_its_uv_and_switches_nothing(mid_build, sig):
    root, env, in_use, start = mid_build
    proc = start()
    os.kill(proc.pid, sig)
    line = interrupted_report(proc, sig.name, 128 + sig, in_use, root, env)
    assert sig.name in line, line


def test_ctrl_c_at_a_terminal_prints_only_the_interrupted_line(mid_build):
    """A terminal's Ctrl-C signals the whole foreground group: uv gets SIGINT too and exits
    non-zero; that is the interruption, not a failed install."""
    root, env, in_use, start = mid_build
    proc = start()
    os.killpg(proc.pid, signal.SIGINT)
    interrupted_report(proc, "SIGINT", 130, in_use, root, env)


def test_a_requirements_file_saved_mid_build_never_gives_a_build_named_for_other_contents(tmp_path, wheelhouse):
    """uv reads the requirements file again as it installs: a save while it does must not leave a
    complete build named after the text sync planned from but holding what uv read later."""
    texts = {"1.0": "bigpkg\nalpha==1.0\n", "2.0": "bigpkg\nalpha==2.0\n"}
    env = dict(os.environ, POLYVENV_CACHE_DIR=str(tmp_path / "pvcache"))

    def workspace(name: str, text: str) -> Path:
        root = tmp_path / name
        root.mkdir()
        (root / "requirements.txt").write_text(text)
        (root / "polyvenv.toml").write_text(f'wheelhouse = "{wheelhouse}"\noffline = true\n'
                                            '[envs.app]\nrequirements-file = "requirements.txt"\n')
        return root

    expected = {}  # build name -> the alpha it must hold: the same text gives the same name anywhere
    for version, text in texts.items():
        scratch = workspace(f"scratch-{version}", text)
        assert run(scratch, env, "sync").returncode == 0
        expected[os.readlink(scratch / ".polyvenv" / "app").rpartition("/")[2]] = version

    root = workspace("project", texts["1.0"])
    proc = subprocess.Popen(polyvenv("sync"), cwd=root, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    builds = root / ".polyvenv" / ".builds"
    deadline = time.monotonic() + 60
    while not list(builds.glob("app-*/bin")) and time.monotonic() < deadline:
        time.sleep(0.001)  # the build has started: uv is about to read the file
    (root / "requirements.txt").write_text(texts["2.0"])
    _, stderr = proc.communicate(timeout=120)
    for build in builds.glob("app-*"):
        stamp = build / "polyvenv.json"
        if stamp.exists():  # whatever was stamped holds what its name says
            assert json.loads(stamp.read_text())["distributions"]["alpha"] == expected[build.name], stderr
    if proc.returncode != 0:
        assert "changed while it was being built" in stderr or "changed since this sync read it" in stderr, stderr
    assert run(root, env, "sync").returncode == 0
    status = list_json(root, env)["app"]
    assert status["state"] == "ok" and status["distributions"]["alpha"] == "2.0"
