"""Benchmark: what loading envs side by side costs at run time, against plain Python and pluginbase.

Run from the repository root:

    .venv/bin/python bench/runtime_bench.py [--quick] [--rounds N] [--runs N] [--keep]

One run builds a workspace of three envs with `polyvenv sync` (jinja2 2.11.3
with markupsafe 2.0.1; jinja2 3.1.x, whose `source` holds a tiny benchmark
module; requests 2.32.x) in a temporary directory under /tmp, installs
pluginbase into a temp venv with uv (`uv venv` + `uv pip install`), and
prints one table:

1. Host code's cached imports (`import os`, `import json.decoder`,
   `from os import path`; timeit in fresh processes): with polyvenv imported
   and two envs active (jinja2 2.11 and 3.1 imported through
   `env.import_module`, rendering), against no polyvenv (target <= 1.02x);
   side by side, pluginbase with a PluginBase and a plugin source active
   (the research measured 2.5-6x). Each process samples the statements
   before and after its variant's set-up (a plain process: twice, the
   control), so the table gives both the best of each variant's processes
   and the median within-process ratio. Processes busy-wait 1 s first: this
   kind of VM runs ~2x slower until a process has kept its CPU busy a while.
2. Env code's cached imports: the same statements in a loop, in a function
   of a module of the jinja2 3.1 env's `source` (rewritten code) against the
   same function in a host module (plain jinja2 3.1 on the host's sys.path),
   in one process, alternated (target <= 1.5x).
3. Fresh-process import time: `import polyvenv`, `Workspace.load`,
   `ws.env(n).import_module("jinja2")` (and "requests") with the host's
   interpreter, against `<env>/bin/python -c "import jinja2"` (target <=
   1.10x warm). Cold = the first run after emptying the cache: the rewritten
   code in $POLYVENV_CACHE_DIR for polyvenv, the env's .pyc files for plain
   Python. Warm = medians of interleaved fresh processes. For requests also
   like for like (plain Python loading charset_normalizer's sources rather
   than its mypyc-compiled modules, as the env must). Then where the time
   goes: in-process phases, the code cache's reads, and -X importtime self
   times of polyvenv's process against plain Python's.
4. Memory: both jinja2 envs loaded and rendering, then unloaded, references
   dropped, gc.collect(): how much of the traced memory (tracemalloc) comes
   back (target >= 90%); what still holds the rest (typing's @overload
   registry and lru caches, dropped one after the other to show it), and
   what a second load/unload cycle leaves.

Everything happens in the temporary directory, removed at the end (unless
--keep). Child Pythons run without PYTHONDONTWRITEBYTECODE, with
PYTHONPYCACHEPREFIX and POLYVENV_CACHE_DIR inside the temp dir, so .pyc
files and polyvenv's code cache exist as on a normal machine and nothing is
written elsewhere (except the shared uv cache).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_bench import render, say, source_state  # noqa: E402  (same directory, same table style)

VENV_BIN = Path(sys.executable).parent
POLYVENV = VENV_BIN / "polyvenv"

OLD, NEW, REQ = "jinja2_old", "jinja2_new", "requests"
WORKSPACE_TOML = f"""\
[envs.{OLD}]
requirements = ["jinja2==2.11.3", "markupsafe==2.0.1"]

[envs.{NEW}]
requirements = ["jinja2>=3.1,<3.2"]
source = "src_new"

[envs.{REQ}]
requirements = ["requests>=2.32,<2.33"]
"""
TEMPLATE = "{% for n in names %}{{ n|upper }}{% if not loop.last %}, {% endif %}{% endfor %}: {{ snippet }}"

WARMUP = 1.0  # seconds of busy CPU after a part-1 process starts, before it samples
TARGET_HOST = 1.02  # host cached import, polyvenv + 2 envs / plain
TARGET_ENV = 1.5  # env code's cached import / the same in host code
TARGET_FRESH = 1.10  # fresh process, env import through polyvenv / env's python -c "import x" (warm)
TARGET_MEMORY = 0.90  # share of the traced memory that comes back after unload
RESEARCH_PLUGINBASE = "2.5-6x"

STATEMENTS = ["import os", "import json.decoder", "from os import path"]
ENV_STATEMENTS = ["import os", "import jinja2.runtime", "from os import path"]

# -- code run in child processes ---------------------------------------------------

# The module put in the jinja2 3.1 env's `source` (rewritten when loaded from the
# env) and, as a copy, in a host directory (plain code, plain jinja2).
BENCHMOD = '''\
"""Loops running one cached import each: timed as env code and as host code."""
import jinja2.runtime


def loop_pass(n):
    for _ in range(n):
        pass


def loop_import_os(n):
    for _ in range(n):
        import os


def loop_import_jinja2_runtime(n):
    for _ in range(n):
        import jinja2.runtime


def loop_from_os_import_path(n):
    for _ in range(n):
        from os import path


LOOPS = {"import os": loop_import_os, "import jinja2.runtime": loop_import_jinja2_runtime,
         "from os import path": loop_from_os_import_path, "(empty loop)": loop_pass}
'''

HOST_IMPORTS = r'''
"""Part 1: host code's cached imports in one fresh process, before and after the variant's set-up.

argv: mode (plain, polyvenv, pluginbase) ws pluginbase_site plugin_dir repeat warmup env...; stdin: statements.
"""
import builtins, json, sys, time, timeit

started = time.perf_counter()
mode, ws_dir, pluginbase_site, plugin_dir, repeat, warmup = sys.argv[1:7]
statements = json.loads(sys.stdin.read())
original_import = builtins.__import__
for stmt in statements:
    exec(stmt)  # cached from now on


def sample():
    """Best time per statement: short samples, statements interleaved."""
    timers, numbers = {s: timeit.Timer(s, globals=globals()) for s in statements}, {}
    for s, timer in timers.items():
        number = 1000
        while timer.timeit(number) < 0.002:
            number *= 2
        numbers[s] = number
    best = dict.fromkeys(statements, float("inf"))
    for _ in range(int(repeat)):
        for s, timer in timers.items():
            best[s] = min(best[s], timer.timeit(numbers[s]) / numbers[s])
    return best


# This kind of machine (a VM) runs cached imports about 2x faster once a process has kept its CPU busy
# for a while (under a second): every process busy-waits as long from its start before it samples.
while time.perf_counter() - started < float(warmup):
    pass
before = sample()
info = {}
if mode == "polyvenv":
    import polyvenv
    ws = polyvenv.Workspace.load(ws_dir)
    for name in sys.argv[7:]:
        jinja2 = ws.env(name).import_module("jinja2")
        jinja2.Environment(autoescape=True).from_string("{{ x }}").render(x="<&>")
        info[name] = f"{jinja2.__name__} {jinja2.__version__}"
    del jinja2
elif mode == "pluginbase":
    sys.path.insert(0, pluginbase_site)
    from pluginbase import PluginBase
    base = PluginBase(package="bench_plugins")
    source = base.make_plugin_source(searchpath=[plugin_dir], identifier="bench")
    plugin = source.load_plugin("hello")
    info["plugin"] = plugin.hello()
info["import hooked"] = builtins.__import__ is not original_import
info["meta_path[0]"] = type(sys.meta_path[0]).__name__
calls = [0]
if mode == "polyvenv":  # count the env finder's calls while host code imports (expected: none)
    finder = sys.meta_path[0]
    real_find_spec = finder.find_spec

    def counting_find_spec(*args, **kwargs):
        calls[0] += 1
        return real_find_spec(*args, **kwargs)

    finder.find_spec = counting_find_spec
after = sample()
info["finder calls"] = calls[0]
print(json.dumps({"info": info, "before": before, "after": after}))
'''

PLUGIN = '''\
import os


def hello():
    return "loaded as " + __name__ + " from " + os.path.basename(__file__)
'''

ENV_IMPORTS = r'''
"""Part 2: env code's cached imports against host code's, in one process; argv: ws env host_src site repeat."""
import json, sys, time
import polyvenv

ws_dir, env_name, host_src, site_packages, repeat = sys.argv[1:6]
ws = polyvenv.Workspace.load(ws_dir)
env_mod = ws.env(env_name).import_module("benchmod")
sys.path.insert(0, host_src)
sys.path.append(site_packages)  # the host's own plain jinja2 (the env's files, imported as host code)
import benchmod as host_mod
assert env_mod is not host_mod and env_mod.jinja2.__name__ != "jinja2" and host_mod.jinja2.__name__ == "jinja2"
info = {"env module": env_mod.__name__, "its jinja2": env_mod.jinja2.__name__,
        "host module": host_mod.__name__, "host jinja2": host_mod.jinja2.__name__}

def best(fn, n):
    started = time.perf_counter()
    fn(n)
    return time.perf_counter() - started

results = {}
for label in host_mod.LOOPS:
    env_fn, host_fn = env_mod.LOOPS[label], host_mod.LOOPS[label]
    env_fn(10), host_fn(10)
    n = 1000
    while best(host_fn, n) < 0.01:
        n *= 2
    env_t, host_t = [], []
    for _ in range(int(repeat)):  # alternated, so drift hits both alike
        env_t.append(best(env_fn, n))
        host_t.append(best(host_fn, n))
    results[label] = {"env": min(env_t) / n, "host": min(host_t) / n}
print(json.dumps({"info": info, "results": results}))
'''

BREAKDOWN = r'''
"""Part 3's breakdown: where a fresh process's env import spends its time; argv: ws env module."""
import json, os, sys, time
t0 = time.perf_counter()
import polyvenv
t1 = time.perf_counter()
import polyvenv.runtime.workspace
t1b = time.perf_counter()
ws = polyvenv.Workspace.load(sys.argv[1])
t2 = time.perf_counter()
import polyvenv.runtime.env
t2b = time.perf_counter()
env = ws.env(sys.argv[2])
t3 = time.perf_counter()
from polyvenv.runtime import codecache
import marshal
cache, original_read, paths, spent = codecache.CODE_CACHE, codecache.CODE_CACHE._read, [], [0.0]
def timed_read(key):
    started = time.perf_counter()
    try:
        return original_read(key)
    finally:
        spent[0] += time.perf_counter() - started
        paths.append(cache._path(key))
cache._read = timed_read
t4 = time.perf_counter()
env.names  # the env's top-level names (a directory scan) and their aliases
t4b = time.perf_counter()
env.import_module(sys.argv[3])
t5 = time.perf_counter()
# the same files again (page cache warm for both): as CodeCache reads them, and read whole first; the code
# as loaded only (``<key>.<digest>``: plain marshal data; an entry with placeholders has a header first)
paths = [path for path in paths if "." in os.path.basename(path) and os.path.exists(path)]
started = time.perf_counter()
for path in paths:
    with open(path, "rb") as f:
        marshal.load(f)
load_file = time.perf_counter() - started
started = time.perf_counter()
for path in paths:
    with open(path, "rb") as f:
        marshal.loads(f.read())
loads_bytes = time.perf_counter() - started
print(json.dumps({"import polyvenv": t1 - t0, "import workspace": t1b - t1, "Workspace.load": t2 - t1b,
                  "import env": t2b - t2, "ws.env()": t3 - t2b, "names": t4b - t4, "import_module": t5 - t4b, "code cache reads": spent[0], "modules": len(paths),
                  "marshal.load(file)": load_file, "marshal.loads(read)": loads_bytes}))
'''

MEMORY = r'''
"""Part 4: memory that comes back after unloading two envs; argv: ws template preimports_json env...

tracemalloc starts first; the standard-library modules the envs import (found by a probe process) are
imported before the baseline, as a host using them would have them: they are the host's, and stay.
"""
import tracemalloc
tracemalloc.start()
import gc, importlib, json, sys, weakref

ws_dir, template, preimports, names = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4:]
import polyvenv
from polyvenv.runtime import env as _env, facades as _facades  # the runtime itself: the host's from now on
for name in preimports:
    try:
        importlib.import_module(name)
    except Exception:
        pass
ws = polyvenv.Workspace.load(ws_dir)

def traced():
    for _ in range(5):  # until a collection finds nothing: finalizers a collection runs free more for the next
        if not gc.collect():
            break
    return tracemalloc.get_traced_memory()[0]

def load_all():
    refs, out = [], []
    for name in names:
        jinja2 = ws.env(name).import_module("jinja2")
        out.append(jinja2.Environment(autoescape=True).from_string(template).render(names=["ada", "grace"], snippet="<b>&</b>"))
        refs.append(weakref.ref(jinja2))
        refs.append(weakref.ref(jinja2.Environment))
    return refs, out

aliases = set()
def unload_all():
    for name in names:
        aliases.update(ws.env(name).names.tops.values())
        ws.env(name).unload()

snap_base = tracemalloc.take_snapshot()  # before the baseline: the snapshot's own memory is in it
base = traced()
refs, rendered = load_all()
loaded = traced()
unload_all()
after = traced()
alive = sum(r() is not None for r in refs)
# What still holds them: typing's @overload registry (module name -> the stubs, whose globals are the
# module's), and typing's lru caches (typing.Optional[Node]...), keyed on the env's classes.
import typing
registry = getattr(typing, "_overload_registry", {})
overloads = [k for k in registry if k.partition(".")[0] in aliases]
for key in overloads:
    del registry[key]
after_overloads = traced()
alive_overloads = sum(r() is not None for r in refs)
for clear in typing._cleanups:
    clear()
after_typing = traced()
alive_typing = sum(r() is not None for r in refs)
refs2, _ = load_all()
loaded2 = traced()
unload_all()
after2 = traced()
alive2 = sum(r() is not None for r in refs2)
filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
top = [(str(s.traceback[0]), s.size_diff, s.count_diff) for s in
       tracemalloc.take_snapshot().filter_traces(filters).compare_to(snap_base.filter_traces(filters), "lineno")[:6]]
print(json.dumps({"base": base, "loaded": loaded, "after": after, "loaded2": loaded2, "after2": after2,
                  "alive": alive, "alive2": alive2, "after_typing": after_typing, "alive_typing": alive_typing,
                  "after_overloads": after_overloads, "alive_overloads": alive_overloads, "overloads": overloads, "refs": len(refs), "rendered": rendered,
                  "top": top}))
'''

PROBE = r'''
"""Which host (non-alias) modules loading the envs' jinja2 imports; argv: ws env..."""
import json, sys
import polyvenv
from polyvenv.runtime import env as _env, facades as _facades
from polyvenv.runtime.namemap import ALIASES
ws = polyvenv.Workspace.load(sys.argv[1])
before = set(sys.modules)
for name in sys.argv[2:]:
    ws.env(name).import_module("jinja2").Environment().from_string("{{ x }}").render(x=1)
print(json.dumps(sorted(k for k in set(sys.modules) - before if ALIASES.owner(k.partition(".")[0]) is None)))
'''

# -- running --------------------------------------------------------------------------


class Bench:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.ws = tmp / "ws"
        self.pycache = tmp / "pycache"
        self.code_cache = tmp / "polyvenv-cache"
        self.child_env = dict(os.environ)
        self.child_env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.child_env.pop("VIRTUAL_ENV", None)
        self.child_env.pop("PYTHONPATH", None)
        self.child_env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        self.child_env["POLYVENV_CACHE_DIR"] = str(self.code_cache)
        self.child_env["UV_PYTHON_DOWNLOADS"] = "never"
        self.scripts = tmp / "scripts"
        self.scripts.mkdir()
        for name, text in (("host_imports", HOST_IMPORTS), ("env_imports", ENV_IMPORTS),
                           ("breakdown", BREAKDOWN), ("memory", MEMORY), ("probe", PROBE)):
            (self.scripts / f"{name}.py").write_text(text)

    def run(self, argv: Sequence[str | Path], *, cwd: Path | None = None, stdin: str | None = None,
            check_output: str | None = None, stderr: bool = False, **env: str) -> tuple[float, str]:
        """Run a command; (wall seconds, stdout, or stderr if asked). A failure ends the bench."""
        started = time.perf_counter()
        proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=dict(self.child_env, **env), input=stdin,
                              stdin=None if stdin is not None else subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seconds = time.perf_counter() - started
        if proc.returncode or (check_output and check_output not in proc.stdout + proc.stderr):
            sys.exit(f"bench: command failed (exit {proc.returncode}): {' '.join(map(str, argv))}\n"
                     f"{proc.stdout}{proc.stderr}")
        return seconds, proc.stderr if stderr else proc.stdout

    def script(self, name: str, *args: str | Path, stdin: str | None = None, **env: str) -> dict:
        return json.loads(self.run([sys.executable, self.scripts / f"{name}.py", *args], stdin=stdin, **env)[1]
                          .strip().splitlines()[-1])

    def clear_code_cache(self) -> None:
        shutil.rmtree(self.code_cache / "code", ignore_errors=True)

    def clear_env_pycache(self) -> None:
        """The .pyc files of everything under the temp dir (the envs), kept in the prefix's mirror of it."""
        shutil.rmtree(self.pycache / self.tmp.relative_to(self.tmp.anchor), ignore_errors=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}ms"


def ns(seconds: float) -> str:
    return f"{seconds * 1e9:.0f}ns"


def x(value: float) -> str:
    return f"{value:.2f}x"


def met(ok: bool) -> str:
    return "yes" if ok else "NO"


# -- the benchmark ----------------------------------------------------------------------


def setup(b: Bench, uv: str, python: str) -> dict:
    b.ws.mkdir()
    (b.ws / "polyvenv.toml").write_text(WORKSPACE_TOML)
    (b.ws / "src_new").mkdir()
    (b.ws / "src_new" / "benchmod.py").write_text(BENCHMOD)
    (b.tmp / "host_src").mkdir()
    (b.tmp / "host_src" / "benchmod.py").write_text(BENCHMOD)
    (b.tmp / "plugins").mkdir()
    (b.tmp / "plugins" / "hello.py").write_text(PLUGIN)
    say("building the workspace: polyvenv sync of 3 envs")
    b.run([POLYVENV, "sync", "--jobs", "3"], cwd=b.ws, check_output=" 0 failed")
    manifests = {n: json.loads((b.ws / ".polyvenv" / n / "polyvenv.json").read_text()) for n in (OLD, NEW, REQ)}
    say("installing pluginbase into a temp venv with uv")
    pb = b.tmp / "pluginbase-venv"
    b.run([uv, "venv", "--no-config", "-q", "--python", python, pb])
    b.run([uv, "pip", "install", "--no-config", "-q", "--python", pb / "bin" / "python", "pluginbase"])
    sites = sorted(pb.glob("lib/python*/site-packages"))
    version = next(sites[0].glob("pluginbase-*.dist-info")).name[: -len(".dist-info")].split("-")[1]
    return {"manifests": manifests, "pluginbase_site": str(sites[0]), "pluginbase": version}


def part1(b: Bench, s: dict, rounds: int, repeat: int) -> tuple[list, dict]:
    say(f"1. host cached imports: {rounds} rounds of 3 fresh processes (plain, polyvenv + 2 envs, pluginbase)")
    modes = ["plain", "polyvenv", "pluginbase"]
    before: dict[str, dict[str, list[float]]] = {m: {st: [] for st in STATEMENTS} for m in modes}
    after: dict[str, dict[str, list[float]]] = {m: {st: [] for st in STATEMENTS} for m in modes}
    info: dict[str, dict] = {}
    calls = 0
    for r in range(rounds):
        for mode in (modes if r % 2 == 0 else modes[::-1]):
            out = b.script("host_imports", mode, b.ws, s["pluginbase_site"], b.tmp / "plugins", str(repeat),
                           str(WARMUP), OLD, NEW, stdin=json.dumps(STATEMENTS))
            calls += out["info"]["finder calls"]
            info[mode] = out["info"]
            for st in STATEMENTS:
                before[mode][st].append(out["before"][st])
                after[mode][st].append(out["after"][st])
    if info["polyvenv"]["import hooked"] or not info["pluginbase"]["import hooked"]:
        say(f"WARNING: unexpected import hooks: {info}")

    def within(mode: str, st: str) -> float:  # median over processes of after / before
        return statistics.median(a / b for a, b in zip(after[mode][st], before[mode][st]))

    target = f"<= {TARGET_HOST}x"
    ok = True
    rows: list = [["", "no polyvenv", "polyvenv + 2 envs", "ratio", "target", "met",
                   f"pluginbase {s['pluginbase']}", "ratio", "control"],
                  f"  fresh processes, one per variant: the best of each variant's {rounds}"]
    for st in STATEMENTS:
        plain, pv, pb = min(after["plain"][st]), min(after["polyvenv"][st]), min(after["pluginbase"][st])
        ok &= pv / plain <= TARGET_HOST
        rows.append([f"  `{st}`", ns(plain), ns(pv), x(pv / plain), target, met(pv / plain <= TARGET_HOST),
                     ns(pb), x(pb / plain)])
    rows.append(f"  the same process before and after the set-up: medians of {rounds} per-process ratios")
    for st in STATEMENTS:
        ratio = within("polyvenv", st)
        ok &= ratio <= TARGET_HOST
        rows.append([f"  `{st}`", ns(statistics.median(before["polyvenv"][st])),
                     ns(statistics.median(after["polyvenv"][st])), x(ratio), target, met(ratio <= TARGET_HOST),
                     ns(statistics.median(after["pluginbase"][st])), x(within("pluginbase", st)),
                     x(within("plain", st))])
    spread = "; ".join(f"{m} {ns(min(after[m]['import os']))}-{ns(max(after[m]['import os']))}" for m in modes)
    control = [a / b for st in STATEMENTS for a, b in zip(after["plain"][st], before["plain"][st])]
    notes = (f"    polyvenv: {', '.join(f'{k} = {v}' for k, v in info['polyvenv'].items() if k in (OLD, NEW))}; "
             f"builtins.__import__ replaced: {info['polyvenv']['import hooked']}; "
             f"meta_path[0]: {info['polyvenv']['meta_path[0]']}, called {calls} times while host code imported\n"
             f"    pluginbase: plugin {info['pluginbase']['plugin']}; builtins.__import__ replaced: "
             f"{info['pluginbase']['import hooked']}; research measured {RESEARCH_PLUGINBASE}\n"
             f"    control: a plain process sampled twice, after / before, nothing loaded in between; single "
             f"processes' control ratios ranged {min(control):.2f}x-{max(control):.2f}x\n"
             f"    each process busy {WARMUP:g}s from its start before sampling (this machine runs ~2x slower "
             f"until a process has been busy a while); per-process best of `import os` ranged: {spread}")
    return rows, {"ok": ok, "notes": notes}


def part2(b: Bench, s: dict, rounds: int, repeat: int) -> tuple[list, dict]:
    say(f"2. env code's cached imports: {rounds} fresh processes, env and host loops alternated")
    per: dict[str, dict[str, list[float]]] = {}
    info = {}
    site = s["manifests"][NEW]["site_packages"]
    for _ in range(rounds):
        out = b.script("env_imports", b.ws, NEW, b.tmp / "host_src", site, str(repeat))
        info = out["info"]
        for label, v in out["results"].items():
            for side in ("env", "host"):
                per.setdefault(label, {}).setdefault(side, []).append(v[side])
    rows: list = [["", "host module", "env module", "ratio", "target", "met"]]
    ok = True
    for label in ENV_STATEMENTS + ["(empty loop)"]:
        host, env = statistics.median(per[label]["host"]), statistics.median(per[label]["env"])
        ratio = statistics.median(e / h for e, h in zip(per[label]["env"], per[label]["host"]))
        if label.startswith("("):
            rows.append(["for _ in range(n): pass (included above)", ns(host), ns(env), x(ratio), "(info)", ""])
        else:
            ok &= ratio <= TARGET_ENV
            rows.append([f"`{label}` in a loop", ns(host), ns(env), x(ratio), f"<= {TARGET_ENV}x",
                         met(ratio <= TARGET_ENV)])
    notes = (f"    env module {info['env module']!r} (its jinja2: {info['its jinja2']!r}); host module "
             f"{info['host module']!r} (plain {info['host jinja2']!r} from the env's site-packages); "
             "ratios: medians of per-process ratios")
    return rows, {"ok": ok, "notes": notes}


def warm_medians(b: Bench, cmds: dict[str, list[str]], runs: int) -> dict[str, float]:
    """Each command's median seconds over ``runs`` fresh processes, after two warm-up rounds, the
    commands interleaved (in turn forwards and backwards, so none always runs first)."""
    for _ in range(2):
        for argv in cmds.values():
            b.run(argv)
    warm: dict[str, list[float]] = {k: [] for k in cmds}
    for r in range(runs):
        for kind in (list(cmds) if r % 2 == 0 else list(cmds)[::-1]):
            warm[kind].append(b.run(cmds[kind])[0])
    return {k: statistics.median(v) for k, v in warm.items()}


def env_tops(site: str) -> set[str]:
    """Top-level module names in a site-packages directory."""
    return {e.name.partition(".")[0] for e in os.scandir(site)
            if not e.name.endswith((".dist-info", ".pth")) and e.name.partition(".")[0].isidentifier()}


def importtime(b: Bench, argv: list, tops: set[str], runs: int) -> dict[str, float]:
    """Median self time (seconds) per module from -X importtime, env aliases mapped to real names."""
    lower = {t.lower(): t for t in tops}
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        err = b.run([argv[0], "-X", "importtime", *argv[1:]], stderr=True)[1]
        for line in err.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            self_us, _, name = line[len("import time:"):].split("|")
            name = name.strip()
            top, dot, rest = name.partition(".")
            if top not in tops and top.lower() in lower:
                name = lower[top.lower()] + dot + rest
            samples.setdefault(name, []).append(int(self_us) / 1e6)
    return {k: statistics.median(v + [0.0] * (runs - len(v))) for k, v in samples.items()}


def attribution(pv: dict[str, float], plain: dict[str, float], tops: set[str]) -> tuple[list[list[str]], str]:
    """Rows: where the polyvenv process's import time differs from plain Python's (-X importtime self times);
    and the modules only polyvenv's process imports, costliest first."""
    ours = {k for k in pv if k.partition(".")[0] in tops}
    only_pv = sorted((k for k in pv if k not in plain and k not in ours), key=lambda k: -pv[k])
    only_plain = sorted((k for k in plain if k not in pv and k.partition(".")[0] not in tops), key=lambda k: -plain[k])
    shared = [k for k in pv if k in plain and k not in ours]
    env_pv, env_plain = sum(pv[k] for k in ours), sum(plain.get(k, 0.0) for k in plain if k.partition(".")[0] in tops)
    costliest = ", ".join(f"{k} {pv[k] * 1000:.1f}ms" for k in only_pv[:6])
    return [
        [f"      the env's own {len(ours)} modules, self time", "", "", f"{ms(env_pv)} vs {ms(env_plain)}",
         f"{(env_pv - env_plain) * 1000:+.1f}ms", "", ""],
        [f"      {len(only_pv)} modules only polyvenv's process imports", "", "",
         ms(sum(pv[k] for k in only_pv)), f"+{ms(sum(pv[k] for k in only_pv))}", "", ""],
        [f"      {len(only_plain)} modules only plain Python imports", "", "",
         ms(sum(plain[k] for k in only_plain)), f"-{ms(sum(plain[k] for k in only_plain))}", "", ""],
        [f"      {len(shared)} modules both import", "", "",
         f"{ms(sum(pv[k] for k in shared))} vs {ms(sum(plain[k] for k in shared))}",
         f"{sum(pv[k] - plain[k] for k in shared) * 1000:+.1f}ms", "", ""],
    ], costliest


def part3(b: Bench, s: dict, runs: int, cold_runs: int) -> tuple[list, dict]:
    m = s["manifests"]
    py = sys.executable
    load = "import polyvenv; polyvenv.Workspace.load({ws!r}).env({env!r})".format
    # charset_normalizer's wheel ships mypyc-compiled modules next to their .py sources. The env loads the
    # sources (it cannot load the compiled ones); plain Python loads the compiled ones. The like-for-like
    # plain run puts source before compiled files on its path hook, as the env's finder does.
    source_first = ("import sys, importlib.machinery as m; sys.path_hooks.insert(0, m.FileFinder.path_hook("
                    "(m.SourceFileLoader, m.SOURCE_SUFFIXES), (m.ExtensionFileLoader, m.EXTENSION_SUFFIXES), "
                    "(m.SourcelessFileLoader, m.BYTECODE_SUFFIXES))); sys.path_importer_cache.clear(); ")
    cmds = {
        "pass-host": [py, "-c", "pass"],
        "pass-env": [m[NEW]["python"], "-c", "pass"],
        "pv-setup": [py, "-c", load(ws=str(b.ws), env=NEW)],
        "plain-jinja2": [m[NEW]["python"], "-c", "import jinja2"],
        "pv-jinja2": [py, "-c", load(ws=str(b.ws), env=NEW) + ".import_module('jinja2')"],
        "plain-requests": [m[REQ]["python"], "-c", "import requests"],
        "plain-requests-source": [m[REQ]["python"], "-c", source_first + "import requests"],
        "pv-requests": [py, "-c", load(ws=str(b.ws), env=REQ) + ".import_module('requests')"],
    }
    # Check once that each does what it says.
    check = (f"import polyvenv, sys; env = polyvenv.Workspace.load({str(b.ws)!r}).env({REQ!r}); "
             "r = env.import_module('requests'); import os; "
             "print(r.__name__, r.__version__, 'charset_normalizer.md from', "
             "os.path.basename(env.import_module('charset_normalizer.md').__file__))")
    _, checked = b.run([py, "-c", check])
    md_file = "import os, sys; print(os.path.basename(sys.modules['charset_normalizer.md'].__file__))"
    _, compiled = b.run([m[REQ]["python"], "-c", "import requests; " + md_file])
    _, source = b.run([m[REQ]["python"], "-c", source_first + "import requests; " + md_file])

    say(f"3. fresh-process imports: {cold_runs} cold run(s) each (caches emptied), then {runs} interleaved rounds")
    cold: dict[str, list[float]] = {k: [] for k in ("pv-jinja2", "plain-jinja2", "pv-requests", "plain-requests")}
    for kind in ("pass-host", "pass-env", "pv-setup"):  # the interpreters' own .pyc and polyvenv's: warm
        b.run(cmds[kind])
    for _ in range(cold_runs):
        for kind in cold:
            (b.clear_code_cache if kind.startswith("pv") else b.clear_env_pycache)()
            cold[kind].append(b.run(cmds[kind])[0])
    c = {k: statistics.median(v) for k, v in cold.items()}
    w = warm_medians(b, cmds, runs)

    say("3. where the time goes: in-process phases, and -X importtime, 3 runs each")
    breakdown, attributed, costliest = {}, {}, {}
    for module, env in (("jinja2", NEW), ("requests", REQ)):
        outs = [b.script("breakdown", b.ws, env, module) for _ in range(3)]
        breakdown[module] = {k: statistics.median(o[k] for o in outs) for k in outs[0]}
        tops = env_tops(m[env]["site_packages"])
        plain_cmd = cmds["plain-requests-source" if module == "requests" else f"plain-{module}"]
        attributed[module], costliest[module] = attribution(importtime(b, cmds[f"pv-{module}"], tops, 3),
                                         importtime(b, plain_cmd, tops, 3), tops)

    target = f"<= {TARGET_FRESH:.2f}x"
    rows: list = [
        ["", "cold", "vs plain", "warm", "vs plain", "target", "met"],
        ["host `python -c pass` (polyvenv's .venv)", "", "", ms(w["pass-host"]), "", "", ""],
        [f"env `python -c pass` ({NEW})", "", "", ms(w["pass-env"]), "", "", ""],
        ["import polyvenv, Workspace.load, ws.env(): no import", "", "", ms(w["pv-setup"]),
         "+" + ms(w["pv-setup"] - w["pass-host"]), "(info)", ""],
    ]
    ok = True
    for module, env in (("jinja2", NEW), ("requests", REQ)):
        plain, pv = f"plain-{module}", f"pv-{module}"
        ok &= w[pv] / w[plain] <= TARGET_FRESH
        rows += [
            [f"plain: {env}/bin/python -c 'import {module}'", ms(c[plain]), "1.00x", ms(w[plain]), "1.00x", "", ""],
            [f"polyvenv: ws.env({env!r}).import_module({module!r})", ms(c[pv]), x(c[pv] / c[plain]),
             ms(w[pv]), x(w[pv] / w[plain]), target, met(w[pv] / w[plain] <= TARGET_FRESH)],
        ]
    same = w["pv-requests"] / w["plain-requests-source"]
    ok &= same <= TARGET_FRESH
    rows.append(["  like for like: plain, source before compiled as in the env", "", "",
                 ms(w["plain-requests-source"]), x(same) + " (pv/this)", target, met(same <= TARGET_FRESH)])
    rows.append("  where the time goes (warm cache)")
    for module in ("jinja2", "requests"):
        d = breakdown[module]
        rows += [
            [f"  {module}, in-process phases: import polyvenv", "", "", ms(d["import polyvenv"]), "", "", ""],
            ["    import polyvenv.runtime.workspace (config, tomllib, pathlib...)", "", "",
             ms(d["import workspace"]), "", "", ""],
            ["    Workspace.load (read, parse, validate the TOML)", "", "", ms(d["Workspace.load"]), "", "", ""],
            ["    import polyvenv.runtime.env (ast, hashlib, json, threading...)", "", "",
             ms(d["import env"]), "", "", ""],
            ["    ws.env() (manifest)", "", "", ms(d["ws.env()"]), "", "", ""],
            ["    env.names (scan the env's top-level names, reserve aliases)", "", "", ms(d["names"]), "", "", ""],
            [f"    import_module({module!r}): {d['modules']:.0f} modules from the code cache", "", "",
             ms(d["import_module"]), "", "", ""],
            ["      of which CodeCache.get (codecache.py: marshal.load(file))", "", "",
             ms(d["code cache reads"]), "", "", ""],
            ["      same files again: marshal.load(file) / .loads(f.read())", "", "",
             f"{ms(d['marshal.load(file)'])} / {ms(d['marshal.loads(read)'])}", "", "", ""],
            [f"    -X importtime, polyvenv vs plain{' (source first)' if module == 'requests' else ''}",
             "", "", "", "", "", ""],
            *attributed[module],
        ]
    notes = (f"    polyvenv: {checked.strip()}; plain Python: charset_normalizer.md from {compiled.strip()}, "
             f"with source first: {source.strip()}\n"
             + "".join(f"    only in polyvenv's process, importing {module}: {costliest[module]}...\n"
                       for module in costliest).rstrip("\n"))
    return rows, {"ok": ok, "notes": notes}


def part4(b: Bench) -> tuple[list, dict]:
    say("4. memory: probe, then load two envs, unload, twice")
    pre = b.script("probe", b.ws, OLD, NEW)
    out = b.script("memory", b.ws, TEMPLATE, json.dumps(pre), OLD, NEW)
    if len(set(out["rendered"])) != 1:
        say(f"WARNING: the envs rendered differently: {out['rendered']}")
    grown = out["loaded"] - out["base"]
    back = (out["loaded"] - out["after"]) / grown
    back_typing = (out["loaded"] - out["after_typing"]) / grown
    mb = lambda v: f"{v / 2**20:+.2f} MB"  # noqa: E731
    n = out["refs"]
    rows: list = [
        ["", "traced", "vs baseline", "target", "met"],
        [f"baseline (polyvenv runtime + {len(pre)} stdlib modules the envs use)", f"{out['base'] / 2**20:.2f} MB",
         "", "", ""],
        ["jinja2 2.11 and 3.1 loaded, one template rendered in each", f"{out['loaded'] / 2**20:.2f} MB",
         mb(grown), "", ""],
        ["both unloaded, references dropped, gc.collect()", f"{out['after'] / 2**20:.2f} MB",
         mb(out["after"] - out["base"]), "", ""],
        ["share of the memory that came back", f"{back:.1%}", "", f">= {TARGET_MEMORY:.0%}",
         met(back >= TARGET_MEMORY)],
        [f"  env modules and classes collected ({n} weakrefs: each env's jinja2, Environment)",
         f"{n - out['alive']}/{n}", "", "", ""],
        [f"  + the envs' {len(out['overloads'])} modules' entries dropped from typing._overload_registry",
         f"{(out['loaded'] - out['after_overloads']) / grown:.1%}", mb(out["after_overloads"] - out["base"]),
         "(info)", ""],
        ["    env modules and classes collected then", f"{n - out['alive_overloads']}/{n}", "", "", ""],
        ["  + typing's lru caches cleared too (typing._cleanups)", f"{back_typing:.1%}",
         mb(out["after_typing"] - out["base"]), "(info)", ""],
        ["    env modules and classes collected then", f"{n - out['alive_typing']}/{n}", "", "", ""],
        ["a second load + unload cycle, as is: retained again", mb(out["after2"] - out["after_typing"]),
         "", "(info)", ""],
        # the first cycle also leaves what the runtime keeps for the process (alias variants, the copies of the
        # standard library's namespaces its imports loaded): a reloading host's every later cycle is this one
        ["  share of the second cycle's memory that came back",
         f"{(out['loaded2'] - out['after2']) / (out['loaded2'] - out['after_typing']):.1%}", "", "(info)", ""],
    ]
    notes = (f"    typing._overload_registry held: {', '.join(out['overloads']) or 'nothing'}\n"
             "    where the retained memory was allocated (tracemalloc, after both cycles vs baseline):\n") + "\n".join(
        f"      {size / 1024:+8.1f} KiB {count:+6d} blocks  {where}" for where, size, count in out["top"][:4])
    return rows, {"ok": back >= TARGET_MEMORY, "notes": notes}


def print_parts(headings: list[str], parts: list) -> None:
    """Each part's table and notes, then which targets were missed (shared by extension_bench.py)."""
    for heading, (rows, extra) in zip(headings, parts):
        print()
        print(heading)
        print(render(rows))
        print(extra["notes"])
    missed = [h.split(".")[0] for h, (_, e) in zip(headings, parts) if not e["ok"]]
    print(f"\ntargets: {'all met' if not missed else 'missed in part ' + ', '.join(missed)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer processes and repeats (about a minute)")
    parser.add_argument("--rounds", type=int, help="fresh processes per variant in part 1 (default 11, --quick 3); "
                        "part 2 runs half as many (at least 3)")
    parser.add_argument("--runs", type=int, help="warm fresh-process runs per command in part 3 "
                        "(default 11, --quick 5)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (its path is printed)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 11)
    rounds2 = max(3, rounds // 2)
    runs = args.runs or (5 if args.quick else 11)
    cold_runs = 1 if args.quick else 3
    repeat = 10 if args.quick else 25  # part 1, timeit repeats per statement and process
    repeat2 = 7 if args.quick else 15  # part 2

    if not POLYVENV.exists():
        sys.exit(f"bench: {POLYVENV} not found: run with polyvenv's venv, e.g. .venv/bin/python bench/runtime_bench.py")
    from uv import find_uv_bin

    from polyvenv.provision.interpreters import current

    uv, python = find_uv_bin(), current().path
    tmp = Path(tempfile.mkdtemp(prefix="polyvenv-rtbench-", dir="/tmp"))
    started, load_before = time.monotonic(), os.getloadavg()[0]
    try:
        b = Bench(tmp)
        s = setup(b, uv, python)
        parts = [part1(b, s, rounds, repeat), part2(b, s, rounds2, repeat2), part3(b, s, runs, cold_runs), part4(b)]
    finally:
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    d = s["manifests"]
    headings = [
        f"1. Host code's cached imports (timeit: best of {repeat} samples per process and phase, statements "
        f"interleaved; {rounds} fresh processes per variant, interleaved)",
        f"2. Env code's cached imports: a loop in a module of {NEW}'s `source` vs the same module as host code "
        f"(ns per iteration, best of {repeat2}; median of {rounds2} processes)",
        f"3. Fresh-process import time (cold: median of {cold_runs} first run(s) after emptying the cache; "
        f"warm: median of {runs} interleaved runs)",
        "4. Memory (tracemalloc) of two envs' jinja2, before and after unload",
    ]
    print(f"polyvenv runtime benchmark: polyvenv {source_state()}")
    print(f"  Python {sys.version.split()[0]} ({python}), {os.cpu_count()} CPUs; envs: "
          + "; ".join(f"{n} = " + ", ".join(f"{k} {v}" for k, v in d[n]["distributions"].items()) for n in d))
    print(f"  {time.monotonic() - started:.0f}s in all; load average {load_before:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end")
    print_parts(headings, parts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
