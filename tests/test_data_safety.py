"""polyvenv deletes or replaces only what it made: every hostile setting a user can write, tried.

Each test builds a canary tree outside the workspace (files, links, a venv of someone else's)
and user files inside it, runs real `polyvenv` commands with a hostile setting, and compares
checksums of everything that is not polyvenv's own before and after. A refusal must be one
`polyvenv: error:` line naming the path, exit 2, and must leave nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PYENV, Workspace


def tree(root: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple]:
    """Every entry under ``root`` (links not followed): kind, mode, and content hash or link target."""
    found: dict[str, tuple] = {}
    for directory, dirs, files in os.walk(root):
        rel_dir = os.path.relpath(directory, root)
        dirs[:] = [d for d in dirs if os.path.normpath(os.path.join(rel_dir, d)) not in skip]
        for name in dirs + files:
            path = os.path.join(directory, name)
            rel = os.path.normpath(os.path.relpath(path, root))
            if rel in skip:
                continue
            st = os.lstat(path)
            if os.path.islink(path):
                found[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                found[rel] = ("dir", st.st_mode)
            else:
                found[rel] = ("file", st.st_mode, hashlib.sha256(Path(path).read_bytes()).hexdigest())
    return found


@pytest.fixture(autouse=True)
def fake_home(tmp_path, monkeypatch) -> Path:
    """Every polyvenv run here sees a throwaway home: a regression must never reach the real one.
    (The root directory is tried only through validation, in-process, for the same reason.)"""
    home = tmp_path / "home"
    (home / ".local" / "share").mkdir(parents=True)
    (home / ".bashrc").write_text("# the user's\n")
    (home / "projects-link").symlink_to(tmp_path)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    return home


@pytest.fixture
def canary(tmp_path) -> Path:
    """A user's folder outside the workspace: files, links, and a venv polyvenv did not make."""
    root = tmp_path / "canary"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "thesis.tex").write_text("years of work")
    (root / "alink").symlink_to("docs/thesis.tex")
    (root / "dangling").symlink_to("nowhere")
    (root / "bin").mkdir()
    (root / "bin" / "greet").write_text("#!/bin/sh\necho the user's own greet\n")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "theirvenv")], check=True)
    (root / "theirvenv" / "notes.txt").write_text("their notes")
    return root


@pytest.fixture
def project(workspace: Workspace) -> Workspace:
    """The workspace with user files of its own in it."""
    (workspace.root / "notes.md").write_text("my notes")
    (workspace.root / "data").mkdir()
    (workspace.root / "data" / "big.csv").write_text("1,2,3\n")
    (workspace.root / "mylink").symlink_to("notes.md")
    return workspace


def refused(proc: subprocess.CompletedProcess, *words: str) -> str:
    """The first error line of a refusal: exit 2, one line, naming what it says."""
    assert proc.returncode == 2, f"exit {proc.returncode}, expected a refusal:\n{proc.stderr}"
    first = proc.stderr.splitlines()[0]
    assert first.startswith("polyvenv: error: "), proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in first, f"{word!r} not in {first!r}"
    return first


COMMANDS = (("sync",), ("gc",), ("list",), ("doctor",), ("remove", "a"), ("lock",), ("shims",))


@pytest.mark.parametrize("envs_dir", [".", "..", "../canary", "~", "data/big.csv"])
def test_a_hostile_envs_dir_is_refused_by_every_command_and_nothing_changes(project, canary, envs_dir, tmp_path,
                                                                            fake_home):
    value = str(fake_home) if envs_dir == "~" else envs_dir
    project.write(f'envs-dir = "{value}"\n[envs.a]\nrequirements = ["alpha==1.0"]\n')
    before = tree(tmp_path)
    for command in COMMANDS:
        first = refused(project.cli(*command, check=False), "envs-dir")
        assert tree(tmp_path) == before, f"`polyvenv {' '.join(command)}` changed files"
    assert "envs-dir" in first


def test_the_root_directory_as_envs_dir_is_refused_at_validation(tmp_path):
    from polyvenv.config import load_config
    from polyvenv.errors import ConfigError

    (tmp_path / "polyvenv.toml").write_text('envs-dir = "/"\n[envs.a]\nrequirements = ["alpha==1.0"]\n')
    with pytest.raises(ConfigError, match="envs-dir: / is (the root directory|a parent of the workspace)"):
        load_config(tmp_path)


def test_an_envs_dir_with_a_users_links_is_never_swept_by_gc(project, canary):
    """The reported case: envs-dir pointing at an existing folder; gc unlinked every link in it."""
    project.write(f'envs-dir = "{canary}"\n[envs.a]\nrequirements = ["alpha==1.0"]\n')
    before = tree(canary)
    refused(project.cli("gc", check=False), str(canary), "did not make")
    assert tree(canary) == before


def test_an_envs_dir_polyvenv_made_is_used_and_marked(project):
    project.write('envs-dir = "envs"\n[envs.a]\nrequirements = ["alpha==1.0"]\n')
    project.cli("sync")
    assert (project.root / "envs" / ".polyvenv-envs").is_file()
    project.cli("gc")
    assert (project.root / "envs" / "a").is_symlink()
    python = project.root / "envs" / "a" / "bin" / "python"
    out = subprocess.run([python, "-c", "import alpha; print(alpha.__version__)"], capture_output=True, text=True)
    assert out.stdout.strip() == "1.0"


def test_an_envs_dir_of_an_earlier_polyvenv_without_the_marker_is_adopted(project):
    project.write('[envs.a]\nrequirements = ["alpha==1.0"]\n')
    project.cli("sync")
    (project.root / ".polyvenv" / ".polyvenv-envs").unlink()  # as an earlier polyvenv left it
    assert project.status()["a"]["state"] == "ok"
    project.cli("gc")
    assert (project.root / ".polyvenv" / ".polyvenv-envs").is_file()


@pytest.mark.parametrize("what", ["file", "dir", "link"])
def test_a_user_path_at_an_envs_location_is_never_replaced(project, what):
    """A file, directory or link of the user's where env `a` goes: refused before any build."""
    project.write('[envs.a]\nrequirements = ["alpha==1.0"]\n[envs.b]\nrequirements = ["alpha==2.0"]\n')
    project.cli("sync", "b")  # the envs dir is polyvenv's now; the user then puts something in it
    location = project.root / ".polyvenv" / "a"
    if what == "file":
        location.write_text("mine")
    elif what == "dir":
        location.mkdir()
        (location / "inside").write_text("mine")
    else:
        location.symlink_to(project.root / "notes.md")
    before = tree(project.root, skip=(".polyvenv/.locks", ".polyvenv/.cache"))
    proc = project.cli("sync", check=False)
    refused(proc, str(location), "was not made by polyvenv")
    assert "building" not in proc.stderr  # refused first, not after a whole build
    assert tree(project.root, skip=(".polyvenv/.locks", ".polyvenv/.cache")) == before
    assert not list((project.root / ".polyvenv").glob(".a.*.link"))
    for command in (("gc",), ("remove", "a")):
        project.cli(*command)
        assert tree(project.root, skip=(".polyvenv/.locks", ".polyvenv/.cache")) == before, command


@pytest.mark.parametrize("name", ["discovered.json", ".polyvenv-envs", "a" * 240, "two\nlines", "../x", "/abs"])
def test_env_names_that_cannot_be_files_of_their_own_are_refused_in_one_line(project, name):
    import json

    project.write(f'[envs.{json.dumps(name)}]\nrequirements = ["alpha==1.0"]\n')
    proc = project.cli("sync", check=False)
    first = refused(proc, "env name")
    assert "\n" not in first
    assert len(proc.stderr.splitlines()) == 1
    assert not (project.root / ".polyvenv").exists()


@pytest.mark.parametrize("name", ["../../canary/alink", "/abs/path", str(Path("..") / ".." / "x"), "a/b", "a" * 300])
def test_remove_takes_env_names_only(project, canary, name, tmp_path):
    project.write('[envs.a]\nrequirements = ["alpha==1.0"]\n')
    project.cli("sync")
    before = tree(tmp_path)
    refused(project.cli("remove", name, check=False), "env name")
    assert tree(tmp_path) == before


def test_remove_with_a_typo_suggests_the_env(project):
    project.write('[envs.alpha_one]\nrequirements = ["alpha==1.0"]\n')
    project.cli("sync")
    proc = project.cli("remove", "alpha_on", check=False)
    assert proc.returncode == 2
    assert "did you mean 'alpha_one'" in proc.stderr.splitlines()[0]


def test_a_shim_the_user_replaced_is_kept_by_remove_and_by_narrowing_scripts(project):
    config = '''
        bin-dir = "bin"
        [envs.one]
        requirements = ["greeter"]
        scripts = [{scripts}]
    '''
    project.write(config.format(scripts='"greet"'))
    project.cli("sync")
    shim = project.root / "bin" / "greet"
    assert shim.is_symlink()
    shim.unlink()
    shim.write_text("#!/bin/sh\necho mine\n")  # the user's own command now
    project.write(config.format(scripts=""))  # narrowing scripts: polyvenv's shim would go
    proc = project.cli("sync")
    assert shim.read_text() == "#!/bin/sh\necho mine\n"
    assert f"kept {shim}" in proc.stderr
    project.write(config.format(scripts='"greet"'))  # wanting it back: the user's file is not replaced
    proc = project.cli("sync", check=False)
    assert proc.returncode == 1 and "was not made by polyvenv" in proc.stderr
    assert shim.read_text() == "#!/bin/sh\necho mine\n"
    project.cli("remove", "one")
    assert shim.read_text() == "#!/bin/sh\necho mine\n"


def test_remove_deletes_an_intact_shim(project):
    project.write('bin-dir = "bin"\n[envs.one]\nrequirements = ["greeter"]\nscripts = ["greet"]\n')
    project.cli("sync")
    assert "1 shim" in project.cli("remove", "one").stderr
    assert not os.path.lexists(project.root / "bin" / "greet")


@pytest.mark.parametrize("target", ["canary/theirvenv", "canary/docs", "canary/docs/thesis.tex", "canary/alink",
                                    "~", ".", ".."])
def test_create_never_replaces_what_it_did_not_make_and_writes_nothing_beside_it(canary, tmp_path, wheelhouse,
                                                                                target):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("alpha==1.0\n")
    cwd = tmp_path / "here"
    cwd.mkdir()
    path = str(Path.home()) if target == "~" else str(tmp_path / target) if target.startswith("canary") else target
    before = tree(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "polyvenv", "create", path, "-r", str(reqs), "--offline",
                           "--wheelhouse", str(wheelhouse)], cwd=cwd, capture_output=True, text=True)
    refused(proc, "create" if target in ("~", ".", "..") else "refusing")
    assert tree(tmp_path) == before


def test_create_on_the_root_directory_is_refused_at_validation():
    from polyvenv.provision.create import _check_target
    from polyvenv.errors import UsageError

    with pytest.raises(UsageError, match="is the root"):
        _check_target(Path("/"))


def test_create_replaces_its_own_venv_and_an_empty_directory(tmp_path, wheelhouse):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("alpha==1.0\n")
    (tmp_path / "empty").mkdir()
    for target in ("empty", "fresh"):
        argv = [sys.executable, "-m", "polyvenv", "create", target, "-r", str(reqs), "--offline",
                "--wheelhouse", str(wheelhouse)]
        assert subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True).returncode == 0
        reqs.write_text(f"# {target}\nalpha==2.0\n")
        proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0 and "rebuilt" in proc.stderr, proc.stderr
        out = subprocess.run([tmp_path / target / "bin" / "python", "-c", "import alpha; print(alpha.__version__)"],
                             capture_output=True, text=True).stdout
        assert out.strip() == "2.0"
        reqs.write_text("alpha==1.0\n")


def test_lock_never_overwrites_a_file_polyvenv_did_not_write(project):
    project.write('wheelhouse = "x"\n[envs.a]\nrequirements = ["alpha==1.0"]\n', offline=False)
    locks = project.root / "polyvenv-locks"
    locks.mkdir()
    (locks / "a.txt").write_text("my own pins\n")
    proc = project.cli("lock", check=False)
    assert proc.returncode == 2 and str(locks / "a.txt") in proc.stderr.splitlines()[0], proc.stderr
    assert (locks / "a.txt").read_text() == "my own pins\n"


@pytest.mark.parametrize("key", ["bin-dir", "locks-dir"])
def test_a_directory_setting_naming_a_file_is_one_line(project, key):
    project.write(f'{key} = "notes.md"\n[envs.a]\nrequirements = ["alpha==1.0"]\n')
    refused(project.cli("sync", check=False), key, "not a directory")
    assert (project.root / "notes.md").read_text() == "my notes"


@pytest.mark.parametrize("python, words", [("/bin/sh", ("/bin/sh", "not a working Python interpreter")),
                                           ("2.7", ("'2.7'", "Python 2.7", "Python 3 only"))])
def test_an_interpreter_that_cannot_serve_says_what_it_is(project, python, words):
    if python == "2.7" and not list(PYENV.glob("2.7*")):
        pytest.skip(f"CPython 2.7 not found under {PYENV}")
    project.write(f'[envs.a]\nrequirements = ["alpha==1.0"]\npython = "{python}"\n')
    first = refused(project.cli("sync", check=False), *words)
    assert "-c" not in first  # the setting and what it is, not the probe's command line


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (root may mount one here; skipped with a message where it cannot)."""
    mount = tmp_path / "small"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill: {proc.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_is_one_line_and_keeps_the_env_in_use(project, small_disk):
    """A build that runs out of space (bigpkg's 1500 modules do not fit in 1 MiB) fails in one
    line, exit 1, leaves the previous build in use and nothing stamped; with space again, sync works."""
    envs = small_disk / "envs"
    body = f'envs-dir = "{envs}"\n[envs.a]\nrequirements = [{{reqs}}]\n'
    project.write(body.format(reqs='"alpha==1.0"'))
    project.cli("sync")
    project.write(body.format(reqs='"alpha==1.0", "bigpkg"'))
    proc = project.cli("sync", check=False)
    assert proc.returncode == 1, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("polyvenv: error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "env 'a'" in errors[0] and "previous build" in errors[0]
    python = envs / "a" / "bin" / "python"
    out = subprocess.run([python, "-c", "import alpha; print(alpha.__version__)"], capture_output=True, text=True)
    assert out.stdout.strip() == "1.0"
    assert project.status()["a"]["state"] == "stale"
    project.write(body.replace(str(envs), "envs2").format(reqs='"alpha==1.0", "bigpkg"'))
    project.cli("sync")
    assert project.status()["a"]["state"] == "ok"
