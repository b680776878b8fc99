"""Command shims and per-module discovery (seed 003)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess


def test_console_script_shim_runs_with_the_envs_packages(workspace):
    workspace.write("""
        bin-dir = "bin"
        [envs.tools]
        requirements = ["greeter"]
        scripts = ["*"]
    """)
    workspace.cli("sync")
    shim = workspace.root / "bin" / "greet"
    assert shim.is_symlink()
    assert subprocess.run([str(shim)], capture_output=True, text=True, check=True).stdout.strip() == "greeter 1.0"
    # a rebuild keeps the shim working: it points through the env's stable link
    workspace.write("""
        bin-dir = "bin"
        [envs.tools]
        requirements = ["greeter", "alpha==1.0"]
        scripts = ["*"]
    """)
    workspace.cli("sync")
    assert subprocess.run([str(shim)], capture_output=True, text=True, check=True).stdout.strip() == "greeter 1.0"


def test_two_envs_exporting_one_command_is_an_error_naming_both(workspace):
    workspace.write("""
        bin-dir = "bin"
        [envs.one]
        requirements = ["greeter"]
        scripts = ["greet"]
        [envs.two]
        requirements = ["othergreeter"]
        scripts = ["gr*"]
    """)
    proc = workspace.cli("sync", check=False)
    assert proc.returncode == 1
    line = [l for l in proc.stderr.splitlines() if l.startswith("polyvenv: error:")][0]
    assert "'greet'" in line and "'one'" in line and "'two'" in line


def test_a_file_polyvenv_did_not_make_is_never_replaced(workspace):
    workspace.write("""
        bin-dir = "bin"
        [envs.tools]
        requirements = ["greeter"]
        scripts = ["*"]
    """)
    (workspace.root / "bin").mkdir()
    (workspace.root / "bin" / "greet").write_text("mine")
    proc = workspace.cli("sync", check=False)
    assert proc.returncode == 1
    assert "was not made by polyvenv" in proc.stderr
    assert (workspace.root / "bin" / "greet").read_text() == "mine"


def test_shims_go_with_their_env(workspace):
    workspace.write("""
        bin-dir = "bin"
        [envs.tools]
        requirements = ["greeter"]
        scripts = ["*"]
    """)
    workspace.cli("sync")
    workspace.cli("remove", "tools")
    assert not (workspace.root / "bin" / "greet").exists()
    assert json.loads((workspace.root / "bin" / ".polyvenv-shims.json").read_text()) == {}


def _module(root, name, requirement, script):
    module = root / name
    (module / "bin").mkdir(parents=True)
    (module / "requirements.txt").write_text(requirement + "\n")
    tool = module / "bin" / script
    tool.write_text("#!/usr/bin/env python3\nimport alpha, sys\nprint(sys.argv[1:], alpha.__version__)\n")
    tool.chmod(0o755)
    (module / "bin" / "README").write_text("not a script")


def test_discover_makes_one_env_per_module_with_script_shims(workspace):
    modules = workspace.root / "modules"
    _module(modules, "mod_a", "alpha==1.0", "atool")
    _module(modules, "mod_b", "alpha==2.0", "btool")
    (modules / "empty").mkdir()
    proc = workspace.cli("sync", "--discover", "modules", "--bin-dir", "bin",
                         "--offline", "--wheelhouse", str(workspace.wheelhouse))
    assert "2 built" in proc.stderr
    out = subprocess.run([str(workspace.root / "bin" / "atool"), "x"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['x'] 1.0"
    out = subprocess.run([str(workspace.root / "bin" / "btool")], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] 2.0"
    assert not (workspace.root / "bin" / "README").exists()
    # later commands remember the discovered modules
    (workspace.root / "polyvenv.toml").write_text("")
    status = workspace.status()
    assert {n: s["state"] for n, s in status.items()} == {"mod_a": "ok", "mod_b": "ok"}


def test_discover_with_a_pattern(workspace):
    modules = workspace.root / "home"
    (modules / "m1" / "dh").mkdir(parents=True)
    (modules / "m1" / "dh" / "requirements.txt").write_text("alpha==1.0\n")
    workspace.write("""
        [discover]
        dir = "home"
        pattern = "*/dh/requirements.txt"
    """)
    workspace.cli("sync")
    assert workspace.run_in("m1", "import alpha; print(alpha.__version__)") == "1.0"


def test_a_discovery_without_a_config_file_is_remembered_with_its_bin_dir(workspace):
    """`sync --discover DIR --bin-dir B` in a directory with no config: later commands see the
    discovered envs, and gc removes the shims of a module that is gone (it knows B)."""
    for name in ("m1", "m2"):
        module = workspace.root / "modules" / name
        (module / "bin").mkdir(parents=True)
        (module / "requirements.txt").write_text("alpha==1.0\n")
        (module / "bin" / f"{name}-tool").write_text("#!/usr/bin/env python\nimport alpha; print(alpha.__version__)\n")
    workspace.cli("sync", "--discover", "modules", "--bin-dir", "bin", "--offline",
                  "--wheelhouse", str(workspace.wheelhouse))
    assert not (workspace.root / "polyvenv.toml").exists()
    assert set(workspace.status()) == {"m1", "m2"}  # no "no polyvenv.toml" any more
    assert subprocess.run([workspace.root / "bin" / "m2-tool"], capture_output=True, text=True).stdout == "1.0\n"
    subdir = workspace.root / "modules" / "m1"
    assert "m1" in workspace.cli("list", cwd=subdir).stdout  # found from below, as a config file would be
    shutil.rmtree(workspace.root / "modules" / "m2")
    workspace.cli("gc")
    assert not os.path.lexists(workspace.root / "bin" / "m2-tool")
    assert os.path.lexists(workspace.root / "bin" / "m1-tool")
