"""A running env sees one build (issue 9, finding 6).

`<envs-dir>/<name>` is a link that `sync` switches to a new build while hosts
run. A host that loaded an env keeps loading it from the build it resolved at
first use, its lazily imported modules included, until `unload()`; the next
process gets the new build; `gc` keeps a superseded build while a process
still holds it, and removes it once that process unloads the env or dies.
Each test drives real processes: a host, the real CLI's `sync` and `gc`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import Workspace
from wheelgen import make_wheel

SRC = Path(__file__).resolve().parent.parent / "src"
sys.path.insert(0, str(SRC))
from polyvenv.provision.store import Store, remove_tree  # noqa: E402
from polyvenv.runtime.manifest import Manifest, write_manifest  # noqa: E402
from polyvenv.runtime.lease import hold, retiring  # noqa: E402

HOST = r"""
import json, sys
sys.path.insert(0, {src!r})
import polyvenv

env = polyvenv.Workspace.load({root!r}).env("mix")
mixdemo = env.import_module("mixdemo")
print(mixdemo.VERSION, flush=True)
sys.stdin.readline()  # meanwhile another process switches the env to mixdemo 2.0
sub = env.import_module("mixdemo.sub")
print(json.dumps({{"top": mixdemo.VERSION, "sub": sub.VERSION, "late": mixdemo.late(),
                  "dist": env.version("mixdemo")}}), flush=True)
sys.stdin.readline()
env.unload()
print(env.import_module("mixdemo.sub").VERSION, flush=True)
sys.stdin.readline()
"""

FRESH = r"""
import sys
sys.path.insert(0, {src!r})
import polyvenv

env = polyvenv.Workspace.load({root!r}).env("mix")
print(env.import_module("mixdemo.sub").VERSION, env.import_module("mixdemo").late(), env.version("mixdemo"))
env.unload()
"""


def mixdemo_files(version: str) -> dict[str, str]:
    """``mixdemo`` whose ``sub`` and ``other`` are imported only when asked for (``late()``: by the env's code)."""
    return {
        "mixdemo/__init__.py": f"VERSION = {version!r}\n\ndef late():\n    from . import other\n    return other.VERSION\n",
        "mixdemo/sub.py": f"VERSION = {version!r}\n",
        "mixdemo/other.py": f"VERSION = {version!r}\n",
    }


@pytest.fixture(scope="module")
def mix_wheelhouse(tmp_path_factory) -> Path:
    wh = tmp_path_factory.mktemp("mix-wheels")
    for version in ("1.0", "2.0"):
        make_wheel(wh, "mixdemo", version, mixdemo_files(version))
    return wh


def configure(ws: Workspace, version: str, isolation: str) -> None:
    ws.write(f"""
        [envs.mix]
        requirements = ["mixdemo=={version}"]
        isolation = "{isolation}"
    """)


def start_host(ws: Workspace) -> subprocess.Popen:
    host = subprocess.Popen([sys.executable, "-c", HOST.format(src=str(SRC), root=str(ws.root))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert host.stdout.readline().strip() == "1.0"
    return host


def step(host: subprocess.Popen) -> str:
    host.stdin.write("\n")
    host.stdin.flush()
    return host.stdout.readline().strip()


def switch_to_2(ws: Workspace, isolation: str) -> Path:
    """Another process's sync switches the env to mixdemo 2.0; return the build it superseded."""
    link = ws.root / ".polyvenv" / "mix"
    old = (link.parent / os.readlink(link)).resolve()
    configure(ws, "2.0", isolation)
    ws.cli("sync")
    assert (link.parent / os.readlink(link)).resolve() != old
    return old


def fresh_process(ws: Workspace) -> str:
    return subprocess.run([sys.executable, "-c", FRESH.format(src=str(SRC), root=str(ws.root))],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(params=["namespace", "process"])
def mix(request, tmp_path, mix_wheelhouse):
    root = tmp_path / "project"
    root.mkdir()
    ws = Workspace(root, mix_wheelhouse)
    configure(ws, "1.0", request.param)
    ws.cli("sync")
    return ws, request.param


def test_a_running_host_keeps_the_build_it_resolved_across_another_process_sync(mix):
    ws, isolation = mix
    host = start_host(ws)
    try:
        old = switch_to_2(ws, isolation)
        # the host's lazily imported modules come from its build, as does its metadata
        assert json.loads(step(host)) == {"top": "1.0", "sub": "1.0", "late": "1.0", "dist": "1.0"}
        assert fresh_process(ws) == "2.0 2.0 2.0"  # the next process gets the new build
        gc = ws.cli("gc")
        assert old.is_dir() and (old / "polyvenv.json").exists(), gc.stderr
        assert f"kept {old}: in use by a running process" in gc.stderr
        assert step(host) == "2.0"  # unload: the next import resolves the env's link again
        gc = ws.cli("gc")
        assert not old.exists() and f"removed {old}" in gc.stderr  # unload let go of the old build
        host.stdin.write("\n")
        host.stdin.flush()
        assert host.wait(timeout=30) == 0
    finally:
        host.kill()
        host.wait()


def test_gc_removes_a_superseded_build_once_the_host_holding_it_is_killed(mix):
    ws, isolation = mix
    host = start_host(ws)
    try:
        old = switch_to_2(ws, isolation)
        ws.cli("gc")
        assert (old / "polyvenv.json").exists()
    finally:
        host.send_signal(signal.SIGKILL)
        host.wait()
    gc = ws.cli("gc")
    assert not old.exists() and f"removed {old}" in gc.stderr
    assert fresh_process(ws) == "2.0 2.0 2.0"


def test_remove_keeps_a_build_a_running_host_holds_until_gc_finds_it_free(mix):
    ws, isolation = mix
    host = start_host(ws)
    build = (ws.root / ".polyvenv" / os.readlink(ws.root / ".polyvenv" / "mix")).resolve()
    try:
        removed = ws.cli("remove", "mix")
        assert not (ws.root / ".polyvenv" / "mix").exists()  # the env is gone for every new process
        assert (build / "polyvenv.json").exists() and "in use by a running process" in removed.stderr + removed.stdout
    finally:
        host.send_signal(signal.SIGKILL)
        host.wait()
    ws.cli("gc")
    assert not build.exists()


RUN = r"""
import sys
import mixdemo
print(mixdemo.VERSION, flush=True)
sys.stdin.readline()
import mixdemo.sub
print(mixdemo.sub.VERSION, mixdemo.late(), flush=True)
sys.stdin.readline()
"""


def test_a_command_under_polyvenv_run_keeps_its_build_and_gc_waits_for_it(tmp_path, mix_wheelhouse):
    ws = Workspace(tmp_path, mix_wheelhouse)
    configure(ws, "1.0", "namespace")
    ws.cli("sync")
    command = subprocess.Popen([sys.executable, "-m", "polyvenv", "run", "mix", "--", "python", "-c", RUN],
                               cwd=ws.root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert command.stdout.readline().strip() == "1.0"
        old = switch_to_2(ws, "namespace")
        assert step(command) == "1.0 1.0"  # its sys.prefix is the build, not the link
        ws.cli("gc")
        assert (old / "polyvenv.json").exists()
    finally:
        command.kill()  # polyvenv itself: the command it started holds the build on its own
        command.wait()
    assert ws.cli("gc").stderr.count(f"kept {old}: in use by a running process") == 1
    command.stdin.close()  # the orphaned python reads EOF and exits
    for _ in range(100):
        if f"removed {old}" in ws.cli("gc").stderr:
            break
    assert not old.exists()


def test_a_build_deleted_while_a_host_waits_for_its_lease_is_resolved_again(tmp_path):
    """The race: a host resolved the link to the old build just as gc took that build to delete it.
    The host waits for the lock, sees the build went, and holds the one the link points at now."""
    store = Store(tmp_path)
    old, new = store.build_dir("e", "1" * 16), store.build_dir("e", "2" * 16)
    for build in (old, new):
        build.mkdir(parents=True)
        write_manifest(build, Manifest("e", build.name))
    store.switch("e", old)
    leases = []
    with retiring(old) as unused:  # gc holds the old build, about to delete it
        assert unused
        waiter = threading.Thread(target=lambda: leases.append(hold(store.link("e"))))
        waiter.start()
        inode = f":{os.stat(old / 'polyvenv.json').st_ino} "
        for _ in range(500):  # until the host waits for that lock (a blocked request shows as "->")
            if any("->" in line and inode in line for line in Path("/proc/locks").read_text().splitlines()):
                break
            time.sleep(0.01)
        else:
            pytest.fail("the host never waited for the old build's lock")
        store.switch("e", new)
        remove_tree(old)
    waiter.join(timeout=10)
    assert leases and leases[0].build == new and leases[0].held
    with retiring(new) as unused:
        assert not unused  # the host holds the new build
    leases[0].release()
    with retiring(new) as unused:
        assert unused


def test_without_flock_a_superseded_build_is_kept_for_the_grace_period(tmp_path, monkeypatch):
    """Where the platform has no flock (the runtime cannot hold a lease), gc keeps a build no longer
    current until its env's link changed GRACE seconds ago."""
    from polyvenv.runtime import lease

    build = tmp_path / ".builds" / "e-1"
    build.mkdir(parents=True)
    write_manifest(build, Manifest("e", "1"))
    monkeypatch.setattr(lease, "fcntl", None)
    assert not hold(build).held
    with retiring(build, switched_at=time.time() - 60) as unused:
        assert not unused
    with retiring(build, switched_at=time.time() - lease.GRACE - 60) as unused:
        assert unused


def test_repair_never_rebuilds_a_build_a_running_host_holds(mix):
    """`sync --repair` rebuilds a damaged build in its own place: while a host loads from it, that
    would pull its files away; refused in one line instead, and done once the host is gone."""
    ws, isolation = mix
    host = start_host(ws)
    link = ws.root / ".polyvenv" / "mix"
    build = (link.parent / os.readlink(link)).resolve()
    other = next(build.glob("lib/python*/site-packages/mixdemo/other.py"))
    try:
        other.write_text(other.read_text() + "# damaged\n")  # not yet imported by the host
        proc = ws.cli("sync", "--repair", check=False)
        assert proc.returncode == 1
        assert "is damaged, but a running process loads from it" in proc.stderr
        assert (build / "polyvenv.json").exists() and other.exists()  # the host's build is whole as it was
    finally:
        host.send_signal(signal.SIGKILL)
        host.wait()
    ws.cli("sync", "--repair")
    assert ws.status()["mix"]["state"] == "ok"
    assert "# damaged" not in next(build.glob("lib/python*/site-packages/mixdemo/other.py")).read_text()


def test_a_console_script_running_from_a_superseded_build_keeps_it(tmp_path):
    """A shim runs the build's own bin/python (its shebang): no lease, but gc finds it in /proc."""
    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc here to find processes in")
    wh = tmp_path / "wheels"
    wh.mkdir()
    for version in ("1.0", "2.0"):
        make_wheel(wh, "sleeper", version, {"sleeper/__init__.py": (
            f"VERSION = {version!r}\n\ndef main():\n    import sys, time\n"
            "    print(VERSION, flush=True)\n    sys.stdin.readline()\n")}, scripts={"sleeper": "sleeper:main"})
    root = tmp_path / "project"
    root.mkdir()
    ws = Workspace(root, wh)
    config = 'bin-dir = "bin"\n[envs.s]\nrequirements = ["sleeper=={v}"]\nscripts = ["sleeper"]\n'
    ws.write(config.format(v="1.0"))
    ws.cli("sync")
    script = subprocess.Popen([str(root / "bin" / "sleeper")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert script.stdout.readline().strip() == "1.0"
        link = root / ".polyvenv" / "s"
        old = (link.parent / os.readlink(link)).resolve()
        ws.write(config.format(v="2.0"))
        ws.cli("sync")
        gc = ws.cli("gc")
        assert old.is_dir() and f"kept {old}" in gc.stderr, gc.stderr
    finally:
        script.communicate("\n", timeout=30)
    gc = ws.cli("gc")
    assert not old.exists() and f"removed {old}" in gc.stderr
