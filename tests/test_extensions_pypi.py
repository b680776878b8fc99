"""Real compiled distributions from PyPI, two versions side by side in one process (issue 4, so far)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import python_or_skip

pytestmark = pytest.mark.integration
SRC = Path(__file__).parent.parent / "src"


def build(root: Path, envs: dict[str, list[str]], python: str | None = None) -> Path:
    project = root / "project"
    project.mkdir()
    pin = f"python = {json.dumps(python)}\n" if python else ""
    body = "".join(f"[envs.{name}]\nrequirements = {json.dumps(reqs)}\n{pin}" for name, reqs in envs.items())
    (project / "polyvenv.toml").write_text(body)
    proc = subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=project, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return project


def host(project: Path, body: str, python: str = sys.executable):
    code = (f"import sys, json\nsys.path.insert(0, {str(SRC)!r})\nimport polyvenv\n"
            f"ws = polyvenv.Workspace.load({str(project)!r})\n" + textwrap.dedent(body)
            + "\nprint(json.dumps(result))\n")
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("minor", ["3.9", "3.10", "3.11", "3.12"])  # where all six have wheels
def test_markupsafe_pyyaml_msgpack_with_their_c_code_side_by_side(tmp_path, minor):
    python = python_or_skip(minor)
    project = build(tmp_path, python=minor, envs={
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
    """, python)
    a, b = result["a"], result["b"]
    assert a["markupsafe"] == ["2.1.5", True, "&lt;b&gt;", True]
    assert b["markupsafe"][0].startswith("3.") and b["markupsafe"][1:] == [True, "&lt;b&gt;", True]
    assert a["yaml"] == ["6.0.1", True, {"a": [1, 2.5, None]}, True]
    assert b["yaml"] == ["6.0.2", True, {"a": [1, 2.5, None]}, True]
    assert a["msgpack"][:2] == [[1, 0, 8], {"k": [1, "x"]}] and a["msgpack"][3] is True
    assert b["msgpack"][0][:2] == [1, 1] and b["msgpack"][1] == {"k": [1, "x"]} and b["msgpack"][3] is True
    assert a["msgpack"][2].endswith("._cmsgpack") and a["msgpack"][2] != b["msgpack"][2]
    assert result["distinct"] is True


NUMPY_CHECKS = """
    def check(np):
        try:
            np.add(np.ones(2), "x")
            error = None
        except Exception as e:  # raised from C: the env's own class, the version's own message
            error = [type(e).__module__.split(".")[0] == np.__name__, type(e).__name__, "ufunc 'add'" in str(e)]
        try:
            np.empty((1 << 22, 1 << 22))  # 128 TiB: refused by the allocator, raised from C
            memory = None
        except MemoryError as e:
            memory = type(e).__module__.split(".")[0] == np.__name__
        a = np.arange(6).reshape(2, 3)
        back = pickle.loads(pickle.dumps(a))
        return {
            "version": np.__version__, "sum": int(np.arange(10).sum()), "repr": repr(np.float64(0.1)),
            "error": error, "memory": memory, "linalg": round(float(np.linalg.det(np.eye(3) * 2)), 9),
            "fft": float(abs(np.fft.fft(np.ones(4))[0])), "random": int(np.random.default_rng(1).integers(100)),
            "pickle": [bool((back == a).all()), type(back) is np.ndarray],
            "datetime": str(np.datetime64("2020-01-31") + 1),
        }
"""


@pytest.mark.parametrize("minor", ["3.10", "3.11", "3.12"])  # where numpy 1.26.4, 2.1.3 and 2.2.6 all have wheels
def test_numpy_1_26_and_2_2_in_one_process_beside_the_hosts_numpy_2_1(tmp_path, minor):
    python = python_or_skip(minor)
    project = build(tmp_path, {"np1": ["numpy==1.26.4"], "np2": ["numpy==2.2.6"], "hostnp": ["numpy==2.1.3"]},
                    python=minor)
    result = host(project, textwrap.dedent(NUMPY_CHECKS) + textwrap.dedent("""
        import pickle, threading
        from polyvenv.runtime.sitedir import site_packages
        sys.path.insert(0, str(site_packages(ws.env_dir("hostnp"))))
        import numpy  # the host's own numpy, imported plainly, before and beside the envs' ones
        result = {}
        def run(name):  # two threads import and use their env's numpy at once
            result[name] = check(ws.env(name).import_module("numpy"))
        threads = [threading.Thread(target=run, args=(name,)) for name in ("np1", "np2")]
        [t.start() for t in threads]
        [t.join() for t in threads]
        np1, np2 = (ws.env(n).import_module("numpy") for n in ("np1", "np2"))
        result["host"] = [numpy.__version__, numpy.__name__, sys.modules["numpy"] is numpy]
        result["distinct"] = len({id(numpy.ndarray), id(np1.ndarray), id(np2.ndarray)}) == 3
    """), python)
    expected = {"sum": 45, "error": [True, "UFuncTypeError", True], "memory": True, "linalg": 8.0, "fft": 4.0,
                "pickle": [True, True], "datetime": "2020-02-01"}
    for name, version, float_repr in (("np1", "1.26.4", "0.1"), ("np2", "2.2.6", "np.float64(0.1)")):
        got = result[name]
        assert got == {**expected, "version": version, "repr": float_repr, "random": got["random"]}, name
    assert result["np1"]["random"] == result["np2"]["random"]  # same seed, same generator, two copies
    assert result["host"] == ["2.1.3", "numpy", True]
    assert result["distinct"] is True


def test_numpy_2_3_built_with_cython_3_2_compressed_strings(tmp_path):
    """numpy 2.3's random is Cython 3.2: its strings are zlib-packed, their lengths table in .rodata for
    the big modules and written by code for the small ones (_sfc64)."""
    project = build(tmp_path, {"np23": ["numpy==2.3.5"], "np126": ["numpy==1.26.4"]})
    result = host(project, textwrap.dedent(NUMPY_CHECKS) + textwrap.dedent("""
        import pickle
        result = {}
        for name in ("np23", "np126"):
            np = ws.env(name).import_module("numpy")
            rng = np.random.default_rng(1)
            result[name] = {**check(np), "sfc64": int(np.random.SFC64(1).random_raw()),
                            "generator_pickle": type(pickle.loads(pickle.dumps(rng))) is np.random.Generator}
    """))
    for name, version in (("np23", "2.3.5"), ("np126", "1.26.4")):
        got = result[name]
        assert got["version"] == version and got["error"] == [True, "UFuncTypeError", True], name
        assert got["pickle"] == [True, True] and got["generator_pickle"] is True, name
    assert result["np23"]["sfc64"] == result["np126"]["sfc64"] and result["np23"]["random"] == result["np126"]["random"]


@pytest.mark.parametrize("minor", ["3.9", "3.10", "3.11", "3.12"])  # pydantic 1.10.18's compiled wheels
def test_pydantic_1_compiled_and_pydantic_2_validate_side_by_side(tmp_path, minor):
    python = python_or_skip(minor)
    project = build(tmp_path, {"v1": ["pydantic==1.10.18"], "v2": ["pydantic==2.9.2"]}, python=minor)
    result = host(project, """
        import datetime, pickle, warnings
        warnings.simplefilter("ignore")  # a VocabularyConflict with the host's typing_extensions is fine here
        result = {}
        for name in ("v1", "v2"):
            pd = ws.env(name).import_module("pydantic")

            class Order(pd.BaseModel):
                id: int
                when: datetime.date
                tags: list = []

            order = Order(id="7", when="2020-01-02")
            try:
                Order(id="x", when="2020-01-02")
                error = None
            except Exception as e:
                error = [type(e) is pd.ValidationError, type(e).__module__.split(".")[0] != "pydantic_core",
                         "id" in str(e), "errors.pydantic.dev/2.9/" in str(e)]
            dump = order.json() if name == "v1" else order.model_dump_json()
            result[name] = {"version": str(pd.VERSION), "error": error, "dump": json.loads(dump),
                            "pickle": pickle.loads(pickle.dumps(order)) == order}
            if name == "v1":
                result[name]["compiled"] = pd.compiled
            else:
                core = ws.env(name).import_module("pydantic_core")
                result[name]["core"] = [core.__name__ != "pydantic_core", core.ValidationError is pd.ValidationError,
                                        core._pydantic_core.__file__.endswith(".so")]
                result[name]["adapter"] = pd.TypeAdapter(list[int]).validate_python(["1", 2])
    """, python)
    dump = {"id": 7, "when": "2020-01-02", "tags": []}
    assert result["v1"] == {"version": "1.10.18", "error": [True, True, True, False], "dump": dump, "pickle": True,
                            "compiled": True}
    assert result["v2"] == {"version": "2.9.2", "error": [True, True, True, True], "dump": dump, "pickle": True,
                            "core": [True, True, True], "adapter": [1, 2]}


@pytest.mark.parametrize("minor", ["3.10", "3.11"])  # where pandas 2.0.3, 2.2.3 and numpy 2.2.6 all have wheels
def test_pandas_2_0_and_2_2_over_their_own_numpys(tmp_path, minor):
    """Seed 001: two dependencies pin different pandas; one of them uses Series.case_when (2.2 only)."""
    python = python_or_skip(minor)
    project = build(tmp_path, {"old": ["pandas==2.0.3", "numpy==1.26.4"], "new": ["pandas==2.2.3", "numpy==2.2.6"]},
                    python=minor)
    result = host(project, """
        result = {}
        for name in ("old", "new"):
            env = ws.env(name)
            pd, np = env.import_module("pandas"), env.import_module("numpy")
            df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
            s = df["a"] * 2
            result[name] = {
                "versions": [pd.__version__, np.__version__],
                "sum": int(s.sum()), "csv": df.to_csv(index=False).splitlines(),
                "numpy_is_env_own": type(s.to_numpy()) is np.ndarray,
                "groupby": df.groupby("b")["a"].sum().to_dict(),
                "dates": str(pd.Timestamp("2020-01-31") + pd.offsets.MonthEnd()),
                "case_when": (s.case_when([(s > 2, 0)]).tolist() if hasattr(s, "case_when") else None),
            }
    """, python)
    common = {"sum": 12, "csv": ["a,b", "1,x", "2,y", "3,z"], "numpy_is_env_own": True,
              "groupby": {"x": 1, "y": 2, "z": 3}, "dates": "2020-02-29 00:00:00"}
    assert result["old"] == {**common, "versions": ["2.0.3", "1.26.4"], "case_when": None}
    assert result["new"] == {**common, "versions": ["2.2.3", "2.2.6"], "case_when": [2, 0, 0]}


def test_numpy_2_4_the_newest_beside_numpy_1_26_and_the_hosts_numpy_2_3(tmp_path):
    """numpy 2.4's C code passes "numpy.dtypes.IntDType" aliases that its Python half strips of the literal
    "numpy.dtypes.": data, which the patch must leave as both halves have it (issue 11, finding 5). Its ``_simd``
    makes a module per CPU target, named ``numpy._core._simd.X86_V3`` in its m_name: the env's alias too."""
    project = build(tmp_path, {"np24": ["numpy==2.4.6"], "np126": ["numpy==1.26.4"], "hostnp": ["numpy==2.3.5"]})
    result = host(project, textwrap.dedent(NUMPY_CHECKS) + textwrap.dedent("""
        import os, pickle
        from polyvenv.runtime.sitedir import site_packages
        sys.path.insert(0, str(site_packages(ws.env_dir("hostnp"))))
        import numpy  # the host's own numpy, imported plainly before the envs load theirs
        result = {}
        for name in ("np24", "np126"):
            np = ws.env(name).import_module("numpy")
            result[name] = check(np)
            result[name]["own"] = [np.__name__ != "numpy",
                                   os.path.realpath(np.__file__).startswith(os.path.realpath(ws.env_dir(name))),
                                   np.ndarray is not numpy.ndarray]
            simd = ws.env(name).import_module("numpy._core._simd" if name == "np24" else "numpy.core._simd")
            result[name]["simd"] = [simd.__name__.startswith("numpy."), simd.baseline.simd > 0, sorted({
                v.__name__.partition(".")[0] == np.__name__ for v in vars(simd).values() if isinstance(v, type(simd))})]
            if name == "np24":
                result[name]["dtypes"] = [np.dtypes.IntDType is type(np.dtype(np.intc)), "IntDType" in np.dtypes.__all__,
                                          type(np.dtype("int32")).__module__ == "numpy.dtypes",
                                          pickle.loads(pickle.dumps(np.dtype("int32"))) == np.dtype("int32"),
                                          pickle.loads(pickle.dumps(type(np.dtype("int32")))) is type(np.dtype("int32"))]
        result["host"] = [numpy.__version__, sys.modules["numpy"] is numpy, int(numpy.arange(4).sum()),
                          numpy.dtypes.IntDType is type(numpy.dtype(numpy.intc))]
    """))
    expected = {"sum": 45, "error": [True, "UFuncTypeError", True], "memory": True, "linalg": 8.0, "fft": 4.0,
                "pickle": [True, True], "datetime": "2020-02-01", "own": [True, True, True]}
    for name, version, float_repr in (("np24", "2.4.6", "np.float64(0.1)"), ("np126", "1.26.4", "0.1")):
        got = {k: v for k, v in result[name].items() if k not in ("dtypes", "simd")}
        assert result[name]["simd"] == [False, True, [True]], name  # its SIMD submodules named by the env's alias
        assert got == {**expected, "version": version, "repr": float_repr, "random": got["random"]}, name
    assert result["np24"]["dtypes"] == [True, True, True, True, True]  # a DType class pickles as the env's own
    assert result["np24"]["random"] == result["np126"]["random"]
    assert result["host"] == ["2.3.5", True, 6, True]


def test_protobuf_6_and_7_with_generated_modules_beside_the_hosts_protobuf(tmp_path):
    """upb's C types and the generated ``_pb2`` classes name each env's own modules (the ``_pb2`` module
    passes its real name to protobuf's builder as a literal; upb 6's type specs sit where a module
    definition could), so pickle and copy stay within the env; each copy keeps its own descriptor pool;
    the wire bytes agree across the versions and the host's; the host's protobuf works as before."""
    project = build(tmp_path, {"old": ["protobuf==6.33.6", "googleapis-common-protos==1.75.5"],
                               "new": ["protobuf==7.36.2"], "hostpb": ["protobuf==7.36.2"]})
    result = host(project, """
        import copy, os, pickle
        from polyvenv.runtime.sitedir import site_packages
        sys.path.insert(0, str(site_packages(ws.env_dir("hostpb"))))
        from google.protobuf import json_format, timestamp_pb2  # the host's own, imported plainly first
        before = {k for k in sys.modules if k.partition(".")[0] == "google"}
        wire = timestamp_pb2.Timestamp(seconds=86400, nanos=5).SerializeToString()
        result = {}
        for name in ("old", "new"):
            env = ws.env(name)
            ts, dp = (env.import_module(f"google.protobuf.{m}_pb2") for m in ("timestamp", "descriptor"))
            upb = env.import_module("google._upb._message")
            unknown, wkt, api, symbols = (env.import_module(f"google.protobuf.{m}") for m in (
                "unknown_fields", "internal.well_known_types", "internal.api_implementation", "symbol_database"))
            t = ts.Timestamp(seconds=86400, nanos=5)
            nested = dp.DescriptorProto.ExtensionRange(start=3, end=9)  # pickled by its full name
            own = os.path.realpath(ws.env_dir(name)) + os.sep
            result[name] = {
                "modules": sorted({c.__module__.replace(ts.__name__.partition(".")[0], "<env>", 1) for c in (
                    ts.Timestamp, dp.FileDescriptorSet, dp.DescriptorProto.ExtensionRange, upb.ExtensionDict,
                    unknown.UnknownFieldSet, upb.Message, type(ts.Timestamp))}),
                "own": [ts.__name__ != "google.protobuf.timestamp_pb2", os.path.realpath(upb.__file__).startswith(own),
                        ts.Timestamp is not timestamp_pb2.Timestamp,
                        ts.Timestamp.DESCRIPTOR.file.pool is not timestamp_pb2.Timestamp.DESCRIPTOR.file.pool,
                        api.Type() == "upb", issubclass(ts.Timestamp, wkt.Timestamp), str(t.ToDatetime()),
                        symbols.Default().GetSymbol("google.protobuf.Timestamp") is ts.Timestamp,
                        type(ts.DESCRIPTOR.GetOptions()) is dp.FileOptions],  # upb imports descriptor_pb2 by name
                "pickle": [type(pickle.loads(pickle.dumps(t))) is ts.Timestamp, pickle.loads(pickle.dumps(t)) == t,
                           type(pickle.loads(pickle.dumps(nested))) is type(nested), copy.deepcopy(t) == t,
                           type(copy.copy(t)) is ts.Timestamp],
                "wire": [t.SerializeToString() == wire, ts.Timestamp.FromString(wire) == t,
                         env.import_module("google.protobuf.json_format").MessageToJson(t)],
            }
        old, new = (ws.env(n).import_module("google.protobuf.timestamp_pb2") for n in ("old", "new"))
        result["pools"] = old.DESCRIPTOR.pool is not new.DESCRIPTOR.pool
        crossed = new.Timestamp()
        crossed.ParseFromString(old.Timestamp(seconds=77).SerializeToString())
        status_pb2 = ws.env("old").import_module("google.rpc.status_pb2")
        status = status_pb2.Status(code=5, message="missing")
        status.details.add().Pack(old.Timestamp(seconds=9))
        unpacked = old.Timestamp()
        result["across"] = [crossed.seconds, timestamp_pb2.Timestamp.FromString(crossed.SerializeToString()).seconds,
                            status_pb2.Status.__module__.partition(".")[0] == old.__name__.partition(".")[0] != "google",
                            type(pickle.loads(pickle.dumps(status))) is status_pb2.Status,
                            status.details[0].Unpack(unpacked) and unpacked.seconds,
                            status.details[0].type_url]
        appeared = sorted({k for k in sys.modules if k.partition(".")[0] == "google"} - before)
        from google.protobuf import struct_pb2  # the host imports more of its own after the envs
        h = timestamp_pb2.Timestamp.FromString(wire)
        result["host"] = [appeared, timestamp_pb2.Timestamp.__module__, json_format.MessageToJson(h),
                          type(pickle.loads(pickle.dumps(h))) is timestamp_pb2.Timestamp,
                          struct_pb2.Struct.__module__, json_format.MessageToDict(struct_pb2.Struct(fields={"a": struct_pb2.Value(number_value=1.5)}))]
    """)
    for name in ("old", "new"):
        assert result[name] == {
            "modules": ["<env>._upb._message", "<env>.protobuf.descriptor_pb2", "<env>.protobuf.timestamp_pb2"],
            "own": [True] * 6 + ["1970-01-02 00:00:00", True, True], "pickle": [True] * 5, "wire": [True, True, '"1970-01-02T00:00:00.000000005Z"']}, name
    assert result["pools"] is True
    assert result["across"] == [77, 77, True, True, 9, "type.googleapis.com/google.protobuf.Timestamp"]
    assert result["host"] == [[], "google.protobuf.timestamp_pb2", '"1970-01-02T00:00:00.000000005Z"', True,
                              "google.protobuf.struct_pb2", {"a": 1.5}]


def test_lxml_keeps_per_thread_state_per_copy_and_the_hosts_lxml_parses_as_before(tmp_path):
    """lxml keeps its parser context and error log in ``PyThreadState_GetDict()`` under class names: each
    env's copy gets a thread dict of its own, so two envs' lxml and the host's own (the test venv's 6.1.3)
    parse in the same threads, each with its own classes (issue 11, finding 2)."""
    pytest.importorskip("lxml.etree")
    project = build(tmp_path, {"lx54": ["lxml==5.4.0"], "lx60": ["lxml==6.0.2"]})
    result = host(project, """
        import os, threading
        from lxml import etree  # the host's own lxml, imported plainly

        def parse(e):
            root = e.fromstring("<a><b>1</b><b>2</b></a>")
            try:
                e.fromstring("<a><b></a>")
                error = None
            except e.XMLSyntaxError as failed:  # its error log is per thread too
                error = [type(failed) is e.XMLSyntaxError, len(failed.error_log) > 0]
            return [len(root), root.xpath("string(//b[2])"), e.tostring(root).decode(), type(root).__module__, error]

        def run(out):
            try:
                out.append(parse(etree))
                for name in ("lx54", "lx60"):
                    e = ws.env(name).import_module("lxml.etree")
                    out.append([e.__version__, os.path.realpath(e.__file__).startswith(os.path.realpath(
                        ws.env_dir(name))), e._Element is not etree._Element] + parse(e))
                out.append(parse(etree))  # the host's again, in the thread where both envs' ran
            except Exception as exc:
                out.append(repr(exc))

        main, other = [], []
        run(main)
        thread = threading.Thread(target=run, args=(other,))
        thread.start()
        thread.join()
        run(main)
        envs = [os.path.realpath(ws.env_dir(n)) for n in ("lx54", "lx60")]
        result = {"main": main, "thread": other, "host": [etree.__version__, sys.modules["lxml.etree"] is etree,
                  [k for k, m in sys.modules.items() if k.partition(".")[0] == "lxml" and any(
                      os.path.realpath(getattr(m, "__file__", None) or "").startswith(d) for d in envs)]]}
    """)
    host_parse = [2, "2", "<a><b>1</b><b>2</b></a>", "lxml.etree", [True, True]]
    for version, got in (("5.4.0", 1), ("6.0.2", 2)):
        for run in (result["main"][:3], result["thread"], result["main"][4:7]):
            assert run[got][:3] == [version, True, True], run
            assert run[got][3:6] + run[got][7:] == host_parse[:3] + host_parse[4:], run
            assert run[got][6] not in ("lxml.etree", host_parse[3]), run  # the env's own module name
    for run in (result["main"], result["thread"]):
        assert run[0] == host_parse and run[3] == host_parse, run
    assert result["host"] == ["6.1.3", True, []]


def test_pandas_3_1_built_with_cython_3_3_loads_in_an_env(tmp_path):
    """pandas 3.1's Cython 3.3 modules keep their packed strings' lengths in tables the patch must find: one
    ``.rodata`` table far before the packed strings (algos, hashtable), one built on the stack with a length
    of 256 written as its high byte alone (period). Missed, those modules import the real ``numpy``."""
    project = build(tmp_path, {"pd31": ["pandas==3.1.1"]})  # beside other pandas: test_pandas_2_0_and_2_2_...
    result = host(project, """
        import os
        result = {}
        for name in ("pd31",):
            pd = ws.env(name).import_module("pandas")
            frame = pd.DataFrame({"a": [3, 1, 2, 1], "b": ["x", "y", "x", "z"]})
            result[name] = [pd.__version__, os.path.realpath(pd.__file__).startswith(os.path.realpath(ws.env_dir(name))),
                            type(frame).__module__ != "pandas.core.frame", int(frame["a"].sum()),
                            frame["a"].rank().tolist(), pd.factorize(frame["b"])[0].tolist(),
                            str(pd.Period("2020-01", freq="M") + 1)]
        result["host"] = sorted(k for k in sys.modules if k.partition(".")[0] in ("pandas", "numpy"))
    """)
    assert result["pd31"] == ["3.1.1", True, True, 7, [4.0, 1.5, 3.0, 1.5], [0, 1, 0, 2], "2020-02"]
    assert result["host"] == []
