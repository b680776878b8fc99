"""Where a compiled extension stores a module name, and how to swap it for a same-length alias.

Which strings name a module is modulenames.py's selection (by structure:
whole strings whose users make them import arguments, ``m_name``, type or
capsule names; never prose, code, attribute names or ``module.Name`` data).
This module applies it to the three layouts known (research/renaming.md):

- C strings end with NUL: each selected string is renamed in place, or, where
  the same bytes also serve as an attribute's name or as the tail of a longer
  string (``"numpy"`` as the end of ``"to_numpy"``), its module users get an
  ``alias\\0`` of their own (elfsplit.py).
- Cython 3.2+ joins all of a module's strings into one blob, usually
  zlib-compressed, and keeps their lengths in a separate ``unsigned int``
  table (in ``.rodata``, or for a small one built by code: codetable.py).
  The blob is unpacked, split by that table and patched string by string
  (the selection by spelling alone: no users to read). A patched blob rarely
  packs into the old stream's bytes, so the copy gets a small stream naming a
  file that holds it, and its ``"zlib"`` (what Cython's unpacker imports to
  call ``decompress``) becomes ``"pv:z"``: STRINGS_MODULE, whose
  ``decompress`` hands back the patched blob. ``zlib.decompress`` ignores
  what follows the end of a stream, so the short stream fits where the long
  one was.
- Cython 3.3 packs the blob with its own LZSS instead (lzss.py): no module is
  imported to unpack it, and the unpacker insists on the exact packed length
  that its code holds as a constant. The blob is unpacked, patched string by
  string (the selection by spelling)  and packed again to exactly that length, in place.
- mypyc keeps its string literals in C strings of ``count`` then ``count``
  strings, each after its length (7-bit groups, big-endian, the high bit
  meaning "more follows"), no terminators: each chunk holding a name is read
  by its lengths and patched string by string (the selection by spelling).
- Rust (pyo3) packs its constants back to back without terminators, so
  there the name is replaced where it is not preceded by ``_ . / - : @``
  nor followed by ``_`` or ``-`` (the rule that found pydantic-core's
  run-time ``import pydantic``), and in any dotted path whose first two
  components name a module the env has (``…implementation.`` then
  ``pydantic_core._pydantic_core``, while ``errors.pydantic.dev`` stays);
  never in machine code, never a short name, never a name the extension's
  distribution neither provides nor depends on.

Anything not selected stays as it is; the importer's guard refuses an
extension whose C code then imports one of the env's names by its real name.
"""

from __future__ import annotations

import re
import struct
import sys
import zlib
from types import ModuleType
from typing import Any, Callable, Iterator, NamedTuple

STRINGS_MODULE = "pv:z"  # same length as "zlib"; the colon keeps it apart from any importable module

# Cython's string-table unpacker names its failure with this message: files without it have no blob.
_CYTHON_BLOB_MARK = b"cannot initialise module strings"
_ZLIB_BEST = b"\x78\xda"  # the zlib header of level 9, the level Cython compresses with
_TABLE_SEARCH = 4096      # how far after the blob its length table may start, in bytes
_FAR_SEARCH = 16384       # how far before it a table may end that the code takes the address of
_ADDRESSED_HEAD = 64      # where in such a table that address may point (gcc copies some entries by immediates)
# Cython's tables have at least this many strings (every module's own: __main__, __name__, __test__,
# __module__, __qualname__...): fewer numbers that happen to add up to the blob's size are no table
_MIN_STRINGS = 8
_POINTER = b"polyvenv: patched strings in "
_RUST_MARK = b"/rustc/"  # panic locations name the toolchain's sources: in every Rust binary


class Patched(NamedTuple):
    """A patched extension file, and the patched string blobs it points at (path -> contents)."""

    data: bytes
    blobs: dict[str, bytes]


def patch(data: bytes, names: dict[str, str], blob_path: str,
          is_module: Callable[[str], bool] = lambda dotted: False, allowed: set[str] | None = None) -> Patched:
    """``data`` (an extension file) with each module name in ``names`` replaced by its alias where it is one.

    Which strings are module names is modulenames.py's selection; ``allowed`` are the top-level names the
    extension's distribution and its declared dependencies provide (None: all of ``names``).
    Patched Cython string blobs are to be written to ``blob_path`` (plus a number for any but the first);
    ``is_module("a.b")`` says whether the env has that module (for Rust's unterminated paths).
    """
    from .elfsplit import split_merged_tails  # here: a warm load imports this module for strings_module only
    from .modulenames import SHORT, Selection

    assert all(len(name) == len(alias) for name, alias in names.items())
    if not names:
        return Patched(data, {})
    selection = Selection(data, names, is_module, allowed)
    in_place, splits = selection.patches()  # read from the original bytes
    data = _patch_mypyc_literals(data, names, selection.string)
    packed = {**_patch_cython_plain(data, names, selection.string),
              **_patch_cython_lzss(data, names, selection.string)}
    data, blobs = _patch_cython_blobs(data, names, selection.string, blob_path)
    if _RUST_MARK in data:
        data = _patch_rust(data, {n: a for n, a in names.items() if len(n) >= SHORT and (
            allowed is None or n in allowed)}, is_module, selection.in_code)
    out = bytearray(data)
    for offset, alias in in_place.items():
        out[offset:offset + len(alias)] = alias
    if splits:
        split_merged_tails(out, {at: alias for at, (alias, _) in splits.items()},
                           {at: movers for at, (_, movers) in splits.items()})
    for start, stream in packed.items():  # nothing above may touch a packed stream: as it was, or patched
        out[start:start + len(stream)] = stream
    return Patched(bytes(out), blobs)


def _patch_mypyc_literals(data: bytes, names: dict[str, str], string: Callable[[bytes], bytes]) -> bytes:
    """``data`` with each of mypyc's string literals patched like a Cython table's strings (``string``):
    each chunk holding one of ``names`` is read string by string, by its lengths."""
    if b"__mypyc.init_" not in data:  # the capsule names of a mypyc build's shared library
        return data
    out = bytearray(data)
    seen: set[int] = set()
    for name in names:
        for match in re.finditer(re.escape(name.encode()), data):
            first, last = data.rfind(b"\x00", 0, match.start()) + 1, data.find(b"\x00", match.end())
            if first in seen:
                continue
            seen.add(first)
            for start, length in _mypyc_chunk(data, first, last):
                out[start:start + length] = string(data[start:start + length])
    return bytes(out)


def _mypyc_chunk(data: bytes, first: int, last: int) -> list[tuple[int, int]]:
    """Each string's (start, length), if ``data[first:last]`` is a chunk of mypyc literals, else nothing."""
    def number(at: int) -> tuple[int, int]:
        value = 0
        while at < last and data[at] & 0x80:
            value = (value << 7) | (data[at] & 0x7F)
            at += 1
        return ((value << 7) | data[at], at + 1) if at < last else (-1, at)

    count, at = number(first)
    strings = []
    for _ in range(max(count, 0)):
        length, at = number(at)
        if length < 0:
            return []
        strings.append((at, length))
        at += length
    return strings if count > 0 and at == last else []


def _patch_cython_plain(data: bytes, names: dict[str, str], string: Callable[[bytes], bytes]) -> dict[int, bytes]:
    """Each of Cython's string tables stored as they are (too small to pack), patched (offset -> its bytes).

    Such a table is one C array the code takes the address of, its strings back to back up to the
    NUL that ends it, their lengths in a table beside it or on the stack (x86-64 only)."""
    from .lzss import constants_addressed

    if b"__name__" not in data:
        return {}
    found: dict[int, bytes] = {}
    runs: list[list[int]] = []
    wanted = [n.encode() for n in names]
    for start in constants_addressed(data):
        end = data.find(b"\x00", start)
        blob = data[start:end]
        if len(blob) < 32 or b"__name__" not in blob or not any(n in blob for n in wanted):
            continue
        lengths = _lengths(data, start, end, blob, runs)
        if lengths is not None:  # a prefix table leaves the rest (Cython's bytes constants) as it is
            found[start] = b"".join(string(s) for s in _cut(blob, lengths))
    return found


def _patch_cython_lzss(data: bytes, names: dict[str, str], string: Callable[[bytes], bytes]) -> dict[int, bytes]:
    """Each of Cython 3.3's packed string tables (offset -> its bytes), patched where it can be."""
    from . import lzss

    found: dict[int, bytes] = {}
    for table in lzss_tables(data):
        stream = found[table.start] = data[table.start:table.start + table.size]
        patched = b"".join(string(s) for s in table.strings) + table.rest
        if patched != table.blob:  # packed again to the very same size, else left as it was (the guard refuses)
            found[table.start] = lzss.repack(table.tokens, patched, table.size) or stream
    return found


class LzssTable(NamedTuple):
    """One of Cython 3.3's packed string tables in an extension file, unpacked and cut into its strings;
    ``rest`` is what its lengths table does not cover (bytes constants whose lengths the code holds)."""

    start: int
    size: int
    tokens: list[Any]
    blob: bytes
    strings: list[bytes]
    rest: bytes


def lzss_tables(data: bytes) -> list[LzssTable]:
    """Every packed string table of ``data`` whose strings' lengths were found (x86-64 ELF only)."""
    from . import lzss

    lengths: dict[int, list[int]] = {}
    runs: list[list[int]] = []

    def is_table(start: int, size: int, total: int) -> bool:
        tokens = lzss.tokens(data, start, size, total)
        found = None if tokens is None else _lengths(data, start, start + size, lzss.unpack(tokens, data, start), runs)
        if found is not None:
            lengths[start] = found
        return found is not None

    tables = []
    for start, size, total in lzss.streams(data, is_table):
        tokens = lzss.tokens(data, start, size, total)
        assert tokens is not None
        blob = lzss.unpack(tokens, data, start)
        strings = _cut(blob, lengths[start])
        tables.append(LzssTable(start, size, tokens, blob, strings, blob[sum(map(len, strings)):]))
    return tables


def _patch_cython_blobs(data: bytes, names: dict[str, str], string: Callable[[bytes], bytes],
                        blob_path: str) -> tuple[bytes, dict[str, bytes]]:
    unpacker = re.compile(rb"(?<=\x00)zlib(?=\x00)")  # the module name Cython's unpacker imports
    if _CYTHON_BLOB_MARK not in data or not unpacker.search(data):
        return data, {}
    blobs: dict[str, bytes] = {}
    out = bytearray(data)
    for start, size, blob in _cython_blobs(data):
        strings, rest = _split(data, start + size, blob) if any(n.encode() in blob for n in names) else ([], b"")
        if not strings or any(n.encode() in rest for n in names):
            continue  # no table; or one that leaves a name in the part it does not cover
        patched = b"".join(string(s) for s in strings) + rest
        path = blob_path + (f".{len(blobs)}" if blobs else "")
        pointer = zlib.compress(_POINTER + path.encode(), 9)
        if patched == blob or len(pointer) > size:
            continue
        out[start:start + size] = pointer.ljust(size, b"\x00")
        blobs[path] = patched
    return (unpacker.sub(STRINGS_MODULE.encode(), bytes(out)), blobs) if blobs else (data, {})


def _patch_rust(data: bytes, names: dict[str, str], is_module: Callable[[str], bool],
                in_code: Callable[[int], bool]) -> bytes:
    if not names:
        return data
    bare = _rule(names, rb"(?<![_./\-:@])", rb"(?![_\-])")
    out = bytearray(data)
    for match in bare.pattern.finditer(data):
        if not in_code(match.start()):  # never bytes of machine code
            out[match.start():match.end()] = bare.aliases[match.group()]
    data = bytes(out)
    paths = _rule(names, b"", rb"(?=\.[A-Za-z_][A-Za-z0-9_]*)")
    identifier = re.compile(rb"[A-Za-z0-9_]*")
    for match in paths.pattern.finditer(data):
        component = identifier.match(data, match.end() + 1).group().decode()  # type: ignore[union-attr]
        # unterminated: the component may run on into the next constant, so try its prefixes
        if (not in_code(match.start())
                and any(is_module(f"{match.group().decode()}.{component[:n]}") for n in range(len(component), 0, -1))):
            out[match.start():match.end()] = paths.aliases[match.group()]
    return bytes(out)


class _Rule(NamedTuple):
    pattern: re.Pattern[bytes]
    aliases: dict[bytes, bytes]

    def sub(self, data: bytes) -> bytes:
        return self.pattern.sub(lambda m: self.aliases[m.group()], data)


def _rule(names: dict[str, str], before: bytes, after: bytes) -> _Rule:
    """Any of ``names``, with the ``before`` and ``after`` conditions, the longest name first."""
    alternatives = b"|".join(re.escape(n.encode()) for n in sorted(names, key=len, reverse=True))
    return _Rule(re.compile(before + b"(?:" + alternatives + b")" + after),
                 {n.encode(): a.encode() for n, a in names.items()})


def strings_module() -> ModuleType:
    """STRINGS_MODULE, registered: ``zlib`` whose ``decompress`` follows a copy's pointer to its strings."""
    module = sys.modules.get(STRINGS_MODULE)
    if module is None:
        module = ModuleType(STRINGS_MODULE, "zlib for relocated Cython extensions (polyvenv)")
        module.decompress = _decompress  # type: ignore[attr-defined]
        module.__getattr__ = lambda attr: getattr(zlib, attr)  # type: ignore[attr-defined]
        module = sys.modules.setdefault(STRINGS_MODULE, module)
    return module


def _decompress(data, *args, **kwargs) -> bytes:
    raw = zlib.decompress(data, *args, **kwargs)
    if raw.startswith(_POINTER):
        with open(raw[len(_POINTER):].decode(), "rb") as f:
            return f.read()
    return raw


def _cython_blobs(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(offset, size, unpacked) of every complete level-9 zlib stream in ``data``."""
    start = data.find(_ZLIB_BEST)
    while start != -1:
        stream = zlib.decompressobj()
        try:
            blob = stream.decompress(data[start:])
        except zlib.error:
            blob = b""
        if blob and stream.eof:
            yield start, len(data) - start - len(stream.unused_data), blob
        start = data.find(_ZLIB_BEST, start + 1)


def _split(data: bytes, after: int, blob: bytes) -> tuple[list[bytes], bytes]:
    """``blob`` cut into its strings by its lengths table: the one that follows it in ``data``, else
    (x86-64) the one the code builds on the stack (codetable.py), which may cover only a prefix of the
    blob; the part no table covers comes second. ``[]`` if no table was found."""
    lengths = _table_after(data, after, len(blob))
    if lengths is None and data[:4] == b"\x7fELF" and data[18:20] == b"\x3e\x00":  # ELF, x86-64
        from .codetable import stack_table

        lengths = stack_table(data, len(blob))
    if not lengths:
        return [], b""
    strings, at = [], 0
    for n in lengths:
        strings.append(blob[at:at + n])
        at += n
    return strings, blob[at:]


def _lengths(data: bytes, start: int, end: int, blob: bytes,
             runs: list[list[int]] | None = None) -> list[int] | None:
    """The lengths of the strings of ``blob``, stored (maybe packed) at ``data[start:end]``: an
    ``unsigned int`` table beside it (before or after), or (x86-64) one the code builds on the stack,
    or both: a big table (the strings') copied from beside the blob, then a small one (the bytes').
    Where gcc folded the bytes constants' lengths into the code, the strings' table covers only a
    prefix of the blob (``_prefix``). ``runs`` keeps the stack's tables from one call to the next."""
    total = len(blob)
    beside = _Beside(data, start, end, total)
    near = beside.table(total)
    if near is not None or data[:4] != b"\x7fELF" or data[18:20] != b"\x3e\x00":
        return near
    from .codetable import stack_runs

    if runs is None:
        runs = []
    if not runs:  # the caller's list holds them from the first call on (a marker first if there are none)
        runs += [[]] + [run for run in stack_runs(data) if len(run) > 1]
    for run in runs:
        if run and sum(run) == total:
            return run
    for run in runs:
        if run and sum(run) < total:
            first = beside.table(total - sum(run))
            if first is not None:
                return first + run
    return _prefix(data, start, end, blob, runs)




def _prefix(data: bytes, start: int, end: int, blob: bytes, runs: list[list[int]]) -> list[int] | None:
    """The lengths of Cython's text strings, the first part of ``blob`` (its bytes constants follow, their
    lengths folded into code as immediates): the longest table, on the stack or a constant the code takes
    the address of near the blob, that cuts a prefix of ``blob`` into strings in Cython's order.

    Cython sorts its text strings, the ones it does not intern and then the ones it does (Code.py,
    ``generate_pystring_constants``): a wrong table cuts a blob into strings out of that order."""
    from .lzss import constants_addressed

    total = len(blob)
    found = [run for run in runs if len(run) >= _MIN_STRINGS and sum(run) < total]
    span = 4 * (total + 1) + _TABLE_SEARCH
    for at in constants_addressed(data):
        if start - span <= at < end + span and at % 4 == 0 and not start <= at < end:
            run, covered = [], 0
            while at + 4 <= len(data):
                value = int.from_bytes(data[at:at + 4], "little")
                if not 0 < value < 1 << 16 or covered + value > total:
                    break
                run.append(value)
                covered += value
                at += 4
            if len(run) >= _MIN_STRINGS:
                found.append(run)
    ordered = [run for run in found if _in_cython_order(_cut(blob, run))]
    return max(ordered, key=len) if ordered else None


def _in_cython_order(strings: list[bytes]) -> bool:
    """Whether ``strings`` ascend, but for one step down (from the strings not interned to the interned)."""
    return sum(a >= b for a, b in zip(strings, strings[1:])) <= 1


def _cut(blob: bytes, lengths: list[int]) -> list[bytes]:
    strings, at = [], 0
    for n in lengths:
        strings.append(blob[at:at + n])
        at += n
    return strings


class _Beside:
    """The ``unsigned int`` values (4-byte aligned) just before and just after a blob of ``total`` bytes,
    summed up once, to find a table of lengths among them that adds up to a given sum."""

    def __init__(self, data: bytes, start: int, end: int, total: int) -> None:
        from itertools import accumulate

        self.data = data
        span = 4 * (total + 1) + _TABLE_SEARCH
        first = (end + 3) & ~3
        self.after = struct.unpack(f"<{len(data[first:first + span]) // 4}I",
                                   data[first:first + len(data[first:first + span]) // 4 * 4])
        last = start & ~3
        span += _FAR_SEARCH - _TABLE_SEARCH
        begin = self.begin = max(0, last - span) + (last - max(0, last - span)) % 4
        self.before = struct.unpack(f"<{(last - begin) // 4}I", data[begin:last])
        self.after_sums = [0, *accumulate(self.after)]
        self.after_ends: dict[int, int] = {}
        for i, value in enumerate(self.after_sums):
            self.after_ends.setdefault(value, i)  # the first index of each prefix sum
        self.before_sums = [0, *accumulate(self.before)]
        self.before_begins = {value: i for i, value in enumerate(self.before_sums)}  # the last index of each
        self._addressed: list[int] | None = None

    def table(self, total: int) -> list[int] | None:
        """Lengths adding up to ``total``: starting soon after the blob, else ending shortly before it, or
        farther before it where the code takes the address of the table's first entries (x86-64)."""
        for begin in range(min(len(self.after), _TABLE_SEARCH // 4)):
            if self.after[begin]:
                stop = self.after_ends.get(self.after_sums[begin] + total)
                if stop is not None and stop - begin >= _MIN_STRINGS:
                    return list(self.after[begin:stop])
        size = len(self.before)
        for stop in range(size, max(size - _FAR_SEARCH // 4, 0), -1):
            begin = self.before_begins.get(self.before_sums[stop] - total)
            if begin is not None and stop - begin >= _MIN_STRINGS and self.before[begin] and self.before[stop - 1] and (
                    stop > size - _TABLE_SEARCH // 4 or self.addressed(self.begin + 4 * begin)):
                return list(self.before[begin:stop])
        return None

    def addressed(self, at: int) -> bool:
        """Whether code takes an address within the first bytes of a table at file offset ``at``."""
        if self._addressed is None:
            from .lzss import constants_addressed

            self._addressed = constants_addressed(self.data) if self.data[:4] == b"\x7fELF" else []
        import bisect

        i = bisect.bisect_left(self._addressed, at)
        return i < len(self._addressed) and self._addressed[i] < at + _ADDRESSED_HEAD


def _table_after(data: bytes, after: int, total: int) -> list[int] | None:
    """``unsigned int`` lengths, 4-byte aligned, soon after ``after``, that add up to ``total``."""
    first = (after + 3) & ~3
    window = data[first:first + _TABLE_SEARCH + 4 * total]
    values = struct.unpack(f"<{len(window) // 4}I", window[:len(window) // 4 * 4])
    for begin in range(min(len(values), _TABLE_SEARCH // 4)):
        if not values[begin]:
            continue
        run = end = 0
        for end in range(begin, len(values)):
            run += values[end]
            if run >= total:
                break
        if run == total and end - begin + 1 >= _MIN_STRINGS:
            return list(values[begin:end + 1])
    return None
