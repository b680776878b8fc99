"""Issue 13, step 5: a distribution envs agree on is loaded once per process, and shared by them.

Every test builds real envs with the real CLI (a generated wheelhouse: ``shape`` 1.0 and 2.0, a
class and module state; ``maker`` and ``taker`` import it) and loads them into a real host process.
Each asserts what a plugin host sees: the same module objects in the envs that share, an instance made
by one that is an instance for the other, and a private copy (its own ``__file__``, another class)
where the envs disagree or ``private`` says so; never a module of a real name in the host's
``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wheelgen import make_wheel

SRC = Path(__file__).resolve().parents[1] / "src"

SHAPE = textwrap.dedent("""
    import json                                   # the standard library: the host's, in every sharer
    class Point:
        def __init__(self, x):
            self.x = x
    SETTINGS = {{"precision": 8}}                  # module-level state: one for every sharer
    VERSION = {version!r}
""")


@pytest.fixture
def project(tmp_path) -> Path:
    """Envs ``a`` (shape 1.0, maker), ``b`` (shape 1.0, taker), ``old`` (shape 2.0, taker) and ``kept``
    (shape 1.0, taker, ``private = ["shape"]``), each with a source directory of its own, synced."""
    wh = tmp_path / "wh"
    for version in ("1.0", "2.0"):
        make_wheel(wh, "shape", version, {"shape/__init__.py": SHAPE.format(version=version),
                                          "shape/extra.py": "from . import Point\n"})
    make_wheel(wh, "maker", "1.0", {"maker.py": "import shape\ndef make(x):\n    return shape.Point(x)\n"},
               requires=["shape"])
    make_wheel(wh, "taker", "1.0", {"taker.py": textwrap.dedent("""
        import shape
        def take(point):
            return isinstance(point, shape.Point), point.x
    """)}, requires=["shape"])
    root = tmp_path / "project"
    for env in ("a", "b", "old", "kept"):
        (root / env).mkdir(parents=True)
        (root / env / f"plugin_{env}.py").write_text("import shape\nMARK = 1\n")
    (root / "polyvenv.toml").write_text(textwrap.dedent(f"""
        wheelhouse = "{wh}"
        offline = true
        [envs.a]
        requirements = ["shape==1.0", "maker"]
        source = "a"
        [envs.b]
        requirements = ["shape==1.0", "taker"]
        source = "b"
        [envs.old]
        requirements = ["shape==2.0", "taker"]
        source = "old"
        [envs.kept]
        requirements = ["shape==1.0", "taker"]
        source = "kept"
        private = ["shape"]
    """))
    proc = subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return root


def host(project: Path, body: str) -> dict:
    """Run ``body`` in a fresh host process with the workspace loaded as ``ws``; its ``result``."""
    code = (f"import sys, json, gc, weakref\nsys.path.insert(0, {str(SRC)!r})\nimport polyvenv\n"
            f"ws = polyvenv.Workspace.load({str(project)!r})\n" + textwrap.dedent(body)
            + "\nprint(json.dumps(result))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_envs_agreeing_on_a_distribution_share_it_and_the_others_keep_copies_of_their_own(project):
    """a and b share shape 1.0 (they differ in maker/taker and in their sources); old (shape 2.0) and kept
    (``private = ["shape"]``) each load their own."""
    result = host(project, """
        a, b, old, kept = ws.env("a"), ws.env("b"), ws.env("old"), ws.env("kept")
        shape_a, shape_b = a.import_module("shape"), b.import_module("shape")
        point = a.import_module("maker").make(3)
        shape_a.SETTINGS["precision"] = 3             # one module state for all who share it
        shapes = {name: ws.env(name).import_module("shape") for name in ("old", "kept")}
        result = {
            "same": shape_a is shape_b and a.import_module("shape.extra") is b.import_module("shape.extra"),
            "taken": list(b.import_module("taker").take(point)),
            "state": b.import_module("shape").SETTINGS["precision"],
            "file": shape_b.__file__.startswith(str(a.build)),   # from the build of the env that loaded it first
            "loaded": "shape" in b.loaded and "shape.extra" in b.loaded,
            "old": [shapes["old"].VERSION, shapes["old"] is shape_a, old.import_module("taker").take(point)[0],
                    shapes["old"].__file__.startswith(str(old.build))],
            "kept": [shapes["kept"].VERSION, shapes["kept"] is shape_a, kept.import_module("taker").take(point)[0],
                     shapes["kept"].__file__.startswith(str(kept.build)), shapes["kept"].SETTINGS["precision"]],
            "host": [k for k in sys.modules if k.partition(".")[0] in ("shape", "maker", "taker")],
        }
    """)
    assert result == {"same": True, "taken": [True, 3], "state": 3, "file": True, "loaded": True,
                      "old": ["2.0", False, False, True], "kept": ["1.0", False, False, True, 8], "host": []}


def test_unloading_one_sharer_keeps_the_unit_and_the_last_frees_it(project):
    result = host(project, """
        a, b = ws.env("a"), ws.env("b")
        shape = a.import_module("shape")
        point = a.import_module("maker").make(7)
        taker = b.import_module("taker")
        maker = a.import_module("maker").__name__
        aliases = {shape.__name__, type(point).__module__.partition(".")[0], taker.__name__, maker}
        a.unload()
        after_one = [b.import_module("shape") is shape, list(taker.take(point)), shape.__name__ in sys.modules,
                     maker in sys.modules]  # a's alone: freed with a
        again = a.import_module("shape") is shape      # loaded again: the unit still loaded by b
        a.unload()
        gone = weakref.ref(shape)
        del shape, point, taker
        b.unload()
        gc.collect()
        result = {"after_one": after_one, "again": again, "collected": gone() is None,
                  "left": [k for k in sys.modules if k.partition(".")[0] in aliases or k.partition(".")[0].lower() in
                           ("shape", "maker", "taker")]}
    """)
    assert result == {"after_one": [True, [True, 7], True, False], "again": True, "collected": True, "left": []}


def test_reloading_one_sharer_after_an_edit_of_its_source_keeps_the_shared_objects(project):
    result = host(project, """
        import os
        a, b = ws.env("a"), ws.env("b")
        shape = a.import_module("shape")
        plugin = a.import_module("plugin_a")
        b.import_module("plugin_b")
        path = os.path.join(ws.root, "a", "plugin_a.py")
        with open(path, "a") as f:
            f.write("MARK = 2  # edited\\n")
        reloaded = a.reload()
        result = {
            "reloaded": reloaded,
            "mark": a.import_module("plugin_a").MARK,
            "same_for_a": a.import_module("shape") is shape and a.import_module("plugin_a").shape is shape,
            "same_for_b": b.import_module("shape") is shape and b.import_module("plugin_b").shape is shape,
        }
    """)
    assert result == {"reloaded": ["plugin_a"], "mark": 2, "same_for_a": True, "same_for_b": True}


def test_a_resync_to_another_version_gives_the_reloaded_env_a_new_unit(project):
    result = host(project, """
        import subprocess
        a, b = ws.env("a"), ws.env("b")
        shape, maker = a.import_module("shape"), a.import_module("maker")
        b.import_module("taker")
        path = ws.root / "polyvenv.toml"
        path.write_text(path.read_text().replace('requirements = ["shape==1.0", "maker"]',
                                                 'requirements = ["shape==2.0", "maker"]'))
        subprocess.run([sys.executable, "-m", "polyvenv", "-q", "sync", "a"], cwd=ws.root, check=True)
        reloaded = a.reload()
        result = {
            "reloaded": sorted(reloaded),
            "a": [a.import_module("shape").VERSION, a.import_module("maker").shape is a.import_module("shape"),
                  a.import_module("maker") is maker, maker.shape is shape],
            "b": [b.import_module("shape") is shape, b.import_module("shape").VERSION,
                  b.import_module("taker").shape is shape],
        }
    """)
    assert result["a"] == ["2.0", True, False, True]  # a new unit; the old maker (a callback kept) as it was
    assert result["b"] == [True, "1.0", True]  # b's unit untouched
    assert result["reloaded"] == ["maker", "shape"]


def test_why_says_what_is_loaded_once(project):
    proc = subprocess.run([sys.executable, "-m", "polyvenv", "why", "shape", "--json"], cwd=project,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (shape,) = json.loads(proc.stdout)["distributions"]
    assert shape["loaded_once"] == [["a", "b"]] and shape["private"] == ["kept"]
    line = subprocess.run([sys.executable, "-m", "polyvenv", "why", "shape"], cwd=project, capture_output=True,
                          text=True).stdout.splitlines()[0]
    assert "a, b agree on it (loaded once)" in line


@pytest.mark.integration
def test_plugins_sharing_numpy_hand_each_other_arrays_and_numpy_2_gets_its_own(tmp_path):
    """Real numpy from PyPI: plugins A and B (their own sources, and B another small distribution) pin
    numpy 1.26.4 and share it (numpy's ``add_newdoc`` imports a name it is given, which in a unit is the
    calling env's, so they need not agree on anything else); C has numpy 2.2.6, its own."""
    wh = tmp_path / "wh"
    make_wheel(wh, "extra", "1.0", {"extra.py": "X = 1\n"})
    root = tmp_path / "project"
    sources = {"a": "import numpy\ndef make():\n    return numpy.arange(6).reshape(2, 3)\n",
               "b": "import numpy, extra\ndef consume(x):\n    return [type(x) is numpy.ndarray, int(x.sum()), "
                    "numpy.add(x, 1).tolist(), numpy.core.multiarray.__doc__ is not None]\n",
               "c": "import numpy\n"}
    for env, text in sources.items():
        (root / env).mkdir(parents=True)
        (root / env / f"plug_{env}.py").write_text(text)
    (root / "polyvenv.toml").write_text(textwrap.dedent(f"""
        wheelhouse = "{wh}"
        [envs.a]
        requirements = ["numpy==1.26.4"]
        source = "a"
        [envs.b]
        requirements = ["numpy==1.26.4", "extra"]
        source = "b"
        [envs.c]
        requirements = ["numpy==2.2.6"]
        source = "c"
    """))
    proc = subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = host(root, """
        A, B, C = (ws.env(n).import_module(f"plug_{n}") for n in "abc")
        array = A.make()
        result = {"consumed": B.consume(array), "same": A.numpy is B.numpy and type(array) is B.numpy.ndarray,
                  "versions": [A.numpy.__version__, C.numpy.__version__], "c_own": C.numpy is not A.numpy,
                  "host": [k for k in sys.modules if k.partition(".")[0] == "numpy"]}
    """)
    assert result == {"consumed": [True, 15, [[1, 2, 3], [4, 5, 6]], True], "same": True,
                      "versions": ["1.26.4", "2.2.6"], "c_own": True, "host": []}


def test_a_name_a_shared_distribution_is_given_is_its_callers(tmp_path):
    """numpy's ``add_newdoc("scipy.sparse...")`` in small: ``doclib.add_doc(place, ...)`` imports the module
    its caller names. Shared, it imports the caller's: the module of a unit that calls it (``lib``, shared
    too), or the calling env's own (its source); never a second copy of either."""
    wh = tmp_path / "wh"
    make_wheel(wh, "doclib", "1.0", {"doclib.py": textwrap.dedent("""
        def add_doc(place, name, doc):
            setattr(getattr(__import__(place, globals(), {}, [name]), name), "__doc__", doc)
    """)})
    make_wheel(wh, "lib", "1.0", {"lib/__init__.py": "from . import core\nimport doclib\n"
                                                     "doclib.add_doc('lib.core', 'f', 'documented')\n",
                                  "lib/core.py": "def f():\n    pass\n"})
    make_wheel(wh, "extra", "1.0", {"extra.py": "X = 1\n"})
    root = tmp_path / "project"
    for env in ("a", "b"):
        (root / env).mkdir(parents=True)
        (root / env / f"plugin_{env}.py").write_text(
            "import doclib, lib\ndef g():\n    pass\ndoclib.add_doc(__name__, 'g', 'mine')\n")
    (root / "polyvenv.toml").write_text(textwrap.dedent(f"""
        wheelhouse = "{wh}"
        offline = true
        [envs.a]
        requirements = ["doclib", "lib"]
        source = "a"
        [envs.b]
        requirements = ["doclib", "lib", "extra"]
        source = "b"
    """))
    proc = subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = host(root, """
        a, b = ws.env("a"), ws.env("b")
        lib = a.import_module("lib")
        plugins = [ws.env(n).import_module(f"plugin_{n}") for n in "ab"]
        result = {"shared": lib is b.import_module("lib") and a.import_module("doclib") is b.import_module("doclib"),
                  "lib": lib.core.f.__doc__, "plugins": [p.g.__doc__ for p in plugins],
                  "copies": sorted(k for k in sys.modules if k.partition(".")[2].partition(".")[0] in ("lib", "plugin_a")
                                   or k.partition(".")[0] in ("lib", "doclib"))}
    """)
    assert result == {"shared": True, "lib": "documented", "plugins": ["mine", "mine"], "copies": []}
