"""Benchmark: hot reload (issue 14): memory per reload cycle, per compiled generation, and reload time.

Run from the repository root:

    .venv/bin/python bench/reload_bench.py [--quick] [--cycles N] [--generations N] [--numpy] [--keep]

One run builds, in a temporary directory under /tmp, a workspace whose env
``plugin`` has jinja2 3.1.4 (with markupsafe, compiled) and a ``source``
holding ``plug.py`` (a module that imports jinja2 and renders a template),
then, each in a fresh host process:

1. **Pure cycles**: ``--cycles`` (100) times: edit ``plug.py``, ``reload()``,
   call the new generation, drop the old one, ``gc.collect()``. Memory after
   cycle 10 and after the last (RSS from /proc and tracemalloc's traced
   total): the growth per cycle between them. jinja2 and markupsafe are kept
   (not reloaded), so a cycle is the plugin module alone.
2. **Compiled generations**: ``--generations`` (10) times: switch the env's
   pin between markupsafe 2.1.5 and 3.0.2 (``sync`` to both builds once
   first, so each switch is a link change), ``reload()``: markupsafe and
   jinja2 (which imports it) and the plugin reload, markupsafe's C code as a
   fresh copy each time (CPython never unloads an extension). Growth per
   generation, and the copies' disk in polyvenv's cache. With ``--numpy``,
   the same with numpy 1.26.3 <-> 1.26.4 (slow: each generation relocates
   numpy's ~20 extension files).
3. **Reload time** against a fresh import: ``reload()`` after a plugin edit
   (jinja2 kept), ``reload()`` after the markupsafe switch (three names
   reloaded), ``unload()`` + ``import_module("plug")`` (everything anew, in
   process), and a fresh process importing ``plug`` through polyvenv. Medians.

Nothing is written outside the temporary directory except the shared uv cache
(POLYVENV_CACHE_DIR lives inside it). Prints the machine's load average.
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
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PLUG = ("import jinja2\n\nTEMPLATE = jinja2.Template('{{ a }} + {{ b }} #%d')\n\n"
        "def render():\n    return TEMPLATE.render(a=1, b='<2>')\n")

HOST_HEAD = """
import gc, json, os, subprocess, sys, time, tracemalloc
sys.path.insert(0, {src!r})
from pathlib import Path
import polyvenv
PROJECT = Path({project!r})
PLUG = PROJECT / "plugin" / "plug.py"
TEXT = {plug!r}
ws = polyvenv.Workspace.load(PROJECT)
env = ws.env("plugin")

def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

def switch(pin):  # point the env's link at the build with that pin (built before: a link change)
    config = PROJECT / "polyvenv.toml"
    text = config.read_text()
    head, _, tail = text.partition('"{swap}==')
    config.write_text(head + '"' + pin + tail[tail.index('"'):])
    subprocess.run([sys.executable, "-m", "polyvenv", "sync", "-q"], cwd=PROJECT, check=True)
"""


def host(project: Path, body: str, swap: str = "markupsafe") -> dict:
    code = HOST_HEAD.format(src=str(SRC), project=str(project), plug=PLUG, swap=swap) + textwrap.dedent(body)
    code += "\nprint(json.dumps(result))\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(project))
    if proc.returncode != 0:
        raise SystemExit(f"host failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _env(project: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["POLYVENV_CACHE_DIR"] = str(project.parent / "polyvenv-cache")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def build(tmp: Path, pins: list[str], extra: list[str]) -> Path:
    project = tmp / "project"
    (project / "plugin").mkdir(parents=True, exist_ok=True)
    (project / "plugin" / "plug.py").write_text(PLUG % 0)
    for pin in pins:  # every build the bench switches between, made once
        (project / "polyvenv.toml").write_text(
            f'[envs.plugin]\nrequirements = ["jinja2==3.1.4", "{pin}"{"".join(", " + json.dumps(e) for e in extra)}]\n'
            'source = "plugin"\n')
        subprocess.run([sys.executable, "-m", "polyvenv", "sync", "-q"], cwd=project, check=True, env=_env(project))
    return project


PURE = """
env.import_module("plug").render()
tracemalloc.start()
marks = {{}}
for cycle in range(1, {cycles} + 1):
    PLUG.write_text(TEXT % cycle)
    assert env.reload() == ["plug"]
    assert env.import_module("plug").render().endswith("#%d" % cycle)
    gc.collect()
    if cycle in (10, {cycles}):
        marks[cycle] = [rss_kib(), tracemalloc.get_traced_memory()[0] // 1024]
result = marks
"""

COMPILED = """
env.import_module("plug").render()
gc.collect()
marks = [[rss_kib()]]
pins = {pins!r}
for generation in range(1, {generations} + 1):
    switch(pins[generation % 2])
    changed = env.reload()
    assert "{swap}" in changed, changed
    env.import_module("plug").render()
    {check}
    gc.collect()
    marks.append([rss_kib()])
result = marks
"""

TIMES = """
env.import_module("plug").render()
times = {{"edit": [], "dependency": [], "unload+import": []}}
pins = {pins!r}
for i in range({rounds}):
    PLUG.write_text(TEXT % (1000 + i))
    t = time.perf_counter(); env.reload(); env.import_module("plug").render()
    times["edit"].append(time.perf_counter() - t)
    switch(pins[(i + 1) % 2])
    t = time.perf_counter(); env.reload(); env.import_module("plug").render()
    times["dependency"].append(time.perf_counter() - t)
    t = time.perf_counter(); env.unload(); env.import_module("plug").render()
    times["unload+import"].append(time.perf_counter() - t)
result = times
"""

FRESH = """
t = time.perf_counter()
env.import_module("plug").render()
result = time.perf_counter() - t
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 cycles, 4 generations, 3 rounds")
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--numpy", action="store_true", help="also numpy 1.26.3 <-> 1.26.4 generations")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.cycles, args.generations, args.rounds = 20, 4, 3
    tmp = Path(tempfile.mkdtemp(prefix="polyvenv-reload-bench-"))
    rows: list[tuple[str, str]] = []
    try:
        pins = ["markupsafe==2.1.5", "markupsafe==3.0.2"]
        project = build(tmp, [pins[1], pins[0]], [])  # ends on pins[0]
        pure = host(project, PURE.format(cycles=args.cycles))
        (r10, t10), (rn, tn) = pure["10"], pure[str(args.cycles)]
        span = args.cycles - 10
        rows.append((f"pure plugin: {args.cycles} reload cycles", f"RSS {rn / 1024:.1f} MiB after, "
                     f"{(rn - r10) / span:+.1f} KiB/cycle (RSS), {(tn - t10) / span:+.2f} KiB/cycle (traced)"))
        cache = tmp / "polyvenv-cache" / "relocated"
        before = _du(cache)
        marks = host(project, COMPILED.format(pins=pins, generations=args.generations, swap="markupsafe",
                                              check='assert env.version("markupsafe") == pins[generation % 2][12:]'))
        growth = [b[0] - a[0] for a, b in zip(marks, marks[1:])]
        rows.append((f"markupsafe 2.1.5 <-> 3.0.2: {args.generations} generations",
                     f"{statistics.median(growth):+.0f} KiB/generation RSS (median; first {growth[0]:+.0f}), "
                     f"copies {(_du(cache) - before) / args.generations:.0f} KiB/generation on disk"))
        times = host(project, TIMES.format(pins=pins, rounds=args.rounds))
        fresh = [host(project, FRESH) for _ in range(args.rounds)]
        base = statistics.median(fresh)
        rows.append(("fresh process: import plug (jinja2, markupsafe) through polyvenv",
                     f"{base * 1000:.1f} ms (1.00x)"))
        for key, label in (("edit", "reload() after a plugin edit (jinja2 kept)"),
                           ("dependency", "reload() after the markupsafe switch (3 names)"),
                           ("unload+import", "unload() + import_module (all anew, in process)")):
            value = statistics.median(times[key])
            rows.append((label, f"{value * 1000:.1f} ms ({value / base:.2f}x)"))
        if args.numpy:
            npins = ["numpy==1.26.3", "numpy==1.26.4"]
            nproject = build(tmp / "np", [npins[1], npins[0]], [])
            (nproject / "plugin" / "plug.py").write_text(
                "import numpy\n\ndef render():\n    return numpy.arange(3).sum()\n")
            nbefore = _du(tmp / "np" / "polyvenv-cache" / "relocated")
            nmarks = host(nproject, COMPILED.format(
                pins=npins, generations=args.generations, swap="numpy",
                check='assert env.import_module("numpy").__version__ == pins[generation % 2][7:]'), swap="numpy")
            ngrowth = [b[0] - a[0] for a, b in zip(nmarks, nmarks[1:])]
            ndisk = (_du(tmp / "np" / "polyvenv-cache" / "relocated") - nbefore) / args.generations
            rows.append((f"numpy 1.26.3 <-> 1.26.4: {args.generations} generations",
                         f"{statistics.median(ngrowth) / 1024:+.1f} MiB/generation RSS (median), "
                         f"copies {ndisk / 1024:.1f} MiB/generation on disk"))
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"\nreload_bench (Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.2f})")
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")


def _du(path: Path) -> int:
    """KiB under ``path`` (each inode once)."""
    if not path.exists():
        return 0
    seen, total = set(), 0
    for directory, _, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(directory, name))
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_blocks * 512
    return total // 1024


if __name__ == "__main__":
    main()
