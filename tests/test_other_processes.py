"""Env objects in other processes: ``spawn`` and ``forkserver`` children of env code (3.14's default on
Linux) get the env modules they are sent, under the names those have in the parent; pickles env code
writes load the env's classes wherever they are read. Never the host's module of that name, nor another
env's.

Every check runs a real host script (a file, as ``spawn`` re-imports it in each child) in a fresh
interpreter, with real envs built by the CLI, real pools and processes, and asserts what the host sees.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wheelgen import c_extension_wheel, pure_wheel

SRC = Path(__file__).parent.parent / "src"

PLUG = """
import multiprocessing, os, sys
import multiprocessing.pool
from concurrent.futures import ProcessPoolExecutor
import alpha, cspeed

def where(x=0):
    return [x * x, alpha.__version__, cspeed.add(2, 3), __name__, alpha.__name__, multiprocessing.parent_process() is not None]

class Worker(multiprocessing.Process):
    def __init__(self, queue):
        super().__init__()
        self.queue = queue

    def run(self):
        self.queue.put(where(3))

def run(method, other, host_names):
    ctx = multiprocessing.get_context(method)
    out = {}
    with ProcessPoolExecutor(2, mp_context=ctx) as pool:
        out["executor"] = list(pool.map(where, [1, 2]))
        out["other env"] = pool.submit(other).result()
        out["child"] = pool.submit(host_names).result()  # the host's function: sys.modules as the host sees it
    with ctx.Pool(1) as pool:
        out["pool"] = pool.map(where, [4])
    with multiprocessing.pool.Pool(1, context=ctx) as pool:
        out["pool class"] = pool.map(where, [5])
    queue = ctx.Queue()
    worker = Worker(queue) if method == multiprocessing.get_start_method() else ctx.Process(target=where)
    if isinstance(worker, Worker):
        worker.start()
        out["process"] = queue.get(timeout=60)
        worker.join()
    with ProcessPoolExecutor(1) as pool:  # the host's default start method
        out["default"] = pool.submit(where, 6).result()
    return out

"""

QPLUG = """
import os, sys
import alpha

def version():
    return [alpha.__version__, alpha.__name__, __name__]
"""

HOST = """
import json, multiprocessing, sys
sys.path.insert(0, {src!r})
import polyvenv

def real_names():  # modules under the env's real names, in this process (env code would see its own there)
    return sorted(k for k in sys.modules if k.partition(".")[0] in ("alpha", "cspeed", "plug", "qplug"))

def main():
    multiprocessing.set_start_method(sys.argv[1])
    ws = polyvenv.Workspace.load({root!r})
    plug, qplug = ws.env("p").import_module("plug"), ws.env("q").import_module("qplug")
    result = plug.run(sys.argv[1], qplug.version, real_names)
    result["names"] = [plug.__name__, plug.alpha.__name__, qplug.__name__, qplug.alpha.__name__]
    result["host"] = real_names()
    print(json.dumps(result))

if __name__ == "__main__":
    main()
"""


def _project(root: Path, python: str) -> Path:
    """Envs p (alpha 1.0, the C extension cspeed, source plug.py) and q (alpha 2.0, source qplug.py)."""
    wheels = root / "wheels"
    pure_wheel(wheels, "alpha", "1.0")
    pure_wheel(wheels, "alpha", "2.0")
    c_extension_wheel(wheels, python)
    for env, module, text in (("p", "plug", PLUG), ("q", "qplug", QPLUG)):
        (root / env).mkdir(parents=True)
        (root / env / f"{module}.py").write_text(text)
    (root / "polyvenv.toml").write_text(textwrap.dedent(f"""
        wheelhouse = "{wheels}"
        offline = true
        [envs.p]
        requirements = ["alpha==1.0", "cspeed"]
        source = "p"
        python = "{python}"
        [envs.q]
        requirements = ["alpha==2.0"]
        source = "q"
        python = "{python}"
    """))
    done = subprocess.run([sys.executable, "-m", "polyvenv", "sync", "-q"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return root


def _host(root: Path, python: str, method: str, host: str = HOST, *args: str) -> subprocess.CompletedProcess:
    script = root / "host.py"
    script.write_text(textwrap.dedent(host.format(src=str(SRC), root=str(root))))
    return subprocess.run([python, str(script), method, *args], capture_output=True, text=True, timeout=300,
                          cwd=root)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_pools_and_processes_of_env_code_run_its_own_modules_in_spawned_children(tmp_path, any_python, method):
    root = _project(tmp_path / "project", any_python)
    done = _host(root, any_python, method)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    plug, alpha, qplug, q_alpha = result["names"]
    assert plug != "plug" and alpha != "alpha" and q_alpha not in ("alpha", alpha)  # aliases, two of alpha
    for key, squares in (("executor", [1, 4]), ("pool", [16]), ("pool class", [25])):
        assert [r[0] for r in result[key]] == squares
        for square, version, added, module, alpha_name, in_child in result[key]:
            assert (version, added, module, alpha_name, in_child) == ("1.0", 5, plug, alpha, True)
    assert result["process"] == [9, "1.0", 5, plug, alpha, True]  # a Process subclass defined in the env
    assert result["default"] == [36, "1.0", 5, plug, alpha, True]  # ProcessPoolExecutor() of the default
    assert result["other env"] == ["2.0", q_alpha, qplug]  # another env's function: that env's alpha
    assert result["child"] == result["host"] == []  # no module under a real name, in the child nor the host


IN_CHILDREN_FIRST = HOST.replace("def main():", """if __name__ == "__mp_main__":  # a spawned child: its main module
    # gives the name env p's plug has in the parent (its preferred alias) to a module of its own, and loads q
    import types
    from polyvenv.runtime.names import preferred
    sys.modules[preferred("plug", "p")] = types.ModuleType("mine")
    early = polyvenv.Workspace.load({root!r}).env("q").import_module("qplug")

def main():""")


def test_a_child_whose_main_module_gave_the_parents_names_to_other_modules_refuses_clearly(tmp_path):
    root = _project(tmp_path / "project", sys.executable)
    done = _host(root, sys.executable, "spawn", IN_CHILDREN_FIRST)
    assert done.returncode != 0
    assert "BrokenProcessPool" in done.stderr  # the parent's pool: its child died before any task
    refusal = re.search(r"polyvenv\.errors\.NotResolvable: env 'p': this child process cannot load it under the "
                        r"name its module '(\w+)' has in the parent \('(\w+)'\): its main module already gave that "
                        r"name to other modules here", done.stderr)
    assert refusal, done.stderr[-3000:]
    assert refusal[1] == "plug" and refusal[2] != "plug"  # an alias, which the child's main module took first
    assert "isolation = \"process\"" in done.stderr and "'fork'" in done.stderr


def test_a_child_whose_main_module_loads_the_same_envs_the_same_way_uses_them(tmp_path):
    root = _project(tmp_path / "project", sys.executable)
    host = HOST.replace("def main():", 'ws = polyvenv.Workspace.load({root!r})\nearly = ws.env("p").import_module("plug")'
                                       "\n\ndef main():")
    done = _host(root, sys.executable, "forkserver", host)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert [r[1:5] for r in result["executor"]] == [["1.0", 5, *result["names"][:2]]] * 2
    assert result["other env"][0] == "2.0"


@pytest.mark.integration
@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_tqdm_process_map_and_numpy_arrays_in_an_envs_spawned_workers(tmp_path, method):
    """A real package starting the pool (tqdm's ``process_map``, from the env's code) and a compiled one
    whose objects travel to the workers and back (numpy arrays): the env's numpy 1.26 in every child."""
    root = tmp_path / "project"
    (root / "plugin").mkdir(parents=True)
    (root / "plugin" / "crunch.py").write_text(textwrap.dedent("""
        import numpy
        from tqdm.contrib.concurrent import process_map

        def total(a):
            return [float(numpy.asarray(a).sum()), numpy.__version__, type(a).__module__, numpy.__name__]

        def run():
            return process_map(total, [numpy.arange(4.0), numpy.ones(3)], max_workers=2, disable=True)
    """))
    (root / "polyvenv.toml").write_text('[envs.c]\nrequirements = ["numpy==1.26.4", "tqdm"]\nsource = "plugin"\n')
    subprocess.run([sys.executable, "-m", "polyvenv", "sync", "-q"], cwd=root, check=True, capture_output=True)
    host = """
        import json, multiprocessing, sys
        sys.path.insert(0, {src!r})
        import polyvenv

        if __name__ == "__main__":
            multiprocessing.set_start_method(sys.argv[1])
            crunch = polyvenv.Workspace.load({root!r}).env("c").import_module("crunch")
            print(json.dumps([crunch.run(), crunch.numpy.__name__, "numpy" in sys.modules, "tqdm" in sys.modules]))
    """
    done = _host(root, sys.executable, method, host)
    assert done.returncode == 0, done.stderr[-3000:]
    results, numpy_alias, host_numpy, host_tqdm = json.loads(done.stdout.splitlines()[-1])
    assert results == [[6.0, "1.26.4", numpy_alias, numpy_alias], [3.0, "1.26.4", numpy_alias, numpy_alias]]
    assert numpy_alias != "numpy" and not host_tqdm


@pytest.mark.integration
def test_joblib_files_of_numpy_arrays_load_as_the_envs_in_another_process_whatever_its_aliases(tmp_path):
    """joblib pickles through its own Pickler subclass (the env's pickle): the file names numpy, not this
    process's alias of it, so a process where an env with numpy 2 has that alias (two envs preferring
    one alias: the one loaded first gets it) still loads numpy 1.26 arrays for the env that wrote them,
    and so does the env's own venv."""
    root = tmp_path / "project"
    (root / "plugin").mkdir(parents=True)
    (root / "plugin" / "store.py").write_text(textwrap.dedent("""
        import joblib, numpy

        def save(path):
            joblib.dump({"a": numpy.arange(3.0), "kind": numpy.float32}, path)

        def load(path):
            found = joblib.load(path)
            return [found["a"].tolist(), type(found["a"]) is numpy.ndarray, found["kind"] is numpy.float32,
                    numpy.__version__]
    """))
    (root / "polyvenv.toml").write_text(textwrap.dedent("""
        [envs.s]
        requirements = ["numpy==1.26.4", "joblib"]
        source = "plugin"
        [envs.n2]
        requirements = ["numpy>=2.2,<2.3"]
    """))
    subprocess.run([sys.executable, "-m", "polyvenv", "sync", "-q"], cwd=root, check=True, capture_output=True)
    saved = root / "arrays.joblib"
    host = """
        import json, sys
        sys.path.insert(0, {src!r})
        import polyvenv

        ws = polyvenv.Workspace.load({root!r})
        if sys.argv[1] == "save":
            ws.env("s").import_module("store").save({path!r})
            print(json.dumps(ws.env("s").import_module("numpy").__name__))
        else:  # n2's numpy gets the alias s's had there: the others it could prefer are taken while it loads
            import itertools, types
            from polyvenv.runtime.names import _variants
            taken = [v for v in itertools.islice(_variants("numpy"), 64) if v != sys.argv[2]]
            sys.modules.update((v, types.ModuleType(v)) for v in taken)
            first = ws.env("n2").import_module("numpy")
            for v in taken:
                del sys.modules[v]
            print(json.dumps([first.__name__, first.__version__, ws.env("s").import_module("store").load({path!r})]))
    """.replace("{path!r}", repr(str(saved)))
    done = _host(root, sys.executable, "save", host)
    assert done.returncode == 0, done.stderr[-3000:]
    alias = json.loads(done.stdout.splitlines()[-1])
    data = saved.read_bytes()  # a module name: a short string that is the name, or it and "." or ":"
    named = [re.search(rb"\x8c[\x00-\xff]" + re.escape(name.encode()) + rb"[.:\x94]", data) for name in ("numpy", alias)]
    assert named[0] and not named[1]  # the file names numpy, not this process's alias of it
    done = _host(root, sys.executable, "load", host, alias)
    assert done.returncode == 0, done.stderr[-3000:]
    other_alias, other_version, loaded = json.loads(done.stdout.splitlines()[-1])
    assert other_alias == alias and other_version.startswith("2.2.")  # numpy 2 has that alias there now
    assert loaded == [[0.0, 1.0, 2.0], True, True, "1.26.4"]  # and the env's arrays are its numpy 1.26's
    venv = root / ".polyvenv" / "s" / "bin" / "python"
    own = subprocess.run([str(venv), "-c", f"import joblib; print(joblib.load({str(saved)!r})['a'].sum())"],
                         capture_output=True, text=True)
    assert own.stdout.split() == ["3.0"], own.stderr  # the env's own venv reads it too
