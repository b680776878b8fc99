"""The command line's manners, through the real CLI: global options anywhere (and from the
environment), one error boundary, one-line usage errors, and the small things a user reads."""

from __future__ import annotations

import json
import os
import re
import sys

import pytest

from conftest import Workspace


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("polyvenv: error:")]


def one_line(proc, code: int) -> str:
    """The single `polyvenv: error:` line of a failed command (and nothing like a traceback or usage)."""
    assert proc.returncode == code, f"exit {proc.returncode}, expected {code}:\n{proc.stderr}"
    assert proc.stderr.startswith("polyvenv: error: "), proc.stderr
    assert len(errors(proc.stderr)) == 1 and "Traceback" not in proc.stderr and "usage:" not in proc.stderr, \
        proc.stderr
    return errors(proc.stderr)[0]


@pytest.fixture
def ws(workspace) -> Workspace:
    workspace.write('[envs.a]\nrequirements = ["alpha==1.0"]\n')
    return workspace


# -- global options -----------------------------------------------------------

def test_config_before_or_after_the_command_or_from_the_environment(ws, tmp_path):
    config = str(ws.root / "polyvenv.toml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for argv, env in ((["--config", config, "list", "--json"], {}), (["list", "--json", "--config", config], {}),
                      (["list", "--json"], {"POLYVENV_CONFIG": config})):
        proc = ws.cli(*argv, cwd=elsewhere, env={**os.environ, **env})
        assert [e["name"] for e in json.loads(proc.stdout)] == ["a"], argv


def test_quiet_before_or_after_the_command_or_from_the_environment(ws):
    assert "1 env:" in ws.cli("sync").stderr
    for argv, env in ((["-q", "sync"], {}), (["sync", "--quiet"], {}), (["sync"], {"POLYVENV_QUIET": "1"})):
        ws.write('[envs.a]\nrequirements = ["alpha==2.0"]\n' if "alpha==1.0" in
                 (ws.root / "polyvenv.toml").read_text() else '[envs.a]\nrequirements = ["alpha==1.0"]\n')
        proc = ws.cli(*argv, env={**os.environ, **env})
        assert proc.stderr == "", (argv, proc.stderr)


def test_offline_before_or_after_the_command_or_from_the_environment(workspace):
    workspace.write('[envs.a]\nrequirements = ["alpha==1.0"]\n', offline=False)
    for argv, env in ((["--offline", "sync"], {}), (["sync", "--offline"], {}), (["sync"], {"POLYVENV_OFFLINE": "1"})):
        first = one_line(workspace.cli(*argv, check=False, env={**os.environ, **env}), 2)
        assert "offline builds install only from a wheelhouse" in first, argv


def test_an_environment_variable_polyvenv_cannot_read_is_a_usage_error(ws):
    first = one_line(ws.cli("list", check=False, env={**os.environ, "POLYVENV_OFFLINE": "maybe"}), 2)
    assert "POLYVENV_OFFLINE='maybe'" in first


def test_python_passes_everything_after_it_to_the_script(ws):
    code = "import sys; print(sys.argv)"
    proc = ws.cli("-q", "--no-progress", "python", "-c", code, "--config", "x", "-v", "-q", "list")
    assert proc.stdout.strip() == str(["-c", "--config", "x", "-v", "-q", "list"])


# -- the error boundary ---------------------------------------------------------

def test_an_unexpected_error_is_one_line_with_where_its_traceback_went(workspace, tmp_path):
    cache = tmp_path / "cache"
    environ = {**os.environ, "POLYVENV_CACHE_DIR": str(cache), "UV_CACHE_DIR": str(tmp_path / "uv-cache")}
    workspace.write('bin-dir = "bin"\n[envs.a]\nrequirements = ["alpha==1.0"]\n')
    (workspace.root / "bin").mkdir()
    (workspace.root / "bin" / ".polyvenv-shims.json").write_text('{"greet": "not a table"}')  # damaged registry
    first = one_line(workspace.cli("shims", check=False, env=environ), 1)
    log = cache / "polyvenv.log"
    assert first.startswith("polyvenv: error: unexpected AttributeError") and str(log) in first, first
    text = log.read_text()
    assert "$ polyvenv shims" in text and "Traceback (most recent call last)" in text and "shims.py" in text
    verbose = workspace.cli("shims", "-v", check=False, env=environ)
    assert verbose.returncode == 1 and verbose.stderr.startswith("polyvenv: error: unexpected AttributeError")
    assert "Traceback (most recent call last)" in verbose.stderr


@pytest.mark.parametrize("argv, words", [
    (["lsit"], ["unknown command 'lsit'", "did you mean 'list'"]),
    ([], ["no command given", "--help"]),
    (["sync", "--bogus"], ["unrecognized arguments: --bogus", "polyvenv sync --help"]),
    (["sync", "--jobs", "x"], ["--jobs", "expected a number, got 'x'"]),
    (["--color", "pink", "list"], ["--color", "'pink'"]),
    (["run"], ["NAME"]),
    (["python", "--watch", "--interval", "0", "x.py"], ["--interval", "above 0, got '0'"]),
    (["--watch", "python", "x.py"], ["--watch: `python`'s own options go after it"]),
])
def test_a_usage_error_is_one_line_exit_2(ws, argv, words):
    first = one_line(ws.cli(*argv, check=False), 2)
    for word in words:
        assert word in first, first


def test_python_dash_m_of_a_missing_module_is_one_line(ws):
    first = one_line(ws.cli("python", "-m", "nosuchmod", check=False), 1)
    assert "no module named 'nosuchmod'" in first


def test_an_error_in_the_users_script_shows_the_users_traceback_only(ws):
    (ws.root / "boom.py").write_text("def f():\n    raise ValueError('mine')\n\nf()\n")
    proc = ws.cli("python", "boom.py", check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Traceback (most recent call last):\n  File \"boom.py\", line 4"), proc.stderr
    assert proc.stderr.rstrip().endswith("ValueError: mine")
    assert "polyvenv" not in proc.stderr and "runpy" not in proc.stderr, proc.stderr
    proc = ws.cli("python", "-c", "import sys; sys.exit(3)", check=False)
    assert proc.returncode == 3 and proc.stderr == ""


# -- small things a user sees -------------------------------------------------------

def test_counts_take_the_number_of_their_noun(ws):
    assert "polyvenv: 1 env: 1 built, 0 up to date, 0 failed" in ws.cli("sync").stderr
    assert "polyvenv: 1 env: 0 built, 1 up to date, 0 failed" in ws.cli("sync").stderr  # the no-op memo's answer
    assert "polyvenv: a: removed (0 shims)" in ws.cli("remove", "a").stderr
    assert "gc removed 0 unused builds" in ws.cli("gc").stderr
    ws.write('bin-dir = "bin"\n[envs.a]\nrequirements = ["greeter==1.0"]\nscripts = ["*"]\n')
    assert "; shims: 1 added" in ws.cli("sync").stderr
    assert "polyvenv: a: removed (1 shim)" in ws.cli("remove", "a").stderr


def test_list_has_a_header_row(ws):
    ws.cli("sync")
    lines = ws.cli("list").stdout.splitlines()
    assert lines[0].split() == ["ENV", "STATE", "PYTHON", "ISOLATION", "DISTRIBUTIONS"]
    assert lines[1].split()[:2] == ["a", "ok"] and lines[1].split()[3:5] == ["namespace", "alpha==1.0"]


def test_remove_says_did_you_mean(ws):
    first = one_line(ws.cli("remove", "aa", check=False), 2)
    assert "did you mean 'a'" in first


def test_interpreters_found_are_listed_as_versions_sort(workspace):
    workspace.write('[envs.a]\npython = "3.99"\n')
    first = one_line(workspace.cli("sync", check=False), 2)
    found = re.search(r"found: ([^)]*)\)", first).group(1).split(", ")
    assert len(found) > 1, first
    assert found == sorted(found, key=lambda v: [int(p) for p in v.split(".")]), first


@pytest.mark.parametrize("body, words", [
    ('[envs.a]\ninstaller = "pip"\n', ["[envs.a]", "installer is a top-level key, not an env key"]),
    ('requirements = ["alpha"]\n[envs.a]\n', ["requirements is an env key", "not a top-level key"]),
    ('[envs.a]\nrequirements = ["jinja2=>3.1"]\n', ["not a valid PEP 508 requirement", "did you mean 'jinja2>=3.1'"]),
])
def test_a_config_mistake_says_what_was_meant(workspace, body, words):
    workspace.write(body)
    first = one_line(workspace.cli("list", check=False), 2)
    for word in words:
        assert word in first, first


def test_shims_with_nothing_configured_says_what_to_configure(ws):
    first = one_line(ws.cli("shims", check=False), 2)
    assert "bin-dir" in first and "--bin-dir DIR" in first
    ws.write('bin-dir = "bin"\n[envs.a]\nrequirements = ["alpha==1.0"]\n')
    ws.cli("sync")
    assert 'no env exports a command; add `scripts = ["*"]`' in ws.cli("shims").stderr


def test_a_long_build_shows_it_is_alive_when_stderr_is_not_a_terminal(workspace, tmp_path):
    slow = workspace.root / "slowpython"  # an interpreter that takes a second to start: a long build
    slow.write_text(f"#!/bin/sh\nsleep 1\nexec {sys.executable} \"$@\"\n")
    slow.chmod(0o755)
    workspace.write('[envs.a]\npython = "./slowpython"\nrequirements = ["alpha==1.0"]\n')
    proc = workspace.cli("sync", env={**os.environ, "POLYVENV_PROGRESS_INTERVAL": "0.2"})
    alive = [line for line in proc.stderr.splitlines() if line.startswith("polyvenv: a: still building, ")]
    assert alive, proc.stderr
    assert re.match(r"polyvenv: a: still building, \d+s(: .+)?$", alive[0]), alive
    assert any(": $ " in line or "uv" in line for line in alive), alive  # the installer's last line


@pytest.mark.integration
def test_wheelhouse_shows_each_env_as_it_fills(workspace):
    workspace.write('[envs.a]\nrequirements = ["six==1.16.0"]\n', offline=False)
    proc = workspace.cli("wheelhouse", "wheels")
    lines = proc.stderr.splitlines()
    assert "polyvenv: a: filling the wheelhouse..." in lines, proc.stderr
    assert "polyvenv: a: wheelhouse filled (1 new wheel)" in lines, proc.stderr
    assert lines[-1] == f"polyvenv: 1 wheel in {workspace.root / 'wheels'}", proc.stderr


def test_python_watch_from_the_environment_and_in_the_commands_help(ws):
    (ws.root / "hello.py").write_text("import threading; print(sorted(t.name for t in threading.enumerate()))\n")
    assert ws.cli("python", "hello.py").stdout == "['MainThread']\n"
    watched = ws.cli("python", "hello.py", env={**os.environ, "POLYVENV_WATCH": "1"})
    assert watched.stdout == "['MainThread', 'polyvenv-watch']\n"
    first = one_line(ws.cli("python", "hello.py", check=False, env={**os.environ, "POLYVENV_WATCH_INTERVAL": "soon"}),
                     2)
    assert "POLYVENV_WATCH_INTERVAL='soon': expected a number of seconds" in first
    shown = ws.cli("python", "--help").stdout
    assert "--watch" in shown and "POLYVENV_WATCH]" in shown and "POLYVENV_WATCH_INTERVAL]" in shown


def test_a_global_option_after_python_says_where_it_goes(ws):
    (ws.root / "hello.py").write_text("print('hello')\n")
    first = one_line(ws.cli("python", "--no-progress", "hello.py", check=False), 2)
    assert "polyvenv's own go before `python`" in first
    assert ws.cli("--no-progress", "python", "hello.py").stdout == "hello\n"


def _on_a_terminal(argv: list[str], cwd, env: dict[str, str]) -> str:
    """What `polyvenv ARGV` writes to a terminal (a real pty), until it exits."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: polyvenv with the pty as its terminal
        os.chdir(cwd)
        os.execve(sys.executable, [sys.executable, "-m", "polyvenv", *argv], env)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child exited and closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out.decode(errors="replace")
    return out.decode(errors="replace")


def test_a_long_build_shows_it_is_alive_on_a_terminal(workspace):
    slow = workspace.root / "slowpython"
    slow.write_text(f"#!/bin/sh\nsleep 1\nexec {sys.executable} \"$@\"\n")
    slow.chmod(0o755)
    workspace.write('[envs.a]\npython = "./slowpython"\nrequirements = ["alpha==1.0"]\n')
    shown = _on_a_terminal(["sync", "--color", "never"], workspace.root, dict(os.environ))
    assert re.search(r"building \(Python.*\d+\.\ds.*\$ uv ", shown), shown  # elapsed seconds, installer's last line
    assert "\x1b[1m" not in shown  # --color never: no bold names
    assert "1 env: 1 built" in shown


def test_create_shows_its_build_and_quiet_silences_it(tmp_path, wheelhouse):
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("alpha==1.0\n")
    sources = ["--offline", "--wheelhouse", str(wheelhouse)]
    run = Workspace(tmp_path, wheelhouse).cli
    lines = run("create", "venv", "-r", str(reqs), *sources).stderr.splitlines()
    assert lines == [f"polyvenv: venv: building {tmp_path / 'venv'}...", "polyvenv: venv: built",
                     "polyvenv: venv: created"]
    assert run("-q", "create", "venv2", "-r", str(reqs), *sources).stderr == ""


def test_color_always_colors_the_error_prefix_and_never_or_a_pipe_does_not(ws):
    for argv, env, colored in ((["--color", "always", "lsit"], {}, True),
                               (["lsit"], {"POLYVENV_COLOR": "always"}, True),
                               (["--color=never", "lsit"], {"POLYVENV_COLOR": "always"}, False),
                               (["lsit"], {}, False)):
        proc = ws.cli(*argv, check=False, env={**os.environ, **env})
        assert proc.returncode == 2
        assert proc.stderr.startswith("polyvenv: \x1b[1;31merror\x1b[0m: ") == colored, (argv, proc.stderr)
