"""Configuration: found upward, validated with one clear message per problem, exit code 2."""

from __future__ import annotations

import pytest

from polyvenv import ConfigError
from polyvenv.config import load_config


def test_pyproject_table_found_from_a_subdirectory(workspace):
    (workspace.root / "pyproject.toml").write_text(
        '[project]\nname = "app"\n[tool.polyvenv]\nenvs-dir = "envs"\n'
        '[tool.polyvenv.envs.a]\nrequirements = ["alpha==1.0"]\nsource = "src"\n'
    )
    (workspace.root / "src" / "deep").mkdir(parents=True)
    config = load_config(workspace.root / "src" / "deep")
    assert config.path == workspace.root / "pyproject.toml"
    assert config.envs_dir == workspace.root / "envs"
    assert config.envs["a"].source == workspace.root / "src"


def test_pyproject_without_polyvenv_table_is_not_a_config(workspace):
    (workspace.root / "pyproject.toml").write_text('[project]\nname = "app"\n')
    proc = workspace.cli("list", check=False)
    assert proc.returncode == 2
    assert "no polyvenv.toml" in proc.stderr.splitlines()[0]


def test_config_option_points_at_a_file_elsewhere(workspace, tmp_path):
    path = workspace.write('[envs.a]\nrequirements = ["alpha==1.0"]\n', filename="other.toml")
    proc = workspace.cli("--config", str(path), "list", "--json", cwd=tmp_path)
    assert '"name": "a"' in proc.stdout


@pytest.mark.parametrize("body, expected", [
    ('envs-dri = "x"\n', ["unknown key 'envs-dri'", "did you mean 'envs-dir'"]),
    ('offline = "yes"\n', ["offline: expected true or false, got str"]),
    ('[envs.a]\nrequirement = ["x"]\n', ["[envs.a]", "unknown key 'requirement'", "did you mean 'requirements'"]),
    ('[envs.a]\nrequirements = "alpha"\n', ["[envs.a]", "requirements: expected a list of strings"]),
    ('[envs."../x"]\nrequirements = []\n', ["'../x' is not a plain name"]),
    ('[envs.".hidden"]\nrequirements = []\n', ["'.hidden' is not a plain name"]),
    ('[envs."a/b"]\nrequirements = []\n', ["'a/b' is not a plain name"]),
    ('[envs.""]\nrequirements = []\n', ["'' is not a plain name"]),
    ('[envs.a]\nrequirements = ["jinja2 >>= 3"]\n', ["'jinja2 >>= 3' is not a valid PEP 508 requirement"]),
    ('[envs.a]\nrequirements-file = "nope.txt"\n', ["requirements-file:", "nope.txt does not exist"]),
    ('[envs.a]\nisolation = "thread"\n', ["isolation: must be one of namespace, process"]),
    ('[envs.a]\npython = "3.99"\n', ["[envs.a] python = '3.99': no CPython 3.99 found"]),
    ('[envs.a]\npython = "./no/such/python"\n', ["is not an executable file"]),
    ('[envs.a\n', ["not valid TOML"]),
])
def test_bad_config_gives_one_clear_line_and_exit_2(workspace, body, expected):
    path = workspace.write(body, offline=False)
    proc = workspace.cli("sync", check=False)
    assert proc.returncode == 2, proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"polyvenv: error: {path}") or first.startswith("polyvenv: error: env")
    for fragment in expected:
        assert fragment in proc.stderr, (fragment, proc.stderr)


def test_every_problem_is_reported_at_once(workspace):
    workspace.write('colour = 1\n[envs.a]\nrequirements = "x"\n[envs.b]\nisolation = 3\n', offline=False)
    with pytest.raises(ConfigError) as info:
        load_config(workspace.root)
    assert len(info.value.problems) == 3
    proc = workspace.cli("sync", check=False)
    assert proc.stderr.count("polyvenv: error:") == 3


def test_valid_requirements_of_every_shape_pass(workspace):
    workspace.write('[envs.a]\nrequirements = ["a==1", "b[x,y]>=1,<2", "c ; python_version >= \'3\'", '
                    '"d @ https://example.com/d.whl", "e~=1.4", "f==1.*", "g!=2"]\n', offline=False)
    assert len(load_config(workspace.root).envs["a"].requirements) == 7


def test_unknown_env_name_suggests_the_nearest(workspace):
    workspace.write('[envs.render_old]\nrequirements = []\n')
    proc = workspace.cli("sync", "render_od", check=False)
    assert proc.returncode == 2
    assert "no env named 'render_od'" in proc.stderr and "did you mean 'render_old'" in proc.stderr
