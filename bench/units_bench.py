"""Issue 13, step 5: two envs with the same N pure distributions (and one of their own each), loaded into one host.

Each env pins the same N generated distributions (``d0`` .. ``d{N-1}``, each a package of a few modules
and ~60 classes, ``d{i}`` importing ``d{i-1}``) and one of its own. A fresh host process loads env ``a``
and imports all N, then env ``b`` and imports all N; per env: the name map's cost (``env.names``:
reading the records, the share keys, the units; CPU time, as the machine may be loaded), the imports'
wall time (the name map's included) and the resident-set growth.
Warm: the code cache is filled by a first round that is not counted. ``--src`` runs the same with
another checkout's ``src`` (e.g. main's, from ``git archive main src | tar -x -C DIR``): before/after.

``--numpy K``: instead, K plugin envs that each pin numpy 1.26.4 (from PyPI) and a small package of
their own, all loaded into one host (import numpy, make an array): time and memory, warm and cold (cold:
an empty code cache and relocated-copy cache, so every rewrite and byte patch happens in that run), for
one env and for all K.

usage: .venv/bin/python bench/units_bench.py [--n 30] [--runs 5] [--src DIR ...] [--numpy K]
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from wheelgen import make_wheel  # noqa: E402

HOST = textwrap.dedent("""
    import sys, time, json
    sys.path.insert(0, SRC)
    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * 4096
    import polyvenv
    ws = polyvenv.Workspace.load(ROOT)
    out = {}
    for name in ("a", "b"):
        env = ws.env(name)
        before, t, cpu = rss(), time.perf_counter(), time.process_time()
        env.names
        names = time.process_time() - cpu
        modules = [env.import_module(f"d{i}") for i in range(N)]
        out[name] = {"names": names, "seconds": time.perf_counter() - t, "rss": rss() - before}
    out["same"] = ws.env("a").import_module("d0") is ws.env("b").import_module("d0")
    print(json.dumps(out))
""")

NUMPY = textwrap.dedent("""
    import sys, time, json
    sys.path.insert(0, SRC)
    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * 4096
    import polyvenv
    ws = polyvenv.Workspace.load(ROOT)
    before, t = rss(), time.perf_counter()
    arrays = [ws.env(f"p{i}").import_module("numpy").arange(3) for i in range(K)]
    print(json.dumps({"seconds": time.perf_counter() - t, "rss": rss() - before,
                      "modules": len({id(type(a)) for a in arrays})}))
""")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--src", action="append", default=[], help="another checkout's src (default: this one)")
    parser.add_argument("--numpy", type=int, default=0, metavar="K")
    args = parser.parse_args()
    sources = [str(ROOT / "src"), *args.src]
    work = Path(tempfile.mkdtemp(prefix="polyvenv-units-bench-"))
    env = dict(os.environ, POLYVENV_CACHE_DIR=str(work / "cache"), PYTHONPATH=str(ROOT / "src"))
    try:
        if args.numpy:
            return numpy(work, env, sources, args.numpy, args.runs)
        wh = work / "wh"
        classes = "".join(f"class C{k}:\n    def m(self):\n        return {k}\n" for k in range(20))
        for i in range(args.n):
            before = f"import d{i - 1}\n" if i else ""
            make_wheel(wh, f"d{i}", "1.0", {f"d{i}/__init__.py": before + f"from . import x, y\n{classes}",
                                            f"d{i}/x.py": classes, f"d{i}/y.py": "from .x import *\n" + classes})
        for own in ("own_a", "own_b"):
            make_wheel(wh, own, "1.0", {f"{own}.py": "X = 1\n"})
        project = work / "project"
        project.mkdir()
        pins = json.dumps([f"d{i}==1.0" for i in range(args.n)])
        (project / "polyvenv.toml").write_text(
            f'wheelhouse = "{wh}"\noffline = true\n'
            f'[envs.a]\nrequirements = {pins[:-1]}, "own_a"]\n[envs.b]\nrequirements = {pins[:-1]}, "own_b"]\n')
        subprocess.run([sys.executable, "-m", "polyvenv", "-q", "sync"], cwd=project, check=True, env=env)
        rows: dict[str, list[dict]] = {src: [] for src in sources}
        for i in range(args.runs + 1):  # the first round fills the code cache: not counted
            for src in sources:
                code = f"SRC, ROOT, N = {src!r}, {str(project)!r}, {args.n}\n" + HOST
                out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
                if i:
                    rows[src].append(json.loads(out.stdout))
        print(f"load average {os.getloadavg()[0]:.2f}; N = {args.n}; {args.runs} warm runs each, medians")
        print(f"{'src':<40} {'env':<4} {'names cpu ms':>12} {'load s':>8} {'RSS +MB':>8}  shared?")
        for src, runs in rows.items():
            for name in ("a", "b"):
                med = {k: statistics.median(r[name][k] for r in runs) for k in ("names", "seconds", "rss")}
                print(f"{src[-40:]:<40} {name:<4} {med['names'] * 1000:>12.1f} {med['seconds']:>8.3f} "
                      f"{med['rss'] / 2**20:>8.2f}  {runs[0]['same']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def numpy(work: Path, env: dict[str, str], sources: list[str], k: int, runs: int) -> None:
    wh = work / "wh"
    for i in range(k):
        make_wheel(wh, f"own{i}", "1.0", {f"own{i}.py": "X = 1\n"})
    project = work / "np"
    project.mkdir()
    (project / "polyvenv.toml").write_text(f'wheelhouse = "{wh}"\n' + "".join(
        f'[envs.p{i}]\nrequirements = ["numpy==1.26.4", "own{i}"]\n' for i in range(k)))
    subprocess.run([sys.executable, "-m", "polyvenv", "-q", "sync"], cwd=project, check=True, env=env)
    print(f"load average {os.getloadavg()[0]:.2f}; {k} envs on numpy 1.26.4; {runs} runs each, medians")
    print(f"{'src':<40} {'envs':>4} {'warm s':>8} {'RSS +MB':>8} {'cold s':>8}  numpys")
    for src in sources:
        for count in (1, k):
            rows: dict[str, list[dict]] = {"warm": [], "cold": []}
            for i in range(runs + 1):
                for kind in rows:
                    cache = work / ("cache" if kind == "warm" else f"cold-{i}")
                    code = f"SRC, ROOT, K = {src!r}, {str(project)!r}, {count}\n" + NUMPY
                    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                         env=dict(env, POLYVENV_CACHE_DIR=str(cache)))
                    if i or kind == "cold":
                        rows[kind].append(json.loads(out.stdout))
                    shutil.rmtree(work / f"cold-{i}", ignore_errors=True)
            warm, cold = (statistics.median(r["seconds"] for r in rows[kind]) for kind in ("warm", "cold"))
            rss = statistics.median(r["rss"] for r in rows["warm"]) / 2**20
            print(f"{src[-40:]:<40} {count:>4} {warm:>8.3f} {rss:>8.1f} {cold:>8.2f}  {rows['warm'][0]['modules']}")


if __name__ == "__main__":
    main()
