"""Small real wheels made by the tests: pure Python, and with a C extension compiled here.

Wheels are written by hand (a zip with METADATA, WHEEL, RECORD) so the fast
tests need no build backend and no index; the C extension is compiled with
the target interpreter's own headers and tagged for it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import tempfile
import zipfile
from pathlib import Path


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    files: dict[str, bytes | str],
    *,
    requires: list[str] = (),
    scripts: dict[str, str] | None = None,
    entry_points: dict[str, dict[str, str]] | None = None,
    tag: str = "py3-none-any",
) -> Path:
    """Write ``{name}-{version}-{tag}.whl`` holding ``files`` (paths relative to site-packages)."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    contents: dict[str, bytes] = {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}
    metadata = [f"Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {r}" for r in requires]
    contents[f"{info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    pure = "true" if tag.endswith("none-any") else "false"
    contents[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: polyvenv-tests\nRoot-Is-Purelib: {pure}\nTag: {tag}\n"
    ).encode()
    groups = dict(entry_points or {})
    if scripts:
        groups["console_scripts"] = scripts
    if groups:
        body = "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) for group, eps in groups.items())
        contents[f"{info}/entry_points.txt"] = body.encode()
    record = []
    for path, data in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    contents[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    directory.mkdir(parents=True, exist_ok=True)
    wheel = directory / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in contents.items():
            zf.writestr(path, data)
    return wheel


def pure_wheel(directory: Path, name: str, version: str, *, requires: list[str] = (),
               modules: int = 1, scripts: dict[str, str] | None = None) -> Path:
    """A package ``name`` whose ``__version__`` is ``version``, with ``modules`` extra submodules."""
    pkg = name.replace("-", "_")
    files: dict[str, bytes | str] = {
        f"{pkg}/__init__.py": f"__version__ = {version!r}\n\ndef main():\n    print('{name}', __version__)\n",
    }
    for i in range(1, modules):
        files[f"{pkg}/mod{i}.py"] = f"VALUE = {i}\n" + "# padding\n" * 20
    return make_wheel(directory, name, version, files, requires=requires, scripts=scripts)


_C_SOURCE = r"""
#include <Python.h>
static PyObject *version(PyObject *self, PyObject *args) { return PyUnicode_FromString("%(version)s"); }
static PyObject *add(PyObject *self, PyObject *args) {
    long a, b; if (!PyArg_ParseTuple(args, "ll", &a, &b)) return NULL; return PyLong_FromLong(a + b);
}
static PyMethodDef methods[] = {
    {"version", version, METH_NOARGS, NULL}, {"add", add, METH_VARARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};
PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
"""

_PROBE = (
    "import json, sys, sysconfig; print(json.dumps({'include': sysconfig.get_paths()['include'], "
    "'suffix': sysconfig.get_config_var('EXT_SUFFIX'), 'tag': 'cp%d%d' % sys.version_info[:2], "
    "'platform': sysconfig.get_platform().replace('-', '_').replace('.', '_')}))"
)


def c_extension_wheel(directory: Path, python: str, name: str = "cspeed", version: str = "1.0") -> Path:
    """A package with a C extension ``{name}._speedups`` compiled here for ``python``."""
    facts = json.loads(subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, check=True).stdout)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "speedups.c"
        source.write_text(_C_SOURCE % {"version": version})
        shared = Path(tmp) / f"_speedups{facts['suffix']}"
        subprocess.run(
            ["gcc", "-shared", "-fPIC", "-O1", f"-I{facts['include']}", str(source), "-o", str(shared)],
            check=True, capture_output=True,
        )
        files = {
            f"{name}/__init__.py": "from ._speedups import add, version\n__version__ = version()\n",
            f"{name}/_speedups{facts['suffix']}": shared.read_bytes(),
        }
    tag = f"{facts['tag']}-{facts['tag']}-{facts['platform']}"
    return make_wheel(directory, name, version, files, tag=tag)


def demo_package_files(version: str, name: str = "demo") -> dict[str, str]:
    """A package exercising every import form an env's code may use; values depend on ``version``."""
    return {
        f"{name}/__init__.py": f'''
import sys
__version__ = {version!r}
from . import sub
from .sub import helper
import {name}.deep.leaf
from {name}.star import *
from {name} import circ_a
import {name}.tmp
del sys.modules["{name}.tmp"]          # jinja2 2.10's pattern (seed 000)
SELF_IS_ME = sys.modules[__name__] is sys.modules["{name}"]
''',
        f"{name}/sub.py": f"VALUE = 'sub-{version}'\ndef helper():\n    return 'helper-{version}'\n",
        f"{name}/deep/__init__.py": "",
        f"{name}/deep/leaf.py": f"LEAF = 'leaf-{version}'\n",
        f"{name}/star.py": f"__all__ = ['STARRED']\nSTARRED = 'star-{version}'\n",
        f"{name}/circ_a.py": f"from {name} import circ_b\nA = 'a-{version}'\ndef b():\n    return circ_b.B\n",
        f"{name}/circ_b.py": f"from . import circ_a\nB = 'b-{version}'\n",
        f"{name}/tmp.py": "",
        f"{name}/dyn.py": f"DYN = 'dyn-{version}'\n",
        f"{name}/late_mod.py": f"LATE = 'late-{version}'\n",
        f"{name}/threaded.py": f"THREADED = 'thread-{version}'\n",
        f"{name}/data.txt": f"data-{version}",
        f"{name}/api.py": f'''
import dataclasses, importlib, importlib.util, inspect, logging, pickle, pkgutil, sys, threading, typing
from importlib import resources
from importlib.metadata import version as dist_version
import importlib.metadata

@dataclasses.dataclass
class Point:
    x: int
    y: "typing.Optional[Point]" = None

def late():
    import {name}.late_mod
    return {name}.late_mod.LATE

def dynamic():
    return importlib.import_module(".".join(["{name}", "dyn"])).DYN

def dunder_import():
    return __import__("{name}" + ".dyn", fromlist=["DYN"]).DYN

def spec_origin():
    return importlib.util.find_spec("{name}.dyn").origin

def resource():
    return resources.files("{name}").joinpath("data.txt").read_text()

def submodules():
    import {name}
    return sorted(m.name for m in pkgutil.iter_modules({name}.__path__))

def pickled():
    p = Point(1)
    return pickle.loads(pickle.dumps(p)) == p and type(pickle.loads(pickle.dumps(p))) is Point

def hints():
    return typing.get_type_hints(Point)["x"] is int and inspect.getmodule(Point).__name__ == Point.__module__

def logger_name():
    return logging.getLogger(__name__).name

def threaded():
    out = []
    def work():
        import {name}.threaded
        out.append({name}.threaded.THREADED)
    t = threading.Thread(target=work)
    t.start(); t.join()
    return out[0]

def executed():
    namespace = {{}}
    exec("import {name}.sub as s\\nRESULT = s.VALUE", namespace)
    return namespace["RESULT"]

def evaluated():
    return eval("__import__('{name}.sub').sub.VALUE")

def metadata_version():
    return dist_version("{name}"), importlib.metadata.version("{name}")

def entry_point_names():
    return sorted(ep.name for ep in importlib.metadata.entry_points().select(group="demo.plugins")) \\
        if hasattr(importlib.metadata.entry_points(), "select") else \\
        sorted(ep.name for ep in importlib.metadata.entry_points().get("demo.plugins", []))

def host_only():
    try:
        import hostonly
    except ImportError as e:
        return type(e).__name__ + ": " + str(e)
    return "imported " + hostonly.__file__

def sys_modules_view():
    return "{name}.sub" in sys.modules, "hostonly" in sys.modules, sys.modules.get("{name}") is sys.modules[__name__.split(".")[0]]

def reloaded():
    import {name}.dyn
    return importlib.reload({name}.dyn).DYN
''',
        "nsdemo/part.py": f"PART = 'part-{version}'\n",
    }


def demo_wheel(directory: Path, version: str, name: str = "demo") -> Path:
    return make_wheel(directory, name, version, demo_package_files(version, name),
                      entry_points={"demo.plugins": {f"plugin{version.replace('.', '')}": f"{name}.sub:helper"}})


_SELF_IMPORTING_C = r"""
#include <Python.h>
/* Imports its own package by name at init and its helpers lazily at run time, like markupsafe's
   speedups and numpy's lazy imports: the C code knows only the real name, "%(name)s". */
static PyObject *box_class = NULL;
static PyObject *init_version = NULL;

static PyObject *make_box(PyObject *self, PyObject *args) { return PyObject_CallObject(box_class, args); }
static PyObject *version_at_init(PyObject *self, PyObject *noargs) { Py_INCREF(init_version); return init_version; }
static PyObject *lazy_version(PyObject *self, PyObject *noargs) {
    PyObject *helpers = PyImport_ImportModule("%(name)s.helpers");
    if (helpers == NULL) return NULL;
    PyObject *value = PyObject_GetAttrString(helpers, "VERSION");
    Py_DECREF(helpers);
    return value;
}
static PyMethodDef methods[] = {
    {"make_box", make_box, METH_VARARGS, NULL}, {"version_at_init", version_at_init, METH_NOARGS, NULL},
    {"lazy_version", lazy_version, METH_NOARGS, NULL},
#ifdef MERGED_NAME  /* a name ending with the package's: the linker keeps one "to_%(name)s\0" for both */
    {"to_%(name)s", version_at_init, METH_NOARGS, NULL},
#endif
    {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "%(name)s._core", NULL, -1, methods};
PyMODINIT_FUNC PyInit__core(void) {
#ifdef HIDDEN_NAME  /* the name assembled at run time, as compressed or unterminated strings hide it */
    PyObject *hidden = PyUnicode_FromFormat("%%s%%s", "%(head)s", "%(tail)s");
    PyObject *package = PyImport_Import(hidden);
    Py_DECREF(hidden);
#else
    PyObject *package = PyImport_ImportModule("%(name)s");
#endif
    if (package == NULL) return NULL;
    box_class = PyObject_GetAttrString(package, "Box");
    init_version = PyObject_GetAttrString(package, "VERSION");
    if (box_class == NULL || init_version == NULL) return NULL;
    PyObject *created = PyModule_Create(&module);
    if (created != NULL) PyModule_AddObject(created, "package", package);  /* like Cython's `import x` */
    return created;
}
"""


def self_importing_c_files(python: str, version: str, name: str = "cself", hidden: bool = False,
                           merged: bool = False) -> tuple[dict[str, bytes | str], str]:
    """A package whose C extension imports the package by its real name, compiled here for ``python``
    (``hidden``: a name no byte patch can find, assembled at run time; ``merged``: the name the C code
    imports is the tail of a longer string, as the linker leaves it in pandas)."""
    facts = json.loads(subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, check=True).stdout)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "core.c"
        source.write_text(_SELF_IMPORTING_C % {"name": name, "head": name[:2], "tail": name[2:]})
        shared = Path(tmp) / f"_core{facts['suffix']}"
        subprocess.run(["gcc", "-shared", "-fPIC", "-O1", *(["-DHIDDEN_NAME"] if hidden else []),
                        *(["-DMERGED_NAME"] if merged else []),
                        f"-I{facts['include']}", str(source), "-o", str(shared)], check=True, capture_output=True)
        core = shared.read_bytes()
    return {
        f"{name}/__init__.py": (f"VERSION = {version!r}\n"
                                "class Box:\n    def __init__(self, value):\n        self.value = value\n"
                                "from ._core import make_box, version_at_init, lazy_version\n"),
        f"{name}/helpers.py": f"VERSION = 'helpers-{version}'\n",
        f"{name}/_core{facts['suffix']}": core,
    }, f"{facts['tag']}-{facts['tag']}-{facts['platform']}"


def self_importing_c_wheel(directory: Path, python: str, version: str, name: str = "cself",
                           hidden: bool = False, merged: bool = False) -> Path:
    files, tag = self_importing_c_files(python, version, name, hidden, merged)
    return make_wheel(directory, name, version, files, tag=tag)


_CYTHON_PYX = '''
# A Cython module that imports its own package by name at init and lazily at run time.
import %(name)s
from %(name)s import helpers

VERSION_AT_INIT = %(name)s.VERSION


def lazy_version():
    import %(name)s.helpers
    return %(name)s.helpers.VERSION


def make_box(value):
    return %(name)s.Box(value)


class Thing:
    """A docstring long enough that the module's strings are worth compressing, as numpy's are."""

    def describe(self, a, b, c):
        return f"{a} {b} {c} {type(self).__module__} {self.__class__.__qualname__}"
'''


_CYTHON_PYX_MORE = '''

def lazy_deep():
    """Imports a name from the package's own helpers at call time, by its dotted name."""
    from %(name)s.helpers import VERSION as v
    return v


class Describer:
    """Describes things: a longer docstring, so that the module's string table is big enough for
    Cython 3.3 to pack it (its LZSS saves 200 bytes at least). The %(name)s package is named here in
    prose, not as a module; the text repeats itself: describing, describing, describing, describing."""

    def first_method_with_a_long_name(self, argument_number_one, argument_number_two):
        return argument_number_one + argument_number_two

    def second_method_with_a_long_name(self, argument_number_one, argument_number_two):
        return argument_number_one - argument_number_two

    def third_method_with_a_long_name(self, argument_number_one, argument_number_two):
        return argument_number_one * argument_number_two
'''


def cython_wheel(directory: Path, python: str, cython: str, version: str, name: str = "cypkg",
                 more: bool = False) -> Path:
    """A package whose Cython module imports the package by its real name, cythonized with the
    ``cython`` command given and compiled here for ``python`` (``more``: with more strings, enough for
    Cython 3.3 to pack them, and a second lazy import)."""
    facts = json.loads(subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, check=True).stdout)
    key = (python, cython, name, more)
    if key not in _COMPILED:  # the module does not depend on the version: compiled once per session
        with tempfile.TemporaryDirectory() as tmp:
            pyx = Path(tmp) / name / "_core.pyx"
            pyx.parent.mkdir()
            pyx.write_text((_CYTHON_PYX + (_CYTHON_PYX_MORE if more else "")) % {"name": name})
            (pyx.parent / "__init__.py").touch()  # so Cython names the module "{name}._core"
            subprocess.run([cython, "-3", str(pyx), "-o", str(pyx.with_suffix(".c"))], check=True,
                           capture_output=True)
            shared = pyx.with_name(f"_core{facts['suffix']}")
            subprocess.run(["gcc", "-shared", "-fPIC", "-O2", f"-I{facts['include']}", str(pyx.with_suffix(".c")),
                            "-o", str(shared)], check=True, capture_output=True)
            _COMPILED[key] = shared.read_bytes()
    exported = "make_box, lazy_version, VERSION_AT_INIT" + (", lazy_deep" if more else "")
    files: dict[str, bytes | str] = {
        f"{name}/__init__.py": (f"VERSION = {version!r}\n"
                                "class Box:\n    def __init__(self, value):\n        self.value = value\n"
                                f"from ._core import {exported}\n"),
        f"{name}/helpers.py": f"VERSION = 'helpers-{version}'\n",
        f"{name}/_core{facts['suffix']}": _COMPILED[key],
    }
    return make_wheel(directory, name, version, files, tag=f"{facts['tag']}-{facts['tag']}-{facts['platform']}")


_COMPILED: dict[tuple[str, str, str, bool], bytes] = {}


_BACKEND = '''"""A PEP 517 backend in the sdist itself: builds offline, needs nothing installed."""
import base64, hashlib, os, zipfile

NAME, VERSION = {name!r}, {version!r}


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    info = f"{{NAME}}-{{VERSION}}.dist-info"
    files = {{f"{{NAME}}/__init__.py": open(os.path.join(NAME, "__init__.py"), "rb").read(),
             f"{{info}}/METADATA": f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n".encode(),
             f"{{info}}/WHEEL": b"Wheel-Version: 1.0\\nGenerator: polyvenv-tests\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}}
    record = [f"{{path}},sha256={{base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()}},{{len(data)}}"
              for path, data in files.items()] + [f"{{info}}/RECORD,,"]
    files[f"{{info}}/RECORD"] = ("\\n".join(record) + "\\n").encode()
    wheel = f"{{NAME}}-{{VERSION}}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as zf:  # zip times: each build differs
        for path, data in files.items():
            zf.writestr(path, data)
    return wheel
'''


def sdist(directory: Path, name: str, version: str) -> Path:
    """``{name}-{version}.tar.gz``: a source distribution only (no wheel), whose in-tree backend
    builds it offline, as a package published only as an sdist is built by `pip wheel`."""
    import io
    import tarfile

    root = f"{name}-{version}"
    files = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        "backend.py": _BACKEND.format(name=name, version=version),
        f"{name}/__init__.py": f"__version__ = {version!r}\n",
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{root}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for relative, text in files.items():
            data = text.encode()
            member = tarfile.TarInfo(f"{root}/{relative}")
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return path
