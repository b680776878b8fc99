"""The typed public API and the runtime core under it: what a program written against polyvenv sees.

Type checkers see every public name (py.typed, the lazy names), warnings share one base, errors say
which env and path they are about, an env's name map works on its own and lets go of all it holds,
and files written whole are never torn by two writers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import polyvenv
from polyvenv.runtime.importer import install_finder
from polyvenv.runtime.namemap import ALIASES, NameMap

SRC = Path(__file__).parent.parent / "src"


def test_a_type_checker_sees_the_lazy_names_and_the_envs_protocol(tmp_path):
    """User code type-checks against the package as installed: py.typed, ``Workspace.env`` typed as
    ``Env | ProcessEnv``, both an ``EnvProtocol``, and the metadata methods typed."""
    assert (SRC / "polyvenv" / "py.typed").is_file()
    user = tmp_path / "user.py"
    user.write_text(textwrap.dedent("""
        import polyvenv

        ws = polyvenv.Workspace.load(".")
        env = ws.env("x")
        reveal_type(env)
        anyone: polyvenv.EnvProtocol = env
        version: str = anyone.version("alpha")
        names = [d.metadata["Name"] for d in anyone.distributions()]
        files = anyone.files("alpha")
        reveal_type(files)
        wrong: int = env.version("alpha")
    """))
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-error-summary",
         "--cache-dir", str(tmp_path / "cache"), str(user)],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "MYPYPATH": str(SRC)})
    lines = [line.split(": ", 1)[1] for line in out.stdout.splitlines()]
    assert lines == [
        'note: Revealed type is "polyvenv.runtime.env.Env | polyvenv.process.env.ProcessEnv"',
        'note: Revealed type is "list[importlib.metadata.PackagePath] | None"',
        'error: Incompatible types in assignment (expression has type "str", variable has type "int")  '
        '[assignment]',
    ], out.stdout + out.stderr


def test_warnings_share_one_base_and_the_old_names_still_work():
    for warning in (polyvenv.VocabularyConflictWarning, polyvenv.ProcessGlobalStateWarning, polyvenv.WorkerRestarted):
        assert issubclass(warning, polyvenv.PolyvenvWarning) and issubclass(warning, UserWarning)
    assert polyvenv.VocabularyConflict is polyvenv.VocabularyConflictWarning
    assert polyvenv.ProcessGlobalState is polyvenv.ProcessGlobalStateWarning
    assert {"EnvProtocol", "VocabularyConflictWarning", "ProcessGlobalStateWarning"} <= set(polyvenv.__all__)


def test_errors_say_which_env_and_path(tmp_path, workspace):
    with pytest.raises(polyvenv.NotBuilt) as raised:
        polyvenv.Env.from_path(tmp_path)
    assert raised.value.path == str(tmp_path) and raised.value.env is None
    workspace.write("""
        [envs.e]
        requirements = ["alpha==1.0"]
    """)
    with pytest.raises(polyvenv.NotBuilt) as raised:
        polyvenv.Workspace.load(workspace.root).env("e")
    assert raised.value.env == "e" and raised.value.path == str(workspace.root / ".polyvenv" / "e")
    missing = polyvenv.EnvImportError("e", "nothere", [])
    assert missing.env == "e" and missing.name == "nothere" and missing.path is None
    refused = polyvenv.ExtensionNotSupported("refused", name="m", path="/x/m.so")
    assert (refused.name, refused.path, refused.env) == ("m", "/x/m.so", None)  # ImportError's own path
    build = polyvenv.BuildError("failed", env="e", log="/x/log")
    assert (build.env, build.log, build.path) == ("e", "/x/log", None)


def test_a_name_map_works_without_an_env_and_unload_lets_go_of_everything(tmp_path):
    """The finder answers from the name map alone; an Env's unload frees its aliases and its finders."""
    site = tmp_path / "site"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("import pkg.sub\nVALUE = pkg.sub.VALUE\n")
    (site / "pkg" / "sub.py").write_text("VALUE = 'from the map'\n")
    names = NameMap("m", [site])
    install_finder()
    try:
        alias = names.module_name("pkg")
        assert alias != "pkg" and len(alias) == 3 and ALIASES.owner(alias) is names
        module = __import__(alias)
        assert module.VALUE == "from the map" and module.__name__ == alias
        assert f"{alias}.sub" in sys.modules and "pkg" not in sys.modules
        assert set(names.modules_view()) >= {"pkg", "pkg.sub"}
    finally:
        for key in [k for k in sys.modules if k.partition(".")[0] in names.aliases]:
            del sys.modules[key]
        names.release()
    assert ALIASES.owner(alias) is None

    env = polyvenv.Env("e", [site])
    assert env.import_module("pkg").VALUE == "from the map"
    held = env.names
    aliases = held.aliases
    assert all(ALIASES.owner(a) is held for a in aliases) and held.sys.path_importer_cache
    env.unload()
    assert all(ALIASES.owner(a) is None for a in aliases) and not held.sys.path_importer_cache
    assert not [k for k in sys.modules if k.partition(".")[0] in aliases]
    assert env.names is not held  # a new load, a new map
    env.unload()


def test_an_old_generation_collected_while_the_alias_registry_is_busy_never_hangs_the_process():
    """A reload's old generation frees its aliases from a finalizer, which runs wherever the collector
    does: here, with a collection at nearly every allocation, inside the registry's own lock (it deadlocked
    there: a host hung in its 14th test). The registry and finalizers are the runtime's own."""
    code = textwrap.dedent("""
        import faulthandler, gc, weakref
        from polyvenv.runtime.namemap import ALIASES
        faulthandler.dump_traceback_later(20, exit=True)
        class Generation:  # kept alive by a cycle, as a module's globals keep their functions
            pass
        owner = object()
        gc.set_threshold(1)
        for i in range(2000):
            old = Generation()
            old.cycle = old
            ALIASES.retire([f"Zz{i}"], "e")
            weakref.finalize(old, ALIASES.free, (f"Zz{i}",))
            del old
            ALIASES.reserve("numpy", owner)
            ALIASES.release(owner)
        gc.collect()
        ALIASES.reserve("numpy", owner)
        print(sum(ALIASES.retired(f"Zz{i}") is not None for i in range(2000)))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(polyvenv.__file__).parent.parent)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0"]  # every collected alias free again


def test_two_writers_of_one_file_never_tear_it_or_fail(tmp_path):
    """Two `sync --discover` runs remember their directories in one file at once: each write is whole,
    neither fails on the other's temporary file."""
    from polyvenv.config import Discovery, load_config, remember_discovery

    (tmp_path / "polyvenv.toml").write_text("")
    config = load_config(tmp_path)
    errors: list[BaseException] = []

    def remember(n: int) -> None:
        try:
            for i in range(30):
                directory = tmp_path / f"d{n}-{i}"
                directory.mkdir()
                remember_discovery(config, Discovery(directory, "*/requirements.txt"))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=remember, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    import json

    assert isinstance(json.loads((config.envs_dir / "discovered.json").read_text()), list)
    assert not [p for p in config.envs_dir.iterdir() if p.name.endswith(".tmp")]


def test_the_manifest_a_build_writes_is_read_back_as_one_typed_record(workspace):
    """One record, one writer, one reader: the build's stamp is the manifest the runtime and `list` read."""
    import json

    from polyvenv.runtime.manifest import Manifest, read_manifest

    workspace.write("""
        [envs.e]
        requirements = ["alpha==1.0"]
    """)
    workspace.cli("sync")
    ws = polyvenv.Workspace.load(workspace.root)
    built = ws.manifest("e")
    assert isinstance(built, Manifest) and built.name == "e" and built.distributions == {"alpha": "1.0"}
    assert built.interpreter is not None and built.interpreter.version.startswith(f"{sys.version_info[0]}.")
    assert built.installer is not None and built.installer.name == "uv" and built.built_at
    raw = json.loads((ws.env_dir("e") / "polyvenv.json").read_text())
    assert raw["format"] == 1 and raw["interpreter"]["path"] == built.interpreter.path
    assert Manifest.from_json(raw) == built == read_manifest(ws.env_dir("e"))
    assert Manifest.from_json({**raw, "format": 2}) is None and Manifest.from_json({**raw, "spec_hash": ""}) is None
    entry = workspace.status()["e"]
    assert entry["python"] == raw["interpreter"] and entry["distributions"] == {"alpha": "1.0"}
    assert entry["spec_hash"] == built.spec_hash and entry["build"] == built.path
