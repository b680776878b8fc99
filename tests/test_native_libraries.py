"""Native libraries and process-wide registries side by side (issue 11, findings 2, 3 and 7).

A package's own shared libraries (found through ``$ORIGIN``) are the env's own in each env;
the dynamic loader's sharing by name (sonames, ``STB_GNU_UNIQUE`` symbols) is refused before
loading, with the way out; pybind11's and nanobind's type registries are each env's own.
Every side is asserted: the env's code gets its env's objects, the host's keeps its own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src"
SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")
INCLUDE = sysconfig.get_paths()["include"]

needs_compilers = pytest.mark.skipif(not (shutil.which("gcc") and shutil.which("g++")), reason="gcc/g++ not found")


def compile_c(out: Path, source: str, *flags: str, cxx: bool = False) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.parent / (out.name.partition(".")[0] + (".cpp" if cxx else ".c"))
    src.write_text(source)
    subprocess.run(["g++" if cxx else "gcc", "-shared", "-fPIC", "-O1", f"-I{INCLUDE}", str(src), "-o", str(out),
                    *flags], check=True, capture_output=True)
    src.unlink()
    return out


def run_host(code: str, *site: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter with polyvenv and the host's own ``site`` directories on its path."""
    head = f"import json, sys\nsys.path[:0] = {[str(SRC), *map(str, site)]!r}\nimport polyvenv\n"
    return subprocess.run([sys.executable, "-c", head + textwrap.dedent(code)], capture_output=True, text=True,
                          env=env)


# -- finding 3: libraries inside the package tree ----------------------------------------------------------

LIBSTATE_C = r"""
static int counter;
int state_bump(void) { return ++counter; }
const char *state_version(void) { return "%s"; }
"""

STATE_EXT_C = r"""
#include <Python.h>
int state_bump(void);
const char *state_version(void);
static PyObject *bump(PyObject *self, PyObject *args) { return PyLong_FromLong(state_bump()); }
static PyObject *version(PyObject *self, PyObject *args) { return PyUnicode_FromString(state_version()); }
static PyMethodDef methods[] = {{"bump", bump, METH_NOARGS, NULL}, {"lib_version", version, METH_NOARGS, NULL},
                                {NULL, NULL, 0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "shlib.%s", NULL, -1, methods};
PyMODINIT_FUNC PyInit_%s(void) { return PyModule_Create(&def); }
"""


def shlib_site(site: Path, version: str) -> Path:
    """A package ``shlib`` whose two extensions share ``shlib/lib/libstate.so`` (state and a version), found
    through RUNPATH ``$ORIGIN/lib`` as meson-python and scikit-build wheels ship theirs."""
    pkg = site / "shlib"
    lib = compile_c(pkg / "lib" / "libstate.so", LIBSTATE_C % version, "-Wl,-soname,libstate.so")
    for name in ("_ext", "_ext2"):
        compile_c(pkg / f"{name}{SUFFIX}", STATE_EXT_C % (name, name), f"-L{lib.parent}", "-lstate",
                  "-Wl,--enable-new-dtags,-rpath,$ORIGIN/lib")
    (pkg / "__init__.py").write_text(f"from ._ext import bump, lib_version\nfrom . import _ext2\n"
                                     f"__version__ = {version!r}\n")
    return site


@needs_compilers
def test_libraries_the_package_ships_in_its_tree_are_each_envs_own(tmp_path):
    host, v1, v2 = (shlib_site(tmp_path / name / "site-packages", version)
                    for name, version in (("host", "host"), ("v1", "1.0"), ("v2", "2.0")))
    proc = run_host(f"""
        import os
        envs = {{n: polyvenv.Env.from_path(p, name=n) for n, p in (("v1", {str(v1)!r}), ("v2", {str(v2)!r}))}}
        first = envs["v1"].import_module("shlib")  # before the host has its own: the host must still get its own
        import shlib as host
        second = envs["v2"].import_module("shlib")  # after: the loader must not hand it the host's library
        result = {{}}
        for name, mod in (("v1", first), ("v2", second), ("host", host)):
            result[name] = [mod.lib_version(), mod.bump(), mod.bump(), mod._ext2.bump(),  # one library per env
                            mod.__name__ != "shlib" or name == "host", mod.__file__.startswith({str(tmp_path)!r})]
        result["host_modules"] = sorted(k for k in sys.modules if k.split(".")[0] == "shlib")
        maps = {{line.split()[-1] for line in open("/proc/self/maps") if "libstate" in line or "/relocated/" in line
                and "/shlib/lib/" in line}}
        result["libraries"] = sorted(os.path.basename(p) for p in maps)
        print(json.dumps(result))
    """, host)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["v1"] == ["1.0", 1, 2, 3, True, True]
    assert out["v2"] == ["2.0", 1, 2, 3, True, True]
    assert out["host"] == ["host", 1, 2, 3, True, True]
    assert out["host_modules"] == ["shlib", "shlib._ext", "shlib._ext2"]  # the envs' modules are under aliases
    assert len(out["libraries"]) == 3 and "libstate.so" in out["libraries"]  # the host's, and one copy per env
    assert all(len(name) == len("libstate.so") for name in out["libraries"])
    for site in (v1, v2):
        assert b"libstate.so\0" in (site / "shlib" / f"_ext{SUFFIX}").read_bytes(), "env files are never modified"


# -- finding 2: per-thread state under fixed keys (PyThreadState_GetDict) ------------------------------------

THREAD_STATE_C = r"""
#include <Python.h>
int %(p)s_put(PyObject *value) {  /* as lxml keeps its parser context: the thread's dict, a fixed key */
    PyObject *d = PyThreadState_GetDict();
    return d ? PyDict_SetItemString(d, "tsd_key", value) : -1;
}
PyObject *%(p)s_get(void) {
    PyObject *d = PyThreadState_GetDict(), *v = d ? PyDict_GetItemString(d, "tsd_key") : NULL;
    v = v ? v : Py_None;
    Py_INCREF(v);
    return v;
}
"""

THREAD_STATE_EXT_C = r"""
#include <Python.h>
%(body)s
static PyObject *put(PyObject *self, PyObject *value) { return %(p)s_put(value) ? NULL : Py_NewRef(Py_None); }
static PyObject *get(PyObject *self, PyObject *args) { return %(p)s_get(); }
static PyMethodDef methods[] = {{"put", put, METH_O, NULL}, {"get", get, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "tsd.%(name)s", NULL, -1, methods};
PyMODINIT_FUNC PyInit_%(name)s(void) { return PyModule_Create(&def); }
"""


def thread_state_site(site: Path) -> Path:
    """A package ``tsd`` keeping a value in the thread's dict from its extension ``_direct``, and from
    ``tsd/lib/libtsd.so`` for its extension ``_vialib`` (a library of its tree, found through ``$ORIGIN``)."""
    pkg = site / "tsd"
    lib = compile_c(pkg / "lib" / "libtsd.so", THREAD_STATE_C % {"p": "lib"}, "-Wl,-soname,libtsd.so")
    compile_c(pkg / f"_direct{SUFFIX}", THREAD_STATE_EXT_C % {"body": THREAD_STATE_C % {"p": "own"}, "p": "own",
                                                               "name": "_direct"})
    compile_c(pkg / f"_vialib{SUFFIX}", THREAD_STATE_EXT_C % {
        "body": "int lib_put(PyObject *); PyObject *lib_get(void);", "p": "lib", "name": "_vialib"},
        f"-L{lib.parent}", "-ltsd", "-Wl,--enable-new-dtags,-rpath,$ORIGIN/lib")
    (pkg / "__init__.py").write_text("from . import _direct, _vialib\n")
    return site


@needs_compilers
def test_per_thread_state_of_an_extension_and_of_its_library_is_each_copys_own(tmp_path):
    """Each env's copy (the extension, and a library of its tree that it loads) keeps its values in a thread
    dict of its own: the host's own copy, and each env's, read back what they put, in every thread."""
    host, v1, v2 = (thread_state_site(tmp_path / name / "site-packages") for name in ("host", "v1", "v2"))
    proc = run_host(f"""
        import threading
        import tsd as host
        envs = {{n: polyvenv.Env.from_path(p, name=n).import_module("tsd") for n, p in (("v1", {str(v1)!r}),
                                                                                      ("v2", {str(v2)!r}))}}
        copies = {{"host": host, **envs}}

        def run(out):
            for kind in ("_direct", "_vialib"):
                for name, mod in copies.items():
                    getattr(mod, kind).put(name + kind)
                out[kind] = {{name: getattr(mod, kind).get() for name, mod in copies.items()}}

        result = {{"main": {{}}, "thread": {{}}}}
        run(result["main"])
        thread = threading.Thread(target=run, args=(result["thread"],))
        thread.start()
        thread.join()
        result["names"] = [envs["v1"].__name__ != "tsd", sorted(k for k in sys.modules if k.split(".")[0] == "tsd")]
        print(json.dumps(result))
    """, host)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for run in (out["main"], out["thread"]):
        for kind in ("_direct", "_vialib"):
            assert run[kind] == {name: name + kind for name in ("host", "v1", "v2")}, (kind, run)
    assert out["names"] == [True, ["tsd", "tsd._direct", "tsd._vialib"]]


# -- finding 2 (C++ part): the type registries of pybind11 and nanobind ----------------------------------------

PYBIND11_CPP = r"""
#include <pybind11/pybind11.h>
namespace py = pybind11;
struct Box { int value; };
PYBIND11_MODULE(_core, m) {  // registers Box in pybind11's one registry per interpreter
    py::class_<Box>(m, "Box").def_readonly("value", &Box::value);
    m.def("make_box", [](int v) { return Box{v}; });
}
PYBIND11_MODULE(_user, m) {  // another module of the package: takes a Box registered by _core
    m.def("unbox", [](const Box &b) { return b.value; });
}
"""

NANOBIND_CPP = PYBIND11_CPP.replace("pybind11/pybind11.h", "nanobind/nanobind.h").replace(
    "namespace py = pybind11", "namespace py = nanobind").replace("PYBIND11_MODULE", "NB_MODULE").replace(
    "def_readonly", "def_ro")


@pytest.fixture(scope="session")
def binding_binaries(tmp_path_factory) -> dict[str, Path]:
    """One binary per binding library (both modules in it: ``_core.so`` and ``_user.so`` are byte copies of
    it), compiled here with pybind11 and nanobind from PyPI; a skip saying why where that cannot be done."""
    from uv import find_uv_bin

    if not shutil.which("g++"):
        pytest.skip("g++ not found")
    root = tmp_path_factory.mktemp("bindings")
    made = subprocess.run([find_uv_bin(), "pip", "install", "-q", "--target", str(root / "tools"),
                           "pybind11==3.0.1", "nanobind==2.9.2"], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"pybind11/nanobind could not be installed from PyPI: {made.stderr.strip()[-300:]}")
    tools = root / "tools"
    nb = tools / "nanobind"
    flags = ["-O0", "-g0", "-std=c++17", "-fvisibility=hidden"]
    jobs = {
        "pybind11": (PYBIND11_CPP, [f"-I{tools / 'pybind11' / 'include'}"]),
        "nanobind": (NANOBIND_CPP, [f"-I{nb / 'include'}", f"-I{nb / 'ext' / 'robin_map' / 'include'}",
                                    str(nb / "src" / "nb_combined.cpp")]),
    }
    procs = {}
    for name, (source, extra) in jobs.items():
        (root / f"{name}.cpp").write_text(source)
        procs[name] = subprocess.Popen(["g++", "-shared", "-fPIC", *flags, f"-I{INCLUDE}", str(root / f"{name}.cpp"),
                                        *extra, "-o", str(root / f"{name}.so")], stderr=subprocess.PIPE)
    for name, proc in procs.items():
        _, err = proc.communicate()
        assert proc.returncode == 0, err.decode()
    return {name: root / f"{name}.so" for name in jobs}


def binding_site(site: Path, binary: Path, version: str) -> Path:
    pkg = site / "bound"
    pkg.mkdir(parents=True)
    for module in ("_core", "_user"):
        shutil.copyfile(binary, pkg / f"{module}{SUFFIX}")  # byte copies, as two modules of one wheel are
    (pkg / "__init__.py").write_text(f"from ._core import Box, make_box\nfrom ._user import unbox\n"
                                     f"__version__ = {version!r}\n")
    return site


@pytest.mark.parametrize("binding", ["pybind11", "nanobind"])
def test_binding_registries_are_each_envs_own_and_shared_within_an_env(tmp_path, binding_binaries, binding):
    """The same extension in the host and two envs (the commonest case: one version each, kept private):
    without a registry per env pybind11 raises 'type "Box" is already registered!' and nanobind aborts."""
    binary = binding_binaries[binding]
    host, v1, v2 = (binding_site(tmp_path / name / "site-packages", binary, name) for name in ("host", "v1", "v2"))
    proc = run_host(f"""
        first = polyvenv.Env.from_path({str(v1)!r}, name="v1").import_module("bound")
        import bound as host
        second = polyvenv.Env.from_path({str(v2)!r}, name="v2").import_module("bound")
        result = {{}}
        for name, mod in (("v1", first), ("v2", second), ("host", host)):
            box = mod.make_box(7)
            result[name] = [mod.__version__, box.value, mod.unbox(box),  # cast by the other module of its env
                            type(box) is mod.Box, type(box).__module__.split(".")[0] == mod.__name__,
                            mod._core.__file__.startswith({str(tmp_path)!r})]
        refused = []
        for taker, giver in ((host, first), (first, second), (second, host)):
            try:
                taker.unbox(giver.make_box(1))  # another copy's Box is not this copy's type
                refused.append(False)
            except TypeError:
                refused.append(True)
        result["refused"] = refused
        result["host_modules"] = sorted(k for k in sys.modules if k.split(".")[0] == "bound")
        print(json.dumps(result))
    """, host)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    for name in ("v1", "v2", "host"):
        assert out[name] == [name, 7, 7, True, True, True]
    assert out["refused"] == [True, True, True]
    assert out["host_modules"] == ["bound", "bound._core", "bound._user"]


SWIG_INTERFACE = r"""
%module box
%{
typedef struct Box { int value; } Box;
static Box *make_box(int v) { Box *b = (Box *)malloc(sizeof(Box)); b->value = v; return b; }
static int unbox(Box *b) { return b->value; }
%}
typedef struct Box { int value; } Box;
Box *make_box(int v);
int unbox(Box *b);
"""


@pytest.fixture(scope="session")
def swig_wrapper(tmp_path_factory) -> Path:
    """A SWIG 4 wrapper (``box_wrap.c`` and its proxy ``box.py``) made here by SWIG from PyPI, or a skip."""
    import os

    from uv import find_uv_bin

    root = tmp_path_factory.mktemp("swig")
    made = subprocess.run([find_uv_bin(), "pip", "install", "-q", "--target", str(root / "tools"), "swig==4.5.1"],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"SWIG could not be installed from PyPI: {made.stderr.strip()[-300:]}")
    (root / "box.i").write_text(SWIG_INTERFACE)
    swig = str(root / "tools" / "bin" / "swig")
    subprocess.run([swig, "-python", "-o", str(root / "box_wrap.c"), str(root / "box.i")], check=True,
                   capture_output=True, env={**os.environ, "PYTHONPATH": str(root / "tools")})
    return root


@needs_compilers
def test_swig_type_tables_are_each_envs_own(tmp_path, swig_wrapper):
    """SWIG's one table of wrapped types per process (sys.modules["swig_runtime_data5"]): an env's copy of
    a SWIG module made the host's own module return the env's proxy classes, silently. (SWIG 4.3 knows
    its object type and pointer types by name only: there another copy's pointer of the same C type name
    is still taken.)"""
    sites = {}
    for name in ("host", "env"):
        site = sites[name] = tmp_path / name / "site-packages"
        compile_c(site / "swbox" / f"_box{SUFFIX}", (swig_wrapper / "box_wrap.c").read_text())
        shutil.copyfile(swig_wrapper / "box.py", site / "swbox" / "box.py")
        (site / "swbox" / "__init__.py").write_text("from .box import Box, make_box, unbox\n")
    proc = run_host(f"""
        import swbox as host
        env = polyvenv.Env.from_path({str(sites["env"])!r}, name="env").import_module("swbox")
        result = [type(host.make_box(1)) is host.Box, type(env.make_box(2)) is env.Box,
                  host.unbox(host.make_box(3)), env.unbox(env.make_box(4)), env.__name__ != "swbox"]
        for taker, giver in ((host, env), (env, host)):
            try:
                taker.unbox(giver.make_box(5))
                result.append("taken")
            except TypeError:
                result.append("refused")
        print(json.dumps(result))
    """, sites["host"])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [True, True, 3, 4, True, "refused", "refused"]


# -- finding 7: what the dynamic loader shares by name, refused before loading -------------------------------

UNIQUE_CPP = r"""
#include <Python.h>
inline int &counter() { static int c = %s; return c; }  // exported: STB_GNU_UNIQUE, one per process
inline const int *table() { static const int t[4] = {1, 2, 3, 4}; return t; }  // the same constant bytes
static PyObject *bump(PyObject *, PyObject *) {
    int v = ++counter();
    return PyLong_FromLong(v + table()[v & 3] - (v & 3) - 1);  // t[i] == i + 1: read, and adds nothing
}
static PyMethodDef methods[] = {{"bump", bump, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "uniq.%s", NULL, -1, methods};
PyMODINIT_FUNC PyInit_%s(void) { return PyModule_Create(&def); }
"""


def uniq_site(site: Path, start: int) -> Path:
    for module in ("_core", "_more"):
        compile_c(site / "uniq" / f"{module}{SUFFIX}", UNIQUE_CPP % (start, module, module), cxx=True)
    (site / "uniq" / "__init__.py").write_text("from ._core import bump\nfrom . import _more\n")
    return site


@needs_compilers
def test_an_extension_sharing_a_unique_symbol_with_a_loaded_file_is_refused(tmp_path):
    """Two versions of one C++ extension built without -fvisibility=hidden share their inline statics
    process-wide, whatever loads them how: refused, naming the symbol; alone in a process it loads."""
    host, env = uniq_site(tmp_path / "host", 100), uniq_site(tmp_path / "env" / "site-packages", 0)
    symbols = subprocess.run(["readelf", "--dyn-syms", "-W", str(env / "uniq" / f"_core{SUFFIX}")],
                             capture_output=True, text=True).stdout if shutil.which("readelf") else ""
    assert "UNIQUE DEFAULT" in symbols and "_ZZ5tablevE1t" in symbols
    proc = run_host(f"""
        alone = polyvenv.Env.from_path({str(env)!r}, name="env").import_module("uniq")
        result = {{"alone": [alone.bump(), alone._more.bump()]}}  # the env's two modules share it, as they must
        print(json.dumps(result))
    """)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"alone": [1, 2]}
    proc = run_host(f"""
        import uniq
        before = uniq.bump()
        try:
            polyvenv.Env.from_path({str(env)!r}, name="env").import_module("uniq")
            result = {{"loaded": True}}
        except polyvenv.ExtensionNotSupported as e:
            result = {{"refused": str(e)}}
        result["host"] = [before, uniq.bump(), sorted(k for k in sys.modules if k.split(".")[0] == "uniq")]
        print(json.dumps(result))
    """, host)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert "env 'env'" in out["refused"] and "_ZZ7countervE1c" in out["refused"], out  # not the constant table
    assert "STB_GNU_UNIQUE" in out["refused"] and 'isolation = "process"' in out["refused"]
    assert out["host"] == [101, 102, ["uniq", "uniq._core", "uniq._more"]]
    # the host has its own, not imported yet: imported after the env's, it would run on the env's statics
    proc = run_host(f"""
        try:
            polyvenv.Env.from_path({str(env)!r}, name="env").import_module("uniq")
            result = {{"loaded": True}}
        except polyvenv.ExtensionNotSupported as e:
            result = {{"refused": str(e)}}
        import uniq
        result["host"] = [uniq.bump(), uniq._more.bump(), uniq.__file__.startswith({str(host)!r})]
        print(json.dumps(result))
    """, host)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert "_ZZ7countervE1c" in out["refused"] and str(host / "uniq") in out["refused"], out
    assert 'isolation = "process"' in out["refused"] and out["host"] == [101, 102, True]


OUTER_C = r"""
#include <Python.h>
const char *outer_version(void);
static PyObject *version(PyObject *self, PyObject *args) { return PyUnicode_FromString(outer_version()); }
static PyMethodDef methods[] = {{"version", version, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "outer._ext", NULL, -1, methods};
PyMODINIT_FUNC PyInit__ext(void) { return PyModule_Create(&def); }
"""


def outer_prefix(prefix: Path, version: str) -> Path:
    """A venv-like ``prefix`` whose ``outer/_ext`` needs ``<prefix>/lib/libouter.so`` (outside site-packages,
    through RUNPATH ``$ORIGIN/../../lib``), as packages installing into the venv's lib directory do."""
    lib = compile_c(prefix / "lib" / "libouter.so", f'const char *outer_version(void) {{ return "{version}"; }}\n',
                    "-Wl,-soname,libouter.so")
    site = prefix / "site-packages"
    compile_c(site / "outer" / f"_ext{SUFFIX}", OUTER_C, f"-L{lib.parent}", "-louter",
              "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../../lib")
    (site / "outer" / "__init__.py").write_text("from ._ext import version\n")
    return site


@needs_compilers
def test_an_extension_whose_library_its_copy_cannot_find_is_refused_not_bound_to_the_hosts(tmp_path):
    """The loader reuses a loaded library of the same name without searching: the env's extension would
    silently run on the host's libouter.so."""
    host, env = outer_prefix(tmp_path / "host", "host"), outer_prefix(tmp_path / "env", "env")
    proc = run_host(f"""
        import outer
        try:
            mod = polyvenv.Env.from_path({str(env)!r}, name="env").import_module("outer")
            result = {{"loaded": mod.version()}}
        except polyvenv.ExtensionNotSupported as e:
            result = {{"refused": str(e)}}
        result["host"] = outer.version()
        print(json.dumps(result))
    """, host)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert "refused" in out, out
    assert str(tmp_path / "env" / "lib" / "libouter.so") in out["refused"] and "'libouter.so'" in out["refused"]
    assert 'isolation = "process"' in out["refused"] and out["host"] == "host"


# -- the same on PyPI packages -------------------------------------------------------------------------------

PYPI_CHECKS = """
    def scipy_checks(special, interpolate, np):
        return [round(float(special.gamma(5)), 6), float(interpolate.interp1d([0, 1], [0, 2])(0.5)),
                special.__file__]
    def contour_checks(contourpy, np):
        gen = contourpy.contour_generator(z=np.array([[0.0, 1.0], [1.0, 2.0]]))
        return [len(gen.lines(1.0)), type(gen).__module__.split(".")[0] == contourpy.__name__, contourpy.__file__]
    def manifold_checks(manifold3d):
        cube = manifold3d.Manifold.cube([1, 2, 3])
        return [round(cube.volume(), 3), type(cube).__module__.split(".")[0] == manifold3d.__name__]
"""


@pytest.mark.integration
def test_scipy_contourpy_manifold3d_side_by_side_beside_the_hosts_own(tmp_path):
    """scipy 1.15 ships special/libsf_error_state.so (RUNPATH $ORIGIN) beside the host's own scipy 1.15;
    contourpy (pybind11 3, and 2 in the old env) and manifold3d (nanobind), whose second copy raised
    'already registered' or aborted the process, each beside the host's copy of the same version."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    project = tmp_path / "project"
    project.mkdir()
    newest = ["scipy==1.15.3", "numpy==2.2.6", "contourpy==1.3.3", "manifold3d==3.5.4"]
    envs = {"host": newest, "new": newest, "old": ["numpy==1.26.4", "contourpy==1.2.1"]}  # pybind11 2's registry
    (project / "polyvenv.toml").write_text("".join(
        f"[envs.{name}]\nrequirements = {json.dumps(reqs)}\npython = {json.dumps(python)}\n"
        for name, reqs in envs.items()))
    proc = subprocess.run([sys.executable, "-m", "polyvenv", "sync", "new", "old", "host"], cwd=project,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    [host_site] = (project / ".polyvenv" / "host").glob("lib/python*/site-packages")
    proc = run_host(textwrap.dedent(PYPI_CHECKS) + textwrap.dedent(f"""
        import numpy, scipy.special, scipy.interpolate, contourpy, manifold3d
        ws = polyvenv.Workspace.load({str(project)!r})
        host = lambda: [scipy_checks(scipy.special, scipy.interpolate, numpy),
                        contour_checks(contourpy, numpy), manifold_checks(manifold3d)]
        result = {{"host_before": host()}}
        scipy.special.seterr(singular="raise")
        new, old = ws.env("new"), ws.env("old")
        special, interpolate, np = (new.import_module(m) for m in ("scipy.special", "scipy.interpolate", "numpy"))
        env_manifold = new.import_module("manifold3d")
        result["new"] = [scipy_checks(special, interpolate, np), special.geterr()["singular"],
                         contour_checks(new.import_module("contourpy"), np), manifold_checks(env_manifold)]
        result["old"] = contour_checks(old.import_module("contourpy"), old.import_module("numpy"))
        try:
            manifold3d.Manifold.batch_boolean([env_manifold.Manifold.cube([1, 1, 1])], manifold3d.OpType.Add)
            result["crossed"] = True
        except TypeError:
            result["crossed"] = False
        result["host_after"] = host()
        result["host_seterr"] = scipy.special.geterr()["singular"]
        print(json.dumps(result))
    """), host_site)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["host_before"] == out["host_after"]
    assert out["host_after"][0][:2] == [24.0, 1.0] and out["host_after"][0][2].startswith(str(host_site))
    assert out["host_after"][1][:2] == [1, True] and out["host_after"][2] == [6.0, True]
    checks, singular, contour, manifold = out["new"]
    assert checks[:2] == [24.0, 1.0] and "/.polyvenv/.builds/new-" in checks[2]
    assert singular == "ignore"  # the host's seterr is state of the host's library, not of the env's
    assert contour[:2] == [1, True] and "/.polyvenv/.builds/new-" in contour[2] and manifold == [6.0, True]
    assert out["old"][:2] == [1, True] and "/.polyvenv/.builds/old-" in out["old"][2]
    assert out["crossed"] is False and out["host_seterr"] == "raise"
