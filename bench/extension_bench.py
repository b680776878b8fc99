"""Benchmark: compiled extensions in an env (numpy 1.26.4 from relocated copies) against plain CPython.

Run from the repository root:

    .venv/bin/python bench/extension_bench.py [--quick] [--runs N] [--rounds N] [--no-pin] [--keep]

One run builds a workspace of two envs with `python -m polyvenv sync` (np:
numpy==1.26.4; j: jinja2 3.1.x, with markupsafe's C speedups) in a
temporary directory under /tmp and prints one table:

1. Fresh-process numpy import: `import polyvenv`, `Workspace.load`,
   `ws.env("np").import_module("numpy")` with the host's interpreter against
   `<env>/bin/python -c "import numpy"` (target <= 1.10x warm). Cold = the
   first run after emptying polyvenv's cache (rewritten code and relocated
   copies: rewriting and byte patching paid once; also each on its own), for
   plain Python after removing the env's .pyc files. Warm = medians of
   interleaved fresh processes. Then where the time goes: in-process phases
   (code cache reads, relocated-copy checks, dlopen + init of the copies,
   the extension check) against the same phases of plain Python, and
   -X importtime self times of polyvenv's process against plain Python's.
2. Calls into the env's numpy (`a.sum()`, `np.add(a, a)`, `a @ a`,
   `np.linalg.inv`) and jinja2 (`t.render(...)` of a built template, and
   `Template(src).render(...)`, which compiles) against the same calls in
   the env's own interpreter importing normally (target 1.00x, within
   TOLERANCE: nothing of polyvenv should be on the call path). Per round
   and library, three fresh processes (plain, polyvenv with both envs
   loaded, plain again: the control) live together and take timeit
   samples in turn, one process at a time; each keeps its best per
   statement. Ratio = median over rounds of polyvenv / plain; control =
   the second plain process / the first. The polyvenv process also checks,
   with sys.setprofile, which polyvenv functions run during one call of
   each statement, and times the steps of the env's `compile` on the
   Python code jinja2 generates for the template.
3. Disk: polyvenv's cache after parts 1 and 2 (relocated copies + rewritten
   code, `du -sk`) against the two envs' own site-packages (`du -skL`).

Once the workspace is built, the bench pins itself, and so every timed
process, to one CPU (--no-pin: not): on the 2-vCPU VM it was written on, a
process's speed swings ~1.5x with the CPU it lands on and with the other
CPU's load; pinned and interleaved, the variants compared see the same.
Part 2's processes run with OPENBLAS_NUM_THREADS=1 (OpenBLAS's spinning
threads made `np.linalg.inv` bimodal).

Everything happens in the temporary directory, removed at the end (unless
--keep). Child Pythons run without PYTHONDONTWRITEBYTECODE, with
PYTHONPYCACHEPREFIX and POLYVENV_CACHE_DIR inside the temp dir (written
nowhere else, except the shared uv cache).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_bench import du_kib, say, source_state  # noqa: E402  (same directory, same table style)
from runtime_bench import (Bench, attribution, env_tops, importtime, met, ms, ns, print_parts,  # noqa: E402
                           warm_medians, x)

VENV_BIN = Path(sys.executable).parent
POLYVENV = VENV_BIN / "polyvenv"

NP, J = "np", "j"
WORKSPACE_TOML = f"""\
[envs.{NP}]
requirements = ["numpy==1.26.4"]

[envs.{J}]
requirements = ["jinja2>=3.1,<3.2"]
"""

TARGET_FRESH = 1.10  # warm fresh-process numpy import through polyvenv / the env's python -c "import numpy"
TARGET_CALLS = 1.00  # calls into the env's modules / the same calls in plain CPython
TOLERANCE = 0.03  # ... met while within this of TARGET_CALLS (compare the control column)
DISCARD = 3  # part 2: samples each process takes, in turn with the others, before those that count

# Part 2's statements, per library: set-up (names bound: np, or jinja2) and the timed calls.
TEMPLATE = "{% for n in names %}{{ loop.index }}. {{ n|upper }}{% if not loop.last %}, {% endif %}{% endfor %}"
CALLS = {
    "numpy": {
        "setup": "a = np.arange(1000.0)\n"
                 "m = np.array([[4.0, 1, 0, 0], [1, 4, 1, 0], [0, 1, 4, 1], [0, 0, 1, 4]])",
        "statements": ["a.sum()", "np.add(a, a)", "a @ a", "np.linalg.inv(m)"],
        "labels": ["`a.sum()`, a = np.arange(1000.0)", "`np.add(a, a)`", "`a @ a`", "`np.linalg.inv(m)`, m 4x4"],
    },
    "jinja2": {
        "setup": f"Template = jinja2.Template\nsrc = {TEMPLATE!r}\nt = Template(src)\n"
                 "names = ['ada', 'grace', 'linus', 'barbara', 'ken', 'guido']",
        "statements": ["t.render(names=names)", "Template(src).render(names=names)"],
        "labels": ["`t.render(names=...)`, t built once (a loop of 6)",
                   "`Template(src).render(names=...)` (compiles each time)"],
    },
}

# -- code run in child processes ---------------------------------------------------

BREAKDOWN_PV = r'''
"""Part 1's breakdown, polyvenv: where a fresh process's numpy import spends its time; argv: ws env module."""
import sys, time
startup = set(sys.modules)
t0 = time.perf_counter()
import polyvenv
t1 = time.perf_counter()
ws = polyvenv.Workspace.load(sys.argv[1])
t2 = time.perf_counter()
env = ws.env(sys.argv[2])
t3 = time.perf_counter()
env.names  # the env's top-level names (a directory scan) and their aliases
t4 = time.perf_counter()
from polyvenv.runtime.namemap import ALIASES
setup_imports = sorted(k for k in set(sys.modules) - startup
                       if k.partition(".")[0] != "polyvenv" and ALIASES.owner(k.partition(".")[0]) is None)
import _imp
from polyvenv.runtime import codecache, importer
from polyvenv.runtime.native import relocate
spent = dict.fromkeys(["cache get", "relocated", "create_dynamic", "exec_dynamic", "checked"], 0.0)
counts = {"modules": 0, "extensions": 0, "create_dynamic calls": 0}

def timed(key, fn, count=None):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - started
            if count:
                counts[count] += 1
    return wrapper

codecache.CODE_CACHE.get = timed("cache get", codecache.CODE_CACHE.get, "modules")
relocate.relocated = timed("relocated", relocate.relocated, "extensions")  # importer imports it at call time
_imp.create_dynamic = timed("create_dynamic", _imp.create_dynamic, "create_dynamic calls")
_imp.exec_dynamic = timed("exec_dynamic", _imp.exec_dynamic)
original_checked = importer.EnvExtensionLoader._checked

def checked(self, load, *args, **kwargs):  # the check's own time, without the load it wraps
    inner = [0.0]
    def timed_load():
        started = time.perf_counter()
        try:
            return load()
        finally:
            inner[0] = time.perf_counter() - started
    started = time.perf_counter()
    try:
        return original_checked(self, timed_load, *args, **kwargs)
    finally:
        spent["checked"] += time.perf_counter() - started - inner[0]

importer.EnvExtensionLoader._checked = checked
t5 = time.perf_counter()
env.import_module(sys.argv[3])
t6 = time.perf_counter()
import json
print(json.dumps({"import polyvenv": t1 - t0, "Workspace.load": t2 - t1, "ws.env()": t3 - t2, "names": t4 - t3,
                  "import_module": t6 - t5, **spent, **counts, "setup imports": setup_imports}))
'''

BREAKDOWN_PLAIN = r'''
"""Part 1's breakdown, plain Python: the same import, like for like; argv: module; stdin: modules to import first.

First the standard-library modules polyvenv's set-up imports (timed: what plain Python pays for them), then
the module (timed, with its extension modules' share): the same starting point as env.import_module's.
"""
import json, sys, time, _imp
first = json.loads(sys.stdin.read())
t0 = time.perf_counter()
for name in first:
    try:
        __import__(name)
    except ImportError:
        pass
t1 = time.perf_counter()
spent = dict.fromkeys(["create_dynamic", "exec_dynamic"], 0.0)
counts = {"extensions": 0}

def timed(key, fn):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - started
            counts["extensions"] += key == "create_dynamic"
    return wrapper

_imp.create_dynamic = timed("create_dynamic", _imp.create_dynamic)
_imp.exec_dynamic = timed("exec_dynamic", _imp.exec_dynamic)
before = set(sys.modules)
t2 = time.perf_counter()
__import__(sys.argv[1])
t3 = time.perf_counter()
print(json.dumps({"setup imports": t1 - t0, "import": t3 - t2, "modules": len(set(sys.modules) - before),
                  **spent, **counts}))
'''

PROFILE_PV = r'''
"""Part 1's breakdown: polyvenv's own functions during a warm env.import_module (cProfile); argv: ws env module."""
import cProfile, json, os, pstats, sys
import polyvenv
env = polyvenv.Workspace.load(sys.argv[1]).env(sys.argv[2])
env.names
profiler = cProfile.Profile()
profiler.enable()
env.import_module(sys.argv[3])
profiler.disable()
package = os.path.dirname(polyvenv.__file__) + os.sep
total, ours = 0.0, {}
for (filename, line, function), (_, calls, tottime, _, _) in pstats.Stats(profiler).stats.items():
    total += tottime
    if filename.startswith(package):
        ours[f"{filename[len(package):]}:{function}"] = [tottime, calls]
print(json.dumps({"total": total, "ours": ours}))
'''

CALLS_SCRIPT = r'''
"""Part 2: one fresh process timing calls, one sample at a time on its parent's command.

argv: mode (plain, polyvenv) lib ws. stdin: a first line {"setup": ..., "statements": [...]}, then commands,
one a line: "sample" (time each statement once, `number` calls) or "quit". Answers: one JSON line each, the
first once set up ({"ready": info}). The parent runs several such processes and has them sample in turn,
so all of them are measured over the same stretch of time. The polyvenv process loads both envs (numpy
and jinja2 side by side) and times one library's calls; the plain one (the env's own interpreter) imports
that library normally.
"""
import builtins, hashlib, importlib, json, os, sys, timeit

mode, lib, ws_dir = sys.argv[1:4]
spec = json.loads(sys.stdin.readline())
original_import = builtins.__import__
if mode == "polyvenv":
    import polyvenv
    ws = polyvenv.Workspace.load(ws_dir)
    modules = {"numpy": ws.env("np").import_module("numpy"), "jinja2": ws.env("j").import_module("jinja2")}
    speedups = ws.env("j").import_module("markupsafe._speedups")
else:
    modules = {lib: importlib.import_module(lib)}
    if lib == "jinja2":
        speedups = importlib.import_module("markupsafe._speedups")
module = modules[lib]
namespace = {"np" if lib == "numpy" else "jinja2": module}
exec(spec["setup"], namespace)
statements = spec["statements"]
results = {s: repr(eval(s, namespace)) for s in statements}  # first calls: lazy imports, caches
# the extension module's file as mapped into the process (its __file__ can name the env's original)
fragment = "/_multiarray_umath." if lib == "numpy" else "/_speedups."
with open("/proc/self/maps") as f:
    mapped = sorted({line.split(None, 5)[5].strip() for line in f if fragment in line})
info = {"module": f"{module.__name__} {module.__version__}", "mapped": mapped,
        "results": {s: hashlib.sha256(r.encode()).hexdigest()[:12] for s, r in results.items()},
        "import hooked": builtins.__import__ is not original_import}

if mode == "polyvenv":  # which of polyvenv's functions run during one call of each statement
    package = os.path.dirname(polyvenv.__file__) + os.sep
    seen = {}
    for s in statements:
        found = seen[s] = []
        def profile(frame, event, arg):
            if event == "call" and frame.f_code.co_filename.startswith(package):
                where = f"{frame.f_code.co_filename[len(package):]}:{frame.f_code.co_name}"
                if where not in found:
                    found.append(where)
        code = compile(s, "<statement>", "eval")
        sys.setprofile(profile)
        try:
            eval(code, namespace)
        finally:
            sys.setprofile(None)
    info["polyvenv functions"] = seen
    if lib == "jinja2":  # what compiling a template's generated Python costs in the env, step by step
        import ast
        from polyvenv.runtime.rewrite import rewrite
        names = ws.env("j").names
        generated = namespace["t"].environment.compile(namespace["src"], raw=True)
        parse = lambda: compile(generated, "<template>", "exec", ast.PyCF_ONLY_AST)
        tree = rewrite(parse(), names.replace)
        steps = {"compile(str)": lambda: compile(generated, "<template>", "exec"),
                 "env compile(str)": lambda: names.builtins["compile"](generated, "<template>", "exec"),
                 "to AST": parse, "to AST + rewrite": lambda: rewrite(parse(), names.replace),
                 "compile(AST)": lambda: compile(tree, "<template>", "exec")}
        best = dict.fromkeys(steps, float("inf"))
        for _ in range(15):  # interleaved, best of 15
            for k, fn in steps.items():
                best[k] = min(best[k], timeit.timeit(fn, number=20) / 20)
        info["compile steps"] = best
        info["generated lines"] = generated.count("\n")


timers, numbers = {s: timeit.Timer(s, globals=namespace) for s in statements}, {}
for s, timer in timers.items():  # calls per sample: at least 2ms
    number = 1
    while timer.timeit(number) < 0.002:
        number *= 2
    numbers[s] = number
calls = [0]
if mode == "polyvenv":  # count the env finder's calls while timing (expected: none)
    finder = sys.meta_path[0]
    real_find_spec = finder.find_spec

    def counting_find_spec(*args, **kwargs):
        calls[0] += 1
        return real_find_spec(*args, **kwargs)

    finder.find_spec = counting_find_spec
print(json.dumps({"ready": info}), flush=True)
for line in sys.stdin:
    if line.strip() != "sample":
        break
    print(json.dumps({s: timer.timeit(numbers[s]) / numbers[s] for s, timer in timers.items()}), flush=True)
print(json.dumps({"finder calls": calls[0]}), flush=True)
'''


# -- running --------------------------------------------------------------------------


class ExtBench(Bench):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        for name, text in (("breakdown_pv", BREAKDOWN_PV), ("breakdown_plain", BREAKDOWN_PLAIN),
                           ("profile_pv", PROFILE_PV), ("calls", CALLS_SCRIPT)):
            (self.scripts / f"{name}.py").write_text(text)

    def script_with(self, python: str | Path, name: str, *args: str | Path, stdin: str | None = None,
                    **env: str) -> dict:
        """A child script run with ``python`` (the host's, or an env's); its last line, parsed."""
        return json.loads(self.run([python, self.scripts / f"{name}.py", *args], stdin=stdin, **env)[1]
                          .strip().splitlines()[-1])

    def lockstep(self, children: dict[str, tuple[str | Path, str]], lib: str, repeat: int,
                 discard: int) -> tuple[dict[str, dict[str, float]], dict[str, dict]]:
        """Run the calls script in several processes at once, sampling in turn (one runs while the others wait).

        ``children``: name -> (python, mode). Each process's best time per call of each statement over
        ``repeat`` samples (after ``discard`` unrecorded ones), and what each reported.
        """
        import subprocess

        procs, errs = {}, {}
        for name, (python, mode) in children.items():
            errs[name] = open(self.tmp / f"calls-{name}.err", "w+")
            procs[name] = subprocess.Popen(
                [str(python), str(self.scripts / "calls.py"), mode, lib, str(self.ws)], text=True,
                env=dict(self.child_env, OPENBLAS_NUM_THREADS="1"), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=errs[name])

        def ask(name: str, command: str | None) -> dict:
            proc = procs[name]
            if command is not None:
                proc.stdin.write(command + "\n")
                proc.stdin.flush()
            line = proc.stdout.readline()
            if not line:
                errs[name].seek(0)
                sys.exit(f"bench: the {name} calls process ({' '.join(proc.args)}) stopped:\n{errs[name].read()}")
            return json.loads(line)

        try:
            spec = json.dumps({k: CALLS[lib][k] for k in ("setup", "statements")})
            info = {name: ask(name, spec)["ready"] for name in procs}
            names = list(procs)
            best = {name: dict.fromkeys(CALLS[lib]["statements"], float("inf")) for name in procs}
            for i in range(discard + repeat):
                for name in names[i % len(names):] + names[: i % len(names)]:  # each goes first in turn
                    sample = ask(name, "sample")
                    if i >= discard:
                        for st, t in sample.items():
                            best[name][st] = min(best[name][st], t)
            for name in procs:
                info[name].update(ask(name, "quit"))
        finally:
            for name, proc in procs.items():
                proc.stdin.close()
                proc.wait()
                errs[name].close()
        return best, info

    def clear_cache(self, what: Sequence[str] = ("code", "relocated")) -> None:
        """Empty polyvenv's cache (keeping the config snapshot `sync` left there, as on a real machine)."""
        for sub in what:
            shutil.rmtree(self.code_cache / sub, ignore_errors=True)


def setup(b: ExtBench) -> dict:
    b.ws.mkdir()
    (b.ws / "polyvenv.toml").write_text(WORKSPACE_TOML)
    say("building the workspace: python -m polyvenv sync (np: numpy 1.26.4; j: jinja2 3.1)")
    b.run([sys.executable, "-m", "polyvenv", "sync", "--jobs", "2"], cwd=b.ws, check_output=" 0 failed")
    return {n: json.loads((b.ws / ".polyvenv" / n / "polyvenv.json").read_text()) for n in (NP, J)}


def merged(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per module, the median over runs of -X importtime self times (0 in a run that did not import it)."""
    return {k: statistics.median(r.get(k, 0.0) for r in runs) for k in set().union(*runs)}


def part1(b: ExtBench, m: dict, runs: int, cold_runs: int, breakdown_runs: int) -> tuple[list, dict]:
    py, env_py = sys.executable, m[NP]["python"]
    load = f"import polyvenv; polyvenv.Workspace.load({str(b.ws)!r}).env({NP!r})"
    cmds = {
        "pass-host": [py, "-c", "pass"],
        "pass-env": [env_py, "-c", "pass"],
        "pv-setup": [py, "-c", load + ".names"],
        "plain": [env_py, "-c", "import numpy"],
        "pv": [py, "-c", load + ".import_module('numpy')"],
    }
    _, checked = b.run([py, "-c", "n = __import__('polyvenv').Workspace.load({!r}).env({!r}).import_module('numpy'); "
                        "print(n.__name__, n.__version__, 'sum', n.arange(10.0).sum(), 'from', "
                        "n.core._multiarray_umath.__file__)".format(str(b.ws), NP)])

    say(f"1. fresh-process numpy imports: {cold_runs} cold run(s) of each (caches emptied), "
        f"then {runs} interleaved rounds")
    for kind in ("pass-host", "pass-env", "pv-setup"):  # the interpreters' own .pyc and polyvenv's: warm
        b.run(cmds[kind])
    colds = {"plain": (), "pv": ("code", "relocated"), "pv-relocated": ("relocated",), "pv-code": ("code",)}
    cold: dict[str, list[float]] = {k: [] for k in colds}
    for _ in range(cold_runs):
        for kind, empty in colds.items():
            if kind == "plain":
                b.clear_env_pycache()
            b.clear_cache(empty)
            cold[kind].append(b.run(cmds["plain" if kind == "plain" else "pv"])[0])
    c = {k: statistics.median(v) for k, v in cold.items()}
    w = warm_medians(b, cmds, runs)

    say(f"1. where the time goes: in-process phases ({breakdown_runs} runs), -X importtime ({breakdown_runs} runs), "
        "cProfile (3 runs)")
    pv_outs, plain_outs = [], []
    for _ in range(breakdown_runs):  # alternated, so both see the same stretch of time
        pv_outs.append(b.script_with(py, "breakdown_pv", b.ws, NP, "numpy"))
        first = pv_outs[0]["setup imports"]
        plain_outs.append(b.script_with(env_py, "breakdown_plain", "numpy", stdin=json.dumps(first)))
    d = {k: statistics.median(o[k] for o in pv_outs) for k in pv_outs[0] if k != "setup imports"}
    p = {k: statistics.median(o[k] for o in plain_outs) for k in plain_outs[0]}
    profiles = [b.script_with(py, "profile_pv", b.ws, NP, "numpy") for _ in range(3)]
    prof_total = statistics.median(o["total"] for o in profiles)
    prof_ours = statistics.median(sum(t for t, _ in o["ours"].values()) for o in profiles)
    per_fn: dict[str, list[float]] = {}
    for o in profiles:
        for fn, (t, _) in o["ours"].items():
            per_fn.setdefault(fn, []).append(t)
    top_fns = sorted(per_fn, key=lambda fn: -statistics.median(per_fn[fn]))[:6]
    tops = env_tops(m[NP]["site_packages"])
    # -X importtime logs only imports through the import statement / __import__ (not importlib.import_module,
    # which would leave numpy/__init__ out): the same import, through __import__ of the alias
    importtime_pv = [py, "-c", f"import polyvenv; e = polyvenv.Workspace.load({str(b.ws)!r}).env({NP!r}); "
                     "__import__(e.names.module_name('numpy'))"]
    runs_pv, runs_plain = [], []
    for _ in range(breakdown_runs):  # alternated too
        runs_pv.append(importtime(b, importtime_pv, tops, 1))
        runs_plain.append(importtime(b, cmds["plain"], tops, 1))
    attributed, costliest = attribution(merged(runs_pv), merged(runs_plain), tops)
    _, plain_modules = b.run([env_py, "-c", "import numpy, sys; print(' '.join(sys.modules))"])
    unneeded = [name for name in first if name not in plain_modules.split()]  # what numpy itself does not import

    ratio = w["pv"] / w["plain"]
    ok = ratio <= TARGET_FRESH
    setup_pv = d["import polyvenv"] + d["Workspace.load"] + d["ws.env()"] + d["names"]
    diff = lambda a, b: f"{(a - b) * 1000:+.1f}ms"  # noqa: E731
    vs = lambda a, b: f"plain {ms(b)}, {diff(a, b)}"  # noqa: E731
    rows: list = [
        ["", "cold", "vs plain", "warm", "vs plain", "target", "met"],
        ["host `python -c pass` (polyvenv's .venv)", "", "", ms(w["pass-host"]), "", "", ""],
        [f"env `python -c pass` ({NP})", "", "", ms(w["pass-env"]), "", "", ""],
        ["import polyvenv, Workspace.load, ws.env().names: no import", "", "", ms(w["pv-setup"]),
         "+" + ms(w["pv-setup"] - w["pass-host"]), "(info)", ""],
        [f"plain: {NP}/bin/python -c 'import numpy' (cold: its .pyc removed)", ms(c["plain"]), "1.00x",
         ms(w["plain"]), "1.00x", "", ""],
        [f"polyvenv: ws.env({NP!r}).import_module('numpy') (cold: cache emptied)", ms(c["pv"]),
         x(c["pv"] / c["plain"]), ms(w["pv"]), x(ratio), f"<= {TARGET_FRESH:.2f}x", met(ok)],
        ["  cold, only the relocated copies remade (code cache warm)", ms(c["pv-relocated"]),
         x(c["pv-relocated"] / c["plain"]), "", "", "(info)", ""],
        ["  cold, only the code rewritten (relocated copies kept)", ms(c["pv-code"]),
         x(c["pv-code"] / c["plain"]), "", "", "(info)", ""],
        f"  where the warm time goes, in-process (perf_counter; medians of {breakdown_runs} runs): polyvenv "
        f"vs plain Python doing the like-for-like step",
        ["  polyvenv's set-up: import polyvenv, Workspace.load, ws.env(), env.names", "", "", ms(setup_pv),
         f"+{ms(setup_pv)}", "", ""],
        [f"    plain importing the {len(first)} stdlib modules it imports (numpy imports all but "
         f"{', '.join(unneeded) or 'none'})", "", "", "", ms(p["setup imports"]), "", ""],
        ["    import polyvenv / Workspace.load / ws.env() / env.names", "", "",
         " / ".join(f"{v * 1000:.1f}" for v in (d["import polyvenv"], d["Workspace.load"], d["ws.env()"],
                                                d["names"])) + "ms", "", "", ""],
        [f"  import_module('numpy'): {d['modules']:.0f} modules from the code cache, {d['extensions']:.0f} "
         "relocated extensions", "", "", ms(d["import_module"]), vs(d["import_module"], p["import"]), "", ""],
        ["    CodeCache.get (codecache.py: open, read, marshal.loads)", "", "", ms(d["cache get"]), "", "", ""],
        ["    relocate.relocated (importer.py EnvExtensionLoader.create_module: stamp check)", "", "",
         ms(d["relocated"]), "", "", ""],
        [f"    _imp.create_dynamic x{d['create_dynamic calls']:.0f} (plain x{p['extensions']:.0f}): dlopen + "
         "PyInit, with the imports they make", "", "", ms(d["create_dynamic"]),
         vs(d["create_dynamic"], p["create_dynamic"]), "", ""],
        ["    _imp.exec_dynamic, with the imports they make", "", "", ms(d["exec_dynamic"]),
         vs(d["exec_dynamic"], p["exec_dynamic"]), "", ""],
        ["    EnvExtensionLoader._checked (importer.py): the check itself", "", "", ms(d["checked"]), "", "", ""],
        ["    polyvenv's own functions, cProfile tottime (profiled run: all inflated)", "", "",
         f"{ms(prof_ours)} of {ms(prof_total)}", "", "", ""],
        f"  -X importtime self times, polyvenv vs plain (medians of {breakdown_runs} runs each)",
        *attributed,
    ]
    notes = "\n".join([
        f"    checked: {checked.strip()}",
        f"    only in polyvenv's process (-X importtime self): {costliest}...",
        "    polyvenv's costliest functions in import_module (cProfile tottime, median of 3): "
        + ", ".join(f"{fn} {statistics.median(per_fn[fn]) * 1000:.2f}ms" for fn in top_fns),
    ])
    return rows, {"ok": ok, "notes": notes}


def part2(b: ExtBench, m: dict, rounds: int, repeat: int) -> tuple[list, dict]:
    say(f"2. calls: {rounds} rounds of 3 fresh processes sampling in turn (plain, polyvenv, plain again), "
        "for numpy and for jinja2")
    pythons = {"numpy": m[NP]["python"], "jinja2": m[J]["python"]}
    best: dict[tuple[str, str], list[dict[str, float]]] = {}
    info: dict[tuple[str, str], dict] = {}
    finder_calls = 0
    for _ in range(rounds):
        for lib in CALLS:
            children = {"plain": (pythons[lib], "plain"), "polyvenv": (sys.executable, "polyvenv"),
                        "control": (pythons[lib], "plain")}
            found, reported = b.lockstep(children, lib, repeat, DISCARD)
            for name in children:
                info[lib, name] = reported[name]
                best.setdefault((lib, name), []).append(found[name])
            finder_calls += reported["polyvenv"]["finder calls"]
    warnings = []
    for lib in CALLS:
        if info[lib, "plain"]["results"] != info[lib, "polyvenv"]["results"]:
            warnings.append(f"    WARNING: {lib}: results differ between plain and polyvenv")
        if info[lib, "polyvenv"]["import hooked"]:
            warnings.append("    WARNING: builtins.__import__ replaced in the polyvenv process")

    def rng(values: list[float]) -> str:
        return f"{min(values):.2f}-{max(values):.2f}"

    target = f"{TARGET_CALLS:.2f}x +{TOLERANCE:.0%}"
    rows: list = [["", "plain", "polyvenv", "ratio", "range", "target", "met", "control", "range"]]
    ok = True
    for lib, spec in CALLS.items():
        plain, pv, again = best[lib, "plain"], best[lib, "polyvenv"], best[lib, "control"]
        rows.append(f"  {lib}: {info[lib, 'polyvenv']['module']} (polyvenv) vs {info[lib, 'plain']['module']} "
                    "(plain); ns per call, medians of the processes' best")
        for st, label in zip(spec["statements"], spec["labels"]):
            ratios = [v[st] / u[st] for v, u in zip(pv, plain)]
            control = [v[st] / u[st] for v, u in zip(again, plain)]
            ratio = statistics.median(ratios)
            good = ratio <= TARGET_CALLS + TOLERANCE
            ok &= good
            rows.append([f"  {label}", ns(statistics.median(u[st] for u in plain)),
                         ns(statistics.median(v[st] for v in pv)), x(ratio), rng(ratios), target, met(good),
                         x(statistics.median(control)), rng(control)])
    steps = info["jinja2", "polyvenv"]["compile steps"]
    us = lambda v: f"{v * 1e6:.0f}us"  # noqa: E731
    rows += [
        f"  where `Template(src)` differs: jinja2 compiles its generated Python "
        f"({info['jinja2', 'polyvenv']['generated lines']} lines) with the env's `compile`, which rewrites it "
        "(one polyvenv process, best of 15)",
        ["    compile(str) as plain Python does / the env's compile(str) (runtime/env.py env_compile)",
         us(steps["compile(str)"]), us(steps["env compile(str)"]),
         f"+{us(steps['env compile(str)'] - steps['compile(str)'])}", "", "(info)"],
        ["      to AST: compile(..., PyCF_ONLY_AST)", "", us(steps["to AST"]), "", "", "(info)"],
        ["      rewrite(tree) (runtime/rewrite.py Rewriter, an ast.NodeTransformer)", "",
         us(steps["to AST + rewrite"] - steps["to AST"]), "", "", "(info)"],
        ["      compile(rewritten AST)", "", us(steps["compile(AST)"]), "", "", "(info)"],
    ]
    seen = {st: fns for lib in CALLS for st, fns in info[lib, "polyvenv"]["polyvenv functions"].items()}
    on_path = "; ".join(f"`{st}`: {', '.join(fns)}" for st, fns in seen.items() if fns) or "none"
    notes = "\n".join([
        *warnings,
        f"    each round: 3 fresh processes per library, alive together and sampling in turn (one runs, the others "
        f"wait), so all see the same moments of the CPU (this VM's speed swings ~1.5x with its other CPU's load); "
        f"per process the best of {repeat} samples (>= 2ms each; {DISCARD} more discarded first) per statement; "
        "OPENBLAS_NUM_THREADS=1 in all (OpenBLAS's spinning threads made numpy's calls bimodal on 2 CPUs)",
        f"    ratio: median of {rounds} rounds' polyvenv process / plain process, range: their min-max; control: "
        "a second plain process / the plain one, in the same rounds (the noise between processes)",
        *(f"    {lib}'s extension as mapped (/proc/self/maps): polyvenv {', '.join(info[lib, 'polyvenv']['mapped'])}; "
          f"plain {', '.join(info[lib, 'plain']['mapped'])}" for lib in CALLS),
        f"    polyvenv functions run during one call (sys.setprofile): {on_path}; env finder calls while "
        f"timing: {finder_calls}; results identical to plain: "
        f"{all(info[lib, 'plain']['results'] == info[lib, 'polyvenv']['results'] for lib in CALLS)}",
    ])
    return rows, {"ok": ok, "notes": notes}


def du_follow_kib(*paths: Path | str) -> int:
    """Disk used, KiB, following links (`du -skL --total`: hardlinked files counted once)."""
    import subprocess

    out = subprocess.run(["du", "-skL", "--total", *map(str, paths)], capture_output=True, text=True,
                         check=True).stdout
    return int(out.strip().splitlines()[-1].split()[0])


def part3(b: ExtBench, m: dict) -> tuple[list, dict]:
    say("3. disk: polyvenv's cache against the envs' site-packages")
    np_site, j_site = Path(m[NP]["site_packages"]), Path(m[J]["site_packages"])
    relocated, code = b.code_cache / "relocated", b.code_cache / "code"
    copies = [f for f in relocated.rglob("*") if f.is_file() and not f.is_symlink() and not f.name.endswith(".source")]
    stamps = list(relocated.rglob("*.source"))
    linked = [f for f in relocated.rglob("*") if f.is_symlink()]
    entries = [f for f in code.rglob("*") if f.is_file()]
    np_ext = [f for f in np_site.rglob("*.so") if "numpy.libs" not in f.parts]
    np_libs = sorted(np_site.glob("*.libs"))
    j_ext = list(j_site.rglob("*.so"))
    copied = lambda top: sum(1 for f in copies if f.relative_to(relocated).parts[1] == top)  # noqa: E731
    envs = du_follow_kib(np_site, j_site)
    cache = du_kib(relocated, code)
    mb = lambda kib: f"{kib / 1024:.1f} MB"  # noqa: E731
    size = lambda files: sum(f.stat().st_size for f in files) // 1024  # noqa: E731
    rows: list = [
        ["", "disk", "files", "vs envs"],
        [f"env {NP} site-packages (numpy {m[NP]['distributions'].get('numpy')})", mb(du_follow_kib(np_site)),
         str(sum(1 for f in np_site.rglob("*") if f.is_file())), ""],
        ["  of which compiled extension modules (apparent size)", mb(size(np_ext)), str(len(np_ext)), ""],
        [f"  of which {', '.join(p.name for p in np_libs)} (bundled shared libraries)", mb(du_follow_kib(*np_libs)),
         str(sum(1 for p in np_libs for f in p.iterdir())), ""],
        [f"env {J} site-packages ({', '.join(f'{k} {v}' for k, v in m[J]['distributions'].items())})",
         mb(du_follow_kib(j_site)), str(sum(1 for f in j_site.rglob("*") if f.is_file())), ""],
        ["both envs' site-packages (du -skL, one call)", mb(envs), "", "1.00x"],
        ["polyvenv's cache: relocated/ + code/ (du -sk, one call)", mb(cache), "", x(cache / envs)],
        [f"  relocated/: patched copies of the extensions imported ({copied('numpy')} of numpy's {len(np_ext)}, "
         f"{copied('markupsafe')} of markupsafe's {len(j_ext)})",
         mb(du_kib(relocated)), str(len(copies)), x(du_kib(relocated) / envs)],
        ["    the copies' apparent size (= their originals') / stamps (.source) / links to *.libs", mb(size(copies)),
         f"{len(stamps)} / {len(linked)}", ""],
        ["  code/: rewritten, compiled modules (numpy's and jinja2's that were imported)", mb(du_kib(code)),
         str(len(entries)), x(du_kib(code) / envs)],
    ]
    notes = "    after parts 1 and 2: numpy (with linalg) and jinja2 imported and used; *.libs are linked, not copied"
    return rows, {"ok": True, "notes": notes}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer processes and repeats (under a minute)")
    parser.add_argument("--runs", type=int, help="warm fresh-process runs per command in part 1 "
                        "(default 11, --quick 5)")
    parser.add_argument("--rounds", type=int, help="rounds of fresh processes in part 2 (default 9, --quick 3)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the timed processes to one CPU")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (its path is printed)")
    args = parser.parse_args(argv)
    pin = None if args.no_pin or not hasattr(os, "sched_setaffinity") else max(os.sched_getaffinity(0))
    runs = args.runs or (5 if args.quick else 11)
    rounds = args.rounds or (3 if args.quick else 9)
    cold_runs = 1 if args.quick else 3
    breakdown_runs = 3 if args.quick else 5
    repeat = 10 if args.quick else 30

    if not POLYVENV.exists():
        sys.exit(f"bench: {POLYVENV} not found: run with polyvenv's venv, e.g. "
                 ".venv/bin/python bench/extension_bench.py")
    tmp = Path(tempfile.mkdtemp(prefix="polyvenv-extbench-", dir="/tmp"))
    started, load_before = time.monotonic(), os.getloadavg()[0]
    try:
        b = ExtBench(tmp)
        m = setup(b)
        if pin is not None:  # everything timed from here on runs on one CPU (children inherit it)
            os.sched_setaffinity(0, {pin})
        parts = [part1(b, m, runs, cold_runs, breakdown_runs), part2(b, m, rounds, repeat), part3(b, m)]
    finally:
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    headings = [
        f"1. Fresh-process numpy import (cold: median of {cold_runs} first run(s) after emptying the cache; "
        f"warm: median of {runs} interleaved runs)",
        f"2. Calls into the envs' numpy and jinja2 vs plain CPython (ns per call, timeit best of {repeat}; "
        f"medians of {rounds} rounds of fresh processes)",
        "3. Disk: polyvenv's cache against the envs' own files",
    ]
    print(f"polyvenv extension benchmark: polyvenv {source_state()}")
    print(f"  Python {sys.version.split()[0]} ({m[NP]['interpreter']['path']}), {os.cpu_count()} CPUs; envs: "
          + "; ".join(f"{n} = " + ", ".join(f"{k} {v}" for k, v in m[n]["distributions"].items()) for n in m))
    print(f"  {time.monotonic() - started:.0f}s in all; load average {load_before:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end; "
          + (f"every timed process pinned to CPU {pin} (on this VM a process's speed swings ~1.5x with the CPU it "
             "lands on and when: pinned and interleaved, the variants compared see the same)" if pin is not None
             else "timed processes not pinned"))
    print_parts(headings, parts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
