"""`polyvenv import-map`: the top-level names each env provides, and conflicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from polyvenv.runtime.names import preferred


def test_names_from_provides_and_from_source(workspace):
    src = workspace.root / "plugins" / "old"
    (src / "render_old").mkdir(parents=True)
    (src / "render_old" / "__init__.py").write_text("")
    (src / "helpers.py").write_text("")
    (src / "setup.py").write_text("")
    workspace.write("""
        [envs.old]
        source = "plugins/old"
        [envs.dep]
        provides = ["dep_a"]
    """)
    proc = workspace.cli("import-map", "--json")
    assert json.loads(proc.stdout) == {"dep_a": ["dep"], "helpers": ["old"], "render_old": ["old"]}


def test_two_envs_providing_one_name_is_reported(workspace):
    workspace.write("""
        [envs.a]
        provides = ["shared_name"]
        [envs.b]
        provides = ["shared_name", "b_only"]
    """)
    proc = workspace.cli("import-map", check=False)
    assert proc.returncode == 2
    assert "'shared_name' is provided by several envs: a, b" in proc.stderr
    assert "b_only" in proc.stdout


def _app_with_two_deps(workspace, tmp_path):
    """Seed 001: an app whose two dependencies pin conflicting versions of one library."""
    import sys as _sys
    _sys.path.insert(0, str(Path(__file__).parent))
    from wheelgen import demo_wheel

    wh = tmp_path / "demo-wheels"
    demo_wheel(wh, "1.0")
    demo_wheel(wh, "2.0")
    for dep, version in (("dep_a", "1.0"), ("dep_b", "2.0")):
        pkg = workspace.root / "components" / dep / dep
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(
            "import demo\nfrom demo import api\n"
            "def describe():\n    return demo.__version__, api.dynamic(), __name__\n"
        )
    workspace.write(f"""
        wheelhouse = "{wh}"
        offline = true
        [envs.dep_a]
        requirements = ["demo==1.0"]
        source = "components/dep_a"
        [envs.dep_b]
        requirements = ["demo==2.0"]
        source = "components/dep_b"
    """, offline=False)
    (workspace.root / "app.py").write_text(
        "import sys, dep_a, dep_b\n"
        "import dep_a as again\n"
        "print(dep_a.describe(), dep_b.describe(), again is dep_a, sys.argv[1:])\n"
    )


def test_polyvenv_python_runs_an_app_whose_deps_conflict(workspace, tmp_path):
    _app_with_two_deps(workspace, tmp_path)
    proc = workspace.cli("python", "app.py", "x")
    # inside, each package runs under its env's alias of its name: the same in every process (sync warmed it)
    alias_a, alias_b = preferred("dep_a", "dep_a"), preferred("dep_b", "dep_b")
    assert proc.stdout.strip() == f"('1.0', 'dyn-1.0', {alias_a!r}) ('2.0', 'dyn-2.0', {alias_b!r}) True ['x']"


def test_polyvenv_python_dash_c_and_a_missing_script(workspace, tmp_path):
    _app_with_two_deps(workspace, tmp_path)
    proc = workspace.cli("python", "-c", "import dep_b, sys; print(dep_b.describe()[0], sys.argv)", "x")
    assert proc.stdout.strip() == "2.0 ['-c', 'x']"
    proc = workspace.cli("python", "nosuch.py", check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("polyvenv: error: cannot run nosuch.py")


def test_install_import_map_from_python(workspace, tmp_path):
    _app_with_two_deps(workspace, tmp_path)
    workspace.cli("sync")
    code = (
        "import sys, polyvenv\n"
        f"ws = polyvenv.Workspace.load({str(workspace.root)!r})\n"
        "polyvenv.install_import_map(ws)\n"
        "import dep_a, dep_b\n"
        "print(dep_a.describe()[0], dep_b.describe()[0], 'demo' in sys.modules)\n"
        "ws.env('dep_a').unload()\n"
        "print('dep_a' in sys.modules)\n"
        "import dep_a\n"
        "print(dep_a.describe()[0])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1.0", "2.0", "False", "False", "1.0"]


def test_install_import_map_refuses_conflicts(workspace):
    workspace.write("""
        [envs.a]
        provides = ["same"]
        [envs.b]
        provides = ["same"]
    """)
    code = (
        "import polyvenv\n"
        f"ws = polyvenv.Workspace.load({str(workspace.root)!r})\n"
        "try:\n    polyvenv.install_import_map(ws)\nexcept polyvenv.ConfigError as e:\n    print(e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "'same' is provided by several envs: a, b" in proc.stdout
