"""isolation = "auto": the probe at sync, its verdict in the manifest, `polyvenv check`, state set on shared
objects (issue 12, finding 6) and envs built for another Python (finding 9)."""

from __future__ import annotations

import json
import os
import py_compile
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import Workspace, python_or_skip
from test_cli import one_line
from wheelgen import make_wheel

SRC = Path(__file__).parent.parent / "src"

CALM = {  # loads cleanly side by side; its standard-library imports initialise their lazy state (no false alarm)
    "calm/__init__.py": "import email.mime.text, json, logging.config, tempfile\nTMP = tempfile.gettempdir()\n"
                        "from . import a\n",
    "calm/a.py": "from calm import b\nA = 'a'\n",
    "calm/b.py": "B = 'b'\n",
    "calm/optional.py": "import notinstalled  # an optional dependency the env lacks: fails in a plain venv too\n",
}
STAMPER = {  # sets an attribute on a standard-library class, as zope.interface does on collections.abc
    "stamper/__init__.py": "import collections.abc\ncollections.abc.Sequence.__stamper__ = 'stamped'\nVALUE = 1\n",
}
MIXED = {
    # imports its own submodule through the bare import machinery, under its real name: a leak
    "leaky/__init__.py": "import _frozen_importlib\n_frozen_importlib._gcd_import('leaky.helper')\n",
    "leaky/helper.py": "",
    # right in a plain venv, wrong side by side
    "sbs/__init__.py": "assert __name__ == 'sbs', __name__\n",
    "bconly/__init__.py": "",  # bconly/compiled.pyc, bytecode without its source, is added by the fixture
    "crashy/__init__.py": "",
    "crashy/boom.py": "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
    "crashy/fine.py": "FINE = True\n",
    "crashy/hang.py": "import time\ntime.sleep(600)\n",
}


@pytest.fixture(scope="session")
def probe_wheels(tmp_path_factory, wheelhouse) -> Path:
    """The session's wheelhouse plus the probe's classes: calm, stamper, and the mixed bag."""
    wh = tmp_path_factory.mktemp("probe-wheels")
    for wheel in wheelhouse.glob("*.whl"):
        (wh / wheel.name).symlink_to(wheel)
    make_wheel(wh, "calm", "1.0", CALM)
    make_wheel(wh, "stamper", "1.0", STAMPER)
    scratch = tmp_path_factory.mktemp("bconly")
    (scratch / "compiled.py").write_text("COMPILED = True\n")
    py_compile.compile(str(scratch / "compiled.py"), str(scratch / "compiled.pyc"))
    make_wheel(wh, "mixed", "1.0", {**MIXED, "bconly/compiled.pyc": (scratch / "compiled.pyc").read_bytes()})
    return wh


@pytest.fixture
def ws(tmp_path, probe_wheels) -> Workspace:
    root = tmp_path / "project"
    root.mkdir()
    return Workspace(root, probe_wheels)


def host(code: str, **kw) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh host interpreter that imports polyvenv from this checkout."""
    return subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(SRC)!r})\n"
                           + textwrap.dedent(code)], capture_output=True, text=True, **kw)


def manifest(ws: Workspace, name: str) -> dict:
    return json.loads((ws.root / ".polyvenv" / name / "polyvenv.json").read_text())


def test_auto_is_probed_once_at_sync_and_ws_env_follows_the_verdict(ws):
    ws.write('[envs.calm]\nrequirements = ["calm==1.0"]\nisolation = "auto"\n'
             '[envs.stamper]\nrequirements = ["stamper==1.0"]\nisolation = "auto"\n')
    writing = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as most machines are
    said = ws.cli("sync", env=writing).stderr
    assert "calm: built in" in said and "auto: namespace" in said, said
    status = ws.status()
    assert status["calm"]["verdict"] == "namespace" and status["calm"]["verdict_reasons"] == []
    assert status["stamper"]["verdict"] == "process"
    [reason] = status["stamper"]["verdict_reasons"]
    assert reason.startswith("stamper: unsafe: ") and "collections.abc.Sequence.__stamper__" in reason, reason
    table = ws.cli("list").stdout
    assert "auto: namespace" in table and "auto: process" in table, table
    assert "auto chose process: stamper: unsafe:" in table, table
    site = next((ws.root / ".polyvenv" / "calm").glob("lib/python*/site-packages"))
    assert not list(site.rglob("*.pyc")), "the probe wrote into the build"  # uv writes no bytecode either
    before = [manifest(ws, n) for n in ("calm", "stamper")]
    again = ws.cli("sync", "calm", "stamper").stderr  # not the memo: the planned no-op path
    assert "0 built, 2 up to date" in again and "prob" not in again, again
    assert [manifest(ws, n) for n in ("calm", "stamper")] == before  # the verdict belongs to the build
    proc = host(f"""
        import collections.abc, json, polyvenv
        ws = polyvenv.Workspace.load({str(ws.root)!r})
        calm, stamper = ws.env("calm"), ws.env("stamper")
        module = calm.import_module("calm")
        print(json.dumps([type(calm).__name__, type(stamper).__name__, stamper.import_module("stamper").VALUE,
                          module.__file__.startswith({str(ws.root / ".polyvenv")!r}), module.a.A,
                          hasattr(collections.abc.Sequence, "__stamper__"),
                          sorted(k for k in sys.modules if k.partition(".")[0] in ("calm", "stamper"))]))
    """)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == ["Env", "ProcessEnv", 1, True, "a", False, []]


def test_check_prints_each_module_loaded_refused_unsafe_failed_broken_or_crashed(ws):
    ws.write('[envs.mixed]\nrequirements = ["mixed==1.0", "calm==1.0"]\n')
    ws.cli("sync")
    proc = ws.cli("check", "mixed", "--json", check=False, env={**os.environ, "POLYVENV_PROBE_TIMEOUT": "8"})
    assert proc.returncode == 1, proc.stderr  # a namespace env the probe would send to a worker
    [report] = json.loads(proc.stdout)
    assert report["name"] == "mixed" and report["verdict"] == "process"
    found = {m["module"]: (m["status"], m["reason"]) for m in report["modules"]}
    assert found["calm"][0] == found["calm.a"][0] == found["calm.b"][0] == "loaded"
    assert found["calm.optional"][0] == "failed" and "in a plain venv of the env too" in found["calm.optional"][1]
    assert found["leaky"][0] == "unsafe" and "imported the host's leaky" in found["leaky"][1], found["leaky"]
    assert found["sbs"][0] == "broken" and "only side by side" in found["sbs"][1], found["sbs"]
    assert found["bconly.compiled"][0] == "refused" and "bytecode without its source" in found["bconly.compiled"][1]
    assert found["crashy.boom"] == ("crashed", found["crashy.boom"][1]) and "SIGSEGV" in found["crashy.boom"][1]
    assert found["crashy.hang"][0] == "crashed" and "hung" in found["crashy.hang"][1]
    assert found["crashy.fine"][0] == "loaded"  # the probe went on in a fresh scratch process
    assert not [r for r in report["reasons"] if r.startswith(("calm", "crashy.fine"))]
    table = ws.cli("check", "mixed", check=False, env={**os.environ, "POLYVENV_PROBE_TIMEOUT": "8"}).stdout
    assert table.startswith("mixed (isolation = 'namespace'): process (")
    assert any(line.split()[:2] == ["sbs", "broken"] for line in table.splitlines()), table


def test_state_set_on_a_standard_library_class_is_reported_with_the_env_object_and_way_out(ws):
    ws.write('[envs.stamper]\nrequirements = ["stamper==1.0"]\n[envs.calm]\nrequirements = ["calm==1.0"]\n')
    ws.cli("sync")
    proc = host(f"""
        import collections.abc, json, warnings, polyvenv
        ws = polyvenv.Workspace.load({str(ws.root)!r})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ws.env("calm").import_module("calm")  # stdlib imports and lazy state of its own: nothing to say
            quiet = len(caught)
            ws.env("calm").unload()  # no env loaded now: the check lets go of its copies, and starts afresh
            module = ws.env("stamper").import_module("stamper")
        print(json.dumps([quiet, [(w.category.__name__, str(w.message)) for w in caught],
                          module.__file__, sorted(k for k in sys.modules if k.startswith("stamper"))]))
    """)
    assert proc.returncode == 0, proc.stderr
    quiet, [[category, message]], file, real = json.loads(proc.stdout)
    assert quiet == 0 and category == "ProcessGlobalStateWarning"
    assert "env 'stamper'" in message and "collections.abc.Sequence.__stamper__" in message, message
    assert 'isolation = "process"' in message
    assert file.startswith(str(ws.root / ".polyvenv")) and real == []


def test_zope_interface_setting_attributes_on_collections_abc_is_seen_and_auto_goes_to_a_worker(tmp_path):
    """The real case (PyPI): zope.interface declares interfaces on collections.abc classes at import."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "polyvenv.toml").write_text('[envs.zi5]\nrequirements = ["zope.interface==5.5.2"]\nisolation = "auto"\n'
                                        '[envs.zi7]\nrequirements = ["zope.interface==7.2"]\n')
    ws = Workspace(root, tmp_path)
    proc = ws.cli("sync", check=False)
    if proc.returncode != 0 and "zope" in proc.stderr and ("network" in proc.stderr or "connect" in proc.stderr):
        pytest.skip(f"PyPI not reachable: {proc.stderr.strip()[-200:]}")
    assert proc.returncode == 0, proc.stderr
    reasons = ws.status()["zi5"]["verdict_reasons"]
    assert ws.status()["zi5"]["verdict"] == "process"
    assert any("collections.abc" in r and "__implemented__" in r for r in reasons), reasons
    site7 = next((root / ".polyvenv" / "zi7").glob("lib/python*/site-packages"))
    code = f"""
        import json, warnings, polyvenv
        ws = polyvenv.Workspace.load({str(root)!r})
        assert type(ws.env("zi5")).__name__ == "ProcessEnv"
        env = polyvenv.Env.from_path({str(root / ".polyvenv" / "zi5")!r}, name="zi5")  # in-process, as declared
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = env.import_module("zope.interface.common.collections")
        real = sorted(k for k in sys.modules if k.partition(".")[0] == "zope")
        sys.path.append({str(site7)!r})  # then the host's own copy, another version
        try:
            import zope.interface.common.collections
            host = "loaded"
        except RecursionError:
            host = "RecursionError"
        print(json.dumps([[str(w.message) for w in caught if w.category.__name__ == "ProcessGlobalStateWarning"],
                          module.__file__, real, host]))
    """
    proc = host(code)
    assert proc.returncode == 0, proc.stderr
    [message], file, real, host_copy = json.loads(proc.stdout)
    assert "env 'zi5'" in message and "collections.abc." in message and "__implemented__" in message, message
    assert 'isolation = "process"' in message
    assert file.startswith(str(root / ".polyvenv")) and real == []
    assert host_copy == "RecursionError"  # what the warning warns of: the reason the probe sends it to a worker


def test_a_namespace_env_for_another_python_is_refused_at_load_and_auto_picks_the_worker(ws):
    other = next((m for m in ("3.12", "3.11", "3.13") if m != "%d.%d" % sys.version_info[:2]))
    python = python_or_skip(other)
    ws.write(f'[envs.there]\nrequirements = ["alpha==1.0"]\npython = "{python}"\n'
             f'[envs.either]\nrequirements = ["alpha==2.0"]\npython = "{python}"\nisolation = "auto"\n')
    ws.cli("sync")
    [reason] = ws.status()["either"]["verdict_reasons"]
    assert reason.startswith("its Python is not the host's: CPython " + other), reason
    proc = host(f"""
        import json, polyvenv
        ws = polyvenv.Workspace.load({str(ws.root)!r})
        either = ws.env("either")
        out = [type(either).__name__, either.import_module("alpha").__version__]
        try:
            ws.env("there")
        except polyvenv.InterpreterMismatch as e:
            out += [type(e).__mro__[1].__name__, str(e), isinstance(e, ImportError)]
        try:
            polyvenv.Env.from_path({str(ws.root / ".polyvenv" / "there")!r}).import_module("alpha")
        except polyvenv.InterpreterMismatch as e:
            out.append(str(e) == out[3])
        print(json.dumps(out + [sorted(k for k in sys.modules if k.startswith("alpha"))]))
    """)
    assert proc.returncode == 0, proc.stderr
    kind, version, base, message, is_import_error, same, real = json.loads(proc.stdout)
    assert (kind, version, base, is_import_error, same, real) == ("ProcessEnv", "2.0", "PolyvenvError", True, True, [])
    assert message.startswith(f"env 'there' is built for CPython {other}"), message
    assert f"the host's is CPython {'%d.%d' % sys.version_info[:2]}" in message
    assert 'isolation = "process" (or "auto")' in message and "\n" not in message


def test_an_env_declared_auto_after_its_build_is_probed_once(ws):
    ws.write('[envs.calm]\nrequirements = ["calm==1.0"]\n')
    ws.cli("sync")
    assert "verdict" not in manifest(ws, "calm")  # a manifest without a verdict (as before "auto") reads fine
    assert ws.status()["calm"]["verdict"] is None and "namespace" in ws.cli("list").stdout
    ws.write('[envs.calm]\nrequirements = ["calm==1.0"]\nisolation = "auto"\n')
    said = ws.cli("sync").stderr
    assert "calm: up to date; auto: namespace" in said, said
    assert ws.status()["calm"]["verdict"] == "namespace"
    assert "prob" not in ws.cli("sync").stderr


def test_isolation_is_validated_with_its_choices(ws):
    ws.write('[envs.a]\nrequirements = ["alpha==1.0"]\nisolation = "automatic"\n')
    line = one_line(ws.cli("sync", check=False), 2)
    assert "isolation: must be one of namespace, process, auto, got 'automatic'" in line, line


def test_a_version_request_gets_a_gil_build_unless_it_asks_for_free_threading(tmp_path, monkeypatch):
    """Two CPython 3.13.0 builds under pyenv, one free-threaded: "3.13" (or "3.13+gil") is the one with the GIL,
    whose ABI a namespace env needs to match a GIL host's; "3.13t" is the free-threaded one."""
    from polyvenv.provision.interpreters import resolve
    from polyvenv.provision.probes import ProbeCache

    for name, abi in (("3.13.0", "cpython-313"), ("3.13.0t", "cpython-313t")):
        exe = tmp_path / "pyenv" / "versions" / name / "bin" / "python3"
        exe.parent.mkdir(parents=True)
        facts = {"version": "3.13.0", "implementation": "cpython", "platform": "linux-x86_64", "abi": abi}
        exe.write_text(f"#!/bin/sh\necho '{json.dumps(facts)}'\n")
        exe.chmod(0o755)
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    monkeypatch.setenv("PATH", "/nonexistent")
    cache = ProbeCache(tmp_path / "probes.json")
    for request, wanted in (("3.13", "cpython-313"), ("3.13+gil", "cpython-313"), ("3.13t", "cpython-313t"),
                            ("3.13+freethreaded", "cpython-313t")):
        found = resolve(request, tmp_path, cache)
        assert (found.abi, Path(found.path).parent.parent.name) == (wanted, "3.13.0t" if wanted.endswith("t")
                                                                   else "3.13.0"), request
