"""Benchmark: what checking installed files against their RECORDs costs, and hardlink against copy.

Run from the repository root:

    .venv/bin/python bench/integrity_bench.py [--quick] [--reps N] [--keep]

One run prints one table:

1. One env's files checked in-process (medians, warm page cache): existence
   only (what polyvenv checked before), sizes (`list`: one stat per file)
   and sha256 (`doctor`, `list --verify`, `sync --repair`, every build
   before its stamp), for numpy and for a generated 1500-module package.
   Then the commands as a user runs them, in fresh processes: a no-op
   `sync` (which reads no installed file), `list`, `list --verify`,
   `doctor`; and the share of a build's time its own check takes.
2. Ten envs sharing numpy (each with one other pin), built from a warm uv
   cache with `link-mode = "hardlink"` (uv's default on Linux) and
   `"copy"`: `sync --jobs 2` time (UV_OFFLINE=1: the cache only), the disk
   the envs add beyond uv's cache (`du` over cache and envs in one run,
   which counts a hardlinked file once, minus `du` of the cache), and
   `sync --repair` / `doctor` over the ten envs.

Everything happens in a temporary directory under /tmp with its own uv cache
(numpy is downloaded once per run), removed at the end unless --keep.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from build_bench import du_kib, mib, render, say, source_state  # noqa: E402  (same table style)
from wheelgen import pure_wheel  # noqa: E402

from polyvenv.provision import integrity  # noqa: E402
from polyvenv.runtime.sitedir import site_packages  # noqa: E402

NUMPY = "numpy==2.2.6"
PINS = [f"six==1.{minor}.0" for minor in range(10, 18)] + ["attrs==23.2.0", "attrs==24.2.0"]


def polyvenv(*args: str) -> list[str]:
    return [sys.executable, "-m", "polyvenv", *args]


class Bench:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.environ = dict(os.environ, UV_CACHE_DIR=str(tmp / "uv-cache"), POLYVENV_CACHE_DIR=str(tmp / "pv-cache"),
                            PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
        self.environ.pop("VIRTUAL_ENV", None)
        self.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        self.cache = tmp / "uv-cache"

    def run(self, argv: Sequence[str], cwd: Path, offline: bool = False, check: bool = True) -> float:
        env = dict(self.environ, **({"UV_OFFLINE": "1"} if offline else {}))
        started = time.perf_counter()
        proc = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if check and proc.returncode:
            raise SystemExit(f"bench: {' '.join(argv)} failed in {cwd}:\n{proc.stderr}")
        return seconds

    def workspace(self, name: str, envs: dict[str, list[str]], link_mode: str | None = None,
                  wheelhouse: Path | None = None) -> Path:
        root = self.tmp / name
        root.mkdir(exist_ok=True)
        lines = [f'link-mode = "{link_mode}"'] if link_mode else []
        if wheelhouse:
            lines.append(f'wheelhouse = "{wheelhouse}"')
        for env, reqs in envs.items():
            lines += [f"[envs.{env}]", "requirements = [" + ", ".join(f'"{r}"' for r in reqs) + "]"]
        (root / "polyvenv.toml").write_text("\n".join(lines) + "\n")
        return root


def median_seconds(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm the page cache
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def existence_only(env: Path) -> int:
    """What polyvenv checked before: every RECORD row's path exists."""
    import csv

    sp = site_packages(env)
    missing = 0
    for record in sp.glob("*.dist-info/RECORD"):
        with open(record, newline="") as f:
            for row in csv.reader(f):
                missing += bool(row) and not os.path.lexists(os.path.join(sp, row[0]))
    return missing


def record_totals(env: Path) -> tuple[int, int]:
    """Files with a hash in the env's RECORDs, and their bytes."""
    import csv

    sp = site_packages(env)
    count = size = 0
    for record in sp.glob("*.dist-info/RECORD"):
        with open(record, newline="") as f:
            for row in csv.reader(f):
                if len(row) >= 3 and row[1] and row[2].isdigit():
                    count, size = count + 1, size + int(row[2])
    return count, size


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def interleaved(fns: dict[str, Callable[[], float]], reps: int) -> dict[str, float]:
    """Each callable's median over ``reps``, in turn forwards and backwards."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(reps):
        for kind in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            samples[kind].append(fns[kind]())
    return {k: statistics.median(v) for k, v in samples.items()}


def part_one(b: Bench, runs: int) -> list[list[str] | str]:
    wheelhouse = b.tmp / "wheels"
    pure_wheel(wheelhouse, "bigpkg", "1.0", modules=1500)
    ws = b.workspace("one", {"np": [NUMPY], "big": ["bigpkg==1.0"]}, wheelhouse=wheelhouse)
    say("building numpy and bigpkg envs (downloads numpy into the bench's own uv cache)")
    b.run(polyvenv("sync", "--jobs", "1"), ws)
    rows: list[list[str] | str] = ["1. checking one env's installed files against RECORD (in-process, median)",
                                   ["env", "files", "MB", "exists (before)", "sizes (list)",
                                    "sha256 (doctor, --repair, build)", "sha256 / exists"]]
    for name in ("np", "big"):
        env = (ws / ".polyvenv" / name).resolve()
        assert not integrity.damaged_files(env, content=True), f"{env} is damaged before the bench"
        count, size = record_totals(env)
        exists = median_seconds(lambda: existence_only(env), runs)
        sizes = median_seconds(lambda: integrity.damaged_files(env), runs)
        hashed = median_seconds(lambda: integrity.damaged_files(env, content=True), runs)
        rows.append([name, str(count), f"{size / 2**20:.1f}", ms(exists), ms(sizes), ms(hashed),
                     f"{hashed / exists:.1f}x"])
    say("timing the commands in fresh processes")
    b.run(polyvenv("sync"), ws)  # leaves the no-op memo
    cmds = {"sync (no-op)": polyvenv("sync"), "list": polyvenv("list"),
            "list --verify": polyvenv("list", "--verify"), "doctor": polyvenv("doctor"),
            "python -c pass": [sys.executable, "-c", "pass"]}
    for argv in cmds.values():
        b.run(argv, ws)
    medians = interleaved({k: (lambda argv=argv: b.run(argv, ws)) for k, argv in cmds.items()}, runs)
    rows += ["   the commands, both envs (fresh processes, median)", ["command", "seconds", "vs python -c pass"]]
    for kind, seconds in medians.items():
        rows.append([kind, f"{seconds:.3f}", f"{seconds / medians['python -c pass']:.2f}x"])
    say("timing a build of the numpy env from the warm cache")
    builds = []
    for i in range(max(1, runs // 3)):
        (ws / "polyvenv.toml").write_text((ws / "polyvenv.toml").read_text().replace(NUMPY, f"{NUMPY},!=0.0.{i}"))
        builds.append(b.run(polyvenv("sync", "np"), ws, offline=True))
    np_env = (ws / ".polyvenv" / "np").resolve()
    check = median_seconds(lambda: integrity.damaged_files(np_env, content=True), runs)
    build = statistics.median(builds)
    rows.append(f"   a build of np (sync, warm cache) takes {ms(build)}; its sha256 check {ms(check)} of that "
                f"({check / build:.0%})")
    return rows


def part_two(b: Bench, reps: int) -> list[list[str] | str]:
    envs = {f"e{i}": [NUMPY, pin] for i, pin in enumerate(PINS)}
    roots = {mode: b.workspace(f"ten-{mode}", envs, link_mode=mode) for mode in ("hardlink", "copy")}
    say("warming the uv cache for the ten envs")
    b.run(polyvenv("sync", "--jobs", "2"), roots["hardlink"])

    def build(mode: str) -> Callable[[], float]:
        def once() -> float:
            shutil.rmtree(roots[mode] / ".polyvenv", ignore_errors=True)
            return b.run(polyvenv("sync", "--jobs", "2"), roots[mode], offline=True)
        return once

    say(f"building ten envs with each link mode, {reps} times interleaved")
    times = interleaved({mode: build(mode) for mode in roots}, reps)
    cache = du_kib(b.cache)
    rows: list[list[str] | str] = [f"2. ten envs sharing {NUMPY} (one other pin each), warm uv cache",
                                   ["link-mode", "sync --jobs 2", "disk beyond uv's cache", "du of the envs alone",
                                    "sync --repair", "doctor"]]
    for mode, root in roots.items():
        beyond = du_kib(b.cache, root / ".polyvenv") - cache
        alone = du_kib(root / ".polyvenv")
        repair = statistics.median(b.run(polyvenv("sync", "--repair"), root) for _ in range(reps))
        doctor = statistics.median(b.run(polyvenv("doctor"), root) for _ in range(reps))
        rows.append([mode, f"{times[mode]:.2f} s", mib(beyond), mib(alone), f"{repair:.2f} s", f"{doctor:.2f} s"])
    rows.append(f"   uv's cache itself: {mib(cache)}; copy / hardlink build time: {times['copy'] / times['hardlink']:.2f}x")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--reps", type=int, help="ten-env builds per link mode (default 3, --quick 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 3)
    runs = 5 if args.quick else 11
    tmp = Path(tempfile.mkdtemp(prefix="polyvenv-integrity-bench-", dir="/tmp"))
    load = os.getloadavg()[0]
    try:
        rows = part_one(b := Bench(tmp), runs) + part_two(b, reps)
    finally:
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(render(rows))
    print(f"polyvenv {source_state()}; Python {sys.version.split()[0]}; "
          f"load average {load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
