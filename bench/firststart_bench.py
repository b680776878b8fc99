"""Benchmark: the first start after `polyvenv sync` (issue 13's last bullet), against a plain uv venv's first import.

Run from the repository root:

    .venv/bin/python bench/firststart_bench.py [--runs N] [--keep]

One run makes, in a temporary directory under /tmp (uv's cache is the shared
one, warm; polyvenv's cache, POLYVENV_CACHE_DIR, is private and starts empty),
a workspace of three envs (jinja2 3.1.4, requests 2.32.3, numpy 1.26.4) built
by `polyvenv sync`, and for each the same pins in a plain venv made by
`uv venv` + `uv pip install` (uv compiles no bytecode: a plain venv's first
import compiles its .pyc). Then, each in a fresh process of polyvenv's own
interpreter, for each package:

- plain, first: `<venv>/bin/python -c "import X"` with the venv's __pycache__
  directories removed (its .pyc compiled by this import); second: the same
  again (its .pyc cached). The interpreters' standard library is warm for both.
- polyvenv, first start after sync: polyvenv's cache emptied, then the warm-up
  `sync` runs after each build (runtime/warmup.py, timed on its own), then
  `python -c "import polyvenv; Workspace.load(ws).env(n).import_module(X)"`.
- polyvenv, first start without the warm-up (`sync --no-warm`, or before this
  change): the cache emptied, then the same import (the rewrite and the byte
  patching happen in it).
- polyvenv, second start: the same import again (everything cached).

Each "first" is the median of --runs cold runs (caches emptied each time), each
"second" the median of --runs runs. Ratios are against the plain venv's first
(or second) import. Prints the machine's load average: on a loaded machine all
times stretch, the ratios less so.
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

ROOT = Path(__file__).resolve().parent.parent
UV = Path(sys.executable).parent / "uv"
ENVS = {  # env -> (requirements, module imported)
    "jinja2": (["jinja2==3.1.4", "markupsafe==2.1.5"], "jinja2"),
    "requests": (["requests==2.32.3", "charset-normalizer==3.4.0", "idna==3.10", "urllib3==2.2.3",
                  "certifi==2024.8.30"], "requests"),
    "numpy": (["numpy==1.26.4"], "numpy"),
}
TARGET = 1.2


CPU: dict[tuple[str, ...], float] = {}  # each command's CPU time (user + system) in its last run


def run(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    """Wall seconds of one run of ``argv`` (its CPU seconds go to CPU: steadier on a loaded machine)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[tuple(argv)] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stdout}{proc.stderr}")
    return seconds


def empty(*directories: Path) -> None:
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)


def pycaches(site: Path) -> list[Path]:
    return [Path(d) / "__pycache__" for d, subdirs, _ in os.walk(site) if "__pycache__" in subdirs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="polyvenv-firststart-bench-"))
    cache = tmp / "polyvenv-cache"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "POLYVENV_WARM")}
    env["POLYVENV_CACHE_DIR"] = str(cache)
    try:
        ws = tmp / "ws"
        ws.mkdir()
        (ws / "polyvenv.toml").write_text("".join(
            f"[envs.{name}]\nrequirements = {json.dumps(reqs)}\n\n" for name, (reqs, _) in ENVS.items()))
        print("building the workspace and the plain venvs ...", file=sys.stderr, flush=True)
        run([sys.executable, "-m", "polyvenv", "sync", "-q", "--no-warm"], env, ws)
        builds = {name: Path(os.path.realpath(ws / ".polyvenv" / name)) for name in ENVS}
        plain = {}
        for name, (reqs, _) in ENVS.items():
            venv = tmp / f"plain-{name}"
            run([str(UV), "venv", "-q", "--python", sys.executable, str(venv)], env)
            run([str(UV), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), *reqs], env)
            plain[name] = venv
        rows = []
        for name, (_, module) in ENVS.items():
            site = next((plain[name] / "lib").glob("python*/site-packages"))
            plain_cmd = [str(plain[name] / "bin" / "python"), "-c", f"import {module}"]
            pv_cmd = [sys.executable, "-c", f"import polyvenv; polyvenv.Workspace.load({str(ws)!r}).env({name!r})"
                                            f".import_module({module!r})"]
            warm_cmd = [sys.executable, "-c", "from polyvenv.runtime.warmup import main; main()",
                        json.dumps({"name": name, "build": str(builds[name]), "shared": []})]
            run(pv_cmd, env)  # polyvenv's own modules and the standard library's: compiled, as for plain's
            print(f"{name}: {args.runs} cold runs of each ...", file=sys.stderr, flush=True)
            t: dict[str, list[float]] = {k: [] for k in ("plain1", "plain2", "warmup", "pv1", "nowarm1", "pv2")}
            c: dict[str, list[float]] = {k: [] for k in t}

            def timed(kind: str, argv: list[str]) -> None:
                t[kind].append(run(argv, env))
                c[kind].append(CPU[tuple(argv)])

            for _ in range(args.runs):
                empty(*pycaches(site))
                timed("plain1", plain_cmd)
                timed("plain2", plain_cmd)
                empty(cache)
                timed("nowarm1", pv_cmd)
                empty(cache)
                timed("warmup", warm_cmd)
                timed("pv1", pv_cmd)
                timed("pv2", pv_cmd)
            m = {k: statistics.median(v) for k, v in t.items()}
            u = {k: statistics.median(v) for k, v in c.items()}
            rows += [
                (f"{module}: plain uv venv, first import (compiles its .pyc)", m["plain1"], 1.0, u["plain1"], 1.0),
                (f"{module}: polyvenv, first start without the warm-up (--no-warm)", m["nowarm1"],
                 m["nowarm1"] / m["plain1"], u["nowarm1"], u["nowarm1"] / u["plain1"]),
                (f"{module}: polyvenv, first start after sync (warmed)", m["pv1"], m["pv1"] / m["plain1"],
                 u["pv1"], u["pv1"] / u["plain1"]),
                (f"{module}:   the warm-up at sync (scratch process)", m["warmup"], None, u["warmup"], None),
                (f"{module}: plain uv venv, second import", m["plain2"], 1.0, u["plain2"], 1.0),
                (f"{module}: polyvenv, second start", m["pv2"], m["pv2"] / m["plain2"], u["pv2"],
                 u["pv2"] / u["plain2"]),
            ]
            first, first_cpu = m["pv1"] / m["plain1"], u["pv1"] / u["plain1"]
            rows.append((f"{module}: first start after sync / plain first: target <= {TARGET}x", None,
                         f"wall {'met' if first <= TARGET else 'NOT met'} ({first:.2f}x)", None,
                         f"CPU {'met' if first_cpu <= TARGET else 'NOT met'} ({first_cpu:.2f}x)"))
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"\nfirststart_bench (Python {sys.version.split()[0]}, medians of {args.runs} runs, "
          f"load average {os.getloadavg()[0]:.2f})")
    print(f"  {'':<{width}}  {'wall':>11}  {'ratio':<20}  {'CPU':>11}  ratio")
    for label, seconds, ratio, cpu, cpu_ratio in rows:
        cells = []
        for value, r in ((seconds, ratio), (cpu, cpu_ratio)):
            cells.append(f"{value * 1000:8.1f} ms" if value is not None else " " * 11)
            cells.append(f"{r:.2f}x" if isinstance(r, float) else (r or ""))
        print(f"  {label:<{width}}  {cells[0]}  {cells[1]:<20}  {cells[2]}  {cells[3]}")


if __name__ == "__main__":
    main()
