"""Benchmark: polyvenv's build and no-op costs against raw uv and venv + pip.

Run from the repository root:

    .venv/bin/python bench/build_bench.py [--quick] [--reps N] [--noop-runs N]

One run prints one table:

1. Build 10 envs that share most of their distributions (jinja2, rich,
   attrs, packaging, plus one differing pin each) from a warm uv cache:
   `polyvenv sync --jobs 2` (and `--jobs 1`) against the same work done by
   raw uv commands (`uv venv` + `uv pip install`, one env after another),
   and against `python -m venv` + the env's own pip (timed on a couple of
   envs and scaled to 10). Twice: online as uv is normally run (it may
   revalidate index pages), and with UV_OFFLINE=1 (the cache only, no
   network), where polyvenv's own overhead shows most.
2. Disk used by the 10 envs (one `du -sk`, which counts hardlinks once)
   against one env, for polyvenv, raw uv and venv + pip.
3. A no-op `polyvenv sync` of 20 built envs against `python -c pass` with
   the interpreter polyvenv runs on.

Everything happens in a temporary directory under /tmp (the filesystem of
the uv cache, so uv can hardlink), removed at the end. Nothing outside it
is written, except the shared uv and pip caches.

Child Pythons run without PYTHONDONTWRITEBYTECODE and with
PYTHONPYCACHEPREFIX inside the temp dir: that measures polyvenv as an
installed tool runs (with .pyc files), whatever the calling shell sets,
without writing into the source tree. If the caller had
PYTHONDONTWRITEBYTECODE set, the no-op is also measured that way, as an
extra row.
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
from typing import Callable, Sequence

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent  # .venv/bin: the bench runs with polyvenv's own interpreter
POLYVENV = VENV_BIN / "polyvenv"

# What every env wants; each env adds (or tightens) one pin, so envs share
# most of their 9 distributions but no two are the same.
BASE = ["jinja2", "rich", "attrs", "packaging"]
PINS = (
    [f"six==1.{minor}.0" for minor in range(10, 18)]  # six 1.10.0 .. 1.17.0
    + [f"attrs=={v}" for v in ("22.2.0", "23.1.0", "23.2.0", "24.1.0", "24.2.0", "24.3.0", "25.1.0")]
    + [f"packaging=={v}" for v in ("23.1", "23.2", "24.0", "24.1", "24.2")]
)
BUILD_ENVS = 10
NOOP_ENVS = 20

TARGET_BUILD = 1.3  # polyvenv sync --jobs 2 / raw uv
TARGET_DISK = 1.5  # 10 envs / 1 env
TARGET_NOOP = 3.0  # no-op sync / python -c pass
EXPECTED_PIP = 50.0  # venv + pip / raw uv, roughly (research note)


# -- the envs -------------------------------------------------------------------

def requirements(pin: str) -> list[str]:
    """BASE with ``pin`` replacing its unpinned name, or added."""
    name = pin.split("==")[0]
    return [r for r in BASE if r != name] + [pin]


def env_specs(count: int) -> dict[str, list[str]]:
    return {f"env{i:02d}": requirements(PINS[i]) for i in range(count)}


def write_workspace(ws: Path, specs: dict[str, list[str]]) -> Path:
    ws.mkdir(parents=True)
    lines = []
    for name, reqs in specs.items():
        lines += [f"[envs.{name}]", f"requirements = {json.dumps(reqs)}", ""]
    (ws / "polyvenv.toml").write_text("\n".join(lines))
    return ws


# -- running and timing -------------------------------------------------------

class Bench:
    def __init__(self, tmp: Path, uv: str, python: str) -> None:
        self.tmp = tmp
        self.uv = uv
        self.python = python  # the base interpreter polyvenv builds envs with by default
        self.child_env = dict(os.environ)
        self.child_env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.child_env.pop("VIRTUAL_ENV", None)
        self.child_env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        self.child_env["UV_PYTHON_DOWNLOADS"] = "never"  # as polyvenv runs uv

    def env(self, offline: bool = False, **extra: str) -> dict[str, str]:
        env = dict(self.child_env, **extra)
        if offline:
            env["UV_OFFLINE"] = "1"
        return env

    def run(self, argv: Sequence[str | Path], *, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> tuple[float, str]:
        """Run a command; return (wall seconds, output). Any failure ends the bench."""
        started = time.perf_counter()
        proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env or self.child_env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        seconds = time.perf_counter() - started
        if proc.returncode:
            sys.exit(f"bench: command failed (exit {proc.returncode}): {' '.join(map(str, argv))}\n{proc.stdout}")
        return seconds, proc.stdout

    # -- the three ways of building N envs -------------------------------------

    def polyvenv_sync(self, ws: Path, jobs: int, offline: bool = False, expect_built: int | None = None) -> float:
        seconds, out = self.run([POLYVENV, "sync", "--jobs", str(jobs)], cwd=ws, env=self.env(offline))
        if expect_built is not None and f": {expect_built} built," not in out:
            sys.exit(f"bench: expected {expect_built} envs built by polyvenv sync in {ws}, got:\n{out}")
        return seconds

    def raw_uv(self, root: Path, specs: dict[str, list[str]], offline: bool = False, jobs: int = 1) -> float:
        """What polyvenv does, by hand: per env, `uv venv` then `uv pip install`; ``jobs`` envs at a time."""
        env = self.env(offline)
        root.mkdir(parents=True)

        def one(name: str) -> None:
            target = root / name
            self.run([self.uv, "venv", "--no-config", "--python", self.python, target], env=env)
            self.run([self.uv, "pip", "install", "--no-config", "--python", target / "bin/python", *specs[name]],
                     env=env)

        started = time.perf_counter()
        if jobs == 1:
            for name in specs:
                one(name)
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=jobs) as pool:
                list(pool.map(one, specs))
        return time.perf_counter() - started

    def venv_pip(self, root: Path, specs: dict[str, list[str]]) -> float:
        """The classic way: `python -m venv` (with ensurepip), then the env's own pip."""
        root.mkdir(parents=True)
        total = 0.0
        for name, reqs in specs.items():
            target = root / name
            total += self.run([self.python, "-m", "venv", target])[0]
            total += self.run([target / "bin/python", "-m", "pip", "install", "--disable-pip-version-check",
                               "--no-input", *reqs])[0]
        return total


def du_kib(*paths: Path) -> int:
    """Disk used, KiB, with one `du` invocation (hardlinked files counted once)."""
    out = subprocess.run(["du", "-sk", "--total", *map(str, paths)], capture_output=True, text=True,
                         check=True).stdout
    return int(out.strip().splitlines()[-1].split()[0])


def installed(env: Path) -> dict[str, str]:
    """Distribution -> version, from an env's dist-info directories."""
    found = {}
    for info in env.glob("lib/python*/site-packages/*.dist-info"):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        found[name.lower().replace("_", "-")] = version
    return dict(sorted(found.items()))


def hardlinked_share(env: Path) -> float:
    """Fraction of an env's site-packages files that have more than one link (shared with the uv cache)."""
    files = [p for p in env.glob("lib/python*/site-packages/**/*") if p.is_file() and not p.is_symlink()]
    return sum(p.stat().st_nlink > 1 for p in files) / max(1, len(files))


def source_state() -> str:
    """The polyvenv code measured: HEAD, and whether src/ has uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "(not a git checkout)"
    return f"at {head}" + (" + uncommitted changes in src/" if dirty else "")


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# -- the table -------------------------------------------------------------------

def render(rows: list[list[str] | str]) -> str:
    """Rows of cells (first column left-aligned, the rest right-aligned); a str row is a heading."""
    cells = [r for r in rows if not isinstance(r, str)]
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(max(map(len, cells)))]
    out = []
    for row in rows:
        if isinstance(row, str):
            out.append(row)
            continue
        parts = [row[0].ljust(widths[0])] + [c.rjust(widths[i + 1]) for i, c in enumerate(row[1:])]
        out.append("  " + "  ".join(parts).rstrip())
    return "\n".join(out)


def ratio(x: float, y: float) -> str:
    return f"{x / y:.2f}x"


def verdict(value: float, target: float) -> str:
    return "yes" if value <= target else "NO"


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MB"


# -- the benchmark ---------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about a minute)")
    parser.add_argument("--reps", type=int, help="timed builds of each kind (default 3, --quick 1)")
    parser.add_argument("--noop-runs", type=int, help="no-op syncs timed (default 15, --quick 5)")
    parser.add_argument("--pip-envs", type=int, help="envs built with venv + pip, scaled to 10 (default 2, --quick 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (its path is printed)")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 3)
    noop_runs = args.noop_runs or (5 if args.quick else 15)
    pip_envs = max(1, min(BUILD_ENVS, args.pip_envs or (1 if args.quick else 2)))

    if not POLYVENV.exists():
        sys.exit(f"bench: {POLYVENV} not found: run with polyvenv's venv, e.g. .venv/bin/python bench/build_bench.py")
    from uv import find_uv_bin  # the uv polyvenv itself runs

    from polyvenv.provision.interpreters import current

    uv = find_uv_bin()
    python = current().path
    cache_dir = Path(subprocess.run([uv, "cache", "dir"], capture_output=True, text=True, check=True).stdout.strip())
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="polyvenv-bench-", dir="/tmp"))
    same_fs = os.stat(tmp).st_dev == os.stat(cache_dir).st_dev
    if not same_fs:
        say(f"WARNING: {tmp} and the uv cache {cache_dir} are on different filesystems: uv will copy, not hardlink")
    started, load_before = time.monotonic(), os.getloadavg()[0]
    try:
        rows = run_all(Bench(tmp, uv, python), reps, noop_runs, pip_envs)
    finally:
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    uv_version = subprocess.run([uv, "--version"], capture_output=True, text=True).stdout.split()[1]
    print(f"polyvenv build benchmark: polyvenv {source_state()}")
    print(f"  Python {sys.version.split()[0]} ({python}), uv {uv_version}, {os.cpu_count()} CPUs, "
          f"uv cache {cache_dir} ({'same' if same_fs else 'OTHER'} filesystem as {tmp.parent})")
    print(f"  medians of {reps} timed builds and {noop_runs} no-op runs; {time.monotonic() - started:.0f}s in all; "
          f"load average {load_before:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    print(render(rows))
    return 0


def run_all(b: Bench, reps: int, noop_runs: int, pip_envs: int) -> list[list[str] | str]:
    build_specs = env_specs(BUILD_ENVS)
    noop_specs = env_specs(NOOP_ENVS)

    # Warm the caches, untimed: the 20-env workspace (a superset of the 10) is
    # built now, online, and reused for the no-op part; one venv + pip env warms pip's cache.
    say(f"warming the uv cache: polyvenv sync of {NOOP_ENVS} envs (untimed)")
    noop_ws = write_workspace(b.tmp / "noop", noop_specs)
    b.polyvenv_sync(noop_ws, jobs=2, expect_built=NOOP_ENVS)
    say("warming pip's cache: one venv + pip env (untimed)")
    b.venv_pip(b.tmp / "pip-warm", dict(list(build_specs.items())[:1]))
    shutil.rmtree(b.tmp / "pip-warm")

    # 1. Builds, the kinds interleaved within each repetition so drift hits all alike.
    kinds: dict[str, Callable[[Path], float]] = {
        "uv": lambda d: b.raw_uv(d, build_specs),
        "uv2": lambda d: b.raw_uv(d, build_specs, jobs=2),
        "pv2": lambda d: b.polyvenv_sync(write_workspace(d, build_specs), 2, expect_built=BUILD_ENVS),
        "pv1": lambda d: b.polyvenv_sync(write_workspace(d, build_specs), 1, expect_built=BUILD_ENVS),
        "uv-off": lambda d: b.raw_uv(d, build_specs, offline=True),
        "uv2-off": lambda d: b.raw_uv(d, build_specs, offline=True, jobs=2),
        "pv2-off": lambda d: b.polyvenv_sync(write_workspace(d, build_specs), 2, offline=True, expect_built=BUILD_ENVS),
        "pv1-off": lambda d: b.polyvenv_sync(write_workspace(d, build_specs), 1, offline=True, expect_built=BUILD_ENVS),
    }
    times: dict[str, list[float]] = {k: [] for k in kinds}
    pip_times: list[float] = []
    pip_specs = dict(list(build_specs.items())[:pip_envs])
    for rep in range(reps):
        for kind, build in kinds.items():
            d = b.tmp / f"{kind}-{rep}"
            times[kind].append(build(d))
            if rep < reps - 1:
                shutil.rmtree(d)
        say(f"repetition {rep + 1}/{reps}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()))
        d = b.tmp / f"pip-{rep}"
        pip_times.append(b.venv_pip(d, pip_specs))
        if rep < reps - 1:
            shutil.rmtree(d)
        say(f"repetition {rep + 1}/{reps}: venv + pip, {pip_envs} env(s): {pip_times[-1]:.1f}s")
    med = {k: statistics.median(v) for k, v in times.items()}
    pip_med = statistics.median(pip_times) * BUILD_ENVS / pip_envs

    # Same envs, same contents? And did uv hardlink from its cache?
    last = reps - 1
    pv_envs = b.tmp / f"pv2-{last}" / ".polyvenv"
    uv_envs = b.tmp / f"uv-{last}"
    n_dists = set()
    for name in build_specs:
        ours, theirs = installed(pv_envs / name), installed(uv_envs / name)
        if ours != theirs:
            sys.exit(f"bench: env {name} differs between polyvenv and raw uv:\n  {ours}\n  {theirs}")
        n_dists.add(len(ours))
    for name in pip_specs:
        theirs = installed(b.tmp / f"pip-{last}" / name)
        theirs.pop("pip", None), theirs.pop("setuptools", None)
        if theirs != installed(pv_envs / name):
            say(f"WARNING: env {name} differs between polyvenv and venv + pip:\n  {installed(pv_envs / name)}\n  {theirs}")
    linked = hardlinked_share(pv_envs / "env00")

    # 2. Disk.
    say("disk: one-env workspace (untimed build)")
    one_ws = write_workspace(b.tmp / "one", dict(list(build_specs.items())[:1]))
    b.polyvenv_sync(one_ws, jobs=1, expect_built=1)
    pv_10, pv_1 = du_kib(pv_envs), du_kib(one_ws / ".polyvenv")
    uv_10, uv_1 = du_kib(uv_envs), du_kib(uv_envs / "env00")
    pip_dirs = [b.tmp / f"pip-{last}" / n for n in pip_specs]
    pip_n, pip_1 = du_kib(*pip_dirs), du_kib(pip_dirs[0])
    pip_10 = pip_n * BUILD_ENVS // pip_envs

    # 3. No-op sync of 20 built envs against starting the same interpreter.
    say(f"no-op: {noop_runs} x `polyvenv sync` of {NOOP_ENVS} built envs, {noop_runs} x `python -c pass`")
    pass_argv = [sys.executable, "-c", "pass"]
    sync_argv = [POLYVENV, "sync"]
    for _ in range(3):  # warm the page cache and the .pyc prefix
        b.run(pass_argv), b.run(sync_argv, cwd=noop_ws)
    # Any option takes the full path (config parsed, every spec hashed): the cost without the memo.
    full_argv = [POLYVENV, "sync", "--jobs", "1"]
    noop, full, bare = [], [], []
    for _ in range(noop_runs):
        for argv, times in ((sync_argv, noop), (full_argv, full)):
            seconds, out = b.run(argv, cwd=noop_ws)
            if f"0 built, {NOOP_ENVS} up to date" not in out:
                sys.exit(f"bench: the no-op sync was not a no-op:\n{out}")
            times.append(seconds)
        bare.append(b.run(pass_argv)[0])
    noop_med, full_med, bare_med = statistics.median(noop), statistics.median(full), statistics.median(bare)
    nopyc = None
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        env = dict(b.child_env, PYTHONDONTWRITEBYTECODE=os.environ["PYTHONDONTWRITEBYTECODE"])
        env.pop("PYTHONPYCACHEPREFIX")
        nopyc = statistics.median(
            [b.run(sync_argv, cwd=noop_ws, env=env)[0] for _ in range(noop_runs)]
        ), statistics.median([b.run(pass_argv, env=env)[0] for _ in range(noop_runs)])

    # The table.
    target_build = f"<= {TARGET_BUILD}x"
    rows: list[list[str] | str] = [
        "",
        f"1. Build {BUILD_ENVS} envs from a warm uv cache ({'-'.join(map(str, sorted(n_dists)))} distributions each, "
        f"all but one shared; "
        f"{linked:.0%} of site-packages files hardlinked)",
        ["", "wall", "vs raw uv, same parallelism", "target", "met"],
    ]
    for label, uv_key, off in (("online (uv may revalidate the index)", "uv", False),
                               ("UV_OFFLINE=1 (cache only)", "uv-off", True)):
        suffix = "-off" if off else ""
        uv1, uv2, pv1, pv2 = (med[k + suffix] for k in ("uv", "uv2", "pv1", "pv2"))
        rows += [
            f"  {label}",
            ["raw uv: uv venv + uv pip install, sequential", f"{uv1:.2f}s", "1.00x", "", ""],
            ["polyvenv sync --jobs 1", f"{pv1:.2f}s", ratio(pv1, uv1), target_build, verdict(pv1 / uv1, TARGET_BUILD)],
            ["raw uv, 2 envs at a time", f"{uv2:.2f}s", "1.00x", "", ""],
            ["polyvenv sync --jobs 2", f"{pv2:.2f}s", ratio(pv2, uv2), target_build, verdict(pv2 / uv2, TARGET_BUILD)],
        ]
        rows.append([f"python -m venv + env's pip ({pip_envs} timed, x{BUILD_ENVS / pip_envs:g})"
                     + (", online" if off else ""),
                     f"{pip_med:.1f}s", ratio(pip_med, med[uv_key]), f"~{EXPECTED_PIP:g}x", "(info)"])
    rows += [
        "",
        f"2. Disk for {BUILD_ENVS} envs (du -sk, hardlinks counted once)",
        ["", f"{BUILD_ENVS} envs", "1 env", f"{BUILD_ENVS} / 1", "target", "met"],
        ["polyvenv (the whole envs dir)", mib(pv_10), mib(pv_1), ratio(pv_10, pv_1),
         f"<= {TARGET_DISK}x", verdict(pv_10 / pv_1, TARGET_DISK)],
        ["raw uv", mib(uv_10), mib(uv_1), ratio(uv_10, uv_1), "", ""],
        [f"python -m venv + pip ({pip_envs} measured, x{BUILD_ENVS / pip_envs:g})", mib(pip_10), mib(pip_1),
         ratio(pip_10, pip_1), "", ""],
        "",
        f"3. No-op `polyvenv sync` of {NOOP_ENVS} built envs ({noop_runs} runs, median)",
        ["", "wall", "vs python -c pass", "target", "met"],
        ["python -c pass (same interpreter)", f"{bare_med * 1000:.1f}ms", "1.00x", "", ""],
        ["polyvenv sync (no-op, answered by the memo)", f"{noop_med * 1000:.1f}ms", ratio(noop_med, bare_med),
         f"<= {TARGET_NOOP}x", verdict(noop_med / bare_med, TARGET_NOOP)],
        ["polyvenv sync --jobs 1 (no-op, full decision)", f"{full_med * 1000:.1f}ms", ratio(full_med, bare_med),
         "(info)", ""],
    ]
    if nopyc:
        rows.append(["polyvenv sync, PYTHONDONTWRITEBYTECODE as inherited",
                     f"{nopyc[0] * 1000:.1f}ms", ratio(*nopyc), "(info)", ""])
    return rows


if __name__ == "__main__":
    sys.exit(main())
