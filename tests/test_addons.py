"""Add-ons declared from code (issue 14): declared, built with progress, loaded and uninstalled in the running
host, with the config file's checks, kept across a restart; a folder dropped in is found by discover."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import polyvenv
from polyvenv.config import load_config
from polyvenv.runtime.workspace import Discovered


def _addon(folder: Path, module: str, uses: str = "alpha", requirements: str | None = None) -> Path:
    """An add-on folder: ``<module>.py`` reporting the version of ``uses`` it imports, and a
    requirements.txt when ``requirements`` is given."""
    folder.mkdir(parents=True)
    (folder / f"{module}.py").write_text(f"import {uses}\n\n\ndef version():\n    return {uses}.__version__\n")
    if requirements is not None:
        (folder / "requirements.txt").write_text(requirements + "\n")
    return folder


def _offline(wheelhouse: Path) -> dict:
    return {"offline": True, "wheelhouse": wheelhouse, "quiet": True}


def _env_modules(prefix: str) -> list[str]:
    return [k for k in sys.modules if k == prefix or k.startswith(prefix + ".")]


def test_declared_from_code_synced_with_progress_events_then_imported(tmp_path, wheelhouse, monkeypatch):
    monkeypatch.setenv("POLYVENV_PROGRESS_INTERVAL", "0.05")
    source = _addon(tmp_path / "addons" / "hello", "hello_addon")
    ws = polyvenv.Workspace.open(tmp_path)
    spec = ws.add_env("hello", requirements=["alpha==1.0"], source=source)
    assert spec.requirements == ("alpha==1.0",) and spec.source == source and ws.env_names == ["hello"]

    events: list[polyvenv.SyncEvent] = []
    outcomes = ws.sync("hello", progress=events.append, **_offline(wheelhouse))
    kinds = [e.kind for e in events]
    assert kinds[0] == "started" and events[0].env == "hello" and events[0].message.startswith("building (")
    assert events[0].log is not None and events[0].log.is_file()  # the installer's log, as the terminal shows
    assert "running" in kinds  # the heartbeat, while the build runs
    assert kinds[-2:] == ["finished", "done"] and events[-2].message.startswith("built in ")
    assert events[-1].outcome == outcomes[0] and outcomes[0].action == "built" and events[-1].message == "built"

    env = ws.env("hello")
    try:
        addon = env.import_module("hello_addon")
        assert addon.version() == "1.0" and Path(addon.__file__) == source / "hello_addon.py"
        assert Path(env.import_module("alpha").__file__).is_relative_to(ws.env_dir("hello").resolve())
        assert not _env_modules("alpha") and not _env_modules("hello_addon")  # nothing under the real names
    finally:
        env.unload()

    again: list[polyvenv.SyncEvent] = []
    ws.sync("hello", progress=again.append, **_offline(wheelhouse))
    assert [(e.kind, e.message) for e in again] == [("done", "up to date")]  # a no-op shows only its verdict


BAD = [
    # (keyword arguments of add_env, the same env as a config file's table)
    ({"requirements": ["alpha=>1.0"]}, 'requirements = ["alpha=>1.0"]'),
    ({"requirement": ["alpha==1.0"]}, 'requirement = ["alpha==1.0"]'),
    ({"requirements": "alpha==1.0"}, 'requirements = "alpha==1.0"'),
    ({"isolation": "threads"}, 'isolation = "threads"'),
    ({"offline": True}, "offline = true"),
    ({"source": "no/such/dir"}, 'source = "no/such/dir"'),
]


@pytest.mark.parametrize("settings, toml", BAD, ids=["requirement", "unknown-key", "not-a-list", "isolation",
                                                     "top-level-key", "missing-source"])
def test_bad_settings_from_code_give_the_config_files_error(tmp_path, settings, toml):
    (tmp_path / "file").mkdir()
    (tmp_path / "file" / "polyvenv.toml").write_text(f"[envs.e]\n{toml}\n")
    with pytest.raises(polyvenv.ConfigError) as from_file:
        polyvenv.Workspace.load(tmp_path / "file")
    (tmp_path / "code").mkdir()
    ws = polyvenv.Workspace.open(tmp_path / "code")
    with pytest.raises(polyvenv.ConfigError) as from_code:
        ws.add_env("e", **settings)
    assert type(from_code.value) is type(from_file.value)
    where = str(tmp_path / "file" / "polyvenv.toml")
    same = [p.replace(where, "Workspace.add_env", 1).replace(str(tmp_path / "file"), str(tmp_path / "code"))
            for p in from_file.value.problems]  # a relative source is under each workspace's root
    assert same == from_code.value.problems
    assert str(from_code.value).startswith("Workspace.add_env: [envs.e] ")
    assert ws.env_names == [] and not (tmp_path / "code" / ".polyvenv").exists()  # nothing was kept


@pytest.mark.parametrize("name", ["../evil", ".hidden", "a/b", "declared.json", "x" * 201])
def test_a_name_that_cannot_be_an_env_is_refused_as_in_the_config_file(tmp_path, name):
    (tmp_path / "file").mkdir()
    (tmp_path / "file" / "polyvenv.toml").write_text(f"[envs.{json.dumps(name)}]\nrequirements = []\n")
    with pytest.raises(polyvenv.ConfigError) as from_file:
        polyvenv.Workspace.load(tmp_path / "file")
    with pytest.raises(polyvenv.ConfigError) as from_code:
        polyvenv.Workspace.open(tmp_path).add_env(name, requirements=[])
    assert from_code.value.problems == [p.replace(str(tmp_path / "file" / "polyvenv.toml"), "Workspace.add_env")
                                        for p in from_file.value.problems]
    with pytest.raises(polyvenv.ConfigError, match="an env name is a string"):
        polyvenv.Workspace.open(tmp_path).add_env(7, requirements=[])  # type: ignore[arg-type]


def test_an_env_of_the_config_file_is_changed_there_not_from_code(workspace):
    workspace.write("""
        [envs.e]
        requirements = ["alpha==1.0"]
    """)
    workspace.cli("sync")  # leaves the config's snapshot, and the memo of a no-op sync
    assert "1 env: 0 built, 1 up to date" in workspace.cli("sync").stderr
    ws = polyvenv.Workspace.open(workspace.root)
    with pytest.raises(polyvenv.ConfigError, match=r"env 'e' is declared in .*polyvenv.toml: change it there"):
        ws.add_env("e", requirements=["alpha==2.0"])
    with pytest.raises(polyvenv.ConfigError, match=r"env 'e' is declared in .*polyvenv.toml, not declared from code"):
        ws.remove_env("e")
    ws.add_env("f", requirements=["alpha==2.0"])  # beside the file's envs, kept in its envs dir
    assert polyvenv.Workspace.load(workspace.root).env_names == ["e", "f"]  # not the snapshot of before
    assert "2 envs: 1 built, 1 up to date" in workspace.cli("sync").stderr  # not the memo of before
    assert [e["name"] for e in json.loads(workspace.cli("list", "--json").stdout)] == ["e", "f"]
    workspace.write("""
        [envs.e]
        requirements = ["alpha==1.0"]
        [envs.f]
        requirements = ["alpha==1.0"]
    """)  # the file declares f too, later: the file wins, and says so
    with pytest.warns(polyvenv.DeclaredEnvWarning, match=r"env 'f' declared from code is also declared in .*"
                                                         r"polyvenv.toml, which wins; .*Workspace.remove_env\('f'\)"):
        ws = polyvenv.Workspace.open(workspace.root)
    assert ws.config.envs["f"].requirements == ("alpha==1.0",)
    with pytest.raises(polyvenv.ConfigError, match="env 'f' is declared in .*polyvenv.toml: change it there"):
        ws.add_env("f", requirements=["alpha==2.0"])


def test_a_changed_declaration_keeps_the_loaded_env_until_its_new_build_is_loaded(tmp_path, wheelhouse):
    first, second = _addon(tmp_path / "a" / "e", "e_addon"), _addon(tmp_path / "b" / "e", "e_addon", uses="beta")
    ws = polyvenv.Workspace.open(tmp_path)
    ws.add_env("e", requirements=["alpha==1.0"], source=first)
    declared = tmp_path / ".polyvenv" / "declared.json"
    kept = declared.stat()
    ws.add_env("e", requirements=("alpha==1.0",), source=str(first))  # the same declaration: nothing written
    assert (declared.stat().st_ino, declared.stat().st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)
    ws.sync(**_offline(wheelhouse))
    env = ws.env("e")
    try:
        assert env.import_module("e_addon").version() == "1.0"
        ws.add_env("e", requirements=["alpha==2.0"], source=first)  # a new build: the running one stays
        assert ws.env("e") is env and env.import_module("e_addon").version() == "1.0"
        ws.sync("e", **_offline(wheelhouse))
        env.unload()
        assert env.import_module("e_addon").version() == "2.0"  # the new build, once loaded again
        ws.add_env("e", requirements=["alpha==2.0", "beta==1.0"], source=second)  # what the Env is made from
        assert env.loaded == []  # unloaded now: the next env("e") is made from the new declaration
        ws.sync("e", **_offline(wheelhouse))
        renewed = ws.env("e")
        assert renewed is not env and renewed.import_module("e_addon").version() == "1.0"  # beta's version
        assert Path(renewed.import_module("e_addon").__file__) == second / "e_addon.py"
    finally:
        ws.env("e").unload()
        env.unload()


def test_declarations_from_several_workspaces_at_once_are_all_kept(tmp_path):
    def declare(n: int) -> None:  # a workspace object each, as separate processes have
        ws = polyvenv.Workspace.open(tmp_path)
        for i in range(8):
            ws.add_env(f"e{n}-{i}", requirements=[f"alpha=={n}.{i}"])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(declare, range(4)))  # raises what any of them raised
    assert len(polyvenv.Workspace.open(tmp_path).env_names) == 32


def test_an_env_removed_from_code_is_unloaded_and_its_build_deleted_and_nothing_else(tmp_path, wheelhouse):
    ws = polyvenv.Workspace.open(tmp_path)
    ws.add_env("one", requirements=["alpha==1.0"], source=_addon(tmp_path / "addons" / "one", "one_addon"))
    ws.add_env("two", requirements=["alpha==2.0"], source=_addon(tmp_path / "addons" / "two", "two_addon"))
    ws.sync(**_offline(wheelhouse))
    one, two = ws.env("one"), ws.env("two")
    try:
        addon_one, addon_two = one.import_module("one_addon"), two.import_module("two_addon")
        one_build, two_build = ws.env_dir("one").resolve(), ws.env_dir("two").resolve()
        one_modules = [m for m in sys.modules if m.startswith(addon_one.__name__.partition(".")[0])]
        assert one_modules and one.loaded

        calls, failures, stop = [0], [], threading.Event()

        def keep_calling() -> None:  # another add-on serves from a thread while `one` is uninstalled
            while not stop.is_set():
                try:
                    assert addon_two.version() == "2.0"
                    calls[0] += 1
                except BaseException as e:  # noqa: BLE001 - reported below
                    failures.append(e)

        caller = threading.Thread(target=keep_calling)
        caller.start()
        try:
            said = ws.remove_env("one")
        finally:
            stop.set()
            caller.join()
        assert said == "one: removed (0 shims)" and failures == [] and calls[0] > 0
        assert not [m for m in one_modules if m in sys.modules] and one.loaded == []  # unloaded
        assert addon_one.version() == "1.0"  # an object the host still holds keeps working
        assert not one_build.exists() and not (tmp_path / ".polyvenv" / "one").exists()  # its build deleted
        assert ws.env_names == ["two"] and "one" not in json.loads((tmp_path / ".polyvenv" / "declared.json")
                                                                   .read_text())["envs"]
        assert (tmp_path / "addons" / "one" / "one_addon.py").is_file()  # the add-on's own files: not polyvenv's
        assert two_build.is_dir() and two.loaded and addon_two.version() == "2.0"  # the other one untouched
        with pytest.raises(polyvenv.EnvNotFound):
            ws.env("one")
        with pytest.raises(polyvenv.EnvNotFound, match="no env named 'one' is built or declared"):
            ws.remove_env("one")
    finally:
        two.unload()
    ws.add_env("never_built", requirements=["alpha==1.0"])
    assert ws.remove_env("never_built") == "never_built: forgotten (nothing of it was built)"


def test_a_new_process_sees_the_envs_declared_from_code(tmp_path, wheelhouse):
    ws = polyvenv.Workspace.open(tmp_path)
    ws.add_env("hello", requirements=["alpha==1.0"], source=_addon(tmp_path / "addons" / "hello", "hello_addon"))
    ws.add_env("gone", requirements=["alpha==2.0"], source=_addon(tmp_path / "addons" / "gone", "gone_addon"))
    ws.sync(**_offline(wheelhouse))
    shutil.rmtree(tmp_path / "addons" / "gone")  # an add-on folder deleted while no host runs
    restart = textwrap.dedent(f"""
        import sys, warnings
        import polyvenv
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ws = polyvenv.Workspace.open({str(tmp_path)!r})
        print(ws.env_names)
        print(ws.env("hello").import_module("hello_addon").version())
        print([type(w.message).__name__ + ": " + str(w.message) for w in caught])
        print("alpha" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", restart], capture_output=True, text=True, check=True).stdout
    names, version, caught, leaked = out.splitlines()
    assert names == "['hello']" and version == "1.0" and leaked == "False"
    assert "DeclaredEnvWarning: " in caught and "[envs.gone] source: " in caught and "is not a directory" in caught
    assert "Workspace.remove_env('gone')" in caught
    # the command line sees them too, from the workspace's directory, which holds no config file
    listed = {e["name"]: e for e in json.loads(subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "polyvenv", "list", "--json"], cwd=tmp_path, capture_output=True,
        text=True, check=True).stdout)}
    assert listed["hello"]["state"] == "ok" and "gone" not in listed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", polyvenv.DeclaredEnvWarning)
        assert polyvenv.Workspace.open(tmp_path).remove_env("gone") == "gone: removed (0 shims)"
    subprocess.run([sys.executable, "-m", "polyvenv", "gc"], cwd=tmp_path, check=True, capture_output=True)
    assert (tmp_path / ".polyvenv" / "hello").resolve().is_dir()  # gc keeps what code declared
    assert list(load_config(tmp_path).envs) == ["hello"]


def test_a_folder_dropped_into_the_addons_dir_is_installed_and_loaded_by_discover(tmp_path, wheelhouse):
    addons = tmp_path / "addons"
    _addon(addons / "one", "one_addon", requirements="alpha==1.0")
    ws = polyvenv.Workspace.open(tmp_path)
    found = ws.discover(addons)
    assert found == Discovered(("one",), ("one",), ())
    ws.sync(*found.added, **_offline(wheelhouse))
    one = ws.env("one")
    two = None
    try:
        assert one.import_module("one_addon").version() == "1.0"
        _addon(addons / "two", "two_addon", requirements="alpha==2.0")  # dropped in while the host runs
        found = ws.discover(addons)
        assert found.envs == ("one", "two") and found.added == ("two",) and found.gone == ()
        ws.sync(*found.added, **_offline(wheelhouse))
        two = ws.env("two")
        assert two.import_module("two_addon").version() == "2.0" and one.import_module("one_addon").version() == "1.0"
        assert ws.config.envs["two"] == next(s for s in load_config(tmp_path).envs.values() if s.name == "two")
        shutil.rmtree(addons / "one")  # and one taken out
        assert polyvenv.Workspace.open(tmp_path).discover(addons).gone == ("one",)  # as a restarted host sees it
        found = ws.discover(addons)
        assert found.envs == ("two",) and found.added == () and found.gone == ("one",)
        assert ws.remove_env("one") == "one: removed (0 shims)"
        assert not one.loaded and not (tmp_path / ".polyvenv" / "one").exists()
        assert two.import_module("two_addon").version() == "2.0" and ws.env_names == ["two"]
    finally:
        for env in (one, two):
            if env is not None:
                env.unload()
    # what `polyvenv sync --discover` remembers: the command line sees the same envs
    listed = json.loads(subprocess.run([sys.executable, "-m", "polyvenv", "list", "--json"], cwd=tmp_path,
                                       capture_output=True, text=True, check=True).stdout)
    assert [(e["name"], e["state"]) for e in listed] == [("two", "ok")]


def test_a_process_env_removed_from_code_stops_its_worker_and_its_build_goes(tmp_path, wheelhouse):
    import os

    ws = polyvenv.Workspace.open(tmp_path)
    ws.add_env("worker", requirements=["alpha==1.0"], isolation="process")
    ws.sync(**_offline(wheelhouse))
    env = ws.env("worker")
    assert isinstance(env, polyvenv.ProcessEnv) and env.import_module("alpha").__version__ == "1.0"
    pid, build = env.pid, ws.env_dir("worker").resolve()
    assert pid is not None
    assert ws.remove_env("worker") == "worker: removed (0 shims)"  # not kept as in use by its own worker
    assert env.pid is None and not build.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_watch_installs_a_folder_dropped_in_and_uninstalls_one_taken_out(tmp_path, wheelhouse):
    """``ws.watch(callback, addons=DIR)``: from the watch thread, a folder dropped into DIR is built and its
    env made, one taken out unloaded and its env deleted, one that failed to build retried once its folder
    changes; each told to the callback as an AddonChange, the host importing the new add-on there."""
    addons = tmp_path / "addons"
    _addon(addons / "one", "one_addon", requirements="alpha==1.0")
    ws = polyvenv.Workspace.open(tmp_path)
    ws.sync(*ws.discover(addons).envs, **_offline(wheelhouse))
    one = ws.env("one")
    assert one.import_module("one_addon").version() == "1.0"
    calls, lock = [], threading.Lock()

    def on_change(env, change):
        version = None
        if isinstance(change, polyvenv.AddonChange) and change.kind in ("installed", "removing"):
            version = env.import_module(f"{change.name}_addon").version()  # the host (un)registers it
        with lock:
            calls.append((env and env.name, tuple(change) if isinstance(change, tuple) else change, version))

    def wait_for(count: int) -> list:
        deadline = time.monotonic() + 60  # a deadline, never a timed assertion
        while time.monotonic() < deadline:
            with lock:
                if len(calls) >= count:
                    return list(calls)
            time.sleep(0.02)
        return list(calls)

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        with ws.watch(on_change, interval=0.05, watcher="poll", addons=addons, **_offline(wheelhouse)):
            _addon(addons / "two", "two_addon", requirements="alpha==2.0")  # dropped in while the host runs
            installed = wait_for(1)[:1]
            built = str((tmp_path / ".polyvenv" / "two").resolve())
            assert installed == [("two", ("installed", "two", addons / "two", built), "2.0")]
            shutil.rmtree(addons / "one")  # and one taken out
            assert wait_for(3)[1:] == [("one", ("removing", "one", addons / "one", ""), "1.0"),  # still loaded
                                       ("one", ("removed", "one", addons / "one", "one: removed (0 shims)"), None)]
            _addon(addons / "bad", "bad_addon", requirements="alpha==9.9")  # nothing in the wheelhouse has it
            failed = wait_for(4)[3:]
            assert [(env, change[:3]) for env, change, _ in failed] == [(None, ("failed", "bad", addons / "bad"))]
            (addons / "bad" / "requirements.txt").write_text("alpha==1.0\n")  # fixed: built again
            installed = wait_for(5)[4:]
            built = str((tmp_path / ".polyvenv" / "bad").resolve())
            assert installed == [("bad", ("installed", "bad", addons / "bad", built), "1.0")]
    try:
        assert "alpha==9.9" in failed[0][1][3]
        assert [str(w.message).split(":")[0] for w in said if isinstance(w.message, polyvenv.ReloadWarning)] == [
            f"add-on 'bad' ({addons / 'bad'}) was not installed"]
        assert len(calls) == 5  # no reload of the folder taken out, nothing else
        assert not one.loaded and not (tmp_path / ".polyvenv" / "one").exists() and _env_modules("one_addon") == []
        assert _env_modules("two_addon") == [] and "one" not in ws.env_names  # the env's own, not the host's
        assert ws.env("two").import_module("two_addon").version() == "2.0"
        assert sorted(polyvenv.Workspace.open(tmp_path).env_names) == ["bad", "two"]  # a restart sees the same
    finally:
        for name in ws.env_names:
            ws.env(name).unload()
