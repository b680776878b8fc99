"""Real compiled distributions from PyPI, two versions side by side in one process (issue 4, so far)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
SRC = Path(__file__).parent.parent / "src"


def build(root: Path, envs: dict[str, list[str]]) -> Path:
    project = root / "project"
    project.mkdir()
    body = "".join(f"[envs.{name}]\nrequirements = {json.dumps(reqs)}\n" for name, reqs in envs.items())
    (project / "polyvenv.toml").write_text(body)
    proc = subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=project, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return project


def host(project: Path, body: str):
    code = (f"import sys, json\nsys.path.insert(0, {str(SRC)!r})\nimport polyvenv\n"
            f"ws = polyvenv.Workspace.load({str(project)!r})\n" + textwrap.dedent(body)
            + "\nprint(json.dumps(result))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_markupsafe_pyyaml_msgpack_with_their_c_code_side_by_side(tmp_path):
    project = build(tmp_path, {
        "a": ["markupsafe==2.1.5", "pyyaml==6.0.1", "msgpack==1.0.8"],
        "b": ["markupsafe>=3,<4", "pyyaml==6.0.2", "msgpack>=1.1,<1.2"],
    })
    result = host(project, """
        result = {}
        for name in ("a", "b"):
            env = ws.env(name)
            ms, yaml, msgpack = (env.import_module(m) for m in ("markupsafe", "yaml", "msgpack"))
            speedups = env.import_module("markupsafe._speedups")
            result[name] = {
                "markupsafe": [env.version("markupsafe"), type(ms.escape("<")) is ms.Markup,
                               str(ms.escape("<b>")), speedups.__name__.split(".")[0] == ms.__name__],
                "yaml": [yaml.__version__, yaml.__with_libyaml__,
                         yaml.load(yaml.dump({"a": [1, 2.5, None]}, Dumper=yaml.CDumper), Loader=yaml.CLoader),
                         yaml.CLoader.__module__.split(".")[0] == yaml.__name__],
                "msgpack": [list(msgpack.version), msgpack.unpackb(msgpack.packb({"k": [1, "x"]})),
                            msgpack.Packer.__module__, msgpack.Packer.__module__.startswith(msgpack.__name__)],
            }
        result["distinct"] = ws.env("a").import_module("markupsafe").Markup is not ws.env("b").import_module("markupsafe").Markup
    """)
    a, b = result["a"], result["b"]
    assert a["markupsafe"] == ["2.1.5", True, "&lt;b&gt;", True]
    assert b["markupsafe"][0].startswith("3.") and b["markupsafe"][1:] == [True, "&lt;b&gt;", True]
    assert a["yaml"] == ["6.0.1", True, {"a": [1, 2.5, None]}, True]
    assert b["yaml"] == ["6.0.2", True, {"a": [1, 2.5, None]}, True]
    assert a["msgpack"][:2] == [[1, 0, 8], {"k": [1, "x"]}] and a["msgpack"][3] is True
    assert b["msgpack"][0][:2] == [1, 1] and b["msgpack"][1] == {"k": [1, "x"]} and b["msgpack"][3] is True
    assert a["msgpack"][2].endswith("._cmsgpack") and a["msgpack"][2] != b["msgpack"][2]
    assert result["distinct"] is True


def test_numpy_1_26_in_an_env_with_its_own_errors_from_c(tmp_path):
    project = build(tmp_path, {"np": ["numpy==1.26.4"]})
    result = host(project, """
        import pickle
        np = ws.env("np").import_module("numpy")
        try:
            np.add(np.ones(2), "x")
            error = None
        except Exception as e:
            error = [type(e).__module__.split(".")[0] == np.__name__, type(e).__name__]
        try:
            np.empty((1 << 22, 1 << 22))  # 128 TiB: refused by the allocator, raised from C
            memory = None
        except MemoryError as e:
            memory = type(e).__module__.split(".")[0] == np.__name__
        a = np.arange(6).reshape(2, 3)
        result = {
            "version": np.__version__, "sum": int(np.arange(10).sum()), "repr": repr(np.float64(0.1)),
            "error": error, "memory": memory, "linalg": round(float(np.linalg.det(np.eye(3) * 2)), 9),
            "fft": float(abs(np.fft.fft(np.ones(4))[0])), "random": int(np.random.default_rng(1).integers(100)),
            "pickle": bool((pickle.loads(pickle.dumps(a)) == a).all()), "datetime": str(np.datetime64("2020-01-31") + 1),
            "host_has_real_numpy_only_if_it_imported_it": "numpy" in sys.modules,
        }
    """)
    assert result == {
        "version": "1.26.4", "sum": 45, "repr": "0.1", "error": [True, "UFuncTypeError"], "memory": True,
        "linalg": 8.0, "fft": 4.0, "random": result["random"], "pickle": True, "datetime": "2020-02-01",
        "host_has_real_numpy_only_if_it_imported_it": False,
    }
