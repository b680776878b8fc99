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
    from polyvenv.runtime.native import lzss

    wh = tmp_path / "wheels"
    for version in ("1.0", "2.0"):
        cython_wheel(wh, sys.executable, cython_3_3, version, more=packed)
    host = _extract(cython_wheel(tmp_path / "hostwheel", sys.executable, cython_3_3, "host", more=packed),
                    tmp_path / "host")
    [core] = (host / "cypkg").glob("_core*.so")
    tables = [(start, size) for start, size, _ in lzss.streams(core.read_bytes())]
    assert (len(tables) == 1) is packed  # really packed by LZSS (or really not)
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

    host = _extract(cython_wheel(tmp_path / "w", sys.executable, cython_3_3, "1.0", more=True), tmp_path / "x")
    [core] = (host / "cypkg").glob("_core*.so")
    data = core.read_bytes()
    [(start, size, total)] = lzss.streams(data)
    tokens = lzss.tokens(data, start, size, total)
    assert tokens is not None
    blob = lzss.unpack(tokens, data, start)
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
