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


VENDCLI = '''
"""A CLI that vendors its SDK in vendcli/_vendor and serves it under the SDK's own name with a finder."""
import importlib.util, os, sys

_VENDOR = os.path.join(os.path.dirname(__file__), "_vendor")


class VendorFinder:
    def find_spec(self, fullname, path=None, target=None):
        if fullname != "sdk" and not fullname.startswith("sdk."):
            return None
        base = os.path.join(_VENDOR, *fullname.split("."))
        if os.path.isdir(base):
            return importlib.util.spec_from_file_location(fullname, os.path.join(base, "__init__.py"),
                                                          submodule_search_locations=[base])
        if os.path.isfile(base + ".py"):
            return importlib.util.spec_from_file_location(fullname, base + ".py")
        return None


sys.meta_path.append(VendorFinder())

import sdk
from sdk import client


def report():
    return [sdk.VERSION, client.where(), sdk.__file__.startswith(_VENDOR), type(sys.meta_path[-1]).__name__]
'''

RUNNER = '''
"""A test runner: puts the project's root first on sys.path and imports the user's modules from there."""
import importlib, importlib.util, os, sys


def run(root, name):
    sys.path.insert(0, root)
    module = importlib.import_module(name)
    return [module.VALUE, module.PROBE, module.__file__.startswith(root), sys.path[0] == root]


def refused(archive, name):
    sys.path.insert(0, archive)
    try:
        importlib.import_module(name)
    except ImportError as error:
        return [type(error).__name__, str(error)]
    finally:
        sys.path.remove(archive)
    return "imported"


class AssertRewriter:
    """Like pytest's assertion rewriting hook: a finder and loader of the env's code for the user's tests,
    compiling their source itself."""

    def __init__(self, root):
        self.root = root

    def find_spec(self, name, path=None, target=None):
        origin = os.path.join(self.root, name + ".py")
        if name.startswith("test_") and os.path.isfile(origin):
            return importlib.util.spec_from_file_location(name, origin, loader=self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        import ast
        with open(module.__spec__.origin) as f:
            tree = ast.parse(f.read())
        module.REWRITTEN = True
        exec(compile(tree, module.__spec__.origin, "exec"), module.__dict__)


class PlainLoader(AssertRewriter):
    """A loader of the env's code that runs the file with the standard library's loader: not rewritten."""

    def exec_module(self, module):
        import importlib.machinery
        importlib.machinery.SourceFileLoader(module.__name__, module.__spec__.origin).exec_module(module)


def run_tests(root, name, kind):
    sys.meta_path.insert(0, {"rewriter": AssertRewriter, "plain": PlainLoader}[kind](root))
    try:
        module = importlib.import_module(name)
        return [module.REWRITTEN, module.PROBE, module.__name__.endswith("." + name)]
    except ImportError as error:
        return [type(error).__name__, str(error)]
    finally:
        del sys.meta_path[0]


def facade():
    sys.polyvenv_test_flag = "set by env code"  # any other attribute: the host's sys
    return [sys.version_info[:2] == tuple(sys.version_info[:2]), sys.modules is sys.modules,
            [p for p in sys.path if p.endswith("site-packages")] != [], __import__("os").getcwd() in sys.path,
            # vars(sys) as in a venv: the process's sys.modules, the env's own lists, sys's name
            [vars(sys)["modules"] is sys.modules, vars(sys)["path"] is sys.path,
             sys.__dict__["meta_path"] is sys.meta_path, vars(sys)["stdout"] is sys.stdout,
             vars(sys)["__name__"], "modules" in dir(sys) and "path_hooks" in dir(sys)]]
'''

NSPKG = ("import sys, types, os;has_mfs = sys.version_info > (3, 5);p = os.path.join(sys._getframe(1).f_locals"
         "['sitedir'], *('nsold',));importlib = has_mfs and __import__('importlib.util');has_mfs and "
         "__import__('importlib.machinery');m = has_mfs and sys.modules.setdefault('nsold', importlib.util."
         "module_from_spec(importlib.machinery.PathFinder.find_spec('nsold', [os.path.dirname(p)])));"
         "m = m or sys.modules.setdefault('nsold', types.ModuleType('nsold'));mp = (m or []) and "
         "m.__dict__.setdefault('__path__',[]);(p not in mp) and mp.append(p)\n")


def tool_wheels(wh: Path) -> None:
    """The wheels of env ``tools``: a CLI vendoring its SDK behind a finder, a test runner, .pth files."""
    make_wheel(wh, "vendcli", "1.0", {
        "vendcli/__init__.py": VENDCLI,
        # a circular import: client imports sdk.errors while sdk initialises (awscli's vendored s3transfer)
        "vendcli/_vendor/sdk/__init__.py": "VERSION = 'vendored-1.0'\nfrom sdk import client\n",
        # a dotted import of the vendored name binds `sdk` (awscli's vendored botocore, issue 12 corpus)
        "vendcli/_vendor/sdk/client.py": "import sdk.errors\ndef where():\n    return sdk.__name__\n",
        "vendcli/_vendor/sdk/errors.py": "",
    })
    make_wheel(wh, "runner", "1.0", {"runner/__init__.py": RUNNER})
    make_wheel(wh, "pthdemo", "1.0", {
        "pthdemo.pth": "# a comment\npthdemo-extra\nimport pthdemo_boot; pthdemo_boot.install()\n",
        "pthdemo_boot.py": "import sys\nRAN = []\ndef install():\n    RAN.append(sys.path[-1])\n",
        "pthdemo-extra/extramod.py": "import probe\nPROBE = probe.__version__\n",
        "nsold-nspkg.pth": NSPKG,
        "nsold/part/__init__.py": "PART = 'old-style namespace'\n",
    })


def make_project(root: Path, python: str | None = None) -> tuple[Path, Path]:
    """Envs v1 and v2 (probe 1.0 and 2.0, built for ``python``, default this one) and a host directory with its
    own probe and a hostonly module."""
    wh = root / "wheels"
    for version in ("1.0", "2.0"):
        make_wheel(wh, "probe", version, {"probe/__init__.py": PROBE.format(version=version),
                                          "probe/sub.py": "import probe\nVERSION = probe.__version__\n"})
    tool_wheels(wh)
    host = root / "host"
    (host / "probe").mkdir(parents=True)
    (host / "probe" / "__init__.py").write_text("__version__ = 'host'\n")
    (host / "hostonly.py").write_text("")
    project = root / "project"
    project.mkdir()
    interpreter = f'\n        python = "{python}"' if python else ""
    (project / "polyvenv.toml").write_text(textwrap.dedent(f"""
        wheelhouse = "{wh}"
        offline = true
        [envs.v1]
        requirements = ["probe==1.0"]{interpreter}
        [envs.v2]
        requirements = ["probe==2.0"]{interpreter}
        [envs.p]
        requirements = ["probe==1.0"]
        isolation = "process"
        [envs.tools]
        requirements = ["probe==1.0", "vendcli", "runner", "pthdemo"]
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


def test_a_missing_name_behaves_as_in_a_venv(tmp_path, any_python):
    """On every CPython found as the host (the envs built for it): the import system's frames tell an import
    from a find_spec."""
    result, host = run_host(make_project(tmp_path, any_python), """
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


def test_a_finder_env_code_adds_serves_the_env_and_never_the_host(project):
    """A CLI appends a finder for the SDK it vendors: the CLI imports the SDK through it (as the env's
    module), the host's sys.meta_path does not change and the host still has no `sdk`."""
    result, host = run_host(project, """
        REAL_NAMES = {"sdk", "vendcli"}
        tools = ws.env("tools")
        result = tools.import_module("vendcli").report()
        try:
            import sdk
            result.append(f"the host imported {sdk.__file__}")
        except ModuleNotFoundError:
            result.append("the host has no sdk")
    """)
    assert host == UNTOUCHED
    assert result[:3] == ["vendored-1.0", result[1], True] and result[1].endswith(".sdk")
    assert result[3:] == ["VendorFinder", "the host has no sdk"]


def test_an_entry_env_code_puts_on_sys_path_serves_the_env_and_never_the_host(project, tmp_path):
    """A test runner inserts the project's root in sys.path and imports the user's module, which imports the
    env's own probe; the host's sys.path is as before and the host cannot import the user's module."""
    (tmp_path / "userproj").mkdir()
    (tmp_path / "userproj" / "__init__.py").write_text("import probe\nVALUE = 'user'\nPROBE = probe.__version__\n")
    result, host = run_host(project, f"""
        REAL_NAMES = {{"userproj", "probe", "runner"}}
        runner = ws.env("tools").import_module("runner")
        result = [runner.run({str(tmp_path)!r}, "userproj"), runner.facade(),
                  getattr(sys, "polyvenv_test_flag", None)]
        try:
            import userproj
            result.append("the host imported userproj")
        except ModuleNotFoundError:
            result.append("the host has no userproj")
    """)
    assert host == UNTOUCHED
    assert result[0] == ["user", "1.0", True, True]
    assert result[1] == [True, True, True, False,  # the host's cwd is not on the env's sys.path
                         [True, True, True, True, "sys", True]]
    assert result[2:] == ["set by env code", "the host has no userproj"]


def test_a_zip_on_the_env_path_is_refused_loudly(project, tmp_path):
    """Code zipimport would run without the rewrite: refused, with the way out, never run."""
    import zipfile

    archive = tmp_path / "user.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zipped.py", "import probe\n")
    result, host = run_host(project, f"""
        REAL_NAMES = {{"zipped", "probe"}}
        result = ws.env("tools").import_module("runner").refused({str(archive)!r}, "zipped")
    """)
    assert host == UNTOUCHED
    kind, message = result
    assert kind == "LoaderNotSupported" and message.startswith("env 'tools': 'zipped' comes from ")
    assert "isolation = \"process\"" in message


def test_the_envs_pth_files_run_for_the_env(project):
    """An env's .pth files, as site runs them for a venv: path lines extend the env's sys.path, import lines
    run as env code once per load; an old *-nspkg.pth package is a namespace package, nothing warns."""
    result, host = run_host(project, """
        REAL_NAMES = {"extramod", "pthdemo_boot", "nsold", "probe"}
        import warnings
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            tools = ws.env("tools")
            boot = tools.import_module("pthdemo_boot")
            result = [tools.import_module("extramod").PROBE, len(boot.RAN), boot.RAN[0].endswith("pthdemo-extra"),
                      tools.import_module("nsold.part").PART]
        result.append([str(w.message) for w in said])
    """)
    assert host == UNTOUCHED
    assert result == ["1.0", 1, True, "old-style namespace", []]


def test_a_loader_of_env_code_runs_rewritten_and_one_binding_the_hosts_modules_is_refused(project, tmp_path):
    """An assertion rewriter (pytest's way) compiles the user's test itself: it runs as env code, its
    `import probe` the env's. A loader running the file with the standard library's loader binds the host's
    probe instead: refused, loudly, with the way out."""
    for name in ("test_user", "test_plain"):
        (tmp_path / f"{name}.py").write_text("import probe\nPROBE = probe.__version__\n")
    result, host = run_host(project, f"""
        REAL_NAMES = {{"test_user", "test_plain", "probe"}}
        runner = ws.env("tools").import_module("runner")
        result = [runner.run_tests({str(tmp_path)!r}, "test_user", "rewriter")]
        result.append(runner.run_tests({str(tmp_path)!r}, "test_plain", "plain"))
    """)
    assert result[0] == [True, "1.0", True], result
    kind, message = result[1]
    assert kind == "LoaderNotSupported" and "bound the host's 'probe'" in message and "isolation" in message
    assert host == dict(UNTOUCHED, modules=["probe"])  # the host's own probe, imported by the unrewritten code


@pytest.mark.integration
def test_two_pytest_versions_run_a_projects_tests_inside_their_envs(tmp_path):
    """pytest inserts the project's root in sys.path, imports conftest and the tests through its assertion
    rewriter (a finder on sys.meta_path that asks PathFinder), and loads its plugins: all inside each env,
    two versions side by side, the host's sys.path and sys.meta_path as they were."""
    project = tmp_path / "project"
    tests = tmp_path / "usertests"
    tests.mkdir(parents=True)
    project.mkdir()
    (tests / "conftest.py").write_text("import pytest\n@pytest.fixture\ndef one():\n    return 1\n")
    (tests / "helper.py").write_text("VALUE = 1\n")
    (tests / "test_user.py").write_text(
        "import helper\ndef test_ok(one):\n    assert helper.VALUE == one\n"
        "def test_fails():\n    x = 2\n    assert x == 3\n")
    (project / "polyvenv.toml").write_text(textwrap.dedent("""
        [envs.old]
        requirements = ["pytest==7.4.4"]
        [envs.new]
        requirements = ["pytest>=8.3,<9"]
    """))
    subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=project, check=True, capture_output=True)
    result, host = run_host((project, tmp_path), f"""
        REAL_NAMES = {{"pytest", "_pytest", "pluggy", "conftest", "helper", "test_user", "iniconfig"}}
        import contextlib, io
        result = {{}}
        for name in ("old", "new"):
            pytest = ws.env(name).import_module("pytest")
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = pytest.main([{str(tests)!r}, "-q", "-p", "no:cacheprovider"])
            lines = out.getvalue().splitlines()
            result[name] = [pytest.__version__, int(code), "E       assert 2 == 3" in lines,
                            any(line.startswith("1 failed, 1 passed") for line in lines)]
    """)
    assert host == UNTOUCHED
    assert result["old"] == ["7.4.4", 1, True, True]
    assert result["new"][0].startswith("8.") and result["new"][1:] == [1, True, True]


def test_a_package_refused_halfway_is_refused_again_by_its_submodules(tmp_path):
    """A refusal ends an import halfway (pandas 3.1 beside the host's: one of its extensions shares a symbol):
    the package's modules it ran are taken out again, so a submodule imported next is refused too, as the
    package is, instead of running on half of it (pandas: ``KeyError: 'compute'``, its options never set)."""
    import py_compile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "compiled.py").write_text("COMPILED = True\n")
    py_compile.compile(str(scratch / "compiled.py"), str(scratch / "compiled.pyc"))
    wh = tmp_path / "wheels"
    make_wheel(wh, "halfway", "1.0", {
        "halfway/__init__.py": "from halfway.core import options\nfrom halfway import compiled\n"
                               "options.OPTIONS['compute'] = True\n",
        "halfway/compiled.pyc": (scratch / "compiled.pyc").read_bytes(),  # refused: bytecode without its source
        "halfway/core/__init__.py": "",
        "halfway/core/options.py": "OPTIONS = {}\n",
        "halfway/core/expressions.py": "from halfway.core.options import OPTIONS\nUSE = OPTIONS['compute']\n",
    })
    project = tmp_path / "project"
    project.mkdir()
    (project / "polyvenv.toml").write_text(f'wheelhouse = "{wh}"\noffline = true\n'
                                           '[envs.half]\nrequirements = ["halfway==1.0"]\n')
    subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=project, check=True, capture_output=True)
    result, host = run_host((project, tmp_path / "host"), """
        REAL_NAMES = {"halfway"}
        env = ws.env("half")
        result = []
        for name in ("halfway", "halfway.core.expressions", "halfway.core.expressions"):
            try:
                env.import_module(name)
                result.append("imported")
            except Exception as exc:
                result.append([type(exc).__name__, "bytecode without its source" in str(exc)])
    """)
    assert result == [["ExtensionNotSupported", True]] * 3
    assert host == UNTOUCHED
