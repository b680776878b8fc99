"""The compatibility corpus in CI: the oracle of bench/corpus on a few packages, with the verdict a user
should get once issues 11 and 12 are fixed (WORKS, or REFUSED naming the way out; never WRONG).

Packages that do not get it today are strict xfails naming the finding: they flip loudly when fixed.
The oracle itself is checked on generated packages too: a crash, a hang and a host binding that happen
only side by side are each found and called WRONG, never WORKS.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from wheelgen import make_wheel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from corpus.oracle import Package, load_packages, try_package  # noqa: E402

FIXED = {"WORKS", "REFUSED"}  # what Rule 1 allows: it works, or it is refused loudly with the way out


# -- the oracle on packages made here: it must be able to fail ---------------------------------------------

SIDE_BY_SIDE_ONLY = "import sys\nside_by_side = __name__.partition('.')[0] != {top!r}\n"


def generated(wheelhouse: Path, name: str, body: str, smoke: str = "result = m.__version__",
              entry_points: dict[str, dict[str, str]] | None = None) -> Package:
    """``name`` 1.0 and 2.0, each a package whose __init__ runs ``body`` (``side_by_side`` tells whether
    it runs under an env's alias), with a submodule ``sub`` whose VALUE is the version."""
    for version in ("1.0", "2.0"):
        make_wheel(wheelhouse, name, version, {
            f"{name}/__init__.py": SIDE_BY_SIDE_ONLY.format(top=name) + f"__version__ = {version!r}\n" + body,
            f"{name}/sub.py": f"VALUE = {version!r}\n",
        }, entry_points=entry_points)
    return Package(name, 0, "pure", "1.0", "2.0", smoke=f"m = imp({name!r}); " + smoke)


def test_oracle_calls_a_crash_side_by_side_wrong(tmp_path):
    pkg = generated(tmp_path / "wheels", "crashy", "import os, signal\n"
                    "if side_by_side: os.kill(os.getpid(), signal.SIGSEGV)\n")
    result = try_package(pkg, tmp_path / "work", timeout=60, wheelhouse=tmp_path / "wheels")
    assert result.verdict == "WRONG", result
    assert result.error.startswith("crash (SIGSEGV) importing old crashy"), result.error
    assert result.envs["old"]["total"] == 2  # both modules import in the plain venv


def test_oracle_calls_a_hang_side_by_side_wrong(tmp_path):
    pkg = generated(tmp_path / "wheels", "hangy", "import time\nif side_by_side: time.sleep(600)\n")
    result = try_package(pkg, tmp_path / "work", timeout=10, wheelhouse=tmp_path / "wheels")
    assert result.verdict == "WRONG", result
    assert result.error == "hang: no answer after 10s importing old hangy", result.error


def test_oracle_calls_a_host_module_bound_by_env_code_wrong(tmp_path):
    # sys.modules as the host has it, read through a name polyvenv cannot know is a module name
    pkg = generated(tmp_path / "wheels", "leaky", "import sys\nfrom . import sub\n"
                    "if side_by_side: host = getattr(sys, 'mod' + 'ules').get('le' + 'aky')\n")
    result = try_package(pkg, tmp_path / "work", timeout=60, wheelhouse=tmp_path / "wheels")
    assert result.verdict == "WRONG", result
    assert "is the host's module leaky" in result.error, result.error


def test_oracle_calls_a_smoke_call_answering_otherwise_wrong(tmp_path):
    pkg = generated(tmp_path / "wheels", "liar", "if side_by_side: __version__ = 'something else'\n")
    result = try_package(pkg, tmp_path / "work", timeout=60, wheelhouse=tmp_path / "wheels")
    assert result.verdict == "WRONG", result
    assert result.error == "old smoke call answered 'something else' where its plain venv answers '1.0'"


def test_builtins_import_taken_explicitly_gives_the_envs_module(tmp_path):
    pkg = generated(tmp_path / "wheels", "explicit", "import builtins\nfrom . import sub\n"
                    "import_ = getattr(builtins, '__import__')\n"
                    "VALUE = import_('explicit.sub', fromlist=['VALUE']).VALUE\n", smoke="result = m.VALUE")
    result = try_package(pkg, tmp_path / "work", timeout=60, wheelhouse=tmp_path / "wheels")
    assert result.verdict in FIXED, f"{result.verdict}: {result.error}"


def test_entry_points_load_the_envs_module(tmp_path):
    pkg = generated(tmp_path / "wheels", "plugged", "from importlib.metadata import entry_points\n"
                    "from . import sub\n"
                    "eps = entry_points()\n"
                    "group = eps.select(group='plugged.plugins') if hasattr(eps, 'select') else eps['plugged.plugins']"
                    "\n"
                    "PLUGINS = [ep.load() for ep in group]\n",
                    smoke="result = m.PLUGINS", entry_points={"plugged.plugins": {"own": "plugged.sub:VALUE"}})
    result = try_package(pkg, tmp_path / "work", timeout=60, wheelhouse=tmp_path / "wheels")
    assert result.verdict in FIXED, f"{result.verdict}: {result.error}"


def test_oracle_calls_a_plain_package_works_and_leaves_out_what_fails_in_its_own_venv(tmp_path):
    pkg = generated(tmp_path / "wheels", "plain", "")
    make_wheel(tmp_path / "wheels", "plain", "2.0", {
        "plain/__init__.py": "__version__ = '2.0'\n", "plain/sub.py": "VALUE = '2.0'\n",
        "plain/broken.py": "raise RuntimeError('fails in its own venv too')\n",
    })
    result = try_package(pkg, tmp_path / "work", timeout=60, wheelhouse=tmp_path / "wheels")
    assert (result.verdict, result.error, result.ok, result.total) == ("WORKS", "", 4, 4), result
    assert result.envs["new"]["plain_failed"] == 1


# -- packages from the corpus (PyPI) -----------------------------------------------------------------------

CORPUS = {p.name: p for p in load_packages()}


def xfail(finding: str):
    return pytest.mark.xfail(strict=True, reason=finding)


CASES = [
    # compiled
    "markupsafe",  # C speedups, works today
    "lxml",  # per-thread state under fixed keys (PyThreadState_GetDict): each copy its own (issue 11 finding 2)
    "cryptography",  # cffi's _openssl made by its Rust extension's execution: the host's entries stay the host's
    "pynacl",  # cffi: the host's sys.modules entries under the build name stay the host's (issue 11 finding 6)
    "tomli",  # mypyc 2 names its modules' files and paths after their (aliased) names (issue 11 finding 6)
    "greenlet",  # a class named like its package keeps its name (issue 11 finding 1)
    # pure
    "click",
    "typing-extensions",  # a vocabulary package: the host's own copy when the versions match, by design
    "httpx",  # __module__ assigned at run time names the env's module (issue 12 finding 8)
    "setuptools",  # its distutils shim serves the env's own distutils, never the host's (runtime/names.py)
]


@pytest.mark.integration
@pytest.mark.parametrize("name", CASES, ids=lambda case: case if isinstance(case, str) else None)
def test_corpus_package_gets_a_verdict_rule_1_allows(name, tmp_path_factory):
    result = try_package(CORPUS[name], tmp_path_factory.mktemp("corpus"), timeout=120, max_modules=40)
    assert result.verdict in FIXED, f"{result.verdict}: {result.error}"
    if result.verdict == "REFUSED":
        assert 'isolation = "process"' in result.error or 'isolation = "auto"' in result.error
