"""What the standard library's name resolvers (runtime/resolvers.py, issue 12 finding 3) cost the host and env code.

Run from the repository root: ``.venv/bin/python bench/facades_bench.py [--runs N] [--baseline REV]``

"The runtime costs the host nothing": once an env loads, the host's own ``pickle.loads``,
``pkgutil.resolve_name`` and ``logging.getLogger`` must cost what they cost before. Env code gets facades
of those modules whose entry points resolve names for the env. This compares, in one run, fresh processes
of the polyvenv in this tree against the one at ``--baseline`` (default ``main``), interleaved:

- **host code**, each call timed before any env loads and again after one loaded (and its code ran
  every resolver): ``pickle.loads`` of a small tuple, ``pkgutil.resolve_name("os.path:join")``,
  ``logging.getLogger("bench")``, ``pickle.dumps`` of ten objects of a class of its own;
- **env code**: the same calls written the same way in an env's module (through its facades: its
  ``pickle.dumps`` writes its classes by their real names, runtime/pickles.py).

Prints medians, the ratios after / before (host) and env / host, and the machine's load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from envsys_bench import against_baseline  # noqa: E402  # fresh processes of this tree and the baseline's

CALLS = ("loads", "resolve", "logger", "dumps")

LOOPS = '''
import logging, pickle, pkgutil
DATA = pickle.dumps((1, "a", 2.0))
def loads(n):
    for _ in range(n):
        pickle.loads(DATA)
def resolve(n):
    for _ in range(n):
        pkgutil.resolve_name("os.path:join")
def logger(n):
    for _ in range(n):
        logging.getLogger("bench")
class Thing:
    def __init__(self):
        self.x = 1
THINGS = tuple(Thing() for _ in range(10))
def dumps(n):
    for _ in range(n):
        pickle.dumps(THINGS)
'''

PROBE = r'''
import sys, time, json, types
sys.path.insert(0, SRC)
host = sys.modules["host_loops"] = types.ModuleType("host_loops")  # its Things pickle by name
exec(LOOPS, host.__dict__)

def best(fn, n=50_000):
    times = []
    for _ in range(5):
        t = time.perf_counter(); fn(n); times.append(time.perf_counter() - t)
    return min(times) / n

before = {name: best(getattr(host, name)) for name in CALLS}
import polyvenv
env = polyvenv.Env.from_path(SITE, name="bench")
loops = env.import_module("benchloops")
after = {name: best(getattr(host, name)) for name in CALLS}
in_env = {name: best(getattr(loops, name)) for name in CALLS}
print(json.dumps({**{"before_" + k: v for k, v in before.items()}, **{"after_" + k: v for k, v in after.items()},
                  **{"env_" + k: v for k, v in in_env.items()}}))
'''


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--baseline", default="main")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="facades-bench-"))
    try:
        site = tmp / "site-packages"
        site.mkdir()
        (site / "benchloops.py").write_text(LOOPS)
        med = against_baseline(args.baseline, args.runs, tmp, site, f"LOOPS = {LOOPS!r}\nCALLS = {CALLS!r}\n" + PROBE)
        print(f"load average: {os.getloadavg()}  ({args.runs} interleaved runs, medians, ns per call)")
        labels = {"loads": "pickle.loads(small tuple)", "resolve": 'pkgutil.resolve_name("os.path:join")',
                  "logger": 'logging.getLogger("bench")', "dumps": "pickle.dumps(10 objects of a class)"}
        print(f"{'call':<38} {'tree':<9} {'host before':>12} {'host after':>11} {'after/before':>13} "
              f"{'env code':>9} {'env/host':>9}")
        for call in CALLS:
            for tree in med:
                m = med[tree]
                before, after, in_env = (m[f"{k}_{call}"] * 1e9 for k in ("before", "after", "env"))
                print(f"{labels[call]:<38} {tree:<9} {before:>12.0f} {after:>11.0f} {after / before:>12.2f}x "
                      f"{in_env:>9.0f} {in_env / before:>8.2f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
