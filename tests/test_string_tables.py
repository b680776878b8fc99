"""String layouts of compiled extensions beyond C strings: Cython 3.3's LZSS-packed tables, mypyc's
length-prefixed literals and its `<hash>__mypyc` library, a refused extension's pure-Python-mode
stand-in, cffi's modules named at build time. Each env binds its own modules (their `__file__` in
the env), and the host's own copy keeps working and keeps its `sys.modules` entries."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from wheelgen import cython_wheel

SRC = Path(__file__).parent.parent / "src"
sys.path.insert(0, str(SRC))


def _venv_with(tmp_path_factory, requirement: str) -> Path:
    """A venv of its own holding ``requirement`` from PyPI, or a skip saying why."""
    from uv import find_uv_bin

    venv = tmp_path_factory.mktemp("tool") / "venv"
    uv = find_uv_bin()
    made = subprocess.run([uv, "venv", "-q", str(venv)], capture_output=True, text=True)
    if made.returncode == 0:
        made = subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), requirement],
                              capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"{requirement} could not be installed from PyPI: {made.stderr.strip()[-300:]}")
    return venv


@pytest.fixture(scope="session")
def cython_3_3(tmp_path_factory) -> str:
    """Cython 3.3 (LZSS-packed string tables by default) from PyPI."""
    return str(_venv_with(tmp_path_factory, "cython==3.3.1") / "bin" / "cython")


def _extract(wheel: Path, into: Path) -> Path:
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(into)
    return into


def _sync(project: Path, wheelhouse: Path, envs: dict[str, str]) -> None:
    body = "".join(f'[envs.{name}]\nrequirements = ["{req}"]\n' for name, req in envs.items())
    project.mkdir()
    (project / "polyvenv.toml").write_text(f'wheelhouse = "{wheelhouse}"\noffline = true\n{body}')
    subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=project, check=True, capture_output=True)


@pytest.mark.parametrize("packed", [True, False], ids=["lzss", "uncompressed"])
def test_cython_3_3_modules_bind_their_own_env_beside_the_hosts_copy(tmp_path, cython_3_3, packed):
    """Two versions of a package whose Cython 3.3 module imports the package at init and its helpers
    lazily (at call time) each get their own, beside the host's own compiled copy."""
    from polyvenv.runtime.native.binpatch import lzss_tables

    wh = tmp_path / "wheels"
    for version in ("1.0", "2.0"):
        cython_wheel(wh, sys.executable, cython_3_3, version, more=packed)
    host = _extract(cython_wheel(tmp_path / "hostwheel", sys.executable, cython_3_3, "host", more=packed),
                    tmp_path / "host")
    [core] = (host / "cypkg").glob("_core*.so")
    assert (len(lzss_tables(core.read_bytes())) == 1) is packed  # really packed by LZSS (or really not)
    _sync(tmp_path / "project", wh, {"v1": "cypkg==1.0", "v2": "cypkg==2.0"})
    code = textwrap.dedent(f"""
        import json, sys
        sys.path[:0] = [{str(SRC)!r}, {str(host)!r}]
        import polyvenv
        ws = polyvenv.Workspace.load({str(tmp_path / "project")!r})
        out = {{}}
        def use(name):
            cypkg = ws.env(name).import_module("cypkg")
            return [cypkg.VERSION_AT_INIT, cypkg.lazy_version(), type(cypkg.make_box(1)) is cypkg.Box,
                    cypkg._core.Thing().describe(1, 2, 3).endswith(cypkg.__name__ + "._core Thing"),
                    "/.polyvenv/.builds/" + name + "-" in cypkg._core.__file__,
                    cypkg.lazy_deep() if hasattr(cypkg, "lazy_deep") else "helpers-" + cypkg.VERSION]
        out["v1"] = use("v1")
        out["real_name_unseen"] = sorted(k for k in sys.modules if k.partition(".")[0] == "cypkg")
        import cypkg as host_cypkg  # the host's own compiled copy, imported between the two envs
        out["v2"] = use("v2")
        out["host"] = [host_cypkg.VERSION_AT_INIT, host_cypkg.lazy_version(), sys.modules["cypkg"] is host_cypkg,
                       host_cypkg._core.__file__.startswith({str(host)!r})]
        print(json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "v1": ["1.0", "helpers-1.0", True, True, True, "helpers-1.0"],
        "real_name_unseen": [],
        "v2": ["2.0", "helpers-2.0", True, True, True, "helpers-2.0"],
        "host": ["host", "helpers-host", True, True],
    }


def test_lzss_tables_are_packed_again_to_the_exact_length_or_not_at_all(cython_3_3, tmp_path):
    """The unpacker accepts only the packed length its code holds: a patched table is packed to exactly
    that length (and unpacks to the patched strings), or is left as it was."""
    from polyvenv.runtime.native import lzss
    from polyvenv.runtime.native.binpatch import lzss_tables

    host = _extract(cython_wheel(tmp_path / "w", sys.executable, cython_3_3, "1.0", more=True), tmp_path / "x")
    [core] = (host / "cypkg").glob("_core*.so")
    data = core.read_bytes()
    [table] = lzss_tables(data)
    start, size, tokens, blob = table.start, table.size, table.tokens, table.blob
    total = len(blob)
    assert b"".join(table.strings) == blob and b"cypkg.helpers" in table.strings
    assert lzss.pack(tokens, blob) == data[start:start + size]  # read and written back byte for byte
    patched = blob.replace(b"cypkg.", b"cYpkg.")
    again = lzss.repack(tokens, patched, size)
    assert again is not None and len(again) == size
    assert lzss.unpack(lzss.tokens(again, 0, size, total), again, 0) == patched
    rng = random.Random(11)
    fitted = 0
    for _ in range(40):  # heavier changes: a packing of the exact length, or none
        changed = bytearray(blob)
        for _ in range(rng.randint(1, 12)):
            changed[rng.randrange(len(changed))] = rng.randrange(256)
        again = lzss.repack(tokens, bytes(changed), size)
        if again is not None:
            fitted += 1
            assert len(again) == size and lzss.unpack(lzss.tokens(again, 0, size, total), again, 0) == changed
    assert fitted > 0


@pytest.mark.integration
def test_mypyc_builds_bind_their_own_shared_library_beside_the_hosts(tmp_path):
    """tomli 2.2 and 2.3 are mypyc builds: their modules are shims importing `<hash>__mypyc` (a name
    starting with a digit) from C. Each env gets its own library and modules, even where the host's
    copy has the very same library name (tomli 2.2.1 in the host and in one env)."""
    from uv import find_uv_bin

    host = tmp_path / "host"
    subprocess.run([find_uv_bin(), "pip", "install", "-q", "--python", sys.executable, "--target", str(host),
                    "--only-binary", ":all:", "tomli==2.2.1"], check=True, capture_output=True)
    [library] = host.glob("*__mypyc*.so")  # really a mypyc build
    project = tmp_path / "project"
    project.mkdir()
    # private: the rule (issue 13) would give t22 the host's identical tomli; the env's own copy is the case here
    (project / "polyvenv.toml").write_text('[envs.t22]\nrequirements = ["tomli==2.2.1"]\nprivate = ["tomli"]\n'
                                           '[envs.t23]\nrequirements = ["tomli==2.3.0"]\n')
    proc = subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=project, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    code = textwrap.dedent(f"""
        import json, sys
        sys.path[:0] = [{str(SRC)!r}, {str(host)!r}]
        import tomli as host_tomli, polyvenv
        ws = polyvenv.Workspace.load({str(project)!r})
        out = {{}}
        for name in ("t22", "t23"):
            tomli = ws.env(name).import_module("tomli")
            libraries = [m for k, m in sys.modules.items()  # by file: an alias may change any letter of the name
                         if "__mypyc." in (getattr(m, "__file__", None) or "") and k != {library.name.split(".")[0]!r}]
            in_env = lambda m: "/.polyvenv/.builds/" + name + "-" in m.__file__
            out[name] = [tomli.loads('a = 1\\n[b]\\nc = "x"'), in_env(tomli), in_env(sys.modules[tomli.__name__ + "._parser"]),
                         sum(in_env(m) for m in libraries)]
            try:
                tomli.loads("a = ")
            except tomli.TOMLDecodeError as e:
                out[name].append(type(e).__module__.split(".")[0] == tomli.__name__)
        out["host"] = [host_tomli.loads("x = 2"), sys.modules["tomli"] is host_tomli,
                       sys.modules[{library.name.split(".")[0]!r}].__file__ == {str(library)!r},
                       sys.modules["tomli._parser"].__file__.startswith({str(host)!r})]
        print(json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"t22": [{"a": 1, "b": {"c": "x"}}, True, True, 1, True],
                                       "t23": [{"a": 1, "b": {"c": "x"}}, True, True, 1, True],
                                       "host": [{"x": 2}, True, True, True]}


def test_mypyc_whole_name_literals_are_patched_in_their_chunks():
    """mypyc's literals are length-prefixed, without terminators: a name of one of the env's modules
    (`import pkg`) is found in the chunk that holds it, and nothing that merely looks like one outside
    such a chunk."""
    from polyvenv.runtime.native.binpatch import patch

    chunk = b"\x03\x05tomli\x09tomli._re\x03sys"  # three strings: "tomli", "tomli._re", "sys"
    data = b"\x00__mypyc.init_tomli\x00" + chunk + b"\x00\x05tomli is not a chunk\x00"
    patched = patch(data, {"tomli": "tOmli"}, "/nonexistent", lambda dotted: dotted in ("tomli", "tomli._re")).data
    assert b"\x03\x05tOmli\x09tOmli._re\x03sys\x00" in patched
    assert b"\x05tomli is not a chunk" in patched


def _refused_package(site: Path, fallback: str) -> None:
    from wheelgen import self_importing_c_files

    files, _ = self_importing_c_files(sys.executable, "1.0", hidden=True)  # C code the patch cannot reach
    files["cself/_core.py"] = fallback
    for path, data in files.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_bytes(data if isinstance(data, bytes) else data.encode())


PURE_PYTHON_MODE_STUB = "import cython\n\nif not cython.compiled:\n    raise ImportError('cself._core is not compiled')\n"


@pytest.mark.parametrize("fallback", ["stub", "source"])
def test_a_refused_extension_falls_back_only_to_real_source(tmp_path, fallback):
    """Beside a refused extension, Cython's pure-Python-mode stand-in (which raises "not compiled")
    is not run: the user sees the refusal and the way out. Real source still runs instead."""
    site = tmp_path / "site-packages"
    source = ("VERSION = 'source'\ndef make_box(v):\n    return v\ndef version_at_init():\n    return VERSION\n"
              "def lazy_version():\n    return VERSION\n")
    _refused_package(site, PURE_PYTHON_MODE_STUB if fallback == "stub" else source)
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(SRC)!r})
        import polyvenv
        env = polyvenv.Env.from_path({str(site)!r}, name="r")
        try:
            print("loaded", env.import_module("cself").version_at_init())
        except polyvenv.ExtensionNotSupported as e:
            print("refused", 'isolation = "process"' in str(e))
        except ImportError as e:
            print("misleading", e)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ("refused True" if fallback == "stub" else "loaded source")


def test_pure_python_mode_stand_ins_are_told_from_source(tmp_path):
    from polyvenv.runtime.importer import _runs_uncompiled

    cases = {
        PURE_PYTHON_MODE_STUB: False,
        "import cython\nif not cython.compiled: raise RuntimeError('compile me')\n": False,
        "import cython\n\n@cython.cfunc\ndef f(x: cython.int) -> cython.int:\n    return x\n": False,  # no cython
        "# real source; may say cython in a comment\nimport os\n": True,
        "try:\n    import cython\nexcept ImportError:\n    cython = None\n": False,
    }
    for i, (text, runs) in enumerate(cases.items()):
        path = tmp_path / f"m{i}.py"
        path.write_text(text)
        assert _runs_uncompiled(str(path), has_cython=False) is runs, text
    assert _runs_uncompiled(str(tmp_path / "m2.py"), has_cython=True)  # the env has Cython's shadow module


_CFFI_BUILD = """
import cffi, sys
ffi = cffi.FFI()
ffi.cdef("int twice(int v); const char *which(void);")
# built as a top-level "_cfx", shipped as cfpkg/_cfx: it registers sys.modules["_cfx"] and ["_cfx.lib"]
ffi.set_source("_cfx", 'int twice(int v) { return 2 * v; }\\nconst char *which(void) { return WHICH; }',
               define_macros=[("WHICH", '"%s"' % sys.argv[1])])
print(ffi.compile(tmpdir=sys.argv[2]))
"""


@pytest.mark.integration
def test_cffi_modules_keep_the_hosts_entries_under_their_build_name(tmp_path_factory, tmp_path):
    """A cffi module registers itself under the name it was built with (`_cfx`, `_cfx.lib`), which is
    not a name of the env: each env's copy leaves the host's entries as they were (the host's own
    `from _cfx.lib import twice` keeps working) and gets its own under the module's alias."""
    venv = _venv_with(tmp_path_factory, "cffi")
    subprocess.run([str(venv / "bin" / "python"), "-c", "import cffi, sys; assert sys.version_info[:2] == "
                    f"{tuple(sys.version_info[:2])}"], check=True)
    python = str(venv / "bin" / "python")
    from uv import find_uv_bin

    subprocess.run([find_uv_bin(), "pip", "install", "-q", "--python", python, "setuptools"], check=True)
    sites = {}
    for version in ("1.0", "2.0", "host"):
        out = tmp_path / f"build-{version}"
        made = subprocess.run([python, "-c", _CFFI_BUILD, version, str(out)], capture_output=True, text=True)
        assert made.returncode == 0, made.stderr
        site = sites[version] = tmp_path / f"site-{version}" / "site-packages"
        (site / "cfpkg").mkdir(parents=True)
        [built] = out.glob("_cfx*.so")
        (site / "cfpkg" / built.name).write_bytes(built.read_bytes())
        (site / "cfpkg" / "__init__.py").write_text(
            "from ._cfx import ffi, lib\ndef which():\n    return ffi.string(lib.which()).decode()\n"
            "def from_lib():\n    from _cfx.lib import twice  # by the name it was built with, as cffi allows\n"
            "    return twice(21)\n")
        if version != "host":  # each env has its own cffi (the host's is in its venv)
            for part in (venv / "lib").glob("python*/site-packages/*"):
                if part.name.startswith(("cffi", "_cffi_backend", "pycparser")):
                    subprocess.run(["cp", "-r", str(part), str(site)], check=True)
    code = textwrap.dedent(f"""
        import json, sys
        sys.path[:0] = [{str(SRC)!r}, {str(sites["host"])!r}]
        import cfpkg as host_cfpkg, polyvenv
        host_entries = {{k: sys.modules[k] for k in ("_cfx", "_cfx.lib")}}
        out = {{}}
        for version in ("1.0", "2.0"):
            cfpkg = polyvenv.Env.from_path({str(tmp_path)!r} + f"/site-{{version}}/site-packages",
                                           name="v" + version[0]).import_module("cfpkg")
            out[version] = [cfpkg.which(), cfpkg.lib.twice(21), cfpkg.lib is sys.modules[cfpkg.__name__ + "._cfx.lib"],
                            all(sys.modules[k] is v for k, v in host_entries.items())]
        out["host"] = [host_cfpkg.which(), host_cfpkg.from_lib(), all(sys.modules[k] is v for k, v in host_entries.items())]
        print(json.dumps(out))
    """)
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"1.0": ["1.0", 42, True, True], "2.0": ["2.0", 42, True, True],
                                       "host": ["host", 42, True]}


@pytest.mark.integration
def test_pypi_wheels_built_with_cython_3_3_run_their_compiled_code_side_by_side(tmp_path):
    """msgpack 1.2 and PyYAML 6.0.4 on PyPI are built with Cython 3.3 (LZSS-packed strings): beside
    older versions and the host's own copies, each env runs its own compiled code, not a fallback."""
    from uv import find_uv_bin

    from polyvenv.runtime.native.binpatch import lzss_tables

    host = tmp_path / "host"
    subprocess.run([find_uv_bin(), "pip", "install", "-q", "--python", sys.executable, "--target", str(host),
                    "--only-binary", ":all:", "msgpack==1.2.4", "pyyaml==6.0.4"], check=True, capture_output=True)
    for compiled in [*host.glob("msgpack/_cmsgpack*.so"), *host.glob("yaml/_yaml*.so")]:
        assert lzss_tables(compiled.read_bytes()), compiled  # really packed by Cython 3.3
    project = tmp_path / "project"
    project.mkdir()
    # private: the rule (issue 13) would give "new" the host's identical copies; its own are the case here
    (project / "polyvenv.toml").write_text('[envs.new]\nrequirements = ["msgpack==1.2.4", "pyyaml==6.0.4"]\n'
                                           'private = ["msgpack", "pyyaml"]\n'
                                           '[envs.old]\nrequirements = ["msgpack==1.0.8", "pyyaml==6.0.1"]\n')
    proc = subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=project, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    code = textwrap.dedent(f"""
        import json, sys, warnings
        sys.path[:0] = [{str(SRC)!r}, {str(host)!r}]
        import msgpack as host_msgpack, yaml as host_yaml, polyvenv
        ws = polyvenv.Workspace.load({str(project)!r})
        out = {{}}
        for name in ("new", "old"):
            env = ws.env(name)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                msgpack, yaml = env.import_module("msgpack"), env.import_module("yaml")
            in_env = lambda m: "/.polyvenv/.builds/" + name + "-" in m.__file__
            out[name] = [msgpack.unpackb(msgpack.packb({{"k": [1, "x"]}})), msgpack.Packer.__module__ == msgpack.__name__ + "._cmsgpack",
                         in_env(sys.modules[msgpack.__name__ + "._cmsgpack"]), yaml.__with_libyaml__,
                         yaml.load("a: [1, 2]", Loader=yaml.CSafeLoader), in_env(sys.modules[yaml.__name__ + "._yaml"]),
                         [str(w.message) for w in caught if w.category is ImportWarning]]
        out["host"] = [host_msgpack.unpackb(host_msgpack.packb([1])), host_yaml.load("a: 1", Loader=host_yaml.CSafeLoader),
                       sys.modules["msgpack._cmsgpack"].__file__.startswith({str(host)!r}), sys.modules["yaml"] is host_yaml]
        print(json.dumps(out))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    expected = [{"k": [1, "x"]}, True, True, True, {"a": [1, 2]}, True, []]
    assert json.loads(proc.stdout) == {"new": expected, "old": expected, "host": [[1], {"a": 1}, True, True]}


MERGED_TABLE_C = r"""
#include <stddef.h>
extern void use(const char *p, size_t n);
/* Cython 3.2's string lengths, as it declares them (Code.py): a bitfield as wide as the longest, here
   a bytes constant of 293430 bytes (scipy 1.17's cython_lapack), so gcc stores the entries in pairs. */
void init(const char *bytes) {
    const struct { const unsigned int length: 19; } index[] = {%s};
    size_t pos = 0;
    for (int i = 0; i < %d; i++) { use(bytes + pos, index[i].length); pos += index[i].length; }
}
"""


def test_a_lengths_table_stored_two_entries_at_a_time_is_read_back(tmp_path):
    """gcc writes a table of 19-bit entries 64 bits at a time (``movabs``, ``or``, ``mov`` to the stack):
    read back, it cuts the blob into its strings, so the module names in it are patched."""
    from polyvenv.runtime.native.codetable import stack_table

    lengths = [1, 39, 34, 30, 20, 18, 18, 5, 11, 10, 2, 2, 8, 13, 5, 8, 12, 12, 10, 8, 26, 12, 10, 8, 12, 12,
               12, 12, 6, 2, 2, 27, 17, 9, 293430]
    source = tmp_path / "table.c"
    source.write_text(MERGED_TABLE_C % (",".join(f"{{{n}}}" for n in lengths), len(lengths)))
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", str(source), "-o", str(tmp_path / "table.so")], check=True,
                   capture_output=True)
    code = (tmp_path / "table.so").read_bytes()
    assert b"\x48\xb9\x01\x00\x00\x00\x27\x00\x00\x00" in code  # movabs $0x2700000001, %rcx: two entries in one
    assert stack_table(code, sum(lengths)) == lengths


def test_numbers_that_happen_to_add_up_to_a_blob_are_no_lengths_table():
    """Beside a Cython 3.2 blob, two numbers that add up to its size come before its real lengths table
    (scikit-learn 1.8's _gradient_boosting, pydantic 1's json): the blob is cut by the real one, so
    ``numpy`` in it is found and patched, where before the extension was refused."""
    import struct
    import zlib

    from polyvenv.runtime.native.binpatch import _split

    strings = [b".", b"?", b"__main__", b"__module__", b"__name__", b"__qualname__", b"__test__", b"np",
               b"numpy", b"pkg.helpers", b"values"]
    blob = b"".join(strings)
    stream = zlib.compress(blob, 9)
    lengths = struct.pack(f"<{len(strings)}I", *map(len, strings))
    data = b"\x00" * 16 + stream + b"\x00" * 3 + struct.pack("<2I", 9, len(blob) - 9) + lengths
    assert _split(data, 16 + len(stream), blob) == (strings, b"")
