"""What the env's own import system (runtime/envsys.py, issue 12 finding 7) costs env code.

Run from the repository root: ``.venv/bin/python bench/envsys_bench.py [--runs N] [--baseline REV]``

Env code gets a ``sys`` of its own (its ``path``, ``meta_path``, ``path_hooks``), and the env's finder
walks the env's ``sys.meta_path`` and ``sys.path``. This compares, in one run, fresh processes of the
polyvenv in this tree against the one at ``--baseline`` (default ``main``), interleaved:

- **import**: ``env.import_module`` of a generated package of 400 modules (warm code cache);
- **sys.<host attribute>** read in a loop in env code (through the facade) and in host code (the real sys);
- **sys.path** read in a loop in env code (the env's own list).

Prints medians and the ratio now / baseline, and the machine's load average.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = 400

PROBE = r'''
import sys, time, json
sys.path.insert(0, SRC)
import polyvenv
env = polyvenv.Env.from_path(SITE, name="bench")
t = time.perf_counter()
many = env.import_module("many")
imported = time.perf_counter() - t
loops = env.import_module("many.loops")

def best(fn, n=200_000):
    times = []
    for _ in range(5):
        t = time.perf_counter(); fn(n); times.append(time.perf_counter() - t)
    return min(times) / n

def host_attr(n):
    for _ in range(n):
        sys.maxsize

print(json.dumps({"import": imported, "env_attr": best(loops.attr), "env_path": best(loops.path),
                  "host_attr": best(host_attr)}))
'''


def make_site(site: Path) -> None:
    pkg = site / "many"
    pkg.mkdir(parents=True)
    (site / "many-1.0.dist-info").mkdir()
    (site / "many-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: many\nVersion: 1.0\n")
    (pkg / "__init__.py").write_text("".join(f"from . import m{i}\n" for i in range(MODULES)))
    for i in range(MODULES):
        (pkg / f"m{i}.py").write_text("import sys, os, json\nimport many\nVALUE = sys.maxsize\n" + "x = 1\n" * 20)
    (pkg / "loops.py").write_text(
        "import sys\n"
        "def attr(n):\n    for _ in range(n):\n        sys.maxsize\n"
        "def path(n):\n    for _ in range(n):\n        sys.path\n")


def against_baseline(baseline: str, runs: int, tmp: Path, site: Path, probe: str) -> dict[str, dict[str, float]]:
    """The median of each measure ``probe`` prints (one JSON object; it runs with ``SRC`` and ``SITE`` set), for
    the polyvenv at ``baseline`` and for this tree's, in fresh processes, interleaved: ``runs`` rounds after one
    that fills each tree's code cache (under ``tmp``)."""
    base = tmp / "baseline"
    base.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", baseline, "src"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
    trees = {"baseline": str(base / "src"), "now": str(ROOT / "src")}
    env = dict(os.environ, POLYVENV_CACHE_DIR=str(tmp / "cache"), PYTHONDONTWRITEBYTECODE="1")
    results: dict[str, list[dict]] = {k: [] for k in trees}
    for run in range(runs + 1):
        for name, src in trees.items():
            code = f"SRC = {src!r}\nSITE = {str(site)!r}\n" + probe
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
            if out.returncode:
                raise SystemExit(out.stderr)
            if run:
                results[name].append(json.loads(out.stdout))
    return {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline", default="main")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="envsys-bench-"))
    try:
        site = tmp / "site-packages"
        make_site(site)
        med = against_baseline(args.baseline, args.runs, tmp, site, PROBE)
        print(f"load average: {os.getloadavg()}  ({args.runs} interleaved runs, medians)")
        print(f"{'measure':<34} {'baseline':>12} {'now':>12} {'now/base':>9}")
        rows = [("import 400 modules (ms)", "import", 1e3), ("env code: sys.maxsize (ns)", "env_attr", 1e9),
                ("env code: sys.path (ns)", "env_path", 1e9), ("host code: sys.maxsize (ns)", "host_attr", 1e9)]
        for label, key, scale in rows:
            b, n = med["baseline"][key] * scale, med["now"][key] * scale
            print(f"{label:<34} {b:>12.2f} {n:>12.2f} {n / b:>8.2f}x")
        now = med["now"]
        print(f"env code's sys.maxsize against host code's, now: {now['env_attr'] / now['host_attr']:.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
