"""Two versions of one generated package loaded side by side in one host process.

Every check runs host code in a fresh interpreter (a real subprocess) that
also has its own `demo` (version "host") and a `hostonly` module importable,
so an env that leaked into the host's modules, or the host's into an env's,
shows up as a wrong version.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wheelgen import demo_package_files, demo_wheel

SRC = Path(__file__).parent.parent / "src"


def make_two_demos(root: Path, python: str | None = None) -> tuple[Path, Path]:
    """Envs v1 and v2 (demo 1.0 and 2.0, built with ``python``) and a host directory holding its own
    demo ("host") and a `hostonly` module; returns (project, host)."""
    wh = root / "wheels"
    demo_wheel(wh, "1.0")
    demo_wheel(wh, "2.0")
    host = root / "host"
    for path, text in demo_package_files("host").items():
        (host / path).parent.mkdir(parents=True, exist_ok=True)
        (host / path).write_text(text)
    (host / "hostonly.py").write_text("")
    project = root / "project"
    project.mkdir()
    interpreter = f'python = "{python}"' if python else ""
    (project / "polyvenv.toml").write_text(textwrap.dedent(f"""
        wheelhouse = "{wh}"
        offline = true
        [envs.v1]
        requirements = ["demo==1.0"]
        {interpreter}
        [envs.v2]
        requirements = ["demo==2.0"]
        {interpreter}
    """))
    subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=project, check=True, capture_output=True)
    return project, host


@pytest.fixture(scope="module")
def two_demos(tmp_path_factory):
    return make_two_demos(tmp_path_factory.mktemp("runtime"))


def run_host(two_demos, body: str):
    """Run ``body`` in a fresh host interpreter; it sets ``result``, which comes back as JSON."""
    project, host = two_demos
    code = (
        f"import sys, json\nsys.path[:0] = [{str(SRC)!r}, {str(host)!r}]\n"
        f"import polyvenv\nws = polyvenv.Workspace.load({str(project)!r})\n"
        f"v1, v2 = ws.env('v1'), ws.env('v2')\n"
        + textwrap.dedent(body)
        + "\nprint(json.dumps(result))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_each_env_sees_its_own_version_and_the_host_keeps_its_own(two_demos):
    result = run_host(two_demos, """
        import demo as host_demo
        d1, d2 = v1.import_module("demo"), v2.import_module("demo")
        result = [d.__version__ for d in (d1, d2, host_demo)] + [host_demo is sys.modules["demo"]]
    """)
    assert result == ["1.0", "2.0", "host", True]


@pytest.mark.parametrize("attribute, expected", [
    ("sub.VALUE", "sub-{v}"),
    ("helper()", "helper-{v}"),
    ("deep.leaf.LEAF", "leaf-{v}"),
    ("STARRED", "star-{v}"),
    ("circ_a.b()", "b-{v}"),
    ("SELF_IS_ME", True),
    ("api.late()", "late-{v}"),
    ("api.dynamic()", "dyn-{v}"),
    ("api.dunder_import()", "dyn-{v}"),
    ("api.resource()", "data-{v}"),
    ("api.pickled()", True),
    ("api.hints()", True),
    ("api.threaded()", "thread-{v}"),
    ("api.executed()", "sub-{v}"),
    ("api.evaluated()", "sub-{v}"),
    ("api.reloaded()", "dyn-{v}"),
    ("api.metadata_version()", ["{v}", "{v}"]),
    ("api.entry_point_names()", ["plugin{vv}"]),
    ("api.submodules()", ["api", "circ_a", "circ_b", "deep", "dyn", "late_mod", "star", "sub", "threaded", "tmp"]),
    ("api.sys_modules_view()", [True, False, True]),
])
def test_every_import_form_resolves_inside_the_env(two_demos, attribute, expected):
    result = run_host(two_demos, f"""
        result = []
        for env in (v1, v2):
            demo = env.import_module("demo")
            import importlib
            env.import_module("demo.api")
            result.append(eval("demo." + {attribute!r}))
    """)
    def fill(value, v):
        if isinstance(value, str):
            return value.format(v=v, vv=v.replace(".", ""))
        if isinstance(value, list):
            return [fill(x, v) for x in value]
        return value
    assert result == [fill(expected, "1.0"), fill(expected, "2.0")]


def test_spec_origin_points_into_the_env(two_demos):
    result = run_host(two_demos, """
        result = [env.import_module("demo.api").spec_origin() for env in (v1, v2)]
    """)
    # in the build each env's link pointed at when it was first used (a later sync cannot mix builds)
    assert "/.polyvenv/.builds/v1-" in result[0] and result[0].endswith("demo/dyn.py")
    assert "/.polyvenv/.builds/v2-" in result[1]


def test_a_module_the_env_lacks_is_an_import_error_naming_the_env(two_demos):
    result = run_host(two_demos, """
        result = v1.import_module("demo.api").host_only()
    """)
    assert result.startswith("EnvImportError: env 'v1' has no module 'hostonly'")
    assert "site-packages" in result and "requirements" in result


def test_loggers_are_per_env(two_demos):
    result = run_host(two_demos, """
        names = [env.import_module("demo.api").logger_name() for env in (v1, v2)]
        result = [len(set(names)), names[0].endswith(".api")]
    """)
    assert result == [2, True]


def test_host_metadata_api(two_demos):
    result = run_host(two_demos, """
        result = [v1.version("demo"), v2.version("demo"), sorted(d.metadata["Name"] for d in v1.distributions())]
    """)
    assert result == ["1.0", "2.0", ["demo"]]


def test_namespace_packages(two_demos):
    result = run_host(two_demos, """
        result = [env.import_module("nsdemo.part").PART for env in (v1, v2)]
    """)
    assert result == ["part-1.0", "part-2.0"]


def test_unload_frees_the_modules(two_demos):
    result = run_host(two_demos, """
        import gc, weakref
        demo = v1.import_module("demo")
        api = v1.import_module("demo.api")
        refs = [weakref.ref(demo), weakref.ref(api)]
        before = v1.loaded
        v1.unload()
        del demo, api
        gc.collect()
        again = v1.import_module("demo").__version__
        result = [before, [r() is None for r in refs], again, v2.import_module("demo").__version__]
    """)
    assert result == [["demo", "demo.api", "demo.circ_a", "demo.circ_b", "demo.deep", "demo.deep.leaf", "demo.star", "demo.sub"], [True, True], "1.0", "2.0"]


def test_many_threads_importing_in_both_envs(two_demos):
    result = run_host(two_demos, """
        import threading
        wrong = []
        def work(env, version):
            for _ in range(50):
                api = env.import_module("demo.api")
                if api.dynamic() != "dyn-" + version or api.late() != "late-" + version:
                    wrong.append(version)
        threads = [threading.Thread(target=work, args=(env, v)) for env, v in ((v1, "1.0"), (v2, "2.0")) * 4]
        [t.start() for t in threads]; [t.join() for t in threads]
        result = wrong
    """)
    assert result == []


CHECKS = ["sub.VALUE", "helper()", "deep.leaf.LEAF", "STARRED", "circ_a.b()", "SELF_IS_ME", "api.late()",
          "api.dynamic()", "api.dunder_import()", "api.resource()", "api.pickled()", "api.hints()",
          "api.threaded()", "api.executed()", "api.evaluated()", "api.reloaded()", "api.metadata_version()",
          "api.entry_point_names()", "api.sys_modules_view()", "api.host_only()[:14]"]


def test_side_by_side_on_every_python(tmp_path, any_python):
    """The same checks with the host (and the envs) on each CPython 3.9-3.13 found."""
    project, host = make_two_demos(tmp_path, any_python)
    code = textwrap.dedent(f"""
        import sys, json
        sys.path[:0] = [{str(SRC)!r}, {str(host)!r}]
        import polyvenv, demo as host_demo
        ws = polyvenv.Workspace.load({str(project)!r}, {str(project / "polyvenv.toml")!r})
        out = {{}}
        for name in ("v1", "v2"):
            demo = ws.env(name).import_module("demo")
            ws.env(name).import_module("demo.api")
            out[name] = [demo.__version__] + [eval("demo." + c) for c in {CHECKS!r}]
        out["host"] = host_demo.__version__
        print(json.dumps(out))
    """)
    proc = subprocess.run([any_python, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for name, v in (("v1", "1.0"), ("v2", "2.0")):
        vv = v.replace(".", "")
        assert out[name] == [v, f"sub-{v}", f"helper-{v}", f"leaf-{v}", f"star-{v}", f"b-{v}", True,
                             f"late-{v}", f"dyn-{v}", f"dyn-{v}", f"data-{v}", True, True, f"thread-{v}",
                             f"sub-{v}", f"sub-{v}", f"dyn-{v}", [v, v], [f"plugin{vv}"], [True, False, True],
                             "EnvImportError"]
    assert out["host"] == "host"


def test_the_host_import_machinery_is_left_alone(two_demos):
    result = run_host(two_demos, """
        import builtins
        original = builtins.__import__
        keys = set(sys.modules)
        v1.import_module("demo.api").late()
        v2.import_module("demo.api").dynamic()
        import demo
        result = [builtins.__import__ is original, demo.__version__,
                  sorted(k for k in set(sys.modules) - keys if k.split(".")[0] == "demo")]
    """)
    assert result == [True, "host", ["demo", "demo.circ_a", "demo.circ_b", "demo.deep", "demo.deep.leaf",
                                     "demo.star", "demo.sub"]]


def test_shared_names_are_the_hosts_own_objects(tmp_path, wheelhouse):
    site = tmp_path / "site-packages"
    (site / "plugin").mkdir(parents=True)
    (site / "plugin" / "__init__.py").write_text("import hostapi\nAPI = hostapi\n")
    host = tmp_path / "host"
    host.mkdir()
    (host / "hostapi.py").write_text("REGISTRY = []\n")
    (site / "hostapi.py").write_text("REGISTRY = 'the env would have its own, but it is shared'\n")
    code = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(SRC)!r}, {str(host)!r}]
        import polyvenv, hostapi
        shared = polyvenv.Env.from_path({str(site)!r}, name="p", shared=["hostapi"])
        private = polyvenv.Env.from_path({str(site)!r}, name="q")
        print(shared.import_module("plugin").API is hostapi)
        print(private.import_module("plugin").API is not hostapi)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"]


def test_bytecode_without_source_is_refused(tmp_path):
    """Code that cannot be rewritten is never loaded (it would import the host's modules)."""
    import py_compile

    site = tmp_path / "site-packages"
    site.mkdir()
    (site / "secret.py").write_text("import json\n")
    py_compile.compile(str(site / "secret.py"), cfile=str(site / "secret.pyc"))
    (site / "secret.py").unlink()
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(SRC)!r})
        import polyvenv
        try:
            polyvenv.Env.from_path({str(site)!r}, name="b").import_module("secret")
        except polyvenv.ExtensionNotSupported as e:
            print("refused:", isinstance(e, ImportError), "without its source" in str(e))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "refused: True True"


def test_unload_then_import_after_a_rebuild_gives_the_new_version(tmp_path):
    wh = tmp_path / "wheels"
    demo_wheel(wh, "1.0")
    demo_wheel(wh, "2.0")
    project = tmp_path / "project"
    project.mkdir()
    config = project / "polyvenv.toml"
    config.write_text(f'wheelhouse = "{wh}"\noffline = true\n[envs.a]\nrequirements = ["demo==1.0"]\n')
    code = textwrap.dedent(f"""
        import sys, pathlib
        sys.path.insert(0, {str(SRC)!r})
        import polyvenv
        ws = polyvenv.Workspace.load({str(project)!r})
        ws.sync(quiet=True)
        env = ws.env("a")
        print(env.import_module("demo").__version__)
        pathlib.Path({str(config)!r}).write_text(
            pathlib.Path({str(config)!r}).read_text().replace("demo==1.0", "demo==2.0"))
        polyvenv.Workspace.load({str(project)!r}).sync(quiet=True)   # the rebuild, in the same process
        print(env.import_module("demo").__version__)                    # not yet unloaded: still 1.0
        env.unload()
        print(env.import_module("demo").__version__, env.import_module("demo.api").dynamic())
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1.0", "1.0", "2.0", "dyn-2.0"]


def test_vocabulary_packages_are_shared_when_versions_match_and_reported_when_not(tmp_path):
    """typing_extensions-like packages must be the host's very objects where they can be."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "typing_extensions.py").write_text("TypedDict = object()\n")
    (host / "typing_extensions-4.12.2.dist-info").mkdir()
    (host / "typing_extensions-4.12.2.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: typing_extensions\nVersion: 4.12.2\n")
    code = textwrap.dedent(f"""
        import sys, warnings
        sys.path[:0] = [{str(SRC)!r}, {str(host)!r}]
        import polyvenv, typing_extensions
        for version in ("4.12.2", "4.5.0"):
            site = {str(tmp_path)!r} + "/site-" + version
            import os
            os.makedirs(site + "/typing_extensions-" + version + ".dist-info", exist_ok=True)
            open(site + "/typing_extensions.py", "w").write("TypedDict = object()\\n")
            open(site + "/user.py", "w").write("import typing_extensions\\nTE = typing_extensions\\n")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                user = polyvenv.Env.from_path(site, name="v" + version).import_module("user")
            print(version, user.TE is typing_extensions,
                  [type(w.message).__name__ for w in caught], "pin typing_extensions==4.12.2" in str([str(w.message) for w in caught]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["4.12.2 True [] False", "4.5.0 False ['VocabularyConflictWarning'] True"]


def test_sixty_envs_load_side_by_side_each_with_its_own_sys(tmp_path):
    """A plugin host with dozens of add-ons: every env (and every unit) gets a ``sys`` facade of its own,
    and ``sys`` has no case variants that are not the standard library's name."""
    for i in range(60):
        site = tmp_path / f"p{i}" / "site-packages"
        site.mkdir(parents=True)
        (site / "plug.py").write_text(
            f"import sys\nVALUE = {i}\nPATH = [p for p in sys.path if p.endswith('site-packages')]\n")
    code = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(SRC)!r})
        from pathlib import Path
        import polyvenv
        envs = [polyvenv.Env.from_path(Path({str(tmp_path)!r}) / f"p{{i}}" / "site-packages", name=f"p{{i}}")
                for i in range(60)]
        plugs = [env.import_module("plug") for env in envs]
        print(json.dumps({{"values": [p.VALUE for p in plugs], "paths": [p.PATH for p in plugs],
                           "real": "plug" in sys.modules}}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["values"] == list(range(60))
    assert result["paths"] == [[str(tmp_path / f"p{i}" / "site-packages")] for i in range(60)]  # its own sys
    assert not result["real"]
