"""The sections of a compiled extension file, on any platform: where code is, and where data starts.

The string finder (modulenames.py) must never read machine code as a string,
and must know where a string starts when no pointer to it can be read: a
string at the very start of a data section follows the previous section's
last bytes, not a NUL. Segments are too coarse for both (older linkers put
``.rodata`` in the executable segment, as aarch64 wheels show), so this reads
the section tables of the three formats extensions ship in, without running
anything: ELF64 (Linux), Mach-O 64 (macOS, one architecture or the first of a
universal file) and PE32+ (Windows ``.pyd``). Anything unreadable gives no
sections, and the finder falls back to what it knew before.
"""

from __future__ import annotations

import struct
from typing import NamedTuple


class Section(NamedTuple):
    name: str
    offset: int  # in the file
    size: int
    code: bool   # holds machine code


def sections(data: bytes | bytearray) -> list[Section]:
    """The file's sections that have bytes in the file, in file order."""
    try:
        if data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1:
            found = _elf(data)
        elif data[:4] in (b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe"):
            found = _macho(data)
        elif data[:2] == b"MZ":
            found = _pe(data)
        else:
            found = []
    except (struct.error, IndexError, UnicodeDecodeError):
        found = []
    return sorted((s for s in found if s.size and 0 <= s.offset < len(data)), key=lambda s: s.offset)


def _elf(data: bytes | bytearray) -> list[Section]:
    shoff, = struct.unpack_from("<Q", data, 40)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 58)
    if not shoff or not shnum:
        return []
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = headers[shstrndx][4] if shstrndx < shnum else 0
    found = []
    for name, kind, flags, _addr, offset, size in headers:
        if kind == 8:  # SHT_NOBITS (.bss): nothing in the file
            continue
        end = data.find(b"\x00", names + name)
        found.append(Section(bytes(data[names + name:end]).decode("ascii", "replace"), offset, size, bool(flags & 0x4)))
    return found


def _macho(data: bytes | bytearray) -> list[Section]:
    base = 0
    if data[:4] == b"\xca\xfe\xba\xbe":  # universal: the first architecture's slice (big-endian header)
        base, = struct.unpack_from(">I", data, 8 + 8)
        if data[base:base + 4] != b"\xcf\xfa\xed\xfe":
            return []
    ncmds, = struct.unpack_from("<I", data, base + 16)
    at, found = base + 32, []
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<II", data, at)
        if cmd == 0x19:  # LC_SEGMENT_64: its sections follow its 72-byte header, 80 bytes each
            nsects, = struct.unpack_from("<I", data, at + 64)
            for i in range(nsects):
                s = at + 72 + i * 80
                name = bytes(data[s:s + 16]).rstrip(b"\x00").decode("ascii", "replace")
                _addr, length, offset = struct.unpack_from("<QQI", data, s + 32)
                flags, = struct.unpack_from("<I", data, s + 64)
                if flags & 0xFF not in (0x1, 0xC):  # S_ZEROFILL, S_GB_ZEROFILL: nothing in the file
                    found.append(Section(name, base + offset, length, bool(flags & 0x80000400)))
        at += size
    return found


def _pe(data: bytes | bytearray) -> list[Section]:
    pe, = struct.unpack_from("<I", data, 0x3C)
    if data[pe:pe + 4] != b"PE\x00\x00":
        return []
    count, = struct.unpack_from("<H", data, pe + 6)
    optional, = struct.unpack_from("<H", data, pe + 20)
    table, found = pe + 24 + optional, []
    for i in range(count):
        s = table + i * 40
        name = bytes(data[s:s + 8]).rstrip(b"\x00").decode("ascii", "replace")
        raw_size, raw_offset = struct.unpack_from("<II", data, s + 16)
        flags, = struct.unpack_from("<I", data, s + 36)
        found.append(Section(name, raw_offset, raw_size, bool(flags & 0x20000020)))  # CNT_CODE | MEM_EXECUTE
    return found
