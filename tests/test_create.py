"""`polyvenv create DIR -r REQS`: one venv at a path, no config (seed 004)."""

from __future__ import annotations

import json
import subprocess
import sys


def create(cwd, *args, check=True):
    proc = subprocess.run([sys.executable, "-m", "polyvenv", "create", *args], cwd=cwd,
                          capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_create_then_noop_then_update(tmp_path, wheelhouse):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("alpha==1.0\n")
    offline = ["--offline", "--wheelhouse", str(wheelhouse)]
    assert "created" in create(tmp_path, ".venv", "-r", str(reqs), *offline).stderr
    python = tmp_path / ".venv" / "bin" / "python"
    version = "import alpha; print(alpha.__version__)"
    assert subprocess.run([python, "-c", version], capture_output=True, text=True).stdout.strip() == "1.0"
    assert "up to date" in create(tmp_path, ".venv", "-r", str(reqs), *offline).stderr
    reqs.write_text("alpha==2.0\n")
    assert "rebuilt" in create(tmp_path, ".venv", "-r", str(reqs), *offline).stderr
    assert subprocess.run([python, "-c", version], capture_output=True, text=True).stdout.strip() == "2.0"
    stamp = json.loads((tmp_path / ".venv" / "polyvenv.json").read_text())
    assert stamp["distributions"] == {"alpha": "2.0"}


def test_a_venv_polyvenv_did_not_make_is_never_replaced(tmp_path, wheelhouse):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("alpha==1.0\n")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (venv / "notes.txt").write_text("someone's files")
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = create(tmp_path, "venv", "-r", str(reqs), "--offline", "--wheelhouse", str(wheelhouse), check=False)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0].startswith(f"polyvenv: error: {venv} exists and is a virtualenv polyvenv "
                                                  "did not make: refusing to replace or delete it")
    assert (venv / "notes.txt").read_text() == "someone's files"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written beside it either


def test_create_refuses_to_delete_a_directory_that_is_not_a_venv(tmp_path, wheelhouse):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("alpha==1.0\n")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    proc = create(tmp_path, "precious", "-r", str(reqs), "--offline", "--wheelhouse", str(wheelhouse), check=False)
    assert proc.returncode == 2
    assert "refusing to replace or delete it" in proc.stderr.splitlines()[0]
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_create_with_pip_and_another_python(tmp_path, wheelhouse, any_python):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("alpha==2.0\n")
    create(tmp_path, "v", "-r", str(reqs), "--python", any_python, "--with-pip", "--offline",
           "--wheelhouse", str(wheelhouse))
    python = tmp_path / "v" / "bin" / "python"
    out = subprocess.run([python, "-c", "import sys, alpha, pip; print(sys.executable, alpha.__version__)"],
                         capture_output=True, text=True, check=True).stdout
    assert out.split()[1] == "2.0"
    version = subprocess.run([any_python, "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True).stdout
    assert subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"],
                          capture_output=True, text=True).stdout == version


def test_missing_requirements_file(tmp_path):
    proc = create(tmp_path, "v", "-r", "nope.txt", check=False)
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr.splitlines()[0]
