"""Hot reload: ``Env.reload()``, ``ProcessEnv.reload()`` and ``Workspace.watch()`` on real envs and files.

Every check runs a host in a fresh interpreter (a real subprocess), edits real
files or re-syncs the env with the real CLI, and asserts what the host sees:
the new behaviour, the old callback still running, the old generation collected
once dropped, and no module of the env's real names in the host's sys.modules.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from wheelgen import c_extension_wheel, make_wheel, pure_wheel

SRC = Path(__file__).parent.parent / "src"
PLUGIN = "import alpha\n\ndef hello():\n    return 'v1 ' + alpha.__version__\n"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    """alpha 1.0 and 2.0 (pure), cspeed 1.0 and 2.0 (a C extension compiled here), lazy 1.0 and 2.0 (pure,
    importing its own submodule again at each call, as jinja2 does at each template compile)."""
    wh = tmp_path_factory.mktemp("reload-wheels")
    pure_wheel(wh, "alpha", "1.0")
    pure_wheel(wh, "alpha", "2.0")
    for version in ("1.0", "2.0"):
        make_wheel(wh, "lazy", version, {
            "lazy/__init__.py": "from . import part\n\ndef value():\n    from .part import VALUE\n    return VALUE\n",
            "lazy/part.py": f"VALUE = {version!r}\n"})
    c_extension_wheel(wh, sys.executable, version="1.0")
    c_extension_wheel(wh, sys.executable, version="2.0")
    return wh


def make_project(root: Path, wheels: Path, requirements: list[str], isolation: str = "namespace") -> Path:
    """A workspace with env ``p`` (``requirements``, source ``plugin/`` holding ``plug.py``), synced."""
    project = root / "project"
    (project / "plugin").mkdir(parents=True)
    (project / "plugin" / "plug.py").write_text(PLUGIN)
    write_config(project, wheels, requirements, isolation)
    sync(project)
    return project


def write_config(project: Path, wheels: Path, requirements: list[str], isolation: str = "namespace") -> None:
    (project / "polyvenv.toml").write_text(textwrap.dedent(f"""
        wheelhouse = "{wheels}"
        offline = true
        [envs.p]
        requirements = {json.dumps(requirements)}
        source = "plugin"
        isolation = "{isolation}"
    """))


def sync(project: Path) -> None:
    subprocess.run([sys.executable, "-m", "polyvenv", "sync", "-q"], cwd=project, check=True, capture_output=True)


def run_host(project: Path, body: str, timeout: float = 120) -> dict:
    """Run ``body`` in a fresh host (``ws``, ``env`` = env p, ``edit(text)`` rewrites plug.py, ``resync(reqs)``
    changes the pins and syncs); it sets ``result``, which comes back as JSON."""
    code = textwrap.dedent(f"""
        import gc, json, os, subprocess, sys, threading, time, warnings, weakref
        sys.path.insert(0, {str(SRC)!r})
        from pathlib import Path
        import polyvenv
        PROJECT = Path({str(project)!r})
        PLUG = PROJECT / "plugin" / "plug.py"
        ws = polyvenv.Workspace.load(PROJECT)
        env = ws.env("p")

        def edit(text):
            PLUG.write_text(text)

        def resync(requirements):
            config = PROJECT / "polyvenv.toml"
            text = config.read_text()
            head, _, tail = text.partition("requirements = ")
            config.write_text(head + "requirements = " + json.dumps(requirements) + tail[tail.index("\\n"):])
            subprocess.run([sys.executable, "-m", "polyvenv", "sync", "-q"], cwd=PROJECT, check=True)

        def raised(call, kind=Exception):  # what call() raised of kind: [its class name, its message], or None
            try:
                call()
            except kind as error:
                return [type(error).__name__, str(error)]
            return None

        def real_names():
            return sorted(k for k in sys.modules if k.partition(".")[0] in ("plug", "alpha", "cspeed", "markupsafe"))
    """) + textwrap.dedent(body) + "\nprint(json.dumps(result))\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def project(tmp_path, wheels) -> Path:
    return make_project(tmp_path, wheels, ["alpha==1.0", "cspeed==1.0"])


def test_an_edited_source_reloads_and_the_old_callback_runs_until_the_host_drops_it(project):
    result = run_host(project, """
        plug = env.import_module("plug")
        alpha = env.import_module("alpha")
        callback = plug.hello
        edit(PLUG.read_text().replace("v1", "v2"))
        changed = env.reload()
        new = env.import_module("plug")
        old = weakref.ref(plug)
        result = {"changed": changed, "new": new.hello(), "old": callback(), "file": new.__file__,
                  "kept": new.alpha is alpha and env.import_module("alpha") is alpha,
                  "distinct": new is not plug, "real": real_names()}
        del plug, callback
        gc.collect()
        result["collected"] = old() is None
        result["again"] = env.reload()  # nothing changed since
    """)
    assert result["changed"] == ["plug"]
    assert result["new"] == "v2 1.0" and result["old"] == "v1 1.0"
    assert result["file"] == str(project / "plugin" / "plug.py")
    assert result["kept"] and result["distinct"]
    assert result["real"] == []  # no module of the env's real names in the host's sys.modules
    assert result["collected"]
    assert result["again"] == []


def test_a_syntax_error_leaves_the_old_generation_running_and_names_the_file(project):
    result = run_host(project, """
        plug = env.import_module("plug")
        edit("def broken(:\\n")
        failed = raised(env.reload, polyvenv.ReloadFailed)[1]
        same = env.import_module("plug") is plug
        edit("def hello():\\n    return 'fixed'\\n")
        changed = env.reload()
        result = {"failed": failed, "same": same, "old": plug.hello(), "changed": changed,
                  "new": env.import_module("plug").hello(), "real": real_names()}
    """)
    assert result["failed"].startswith("env 'p': reload failed at " + str(project / "plugin" / "plug.py") + ":1")
    assert "the old generation keeps running" in result["failed"]
    assert result["same"] and result["old"] == "v1 1.0"
    assert result["changed"] == ["plug"] and result["new"] == "fixed"
    assert result["real"] == []


def test_an_import_error_in_the_new_generation_frees_it_and_keeps_the_old(project):
    result = run_host(project, """
        plug = env.import_module("plug")
        before = sorted(sys.modules)
        edit("import alpha\\nimport nosuchthing\\n")
        failed = raised(env.reload, polyvenv.ReloadFailed)[1]
        from polyvenv.runtime.names import STDLIB
        ours = {*STDLIB, "polyvenv"}  # what the reload itself imported: not the env's
        result = {"failed": failed, "same": env.import_module("plug") is plug, "old": plug.hello(),
                  "left": sorted(k for k in set(sys.modules) - set(before) if k.partition(".")[0] not in ours)}
    """)
    assert "reload failed at " + str(project / "plugin" / "plug.py") + ":2" in result["failed"]
    assert "nosuchthing" in result["failed"]
    assert result["same"] and result["old"] == "v1 1.0"
    assert result["left"] == []  # nothing of the failed generation left in sys.modules


def test_a_bumped_pure_dependency_reloads_with_what_imports_it_and_the_rest_is_kept(project):
    result = run_host(project, """
        plug, cspeed = env.import_module("plug"), env.import_module("cspeed")
        callback, first = plug.hello, env.build
        resync(["alpha==2.0", "cspeed==1.0"])
        changed = env.reload()
        result = {"changed": changed, "new": env.import_module("plug").hello(), "old": callback(),
                  "version": env.version("alpha"), "build": env.build != first,
                  "kept": env.import_module("cspeed") is cspeed, "add": cspeed.add(2, 3),
                  "alpha": env.import_module("alpha").__file__.startswith(str(env.build)),
                  "real": real_names()}
    """)
    assert result["changed"] == ["alpha", "plug"]  # dependencies first; cspeed is the same distribution
    assert result["new"] == "v1 2.0" and result["old"] == "v1 1.0"
    assert result["version"] == "2.0" and result["build"] and result["alpha"]
    assert result["kept"] and result["add"] == 5
    assert result["real"] == []


def test_a_changed_compiled_dependency_gets_a_fresh_copy_and_the_old_one_keeps_working(project):
    result = run_host(project, """
        old = env.import_module("cspeed")
        resync(["alpha==1.0", "cspeed==2.0"])
        changed = env.reload()
        new = env.import_module("cspeed")
        result = {"changed": changed, "versions": [old.version(), new.version()],
                  "modules": old._speedups is not new._speedups, "add": [old.add(1, 2), new.add(3, 4)],
                  "file": new._speedups.__file__.startswith(str(env.build)), "real": real_names()}
        resync(["alpha==1.0", "cspeed==1.0"])  # and back: 1.0 again, as a third copy
        result["back"] = [env.reload(), env.import_module("cspeed").version(), old.version()]
    """)
    assert result["changed"] == ["cspeed"]  # plug does not import it: kept
    assert result["versions"] == ["1.0", "2.0"]
    assert result["modules"] and result["add"] == [3, 7] and result["file"]
    assert result["real"] == []
    assert result["back"] == [["cspeed"], "1.0", "1.0"]


def test_a_thread_calling_the_plugin_during_20_reloads_never_sees_an_exception(project):
    result = run_host(project, """
        env.import_module("plug")
        seen, errors, stop = set(), [], threading.Event()

        def call():
            while not stop.is_set():
                try:
                    seen.add(env.import_module("plug").hello())
                except Exception as error:
                    errors.append(repr(error))

        thread = threading.Thread(target=call)
        thread.start()
        changed = []
        for i in range(20):
            edit(f"import alpha\\n\\ndef hello():\\n    return 'gen{i % 2} ' + alpha.__version__\\n")
            changed.append(env.reload())
        stop.set()
        thread.join(30)
        result = {"errors": errors[:3], "seen": sorted(seen), "changed": changed,
                  "last": env.import_module("plug").hello()}
    """)
    assert result["errors"] == []
    assert set(result["seen"]) <= {"v1 1.0", "gen0 1.0", "gen1 1.0"}
    assert result["changed"] == [["plug"]] * 20
    assert result["last"] == "gen1 1.0"


def test_old_code_importing_more_of_its_replaced_generation_is_refused(project):
    package = project / "plugin" / "pk"
    package.mkdir()
    (package / "__init__.py").write_text("def later():\n    from . import extra\n    return extra.VALUE\n")
    (package / "extra.py").write_text("VALUE = 1\n")
    result = run_host(project, """
        later = env.import_module("pk").later
        init = PROJECT / "plugin" / "pk" / "__init__.py"
        init.write_text(init.read_text() + "# edited\\n")
        changed = env.reload()
        error = raised(later, ImportError)
        result = {"changed": changed, "error": error, "new": env.import_module("pk").later()}
    """)
    # pk.extra was never loaded by the old generation, which is gone from sys.modules: it cannot load more
    assert result["changed"] == ["pk"]
    assert result["error"][0] == "GenerationRetired", result
    assert result["error"][1].startswith("env 'p': ") and "reload() replaced" in result["error"][1]
    assert result["new"] == 1


def test_old_code_importing_its_own_loaded_modules_again_works_from_threads_through_20_reloads(project):
    """jinja2 runs ``from .runtime import exported`` at each template compile: a callback of a replaced
    generation imports its own, already loaded, modules again, from threads calling through the reload."""
    package = project / "plugin" / "pk"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from . import helper\n\ndef value():\n    from .helper import VALUE\n    from . import helper as h\n"
        "    import pk.helper\n    return (VALUE, h.VALUE, pk.helper.VALUE)\n")
    (package / "helper.py").write_text("VALUE = 0\n")
    result = run_host(project, """
        helper = PROJECT / "plugin" / "pk" / "helper.py"
        saved = env.import_module("pk").value
        first = saved()
        errors, seen, stop = [], set(), threading.Event()

        def call():
            while not stop.is_set():
                for function in (saved, env.import_module("pk").value):
                    try:
                        seen.add(function())
                    except Exception as error:
                        errors.append(__import__('traceback').format_exc())

        threads = [threading.Thread(target=call) for _ in range(2)]
        for thread in threads:
            thread.start()
        changed = []
        for i in range(1, 21):
            helper.write_text(f"VALUE = {i}\\n" + "#" * i)
            changed.append(env.reload())
        stop.set()
        for thread in threads:
            thread.join(30)
        old = weakref.ref(sys.modules[saved.__module__]) if saved.__module__ in sys.modules else None
        module = saved.__globals__["helper"]
        result = {"first": first, "saved": saved(), "errors": errors[:3], "changed": changed,
                  "seen": sorted(seen), "last": env.import_module("pk").value(), "left": old is not None}
        alive = weakref.ref(module)
        del saved, module
        gc.collect()
        result["collected"] = alive() is None
    """)
    assert result["errors"] == [], "\n".join(result["errors"])  # never an exception caused by the reload
    assert result["first"] == result["saved"] == [0, 0, 0]  # the old callback: its own generation's modules
    assert result["changed"] == [["pk"]] * 20
    assert result["last"] == [20, 20, 20]
    assert all(a == b == c for a, b, c in result["seen"])  # never half of one generation
    assert not result["left"]  # the old generation left sys.modules
    assert result["collected"]  # and is collected once the host drops it


def test_old_code_of_a_distribution_loaded_once_for_envs_imports_itself_after_a_reload_let_it_go(tmp_path, wheels):
    """lazy is loaded as a unit (runtime/units.py), which the reload to lazy 2.0 lets go (no env uses 1.0
    any more): the callback saved before, importing its own submodule again, still gets its own."""
    project = make_project(tmp_path, wheels, ["lazy==1.0"])
    result = run_host(project, """
        from polyvenv.runtime.namemap import ALIASES
        lazy = env.import_module("lazy")
        saved, alias = lazy.value, lazy.__name__
        unit = ALIASES.owner(alias).lender
        del lazy
        resync(["lazy==2.0"])
        changed = env.reload()
        result = {"unit": unit, "changed": changed, "new": env.import_module("lazy").value(),
                  "left": [k for k in sys.modules if k.partition(".")[0] == alias]}
        result["old"] = raised(saved) or saved()
        alive = weakref.ref(sys.modules.get(saved.__module__) or saved.__globals__["part"])
        del saved
        gc.collect()
        result["collected"] = alive() is None
    """)
    assert result["unit"] and result["changed"] == ["lazy"]
    assert result["new"] == "2.0" and result["left"] == []
    assert result["old"] == "1.0"  # was ModuleNotFoundError: No module named 'Lazy'
    assert result["collected"]


def test_a_callback_of_an_unloaded_env_imports_its_own_modules_and_no_load_takes_their_names(project):
    """A host unloads an add-on while a callback of it is still registered (a timer): the callback's
    imports of its own loaded modules still work, and the names those have stay its own until it is
    collected (another load under them would hand the old code another load's modules)."""
    package = project / "plugin" / "pk"
    package.mkdir()
    (package / "__init__.py").write_text("from . import helper\n\ndef value():\n    from .helper import VALUE\n"
                                         "    return VALUE\n")
    (package / "helper.py").write_text("VALUE = 'first'\n")
    result = run_host(project, """
        saved = env.import_module("pk").value
        alias = saved.__module__
        env.unload()
        (PROJECT / "plugin" / "pk" / "helper.py").write_text("VALUE = 'second'\\n")
        again = env.import_module("pk")
        result = {"saved": raised(saved) or saved(), "new": again.value(), "other name": again.__name__ != alias,
                  "left": [k for k in sys.modules if k.partition(".")[0] == alias]}
    """)
    assert result == {"saved": "first", "new": "second", "other name": True, "left": []}


def test_old_code_importing_its_generation_through_the_hosts_import_gets_it_until_the_next_reload(project):
    """An import that reaches the host's import system after its generation left (a thread's statement
    begun before the switch, or the host's ``__import__`` taken before the reload): served the old module."""
    package = project / "plugin" / "pk"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from . import helper\n\nIMPORT = __builtins__['__import__']  # taken before any reload\n\n"
        "def again():\n    return IMPORT('helper', globals(), None, ['VALUE'], 1).VALUE\n")
    (package / "helper.py").write_text("VALUE = 0\n")
    result = run_host(project, """
        helper = PROJECT / "plugin" / "pk" / "helper.py"
        again = env.import_module("pk").again
        alias = again.__globals__["__name__"]
        helper.write_text("VALUE = 1\\n#")
        changed = env.reload()
        result = {"changed": changed, "old": again(), "new": env.import_module("pk").again()}
        helper.write_text("VALUE = 2\\n##")
        env.reload()
        result["left"] = [k for k in sys.modules if k.partition(".")[0] == alias]
        result["still"] = again()
        env.unload()
        result["after_unload"] = [k for k in sys.modules if k.partition(".")[0] == alias]
    """)
    assert result["changed"] == ["pk"]
    assert result["old"] == 0 and result["new"] == 1
    assert result["left"] == [] and result["after_unload"] == []
    assert result["still"] == 0


@pytest.mark.integration
def test_two_markupsafe_versions_the_new_c_code_after_reload_and_the_old_objects_still_work(tmp_path):
    project = tmp_path / "project"
    (project / "plugin").mkdir(parents=True)
    (project / "plugin" / "plug.py").write_text(
        "import markupsafe\n\ndef render(text):\n    return markupsafe.escape(text)\n")
    (project / "polyvenv.toml").write_text('[envs.p]\nrequirements = ["markupsafe==2.1.5"]\nsource = "plugin"\n')
    sync(project)
    result = run_host(project, """
        plug = env.import_module("plug")
        old_render, old_speedups = plug.render, env.import_module("markupsafe._speedups")
        old_markup = old_render("<b>")
        resync(["markupsafe==3.0.2"])
        changed = env.reload()
        new = env.import_module("markupsafe")
        speedups = env.import_module("markupsafe._speedups")
        markup = env.import_module("plug").render("<i>")
        result = {"changed": changed, "version": env.version("markupsafe"),
                  "c": [speedups.__file__.startswith(str(env.build)), speedups is not old_speedups,
                        hasattr(speedups, "_escape_inner"), hasattr(old_speedups, "escape"),  # 3.x's C API, 2.1's
                        str(speedups._escape_inner("<")), str(old_speedups.escape("<"))],
                  "new": [str(markup), type(markup) is new.Markup],
                  "old": [str(old_render("<u>")), str(old_markup + "&"), type(old_render("x")) is not new.Markup],
                  "real": real_names()}
    """)
    assert result["changed"] == ["markupsafe", "plug"]
    assert result["version"] == "3.0.2"
    assert result["c"] == [True, True, True, True, "&lt;", "&lt;"]
    assert result["new"] == ["&lt;i&gt;", True]
    assert result["old"] == ["&lt;u&gt;", "&lt;b&gt;&amp;", True]
    assert result["real"] == []


def test_a_process_env_reloads_in_a_fresh_worker_and_old_proxies_say_so(tmp_path, wheels):
    project = make_project(tmp_path, wheels, ["alpha==1.0"], isolation="process")
    result = run_host(project, """
        plug = env.import_module("plug")
        first, pid = plug.hello(), env.pid
        # a size of its own: a worker reads CPython's bytecode cache, which knows a source by its size and its
        # mtime in whole seconds, and this edit comes within the second the file was written
        edit("import alpha\\n\\ndef hello():\\n    return 'v2 ' + str(alpha.__version__)\\n")
        resync(["alpha==2.0"])
        changed = env.reload()
        new = env.import_module("plug")
        old = raised(lambda: plug.hello(), polyvenv.WorkerDied)[1]
        edit("def broken(:\\n")
        failed = raised(env.reload, polyvenv.ReloadFailed)[1]
        result = {"first": first, "changed": changed, "new": new.hello(), "old": old, "pids": env.pid != pid,
                  "failed": failed, "still": new.hello()}
    """)
    assert result["first"] == "v1 1.0" and result["changed"] == ["plug"]
    assert result["new"] == "v2 2.0" and result["pids"]
    assert result["old"].startswith("env 'p' was reloaded: its previous worker process (pid ")
    plug = project / "plugin" / "plug.py"
    assert result["failed"].startswith(f"env 'p': reload failed in its new worker at {plug}:1: SyntaxError: ")
    assert result["still"] == "v2 2.0"  # the worker that failed to import never took over


WATCHED = """
    calls, lock = [], threading.Lock()

    def on_change(env, changed):
        with lock:
            calls.append([env.name, changed if isinstance(changed, list) else type(changed).__name__])

    def wait_for(count, seconds=30):  # a deadline, never a timed assertion
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with lock:
                if len(calls) >= count:
                    return True
            time.sleep(0.02)
        return False

    plug = env.import_module("plug")
    watch = ws.watch(callback=on_change, interval=0.1, watcher=WATCHER)
    time.sleep(0.3)  # its first look: what is loaded now is the baseline
"""


def watched(watcher: str, body: str) -> str:
    """A host body run under a watch of ``watcher`` kind, ``calls`` recording the callback's calls."""
    return f"WATCHER = {watcher!r}\n" + textwrap.dedent(WATCHED) + textwrap.dedent(body)


@pytest.fixture(params=["poll", "watchfiles"])
def watcher(request) -> str:
    if request.param == "watchfiles":
        pytest.importorskip("watchfiles")
    return request.param


def test_watch_reloads_an_edit_once_and_calls_back_with_the_names(project, watcher):
    result = run_host(project, watched(watcher, """
    edit(PLUG.read_text().replace("v1", "v2"))
    arrived = wait_for(1)
    time.sleep(0.5)  # five more intervals: nothing more to reload
    watch.stop()
    result = {"arrived": arrived, "calls": calls, "new": env.import_module("plug").hello(), "old": plug.hello(),
              "reloads": watch.reloads}
    """))
    assert result["arrived"]
    assert result["calls"] == [["p", ["plug"]]] and result["reloads"] == 1
    assert result["new"] == "v2 1.0" and result["old"] == "v1 1.0"


def test_watch_reloads_a_burst_of_edits_at_most_twice(project, watcher):
    result = run_host(project, watched(watcher, """
    for i in range(12):  # an editor saving several files, one after another, over several intervals
        (PROJECT / "plugin" / f"extra{i}.py").write_text(f"VALUE = {i}\\n")
        edit(f"import alpha\\n\\ndef hello():\\n    return 'burst{i}'\\n")
        time.sleep(0.03)
    arrived = wait_for(1)
    time.sleep(0.6)
    watch.stop()
    result = {"arrived": arrived, "calls": calls, "new": env.import_module("plug").hello(),
              "reloads": watch.reloads}
    """))
    assert result["arrived"]
    assert 1 <= result["reloads"] <= 2, result
    assert result["new"] == "burst11"


def test_watch_keeps_the_old_generation_on_a_syntax_error_and_reports_it(project, watcher):
    result = run_host(project, watched(watcher, """
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        edit("def hello(:\\n")
        arrived = wait_for(1)
        kept = env.import_module("plug") is plug
        edit("def hello():\\n    return 'fixed'\\n")
        fixed = wait_for(2)
    watch.stop()
    result = {"arrived": arrived, "calls": calls, "kept": kept, "fixed": fixed,
              "new": env.import_module("plug").hello(),
              "warned": [str(w.message) for w in said if isinstance(w.message, polyvenv.ReloadWarning)]}
    """))
    assert result["arrived"] and result["kept"] and result["fixed"]
    assert result["calls"] == [["p", "ReloadFailed"], ["p", ["plug"]]]
    assert result["new"] == "fixed"
    assert len(result["warned"]) == 1 and result["warned"][0].startswith("env 'p': reload failed at ")


def test_watch_reloads_what_a_sync_changed_in_a_process_env_too(tmp_path, wheels):
    project = make_project(tmp_path, wheels, ["alpha==1.0"], isolation="process")
    result = run_host(project, watched("poll", """
    resync(["alpha==2.0"])
    arrived = wait_for(1)
    watch.stop()
    result = {"arrived": arrived, "calls": calls, "new": env.import_module("plug").hello()}
    """))
    assert result["arrived"]
    assert result["calls"] == [["p", ["plug"]]] and result["new"] == "v1 2.0"


def test_the_import_map_gives_host_code_the_new_generation_after_reload(project):
    result = run_host(project, """
        polyvenv.install_import_map(ws)
        import plug
        callback = plug.hello
        edit(PLUG.read_text().replace("v1", "v2"))
        changed = env.reload()
        import plug as again
        result = {"changed": changed, "new": again.hello(), "old": callback(),
                  "same": again is env.import_module("plug")}
    """)
    assert result == {"changed": ["plug"], "new": "v2 1.0", "old": "v1 1.0", "same": True}


def test_a_kept_module_edited_after_a_reload_reloads_with_what_imports_it(project):
    (project / "plugin" / "helper.py").write_text("WORD = 'one'\n")
    (project / "plugin" / "plug.py").write_text("import helper\n\ndef hello():\n    return 'v1 ' + helper.WORD\n")
    result = run_host(project, """
        env.import_module("plug")
        helper = env.import_module("helper")
        edit(PLUG.read_text().replace("v1", "v2"))
        first = env.reload()
        kept = env.import_module("helper") is helper
        (PROJECT / "plugin" / "helper.py").write_text("WORD = 'two'\\n")
        second = env.reload()
        result = {"first": first, "kept": kept, "second": second, "new": env.import_module("plug").hello()}
    """)
    assert result == {"first": ["plug"], "kept": True, "second": ["helper", "plug"], "new": "v2 two"}


def test_the_build_a_kept_module_came_from_stays_held_until_unload(project):
    result = run_host(project, """
        env.import_module("plug"), env.import_module("cspeed")
        first = env.build
        def gc_keeps():
            subprocess.run([sys.executable, "-m", "polyvenv", "gc", "-q"], cwd=PROJECT, check=True)
            return first.exists()
        resync(["alpha==2.0", "cspeed==1.0"])
        changed = env.reload()  # cspeed is kept: its modules are first's
        kept = gc_keeps()
        env.unload()
        result = {"changed": changed, "kept": kept, "after unload": gc_keeps()}
    """)
    assert result == {"changed": ["alpha", "plug"], "kept": True, "after unload": False}


def test_watch_picks_up_an_edit_made_during_a_reload_after_it(project):
    slow = ("import pathlib, time\npathlib.Path(__file__).parent.parent.joinpath('started').write_text('')\n"
            "time.sleep(0.5)\n\ndef hello():\n    return {!r}\n")
    result = run_host(project, watched("poll", f"""
    started = PROJECT / "started"  # outside the source: not an edit itself
    edit({slow!r}.format("during"))
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline:  # the watch is importing the new generation
        time.sleep(0.01)
    edit({slow!r}.format("after"))  # while that reload runs
    arrived = wait_for(2)
    watch.stop()
    result = {{"arrived": arrived, "calls": calls, "new": env.import_module("plug").hello()}}
    """))
    assert result["arrived"]
    assert result["calls"] == [["p", ["plug"]], ["p", ["plug"]]]
    assert result["new"] == "after"


def test_watch_reloads_an_edit_made_right_after_it_started(project):
    """The baseline is what was on disk when ``watch`` returned, not what its thread first saw."""
    result = run_host(project, """
    plug = env.import_module("plug")
    calls = []
    watch = ws.watch(callback=lambda env, changed: calls.append(changed), interval=0.2, watcher="poll")
    edit(PLUG.read_text().replace("v1", "v2"))  # before the thread's first look
    deadline = time.monotonic() + 30  # a deadline, never a timed assertion
    while not calls and time.monotonic() < deadline:
        time.sleep(0.02)
    watch.stop()
    result = {"calls": calls, "new": env.import_module("plug").hello()}
    """)
    assert result == {"calls": [["plug"]], "new": "v2 1.0"}


def test_watch_reloads_an_env_loaded_after_it_started_and_edited_before_its_next_look(project):
    """An env first seen by a look is checked against what it loaded, not taken as it is on disk then
    (`polyvenv python --watch` starts its watch before the script loads anything)."""
    result = run_host(project, """
    calls = []
    watch = ws.watch(callback=lambda env, changed: calls.append(changed), interval=60, watcher="poll")
    time.sleep(0.3)  # its first look, with nothing loaded; the next is a minute away
    plug = env.import_module("plug")
    edit(PLUG.read_text().replace("v1", "v2"))
    watch.poll()  # the look that first sees env p
    watch.poll()  # and the next: nothing more to reload
    watch.stop()
    result = {"calls": calls, "new": env.import_module("plug").hello(), "reloads": watch.reloads}
    """)
    assert result == {"calls": [["plug"]], "new": "v2 1.0", "reloads": 1}


def test_watch_does_not_restart_a_process_envs_worker_it_first_sees(tmp_path, wheels):
    project = make_project(tmp_path, wheels, ["alpha==1.0"], isolation="process")
    result = run_host(project, """
    calls = []
    watch = ws.watch(callback=lambda env, changed: calls.append(changed), interval=60, watcher="poll")
    time.sleep(0.3)  # its first look, with nothing loaded
    plug = env.import_module("plug")
    pid = env.pid
    watch.poll()  # the look that first sees env p: nothing changed since it started
    watch.stop()
    result = {"calls": calls, "same worker": env.pid == pid, "hello": plug.hello()}
    """)
    assert result == {"calls": [], "same worker": True, "hello": "v1 1.0"}


# -- `polyvenv python --watch` ------------------------------------------------------------

WATCHED_HOST = """
import atexit, os, sys, threading, time
import polyvenv
import plug

@polyvenv.on_reload
def rebind(env, changed):  # the script's hook: take the new generation's module
    global plug
    if isinstance(changed, list) and "plug" in changed:
        import plug

atexit.register(lambda: print("threads left:", sorted(t.name for t in threading.enumerate()), file=sys.stderr))
deadline = time.monotonic() + 90  # bounded, whatever the test does
while not os.path.exists("stop") and time.monotonic() < deadline:
    print(plug.hello(), flush=True)
    time.sleep(0.05)
sys.exit(3)
"""


class Watched:
    """A real `polyvenv python --watch --interval 0.1 host.py` in ``project``: its stdout and stderr lines
    as they come."""

    def __init__(self, project: Path, host: str = WATCHED_HOST) -> None:
        (project / "host.py").write_text(host)
        self.proc = subprocess.Popen([sys.executable, "-m", "polyvenv", "python", "--watch", "--interval", "0.1",
                                      "host.py"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                        for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def wait_for(self, condition, seconds: float = 60) -> None:
        """Until ``condition()`` holds (a deadline, never a timed assertion)."""
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.proc.kill()
                raise AssertionError(f"exit {self.proc.wait()}\nstdout: {self.out[-5:]}\nstderr: {self.err}")
            time.sleep(0.02)

    def printed(self, text: str) -> None:
        self.wait_for(lambda: text in self.out)

    def more_output(self, lines: int) -> list[str]:
        """The next ``lines`` lines the host prints."""
        start = len(self.out)
        self.wait_for(lambda: len(self.out) >= start + lines)
        return self.out[start:start + lines]

    def ended(self) -> int:
        code = self.proc.wait(timeout=60)
        for reader in self.readers:
            reader.join(timeout=10)
        return code


def test_python_watch_reloads_an_edited_plugin_in_the_running_script_and_keeps_it_on_a_syntax_error(project):
    plug = project / "plugin" / "plug.py"
    host = Watched(project)
    host.printed("v1 1.0")
    plug.write_text(PLUGIN.replace("v1", "v2"))
    host.printed("v2 1.0")
    assert re.fullmatch(r"polyvenv: env 'p': reloaded plug in \d+ ms", host.err[0]), host.err
    plug.write_text("def hello(:\n")
    host.wait_for(lambda: len(host.err) > 1)
    assert host.err[1].startswith(f"polyvenv: env 'p': reload failed at {plug}:1: SyntaxError: "), host.err
    assert "the old generation keeps running" in host.err[1]
    assert host.more_output(5) == ["v2 1.0"] * 5  # the old generation keeps running
    plug.write_text(PLUGIN.replace("v1", "v3"))
    host.printed("v3 1.0")
    (project / "stop").write_text("")
    assert host.ended() == 3  # the script's own exit code
    assert len(host.err) == 4 and re.fullmatch(r"polyvenv: env 'p': reloaded plug in \d+ ms", host.err[2]), host.err
    assert host.err[3] == "threads left: ['MainThread']"  # the watch stopped before the interpreter ended


def test_python_watch_reloads_what_a_sync_in_another_terminal_changed_and_ctrl_c_stops_it(project, wheels):
    host = Watched(project)
    host.printed("v1 1.0")
    write_config(project, wheels, ["alpha==2.0", "cspeed==1.0"])
    sync(project)  # as `polyvenv sync` in another terminal
    host.printed("v1 2.0")
    assert re.fullmatch(r"polyvenv: env 'p': reloaded alpha, plug in \d+ ms", host.err[0]), host.err
    host.proc.send_signal(signal.SIGINT)  # Ctrl-C
    assert host.ended() == 128 + signal.SIGINT
    assert host.err[1] == "Traceback (most recent call last):", host.err  # as python says it, of the script's
    assert host.err[2].startswith('  File "host.py", line ') and host.err[-2] == "KeyboardInterrupt", host.err
    assert host.err[-1] == "threads left: ['MainThread']", host.err  # the watch stopped


def test_python_watch_gives_the_script_a_process_envs_fresh_worker(tmp_path, wheels):
    project = make_project(tmp_path, wheels, ["alpha==1.0"], isolation="process")
    # a call in flight when the old worker stops raises WorkerDied (its objects are gone with it)
    host = Watched(project, WATCHED_HOST.replace("    print(plug.hello(), flush=True)\n", """\
    try:
        print(plug.hello(), flush=True)
    except polyvenv.WorkerDied:
        print("in flight", flush=True)
"""))
    host.printed("v1 1.0")
    time.sleep(1)  # ten intervals: the watch has seen the process env (an edit before its first look is not seen)
    # another size: a worker reads CPython's bytecode cache, which knows a source by size and whole-second mtime
    (project / "plugin" / "plug.py").write_text(PLUGIN.replace("v1", "v2") + "# edited\n")
    host.printed("v2 1.0")  # `import plug` again: the new worker's module, not the stopped worker's
    (project / "stop").write_text("")
    assert host.ended() == 3, host.err
    assert len(host.err) == 2 and re.fullmatch(r"polyvenv: env 'p': reloaded plug in \d+ ms", host.err[0]), \
        host.err  # one reload: the edit's (the env first seen is not restarted)
