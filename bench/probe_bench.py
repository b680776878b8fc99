"""What `isolation = "auto"` costs at sync: the probe of each env against its build, from one run.

    .venv/bin/python bench/probe_bench.py [--quick] [--keep]

Builds each env (jinja2, numpy, pydantic, requests; --quick: jinja2 and requests) with `isolation = "auto"`
in a temporary workspace with private uv and polyvenv caches (a cold build and a cold code cache, as a
first sync has), then probes it again with `polyvenv check` (what a later probe of the same files costs:
warm caches). Prints per env: modules probed, the verdict, build seconds, probe seconds at sync, their
ratio, and the warm probe; and the machine's load average, which skews every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENVS = {"jinja2": "jinja2==3.1.4", "numpy": "numpy==2.1.3", "pydantic": "pydantic==2.9.2",
        "requests": "requests==2.32.3"}
QUICK = ("jinja2", "requests")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    args = parser.parse_args()
    names = QUICK if args.quick else tuple(ENVS)
    tmp = Path(tempfile.mkdtemp(prefix="probe-bench-"))
    env = {**os.environ, "UV_CACHE_DIR": str(tmp / "uv-cache"), "POLYVENV_CACHE_DIR": str(tmp / "polyvenv-cache")}
    root = tmp / "project"
    root.mkdir()
    (root / "polyvenv.toml").write_text("".join(
        f'[envs.{n}]\nrequirements = ["{ENVS[n]}"]\nisolation = "auto"\n' for n in names))
    load = os.getloadavg()
    polyvenv = [sys.executable, "-m", "polyvenv", "--no-progress", "-q"]
    try:
        rows = []
        for name in names:  # one at a time: each build and probe has the machine to itself
            subprocess.run([*polyvenv, "sync", name, "--jobs", "1"], cwd=root, env=env, check=True)
            built = json.loads((root / ".polyvenv" / name / "polyvenv.json").read_text())
            started = time.monotonic()
            proc = subprocess.run([*polyvenv, "check", name, "--json"], cwd=root, env=env, capture_output=True,
                                  text=True)
            warm = time.monotonic() - started
            [report] = json.loads(proc.stdout)
            rows.append((name, len(report["modules"]), built["verdict"], built["build_seconds"],
                         built["probe_seconds"], warm))
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)")
    print(f"{'env':<10} {'modules':>7} {'verdict':<10} {'build s':>8} {'probe s':>8} {'probe/build':>11} "
          f"{'check s (warm)':>14}")
    for name, modules, verdict, build, probe, warm in rows:
        print(f"{name:<10} {modules:>7} {verdict:<10} {build:>8.2f} {probe:>8.2f} {probe / build:>10.1f}x "
              f"{warm:>14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
