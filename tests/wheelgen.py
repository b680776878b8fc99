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
    if scripts:
        body = "[console_scripts]\n" + "".join(f"{k} = {v}\n" for k, v in scripts.items())
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
