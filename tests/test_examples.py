"""The examples of the seed scenarios work for real (copied to a temporary directory first)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).parent.parent / "examples"


def _copy(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns(".polyvenv", "__pycache__"))
    return target


def _run(argv, cwd) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_plugin_host_three_jinja2_versions(tmp_path):
    example = _copy("plugin-host", tmp_path)
    out = _run([sys.executable, str(example / "host.py")], example)
    assert "alpha: Alpha says hello to world with jinja2 2.10.3" in out
    assert "beta: Beta says hello to world with jinja2 2.11.3" in out
    assert "gamma: Gamma says hello to world with jinja2 3.1." in out
    assert "evalcontextfilter: True" in out and "evalcontextfilter: False" in out
    assert "host: jinja2 in sys.modules: False" in out


def test_app_whose_dependencies_conflict(tmp_path):
    example = _copy("conflicting-deps", tmp_path)
    out = _run([sys.executable, "-m", "polyvenv", "python", "app.py"], example)
    assert out.splitlines() == ["dep_a uses pandas 2.2.3: ['low', 'mid', 'high']",
                                "dep_b uses pandas 2.0.3 on numpy 1.26.4: {'a': 5.0, 'b': 2.0}"]


def test_addon_host_reloads_installs_and_uninstalls_add_ons_while_a_thread_calls_them(tmp_path):
    example = _copy("addon-host", tmp_path)
    out = _run([sys.executable, str(example / "host.py")], example)
    lines = [line for line in out.splitlines() if not line.startswith("  [")]  # the host's progress lines
    assert lines[:3] == ["add-ons: greeter, shouter", "greeter: greeter add-on on jinja2 2.11.3", lines[2]]
    assert lines[2].startswith("shouter: SHOUTER ADD-ON ON JINJA2 3.1.")
    assert lines[3:8] == [  # the watch: an edited file reloaded, a folder dropped in installed, one taken out
        "reloaded greeter_addon; greeter: edited greeter add-on on jinja2 2.11.3",
        "dropping counter in:",
        "installed counter: counter add-on escapes &lt;b&gt; with markupsafe 2.1.5",
        "uninstalled shouter: removed (0 shims)",
        "new requirements for greeter:",
    ]
    head, _, greeting = lines[8].partition("; ")  # the host's sync, then env.reload()
    assert sorted(head.removeprefix("reloaded ").split(", ")) == ["greeter_addon", "jinja2", "markupsafe"]
    assert greeting.startswith("greeter: edited greeter add-on on jinja2 3.1.")
    assert lines[9:] == ["the thread called the add-ons many times, 0 failed",
                         "old greeter collected: True, shouter modules left: 0, add-ons now: counter, greeter"]
    assert "  [counter] building" in out and "  [greeter] built in " in out  # progress from the host's callback
    assert sorted(p.name for p in example.iterdir()) == ["addons", "host.py", "incoming"]  # it changed nothing here


def test_the_readme_demo(tmp_path):
    """`scripts/demo`'s job: two jinja2 and two numpy side by side in one process, one numpy in a worker."""
    example = tmp_path / "examples"
    for name in ("two-jinjas", "two-numpys"):
        _copy(name, example)
    shutil.copy(EXAMPLES / "demo.py", example / "demo.py")
    out = _run([sys.executable, str(example / "demo.py")], example)
    assert "[render_old] jinja2 2.11.3" in out and "[render_new] jinja2 3.1." in out
    assert out.count("&lt;b&gt;&amp;&lt;/b&gt;") == 2  # both escape with their own markupsafe
    assert "[numpy_1] numpy 1.26.4 (in this process): a @ a.T = [[5.0, 14.0], [14.0, 50.0]], det = 8.0" in out
    assert "[numpy_2] numpy 2.2.6 (in this process)" in out and "repr(np.float64(0.5)) = np.float64(0.5)" in out
    own = re.search(r"\[numpy_1\]   np\.add\(np\.ones\(2\), 'x'\) raised (\w+)\.core\._exceptions\.UFuncTypeError", out)
    assert own and own[1] != "numpy" and len(own[1]) == 5, out  # its own class, under the env's alias of numpy
    worker = [line for line in out.splitlines() if line.startswith("  [numpy_1_worker] numpy 1.26.4 (worker pid ")]
    assert worker and worker[0].endswith("det = 8.0, repr(np.float64(0.5)) = 0.5")
    assert "[numpy_1_worker]   np.add(np.ones(2), 'x') raised " in out
