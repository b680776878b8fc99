"""Real PyPI packages whose plugin systems resolve names through the standard library, in an env.

markdown loads its extensions, pluggy its plugins and a console script its function
through ``importlib.metadata`` entry points; sqlalchemy 1.4 imports its own modules
through ``getattr(builtins, "__import__")``; ``importlib_metadata`` (the backport) and
``pkg_resources`` discover distributions on ``sys.path`` (the env's own, runtime/envsys.py) and load
entry points through the env's imports. The host's ``sys.path``
has a copy of each package name that raises when imported: a resolver that resolved
on the host fails loudly, and leaves a module of the real name in ``sys.modules``,
which is asserted absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wheelgen import make_wheel

pytestmark = pytest.mark.integration

SRC = Path(__file__).parent.parent / "src"
NAMES = ("markdown", "sqlalchemy", "pluggy", "plugdemo", "importlib_metadata", "pkg_resources")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resolvers-pypi")
    make_wheel(root / "wheels", "plugdemo", "1.0", {
        "plugdemo/__init__.py": "",
        "plugdemo/hooks.py": "import pluggy\n\n@pluggy.HookimplMarker('plugdemo')\ndef where():\n    return 'env-hook'\n",
        "plugdemo/mdext.py": ("from markdown.extensions import Extension\n\nclass Ext(Extension):\n"
                              "    def extendMarkdown(self, md):\n        md.plugdemo = 'env-ext'\n"),
        "plugdemo/cli.py": "def main():\n    return 'env-cli'\n",
    }, entry_points={"plugdemo": {"hooks": "plugdemo.hooks"}, "markdown.extensions": {"plugdemo": "plugdemo.mdext:Ext"}},
        scripts={"plugdemo": "plugdemo.cli:main"})
    (root / "polyvenv.toml").write_text(textwrap.dedent("""
        wheelhouse = "wheels"
        [envs.plugins]
        requirements = ["markdown==3.5.2", "sqlalchemy==1.4.52", "pluggy==1.5.0", "plugdemo==1.0",
                        "importlib_metadata==7.1.0", "setuptools==69.5.1"]
    """))
    proc = subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for name in NAMES:
        (root / "host" / name).mkdir(parents=True)
        (root / "host" / name / "__init__.py").write_text(f"raise ImportError('the host copy of {name} was imported')\n")
    return root


def run(project: Path, body: str):
    code = (f"import sys, json, warnings\nsys.path[:0] = [{str(SRC)!r}, {str(project / 'host')!r}]\n"
            f"import polyvenv\nenv = polyvenv.Workspace.load({str(project)!r}).env('plugins')\n"
            f"BUILT = {str(project / '.polyvenv')!r}\n"
            + textwrap.dedent(body)
            + f"\nhost = sorted(k for k in sys.modules if k.partition('.')[0] in {NAMES!r})\n"
            "print(json.dumps([result, host]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result, host_modules = json.loads(proc.stdout.strip().splitlines()[-1])
    assert host_modules == [], f"the host's copies were imported: {host_modules}"
    return result


def test_markdown_loads_its_extensions_from_the_env(project):
    result = run(project, """
        md = env.import_module("markdown").Markdown(extensions=["toc", "plugdemo"])
        result = [md.convert("# T"), md.plugdemo]
    """)
    assert result == ['<h1 id="t">T</h1>', "env-ext"]


def test_pluggy_loads_entry_point_plugins_and_a_console_script_loads_from_the_env(project):
    result = run(project, """
        pluggy = env.import_module("pluggy")
        pm = pluggy.PluginManager("plugdemo")
        class Spec:
            @pluggy.HookspecMarker("plugdemo")
            def where(self): ...
        pm.add_hookspecs(Spec)
        loaded = pm.load_setuptools_entrypoints("plugdemo")
        result = [loaded, pm.hook.where(), env.entry_points(group="console_scripts")["plugdemo"].load()()]
    """)
    assert result == [1, ["env-hook"], "env-cli"]


def test_sqlalchemy_1_imports_through_builtins_import_into_the_env(project):
    result = run(project, """
        sa = env.import_module("sqlalchemy")
        orm = env.import_module("sqlalchemy.orm")
        Base = orm.declarative_base()
        class User(Base):
            __tablename__ = "users"
            id = sa.Column(sa.Integer, primary_key=True)
        engine = sa.create_engine("sqlite://")
        Base.metadata.create_all(engine)
        with orm.Session(engine) as session:
            session.add(User())
            session.commit()
            result = [sa.__version__, session.query(User).count(), sa.__file__.startswith(BUILT)]
    """)
    assert result == ["1.4.52", 1, True]


def test_the_importlib_metadata_backport_finds_and_loads_the_envs_distributions(project):
    result = run(project, """
        im = env.import_module("importlib_metadata")
        eps = im.entry_points(group="plugdemo")
        result = [sorted(eps.names), [ep.load().where() for ep in eps], im.version("plugdemo")]
    """)
    assert result == [["hooks"], ["env-hook"], "1.0"]


def test_pkg_resources_finds_and_loads_the_envs_distributions(project):
    result = run(project, """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pr = env.import_module("pkg_resources")
        result = [[ep.load().where() for ep in pr.iter_entry_points("plugdemo")], str(pr.require("plugdemo")[0]),
                  pr.resource_filename("plugdemo", "hooks.py").startswith(BUILT),
                  "plugdemo" in {d.project_name for d in pr.working_set}]
    """)
    assert result == [["env-hook"], "plugdemo 1.0", True, True]
