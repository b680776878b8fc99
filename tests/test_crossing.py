"""Objects crossing between envs (and the host) that do not share their distribution (issue 13).

Each numpy copy takes another copy's ndarray for an override and hands the call back to it: before
the guards, numpy 1.26 beside 1.26 ended in RecursionError and numpy 2 beside anything in a
segmentation fault. Now the user gets ObjectFromAnotherEnv (a TypeError) naming both sides and the
distribution; what converts over a protocol (the buffer protocol, ``__array_interface__``) works as
before, and the host's numpy is untouched.
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

PRELUDE = """
import json, pickle, sys
sys.path.insert(0, {src!r})
import polyvenv
from polyvenv.runtime.sitedir import site_packages
ws = polyvenv.Workspace.load({project!r})
sys.path.insert(0, str(site_packages(ws.env_dir("hostnp"))))
import numpy as h  # the host's own numpy (2.1.3), imported plainly before any env loads its own
host_ufunc = h.ndarray.__dict__["__array_ufunc__"], h.add.__call__
a, b, c = (ws.env(n).import_module("numpy") for n in ("a", "b", "c"))  # 1.26.4, 1.26.4, 2.2.6
xa, xb, yc, hx = a.arange(3.0), b.arange(3.0), c.arange(3.0), h.arange(3.0)
result = {{}}
OWNER = {{m.__name__: n for n, m in (("a", a), ("b", b), ("c", c), ("host", h))}}  # whose numpy a result is of

def outcome(call):
    try:
        value = call()
    except Exception as error:
        return [type(error).__name__, isinstance(error, TypeError), str(error), getattr(error, "env", None),
                getattr(error, "origin", None), getattr(error, "distribution", None)]
    root = type(value).__module__.partition(".")[0]
    return ["ok", OWNER.get(root, root), repr(value).replace("\\n", "")]
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("crossing") / "project"
    root.mkdir()
    envs = {"a": ["numpy==1.26.4"], "b": ["numpy==1.26.4"], "c": ["numpy==2.2.6"], "hostnp": ["numpy==2.1.3"],
            "p1": ["pandas==2.2.3", "numpy==1.26.4"], "p2": ["pandas==2.2.3", "numpy==2.2.6"]}
    body = "".join(f"[envs.{n}]\nrequirements = {json.dumps(r)}\n" + ('private = ["numpy"]\n' if n == "b" else "")
                   for n, r in envs.items())  # b keeps its own numpy: a and b have the same version, not one copy
    (root / "polyvenv.toml").write_text(body)
    proc = subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=root, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return root


def run(project: Path, body: str) -> dict:
    code = PRELUDE.format(src=str(SRC), project=str(project)) + textwrap.dedent(body) + (
        "\nresult['aliases'] = [a.__name__, b.__name__, c.__name__]\nprint(json.dumps(result))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])  # a segmentation fault before the guards
    return json.loads(proc.stdout.strip().splitlines()[-1])


def refused(got: list, into: str | None, came: str | None, aliases: list) -> None:
    """The user's view: one TypeError naming both sides and numpy, with the way out, never an alias."""
    kind, is_type_error, message, env, origin, distribution = got
    assert [kind, is_type_error, env, origin, distribution] == ["ObjectFromAnotherEnv", True, into, came, "numpy"], got
    for side in (into, came):  # an env, the envs sharing a unit ("a, p1"), or the host
        assert (f"envs {side} (which share it)" if side and ", " in side else f"env {side!r}" if side
                else "the host") in message, message
    assert "numpy.ndarray" in message and "numpy.asarray" in message and "polyvenv why numpy" in message, message
    assert not any(alias in message for alias in aliases), message  # real names, never the aliases


def test_an_array_of_one_envs_numpy_handed_to_another_envs_numpy_is_refused_naming_both(project):
    result = run(project, """
        cases = {
            "same version": lambda: b.add(xa, 1),
            "1.26 into 2.2": lambda: c.add(xa, 1),
            "2.2 into 1.26": lambda: a.sqrt(yc),
            "operator": lambda: xa + yc,
            "reduce": lambda: c.add.reduce(xa),
            "at": lambda: b.add.at(xa, [0], 1),
            "out": lambda: c.negative(yc, out=xa),
            "function, both kinds": lambda: c.allclose(xa, yc),
        }
        result = {name: outcome(call) for name, call in cases.items()}
        ones = a.ones(2)
        result["own still"] = [outcome(lambda: a.add(xa, 1)), outcome(lambda: a.matrix([[1.0, 2.0]]) * 2),
                               outcome(lambda: c.ma.masked_array([1.0, 2.0], mask=[0, 1]) + 1),
                               outcome(lambda: [c.add.reduce(yc, axis=0), c.ufunc.reduce(c.add, yc),
                                                a.add.at(ones, [0], 1), ones, a.multiply.outer(xa, [2]).ravel()])]
    """)
    refused(result["same version"], "b", "a", result["aliases"])
    refused(result["1.26 into 2.2"], "c", "a", result["aliases"])
    refused(result["2.2 into 1.26"], "a", "c", result["aliases"])
    refused(result["operator"], "a", "c", result["aliases"])
    refused(result["reduce"], "c", "a", result["aliases"])
    refused(result["at"], "b", "a", result["aliases"])
    refused(result["out"], "c", "a", result["aliases"])
    refused(result["function, both kinds"], "c", "a", result["aliases"])
    assert [r[:2] for r in result["own still"]] == [["ok", "a"]] * 2 + [["ok", "c"], ["ok", "builtins"]]
    assert result["own still"][3][2] == ("[np.float64(3.0), np.float64(3.0), None, array([2., 1.]), "
                                         "array([0., 2., 4.])]"), result["own still"]
    assert "array([1., 2., 3.])" in result["own still"][0][2] and "[2.0 --]" in result["own still"][2][2].replace(
        ",", ""), result["own still"]


def test_arrays_crossing_between_the_host_and_an_env_are_refused_and_the_hosts_numpy_is_untouched(project):
    result = run(project, """
        cases = {
            "env array, host ufunc": lambda: h.sqrt(xa),
            "env array, host operator": lambda: hx + xa,
            "host array, env ufunc": lambda: c.add(hx, 1),
            "host array, env 1.26 ufunc": lambda: a.negative(hx),
            "host array, env ufunc method": lambda: c.add.reduce(hx),
            "host array, env 1.26 ufunc method": lambda: a.add.at(hx, [0], 1),
            "env ufunc, both kinds": lambda: c.add(hx, yc),
            "env operator, both kinds": lambda: xa + hx,
            "env function, both kinds": lambda: a.concatenate([xa, hx]),
            "host function, both kinds": lambda: h.allclose(hx, xa),
        }
        result = {name: outcome(call) for name, call in cases.items()}
        result["host"] = [host_ufunc == (h.ndarray.__dict__["__array_ufunc__"], h.add.__call__),
                          outcome(lambda: h.add(hx, 1)), outcome(lambda: (hx * 2).sum()),
                          outcome(lambda: h.add.__call__(hx, hx)), sorted(k for k in sys.modules if k == "numpy")]
    """)
    refused(result["env array, host ufunc"], None, "a", result["aliases"])
    refused(result["env array, host operator"], None, "a", result["aliases"])
    refused(result["host array, env ufunc"], "c", None, result["aliases"])
    refused(result["host array, env 1.26 ufunc"], "a", None, result["aliases"])
    refused(result["host array, env ufunc method"], "c", None, result["aliases"])
    refused(result["host array, env 1.26 ufunc method"], "a", None, result["aliases"])
    refused(result["env ufunc, both kinds"], "c", None, result["aliases"])
    refused(result["env operator, both kinds"], "a", None, result["aliases"])
    refused(result["env function, both kinds"], "a", None, result["aliases"])
    refused(result["host function, both kinds"], None, "a", result["aliases"])
    same, add, total, call, modules = result["host"]
    assert same is True and modules == ["numpy"]
    assert add == ["ok", "host", "array([1., 2., 3.])"] and total[0] == "ok" and "6.0" in total[2]
    assert call == ["ok", "host", "array([0., 2., 4.])"]


def test_what_converts_over_a_protocol_still_works_across_envs(project):
    result = run(project, """
        result = {
            "asarray": outcome(lambda: c.add(c.asarray(xa), 1)),
            "from the host": outcome(lambda: a.asarray(hx) * 2),
            "to the host": outcome(lambda: h.asarray(yc) + 1),
            "concatenate": outcome(lambda: c.concatenate([xa, xa])),
            "objects": outcome(lambda: c.asarray(a.array([None, 1], dtype=object))),
            "printing": outcome(lambda: c.array2string(xa)),
            "pickle": outcome(lambda: pickle.loads(pickle.dumps(xa))),
        }
    """)
    assert result["asarray"] == ["ok", "c", "array([1., 2., 3.])"]
    assert result["from the host"] == ["ok", "a", "array([0., 2., 4.])"]
    assert result["to the host"] == ["ok", "host", "array([1., 2., 3.])"]
    assert result["concatenate"] == ["ok", "c", "array([0., 1., 2., 0., 1., 2.])"]
    assert result["objects"] == ["ok", "c", "array([None, 1], dtype=object)"]
    assert result["printing"] == ["ok", "builtins", "'[0. 1. 2.]'"]
    assert result["pickle"] == ["ok", "a", "array([0., 1., 2.])"]  # the same env's array again


def test_pandas_series_of_one_env_in_anothers_arithmetic_is_refused_naming_both(project):
    result = run(project, """
        p1, p2 = ws.env("p1").import_module("pandas"), ws.env("p2").import_module("pandas")
        n2 = ws.env("p2").import_module("numpy")
        s1, s2 = p1.Series([1.0, 2.0]), p2.Series([10.0, 20.0])
        result = {"add": outcome(lambda: s2 + s1), "ufunc": outcome(lambda: n2.sqrt(s1)),
                  "converted": outcome(lambda: (s2 + p2.Series(s1.to_numpy().tolist())).tolist())}
    """)
    # the arrays under the series are of the numpy units each pandas uses, which a and c share too
    refused(result["add"], "c, p2", "a, p1", result["aliases"])
    refused(result["ufunc"], "c, p2", "a, p1", result["aliases"])
    assert result["converted"] == ["ok", "builtins", "[11.0, 22.0]"]
