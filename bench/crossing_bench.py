"""What the crossing guards (runtime/crossing.py, issue 13) cost: the env copy of numpy against the same numpy
imported plainly by the host, in one process.

Run from the repository root: ``.venv/bin/python bench/crossing_bench.py [--runs N] [--workdir DIR]``

An env copy of numpy has guards on ``ndarray.__array_ufunc__``/``__array_function__`` (reached only by
overrides, never by its own plain arrays), on ``ufunc.__call__`` as an attribute (a plain call does not go
through it) and on the ufunc methods ``reduce``, ``accumulate``, ``reduceat``, ``outer``, ``at`` (every call
does). The host's numpy is the same version from the same files (the env's build), untouched by the guards:
its calls are timed before the env loads and after. Prints medians (ns of CPU time a call) and the ratios env / host and
host after / before, interleaved rounds, and the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
CALLS = {
    "add(y, y)": "np.add(y, y)",
    "y + 1": "y + 1",
    "add.reduce(y)": "np.add.reduce(y)",
    "sum(y)": "np.sum(y)",
    "maximum.accumulate(y)": "np.maximum.accumulate(y)",
    "mean(y)": "np.mean(y)",
}


def timed(np, code: str, number: int = 2000) -> float:
    y = np.arange(16.0)
    # CPU time of this thread: less of the other processes on a loaded machine than the wall clock
    return min(timeit.repeat(code, globals={"np": np, "y": y}, number=number, repeat=3,
                             timer=time.thread_time)) / number * 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    root = Path(args.workdir or tempfile.mkdtemp(prefix="polyvenv-crossing-bench-"))
    project = root / "project"
    project.mkdir(parents=True, exist_ok=True)
    (project / "polyvenv.toml").write_text('[envs.np]\nrequirements = ["numpy==2.2.6"]\n')
    subprocess.run([sys.executable, "-m", "polyvenv", "sync", "-q"], cwd=project, check=True)
    sys.path.insert(0, str(SRC))
    import polyvenv
    from polyvenv.runtime.sitedir import site_packages

    ws = polyvenv.Workspace.load(project)
    sys.path.insert(0, str(site_packages(ws.env_dir("np"))))
    import numpy as host  # the same files, imported plainly: no guards

    before = {name: [timed(host, code) for _ in range(args.runs)] for name, code in CALLS.items()}
    env = ws.env("np").import_module("numpy")
    after: dict[str, list[float]] = {name: [] for name in CALLS}
    copy: dict[str, list[float]] = {name: [] for name in CALLS}
    for _ in range(args.runs):
        for name, code in CALLS.items():
            after[name].append(timed(host, code))
            copy[name].append(timed(env, code))
    rows = []
    print(f"numpy {host.__version__}, {args.runs} runs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'call':24} {'host before':>12} {'host after':>11} {'env copy':>9} {'after/before':>13} {'env/host':>9}")
    for name in CALLS:
        b, a, e = (statistics.median(v[name]) for v in (before, after, copy))
        rows.append({"call": name, "before": b, "after": a, "env": e})
        print(f"{name:24} {b:12.0f} {a:11.0f} {e:9.0f} {a / b:12.2f}x {e / a:8.2f}x")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
