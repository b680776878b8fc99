"""Real packages from PyPI: two versions of one library, each in its own real env."""

from __future__ import annotations

import json
import subprocess

import pytest

pytestmark = pytest.mark.integration

RENDER = ("import jinja2; print(jinja2.Template('{{ x|upper }}').render(x='hi'), jinja2.__version__)")


def test_two_jinja2_versions_from_pypi(workspace):
    workspace.write("""
        [envs.render_old]
        requirements = ["jinja2==2.11.3", "markupsafe==2.0.1"]
        [envs.render_new]
        requirements = ["jinja2>=3.1,<3.2"]
    """, offline=False)
    workspace.cli("sync", "--jobs", "2")
    assert workspace.run_in("render_old", RENDER) == "HI 2.11.3"
    assert workspace.run_in("render_new", RENDER).startswith("HI 3.1.")
    status = workspace.status()
    assert status["render_old"]["distributions"] == {"jinja2": "2.11.3", "markupsafe": "2.0.1"}


def test_wheelhouse_then_offline_build_elsewhere(make_workspace):
    online = make_workspace("online")
    body = """
        [envs.a]
        requirements = ["six==1.16.0", "attrs==21.4.0"]
    """
    online.write(body, offline=False)
    online.cli("lock")
    online.cli("wheelhouse", "wheels")
    wheels = sorted(p.name for p in (online.root / "wheels").glob("*.whl"))
    assert [w.split("-")[0] for w in wheels] == ["attrs", "six"]

    offline = make_workspace("offline")
    (offline.root / "polyvenv-locks").mkdir()
    (offline.root / "polyvenv-locks" / "a.txt").write_text((online.root / "polyvenv-locks" / "a.txt").read_text())
    offline.write(f'wheelhouse = "{online.root / "wheels"}"\noffline = true\n' + body, offline=False)
    offline.cli("sync", "--locked")
    assert offline.run_in("a", "import six, attr; print(six.__version__, attr.__version__)") == "1.16.0 21.4.0"


def test_create_from_pypi_with_pip(tmp_path):
    import sys

    reqs = tmp_path / "requirements.txt"
    reqs.write_text("six==1.15.0\n")
    proc = subprocess.run([sys.executable, "-m", "polyvenv", "create", ".venv", "-r", str(reqs), "--with-pip"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    python = tmp_path / ".venv" / "bin" / "python"
    out = subprocess.run([python, "-m", "pip", "list", "--format", "json"], capture_output=True, text=True, check=True)
    names = {d["name"].lower(): d["version"] for d in json.loads(out.stdout)}
    assert names["six"] == "1.15.0" and "pip" in names
