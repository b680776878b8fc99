"""The import system env code sees (issue 12, findings 4, 5 and 7): as in the env's own venv, scoped to the env.

Every check runs host code in a fresh interpreter (a real subprocess) whose own
``sys.path`` has a host directory with a ``probe`` of its own ("host") and a
``hostonly`` module the envs lack; each check asserts what env code sees and
that the host's ``sys.modules``, ``sys.meta_path``, ``sys.path`` and
``sys.path_hooks`` are as they were.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wheelgen import make_wheel

SRC = Path(__file__).parent.parent / "src"

PROBE = '''
import importlib, importlib.util, sys
__version__ = {version!r}

try:  # an optional dependency, probed the usual way at import
    import hostonly
    HAS_HOSTONLY = True
except ImportError:
    HAS_HOSTONLY = False
HAS_HOSTONLY_SPEC = importlib.util.find_spec("hostonly") is not None  # yarl's probe of pydantic_core


def error(call):
    try:
        call()
    except ImportError as e:
        return [type(e).__name__, isinstance(e, ModuleNotFoundError), e.name, str(e)]
    return "no error"


def missing():
    from importlib.util import find_spec
    name = "host" + "only"  # computed at run time: the rewriter cannot see it
    return {{
        "find_spec": [importlib.util.find_spec("hostonly"), find_spec(name), importlib.util.find_spec("probe.nope")],
        "import": error(lambda: __import__("hostonly")),
        "import_statement": error(_import_statement),
        "import_module": error(lambda: importlib.import_module(name)),
        "find_spec_dotted": error(lambda: importlib.util.find_spec("hostonly.sub")),
        "import_submodule": error(lambda: importlib.import_module("probe.nope")),
        "import_submodule_statement": error(_import_submodule),
        "probes": [HAS_HOSTONLY, HAS_HOSTONLY_SPEC],
    }}


def _import_statement():
    import hostonly


def _import_submodule():
    import probe.nope
'''


def make_project(root: Path) -> tuple[Path, Path]:
    """Envs v1 and v2 (probe 1.0 and 2.0) and a host directory with its own probe and a hostonly module."""
    wh = root / "wheels"
    for version in ("1.0", "2.0"):
        make_wheel(wh, "probe", version, {"probe/__init__.py": PROBE.format(version=version),
                                          "probe/sub.py": "import probe\nVERSION = probe.__version__\n"})
    host = root / "host"
    (host / "probe").mkdir(parents=True)
    (host / "probe" / "__init__.py").write_text("__version__ = 'host'\n")
    (host / "hostonly.py").write_text("")
    project = root / "project"
    project.mkdir()
    (project / "polyvenv.toml").write_text(textwrap.dedent(f"""
        wheelhouse = "{wh}"
        offline = true
        [envs.v1]
        requirements = ["probe==1.0"]
        [envs.v2]
        requirements = ["probe==2.0"]
        [envs.p]
        requirements = ["probe==1.0"]
        isolation = "process"
    """))
    subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=project, check=True, capture_output=True)
    return project, host


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("import-system"))


def run_host(project, body: str, python: str = sys.executable):
    """Run ``body`` in a fresh host; it sets ``result``. Also returns what changed in the host's import
    system: real-name modules of the envs' packages, and sys.meta_path, sys.path, sys.path_hooks."""
    project, host = project
    code = (
        f"import sys, json\nsys.path[:0] = [{str(SRC)!r}, {str(host)!r}]\n"
        "import polyvenv\n"
        "BEFORE = set(sys.modules), list(sys.meta_path), list(sys.path), list(sys.path_hooks)\n"
        f"PROJECT = {str(project)!r}\nws = polyvenv.Workspace.load(PROJECT)\n"
        + textwrap.dedent(body)
        + "\nfrom polyvenv.runtime.importer import FINDER\n"
        "host = {'modules': sorted(k for k in set(sys.modules) - BEFORE[0] if k.split('.')[0] in REAL_NAMES),\n"
        "        'meta_path': [f for f in sys.meta_path if f is not FINDER] == BEFORE[1],\n"
        "        'path': sys.path == BEFORE[2], 'path_hooks': sys.path_hooks == BEFORE[3]}\n"
        "print(json.dumps([result, host], default=repr))\n"
    )
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result, host = json.loads(proc.stdout.strip().splitlines()[-1])
    return result, host


UNTOUCHED = {"modules": [], "meta_path": True, "path": True, "path_hooks": True}


def test_a_missing_name_behaves_as_in_a_venv(project, any_python):
    """On every CPython found as the host: the import system's frames tell an import from a find_spec."""
    result, host = run_host(project, """
        REAL_NAMES = {"probe", "hostonly"}
        v1, v2 = ws.env("v1"), ws.env("v2")
        result = [env.import_module("probe").missing() for env in (v1, v2)]
        import hostonly, probe  # the host's own, still there and its own
        result.append([probe.__version__, hostonly.__file__.startswith(sys.path[1])])
    """, any_python)
    assert host == dict(UNTOUCHED, modules=["hostonly", "probe"])  # the two the host imported itself
    assert result[2] == ["host", True]
    for env, seen in zip(("v1", "v2"), result[:2]):
        assert seen["find_spec"] == [None, None, None]
        assert seen["probes"] == [False, False]
        for how in ("import", "import_statement", "import_module", "find_spec_dotted"):
            kind, not_found, name, message = seen[how]
            assert (kind, not_found, name) == ("EnvImportError", True, "hostonly"), how
            assert message.startswith(f"env {env!r} has no module 'hostonly' (looked in ")
            assert "site-packages" in message and "requirements" in message
        for how in ("import_submodule", "import_submodule_statement"):
            kind, not_found, name, message = seen[how]
            assert (kind, not_found, name) == ("EnvImportError", True, "probe.nope"), how
            assert message.startswith(f"env {env!r} has no module 'probe.nope' (looked in ")
            assert "site-packages/probe" in message


@pytest.mark.integration
def test_a_url_library_probing_an_optional_dependency_loads_with_its_framework(tmp_path):
    """yarl probes ``find_spec("pydantic_core")`` at import; aiohttp is built on it. Two versions each,
    side by side, while the host has a pydantic_core of its own that neither env may see."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "polyvenv.toml").write_text(textwrap.dedent("""
        [envs.old]
        requirements = ["aiohttp==3.9.5", "yarl==1.9.4"]
        [envs.new]
        requirements = ["aiohttp>=3.12,<4", "yarl>=1.18,<2"]
    """))
    subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=project, check=True, capture_output=True)
    host = tmp_path / "host"
    (host / "pydantic_core").mkdir(parents=True)
    (host / "pydantic_core" / "__init__.py").write_text("")
    result, seen = run_host((project, host), """
        REAL_NAMES = {"yarl", "aiohttp", "multidict", "propcache", "frozenlist", "pydantic_core"}
        import importlib.util
        result = {}
        for name in ("old", "new"):
            env = ws.env(name)
            yarl, web = env.import_module("yarl"), env.import_module("aiohttp.web")
            url = yarl.URL("http://example.com/a/b?x=1") / "c"
            result[name] = [yarl.__version__, str(url), getattr(yarl._url, "HAS_PYDANTIC", None),
                            type(web.Application()).__name__, web.__file__.startswith(str(env.build))]
        result["host"] = importlib.util.find_spec("pydantic_core").origin.startswith(sys.path[1])
    """)
    assert seen == UNTOUCHED
    assert result["old"] == ["1.9.4", "http://example.com/a/b/c", None, "Application", True]
    assert result["new"][1:] == ["http://example.com/a/b/c", False, "Application", True]
    assert result["new"][0] != "1.9.4" and result["host"] is True


def test_first_use_from_many_threads_makes_one_env_and_one_copy_of_each_module(project):
    """Threads released together ask a fresh workspace for the same envs and import from them, 15 rounds:
    one Env (or ProcessEnv, one worker) per name, one module object per module, and unload leaves none."""
    result, host = run_host(project, """
        REAL_NAMES = {"probe"}
        import threading
        sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can: races show
        def probes():  # every module in sys.modules loaded from an env's files
            return sorted(k for k, m in list(sys.modules.items()) if "/.polyvenv/" in str(getattr(m, "__file__", "")))
        problems = []
        for round in range(15):
            ws = polyvenv.Workspace.load(PROJECT)
            names = ["v1", "v2", "p"] * 4
            barrier = threading.Barrier(len(names))
            seen = [None] * len(names)
            def work(i):
                barrier.wait()
                env = ws.env(names[i])
                probe, sub = env.import_module("probe"), env.import_module("probe.sub")
                seen[i] = (env, probe, sub, sub.VERSION, env.pid if names[i] == "p" else None)
            threads = [threading.Thread(target=work, args=(i,)) for i in range(len(names))]
            [t.start() for t in threads]; [t.join() for t in threads]
            for name in ("v1", "v2", "p"):
                mine = [s for n, s in zip(names, seen) if n == name]
                if None in mine:
                    problems.append(f"round {round}: a thread failed for {name}")
                    continue
                if len({id(s[0]) for s in mine}) != 1 or ws.env(name) is not mine[0][0]:
                    problems.append(f"round {round}: several env objects for {name}")
                if name != "p" and len({id(m) for s in mine for m in s[1:3]}) != 2:
                    problems.append(f"round {round}: several copies of probe in {name}")
                if name == "p" and len({s[4] for s in mine}) != 1:
                    problems.append(f"round {round}: several workers for p")
                if {s[3] for s in mine} != {"2.0" if name == "v2" else "1.0"}:
                    problems.append(f"round {round}: {name} saw {sorted({s[3] for s in mine})}")
            if len(probes()) != 4:  # probe and probe.sub of v1 and v2, once each
                problems.append(f"round {round}: {probes()} in sys.modules")
            for name in ("v1", "v2", "p"):
                ws.env(name).unload()
            if probes():
                problems.append(f"round {round}: {probes()} left after unload")
        result = problems
    """)
    assert result == [] and host == UNTOUCHED
