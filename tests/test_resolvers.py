"""Names resolved for env code by the standard library (issue 12, findings 1, 2, 3 and 8).

Where stdlib code resolves a module name on an env's behalf (``builtins.__import__``
taken explicitly, ``EntryPoint.load``, ``pydoc.locate``, ``runpy``, the unittest and
doctest loaders, ``mock.patch``, ``logging.config``, ``setattr(cls, "__module__", ...)``)
it must give the env's module. Every check runs in a fresh host interpreter whose
own ``sys.path`` has a *host copy* of the same package (``WHERE == "host"``): a
resolver that resolved on the host shows up as a wrong answer *and* as a module of
the real name in the host's ``sys.modules``, which every test asserts is absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src"

PLUG = {
    "plug/__init__.py": '''
        import builtins
        WHERE = "env"
        def via_getattr(name): return getattr(builtins, "__import__")(name, fromlist=["x"])
        def via_attribute(name):
            imp = builtins.__import__
            return imp(name, fromlist=["x"])
        def via_computed(name, attr="__im" + "port__"): return getattr(builtins, attr)(name, fromlist=["x"])
        def via_builtins_dict(name): return __builtins__["__import__"](name, fromlist=["x"])
        def via_builtins_get(name): return __builtins__.get("__import__")(name, fromlist=["x"])
        def via_from_builtins(name):
            from builtins import __import__ as imp
            return imp(name, fromlist=["x"])
        def via_vars(name): return vars(builtins)["__import__"](name, fromlist=["x"])
        def via_alias(name):
            import builtins as b
            return getattr(b, "__import__")(name, fromlist=["x"])
        def via_importlib(name):
            import importlib
            return importlib.__import__(name, fromlist=["x"])
        def main(): return "main-" + WHERE
        def call(function): return function()
    ''',
    "plug/sub.py": 'WHERE = "env-sub"\nclass Thing: pass\n',
    "plug/tool.py": '''
        """
        >>> WHERE
        'env-tool'
        """
        import unittest
        import plug.sub
        WHERE = "env-tool"
        RESULT = [__name__, plug.sub.WHERE, eval("__import__('plug.sub').sub.WHERE")]
        class T(unittest.TestCase):
            def test_where(self):
                self.assertEqual(plug.sub.WHERE, "env-sub")
        class Formatter:
            def __init__(self, *args, **kwargs): pass
    ''',
    "plug/res.py": '''
        import code, doctest, io, logging.config, pickle, pkgutil, pydoc, runpy, timeit, unittest
        def timed(): return timeit.timeit("plug.sub.WHERE", setup="import plug.sub", number=1) > 0
        def console():
            shell = code.InteractiveConsole()
            shell.push("import plug.sub")
            return shell.locals["plug"].sub.WHERE
        def unpickle(data): return pickle.loads(data)
        def pickled(obj): return pickle.dumps(obj)
        def pickled_file(obj):
            out = io.BytesIO()
            pickle.dump(obj, out)
            return out.getvalue()
        def pickled_python(obj):
            out = io.BytesIO()
            pickle._Pickler(out).dump(obj)
            return out.getvalue()
        class _Cloud(pickle.Pickler):  # a subclass with a reducer_override of its own (cloudpickle's)
            def reducer_override(self, obj): return NotImplemented
        def pickled_subclass(obj):
            out = io.BytesIO()
            _Cloud(out).dump(obj)
            return out.getvalue()
        def unpickle_file(data): return pickle.load(io.BytesIO(data))
        def unpickle_python(data): return pickle._Unpickler(io.BytesIO(data)).load()  # joblib's, dill's
        class _Mine(pickle.Unpickler):  # a subclass of the C unpickler, asking its base for each class
            def find_class(self, module, name): return super().find_class(module, name)
        class _MinePython(pickle._Unpickler): pass
        def unpickle_subclass(data): return _Mine(io.BytesIO(data)).load()
        def unpickle_python_subclass(data): return _MinePython(io.BytesIO(data)).load()
        def locate(name): return pydoc.locate(name)
        def resolve(name): return pkgutil.resolve_name(name)
        def walk(prefix):  # imports each package it finds, by the name it makes with the prefix
            return sorted(m.name.partition(".")[2] for m in pkgutil.walk_packages(__import__("plug").__path__, prefix))
        def data(package): return getattr(pkgutil, "get_data")(package, "data.txt").decode()
        def run(name): return runpy.run_module(name)["WHERE"]
        def run_main(name): return runpy.run_module(name, run_name="__main__")["RESULT"]
        def run_path(path): return runpy.run_path(path)["RESULT"]
        def dict_config(factory, key):
            logging.config.dictConfig({"version": 1, "formatters": {"f": {key: factory}},
                "handlers": {"h": {"class": "logging.StreamHandler", "formatter": "f"}},
                "loggers": {"resolvers-test": {"handlers": ["h"]}}})
            return type(logging.getLogger("resolvers-test").handlers[0].formatter).__module__
        def _ran(suite):
            result = unittest.TestResult()
            suite.run(result)
            return [result.testsRun, len(result.failures) + len(result.errors)]
        def tests(name): return _ran(unittest.defaultTestLoader.loadTestsFromName(name))
        def doctests(name): return _ran(doctest.DocTestSuite(name))
        def main(name):
            result = unittest.main(module=name, argv=["x"], exit=False, testRunner=_Runner).result
            return [result.testsRun, len(result.failures) + len(result.errors)]
        class _Runner:
            def run(self, suite):
                result = unittest.TestResult()
                suite.run(result)
                return result
    ''',
    "plug/writes.py": '''
        import sys, types
        fake = types.ModuleType("fake")
        sys.modules["json"] = fake  # the standard library's names: the env's own entries, not the host's
        sys.modules.setdefault("csv", fake)
        del sys.modules["textwrap"]
        sys.modules.pop("string", None)
        sys.modules["plug.made"] = fake  # its own names: as always
        OWN = [sys.modules["plug.made"] is fake, "plug.made" in sys.modules]
        del sys.modules["plug.made"]
        OWN.append("plug.made" in sys.modules)
    ''',
    "plug/data.txt": "env-data",
    "plug/inner/__init__.py": "",
    "plug/inner/leaf.py": "",
    "plug/mocked.py": '''
        import unittest
        from unittest import mock
        import plug.sub
        class T(unittest.TestCase):
            @mock.patch("plug.sub.WHERE", "patched")
            def test_decorated(self):
                self.assertEqual(plug.sub.WHERE, "patched")
            def test_context(self):
                with mock.patch.dict("plug.sub.__dict__", {"EXTRA": 1}):
                    self.assertEqual(plug.sub.EXTRA, 1)
                with mock.patch.multiple("plug.sub", WHERE="multi"):
                    self.assertEqual(plug.sub.WHERE, "multi")
    ''',
    "plug/_impl.py": '''
        import typing
        import plug.sub
        class Client:
            peer: "typing.Optional[Client]" = None
            thing: "plug.sub.Thing" = None
        def helper(): return "helper"
        def set_module(name):  # numpy's decorator
            def decorate(thing):
                thing.__module__ = name
                return thing
            return decorate
    ''',
    "plug/public.py": '''
        import collections, dataclasses, enum, sys, typing
        import plug.sub
        from plug._impl import Client, helper, set_module as _set_module
        @_set_module("plug.public")  # under another name, as numpy imports it
        class Marked: pass
        for _name in ("Client", "helper"):  # httpx's tidying of its public names
            setattr(globals()[_name], "__module__", "plug.public")
        if sys.version_info >= (3, 12):
            Point = dataclasses.make_dataclass("Point", ["x", "y"], module="plug.public")
        else:  # module= is new in 3.12
            Point = dataclasses.make_dataclass("Point", ["x", "y"])
            Point.__module__ = "plug.public"
        Color = enum.Enum("Color", "RED GREEN", module="plug.public")
        Pair = collections.namedtuple("Pair", "a b", module="plug.public")
        STARTS = [Marked.__module__.startswith("plug."), Pair.__module__.startswith(("x", "plug"))]  # setuptools'
        def public_factory(function, location):  # sqlalchemy 1.4's: the name is put together at run time
            function.__module__ = "plug" + location.rsplit(".", 1)[0]
            return function
        def joined(): return "joined"
        joined = public_factory(joined, ".public.joined")
    ''',
    "plug/builder.py": '''
        def build(name, module_name):  # protobuf's builder: the module's own name comes as a value
            namespace = {"DESCRIPTOR": name}
            namespace["__module__"] = module_name
            return type(name, (), namespace)
        def service(name, module_name): return type(name, (), dict(DESCRIPTOR=name, __module__=module_name))
        def is_thing(obj): return getattr(type(obj), "__module__", None) == "plug.sub"  # protobuf's numpy check
    ''',
    "plug/built_pb2.py": '''
        from plug import builder as _builder
        Message = _builder.build("Message", "plug.built_pb2")  # the generated module passes its own name
        Service = _builder.service("Service", "plug.built_pb2")
        Old = type("Old", (), {"DESCRIPTOR": None, "__module__": "plug.built_pb2"})  # protobuf 3's generated code
        Elsewhere = _builder.build("Elsewhere", "hostonly")  # a name the env lacks is left as it is
        Mine = _builder.build("Mine", __name__)
        _globals = globals()
        def made_by(build):  # a builder of the host's (protobuf shared with the host) gets the module's own name
            return build("Shared", "plug.built_pb2", _globals)
        NOT_MINE = ["plug.built_pb2"]  # the module's name as data (sqlalchemy's preload_module registry) stays
        NOT_MINE.append(str("plug.built_pb2"))
    ''',
}
ENTRY_POINTS = "[plug.ext]\nsub = plug.sub:WHERE\nmod = plug.sub\n[console_scripts]\nplugtool = plug:main\n"


def write_tree(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(textwrap.dedent(text))


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> tuple[Path, Path]:
    """(env, host): the env's site-packages with plug 1.0 and its entry points; the host's own plug,
    every module of which says "host"."""
    root = tmp_path_factory.mktemp("resolvers")
    env, host = root / "env" / "site-packages", root / "host"
    write_tree(env, PLUG)
    write_tree(env, {"plug-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: plug\nVersion: 1.0\n",
                     "plug-1.0.dist-info/entry_points.txt": ENTRY_POINTS})
    write_tree(host, {path: text.replace('"env', '"host').replace("'env", "'host")
                      for path, text in PLUG.items()})
    (root / "script.py").write_text("import plug.sub\nRESULT = plug.sub.WHERE\n")
    (host / "hostonly.py").write_text("WHERE = 'hostonly'\n")
    (host / "hostbuilder.py").write_text("def build(name, module_name, namespace):\n    return type(name, (), {'__module__': module_name})\n")
    return env, host


def run(dirs, body: str, python: str = sys.executable):
    """Run ``body`` in a fresh host (``env`` is the env, ``plug`` its package); returns what it
    sets as ``result``, after checking no module of the real name ``plug`` is in sys.modules."""
    env, host = dirs
    code = (
        f"import sys, json\nsys.path[:0] = [{str(SRC)!r}, {str(host)!r}]\n"
        f"import polyvenv\nenv = polyvenv.Env.from_path({str(env)!r}, name='e')\n"
        f"ENV = {str(env)!r}\nplug = env.import_module('plug')\n"
        + textwrap.dedent(body)
        + "\nhost = sorted(k for k in sys.modules if k.partition('.')[0] == 'plug')\n"
        "print(json.dumps([result, host]))\n"
    )
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result, host_modules = json.loads(proc.stdout.strip().splitlines()[-1])
    assert host_modules == [], f"the host's own plug was imported: {host_modules}"
    return result


# -- finding 1: builtins.__import__ taken explicitly ----------------------------------------------

@pytest.mark.parametrize("form", ["via_getattr", "via_attribute", "via_computed", "via_builtins_dict",
                                  "via_builtins_get", "via_from_builtins", "via_vars", "via_alias",
                                  "via_importlib"])
def test_builtins_import_taken_explicitly_imports_the_envs_module(dirs, form):
    result = run(dirs, f"""
        module = getattr(plug, {form!r})("plug.sub")
        result = [module.WHERE, module.__file__.startswith(ENV)]
    """)
    assert result == ["env-sub", True]


def test_import_statements_keep_the_fast_path_and_the_builtins_module_is_the_envs(dirs):
    result = run(dirs, """
        import builtins
        env_builtins = plug.__dict__["__builtins__"]
        facade = plug.builtins
        facade.made_by_env = 1  # in a venv, a builtin for the env's code: here for the env's code only
        result = [env_builtins["__import__"] is builtins.__import__, facade.__import__ is builtins.__import__,
                  vars(facade) is env_builtins, facade.len is len, facade.compile is env_builtins["compile"],
                  eval("made_by_env", vars(plug)), hasattr(builtins, "made_by_env"), facade.__name__]
    """)
    assert result == [True, False, True, True, True, 1, False, "builtins"]


# -- finding 2: entry points --------------------------------------------------------------------

def test_entry_points_load_from_the_env_on_every_python(dirs, any_python):
    result = run(dirs, """
        md = env.import_module("importlib.metadata")
        if sys.version_info >= (3, 10):
            eps = env.entry_points(group="plug.ext")
            sub, mod = eps["sub"], eps["mod"]
            script = env.entry_points(group="console_scripts")["plugtool"]
            from_code = md.entry_points(group="plug.ext")["sub"]  # as the env's own code asks
        else:  # Python 3.9: a dict by group
            by_name = {ep.name: ep for ep in env.entry_points()["plug.ext"]}
            sub, mod = by_name["sub"], by_name["mod"]
            script = [ep for ep in env.entry_points()["console_scripts"] if ep.name == "plugtool"][0]
            from_code = [ep for ep in md.entry_points()["plug.ext"] if ep.name == "sub"][0]
        dist = env.distribution("plug")
        in_dist = [ep for ep in dist.entry_points if ep.name == "sub"][0]
        result = [sub.load(), mod.load().__file__.startswith(ENV), script.load()(), from_code.load(),
                  in_dist.load(), sub.value, getattr(sub, "module", "plug.sub"), getattr(sub, "attr", "WHERE"),
                  repr(sub).startswith("EntryPoint("), isinstance(dist, md.Distribution), sub == in_dist,
                  md.EntryPoint("made", "plug.sub:WHERE", "by.hand").load()]  # made by the env's own code
    """, python=any_python)
    assert result == ["env-sub", True, "main-env", "env-sub", "env-sub", "plug.sub:WHERE", "plug.sub", "WHERE",
                      True, True, True, "env-sub"]


# -- finding 3: the standard library's other resolvers --------------------------------------------

RESOLVER_CALLS = [
    ("locate('plug.sub.WHERE')", "env-sub"),
    ("locate('int') is int", True),
    ("locate('plug.nothing')", None),
    ("resolve('plug.sub:WHERE')", "env-sub"),
    ("resolve('plug.sub.WHERE')", "env-sub"),
    ("walk('plug.')", ["_impl", "builder", "built_pb2", "inner", "inner.leaf", "mocked", "public", "res", "sub", "tool",
                       "writes"]),
    ("data('plug')", "env-data"),
    ("run('plug.tool')", "env-tool"),
    ("run_main('plug.tool')", ["__main__", "env-sub", "env-sub"]),
    ("run_path(SCRIPT)", "env-sub"),
    ("dict_config('plug.tool.Formatter', '()').endswith('.tool')", True),
    ("dict_config('plug.tool.Formatter', 'class').endswith('.tool')", True),
    ("tests('plug.tool')", [1, 0]),
    ("doctests('plug.tool')", [1, 0]),
    ("main('plug.tool')", [1, 0]),
    ("timed()", True),
    ("console()", "env-sub"),
]


@pytest.mark.parametrize("call, expected", RESOLVER_CALLS)
def test_stdlib_resolvers_called_by_env_code_give_the_envs_module(dirs, call, expected):
    result = run(dirs, f"""
        res = env.import_module("plug.res")
        res.ENV = ENV
        SCRIPT = {str(dirs[0].parent.parent / "script.py")!r}
        value = eval("res." + {call!r})
        result = value if not hasattr(value, "__module__") else str(value)
    """)
    assert result == expected


def test_every_resolver_and_builtins_import_form_on_every_python(dirs, any_python):
    """The checks above, in one host process per CPython 3.9-3.13 found."""
    forms = ["via_getattr", "via_attribute", "via_computed", "via_builtins_dict", "via_builtins_get",
             "via_from_builtins", "via_vars", "via_alias"]
    result = run(dirs, f"""
        res = env.import_module("plug.res")
        res.ENV = ENV
        SCRIPT = {str(dirs[0].parent.parent / "script.py")!r}
        def value(call):
            found = eval("res." + call)
            return found if not hasattr(found, "__module__") else str(found)
        result = [[value(call) for call, _ in {RESOLVER_CALLS!r}],
                  [getattr(plug, form)("plug.sub").WHERE for form in {forms!r}]]
    """, python=any_python)
    assert result == [[expected for _, expected in RESOLVER_CALLS], ["env-sub"] * len(forms)]


def test_what_a_resolver_cannot_map_is_refused_naming_the_env(dirs, tmp_path):
    """runpy.run_path of a directory runs its __main__ through the host's path finder: refused."""
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__main__.py").write_text("import plug\n")
    result = run(dirs, f"""
        res = env.import_module("plug.res")
        try:
            res.run_path({str(tmp_path / "app")!r})
            result = "ran"
        except ImportError as error:
            result = [type(error).__name__, str(error)]
    """)
    assert result[0] == "NotResolvable" and result[1].startswith("env 'e': runpy.run_path(")
    assert 'isolation = "process"' in result[1]


def test_mock_patch_targets_written_in_env_tests_patch_the_envs_module(dirs, any_python):
    """Run by the host's own unittest runner: the decorated patch resolves when no env frame is on
    the stack, so its target is mapped when the env's code makes the patch."""
    result = run(dirs, """
        import unittest
        suite = unittest.defaultTestLoader.loadTestsFromModule(env.import_module("plug.mocked"))
        outcome = unittest.TestResult()
        suite.run(outcome)
        result = [outcome.testsRun, [str(e) for _, e in outcome.failures + outcome.errors],
                  env.import_module("plug.sub").WHERE]
    """, python=any_python)
    assert result == [2, [], "env-sub"]


def test_a_host_callback_called_by_env_code_resolves_on_the_host(dirs):
    """The nearest frame outside the standard library decides: here the host's script (``__main__``)."""
    result = run(dirs, """
        import pydoc, types
        res = env.import_module("plug.res")
        def callback():
            return pydoc.locate("hostonly.WHERE")  # the env has no hostonly: for env code, None
        result = [env.import_module("plug").call(callback), env.import_module("plug.res").locate("hostonly.WHERE")]
    """)
    assert result == ["hostonly", None]


def test_env_code_writing_the_standard_librarys_sys_modules_entries_leaves_the_hosts(dirs):
    """setuptools' distutils shim deletes and sets standard-library names in ``sys.modules``: from env code
    those writes are the env's, the host's entries stay (its own names are written as always)."""
    result = run(dirs, """
        import json, csv, textwrap, string
        before = [sys.modules[n] for n in ("json", "csv", "textwrap", "string")]
        writes = env.import_module("plug.writes")
        result = [[sys.modules[n] is m for n, m in zip(("json", "csv", "textwrap", "string"), before)], writes.OWN,
                  sorted(k for k in sys.modules if k.endswith(".made"))]
    """)
    assert result == [[True] * 4, [True, True, False], []]


RESOLVER_MODULES = ("pickle", "pkgutil", "pydoc", "runpy", "doctest", "unittest", "unittest.loader", "unittest.main",
                    "unittest.mock", "logging", "logging.config", "timeit", "codeop", "code", "builtins", "importlib")
RESOLVER_CLASSES = ("pickle._Unpickler", "unittest.loader.TestLoader", "unittest.main.TestProgram",
                    "logging.config.BaseConfigurator", "logging.config.DictConfigurator", "timeit.Timer",
                    "codeop.Compile", "codeop.CommandCompiler", "code.InteractiveInterpreter", "code.InteractiveConsole")


def test_the_hosts_resolvers_are_untouched_while_env_code_resolves_its_own_names(dirs):
    """The runtime costs the host nothing: after an env loaded and its code resolved names through every
    resolver, the host's resolver modules (and the classes whose methods resolve) hold the very objects
    they held before (``pickle.loads is _pickle.loads``), and the host's calls resolve on the host."""
    env, host = dirs
    code = textwrap.dedent(f"""
        import sys, json, importlib, _pickle
        sys.path[:0] = [{str(SRC)!r}, {str(host)!r}]
        import pickle, pkgutil, pydoc, runpy, doctest, unittest, unittest.mock, logging.config, timeit, code
        def objects():
            found = {{name: {{k: id(v) for k, v in vars(importlib.import_module(name)).items()}}
                     for name in {RESOLVER_MODULES!r}}}
            for path in {RESOLVER_CLASSES!r}:
                module, _, cls = path.rpartition(".")
                found[path] = {{k: id(v) for k, v in vars(getattr(importlib.import_module(module), cls)).items()}}
            return found
        pkgutil.resolve_name("os:sep")  # its first call caches a pattern in the module
        before = objects()
        import polyvenv
        env = polyvenv.Env.from_path({str(env)!r}, name="e")
        res = env.import_module("plug.res")
        SCRIPT = {str(env.parent.parent / "script.py")!r}
        in_env = [eval("res." + call) for call, _ in {RESOLVER_CALLS[:-2]!r}]
        after = objects()
        changed = sorted(f"{{m}}.{{k}}" for m in before for k in set(before[m]) | set(after[m])
                         if before[m].get(k) != after[m].get(k) and f"{{m}}.{{k}}" != "builtins._")  # doctest's
        print(json.dumps([changed, pickle.loads is _pickle.loads, pickle.Unpickler is _pickle.Unpickler,
                          pydoc.locate("plug.sub.WHERE"), pkgutil.resolve_name("plug.sub:WHERE"),
                          runpy.run_module("plug.tool")["WHERE"], [str(v) for v in in_env[:4]],
                          type(res.pickle).__name__, res.pickle.HIGHEST_PROTOCOL is pickle.HIGHEST_PROTOCOL,
                          res.pickle.dumps is pickle.dumps]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [[], True, True, "host-sub", "host-sub", "host-tool",
                                       ["env-sub", "True", "None", "env-sub"], "Forwarding_pickle", True,
                                       False]  # the env's dumps: its classes by their real names (runtime/pickles.py)


@pytest.mark.parametrize("how", ["unpickle", "unpickle_file", "unpickle_python", "unpickle_subclass",
                                 "unpickle_python_subclass"])
def test_a_pickle_made_in_the_envs_own_venv_loads_the_envs_classes_in_env_code(dirs, how):
    env, host = dirs
    made = subprocess.run([sys.executable, "-c", f"import sys, pickle; sys.path[:0] = [{str(env)!r}]; import plug.sub; "
                           "sys.stdout.buffer.write(pickle.dumps([plug.sub.Thing, plug.sub.Thing()]))"],
                          capture_output=True, check=True).stdout
    result = run(dirs, f"""
        thing = env.import_module("plug.sub").Thing
        loaded = env.import_module("plug.res").{how}(bytes.fromhex({made.hex()!r}))
        result = [loaded[0] is thing, type(loaded[1]) is thing]
    """)
    assert result == [True, True]


@pytest.mark.parametrize("how", ["pickled", "pickled_file", "pickled_python", "pickled_subclass"])
def test_a_pickle_env_code_makes_loads_the_envs_classes_wherever_it_is_read(dirs, tmp_path, how):
    """Read in another process whose loads gave the pickle's aliases to another env (its plug says
    "other"), by the env's own venv, and by host code through the env's pickle: the env's classes."""
    _pickle_read_elsewhere(dirs, tmp_path, how, sys.executable)


def test_an_env_pickle_loads_the_envs_classes_elsewhere_on_each_python(dirs, tmp_path, any_python):
    _pickle_read_elsewhere(dirs, tmp_path, "pickled", any_python)


def _pickle_read_elsewhere(dirs, tmp_path: Path, how: str, python: str) -> None:
    env, host = dirs
    other = tmp_path / "other" / "site-packages"
    write_tree(other, {path: text.replace('"env', '"other') for path, text in PLUG.items()})
    made = run(dirs, f"""
        res, sub = env.import_module("plug.res"), env.import_module("plug.sub")
        result = res.{how}([sub.Thing, sub.Thing(), plug.main]).hex()
    """, python)
    data = bytes.fromhex(made)
    venv = subprocess.run([python, "-c", f"import sys, pickle; sys.path[:0] = [{str(env)!r}]; "
                           f"a = pickle.loads(bytes.fromhex({made!r})); print(a[0].__module__, type(a[1]).__module__, "
                           "a[0].__module__ == 'plug.sub' and a[2]())"], capture_output=True, text=True)
    assert venv.stdout.split() == ["plug.sub", "plug.sub", "main-env"], venv.stderr  # as the env's own venv reads it
    code = (f"import sys, json, pickle\nsys.path[:0] = [{str(SRC)!r}, {str(host)!r}]\nimport polyvenv\n"
            f"other = polyvenv.Env.from_path({str(other)!r}, name='o')\nother.import_module('plug.sub')\n"
            f"env = polyvenv.Env.from_path({str(env)!r}, name='e')\n"
            f"data = bytes.fromhex({made!r})\n"
            "loaded = env.import_module('plug.res').unpickle(data)\n"
            "by_host = env.import_module('pickle').loads(data)\n"
            "thing = env.import_module('plug.sub').Thing\n"
            "print(json.dumps([loaded[0] is thing, type(loaded[1]) is thing, loaded[2](), by_host[0] is thing,"
            " other.import_module('plug.sub').WHERE, sorted(k for k in sys.modules if k.partition('.')[0] == 'plug')]))\n")
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [True, True, "main-env", True, "other-sub", []]
    assert b"Plug" not in data and b"pLug" not in data  # no alias of this process in the stream


# -- finding 8: module names assigned at run time ---------------------------------------------------

def test_module_names_assigned_at_run_time_name_the_envs_module(dirs):
    result = run(dirs, """
        import inspect, pickle, typing
        public = env.import_module("plug.public")
        objects = [public.Client, public.helper, public.Point, public.Color, public.Pair, public.Marked, public.joined]
        hints = typing.get_type_hints(env.import_module("plug._impl").Client)
        result = [[inspect.getmodule(o) is public for o in objects],
                  [pickle.loads(pickle.dumps(o)) is o for o in objects],
                  pickle.loads(pickle.dumps(public.Color.RED)) is public.Color.RED,
                  pickle.loads(pickle.dumps(public.Point(1, 2))) == public.Point(1, 2),
                  hints["thing"] is env.import_module("plug.sub").Thing,
                  public.Client.__module__ != "plug.public", public.STARTS]
    """)
    assert result == [[True] * 7, [True] * 7, True, True, True, True, [True, True]]


def test_module_names_reaching_a_class_namespace_as_values_name_the_envs_module(dirs):
    """Generated protobuf modules pass their own name to the builder, which puts it under
    ``"__module__"`` in the class namespace: the classes must name the env's module (pickle and
    ``inspect`` follow it), and a ``__module__`` compared with a literal must compare with the env's."""
    result = run(dirs, """
        import inspect, pickle
        built = env.import_module("plug.built_pb2")
        classes = [built.Message, built.Service, built.Old, built.Mine]
        thing = env.import_module("plug.sub").Thing()
        result = [[inspect.getmodule(c) is built for c in classes], [pickle.loads(pickle.dumps(c)) is c for c in classes],
                  type(pickle.loads(pickle.dumps(built.Message()))) is built.Message, built.Elsewhere.__module__,
                  built.Message.__module__ == built.__name__ != "plug.built_pb2",
                  env.import_module("plug.builder").is_thing(thing),
                  built.made_by(__import__("hostbuilder").build).__module__ == built.__name__, built.NOT_MINE]
    """)
    assert result == [[True] * 4, [True] * 4, True, "hostonly", True, True, True, ["plug.built_pb2"] * 2]


def test_a_process_envs_entry_points_load_in_its_worker(workspace):
    """``ProcessEnv.entry_points`` are read here, without a worker; loading one imports it in the worker
    (a proxy comes back), never in the host."""
    import polyvenv

    workspace.write("""
        [envs.w]
        requirements = ["greeter==1.0"]
        isolation = "process"
    """)
    workspace.cli("sync")
    env = polyvenv.Workspace.load(workspace.root).env("w")
    try:
        point = env.entry_points(group="console_scripts")["greet"]
        assert (point.value, env.pid) == ("greeter:main", None)
        main = point.load()
        assert env.pid is not None and "greeter" not in sys.modules
        assert main.__module__ == "greeter" and main() is None  # ran (and printed) in the worker
    finally:
        env.unload()
