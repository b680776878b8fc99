"""Per compiled extension: which string layout holds its module names, how many strings each table has
and how many the patch renames, and what patching costs.

    .venv/bin/python bench/string_tables.py SITE_PACKAGES [SITE_PACKAGES ...]

Each directory's top-level names get an alias (first letter's case toggled, as the first alias the
runtime reserves), and every extension file below it is patched in memory (nothing is written).
Layouts: Cython 3.3's LZSS-packed table (packed again to its size, or NO FIT: refused at load),
Cython's unpacked table, mypyc's length-prefixed literal chunks.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from polyvenv.runtime.names import top_level_names  # noqa: E402
from polyvenv.runtime.native import binpatch, lzss  # noqa: E402


def aliases(root: Path) -> dict[str, str]:
    names = {}
    for name in top_level_names([root]):
        i = next(i for i, c in enumerate(name) if c.isalpha())
        names[name] = name[:i] + name[i].swapcase() + name[i + 1:]
    return names


def layouts(data: bytes, names: dict[str, str]) -> list[str]:
    c_strings = binpatch._rule(names, rb"(?<![A-Za-z0-9_./\-:@])", rb"(?=[.\x00])")
    rows = []
    for table in binpatch.lzss_tables(data):
        new = [c_strings.sub(s + b"\x00")[:-1] for s in table.strings]
        changed = sum(a != b for a, b in zip(table.strings, new))
        fits = not changed or lzss.repack(table.tokens, b"".join(new), table.size) is not None
        rows.append(f"lzss {len(table.strings)} strings, {changed} renamed{'' if fits else ', NO FIT'}")
    runs: list[list[int]] = []
    for start in binpatch._patch_cython_plain(data, names, c_strings):
        end = data.find(b"\x00", start)
        strings = binpatch._cut(data[start:end], binpatch._lengths(data, start, end, data[start:end], runs) or [])
        changed = sum(c_strings.sub(s + b"\x00")[:-1] != s for s in strings)
        rows.append(f"unpacked {len(strings)} strings, {changed} renamed")
    if b"__mypyc.init_" in data:
        chunks = strings = renamed = 0
        for match in re.finditer(rb"(?<=\x00)[^\x00]+(?=\x00)", data):
            starts = binpatch._mypyc_chunk(data, match.start(), match.end())
            chunks += bool(starts)
            strings += len(starts)
            for at in starts:
                value = data[at + 1:at + 1 + data[at]] if data[at] < 0x80 else b""
                renamed += any(value == n.encode() or value.startswith(n.encode() + b".") for n in names)
        rows.append(f"mypyc {chunks} chunks, {strings} strings, {renamed} renamed")
    return rows


def main(roots: list[str]) -> None:
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"| {'extension':<60} | layouts | bytes changed | ms |\n|---|---|---|---|")
    for root in map(Path, roots):
        names = aliases(root)
        for path in sorted(root.rglob("*.so")):
            data = path.read_bytes()
            began = time.perf_counter()
            patched = binpatch.patch(data, names, os.devnull).data
            took = 1000 * (time.perf_counter() - began)
            changed = sum(a != b for a, b in zip(data, patched))
            print(f"| {str(path.relative_to(root)):<60} | {'; '.join(layouts(data, names)) or 'C strings only'} "
                  f"| {changed} | {took:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1:] or sys.exit(__doc__))
