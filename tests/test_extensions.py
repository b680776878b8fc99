"""Compiled extension modules side by side: C code that imports its own package by its real name
(at init and lazily at run time) gets its own env's modules, on every CPython found."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from wheelgen import cython_wheel, self_importing_c_files, self_importing_c_wheel

SRC = Path(__file__).parent.parent / "src"


def test_c_code_importing_by_name_binds_its_own_env(tmp_path, any_python):
    wh = tmp_path / "wheels"
    self_importing_c_wheel(wh, any_python, "1.0")
    self_importing_c_wheel(wh, any_python, "2.0", merged=True)  # "cself" is the tail of "to_cself" there
    host = tmp_path / "host"  # the host has its own cself, already imported when the envs load
    files, _ = self_importing_c_files(any_python, "host")
    for path, data in files.items():
        (host / path).parent.mkdir(parents=True, exist_ok=True)
        (host / path).write_bytes(data if isinstance(data, bytes) else data.encode())
    project = tmp_path / "project"
    project.mkdir()
    (project / "polyvenv.toml").write_text(textwrap.dedent(f"""
        wheelhouse = "{wh}"
        offline = true
        [envs.v1]
        requirements = ["cself==1.0"]
        python = "{any_python}"
        [envs.v2]
        requirements = ["cself==2.0"]
        python = "{any_python}"
    """))
    subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=project, check=True, capture_output=True)
    code = textwrap.dedent(f"""
        import json, sys, threading
        sys.path[:0] = [{str(SRC)!r}, {str(host)!r}]
        import cself as host_cself, polyvenv
        ws = polyvenv.Workspace.load({str(project)!r})
        def loaded_from_copy(name):  # the patched copy is what is mapped; __file__ names the env's file
            maps = open("/proc/self/maps").read()
            return any("/relocated/" in line and "cself/_core" in line for line in maps.splitlines())
        out = {{}}
        for name in ("v1", "v2"):
            cself = ws.env(name).import_module("cself")
            box = cself.make_box(7)
            out[name] = [cself.version_at_init(), cself.lazy_version(), type(box) is cself.Box,
                         type(box).__module__ == cself.__name__, cself._core.__name__ == cself.__name__ + "._core",
                         "/relocated/" not in cself._core.__file__ and loaded_from_copy(name)]
        results = []
        def hammer(name, version):
            cself = ws.env(name).import_module("cself")
            results.append(all(cself.lazy_version() == "helpers-" + version for _ in range(200)))
        threads = [threading.Thread(target=hammer, args=a) for a in (("v1", "1.0"), ("v2", "2.0")) * 4]
        [t.start() for t in threads]; [t.join() for t in threads]
        out["threads"] = all(results)
        out["host"] = [host_cself.version_at_init(), host_cself.lazy_version(), type(host_cself.make_box(1)) is host_cself.Box]
        out["merged_name_kept"] = ws.env("v2").import_module("cself._core").to_cself()  # the longer string intact
        print(json.dumps(out))
    """)
    proc = subprocess.run([any_python, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["v1"] == ["1.0", "helpers-1.0", True, True, True, True]
    assert out["v2"] == ["2.0", "helpers-2.0", True, True, True, True]
    assert out["threads"] is True
    assert out["host"] == ["host", "helpers-host", True]
    assert out["merged_name_kept"] == "2.0"
    [merged] = (project / ".polyvenv").glob("v2/lib/python*/site-packages/cself/_core*")
    assert b"\0to_cself\0" in merged.read_bytes() and b"\0cself\0" not in merged.read_bytes()  # really merged
    for original in (project / ".polyvenv").glob("v*/lib/python*/site-packages/cself/_core*"):
        assert b"cself._core\0" in original.read_bytes(), "the env's own file must never be modified"


def test_c_code_whose_names_cannot_be_patched_is_refused_not_bound_to_the_hosts(tmp_path):
    """A name assembled at run time (as Cython 3.1's compressed string tables hide names) would
    import the host's module of that name: loading fails loudly instead, and the host is left as it was."""
    wh = tmp_path / "wheels"
    self_importing_c_wheel(wh, sys.executable, "1.0", hidden=True)
    host = tmp_path / "host"
    files, _ = self_importing_c_files(sys.executable, "host")
    for path, data in files.items():
        (host / path).parent.mkdir(parents=True, exist_ok=True)
        (host / path).write_bytes(data if isinstance(data, bytes) else data.encode())
    project = tmp_path / "project"
    project.mkdir()
    (project / "polyvenv.toml").write_text(f'wheelhouse = "{wh}"\noffline = true\n[envs.h]\nrequirements = ["cself"]\n')
    subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=project, check=True, capture_output=True)
    code = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(SRC)!r}, {str(host)!r}]
        import polyvenv
        env = polyvenv.Workspace.load({str(project)!r}).env("h")
        try:
            env.import_module("cself")
            print("loaded")
        except polyvenv.ExtensionNotSupported as e:
            print("refused", "'cself'" in str(e), "cself" in sys.modules)
        import cself as host_cself  # now the host has its own: the C code would silently bind it
        try:
            env.import_module("cself")
            print("loaded")
        except polyvenv.ExtensionNotSupported as e:
            print("refused", "'cself'" in str(e), sys.modules["cself"] is host_cself)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["refused True False", "refused True True"]


def cython_blob_file(strings: list[bytes], table: bool = True) -> bytes:
    """The layout Cython 3.2 gives a module's strings: one zlib stream, then the lengths table."""
    import struct
    import zlib

    stream = zlib.compress(b"".join(strings), 9)
    lengths = struct.pack(f"<{len(strings)}I", *map(len, strings)) if table else b"\xff" * 64
    return (b"\x7fELF\x00ss\x00zlib\x00Failed to import '%.20s.decompress' - cannot initialise module strings\x00"
            + stream + b"\x00" * (-len(stream) % 4 + 8) + lengths + b"\x00" * 16)


def test_cython_compressed_strings_are_patched_string_by_string(tmp_path):
    sys.path.insert(0, str(SRC))
    from polyvenv.runtime.native.binpatch import STRINGS_MODULE, patch, strings_module

    docs = bytes(range(32, 127)) * 4  # the rest of a module's strings, which pack poorly
    # (a module's own names first, as in every Cython table: fewer than 8 numbers are no table of Cython's)
    strings = [b"__main__", b"__name__", b"np", b"numpy", b"numpy.random._x", b"numpyish_attr", b"see numpy/x.pyx",
               b"pop", docs]
    data = cython_blob_file(strings)
    patched = patch(data, {"numpy": "nUmpy"}, blob_path=str(tmp_path / "x.so.strings"),
                    is_module=lambda dotted: dotted in ("numpy.random", "numpy.random._x"))
    assert len(patched.data) == len(data)  # nothing moves
    assert b"\x00zlib\x00" not in patched.data and f"\x00{STRINGS_MODULE}\x00".encode() in patched.data
    for path, blob in patched.blobs.items():
        Path(path).write_bytes(blob)
    start = patched.data.index(b"\x78\xda")
    unpacked = strings_module().decompress(memoryview(patched.data)[start:])  # what the extension gets
    assert unpacked == b"__main____name__npnUmpynUmpy.random._xnumpyish_attrsee numpy/x.pyxpop" + docs
    assert strings_module().compress is __import__("zlib").compress  # everything else is zlib's

    # Without a lengths table the boundaries are unknown: nothing is touched (the load guard refuses).
    untouched = cython_blob_file(strings, table=False)
    assert patch(untouched, {"numpy": "nUmpy"}, blob_path=str(tmp_path / "y")) == (untouched, {})


SIGNAL_SETTING_C = r"""
#include <Python.h>
#include <signal.h>
static void on_usr2(int sig) { (void)sig; }
static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_sig", NULL, -1, NULL};
PyMODINIT_FUNC PyInit__sig(void) {
    PyOS_setsig(SIGUSR2, on_usr2);  /* process-global: one handler per process, whoever set it last */
    return PyModule_Create(&def);
}
"""


def test_an_extension_changing_process_global_state_is_reported_with_the_way_out(tmp_path):
    import sysconfig

    site = tmp_path / "site-packages" / "sigpkg"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("from . import _sig\n")
    (tmp_path / "sig.c").write_text(SIGNAL_SETTING_C)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", f"-I{sysconfig.get_paths()['include']}", str(tmp_path / "sig.c"),
                    "-o", str(site / f"_sig{sysconfig.get_config_var('EXT_SUFFIX')}")], check=True)
    code = textwrap.dedent(f"""
        import json, signal, sys, warnings
        sys.path.insert(0, {str(SRC)!r})
        import polyvenv
        env = polyvenv.Env.from_path({str(site.parent)!r}, name="sig")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            env.import_module("sigpkg")
            plain = env.import_module("json")  # no extension of the env's: nothing to say
        print(json.dumps([[w.category.__name__, str(w.message)] for w in caught]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    [[category, message]] = json.loads(proc.stdout)
    assert category == "ProcessGlobalStateWarning"
    assert "env 'sig'" in message and "the handler of SIGUSR2" in message and 'isolation = "process"' in message


@pytest.fixture(scope="session")
def cython_command(tmp_path_factory) -> str:
    """Cython 3.2 (compressed string tables) from PyPI in a venv of its own, or a skip saying why."""
    from uv import find_uv_bin

    venv = tmp_path_factory.mktemp("cython") / "venv"
    uv = find_uv_bin()
    made = subprocess.run([uv, "venv", "-q", str(venv)], capture_output=True, text=True)
    if made.returncode == 0:
        made = subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "cython==3.2.1"],
                              capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"Cython 3.2.1 could not be installed from PyPI: {made.stderr.strip()[-300:]}")
    return str(venv / "bin" / "cython")


def test_cython_3_2_modules_importing_their_package_bind_their_own_env(tmp_path, cython_command):
    wh = tmp_path / "wheels"
    for version in ("1.0", "2.0"):
        cython_wheel(wh, sys.executable, cython_command, version)
    [core] = [n for n in zipfile.ZipFile(next(wh.glob("cypkg-1.0-*.whl"))).namelist() if "_core" in n]
    assert b"cannot initialise module strings" in zipfile.ZipFile(next(wh.glob("cypkg-1.0-*.whl"))).read(core)
    host = tmp_path / "host" / "cypkg"  # the host has a pure-Python cypkg of its own, imported first
    host.mkdir(parents=True)
    (host / "__init__.py").write_text("VERSION = 'host'\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "polyvenv.toml").write_text(f'wheelhouse = "{wh}"\noffline = true\n[envs.v1]\nrequirements = '
                                           '["cypkg==1.0"]\n[envs.v2]\nrequirements = ["cypkg==2.0"]\n')
    subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=project, check=True, capture_output=True)
    code = textwrap.dedent(f"""
        import json, sys
        sys.path[:0] = [{str(SRC)!r}, {str(host.parent)!r}]
        import cypkg as host_cypkg, polyvenv
        ws = polyvenv.Workspace.load({str(project)!r})
        out = {{}}
        for name in ("v1", "v2"):
            cypkg = ws.env(name).import_module("cypkg")
            out[name] = [cypkg.VERSION_AT_INIT, cypkg.lazy_version(), type(cypkg.make_box(1)) is cypkg.Box,
                         cypkg._core.Thing().describe(1, 2, 3).endswith(cypkg.__name__ + "._core Thing"),
                         cypkg._core.__file__.endswith(".so")]
        out["host"] = host_cypkg.VERSION
        print(json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"v1": ["1.0", "helpers-1.0", True, True, True],
                                       "v2": ["2.0", "helpers-2.0", True, True, True], "host": "host"}
