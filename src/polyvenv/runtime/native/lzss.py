"""Cython 3.3's LZSS string packing, read, and written again to exactly the length the code expects.

Cython 3.3 packs a module's strings with its own LZSS (``Cython/LZSS.py``;
the unpacker is ``__pyx_lzss_decompress`` in ``Utility/StringTools.c``). A
flag byte announces eight tokens, lowest bit first: 1 is a literal byte, 0 a
back reference to earlier output, in two or three bytes:

- ``lo < 0x80``: ``end = lo``, ``length = hi + 3``;
- ``lo >= 0x80``, ``hi < 0x80``: ``end = 0x80 + ((hi << 2) & 0x180 | lo & 0x7f)``,
  ``length = (hi & 0x1f) + 3``;
- both ``>= 0x80``: ``end = 0x80 + ((hi & 0x7f) << 7 | lo & 0x7f)``, ``length = third + 3``;

where ``end`` is how far before the copy the source ends (sources never
overlap their copy). The unpacker stops once the output is full and fails
unless it consumed exactly the compressed length: both lengths are constants
in the code, so a patched table must be packed to the very same size.

A patched table differs from the original in a few bytes (same-length
aliases), so ``repack`` keeps the original tokens wherever they still copy
the right bytes, parses the stretches around the others again (an optimal
parse, which gains back what the change cost), and pads what is left over
by spelling some references out as literals or in their longer form. When no
such packing exists, it answers ``None`` and the table is left as it was (the
importer's guard then refuses the module).
"""

from __future__ import annotations

import bisect
import re
import struct
from typing import Callable, Iterator, NamedTuple

WINDOW = 0x80 + (1 << 14) - 1  # the farthest a source may end before its copy
MAX_MATCH = 258
_MARGINS = (0, 4, 32, 256)  # how many neighbouring tokens a repair may re-parse, tried in turn
_WHOLE = 1 << 16  # streams up to this output size are re-parsed whole as the last resort
MARK = b"LZSS string data decompression failed"  # the unpacker's message: only in modules that use it
_SAVED = 200  # Cython packs a table only when that saves at least this many bytes
# x86-64 `lea disp32(%rip), %reg`: how code takes the address of a constant (the packed table is one)
_CMP = re.compile(rb"[\x48\x49]\x81[\xf8-\xff](....)|\x48\x3d(....)", re.S)  # cmp $imm32, %r64
_MOV = re.compile(rb"(?:[\xb8-\xbf]|\xc7[\xc0-\xc7])(....)", re.S)  # mov $imm32, %reg
_LEA = re.compile(rb"[\x48\x4c]\x8d[\x05\x0d\x15\x1d\x25\x2d\x35\x3d](....)", re.S)


class Token(NamedTuple):
    """A literal (``width`` 0: one byte) or a back reference of ``width`` 2 or 3 bytes."""

    at: int      # where its bytes go in the output
    length: int
    end: int     # how far before ``at`` its source ends (0 for a literal)
    width: int

    @property
    def bits(self) -> int:
        return 9 if not self.width else 1 + 8 * self.width


def width(end: int, length: int) -> int:
    """The fewest bytes a back reference can be written in, 0 if it cannot be written at all."""
    if not 3 <= length <= MAX_MATCH or not 0 <= end <= WINDOW:
        return 0
    if end < 0x80 or (length - 3 < 32 and end - 0x80 < 512):
        return 2
    return 3


def streams(data: bytes, is_table: Callable[[int, int, int], bool]) -> list[tuple[int, int, int]]:
    """(offset, size, unpacked size) of each packed string table in ``data``, an x86-64 extension file;
    ``is_table`` confirms a candidate (its caller finds the table's string lengths).

    Nothing marks where a table starts or how long it is: the lengths are constants in the code. So
    each constant the code takes the address of is read as a stream, and it may be one where it
    stops exactly at the NUL that ends the C array, the code compares a 64-bit register with the
    packed size, the unpacked size (maybe one off, as the bound of a comparison) is a constant there
    too, and it saves what Cython requires.
    """
    if MARK not in data or data[:4] != b"\x7fELF" or data[18:20] != b"\x3e\x00":
        return []
    code = code_segment(data)
    compared = sorted({struct.unpack("<I", m.group(1) or m.group(2))[0] for m in _CMP.finditer(data, *code)})
    constants = set(compared) | {struct.unpack("<I", m.group(1))[0] for m in _MOV.finditer(data, *code)}
    found = []
    for start in constants_addressed(data):
        if data[start] & 7 != 7:  # the first three tokens are literals: nothing to refer to yet
            continue
        limit = bisect.bisect_right(compared, len(data) - start - 1)
        if not limit:
            continue
        for out, used in _boundaries(data, start, compared[limit - 1]):
            if out >= used + _SAVED and data[start + used] == 0 and used == compared[
                    bisect.bisect_left(compared, used)] and not constants.isdisjoint((out - 1, out, out + 1)) \
                    and is_table(start, used, out):
                found.append((start, used, out))
                break
    return found


def code_segment(data: bytes) -> tuple[int, int]:
    """The file offsets of an ELF64 file's executable segment (the whole file if none is found)."""
    phoff, = struct.unpack_from("<Q", data, 0x20)
    size, count = struct.unpack_from("<HH", data, 0x36)
    for i in range(count):
        kind, flags, offset, _, _, filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * size)
        if kind == 1 and flags & 1:  # PT_LOAD, PF_X
            return offset, offset + filesz
    return 0, len(data)


def constants_addressed(data: bytes) -> list[int]:
    """Where each constant starts whose address x86-64 code takes (``lea disp32(%rip)``), in file order."""
    starts = {m.end() + struct.unpack("<i", m.group(1))[0] for m in _LEA.finditer(data, *code_segment(data))}
    return sorted(s for s in starts if 0 <= s < len(data))


def _boundaries(src: bytes, start: int, limit: int) -> Iterator[tuple[int, int]]:
    """(output size, bytes consumed) after each token of a stream read from ``start``, while it is one
    and has consumed at most ``limit`` bytes."""
    pos, out, stop = start, 0, min(len(src) - 3, start + limit)
    while pos < stop:
        flags = src[pos] | 0xFF00
        pos += 1
        while flags & 0x100 and pos < stop:
            if flags & 1:
                pos += 1
                out += 1
            else:
                lo, hi = src[pos], src[pos + 1]
                if not lo & 0x80:
                    end, length, used = lo, hi, 2
                elif not hi & 0x80:
                    end, length, used = 0x80 + (((hi << 2) & 0x180) | (lo & 0x7F)), hi & 0x1F, 2
                else:
                    end, length, used = 0x80 + ((hi & 0x7F) << 7 | (lo & 0x7F)), src[pos + 2], 3
                if out - end - length - 3 < 0:
                    return
                pos += used
                out += length + 3
            yield out, pos - start
            flags >>= 1


def tokens(src: bytes, start: int, size: int, total: int) -> list[Token] | None:
    """The tokens of the stream of ``size`` bytes at ``start`` that unpacks to ``total`` bytes, or ``None``
    if it is not one (a reference before the start, or another size consumed)."""
    found: list[Token] = []
    pos, out, stop = start, 0, start + size
    while pos < stop:
        flags = src[pos] | 0xFF00
        pos += 1
        while flags & 0x100:
            if pos >= stop:
                return None
            if flags & 1:
                found.append(Token(out, 1, 0, 0))
                pos += 1
                out += 1
            else:
                lo, hi = src[pos], src[pos + 1]
                if not lo & 0x80:
                    end, length, used = lo, hi, 2
                elif not hi & 0x80:
                    end, length, used = 0x80 + (((hi << 2) & 0x180) | (lo & 0x7F)), hi & 0x1F, 2
                else:
                    end, length, used = 0x80 + ((hi & 0x7F) << 7 | (lo & 0x7F)), src[pos + 2], 3
                length += 3
                if out - end - length < 0:
                    return None
                found.append(Token(out, length, end, used))
                pos += used
                out += length
            if out >= total:
                return found if out == total and pos == stop else None
            flags >>= 1
    return None


def unpack(found: list[Token], src: bytes, start: int) -> bytes:
    """The output of a stream read by ``tokens``."""
    out = bytearray()
    pos = start
    for i, token in enumerate(found):
        if i % 8 == 0:
            pos += 1  # a flag byte
        if not token.width:
            out.append(src[pos])
            pos += 1
        else:
            source = token.at - token.end - token.length
            out += out[source:source + token.length]
            pos += token.width
    return bytes(out)


def pack(found: list[Token], data: bytes) -> bytes:
    """The stream of ``found``, the tokens of ``data``."""
    out = bytearray()
    for group in range(0, len(found), 8):
        flags_at = len(out)
        out.append(0)
        flags = 0
        for bit, token in enumerate(found[group:group + 8]):
            if not token.width:
                flags |= 1 << bit
                out.append(data[token.at])
                continue
            end, length = token.end, token.length - 3
            if end < 0x80 and token.width == 2:
                out += bytes((end, length))
            elif token.width == 2:
                end -= 0x80
                out += bytes(((end & 0x7F) | 0x80, ((end & 0x180) >> 2) | length))
            else:
                end -= 0x80
                out += bytes(((end & 0x7F) | 0x80, ((end >> 7) & 0x7F) | 0x80, length))
        out[flags_at] = flags
    return bytes(out)


def repack(found: list[Token], data: bytes, size: int) -> bytes | None:
    """``data`` (the output of ``found`` with some bytes changed) packed in exactly ``size`` bytes, or ``None``."""
    broken = [i for i, t in enumerate(found) if t.width and not _copies(t, data)]
    for margin in (*_MARGINS, len(found)) if len(data) <= _WHOLE else _MARGINS:
        parsed = _reparse(found, data, broken, margin)
        padded = _pad(parsed, 8 * size - sum(t.bits for t in parsed)) if parsed is not None else None
        if padded is not None:
            packed = pack(padded, data)
            check = tokens(packed, 0, size, len(data))
            if len(packed) == size and check is not None and unpack(check, packed, 0) == data:
                return packed
    return None


def _copies(token: Token, data: bytes) -> bool:
    source = token.at - token.end - token.length
    return data[source:source + token.length] == data[token.at:token.at + token.length]


def _reparse(found: list[Token], data: bytes, broken: list[int], margin: int) -> list[Token] | None:
    """``found`` with the stretches of ``margin`` tokens around each broken one parsed again, optimally."""
    spans: list[list[int]] = []
    for i in broken:
        first, last = max(0, i - margin), min(len(found) - 1, i + margin)
        if spans and first <= spans[-1][1] + 1:
            spans[-1][1] = last
        else:
            spans.append([first, last])
    out: list[Token] = []
    done = 0
    for first, last in spans:
        out += found[done:first]
        begin, stop = found[first].at, found[last].at + found[last].length
        out += _optimal(data, begin, stop)
        done = last + 1
    return out + found[done:]


def _optimal(data: bytes, begin: int, stop: int) -> list[Token]:
    """The tokens of ``data[begin:stop]`` in the fewest bits (sources anywhere before, in the window)."""
    size = stop - begin
    cost = [0] + [1 << 62] * size
    step: list[Token | None] = [None] * (size + 1)
    for i in range(begin, stop):
        here = cost[i - begin]
        if here + 9 < cost[i + 1 - begin]:
            cost[i + 1 - begin], step[i + 1 - begin] = here + 9, Token(i, 1, 0, 0)
        length = 3
        while i + length <= stop and length <= MAX_MATCH:
            source = data.rfind(data[i:i + length], max(0, i - WINDOW - length), i)
            if source < 0:
                break
            while True:  # the closest source of this length may be the closest of longer ones too
                end = i - source - length
                used = width(end, length)
                if used:
                    bits = here + 1 + 8 * used
                    if bits < cost[i + length - begin]:
                        cost[i + length - begin], step[i + length - begin] = bits, Token(i, length, end, used)
                length += 1
                if i + length > stop or length > MAX_MATCH or data[source + length - 1] != data[i + length - 1] \
                        or source + length > i:
                    break
    path: list[Token] = []
    at = size
    while at:
        token = step[at]
        assert token is not None
        path.append(token)
        at = token.at - begin
    return path[::-1]


def _pad(found: list[Token], spare: int) -> list[Token] | None:
    """``found`` grown by between ``spare - 7`` and ``spare`` bits (so it fills the same bytes), or ``None``."""
    if spare < 0:
        return None
    out = list(found)
    # spell references out as literals, the biggest growth that fits first
    growth = sorted(((9 * t.length - t.bits, i) for i, t in enumerate(out) if t.width), reverse=True)
    for grow, i in growth:
        if spare <= 7:
            break
        if grow <= spare:
            spare -= grow
            out[i] = out[i]._replace(width=-1)  # marked: expanded below
    # one byte more each: a short reference in its long form
    for i, t in enumerate(out):
        if spare <= 7:
            break
        if t.width == 2 and 0x80 <= t.end and t.end - 0x80 < 1 << 14:
            out[i] = t._replace(width=3)
            spare -= 8
    if spare > 7:
        return None
    expanded: list[Token] = []
    for t in out:
        expanded += [Token(t.at + k, 1, 0, 0) for k in range(t.length)] if t.width == -1 else [t]
    return expanded
