"""Regenerate bench/corpus/packages.toml from candidates.toml: ranks, kinds and the two versions.

    .venv/bin/python bench/corpus/choose.py [--ranks /usr/share/package-lists/pypi.tsv]

For each candidate (candidates.toml, walked in download-rank order), uv resolves for CPython 3.11 on
manylinux x86_64 from wheels only (``uv pip compile --only-binary :all: --format pylock.toml``, the
package alone, no dependencies):

- ``new``: the newest release with a wheel for that interpreter;
- ``old``: the newest of the previous major (``<MAJOR``) if there is one, else of the previous minor
  (``<MAJOR.MINOR``), else (pyyaml 6.0.x: 5.x has no cp311 wheel) the newest earlier release, again with
  such a wheel — so both install from wheels; ``older`` says which. For a compiled package the old
  release must have a platform wheel too (aiohttp 0.x is pure Python); for a pure one, a previous major
  or minor first released before CPython 3.11.0 (its wheel's upload time) is passed over, as it was not
  made for 3.11;
- ``kind``: "compiled" when ``new``'s wheel for that interpreter is a platform wheel, "pure" when it is
  ``none-any``; a wheel over 100 MB is left out.

Only the candidates are looked up (one resolution each, two for the old version at most), through uv,
whose cache keeps the answers. The first COMPILED compiled and PURE pure candidates that resolve are kept.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import tomllib

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
COMPILED, PURE = 50, 100
MAX_WHEEL = 100 * 1024 * 1024
CPYTHON_311 = "2022-10-24"  # CPython 3.11.0's release: a pure release older than it is not taken as "old"
RANKS = Path("/usr/share/package-lists/pypi.tsv")


def ranks(path: Path, wanted: set[str]) -> dict[str, int]:
    """Download ranks of the wanted names (column rank_among_15000_most_downloaded)."""
    found: dict[str, int] = {}
    with path.open(encoding="utf-8", errors="replace") as lines:
        header = next(lines).rstrip("\n").split("\t")
        name_at, rank_at = header.index("name"), header.index("rank_among_15000_most_downloaded")
        for line in lines:
            fields = line.rstrip("\n").split("\t")
            if len(fields) > rank_at and fields[name_at] in wanted and fields[rank_at]:
                found[fields[name_at]] = int(fields[rank_at])
    return found


def resolve(requirement: str) -> tuple[str, list[dict[str, object]]] | None:
    """The version uv picks for ``requirement`` on CPython 3.11 manylinux x86_64 from wheels, and those
    wheels (name, size); None when nothing fits."""
    uv = ROOT / ".venv" / "bin" / "uv"
    proc = subprocess.run(
        [str(uv), "pip", "compile", "-", "--no-deps", "--only-binary", ":all:", "--python-version", "3.11",
         "--python-platform", "x86_64-manylinux_2_28", "--format", "pylock.toml", "--no-header", "-q"],
        input=requirement + "\n", capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    lock = tomllib.loads(proc.stdout)
    package = lock["packages"][0]
    wheels = [{"name": w["url"].rsplit("/", 1)[-1], "size": w.get("size", 0), "uploaded": str(w.get("upload-time", ""))}
              for w in package.get("wheels", ())]
    return package["version"], wheels


def platform_of(wheels: list[dict[str, object]]) -> str:
    """"pure" when every wheel is none-any, else "compiled"."""
    return "pure" if all(str(w["name"]).endswith("-none-any.whl") for w in wheels) else "compiled"


def uploaded(wheels: list[dict[str, object]]) -> str:
    return min((str(w["uploaded"]) for w in wheels), default="")


def choose(name: str) -> dict[str, object]:
    """The corpus entry for ``name``, or {"name", "left_out": why}."""
    newest = resolve(name)
    if newest is None:
        return {"name": name, "left_out": "no wheel for CPython 3.11 manylinux x86_64"}
    new, wheels = newest
    if any(int(w["size"]) > MAX_WHEEL for w in wheels):  # type: ignore[call-overload]
        return {"name": name, "left_out": "its wheel is over 100 MB"}
    kind = platform_of(wheels)
    parts = new.split(".")
    older, step = None, ""
    for bound, step in (([parts[0]], "major"), (parts[:2], "minor"), ([new], "release")):
        if len(bound) > 1 or (bound[0].isdigit() and int(bound[0]) > 0) or step == "release":
            older = resolve(f"{name}<{'.'.join(bound)}")
        if older is not None and kind == "compiled" and platform_of(older[1]) == "pure":
            older = None  # an old pure-Python release of a compiled package: not the same package
        if older is not None and kind == "pure" and step != "release" and uploaded(older[1]) < CPYTHON_311:
            older = None  # older than CPython 3.11 itself: not a release that supports it
        if older is not None:
            break
    if older is None:
        return {"name": name, "left_out": f"no release older than {new} with a wheel for CPython 3.11"}
    return {"name": name, "kind": kind, "old": older[0], "new": new, "older": f"previous {step}",
            "wheel": str(wheels[0]["name"]), "size": int(wheels[0]["size"])}  # type: ignore[call-overload]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=Path, default=RANKS)
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args()
    candidates = tomllib.loads((HERE / "candidates.toml").read_text())
    names = candidates["candidates"]["compiled"] + candidates["candidates"]["pure"]
    rank = ranks(args.ranks, set(names) | set(candidates["excluded"]))
    names.sort(key=lambda n: rank.get(n, 10**9))
    with ThreadPoolExecutor(args.jobs) as pool:
        chosen = list(pool.map(choose, names))
    smoke = candidates["smoke"]
    kept = {"compiled": [], "pure": []}  # type: dict[str, list[dict[str, object]]]
    left_out = [(n, why) for n, why in candidates["excluded"].items()]
    for entry in chosen:
        name = str(entry["name"])
        if "left_out" in entry:
            left_out.append((name, str(entry["left_out"])))
            continue
        bucket = kept[str(entry["kind"])]
        if len(bucket) < (COMPILED if entry["kind"] == "compiled" else PURE):
            bucket.append(entry)
        else:
            left_out.append((name, f"beyond the first {len(bucket)} {entry['kind']} packages"))
    out = [f"# Generated by bench/corpus/choose.py on {datetime.date.today()} from {args.ranks.name} (download ranks,",
           "# Dec 2026) and candidates.toml: versions resolved by uv for CPython 3.11 manylinux x86_64, wheels only.",
           "# Regenerate, don't edit: edit candidates.toml instead.", ""]
    for name, why in left_out:
        out.append(f"# left out: {name} (rank {rank.get(name, '?')}): {why}")
    for kind in ("compiled", "pure"):
        for entry in kept[kind]:
            name = str(entry["name"])
            out += ["", "[[package]]", f"name = {json.dumps(name)}", f"rank = {rank.get(name, 0)}",
                    f"kind = {json.dumps(kind)}", f"old = {json.dumps(entry['old'])}",
                    f"new = {json.dumps(entry['new'])}", f"older = {json.dumps(entry['older'])}",
                    f"wheel = {json.dumps(entry['wheel'])}",
                    f"size = {entry['size']}"]
            if name in smoke:
                out.append(f"smoke = {json.dumps(smoke[name].strip())}")
    (HERE / "packages.toml").write_text("\n".join(out) + "\n")
    print(f"packages.toml: {len(kept['compiled'])} compiled, {len(kept['pure'])} pure, {len(left_out)} left out",
          file=sys.stderr)


if __name__ == "__main__":
    main()
