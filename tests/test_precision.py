"""The byte patch renames what names a module and keeps what is data (issue 11, findings 1 and 5).

A hermetic compiled package whose C code holds, besides the module names it imports, strings that are
spelled like module names but are data: a method and a class attribute named like the package, a
``"pkg.sub.Type"`` registry key the Python half looks up, docstrings naming the package, and machine
code whose bytes read ``\\0xy\\0`` while another distribution of the env is the top-level name ``xy``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from wheelgen import _PROBE, make_wheel, pure_wheel

SRC = Path(__file__).parent.parent / "src"

PRECISION_C = r"""
#include <Python.h>
#include <string.h>
/* cprec._core: imports its package "cprec" at init and "cprec.helpers" lazily; the rest is data that
   reads like module names. The linker keeps one "cprec\0" for the import and the attribute names. */
static PyObject *package = NULL;

typedef struct { PyObject_HEAD } NodeObject;
static PyObject *node_parent(PyObject *self, void *closure) { return PyUnicode_FromString("parent"); }
static PyObject *node_xy(PyObject *self, PyObject *noargs) { return Py_BuildValue("(ii)", 1, 2); }
static PyGetSetDef node_getset[] = {{"cprec", node_parent, NULL, "The parent cprec of this node.", NULL},
                                    {NULL, NULL, NULL, NULL, NULL}};
static PyMethodDef node_methods[] = {{"xy", node_xy, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static PyTypeObject NodeType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "cprec._core.Node", .tp_basicsize = sizeof(NodeObject), .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A node of a cprec tree; see cprec.sub for more.", .tp_getset = node_getset,
    .tp_methods = node_methods, .tp_new = PyType_GenericNew,
};

static const char *const REGISTRY[] = {"cprec.sub.Type", "cprec.sub.Other", NULL};
static PyObject *kind(PyObject *self, PyObject *arg) {  /* a registry keyed by qualified type names */
    const char *key = PyUnicode_AsUTF8(arg);
    if (key == NULL) return NULL;
    for (int i = 0; REGISTRY[i]; i++) if (strcmp(REGISTRY[i], key) == 0) return PyLong_FromLong(i);
    return PyErr_Format(PyExc_KeyError, "no type %s in the registry", key);
}
static PyObject *cprec_function(PyObject *self, PyObject *noargs) { return PyUnicode_FromString("cprec-function"); }
static PyObject *own(PyObject *self, PyObject *noargs) {  /* the package's attribute cprec, as its C code finds it */
    PyObject *function = PyObject_GetAttrString(package, "cprec");
    if (function == NULL) return NULL;
    PyObject *result = PyObject_CallNoArgs(function);
    Py_DECREF(function);
    return result;
}
__attribute__((noinline)) static unsigned long magic_value(void) { return 0x00797800UL; }  /* code: "\0xy\0" */
static PyObject *magic(PyObject *self, PyObject *noargs) { return PyLong_FromUnsignedLong(magic_value()); }
static PyObject *lazy_version(PyObject *self, PyObject *noargs) {
    PyObject *helpers = PyImport_ImportModule("cprec.helpers");
    if (helpers == NULL) return NULL;
    PyObject *value = PyObject_GetAttrString(helpers, "VERSION");
    Py_DECREF(helpers);
    return value;
}
static PyMethodDef methods[] = {
    {"cprec", cprec_function, METH_NOARGS, "cprec.cprec(): the function named like its package."},
    {"own", own, METH_NOARGS, NULL}, {"kind", kind, METH_O, NULL}, {"magic", magic, METH_NOARGS, NULL},
    {"lazy_version", lazy_version, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "cprec._core",
                                    "Fast parts of cprec. See cprec.sub and cprec.helpers.", -1, methods};
PyMODINIT_FUNC PyInit__core(void) {
    package = PyImport_ImportModule("cprec");
    if (package == NULL || PyType_Ready(&NodeType) < 0) return NULL;
    PyObject *created = PyModule_Create(&module);
    if (created == NULL) return NULL;
    Py_INCREF(&NodeType);
    PyModule_AddObject(created, "Node", (PyObject *)&NodeType);
    return created;
}
"""


def precision_files(python: str, version: str) -> tuple[dict[str, bytes | str], str]:
    facts = json.loads(subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, check=True).stdout)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "core.c"
        source.write_text(PRECISION_C)
        shared = Path(tmp) / f"_core{facts['suffix']}"
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", f"-I{facts['include']}", str(source), "-o", str(shared)],
                       check=True, capture_output=True)
        core = shared.read_bytes()
    files: dict[str, bytes | str] = {
        "cprec/__init__.py": (f"VERSION = {version!r}\n"
                              "from . import _core\n"
                              "from ._core import own, kind, magic, lazy_version, Node\n"
                              "cprec = getattr(_core, 'cprec', None)  # the function named like its package\n"
                              "try:\n"
                              "    KIND = kind('cprec.sub.Type')  # the Python half's key into the C registry\n"
                              "except KeyError as e:\n"
                              "    KIND = repr(e)\n"
                              "class Local:\n    pass\n"
                              "# the Python half compares names the compiled half and Python give its types\n"
                              "AGREE = [Node.__module__ == 'cprec._core', Local.__module__ == 'cprec',\n"
                              "         'cprec._core' != type(Node()).__module__]\n"),
        "cprec/sub.py": "class Type:\n    pass\n",
        "cprec/helpers.py": f"VERSION = 'helpers-{version}'\n",
        f"cprec/_core{facts['suffix']}": core,
    }
    return files, f"{facts['tag']}-{facts['tag']}-{facts['platform']}"


def test_data_spelled_like_module_names_keeps_its_bytes_side_by_side(tmp_path):
    wh = tmp_path / "wheels"
    for version in ("1.0", "2.0"):
        files, tag = precision_files(sys.executable, version)
        make_wheel(wh, "cprec", version, files, tag=tag)
    pure_wheel(wh, "xy", "1.0")  # a two-letter top-level name in another distribution of the env
    host = tmp_path / "host"  # the host's own cprec, imported before the envs load theirs
    files, _ = precision_files(sys.executable, "host")
    for path, data in files.items():
        (host / path).parent.mkdir(parents=True, exist_ok=True)
        (host / path).write_bytes(data if isinstance(data, bytes) else data.encode())
    project = tmp_path / "project"
    project.mkdir()
    (project / "polyvenv.toml").write_text(textwrap.dedent(f"""
        wheelhouse = "{wh}"
        offline = true
        [envs.v1]
        requirements = ["cprec==1.0", "xy"]
        [envs.v2]
        requirements = ["cprec==2.0", "xy"]
    """))
    subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=project, check=True, capture_output=True,
                   env={**__import__("os").environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache")})
    code = textwrap.dedent(f"""
        import json, sys
        sys.path[:0] = [{str(SRC)!r}, {str(host)!r}]
        import cprec as host_cprec, polyvenv
        ws = polyvenv.Workspace.load({str(project)!r})

        def copies():  # the relocated copies of extensions mapped into the process
            return {{line.split()[-1] for line in open("/proc/self/maps").read().splitlines()
                     if "/relocated/" in line and "/_core" in line}}

        out = {{}}
        for name in ("v1", "v2"):
            before = copies()
            cprec = ws.env(name).import_module("cprec")
            node = cprec.Node()
            [path] = copies() - before
            copy = open(path, "rb").read()
            def attempt(get):  # each finding on its own: what the user sees, or the error they get
                try:
                    return get()
                except Exception as e:
                    return type(e).__name__ + ": " + str(e)
            out[name] = {{
                "own": [cprec.VERSION, cprec.lazy_version(), cprec.__file__.startswith({str(project)!r})],
                "function": [attempt(lambda: cprec.cprec()), attempt(cprec.own)],
                "attribute": [attempt(lambda: node.cprec), attempt(lambda: node.xy())],
                "names": [type(node).__module__ == cprec.__name__ + "._core",
                          cprec._core.__name__ == cprec.__name__ + "._core"],
                "registry": [cprec.KIND, attempt(lambda: cprec.kind("cprec.sub.Other"))],
                "docs": [cprec._core.__doc__, cprec.Node.__doc__, attempt(lambda: cprec.Node.cprec.__doc__),
                         attempt(lambda: cprec.cprec.__doc__)],
                "magic": cprec.magic(),
                "agree": cprec.AGREE,
                "copy": [len(copy) > 0, b"\\0cprec.sub.Type\\0" in copy, b"Fast parts of cprec. See cprec.sub" in copy,
                         cprec.__name__.encode() + b"._core\\0" in copy],
            }}
        out["host"] = [host_cprec.VERSION, host_cprec.lazy_version(), host_cprec.own(), host_cprec.KIND,
                       host_cprec.AGREE,
                       sys.modules["cprec"] is host_cprec, sys.modules["cprec.helpers"].VERSION,
                       type(host_cprec.Node()).__module__]
        print(json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    docs = ["Fast parts of cprec. See cprec.sub and cprec.helpers.", "A node of a cprec tree; see cprec.sub for more.",
            "The parent cprec of this node.", "cprec.cprec(): the function named like its package."]
    for name, version in (("v1", "1.0"), ("v2", "2.0")):
        assert out[name] == {
            "own": [version, f"helpers-{version}", True],
            "function": ["cprec-function", "cprec-function"],   # a function named like its package
            "attribute": ["parent", [1, 2]],                    # a class attribute named like it; xy's name
            "names": [True, True],                              # the type's and module's names: the env's alias
            "registry": [0, 1],                                 # "cprec.sub.Type" keys as the Python half has them
            "docs": docs,
            "magic": 0x00797800,                                # machine code reading "\0xy\0" untouched
            "agree": [True, True, False],                       # `X.__module__ == "cprec._core"` as in the host
            "copy": [True, True, True, True],
        }, name
    assert out["host"] == ["host", "helpers-host", "cprec-function", 0, [True, True, False], True, "helpers-host",
                           "cprec._core"]


def test_short_names_and_other_distributions_names_are_never_guessed(tmp_path):
    """The selection itself, on a file compiled here: what it renames, splits and keeps, and why."""
    sys.path.insert(0, str(SRC))
    from polyvenv.runtime.native.modulenames import Selection

    files, _ = precision_files(sys.executable, "1.0")
    [core] = [data for path, data in files.items() if "_core" in path]
    assert isinstance(core, bytes)
    modules = {"cprec", "cprec.sub", "cprec.helpers", "cprec._core", "xy"}
    names = {"cprec": "cPrec", "xy": "Xy"}
    found = {(c.text, c.verdict) for c in Selection(core, names, modules.__contains__, {"cprec"}).candidates()}
    assert ("cprec", "split") in found           # the import's copy renamed, the method and getset keep "cprec"
    assert ("cprec.helpers", "rename") in found and ("cprec._core", "rename") in found
    assert ("cprec._core.Node", "rename") in found  # tp_name
    assert ("cprec.sub.Type", "keep") in found and ("cprec.sub.Other", "keep") in found
    assert not any(text == "xy" and verdict != "keep" for text, verdict in found)


def test_rust_constants_rename_only_related_names_of_four_characters_or_more(tmp_path):
    """Rust packs its constants without terminators, so its rule matches inside any bytes: it is kept to
    the names the extension's distribution is related to, and never to a short one."""
    sys.path.insert(0, str(SRC))
    from polyvenv.runtime.native.binpatch import patch

    data = (b"\x7fELF-not-really /rustc/1.80/library/core/src/str.rs"
            b"rpkg._coreimport rpkgxy-coordsxy.z numpy\x00 other\x00")
    names = {"rpkg": "rPkg", "xy": "Xy", "numpy": "nUmpy"}
    patched = patch(data, names, str(tmp_path / "b"), lambda dotted: dotted == "rpkg._core", allowed={"rpkg"}).data
    assert len(patched) == len(data)
    assert b"rPkg._coreimport rPkg" in patched         # the package's own name, where Rust's rule finds it
    assert b"xy-coordsxy.z" in patched                 # a two-letter name of another distribution: never
    assert b" numpy\x00" in patched                    # unrelated to rpkg, and no import proves it a module name


RUN_TIME_C = r"""
#include <Python.h>
/* crun.%(module)s: module names made when the code runs, so that no string in the file spells them
   (psycopg2 hands a table of names to PyErr_NewException in a loop): out of any byte patch's reach. */
static void made(char *out, const char *tail) {  /* "crun" + tail, from a string no patch reads as it */
    static const char reversed[] = "nurc";
    for (int i = 0; i < 4; i++) out[i] = reversed[3 - i];
    strcpy(out + 4, tail);
}
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "crun.%(module)s", NULL, -1, NULL};
PyMODINIT_FUNC PyInit_%(module)s(void) {
    char name[64];
    PyObject *created = PyModule_Create(&module);
    if (created == NULL) return NULL;
    if (%(mode)d == 2) {  /* _fixed: an immutable type named "crun.Fixed" at run time (no __module__ to set) */
        static PyType_Slot slots[] = {{0, NULL}};
        static PyType_Spec spec = {NULL, sizeof(PyObject), 0, Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE, slots};
        made(name, ".Fixed");
        spec.name = name;
        PyObject *fixed = PyType_FromSpec(&spec);
        if (fixed == NULL || PyModule_AddObject(created, "Fixed", fixed) < 0) return NULL;
    } else if (%(mode)d == 1) {  /* _bind: takes crun.sub's class Thing by a name made here, as a missed cimport would */
        made(name, ".sub");
        PyObject *sub = PyImport_ImportModule(name);
        if (sub == NULL) return NULL;
        PyObject *thing = PyObject_GetAttrString(sub, "Thing");
        Py_DECREF(sub);
        if (thing == NULL || PyModule_AddObject(created, "Thing", thing) < 0) return NULL;
    } else {  /* _core: an exception class named "crun.Error" at run time */
        made(name, ".Error");
        PyObject *error = PyErr_NewException(name, NULL, NULL);
        if (error == NULL || PyModule_AddObject(created, "Error", error) < 0) return NULL;
    }
    return created;
}
"""


def run_time_files(version: str) -> tuple[dict[str, bytes | str], str]:
    facts = json.loads(subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                                      check=True).stdout)
    files: dict[str, bytes | str] = {
        "crun/__init__.py": f"VERSION = {version!r}\nfrom ._core import Error\nfrom . import sub\n",
        "crun/sub.py": "class Thing:\n    pass\n",
    }
    with tempfile.TemporaryDirectory() as tmp:
        for mode, name in enumerate(("_core", "_bind", "_fixed")):
            source = Path(tmp) / f"{name}.c"
            source.write_text("#include <string.h>\n" + RUN_TIME_C % {"module": name, "mode": mode})
            shared = Path(tmp) / f"{name}{facts['suffix']}"
            subprocess.run(["gcc", "-shared", "-fPIC", "-O2", f"-I{facts['include']}", str(source), "-o",
                            str(shared)], check=True, capture_output=True)
            files[f"crun/{name}{facts['suffix']}"] = shared.read_bytes()
    return files, f"{facts['tag']}-{facts['tag']}-{facts['platform']}"


def test_names_made_at_run_time_get_the_alias_or_the_host_binding_is_refused(tmp_path):
    """A class whose module name C code put together at run time gets the env's alias once the extension
    is initialised (it pickles as the env's); an extension that binds the host's class by such a name, or
    makes an immutable type under it, is refused with the way out, never left holding the host's object."""
    wh, host = tmp_path / "wheels", tmp_path / "host"
    files, tag = run_time_files("1.0")
    assert not any(s in data for s in (b"crun.Error", b"crun.sub", b"crun.Fixed")
               for data in files.values() if isinstance(data, bytes))
    make_wheel(wh, "crun", "1.0", files, tag=tag)
    for path, data in run_time_files("host")[0].items():
        (host / path).parent.mkdir(parents=True, exist_ok=True)
        (host / path).write_bytes(data if isinstance(data, bytes) else data.encode())
    project = tmp_path / "project"
    project.mkdir()
    (project / "polyvenv.toml").write_text(f'wheelhouse = "{wh}"\noffline = true\n[envs.e]\n'
                                           'requirements = ["crun==1.0"]\n')
    subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=project, check=True, capture_output=True,
                   env={**__import__("os").environ, "UV_CACHE_DIR": str(tmp_path / "uv-cache")})
    code = textwrap.dedent(f"""
        import json, pickle, sys
        sys.path[:0] = [{str(SRC)!r}, {str(host)!r}]
        import crun as host_crun, polyvenv
        before = {{k: v for k, v in sys.modules.items() if k.partition(".")[0] == "crun"}}
        env = polyvenv.Workspace.load({str(project)!r}).env("e")
        crun = env.import_module("crun")
        error = pickle.loads(pickle.dumps(crun.Error("e")))
        try:
            env.import_module("crun._bind")
            bound = "loaded: " + repr(sys.modules[crun.__name__ + "._bind"].Thing)
        except polyvenv.PolyvenvError as e:
            bound = [type(e).__name__, 'isolation = "process"' in str(e), "crun.sub.Thing" in str(e)]
        try:
            env.import_module("crun._fixed")
            fixed = "loaded: " + sys.modules[crun.__name__ + "._fixed"].Fixed.__module__
        except polyvenv.PolyvenvError as e:
            fixed = [type(e).__name__, 'isolation = "process"' in str(e), "'crun.Fixed'" in str(e)]
        after = {{k: v for k, v in sys.modules.items() if k.partition(".")[0] == "crun"}}
        print(json.dumps([crun.VERSION, crun.Error.__module__ == crun.__name__, type(error) is crun.Error,
                          crun.Error is not host_crun.Error, bound, fixed, host_crun.Error.__module__,
                          after == before]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    refused = ["ExtensionNotSupported", True, True]
    assert json.loads(proc.stdout) == ["1.0", True, True, True, refused, refused, "crun", True]
