"""Measure: which strings of compiled wheels the byte patch changes, before (by spelling) and now (by structure).

Run from the repository root, over a directory of wheels (``pip download --no-deps --only-binary=:all: ...``):

    .venv/bin/python bench/modulenames_bench.py WHEEL_DIR [--related NAME ...] [--show N]

For each wheel: its extension files are read (never loaded); the env's names are the wheel's top-level
names plus ``--related`` ones (``numpy`` for a package built over it). Columns:

- ``before``: strings the spelling rule of RELOCATE_VERSION 13 changed (every string equal to a name or
  starting with ``name.``, preceded by a non-identifier byte; tails of longer strings; Cython 3.2 table
  strings by the same rule; Rust's rule), split into what they are, read from the file's structure:
  ``import``/``m_name``/``type``/``capsule``/``spelled`` (module names), ``attr`` (a method's,
  getset's or ``GetAttrString``'s name), ``data`` (``module.Name`` used as no type's name: registry
  keys, aliases), ``prose`` (docstrings, messages: inside a longer string), ``code`` (machine code),
  ``short``/``unrelated`` (a name under 4 characters / from a distribution neither depended on nor depending).
- Cython 3.2 string tables (packed): their strings, counted in ``before``/``now`` and named in the first
  column (renamed / kept of those the spelling rule changed).
- Rust binaries: ``before`` and ``now`` add the hits of Rust's unterminated rule (before: every name
  anywhere; now: the extension's related names of 4+ characters, outside code).
- ``now``: strings the structural selection (runtime/native/modulenames.py) changes, and ``split``:
  those of them whose module users get a copy while attribute users keep the bytes.
- ``interposition``: the GOT slots an interposition of ``PyImport_*``/``PyCapsule_Import``/
  ``PyThreadState_GetDict`` would redirect, the code calls through them, and the strings that
  interposition alone could not map (type names and ``m_name`` are read by CPython, not through a call):
  the patch still has to rename those.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from polyvenv.runtime.native import binpatch  # noqa: E402
from polyvenv.runtime.native.modulenames import ATTRIBUTE, IMPORT, MODULE_DEF, TYPE, Selection  # noqa: E402
from polyvenv.runtime.sitedir import has_module  # noqa: E402

INTERPOSED = ("PyImport_ImportModule", "PyImport_ImportModuleLevel", "PyImport_ImportModuleLevelObject",
              "PyImport_Import", "PyImport_ImportModuleNoBlock", "PyImport_GetModule", "PyImport_AddModule",
              "PyCapsule_Import", "PyThreadState_GetDict")


RUST_BARE = rb"(?<![_./\-:@])(?:%s)(?![_\-])"


def _alternatives(names: dict[str, str]) -> bytes:
    return b"|".join(re.escape(n.encode()) for n in sorted(names, key=len, reverse=True))


def old_hits(data: bytes, names: list[str]) -> list[int]:
    """Offsets the spelling rule changed in C strings (whole components, and tails of longer strings)."""
    alternatives = b"|".join(re.escape(n.encode()) for n in sorted(names, key=len, reverse=True))
    plain = re.compile(rb"(?<![A-Za-z0-9_./\-:@])(?:" + alternatives + rb")(?=[.\x00])")
    tails = re.compile(rb"(?<=[A-Za-z0-9_./\-:@])(?:" + alternatives + rb")(?=\x00)")
    return sorted({m.start() for m in plain.finditer(data)} | {m.start() for m in tails.finditer(data)})


def measure(wheel: Path, related: list[str], show: int) -> list[tuple[str, collections.Counter, list[str]]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(tmp)
        root = Path(tmp)
        tops = sorted({e.split(".")[0] for e in os.listdir(root)
                       if not e.endswith((".dist-info", ".libs", ".data")) and e.split(".")[0].isidentifier()})
        extensions = sorted(p for p in root.rglob("*.so") if not p.parts[len(root.parts)].endswith(".libs"))
        for name in related:  # the newest wheel of a related distribution beside it, so its modules are known
            found = sorted(wheel.parent.glob(f"{name}-*.whl"), key=lambda w: [int(x) for x in re.findall(
                r"\d+", w.name.split("-")[1])])
            if found:
                with zipfile.ZipFile(found[-1]) as zf:
                    zf.extractall(tmp, [n for n in zf.namelist() if n.startswith(name + "/")])
        names = {t: t[0].swapcase() + t[1:] for t in tops + related}
        requires = " ".join(line for info in root.glob("*.dist-info")
                            for line in (info / "METADATA").read_text(errors="replace").splitlines()
                            if line.startswith("Requires-Dist:"))
        own = set(tops) | {r for r in related if re.search(rf"Requires-Dist: {r}\b", requires)}
        count: collections.Counter = collections.Counter()
        samples: list[str] = []
        for path in extensions:
            data = path.read_bytes()
            selection = Selection(data, names, lambda dotted: has_module(tmp, dotted), own)
            chosen = {c.offset: c for c in selection.candidates()}
            refs = selection.refs
            for at in old_hits(data, list(names)):
                c = chosen.get(at)
                end = data.find(b"\x00", at, at + 200)
                text = data[at:end if end > 0 else at + 40].decode("latin-1")
                if refs.ok and refs.in_code(at):
                    kind = "code"
                elif c is None:
                    kind = "prose"
                elif c.verdict != "keep":
                    uses = set(c.uses.values())
                    kind = ("m_name" if MODULE_DEF in uses else "type" if TYPE in uses else
                            "capsule" if text.endswith("API") else "import" if IMPORT in uses else "spelled")
                else:
                    kind = ("attr" if c.uses and set(c.uses.values()) <= {ATTRIBUTE} else
                            "short" if "shorter" in c.reason else "unrelated" if "neither" in c.reason else
                            "prose" if "inside" in c.reason else "data")
                count["before"] += 1
                count["b:" + kind] += 1
                if len(samples) < show and kind in ("attr", "data", "code", "prose"):
                    samples.append(f"{kind}: {text[:60]!r}")
            changed = [c for c in chosen.values() if c.verdict != "keep"]
            count["now"] += len(changed)
            count["split"] += sum(c.verdict == "split" for c in changed)
            count["late"] += sum(bool({TYPE, MODULE_DEF} & set(c.uses.values())) for c in changed)
            if refs.ok:
                slots = {slot for slot, name in refs.got.items() if name in INTERPOSED}
                count["slots"] += len(slots)
                count["calls"] += sum(refs.callee_after(use.at) in INTERPOSED
                                      for uses in refs.loads.values() for use in uses)
            if binpatch._CYTHON_BLOB_MARK in data:  # Cython 3.2's packed strings, string by string
                plain = re.compile(rb"(?<![A-Za-z0-9_./\-:@])(?:" + _alternatives(names) + rb")(?=[.\x00])")
                for start, size, blob in binpatch._cython_blobs(data):
                    strings, _ = binpatch._split(data, start + size, blob)
                    for string in strings:
                        before = bool(plain.search(string + b"\x00"))
                        now = selection.string(string) != string
                        count["before"] += before
                        count["now"] += now
                        count["b:cython " + ("renamed" if now else "kept")] += before
            if binpatch._RUST_MARK in data:  # Rust's rule, before (every name) and now (restricted, never code)
                count["rust"] += 1
                count["before"] += len(re.findall(RUST_BARE % _alternatives(names), data))
                kept = {n: a for n, a in names.items() if len(n) >= 4 and n in own}  # what binpatch gives Rust
                count["now"] += sum(not (refs.ok and refs.in_code(m.start()))
                                    for m in re.finditer(RUST_BARE % _alternatives(kept), data)) if kept else 0
            count["files"] += 1
        rows.append((wheel.name.split("-")[0] + " " + wheel.name.split("-")[1], count, samples))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheels", type=Path)
    parser.add_argument("--related", nargs="*", default=["numpy"])
    parser.add_argument("--show", type=int, default=0, help="sample strings per wheel kept by the selection")
    args = parser.parse_args()
    kinds = ["import", "m_name", "type", "capsule", "spelled", "attr", "data", "prose", "code", "short", "unrelated"]
    print(f"load average {os.getloadavg()[0]:.2f}")
    print("| wheel | .so | before | " + " | ".join(kinds) + " | now | split | interposition: slots / calls / "
          "still renamed |")
    print("|---" * (len(kinds) + 6) + "|")
    for wheel in sorted(args.wheels.glob("*.whl")):
        for name, c, samples in measure(wheel, [r for r in args.related if not wheel.name.startswith(r + "-")],
                                        args.show):
            rust = " (Rust)" if c["rust"] else ""
            cython = (f" (Cython tables: {c['b:cython renamed']} renamed, {c['b:cython kept']} kept)"
                      if c["b:cython renamed"] + c["b:cython kept"] else "")
            print(f"| {name}{rust}{cython} | {c['files']} | {c['before']} | "
                  + " | ".join(str(c['b:' + k]) for k in kinds)
                  + f" | {c['now']} | {c['split']} | {c['slots']} / {c['calls']} / {c['late']} |")
            for sample in samples:
                print(f"|   {sample} |")


if __name__ == "__main__":
    main()
