"""`polyvenv import-map`: the top-level names each env provides, and conflicts."""

from __future__ import annotations

import json


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
