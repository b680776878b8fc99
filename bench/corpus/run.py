"""Run the compatibility corpus and print one table: every package WORKS, REFUSED, BROKEN or WRONG.

    .venv/bin/python bench/corpus/run.py [--kind compiled|pure|all] [--jobs N] [--only NAME,...]
                                         [--workdir DIR] [--timeout S] [--max-modules N]

Each package runs in its own workspace under --workdir (kept: a second run reinstalls nothing; wheels
come from uv's cache) and its own scratch processes (bench/corpus/oracle.py says what is checked).
Progress goes to stderr, one line per package as it finishes; the markdown table goes to stdout and,
with the JSON of every result, to results/<kind>.md and results/<kind>.json (committed: the tables
the README quotes).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from corpus.oracle import VERDICTS, Package, Result, load_packages, try_package, wrong_class  # noqa: E402

HERE = Path(__file__).resolve().parent


def table(results: list[Result]) -> str:
    """The markdown table, in rank order, and its totals line."""
    lines = ["| package | rank | versions (old / new = host) | verdict | submodules ok/total | first error |",
             "|---|---:|---|---|---:|---|"]
    for r in sorted(results, key=lambda r: (r.kind, r.rank)):
        error = r.error[:140] + (f" · also fails: {r.first_failure[:100]}" if r.verdict == "WRONG" and r.first_failure
                                 else "")
        error = error.replace("|", "\\|").replace("\n", " ")
        verdict = f"{r.verdict} ({', '.join(r.wrong_classes)})" if r.wrong_classes else r.verdict
        lines.append(f"| {r.name} | {r.rank} | {r.versions} | {verdict} | {r.ok}/{r.total} | {error} |")
    return "\n".join(lines) + "\n\n" + totals(results) + "\n"


def totals(results: list[Result]) -> str:
    counted = [r for r in results if r.verdict != "SKIP"]
    parts = [f"{sum(r.verdict == v for r in results)} {v}" for v in VERDICTS]
    works = sum(r.verdict == "WORKS" for r in counted)
    share = f" ({100 * works / len(counted):.0f}% WORKS of {len(counted)} with a verdict)" if counted else ""
    classes: dict[str, int] = {}
    for r in results:
        for kind in r.wrong_classes:
            classes[kind] = classes.get(kind, 0) + 1
    by_class = ("; WRONG packages by finding: " + ", ".join(f"{k} {v}" for k, v in sorted(classes.items()))
                if classes else "")
    return f"**Totals ({len(results)} packages):** " + ", ".join(parts) + share + by_class


def header(kind: str) -> dict[str, str]:
    root = HERE.parent.parent
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "src"], capture_output=True,
                           text=True).stdout.strip()
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "polyvenv": commit + (" (src modified)" if dirty else ""), "kind": kind,
            "python": platform.python_version(), "platform": f"{platform.system()} {platform.machine()}",
            "load": " ".join(f"{x:.1f}" for x in os.getloadavg())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("compiled", "pure", "all"), default="all")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--only", default="", help="comma-separated package names")
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "polyvenv-corpus")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per step before it counts as a hang")
    parser.add_argument("--max-modules", type=int, default=300, help="submodules tried per env, breadth first")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--render", type=Path, help="print the table of a results JSON again (no run)")
    args = parser.parse_args()
    if args.render:
        saved = json.loads(args.render.read_text())
        print(render(saved["run"], load_results(saved)))
        return

    packages: list[Package] = [p for p in load_packages() if args.kind in ("all", p.kind)]
    if args.only:
        wanted = {n.strip() for n in args.only.split(",")}
        packages = [p for p in packages if p.name in wanted]
    info = header(args.kind)
    print(f"corpus: {len(packages)} packages, --jobs {args.jobs}, workdir {args.workdir}, load {info['load']}",
          file=sys.stderr)
    results: list[Result] = []
    start = time.monotonic()
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = {pool.submit(try_package, p, args.workdir, timeout=args.timeout, max_modules=args.max_modules): p
                   for p in packages}
        for future in as_completed(futures):
            result = future.result()
            results.append(result)
            spent = sum(result.seconds.values())
            print(f"[{len(results)}/{len(packages)}] {result.name} {result.versions}: {result.verdict} "
                  f"{result.ok}/{result.total} ({spent:.0f}s) {result.error[:100]}", file=sys.stderr, flush=True)
    info["seconds"] = f"{time.monotonic() - start:.0f}"
    info["jobs"] = str(args.jobs)
    print(render(info, results))
    args.out.mkdir(parents=True, exist_ok=True)
    for kind in sorted({r.kind for r in results}):
        mine, path = [r for r in results if r.kind == kind], args.out / f"{kind}.json"
        run = dict(info, kind=kind)
        if args.only and path.exists():  # a rerun of some: merged into the table of the last full run
            saved = json.loads(path.read_text())
            names = {r.name for r in mine}
            mine += [r for r in load_results(saved) if r.name not in names]
            run = saved["run"]
            run["reruns"] = (run.get("reruns", "") + f"; {', '.join(sorted(names))} at {info['date']}").lstrip("; ")
        mine.sort(key=lambda r: r.rank)
        path.write_text(json.dumps({"run": run, "results": [r.to_json() for r in mine]}, indent=1) + "\n")
        (args.out / f"{kind}.md").write_text(render(run, mine))


def load_results(saved: dict[str, Any]) -> list[Result]:
    keys = Result.__dataclass_fields__
    results = [Result(**{k: v for k, v in r.items() if k in keys}) for r in saved["results"]]
    for r in results:
        r.wrong_classes = sorted({wrong_class(w) for w in r.wrong})
    return results


def render(info: dict[str, str], results: list[Result]) -> str:
    reruns = f"; rerun since: {info['reruns']}" if info.get("reruns") else ""
    return (f"Corpus ({info['kind']}), {info['date']}, polyvenv {info['polyvenv']}, CPython {info['python']} "
            f"{info['platform']}, {info['seconds']} s with --jobs {info.get('jobs', '2')} (load {info['load']} at the "
            f"start){reruns}\n\n" + table(results))


if __name__ == "__main__":
    main()
