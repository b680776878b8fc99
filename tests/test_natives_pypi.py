"""Compiled types and functions whose module names are made at run time, from PyPI wheels (issue 11).

Each package's env copy loads beside the host's own copy of another version, imported plainly first:
its objects carry the env's alias (``__module__``, pickle), raise and return the env's own classes,
and no module of the real name is added to or replaced in the host's ``sys.modules``.

- orjson (Rust): ``Fragment`` is made by ``PyType_FromSpec`` from a spec built on the stack;
- psycopg2: its exceptions come from a table handed to ``PyErr_NewException`` in a loop, and
  ``"psycopg2.errors.%s"`` classes are put into the Python module ``psycopg2.errors``;
- httptools (Cython 3.3, LZSS): ``url_parser`` imports its ``errors`` module by a name in a string
  table whose lengths cover only its text strings; before, it bound the host's exception class;
- pydantic 1 (Cython 3.3, unpacked table, same layout): ``version_info`` claimed ``pydantic.version``;
  ``pydantic.json`` ran its source instead of its compiled code (two numbers beside its packed table
  that add up to its size were taken for its lengths).
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
REAL = ("orjson", "psycopg2", "httptools", "pydantic")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("natives")
    (root / "polyvenv.toml").write_text(textwrap.dedent("""
        [envs.a]
        requirements = ["orjson==3.12.0", "psycopg2-binary==2.9.12", "httptools==0.9.0", "pydantic==1.10.27"]
        [envs.hostlibs]
        requirements = ["orjson==3.13.0", "psycopg2-binary==2.9.13", "httptools==0.8.0"]
    """))
    proc = subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return root


def host(project: Path, imports: str, body: str):
    """Run ``body`` in a fresh host that imported its own copies (``imports``) plainly first; ``env`` is env
    ``a``. Returns ``result``, after checking the env's imports left the host's real-name modules as they were."""
    code = (f"import os, sys, json, pickle\nsys.path.insert(0, {str(SRC)!r})\nimport polyvenv\n"
            f"from polyvenv.runtime.sitedir import site_packages\n"
            f"ws = polyvenv.Workspace.load({str(project)!r})\n"
            f"sys.path.insert(0, str(site_packages(ws.env_dir('hostlibs'))))\n{imports}\n"
            f"real = lambda: {{k: v for k, v in sys.modules.items() if k.partition('.')[0] in {REAL!r}}}\n"
            "before = real()\nenv = ws.env('a')\n" + textwrap.dedent(body)
            + "\nprint(json.dumps([result, real() == before]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result, unchanged = json.loads(proc.stdout.strip().splitlines()[-1])
    assert unchanged, "the env's imports added or replaced a module of a real name in the host's sys.modules"
    return result


def test_orjson_fragment_made_from_a_spec_on_the_stack_is_the_envs(project):
    result = host(project, "import orjson", """
        o = env.import_module("orjson")
        fragment = o.Fragment(b'{"x":1}')
        result = [o.__version__, os.path.realpath(o.__file__).startswith(os.path.realpath(ws.env_dir("a"))), o.Fragment.__module__ == o.__name__,
                  type(fragment).__module__, o.dumps({"a": fragment}).decode(), o.Fragment is not orjson.Fragment,
                  orjson.__version__, orjson.Fragment.__module__, orjson.dumps([orjson.Fragment(b"2")]).decode()]
        result[3] = result[3] == o.__name__
    """)
    assert result == ["3.12.0", True, True, True, '{"a":{"x":1}}', True, "3.13.0", "orjson", "[2]"]


def test_psycopg2_exceptions_named_at_run_time_are_the_envs_and_pickle(project):
    result = host(project, "import psycopg2, psycopg2.errors", """
        p, errors = env.import_module("psycopg2"), env.import_module("psycopg2.errors")
        warning = pickle.loads(pickle.dumps(p.Warning("w")))
        unique = pickle.loads(pickle.dumps(errors.UniqueViolation("duplicate")))
        result = [p.__version__.split()[0], p.Warning.__module__ == p.__name__,
                  errors.UniqueViolation.__module__ == p.__name__ + ".errors",
                  type(warning) is p.Warning, type(unique) is errors.UniqueViolation, str(unique),
                  issubclass(errors.UniqueViolation, p.IntegrityError), errors.lookup("23505") is errors.UniqueViolation,
                  p.Warning is not psycopg2.Warning, p.Warning == p.Warning, p.Warning != psycopg2.Warning,
                  psycopg2.__version__.split()[0], psycopg2.Warning.__module__, psycopg2.errors.UniqueViolation.__module__,
                  type(pickle.loads(pickle.dumps(psycopg2.errors.UniqueViolation()))) is psycopg2.errors.UniqueViolation]
    """)
    assert result == ["2.9.12", True, True, True, True, "duplicate", True, True, True, True, True,
                      "2.9.13", "psycopg2", "psycopg2.errors", True]


def test_httptools_raises_its_own_error_class_never_the_hosts(project):
    result = host(project, "import httptools", """
        h = env.import_module("httptools")
        url_parser, errors = env.import_module("httptools.parser.url_parser"), env.import_module("httptools.parser.errors")
        try:
            h.parse_url(b"http://[bad")
            raised = None
        except Exception as e:
            raised = [type(e) is errors.HttpParserInvalidURLError, isinstance(e, httptools.HttpParserInvalidURLError)]
        url = h.parse_url(b"http://example.org:8080/a?b=1")
        try:
            httptools.parse_url(b"http://[bad")
        except httptools.HttpParserInvalidURLError as e:
            host_raised = type(e).__module__
        result = [raised, url_parser.HttpParserInvalidURLError is errors.HttpParserInvalidURLError,
                  h.parse_url.__module__ == h.__name__ + ".parser.url_parser", [url.host.decode(), url.port],
                  host_raised, httptools.parse_url.__module__]
    """)
    assert result == [[True, False], True, True, ["example.org", 8080], "httptools.parser.errors",
                      "httptools.parser.url_parser"]


def test_pydantic_1_cython_functions_carry_the_envs_module_name(project):
    result = host(project, "", """
        pd, version = env.import_module("pydantic"), env.import_module("pydantic.version")
        encoders = env.import_module("pydantic.json")  # its table beside two numbers that add up to its size
        result = [pd.VERSION, pd.compiled, version.__file__.endswith(".so"),
                  version.version_info.__module__ == pd.__name__ + ".version", "1.10.27" in version.version_info(),
                  encoders.__file__.endswith(".so"), encoders.pydantic_encoder.__module__ == pd.__name__ + ".json"]
    """)
    assert result == ["1.10.27", True, True, True, True, True, True]
