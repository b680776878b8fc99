"""Real PyPI packages, two (or three) versions loaded side by side and used in ONE host process.

Each workspace is built online (no wheelhouse) from a polyvenv.toml in a
temporary directory; every check then runs host code in a fresh interpreter
(a real subprocess, as in test_runtime.py) that loads the envs with
``polyvenv.Workspace`` and prints its findings as JSON. What is asserted is
what a user of each library would see in a venv of its own: the library's
own version, its real behaviour, its own dependencies, and the host's
modules untouched.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SRC = Path(__file__).parent.parent / "src"


def make_project(root: Path, toml: str, files: dict[str, str] | None = None) -> Path:
    """A workspace at ``root``: its polyvenv.toml, the envs' ``source`` files, built by `polyvenv sync`."""
    for relative, text in (files or {}).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    (root / "polyvenv.toml").write_text(textwrap.dedent(toml))
    proc = subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, f"polyvenv sync failed:\n{proc.stdout}\n{proc.stderr}"
    return root


# Host code that every check starts with: what the host has of its own before any env is loaded
# (``HOST_NAMES``), checked again at the end by ``host_untouched()``.
PRELUDE = """
import sys, json, importlib, importlib.util, warnings
sys.path[:0] = [{src!r}]
HOST_NAMES = {host_names!r}
HOST_SPECS = {{n: importlib.util.find_spec(n) for n in HOST_NAMES}}
HOST_MODULES = {{n: importlib.import_module(n) for n, s in HOST_SPECS.items() if s is not None}}
import polyvenv
ws = polyvenv.Workspace.load({project!r})

def host_untouched():
    '''Per name: "absent" (the host has none, and still none), "own" (the host's module is still the
    one it had before any env was loaded), else what went wrong.'''
    out = {{}}
    for n in HOST_NAMES:
        if HOST_SPECS[n] is None:
            leaked = n in sys.modules or importlib.util.find_spec(n) is not None
            out[n] = f"leaked: {{sys.modules.get(n)!r}}" if leaked else "absent"
        else:
            again = importlib.import_module(n)
            same = (again is HOST_MODULES[n] and sys.modules[n] is HOST_MODULES[n]
                    and getattr(again, "__file__", None) == HOST_SPECS[n].origin)
            out[n] = "own" if same else f"replaced: {{again!r}}"
    return out

def outcome(function):
    '''A check's value, or its exception as "Type: message" (so every check still reports).'''
    try:
        return function()
    except Exception as error:
        return f"{{type(error).__name__}}: {{error}}"
"""


def run_host(project: Path, body: str, host_names: tuple[str, ...] = ()) -> dict:
    """Run ``body`` in a fresh host interpreter; it sets ``result``, which comes back as JSON."""
    code = (PRELUDE.format(src=str(SRC), host_names=tuple(host_names), project=str(project))
            + textwrap.dedent(body) + "\nprint(json.dumps(result))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=project)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_host_untouched(report: dict, names: tuple[str, ...]) -> None:
    """The host's own modules of these names (if it has any) stayed its own; none leaked in from an env."""
    assert sorted(report) == sorted(names)
    assert all(state in ("absent", "own") for state in report.values()), report


def distinct_aliases(names: list[str], real: str) -> None:
    """Each env's module has its own same-length alias of ``real``, none the real name itself."""
    assert len(set(names)) == len(names), names
    assert all(len(n) == len(real) and n != real for n in names), names


# --------------------------------------------------------------------------------------------------
# 1. jinja2 2.10.3, 2.11.3 and 3.1.x rendering the same templates
# --------------------------------------------------------------------------------------------------

JINJA_ENVS = ("j210", "j211", "j31")

TEMPLATES = {
    "base.html": "<title>{% block title %}Site{% endblock %}</title>"
                 "<main>{% block body %}{% endblock %}</main><footer>{% block footer %}base{% endblock %}</footer>",
    "macros.html": "{% macro item(x, n) %}<li class=\"i{{ n }}\">{{ x }}</li>{% endmacro %}",
    "page.html": (
        '{% extends "base.html" %}{% import "macros.html" as m %}'
        "{% block title %}{{ title|upper }} - {{ super() }}{% endblock %}"
        "{% block body %}<ul>{% for x in items %}{% if x == 'stop' %}{% break %}{% endif %}"
        "{{ m.item(x, loop.index) }}{% endfor %}</ul>"
        "<p>{{ user }}|{{ user|shout }}|{{ items|join(', ') }}|{{ trusted|safe }}|{{ total|round(1) }}</p>"
        "{% endblock %}"
        "{% block footer %}{% filter lower %}{{ 'ITEMS' }}: {{ items|length }}{% endfilter %}{% endblock %}"
    ),
}

RENDERED = (
    "<title>HELLO &amp; BYE - Site</title>"
    '<main><ul><li class="i1">a</li><li class="i2">&lt;b&gt;</li></ul>'
    "<p>&lt;script&gt;|&lt;SCRIPT&gt;!|a, &lt;b&gt;, stop, c|<em>ok</em>|3.1</p></main>"
    "<footer>items: 4</footer>"
)


@pytest.fixture(scope="module")
def jinja_project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("jinja"), """
        [envs.j210]
        requirements = ["jinja2==2.10.3", "markupsafe==2.0.1"]
        [envs.j211]
        requirements = ["jinja2==2.11.3", "markupsafe==2.0.1"]
        [envs.j31]
        requirements = ["jinja2>=3.1,<3.2"]
    """)


def test_three_jinja2_versions_render_the_same_templates_side_by_side(jinja_project):
    result = run_host(jinja_project, f"""
        TEMPLATES = {TEMPLATES!r}
        result = {{}}
        modules = []
        for name in {JINJA_ENVS!r}:
            env = ws.env(name)
            jinja2 = env.import_module("jinja2")
            markupsafe = env.import_module("markupsafe")
            modules.append((jinja2, markupsafe, jinja2.Environment, markupsafe.Markup))
            jenv = jinja2.Environment(loader=jinja2.DictLoader(TEMPLATES), autoescape=True,
                                      extensions=["jinja2.ext.loopcontrols"])
            jenv.filters["shout"] = lambda s: s.upper() + "!"
            page = jenv.get_template("page.html")
            rendered = page.render(title="hello & bye", items=["a", "<b>", "stop", "c"], user="<script>",
                                   trusted=markupsafe.Markup("<em>ok</em>"), total=3.14159)
            escaped = jenv.filters["e"]("<i>")
            result[name] = {{
                "alias": jinja2.__name__,
                "version": jinja2.__version__,
                "dist_version": env.version("jinja2"),
                "markupsafe_version": env.version("markupsafe"),
                "rendered": rendered,
                "escaped": [str(escaped), type(escaped) is markupsafe.Markup],
                "expression": jenv.compile_expression("x * 2 + y")(x=20, y=2),
                "from_string": jenv.from_string("{{{{ a }}}}{{{{ b|e }}}}").render(a="<x>", b="&"),
                "sandboxed": outcome(lambda: env.import_module("jinja2.sandbox").SandboxedEnvironment()
                                     .from_string("{{{{ 1 + 2 }}}}").render()),
                "identifier_kept": "jinja2._identifier" in env.loaded,
                "environment_module": type(jenv).__module__.split(".")[0] == jinja2.__name__,
            }}
        result["distinct"] = [len({{id(x) for x in column}}) for column in zip(*modules)]
        result["host"] = host_untouched()
    """, host_names=("jinja2", "markupsafe"))

    distinct_aliases([result[n]["alias"] for n in JINJA_ENVS], "jinja2")
    # jinja2 and its Environment: one per env; markupsafe and Markup: j210 and j211 pin the same 2.0.1 and
    # share it (one copy, the same objects), j31 has its own
    assert result["distinct"] == [3, 2, 3, 2]
    for name in JINJA_ENVS:
        got = result[name]
        assert got["version"] == got["dist_version"]
        assert got["rendered"] == RENDERED, name
        assert got["escaped"] == ["&lt;i&gt;", True]
        assert got["expression"] == 42
        assert got["from_string"] == "&lt;x&gt;&amp;"
        assert got["sandboxed"] == "3"
        assert got["environment_module"] is True
    assert [result[n]["version"] for n in ("j210", "j211")] == ["2.10.3", "2.11.3"]
    assert result["j31"]["version"].startswith("3.1.")
    assert [result[n]["markupsafe_version"] for n in ("j210", "j211")] == ["2.0.1", "2.0.1"]
    assert int(result["j31"]["markupsafe_version"].split(".")[0]) >= 2
    # jinja2 2.10.3's lexer deletes sys.modules['jinja2._identifier'] once used; 2.11 keeps it
    assert [result[n]["identifier_kept"] for n in ("j210", "j211")] == [False, True]
    assert_host_untouched(result["host"], ("jinja2", "markupsafe"))


def test_jinja2_env_unloaded_and_loaded_again_renders_while_the_others_stay(jinja_project):
    result = run_host(jinja_project, f"""
        TEMPLATES = {TEMPLATES!r}
        def render(env):
            jinja2 = env.import_module("jinja2")
            markupsafe = env.import_module("markupsafe")
            jenv = jinja2.Environment(loader=jinja2.DictLoader(TEMPLATES), autoescape=True,
                                      extensions=["jinja2.ext.loopcontrols"])
            jenv.filters["shout"] = lambda s: s.upper() + "!"
            return jinja2, jenv.get_template("page.html").render(
                title="hello & bye", items=["a", "<b>", "stop", "c"], user="<script>",
                trusted=markupsafe.Markup("<em>ok</em>"), total=3.14159)
        old, new = ws.env("j211"), ws.env("j31")
        first_old, _ = render(old)
        first_new, _ = render(new)
        old.unload()
        again, rendered_again = render(old)
        result = {{
            "rendered_again": rendered_again,
            "fresh_module": again is not first_old,
            "versions": [again.__version__, new.import_module("jinja2").__version__],
            "new_untouched": new.import_module("jinja2") is first_new,
            "host": host_untouched(),
        }}
    """, host_names=("jinja2",))
    assert result["rendered_again"] == RENDERED
    assert result["fresh_module"] is True and result["new_untouched"] is True
    assert result["versions"][0] == "2.11.3" and result["versions"][1].startswith("3.1.")
    assert_host_untouched(result["host"], ("jinja2",))


# --------------------------------------------------------------------------------------------------
# 2. six 1.15.0 and 1.16.0: six.moves from the host and from the env's own code
# --------------------------------------------------------------------------------------------------

SIX_USER = """
import six
from six.moves import urllib
from six.moves import range as six_range, map as six_map
from six.moves.urllib.parse import quote, urlencode
import six.moves.urllib.parse
from six.moves import configparser, queue


class Meta(type):
    def __new__(mcs, name, bases, namespace):
        namespace["tagged"] = name.lower()
        return super().__new__(mcs, name, bases, namespace)


@six.add_metaclass(Meta)
class Thing(object):
    pass


class Other(six.with_metaclass(Meta, object)):
    pass


def report():
    return {
        "version": six.__version__,
        "quote": quote("a b/\\u00fc"),
        "urlencode": urlencode([("q", "x y"), ("n", 1)]),
        "joined": urllib.parse.urljoin("http://h/a/b", "../c"),
        "same_parse": six.moves.urllib.parse is urllib.parse,
        "range": list(six_range(3)),
        "map": list(six_map(str, [1, 2])),
        "stdlib": [configparser.ConfigParser.__module__, queue.Queue.__module__],
        "meta": [Thing.tagged, Other.tagged, type(Thing).__name__],
        "ensure_str": six.ensure_str(b"caf\\xc3\\xa9"),
    }
"""


@pytest.fixture(scope="module")
def six_project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("six"), """
        [envs.six115]
        requirements = ["six==1.15.0"]
        source = "six115_src"
        [envs.six116]
        requirements = ["six==1.16.0"]
        source = "six116_src"
    """, {"six115_src/sixuser.py": SIX_USER, "six116_src/sixuser.py": SIX_USER})


def test_two_six_versions_and_their_moves_side_by_side(six_project):
    result = run_host(six_project, """
        import urllib.parse as host_parse
        result = {}
        sixes, moves = [], []
        for name in ("six115", "six116"):
            env = ws.env(name)
            six = env.import_module("six")
            urllib = env.import_module("six.moves.urllib")       # `from six.moves import urllib`
            parse = env.import_module("six.moves.urllib.parse")
            sixes.append(six)
            moves.append(six.moves)
            result[name] = {
                "alias": six.__name__,
                "version": six.__version__,
                "dist_version": env.version("six"),
                "quote": six.moves.urllib.parse.quote("a b/\\u00fc"),
                "urlencode": urllib.parse.urlencode({"q": "x y"}),
                "same_objects": [urllib.parse is six.moves.urllib.parse, parse is urllib.parse,
                                 sys.modules[six.__name__ + ".moves"] is six.moves],
                "host_functions": six.moves.urllib.parse.quote is host_parse.quote,
                "range": [list(six.moves.range(2, 5)), six.moves.range is range],
                "moves_names": [six.moves.__name__ == six.__name__ + ".moves",
                                urllib.__name__ == six.__name__ + ".moves.urllib"],
                "from_env_code": env.import_module("sixuser").report(),
            }
        result["distinct"] = [sixes[0] is not sixes[1], moves[0] is not moves[1]]
        result["host"] = host_untouched()
    """, host_names=("six",))
    distinct_aliases([result[n]["alias"] for n in ("six115", "six116")], "six")
    assert result["distinct"] == [True, True]
    for name, version in (("six115", "1.15.0"), ("six116", "1.16.0")):
        got = result[name]
        assert [got["version"], got["dist_version"]] == [version, version]
        assert got["quote"] == "a%20b/%C3%BC"
        assert got["urlencode"] == "q=x+y"
        assert got["same_objects"] == [True, True, True]
        assert got["host_functions"] is True
        assert got["range"] == [[2, 3, 4], True]
        assert got["moves_names"] == [True, True]
        assert got["from_env_code"] == {
            "version": version, "quote": "a%20b/%C3%BC", "urlencode": "q=x+y&n=1", "joined": "http://h/c",
            "same_parse": True, "range": [0, 1, 2], "map": ["1", "2"], "stdlib": ["configparser", "queue"],
            "meta": ["thing", "other", "Meta"], "ensure_str": "caf\u00e9",
        }
    assert_host_untouched(result["host"], ("six",))


# --------------------------------------------------------------------------------------------------
# 3. attrs 21.4.0 and 24.x: classes defined inside each env
# --------------------------------------------------------------------------------------------------

MODELS = """
from __future__ import annotations

import typing

import attr
import attrs


@attr.s(frozen=True)
class Point:
    x = attr.ib(validator=attr.validators.instance_of(int))
    y = attr.ib(default=0, converter=int)


@attrs.define
class Box:
    name: str = attrs.field(validator=attrs.validators.instance_of(str))
    points: typing.List[Point] = attrs.Factory(list)
    tags: typing.Dict[str, int] = attrs.Factory(dict)


def run(code: str) -> dict:
    '''Execute ``code`` as this env's own code (its imports are the env's), return its namespace.'''
    namespace = {"__name__": __name__}
    exec(code, namespace)
    return namespace
"""

EXECUTED = """
import attr, attrs

@attrs.define(frozen=True)
class Money:
    amount: int = attrs.field(validator=attrs.validators.ge(0))
    currency: str = "EUR"

    def doubled(self):
        return attrs.evolve(self, amount=self.amount * 2)

HAS_MIN_LEN = hasattr(attrs.validators, "min_len")
if HAS_MIN_LEN:  # attrs >= 22.1
    @attrs.define
    class Named:
        name: str = attrs.field(validator=attrs.validators.min_len(1))
"""


@pytest.fixture(scope="module")
def attrs_project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("attrs"), """
        [envs.attrs21]
        requirements = ["attrs==21.4.0"]
        source = "attrs21_src"
        [envs.attrs24]
        requirements = ["attrs>=24,<25"]
        source = "attrs24_src"
    """, {"attrs21_src/models.py": MODELS, "attrs24_src/models.py": MODELS})


def test_two_attrs_versions_define_and_use_classes_side_by_side(attrs_project):
    result = run_host(attrs_project, f"""
        import pickle
        EXECUTED = {EXECUTED!r}
        result = {{}}
        objects = []
        for name in ("attrs21", "attrs24"):
            env = ws.env(name)
            attr, attrs, models = (env.import_module(n) for n in ("attr", "attrs", "models"))
            objects.append((attr, attrs, models, models.Point, attr.Attribute))
            p = models.Point(1, "2")
            q = attr.evolve(p, x=5)
            box = models.Box("b", [p, q], {{"k": 1}})
            errors = []
            try:
                models.Point("bad")
            except TypeError as error:
                errors.append(error.args[0])
            try:
                p.x = 3
            except attr.exceptions.FrozenInstanceError as error:
                errors.append(type(error).__name__)
            try:
                models.Box(42)
            except TypeError as error:
                errors.append(error.args[0])
            ns = models.run(EXECUTED)
            money = ns["Money"](3)
            try:
                ns["Money"](-1)
            except ValueError as error:
                errors.append(error.args[0])
            named = outcome(lambda: repr(ns["Named"]("x"))) if ns["HAS_MIN_LEN"] else None
            try:
                ns["Named"]("") if ns["HAS_MIN_LEN"] else None
            except ValueError as error:
                errors.append(error.args[0])
            attr.resolve_types(models.Box)
            result[name] = {{
                "alias": attr.__name__,
                "dist_version": env.version("attrs"),
                "reprs": [repr(p), repr(q), repr(money), repr(money.doubled()), named],
                "asdict": attr.asdict(box),
                "asdict_shallow": sorted(attrs.asdict(box, recurse=False)),
                "astuple": attr.astuple(q),
                "fields": [f.name for f in attrs.fields(models.Box)],
                "resolved": str(attrs.fields(models.Box).points.type).replace(models.__name__, "models"),
                "has": [attr.has(models.Box), attrs.has(ns["Money"]), attr.has(int)],
                "eq": [p == models.Point(1, 2), p != q, hash(p) == hash(models.Point(1, 2))],
                "slots": "__slots__" in vars(models.Box),
                "pickled": pickle.loads(pickle.dumps(box)) == box,
                "module": [models.Point.__module__ == models.__name__, ns["Money"].__module__ == models.__name__],
                "errors": errors,
                "has_min_len": ns["HAS_MIN_LEN"],
            }}
        result["distinct"] = [len({{id(x) for x in column}}) for column in zip(*objects)]
        result["host"] = host_untouched()
    """, host_names=("attr", "attrs"))

    distinct_aliases([result[n]["alias"] for n in ("attrs21", "attrs24")], "attr")
    assert result["distinct"] == [2, 2, 2, 2, 2]
    assert result["attrs21"]["dist_version"] == "21.4.0"
    assert result["attrs24"]["dist_version"].startswith("24.")
    for name in ("attrs21", "attrs24"):
        got = result[name]
        assert got["reprs"][:4] == ["Point(x=1, y=2)", "Point(x=5, y=2)", "Money(amount=3, currency='EUR')",
                                    "Money(amount=6, currency='EUR')"]
        assert got["asdict"] == {"name": "b", "points": [{"x": 1, "y": 2}, {"x": 5, "y": 2}], "tags": {"k": 1}}
        assert got["asdict_shallow"] == ["name", "points", "tags"]
        assert got["astuple"] == [5, 2]
        assert got["fields"] == ["name", "points", "tags"]
        assert got["resolved"] == "typing.List[models.Point]"
        assert got["has"] == [True, True, False]
        assert got["eq"] == [True, True, True]
        assert got["slots"] is True
        assert got["pickled"] is True
        assert got["module"] == [True, True]
        assert got["errors"][0].startswith("'x' must be <class 'int'> (got 'bad' that is a <class 'str'>)")
        assert got["errors"][1] == "FrozenInstanceError"
        assert got["errors"][2].startswith("'name' must be <class 'str'> (got 42 that is a <class 'int'>)")
        assert got["errors"][3] == "'amount' must be >= 0: -1"
    # the versions differ where a user sees it: min_len arrived in attrs 22.1
    assert [result["attrs21"]["has_min_len"], result["attrs24"]["has_min_len"]] == [False, True]
    assert result["attrs21"]["reprs"][4] is None and result["attrs21"]["errors"][4:] == []
    assert result["attrs24"]["reprs"][4] == "Named(name='x')"
    assert result["attrs24"]["errors"][4] == "Length of 'name' must be >= 1: 0"
    assert_host_untouched(result["host"], ("attr", "attrs"))


def test_attrs_version_attributes_are_each_envs_own(attrs_project):
    """attrs >= 23.1 computes ``__version__`` lazily with ``importlib.metadata.metadata("attrs")``:
    inside an env that must read the env's own distribution."""
    result = run_host(attrs_project, """
        result = {}
        for name in ("attrs21", "attrs24"):
            env = ws.env(name)
            attr, attrs = env.import_module("attr"), env.import_module("attrs")
            result[name] = {
                "dist_version": env.version("attrs"),
                "attr.__version__": outcome(lambda: attr.__version__),
                "attrs.__version__": outcome(lambda: attrs.__version__),
                "attr.__version_info__": outcome(lambda: [attr.__version_info__.year, attr.__version_info__.minor]),
                "metadata_from_env_code": outcome(lambda: env.import_module("models").run(
                    "import importlib.metadata as m\\nMETA = m.metadata('attrs')['Version']")["META"]),
            }
        result["host"] = host_untouched()
    """, host_names=("attr", "attrs"))
    for name in ("attrs21", "attrs24"):
        got = result[name]
        version = got["dist_version"]
        assert got["attr.__version__"] == version, name
        assert got["attrs.__version__"] == version, name
        assert got["attr.__version_info__"] == [int(x) for x in version.split(".")[:2]], name
        assert got["metadata_from_env_code"] == version, name
    assert result["attrs21"]["dist_version"] == "21.4.0"
    assert result["attrs24"]["dist_version"].startswith("24.")
    assert_host_untouched(result["host"], ("attr", "attrs"))


# --------------------------------------------------------------------------------------------------
# 4. click 7.1.2 and 8.1.x: commands run with each env's CliRunner
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def click_project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("click"), """
        [envs.click7]
        requirements = ["click==7.1.2"]
        [envs.click8]
        requirements = ["click>=8.1,<8.2"]
    """)


CLICK_INVOCATIONS = [
    ["hello", "--count", "2", "World"],
    ["hello", "--color", "green", "x"],
    ["hello"],
    ["boom"],
    ["--help"],
    ["hello", "--help"],
]


def test_two_click_versions_run_commands_side_by_side(click_project):
    result = run_host(click_project, f"""
        result = {{}}
        modules = []
        stdout_before = sys.stdout
        for name in ("click7", "click8"):
            env = ws.env(name)
            click = env.import_module("click")
            testing = env.import_module("click.testing")
            modules.append((click, testing, click.Command, testing.CliRunner))
            contexts = []

            @click.group()
            def cli():
                "Tool."

            @cli.command()
            @click.option("--count", default=1, type=int, show_default=True)
            @click.option("--color", type=click.Choice(["red", "blue"]), default="red")
            @click.argument("name")
            def hello(count, color, name):
                "Greets."
                contexts.append(type(click.get_current_context()) is click.Context)
                for i in range(count):
                    click.echo(f"Hello {{name}} in {{color}} #{{i}}")
                click.echo("done", err=True)

            @cli.command()
            @click.pass_context
            def boom(ctx):
                ctx.exit(3)

            runner = testing.CliRunner()
            runs = []
            for args in {CLICK_INVOCATIONS!r}:
                outcome_ = runner.invoke(cli, args)
                runs.append([outcome_.exit_code, outcome_.output])
            version = None
            if name == "click8":
                @click.command()
                @click.version_option(package_name="click", prog_name="vtool")
                def tool():
                    pass
                ran = runner.invoke(tool, ["--version"])
                version = [ran.exit_code, ran.output]
            result[name] = {{
                "alias": click.__name__,
                "version": click.__version__,
                "dist_version": env.version("click"),
                "runs": runs,
                "contexts": contexts,
                "version_option": version,
            }}
        result["distinct"] = [len({{id(x) for x in column}}) for column in zip(*modules)]
        result["stdout_restored"] = sys.stdout is stdout_before
        result["host"] = host_untouched()
    """, host_names=("click",))

    distinct_aliases([result[n]["alias"] for n in ("click7", "click8")], "click")
    assert result["distinct"] == [2, 2, 2, 2]
    assert result["stdout_restored"] is True
    assert [result["click7"]["version"], result["click7"]["dist_version"]] == ["7.1.2", "7.1.2"]
    assert result["click8"]["version"] == result["click8"]["dist_version"]
    assert result["click8"]["version"].startswith("8.1.")
    usage = "Usage: cli hello [OPTIONS] NAME\nTry 'cli hello --help' for help.\n\n"
    choice_error = {
        "click7": "Error: Invalid value for '--color': invalid choice: green. (choose from red, blue)\n",
        "click8": "Error: Invalid value for '--color': 'green' is not one of 'red', 'blue'.\n",
    }
    for name in ("click7", "click8"):
        runs = result[name]["runs"]
        assert runs[0] == [0, "Hello World in red #0\nHello World in red #1\ndone\n"]
        assert runs[1] == [2, usage + choice_error[name]]
        assert runs[2] == [2, usage + "Error: Missing argument 'NAME'.\n"]
        assert runs[3] == [3, ""]
        assert runs[4] == [0, "Usage: cli [OPTIONS] COMMAND [ARGS]...\n\n  Tool.\n\nOptions:\n"
                              "  --help  Show this message and exit.\n\nCommands:\n  boom\n  hello  Greets.\n"]
        assert runs[5][0] == 0 and "--count INTEGER" in runs[5][1] and "[default: 1]" in runs[5][1]
        assert "--color [red|blue]" in runs[5][1]
        assert result[name]["contexts"] == [True]
    # click 8 reads its version from the env's own metadata
    assert result["click8"]["version_option"] == [0, f"vtool, version {result['click8']['dist_version']}\n"]
    assert_host_untouched(result["host"], ("click",))


# --------------------------------------------------------------------------------------------------
# 5. requests 2.25.1 (urllib3 1.26) and 2.32.x (urllib3 2.x)
# --------------------------------------------------------------------------------------------------

REQUESTS_USER = """
from requests.packages.urllib3.util.retry import Retry
import requests.packages.urllib3
import requests
import urllib3

SAME_RETRY = Retry is urllib3.util.retry.Retry
SAME_URLLIB3 = requests.packages.urllib3 is urllib3
"""


@pytest.fixture(scope="module")
def requests_project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("requests"), """
        [envs.req225]
        requirements = ["requests==2.25.1", "urllib3>=1.26,<1.27"]
        source = "req225_src"
        [envs.req232]
        requirements = ["requests>=2.32,<2.33", "urllib3>=2,<3"]
        source = "req232_src"
    """, {"req225_src/requests_user.py": REQUESTS_USER, "req232_src/requests_user.py": REQUESTS_USER})


def test_two_requests_versions_prepare_and_send_side_by_side(requests_project):
    """Requests prepared with each env's requests, and sent (over loopback, to a server in the host)
    through each env's own urllib3."""
    result = run_host(requests_project, """
        import threading
        from http.server import BaseHTTPRequestHandler, HTTPServer

        class Echo(BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps({"path": self.path, "ua": self.headers["User-Agent"]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass

        server = HTTPServer(("127.0.0.1", 0), Echo)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"

        result = {}
        modules = []
        for name in ("req225", "req232"):
            env = ws.env(name)
            requests = env.import_module("requests")
            urllib3 = env.import_module("urllib3")
            modules.append((requests, urllib3, requests.Session, urllib3.PoolManager))
            prepared = requests.Request(
                "POST", "https://example.com/a b/\\u00fc", params={"q": "x y", "n": "1"},
                data={"k": "v&w"}, headers={"X-Test": "1"}, auth=("user", "pass"),
            ).prepare()
            session = requests.Session()
            with_session = session.prepare_request(requests.Request("GET", "http://example.com", json={"a": 1}))
            adapter = requests.adapters.HTTPAdapter(max_retries=2)
            response = session.get(base + "/p?x=1", timeout=10)
            result[name] = {
                "alias": requests.__name__,
                "version": requests.__version__,
                "dist_version": env.version("requests"),
                "urllib3": urllib3.__version__,
                "urllib3_dist": env.version("urllib3"),
                "packages_urllib3": [requests.packages.urllib3 is urllib3, requests.packages.urllib3.__version__],
                "url": prepared.url,
                "headers": dict(prepared.headers),
                "body": prepared.body,
                "session": [with_session.url, dict(with_session.headers), with_session.body.decode()],
                "user_agent": requests.utils.default_user_agent(),
                "adapter": [isinstance(adapter.max_retries, urllib3.util.retry.Retry), adapter.max_retries.total,
                            isinstance(adapter.poolmanager, urllib3.PoolManager)],
                "response": [response.status_code, response.json(), response.headers["Content-Type"],
                             isinstance(response.raw, urllib3.response.HTTPResponse)],
                "urllib3_2_only": hasattr(urllib3, "BaseHTTPResponse"),
            }
        server.shutdown()
        result["distinct"] = [len({id(x) for x in column}) for column in zip(*modules)]
        result["host"] = host_untouched()
    """, host_names=("requests", "urllib3"))

    distinct_aliases([result[n]["alias"] for n in ("req225", "req232")], "requests")
    assert result["distinct"] == [2, 2, 2, 2]
    old, new = result["req225"], result["req232"]
    assert [old["version"], old["dist_version"]] == ["2.25.1", "2.25.1"]
    assert new["version"] == new["dist_version"] and new["version"].startswith("2.32.")
    assert old["urllib3"] == old["urllib3_dist"] and old["urllib3"].startswith("1.26.")
    assert new["urllib3"] == new["urllib3_dist"] and new["urllib3"].startswith("2.")
    assert [old["urllib3_2_only"], new["urllib3_2_only"]] == [False, True]
    for got in (old, new):
        assert got["packages_urllib3"] == [True, got["urllib3"]]
        assert got["url"] == "https://example.com/a%20b/%C3%BC?q=x+y&n=1"
        assert got["headers"] == {"X-Test": "1", "Content-Length": "7",
                                  "Content-Type": "application/x-www-form-urlencoded",
                                  "Authorization": "Basic dXNlcjpwYXNz"}
        assert got["body"] == "k=v%26w"
        ua = f"python-requests/{got['version']}"
        assert got["session"] == ["http://example.com/", {
            "User-Agent": ua, "Accept-Encoding": got["session"][1]["Accept-Encoding"], "Accept": "*/*",
            "Connection": "keep-alive", "Content-Length": "8", "Content-Type": "application/json"}, '{"a": 1}']
        assert got["user_agent"] == ua
        assert got["adapter"] == [True, 2, True]
        assert got["response"] == [200, {"path": "/p?x=1", "ua": ua}, "application/json", True]
    assert_host_untouched(result["host"], ("requests", "urllib3"))


def test_requests_packages_aliases_urllib3_inside_each_env(requests_project):
    """``requests.packages`` makes ``requests.packages.urllib3.*`` the very modules of urllib3, in
    ``sys.modules`` too, so ``from requests.packages.urllib3.util.retry import Retry`` (a common
    idiom) works in a venv; it must in each env."""
    result = run_host(requests_project, """
        result = {}
        for name in ("req225", "req232"):
            env = ws.env(name)
            requests, urllib3 = env.import_module("requests"), env.import_module("urllib3")
            result[name] = {
                "attribute": requests.packages.urllib3 is urllib3,
                "import_module": outcome(lambda: env.import_module("requests.packages.urllib3") is urllib3),
                "submodule": outcome(lambda: env.import_module("requests.packages.urllib3.util.retry").Retry
                                     is urllib3.util.retry.Retry),
                "idna": outcome(lambda: env.import_module("requests.packages.idna") is env.import_module("idna")),
                "env_code": outcome(lambda: [env.import_module("requests_user").SAME_RETRY,
                                             env.import_module("requests_user").SAME_URLLIB3]),
            }
    """)
    for name in ("req225", "req232"):
        assert result[name] == {"attribute": True, "import_module": True, "submodule": True, "idna": True,
                                "env_code": [True, True]}, name


def test_requests_finds_its_character_detection_in_each_env(requests_project):
    """requests 2.25 uses chardet, 2.32 charset_normalizer (a mypyc build whose wheel also ships
    every module's .py source): no RequestsDependencyWarning at import, and the same guess as in
    the env's own interpreter."""
    sample = "Bonjour, \u00e7a co\u00fbte tr\u00e8s cher \u00e0 No\u00ebl, d\u00e9j\u00e0 \u00e9t\u00e9."
    snippet = (f"r = requests.models.Response(); r._content = {sample!r}.encode('cp1252'); r.encoding = None\n"
               "guess = [r.apparent_encoding, r.text]\n")
    in_venv = {}
    for name in ("req225", "req232"):
        python = requests_project / ".polyvenv" / name / "bin" / "python"
        proc = subprocess.run([str(python), "-c", "import json, requests\n" + snippet + "print(json.dumps(guess))"],
                              capture_output=True, text=True, check=True)
        in_venv[name] = json.loads(proc.stdout)

    result = run_host(requests_project, f"""
        result = {{}}
        for name, detector in (("req225", "chardet"), ("req232", "charset_normalizer")):
            env = ws.env(name)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                requests = env.import_module("requests")
            detector_module = outcome(lambda: env.import_module(detector))
            guess = None
            exec({snippet!r})
            result[name] = {{
                "warnings": [f"{{w.category.__name__}}: {{w.message}}" for w in caught
                             if w.category is not ImportWarning],
                "ran_source_instead": sorted({{str(w.message).rpartition("/")[2] for w in caught
                                              if w.category is ImportWarning}}),
                "detector": outcome(lambda: [requests.compat.chardet is detector_module,
                                             detector_module.__version__ == env.version(detector)]),
                "guess": guess,
            }}
    """)
    for name in ("req225", "req232"):
        got = result[name]
        assert got["warnings"] == [], name
        assert got["detector"] == [True, True], name
        assert got["guess"] == in_venv[name], name
    # charset_normalizer 3.5 is built with Cython 3.3, whose LZSS-packed strings the patch cannot reach:
    # its compiled modules fall back to the pure-Python sources it ships (said by a hidden ImportWarning)
    assert result["req225"]["ran_source_instead"] == []
    assert result["req232"]["ran_source_instead"] in ([], ["cd.py instead", "md.py instead"])
