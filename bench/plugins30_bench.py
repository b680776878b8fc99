"""Issue 13, "Measure": a plugin host loading 30 plugin envs that agree on numpy and pandas.

Run from the repository root (after `scripts/bootstrap`):

    .venv/bin/python bench/plugins30_bench.py [--envs N] [--runs N] [--instructions] [--json] [--table FILE] [--keep]

The workspace: N envs (default 30), env i holding its own plugin, `plugin_i` (a generated pure wheel at its
own pin, 1.i.0, found in no other env), with numpy 2.2.6 where i % 3 == 2 (a third: ten of 30) and numpy
1.26.4 elsewhere (twenty), and pandas 2.2.3 (built for both numpys) where i % 6 is 0 or 2 (ten of 30, half
with each numpy). Each plugin's `__init__` imports numpy (and pandas where it has it), as a plugin does.
Built with `polyvenv sync` from uv's cache (UV_OFFLINE=1: numpy 1.26.4, 2.2.6 and pandas 2.2.3 must be in
it; `uv pip install --offline` says whether they are).

Every figure is a fresh subprocess (so runs do not see each other's modules or caches), in one bench run:

- **all N**: one host process, `import polyvenv`, `Workspace.load`, then `ws.env(f"p{i}").import_module(
  f"plugin_{i}")` for every env; time and RSS growth from before `import polyvenv` to the last plugin
  imported (the host pays the runtime too).
- **ONE env**: the same for env p0 alone (numpy 1.26.4 + pandas: the heaviest kind).
- **plain, distinct set**: the distinct distributions loaded once with no polyvenv: numpy 1.26.4 and 2.x
  cannot be in one venv, so two plain venvs (A: numpy 1.26.4 + pandas + the plugins of those envs; B: numpy
  2.2.6 + pandas + theirs), each a process importing its plugins; the figure is the SUM of the two
  processes (time and RSS growth each from before the first import). That is what perfect sharing would
  pay (plus a second interpreter's start, not counted).
- **first start after sync**: the POLYVENV_CACHE_DIR `sync` filled (its warm-up rewrote the code and
  patched the extensions), one run each (ONE env, then all N); plain: the venvs' `__pycache__` removed,
  as uv leaves a venv it installs (its first start compiles). What a plugin host's users see first.
- **cold, nothing cached**: a fresh POLYVENV_CACHE_DIR (nothing rewritten or byte-patched yet: `sync
  --no-warm`, or a load whose preferred aliases are all taken), one run each, against the same plain.
- **warm**: the cache of `sync` and the first start, the plain venvs' .pyc written; medians of --runs
  interleaved rounds (one, all, plain A, plain B in turn), and each round's all / plain (a shared
  machine's speed drifts within seconds; a round's all and plain ran one after the other).
  With --instructions (valgrind), also the user-space instructions of the warm all-N load and of the
  plain processes' loads (cachegrind; each less the same child importing nothing): the same work counted
  whatever the machine's speed, though not what memory and caches cost.
- **tracemalloc**: the Python allocations traced over the same span, in warm processes of their own
  (tracing slows imports; numpy's C allocations of module state are not traced, so RSS is the figure that
  counts), with the standard-library and polyvenv modules the load imports imported first (they stay in
  the host by design).
- **unload**: the traced all-N process then `unload()`s every env, drops its references and
  `gc.collect()`s: the share of the traced growth and of the RSS growth that came back (target >= 90%);
  the plain processes delete their modules from `sys.modules` for the same figure of CPython itself, which
  never frees an extension module (nor what its module state references).
- **what the plugins got**: each plugin's numpy and pandas version against its pin (must match), how many
  distinct numpy/pandas module objects the N plugins hold (today one per env; with sharing between envs,
  one per distinct closure), and whether an array made by one plugin goes into another plugin with the
  same numpy pin (same `ndarray` type; `np.add.reduce` of it). Each plugin's import is timed too (in
  `--json`; the table names the first and last env of each kind): does the n-th env cost what the first did?

The build (`sync`) is timed too, for information. Everything happens in a temporary directory, removed
at the end (unless --keep); children run without PYTHONDONTWRITEBYTECODE. Targets (issue 13): memory and
warm time of all N at most 1.2x the plain distinct set, cold at most 1.2x; >= 90% back after unload.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from build_bench import render, say, source_state  # noqa: E402  (same table style)

from wheelgen import make_wheel  # noqa: E402

VENV_BIN = Path(sys.executable).parent
UV = VENV_BIN / "uv"
NUMPY_OLD, NUMPY_NEW, PANDAS = "1.26.4", "2.2.6", "2.2.3"
TARGET_RATIO = 1.2  # all N against the plain distinct set: warm time, memory, cold time
CACHEGRIND = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
TARGET_BACK = 0.90  # share of the memory the load took that unload returns

# A plugin: imports its numpy (and pandas) as it is imported; a maker and a consumer of arrays.
PLUGIN = '''\
"""Plugin {i}: pinned to numpy {numpy}{pandas_note}."""
import numpy as np
{pandas_import}
__version__ = {version!r}
NUMPY_PIN = {numpy!r}
PANDAS_PIN = {pandas!r}


def make():
    return np.arange(10.0)


def total(a):
    """This plugin's numpy applied to an array, perhaps made by another plugin."""
    return float(np.add.reduce(a))
'''

# One child process; argv: mode ("polyvenv" or "plain"), a JSON object of options. Prints one JSON line.
CHILD = r'''
import gc, json, os, sys, time
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
mode, opts = sys.argv[1], json.loads(sys.argv[2])
for name in opts.get("preimport", ()):  # modules the load leaves in the host by design (unload run)
    try:
        __import__(name)
    except ImportError:
        pass
if opts.get("trace"):
    import tracemalloc
    tracemalloc.start()
traced = lambda: tracemalloc.get_traced_memory()[0] if opts.get("trace") else None
gc.collect()
before_modules = set(sys.modules)
rss0, traced0, t0 = rss(), traced(), time.perf_counter()
if opts.get("start"):  # --instructions: what the interpreter and this script cost alone
    raise SystemExit(0)
if mode == "polyvenv":
    import polyvenv
    ws = polyvenv.Workspace.load(opts["root"])
    envs = [ws.env(f"p{i}") for i in opts["plugins"]]
    imports = [lambda env=env, i=i: env.import_module(f"plugin_{i}") for env, i in zip(envs, opts["plugins"])]
else:
    import importlib
    imports = [lambda i=i: importlib.import_module(f"plugin_{i}") for i in opts["plugins"]]
plugins, each = [], []
for load in imports:  # each plugin's import timed too: does the n-th cost what the first did?
    started = time.perf_counter()
    plugins.append(load())
    each.append(time.perf_counter() - started)
seconds, rss1, traced1 = time.perf_counter() - t0, rss(), traced()
del load, imports
out = {"seconds": seconds, "rss": rss1 - rss0, "traced": None if traced0 is None else traced1 - traced0,
       "each": dict(zip(opts["plugins"], each))}
# what the plugins got
out["wrong_pins"] = [p.__name__ for p in plugins
                     if p.np.__version__ != p.NUMPY_PIN or (p.PANDAS_PIN and p.pd.__version__ != p.PANDAS_PIN)]
out["numpy_copies"] = len({id(p.np) for p in plugins})
out["pandas_copies"] = len({id(p.pd) for p in plugins if p.PANDAS_PIN})
same = [p for p in plugins if p.NUMPY_PIN == plugins[0].NUMPY_PIN]
if len(same) > 1:
    maker, user = same[0], same[1]
    array = maker.make()
    out["same_ndarray_type"] = type(array) is user.np.ndarray
    try:
        out["crossing"] = "ok" if user.total(array) == 45.0 else "wrong answer"
    except BaseException as exc:  # what a user would see, in one line
        out["crossing"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''}"
    del array
if mode == "polyvenv":
    from polyvenv.runtime.namemap import ALIASES
    out["host_modules"] = sorted(m for m in set(sys.modules) - before_modules
                                 if ALIASES.owner(m.partition(".")[0]) is None)
if opts.get("unload"):  # polyvenv: every env's unload(); plain: what a host can do, forget the modules
    del plugins, same
    maker = user = None
    if mode == "polyvenv":
        for env in envs:
            env.unload()
    else:
        for name in set(sys.modules) - before_modules:
            del sys.modules[name]
    gc.collect()
    rss2, traced2 = rss(), traced()
    out["rss_back"] = (rss1 - rss2) / (rss1 - rss0)
    out["traced_back"] = (traced1 - traced2) / (traced1 - traced0)
    out["modules_alive"] = sum(1 for o in gc.get_objects() if type(o) is type(sys)
                                and sys.modules.get(getattr(o, "__name__", "")) is not o)
print(json.dumps(out))
'''


def kinds(count: int) -> list[tuple[str, str]]:
    """Env i's (numpy, pandas or "") pins: a third with numpy 2, pandas in one env of every three... six."""
    return [(NUMPY_NEW if i % 3 == 2 else NUMPY_OLD, PANDAS if i % 6 in (0, 2) else "") for i in range(count)]


def requirements(i: int, numpy: str, pandas: str) -> list[str]:
    return [f"plugin_{i}==1.{i}.0", f"numpy=={numpy}"] + ([f"pandas=={pandas}"] if pandas else [])


class Bench:
    def __init__(self, tmp: Path, count: int) -> None:
        self.tmp = tmp
        self.kinds = kinds(count)
        self.root = tmp / "project"
        self.wheels = tmp / "wheels"
        self.environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
        self.environ.update(UV_OFFLINE="1", OPENBLAS_NUM_THREADS="1")
        # polyvenv's children import this checkout's src (an editable install may point at another worktree)
        self.polyvenv_environ = dict(self.environ, PYTHONPATH=str(HERE.parent / "src"))

    def cache(self, label: str) -> dict[str, str]:
        """Children's environment with a POLYVENV_CACHE_DIR of their own (a fresh one is cold)."""
        return dict(self.polyvenv_environ, POLYVENV_CACHE_DIR=str(self.tmp / f"cache-{label}"))

    def build(self) -> dict[str, float]:
        for i, (numpy, pandas) in enumerate(self.kinds):
            note = f" and pandas {pandas}" if pandas else ""
            code = PLUGIN.format(i=i, numpy=numpy, pandas=pandas, pandas_note=note, version=f"1.{i}.0",
                                 pandas_import="import pandas as pd" if pandas else "pd = None")
            make_wheel(self.wheels, f"plugin_{i}", f"1.{i}.0", {f"plugin_{i}/__init__.py": code},
                       requires=requirements(i, numpy, pandas)[1:])
        self.root.mkdir()
        body = f'wheelhouse = "{self.wheels}"\n'
        for i, kind in enumerate(self.kinds):
            body += f"\n[envs.p{i}]\nrequirements = {json.dumps(requirements(i, *kind))}\n"
        (self.root / "polyvenv.toml").write_text(body)
        started = time.perf_counter()
        self.run([sys.executable, "-m", "polyvenv", "-q", "sync"], cwd=self.root, env=self.cache("sync"))
        timings = {"sync": time.perf_counter() - started}
        started = time.perf_counter()
        for venv, numpy in (("A", NUMPY_OLD), ("B", NUMPY_NEW)):
            path = self.tmp / f"plain-{venv}"
            self.run([str(UV), "venv", "-q", "--python", sys.executable, str(path)])
            reqs = [r for i in self.plain(numpy) for r in requirements(i, *self.kinds[i])]
            self.run([str(UV), "pip", "install", "-q", "--python", str(path / "bin" / "python"),
                      "--find-links", str(self.wheels), *sorted(set(reqs))])
        timings["plain venvs"] = time.perf_counter() - started
        return timings

    def plain(self, numpy: str) -> list[int]:
        """The plugins of the envs with this numpy: one plain venv holds them all."""
        return [i for i, (pin, _) in enumerate(self.kinds) if pin == numpy]

    def run(self, argv: Sequence[str], **kwargs: Any) -> str:
        kwargs.setdefault("env", self.environ)
        proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
        if proc.returncode:
            raise SystemExit(f"bench: {' '.join(map(str, argv[:4]))} ... exited {proc.returncode}:\n{proc.stderr}")
        return proc.stdout

    def polyvenv(self, plugins: Sequence[int], cache: str, **opts: Any) -> dict[str, Any]:
        options = dict(opts, root=str(self.root), plugins=list(plugins))
        out = self.run([sys.executable, "-c", CHILD, "polyvenv", json.dumps(options)], env=self.cache(cache))
        return json.loads(out)

    def instructions(self) -> dict[str, int]:
        """--instructions: the user-space instructions of the warm all-N load and of the two plain processes'
        loads (cachegrind), each less those of the same child importing nothing (the interpreter's start)."""
        counts: dict[str, int] = {}
        runs = [("all", [sys.executable], "polyvenv", list(range(len(self.kinds))), self.cache("sync"))]
        runs += [(venv, [str(self.tmp / f"plain-{venv}" / "bin" / "python")], "plain", self.plain(numpy), self.environ)
                 for venv, numpy in (("A", NUMPY_OLD), ("B", NUMPY_NEW))]
        for label, python, mode, plugins, environ in runs:
            for what, chosen in ((label, plugins), (f"{label} start", [])):
                options = json.dumps({"root": str(self.root), "plugins": chosen, "start": not chosen})
                proc = subprocess.run([*CACHEGRIND, *python, "-c", CHILD, mode, options], capture_output=True,
                                      text=True, env=environ)
                found = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
                if proc.returncode or not found:
                    raise SystemExit(f"bench: cachegrind of {what} failed:\n{proc.stderr[-2000:]}")
                counts[what] = int(found[1].replace(",", ""))
        return {"all": counts["all"] - counts["all start"],
                "plain": sum(counts[v] - counts[f"{v} start"] for v in ("A", "B"))}

    def plain_pair(self, **opts: Any) -> dict[str, Any]:
        """Both plain venvs' processes, their figures summed (numpy 1.26 and 2.x need two venvs)."""
        outs = []
        for venv, numpy in (("A", NUMPY_OLD), ("B", NUMPY_NEW)):
            options = dict(opts, plugins=self.plain(numpy))
            python = self.tmp / f"plain-{venv}" / "bin" / "python"
            outs.append(json.loads(self.run([str(python), "-c", CHILD, "plain", json.dumps(options)])))
        total = {k: sum(o[k] for o in outs) if outs[0][k] is not None else None for k in ("seconds", "rss", "traced")}
        if opts.get("unload"):  # the share of both processes' growth that came back
            for back, grown in (("rss_back", "rss"), ("traced_back", "traced")):
                total[back] = sum(o[back] * o[grown] for o in outs) / total[grown]
            total["modules_alive"] = sum(o["modules_alive"] for o in outs)
        return dict(total, wrong_pins=[p for o in outs for p in o["wrong_pins"]],
                    each={i: t for o in outs for i, t in o["each"].items()},
                    **{k: sum(o[k] for o in outs) for k in ("numpy_copies", "pandas_copies")})

    def remove_pyc(self) -> None:
        for venv in ("A", "B"):
            for cache in (self.tmp / f"plain-{venv}").glob("lib/python*/site-packages/**/__pycache__"):
                shutil.rmtree(cache, ignore_errors=True)


def measure(b: Bench, runs: int, instructions: bool = False) -> dict[str, Any]:
    everyone = range(len(b.kinds))
    results: dict[str, Any] = {}
    say("first start after sync (the cache sync filled): one env, all envs; plain venvs without .pyc")
    b.remove_pyc()
    plain = b.plain_pair()  # a plain venv's first start after its install: uv writes no .pyc
    results["first"] = {"one": b.polyvenv([0], "sync"), "all": b.polyvenv(everyone, "sync"), "plain": plain}
    say("cold, nothing cached (fresh caches: sync --no-warm, or every alias taken): one env, all envs")
    results["cold"] = {"one": b.polyvenv([0], "cold-one"), "all": b.polyvenv(everyone, "cold-all"),
                       "plain": plain}
    for label in ("cold-one", "cold-all"):
        shutil.rmtree(b.tmp / f"cache-{label}", ignore_errors=True)
    warm: dict[str, list[dict[str, Any]]] = {"one": [], "all": [], "plain": []}
    for round_ in range(runs):
        say(f"warm round {round_ + 1}/{runs}")
        warm["one"].append(b.polyvenv([0], "sync"))
        warm["all"].append(b.polyvenv(everyone, "sync"))
        warm["plain"].append(b.plain_pair())
    results["warm"] = {k: median_run(v) for k, v in warm.items()}
    say("tracemalloc, unload: all envs; then plain, one env")
    preimport = warm["all"][0]["host_modules"]  # they stay in the host by design: imported first
    results["unload"] = b.polyvenv(everyone, "sync", trace=True, unload=True, preimport=preimport)
    results["unload plain"] = b.plain_pair(trace=True, unload=True, preimport=preimport)
    results["traced"] = {"one": b.polyvenv([0], "sync", trace=True, preimport=preimport)["traced"],
                         "all": results["unload"]["traced"], "plain": results["unload plain"]["traced"]}
    if instructions:
        if shutil.which("valgrind"):
            say("instructions: the warm loads under cachegrind (about a minute)")
            results["instructions"] = b.instructions()
        else:
            say("--instructions: valgrind is not on PATH; skipped")
    return results


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The first run's facts, with each figure the median over the runs."""
    medians = {k: statistics.median(r[k] for r in runs) for k in ("seconds", "rss")}
    each = {i: statistics.median(r["each"][i] for r in runs) for i in runs[0]["each"]}
    return dict(runs[0], **medians, each=each, runs=len(runs), every_seconds=[r["seconds"] for r in runs])


def x(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def table(results: dict[str, Any]) -> str:
    """The table, from the figures alone (as `--json` prints them: `--table FILE` renders a saved run)."""
    envs = kinds(results["envs"])
    n, new = len(envs), sum(1 for numpy, _ in envs if numpy == NUMPY_NEW)
    pandas = sum(1 for _, p in envs if p)
    load = " -> ".join(f"{v:.1f}" for v in (results["load"][0], results["load"][-1]))
    rows: list[list[str] | str] = [
        f"{n} plugin envs: {n - new} with numpy {NUMPY_OLD}, {new} with numpy {NUMPY_NEW}, {pandas} with pandas"
        f" {PANDAS}; polyvenv {results['source']}; load average (1 min) {load}; {results['seconds']:.0f} s in all",
        f"plain = the distinct distributions once: two plain venvs (numpy {NUMPY_OLD} / {NUMPY_NEW}), the sum of"
        f" their two processes; warm = medians of {results['runs']} interleaved runs; first start after sync ="
        " one run on the cache sync filled (plain: no .pyc, as uv installs); cold = one run, fresh cache",
        ["", "time s", "x one", "x plain", "RSS +MB", "x one", "x plain", "numpy copies", "pins"],
    ]
    temps = {"warm": "warm", "first": "first start after sync", "cold": "cold, nothing cached"}
    for temp in [t for t in temps if t in results]:  # "first": since 2026-12-04
        one, everyone, plain = (results[temp][k] for k in ("one", "all", "plain"))
        for label, r in ((f"{temps[temp]}: load ONE env (p0)", one),
                         (f"{temps[temp]}: load all {n} into one host", everyone),
                         (f"{temps[temp]}: plain venvs, distinct set once", plain)):
            seconds, rss = r["seconds"], r["rss"]
            rows.append([label, f"{seconds:.2f}", x(seconds, one["seconds"]), x(seconds, plain["seconds"]),
                         f"{rss / 2**20:.1f}", x(rss, one["rss"]), x(rss, plain["rss"]),
                         str(r["numpy_copies"]), "ok" if not r["wrong_pins"] else f"WRONG {len(r['wrong_pins'])}"])
    traced = results["traced"]
    rows.append(f"tracemalloc (warm, Python allocations): one {traced['one'] / 2**20:.1f} MB, all {n}"
                f" {traced['all'] / 2**20:.1f} MB ({x(traced['all'], traced['one'])} one,"
                f" {x(traced['all'], traced['plain'])} plain), plain {traced['plain'] / 2**20:.1f} MB")
    unload = results["unload"]
    plain = results["unload plain"]
    rows.append(f"after unloading all {n} + gc.collect(): {unload['traced_back']:.0%} of the traced memory back"
                f" (target >= {TARGET_BACK:.0%}), {unload['rss_back']:.0%} of the RSS; {unload['modules_alive']}"
                f" module objects still alive outside sys.modules")
    rows.append(f"  plain, its modules deleted from sys.modules + gc.collect(): {plain['traced_back']:.0%} traced,"
                f" {plain['rss_back']:.0%} RSS back; {plain['modules_alive']} module objects alive (CPython keeps"
                f" numpy's and pandas' extension modules, and what they reference, for the process's life)")
    warm = results["warm"]["all"]
    if "crossing" in warm:
        rows.append(f"an array made by one plugin into another with the same numpy pin: same ndarray type"
                    f" {warm['same_ndarray_type']}; np.add.reduce -> {warm['crossing']}")
    rows.append(f"pandas copies loaded by the {pandas} pandas plugins: {warm['pandas_copies']}"
                f" (plain: {results['warm']['plain']['pandas_copies']})")
    rounds = [a / p for a, p in zip(results["warm"]["all"].get("every_seconds", ()),
                                    results["warm"]["plain"].get("every_seconds", ()))]
    if rounds:  # the machine's speed drifts: each round's all and plain ran one after the other
        rows.append(f"warm all / plain, round by round: {', '.join(f'{r:.2f}x' for r in rounds)}"
                    f" (median {statistics.median(rounds):.2f}x)")
    counted = results.get("instructions")
    if counted:  # the same work whatever the machine's speed does meanwhile
        rows.append(f"user-space instructions of the warm loads (cachegrind, the interpreter's start left out): all {n}"
                    f" {counted['all'] / 1e9:.2f} G, plain {counted['plain'] / 1e9:.2f} G:"
                    f" {counted['all'] / counted['plain']:.2f}x")
    rows.append("targets (all / plain <= 1.2x): " + ", ".join(
        f"{k} {f} {results[k]['all'][f] / results[k]['plain'][f]:.2f}x "
        f"{'met' if results[k]['all'][f] / results[k]['plain'][f] <= TARGET_RATIO else 'NOT met'}"
        for k, f in (("warm", "seconds"), ("warm", "rss"), ("first", "seconds"), ("cold", "seconds")) if k in results) +
        f"; unload {'met' if unload['traced_back'] >= TARGET_BACK else 'NOT met'}")
    each = {int(i): t for i, t in results["warm"]["all"]["each"].items()}
    firsts = []
    for kind in sorted(set(envs), reverse=True):
        same = [i for i, k in enumerate(envs) if k == kind]
        label = f"numpy {kind[0]}" + (" + pandas" if kind[1] else "")
        firsts.append(f"{label}: p{same[0]} {each[same[0]]:.2f} s, p{same[-1]} {each[same[-1]]:.2f} s")
    rows.append(f"each import in the warm all-{n} host (first and last env of each kind): " + "; ".join(firsts))
    build = results["build"]
    rows.append(f"build: polyvenv sync of {n} envs {build['sync']:.0f} s; the two plain venvs"
                f" {build['plain venvs']:.0f} s (uv, warm cache)")
    return render(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, default=30, help="plugin envs (default 30; at least 3)")
    parser.add_argument("--runs", type=int, default=3, help="warm rounds (medians)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    parser.add_argument("--table", type=Path, metavar="FILE", help="only render the table of a saved --json run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--instructions", action="store_true",
                        help="also count the warm loads' instructions (valgrind's cachegrind; about a minute)")
    args = parser.parse_args(argv)
    if args.table:
        print(table(json.loads(args.table.read_text())))
        return 0
    if args.envs < 3:
        parser.error("--envs must be at least 3 (both numpys and pandas)")
    tmp = Path(tempfile.mkdtemp(prefix="polyvenv-plugins30-"))
    started, load, source = time.perf_counter(), os.getloadavg()[0], source_state()
    try:
        b = Bench(tmp, args.envs)
        say(f"building {args.envs} envs and two plain venvs in {tmp}")
        build = b.build()
        results = measure(b, args.runs, args.instructions)
        results.update(envs=args.envs, runs=args.runs, build=build, source=source,
                       load=[load, os.getloadavg()[0]], seconds=time.perf_counter() - started)
        print(json.dumps(results, indent=1) if args.json else table(results))
    finally:
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
