"""Issue 13: an env whose jinja2/markupsafe the host has identically loads the host's modules, not a copy.

Two envs with jinja2 3.1.4 + markupsafe 3.0.2: `shared` (the rule gives it the host's modules) and `private`
(the same build, `private = ["jinja2", "markupsafe"]`: its own copies, as before issue 13); for scale, the
host importing jinja2 itself; and each env again where the host has imported and used jinja2 first (a
plugin host using the library itself: the shared env then adds nothing). Each row is a fresh host process (a venv's interpreter with a host
directory holding the same two distributions on sys.path): import jinja2 from the env and render a
template; warm (the rewritten code cached by an earlier run). Medians of interleaved runs; memory is the
resident set after the import minus before. Also: what `sync` spends on the records (numpy + pandas).

usage: .venv/bin/python bench/sharing_bench.py [--runs N] [--keep] [--records]
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
SRC = ROOT / "src"
UV = ROOT / ".venv" / "bin" / "uv"
REQUIREMENTS = ["jinja2==3.1.4", "markupsafe==3.0.2"]

ONE = textwrap.dedent("""
    import sys, time, json
    sys.path[:0] = [SRC, HOST]
    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * 4096
    import polyvenv
    ws = polyvenv.Workspace.load(ROOT)
    MODE, _, AFTER_HOST = MODE.partition("+")
    if AFTER_HOST:  # the host uses jinja2 itself first: what does the env add?
        import jinja2
        jinja2.Template("{{ x }}").render(x=1)
    before, t = rss(), time.perf_counter()
    if MODE == "host":
        import jinja2
    else:
        jinja2 = ws.env(MODE).import_module("jinja2")
    out = jinja2.Template("{{ x }}!").render(x="<b>")
    seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "rss": rss() - before, "host_module": jinja2 is sys.modules.get("jinja2"),
                      "out": out}))
""")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--records", action="store_true", help="also time the records of numpy + pandas")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="polyvenv-sharing-bench-"))
    env = dict(os.environ, POLYVENV_CACHE_DIR=str(work / "cache"), PYTHONPATH=str(SRC))
    try:
        host = work / "host"
        subprocess.run([str(UV), "pip", "install", "-q", "--target", str(host), *REQUIREMENTS], check=True, env=env)
        project = work / "project"
        project.mkdir()
        (project / "polyvenv.toml").write_text(
            f"[envs.shared]\nrequirements = {json.dumps(REQUIREMENTS)}\n"
            f"[envs.private]\nrequirements = {json.dumps(REQUIREMENTS)}\nprivate = [\"jinja2\", \"markupsafe\"]\n")
        subprocess.run([sys.executable, "-m", "polyvenv", "-q", "sync"], cwd=project, check=True, env=env)
        rows: dict[str, list[dict]] = {"host": [], "shared": [], "private": [], "shared+host": [], "private+host": []}
        for i in range(args.runs + 1):  # the first round fills the code cache: not counted
            for mode in rows:
                code = f"SRC, HOST, ROOT, MODE = {str(SRC)!r}, {str(host)!r}, {str(project)!r}, {mode!r}\n" + ONE
                out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
                if i:
                    rows[mode].append(json.loads(out.stdout))
        base = statistics.median(r["seconds"] for r in rows["host"])
        print(f"load average {os.getloadavg()[0]:.2f}; {args.runs} warm runs each, medians")
        print(f"{'import jinja2 + render':<34} {'seconds':>8} {'x host':>7} {'RSS +MB':>8}  host's module?")
        for mode, label in (("host", "host imports it itself"), ("shared", "env, shared by the rule"),
                            ("private", "env, private copy (as before)"),
                            ("shared+host", "host has it loaded; env, shared"),
                            ("private+host", "host has it loaded; env, private")):
            seconds = statistics.median(r["seconds"] for r in rows[mode])
            rss = statistics.median(r["rss"] for r in rows[mode]) / 2**20
            print(f"{label:<34} {seconds:>8.4f} {seconds / base:>6.2f}x {rss:>8.2f}  {rows[mode][0]['host_module']}")
        if args.records:
            records(work, env)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def records(work: Path, env: dict[str, str]) -> None:
    """What the records cost at sync for numpy + pandas: cold (nothing cached) and warm (same digests)."""
    project = work / "np"
    project.mkdir()
    (project / "polyvenv.toml").write_text('[envs.np]\nrequirements = ["numpy==1.26.4", "pandas==2.2.3"]\n')
    subprocess.run([sys.executable, "-m", "polyvenv", "-q", "sync"], cwd=project, check=True, env=env)
    code = textwrap.dedent(f"""
        import os, shutil, time, json
        from pathlib import Path
        from polyvenv.provision.records import write_records
        build = Path(os.path.realpath({str(project / '.polyvenv' / 'np')!r}))
        manifest = json.loads((build / "polyvenv.json").read_text())
        shutil.rmtree(os.path.join(os.environ["POLYVENV_CACHE_DIR"], "records"), ignore_errors=True)
        for label in ("cold", "warm"):
            t = time.perf_counter(); write_records(build); s = time.perf_counter() - t
            print(f"records of numpy + pandas, {{label}}: {{s:.2f}} s (its build from a warm uv cache, records included: {{manifest['build_seconds']}} s)")
    """)
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


if __name__ == "__main__":
    main()
