"""A small ``unsigned int`` bitfield table that x86-64 code builds on the stack, read back from the code.

Cython 3.2 keeps its string lengths in a local ``const struct {unsigned int
length: N;} index[]``. For a large table gcc copies it from ``.rodata``
(binpatch.py finds it there); for a small one it writes each entry with
immediates: ``or $len, %eax; mov %al, disp(%rsp)`` (``N`` < 8, after masking
the old bits), ``orb $len, disp(%rsp)``, ``movb``/``movl $len, disp(%rsp)``.
Where ``N`` > 16 (a long bytes constant), gcc merges each pair of entries into
one 64-bit store of an immediate it loaded with ``movabs``.
This module collects those writes (stack offset -> value) from each stretch
of straight code and looks for consecutive entries, 4 bytes apart, that add
up to the blob's length; entries of zero may have no write of their own.
gcc may also unroll the loop over the last strings (Cython's bytes
constants) and fold their lengths into code: then the entries on the stack
cover a prefix of the blob, and ``stack_table`` answers the longest such run
(at least ``_MIN_PREFIX`` entries) and how many bytes it leaves uncovered;
the caller must leave those alone.
Nothing is ever written back to the code.
"""

from __future__ import annotations

import re
import struct
from typing import Iterator

_GAP = 48  # bytes of other instructions allowed between two writes of one table
_MIN_PREFIX = 8

# (pattern, how to read (stack offset, value) from its groups), all stores relative to %rsp.
# The bitfield's new bits are or-ed in (`or $imm8, %eax`; `or $imm8, %al`; `or $imm16, %ax`; `or $imm8, %ah`
# for a length of 256 times that byte, whose low byte is zero),
# then stored as a byte, a word (N >= 8: Cython 3.3's tables) or a long, maybe after one short
# instruction the compiler scheduled in between (`xor %edi, %edi`).
_OR = rb"(?:\x83\xc8(.)|\x0c(.)|\x66\x0d(..)|\x0d(....)|\x80\xcc(.))"
_STORE = rb".{0,3}?(?:\x66?[\x88\x89]\x44\x24(.)|\x66?[\x88\x89]\x84\x24(....))"
_WRITES = [
    (re.compile(_OR + _STORE, re.S), lambda g: (g[5][0] if g[5] is not None else _i32(g[6]),
                                                g[4][0] << 8 if g[4] is not None else
                                                int.from_bytes(next(v for v in g[:4] if v is not None), "little"))),
    (re.compile(rb"\x80\x4c\x24(.)(.)", re.S), lambda g: (g[0][0], g[1][0])),                  # orb imm8, d8
    (re.compile(rb"\x80\x8c\x24(....)(.)", re.S), lambda g: (_i32(g[0]), g[1][0])),             # orb imm8, d32
    (re.compile(rb"\xc6\x44\x24(.)(.)", re.S), lambda g: (g[0][0], g[1][0])),                  # movb imm8, d8
    (re.compile(rb"\xc6\x84\x24(....)(.)", re.S), lambda g: (_i32(g[0]), g[1][0])),             # movb imm8, d32
    (re.compile(rb"\xc7\x44\x24(.)(....)", re.S), lambda g: (g[0][0], _i32(g[1]))),            # movl imm32, d8
    (re.compile(rb"\xc7\x84\x24(....)(....)", re.S), lambda g: (_i32(g[0]), _i32(g[1]))),       # movl imm32, d32
]


# Two entries at once (N > 16: Cython 3.2's tables holding a long bytes constant): gcc merges each pair into
# a 64-bit word, `movabs $imm64, %rS` (maybe long before), `or %rS, %rD`, `mov %rD, disp(%rsp)`.
_MOVABS = re.compile(rb"([\x48\x49])([\xb8-\xbf])(.{8})", re.S)
_OR64 = re.compile(rb"([\x48\x49\x4c\x4d])([\x09\x0b])([\xc0-\xff])", re.S)
_STORE64 = re.compile(rb"([\x48\x4c])\x89(?:([\x44\x4c\x54\x5c\x64\x6c\x74\x7c])\x24(.)"
                      rb"|([\x84\x8c\x94\x9c\xa4\xac\xb4\xbc])\x24(....)"
                      rb"|([\x04\x0c\x14\x1c\x24\x2c\x34\x3c])\x24)", re.S)  # disp8, disp32, none


def _merged_writes(code: bytes) -> list[tuple[int, int, int, int]]:
    """(start, end, stack offset, value) of each entry that a pair merged into 64 bits writes."""
    steps = sorted([(m.start(), m.end(), "movabs", m.groups()) for m in _MOVABS.finditer(code)]
                   + [(m.start(), m.end(), "or", m.groups()) for m in _OR64.finditer(code)]
                   + [(m.start(), m.end(), "store", m.groups()) for m in _STORE64.finditer(code)])
    held: dict[int, int] = {}     # register -> the immediate a movabs put there
    pending: dict[int, int] = {}  # register -> the immediate or-ed into it, until it is stored
    writes = []
    for start, end, kind, g in steps:
        rex = g[0][0]
        if kind == "movabs":
            held[g[1][0] - 0xB8 + (8 if rex & 1 else 0)] = struct.unpack("<Q", g[2])[0]
        elif kind == "or":
            reg, rm = (g[2][0] >> 3 & 7) + (8 if rex & 4 else 0), (g[2][0] & 7) + (8 if rex & 1 else 0)
            source, target = (reg, rm) if g[1] == b"\x09" else (rm, reg)
            if source in held:
                pending[target] = held[source]
        else:
            modrm = (g[1] or g[3] or g[5])[0]
            value = pending.pop((modrm >> 3 & 7) + (8 if rex & 4 else 0), None)
            if value is not None:
                offset = g[2][0] if g[2] is not None else _i32(g[4]) if g[4] is not None else 0
                writes += [(start, end, offset, value & 0xFFFFFFFF), (start, end, offset + 4, value >> 32)]
    return writes


def _i32(raw: bytes) -> int:
    return struct.unpack("<i", raw)[0]


def stack_table(code: bytes, total: int) -> list[int]:
    """The entries (4 bytes apart on the stack) of a table built in ``code`` that add up to ``total``;
    or, if none does, the longest run that covers a prefix of it."""
    prefix: list[int] = []
    for run in stack_runs(code):
        if sum(run) == total and len(run) > 1:
            return run
        if sum(run) < total and len(run) >= max(_MIN_PREFIX, len(prefix) + 1):
            prefix = run
    return prefix


def stack_runs(code: bytes) -> list[list[int]]:
    """Every run of entries 4 bytes apart that one stretch of ``code`` writes on the stack, in code order."""
    writes = sorted([(m.start(), m.end(), *read(m.groups())) for pattern, read in _WRITES
                     for m in pattern.finditer(code)] + _merged_writes(code))
    stretch: dict[int, tuple[int, int]] = {}  # stack offset -> (value, where in the code it is written)
    last_end = -_GAP
    runs: list[list[int]] = []
    for start, end, offset, value in writes + [(len(code) + _GAP, 0, 0, 0)]:
        if start - last_end > _GAP:  # a stretch ended: its runs are candidates
            runs += _runs(stretch)
            stretch = {}
        stretch[offset] = (value, start)
        last_end = end
    return runs


def _runs(entries: dict[int, tuple[int, int]]) -> Iterator[list[int]]:
    """Each run of entries 4 bytes apart (a missing one between two present counts as 0).

    Cython's two tables (its strings' lengths, then its bytes') may sit back to back on the stack
    the other way round: a run whose upper part is written wholly before its lower part is two
    tables, answered in the order the code writes them."""
    for base in sorted(entries):
        if base - 4 in entries:
            continue  # a run starts where no entry precedes it
        offset, values, written = base, [], []
        while offset in entries or (offset + 4 in entries and values):
            value, at = entries.get(offset, (0, -1))
            values.append(value)
            if at >= 0:
                written.append((len(values) - 1, at))
            offset += 4
        for k in range(1, len(written)):
            if max(at for _, at in written[k:]) < min(at for _, at in written[:k]):
                split = written[k][0]
                values = values[split:] + values[:split]
                break
        yield values
