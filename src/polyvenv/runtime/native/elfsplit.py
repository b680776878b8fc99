"""Give a module name the linker tail-merged into a longer string a string of its own (ELF, x86-64 and
other RELA targets).

Linkers merge identical string tails: ``"numpy"`` may live as the last five
bytes of ``"to_numpy"`` (pandas' ``tslibs``). Patching it there would rename
``to_numpy`` too, so the byte patch leaves it, and the extension would import
the host's numpy. But a shared object reaches such a string in one of two
ways, both found exactly: a dynamic relocation (``R_*_RELATIVE``: "load
address + addend", as in Cython 0.29's static string tables), or on x86-64
a RIP-relative ``lea`` (Cython 3.0 fills its string table in code). This
module writes ``alias\\0`` into the zero padding that follows a read-only
``PT_LOAD`` segment in the file (mapped with the segment's last page; the
segment is grown to cover it) and points those references at it instead.
Anything unexpected (not ELF64, no room) leaves the file as it was.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from .elfrefs import _LEA_RIP, _RELATIVE
from .elfrefs import Segment as _Segment

_PT_LOAD, _PT_DYNAMIC = 1, 2
_PF_X, _PF_W = 1, 2
_DT_NULL, _DT_RELA, _DT_RELASZ, _DT_RELAENT = 0, 7, 8, 9
_X86_64 = 62
_PAGE = 4096


def split_merged_tails(data: bytearray, tails: dict[int, bytes], movers: dict[int, set[int]] | None = None) -> int:
    """Point what uses each merged tail (file offset -> its replacement, NUL included) at a copy of
    the replacement; ``data`` is changed in place. Returns how many references moved. With ``movers``
    (tail offset -> the file offsets of the pointers and ``lea`` displacements to move), only those move:
    the others keep the original bytes (a method named like a module: modulenames.py)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:  # 64-bit little-endian only
        return 0
    machine = struct.unpack_from("<H", data, 18)[0]
    relative = _RELATIVE.get(machine)
    if relative is None:
        return 0
    segments = _segments(data)
    relocations = [(use, addend) for use, kind, addend in _rela(data, segments) if kind == relative]
    leas = _rip_relative_leas(data, segments) if machine == _X86_64 else []
    moved = 0
    for offset, replacement in sorted(tails.items()):
        vaddr = _vaddr(segments, offset)
        chosen = movers.get(offset) if movers is not None else None
        users = [use for use, addend in relocations
                 if addend == vaddr and (chosen is None or use.file_target in chosen)]
        code = [(at, next_ip) for at, next_ip, target in leas if target == vaddr and (chosen is None or at in chosen)]
        if vaddr is None or not (users or code):
            continue
        copy = _room(data, segments, len(replacement))
        if copy is None:
            break
        data[copy.file:copy.file + len(replacement)] = replacement
        for use in users:
            struct.pack_into("<q", data, use.file_addend, copy.vaddr)
            if struct.unpack_from("<q", data, use.file_target)[0] == vaddr:  # some linkers store it twice
                struct.pack_into("<q", data, use.file_target, copy.vaddr)
        for at, next_ip in code:
            struct.pack_into("<i", data, at, copy.vaddr - next_ip)
        segments = _segments(data)
        moved += len(users) + len(code)
    return moved


def _rip_relative_leas(data: bytearray, segments: list[_Segment]) -> list[tuple[int, int, int]]:
    """Every ``lea`` of a RIP-relative address in executable segments: (disp32 offset, next ip, target)."""
    found = []
    for s in segments:
        if s.index < 0 or not s.flags & _PF_X:
            continue
        for match in _LEA_RIP.finditer(data, s.offset, s.offset + s.filesz):
            at = match.end()
            next_ip = s.vaddr + at + 4 - s.offset
            found.append((at, next_ip, next_ip + struct.unpack_from("<i", data, at)[0]))
    return found


class _Place(NamedTuple):
    file: int
    vaddr: int


class _Use(NamedTuple):
    file_addend: int  # where the relocation's addend is, in the file
    file_target: int  # where the relocated pointer is, in the file


def _segments(data: bytearray) -> list[_Segment]:
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    found = []
    for i in range(phnum):
        kind, flags, offset, vaddr, _, filesz, memsz, _ = struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize)
        if kind in (_PT_LOAD, _PT_DYNAMIC):
            found.append(_Segment(i if kind == _PT_LOAD else -1, flags, offset, vaddr, filesz, memsz))
    return found


def _vaddr(segments: list[_Segment], offset: int) -> int | None:
    for s in segments:
        if s.index >= 0 and s.offset <= offset < s.offset + s.filesz:
            return s.vaddr + offset - s.offset
    return None


def _file_offset(segments: list[_Segment], vaddr: int) -> int | None:
    for s in segments:
        if s.index >= 0 and s.vaddr <= vaddr < s.vaddr + s.filesz:
            return s.offset + vaddr - s.vaddr
    return None


def _rela(data: bytearray, segments: list[_Segment]) -> list[tuple[_Use, int, int]]:
    """The RELA dynamic relocations: (where, type, addend); none if the file has no RELA table."""
    dynamic = next((s for s in segments if s.index < 0), None)
    if dynamic is None:
        return []
    tags = {}
    for at in range(dynamic.offset, dynamic.offset + dynamic.filesz, 16):
        tag, value = struct.unpack_from("<qQ", data, at)
        if tag == _DT_NULL:
            break
        tags[tag] = value
    start = _file_offset(segments, tags.get(_DT_RELA, -1))
    size, entry = tags.get(_DT_RELASZ, 0), tags.get(_DT_RELAENT, 24)
    if start is None or not size:
        return []
    found = []
    for at in range(start, start + size, entry):
        where, info, addend = struct.unpack_from("<QQq", data, at)
        target = _file_offset(segments, where)
        if target is not None:
            found.append((_Use(at + 16, target), info & 0xFFFFFFFF, addend))
    return found


def _room(data: bytearray, segments: list[_Segment], size: int) -> _Place | None:
    """``size`` zero bytes right after a read-only segment, within its last page; the segment grows."""
    for s in segments:
        if s.index < 0 or s.flags & (_PF_X | _PF_W) or s.filesz != s.memsz:
            continue
        start = s.offset + s.filesz
        end = start + size
        page_end = (s.vaddr + s.filesz + _PAGE - 1) // _PAGE * _PAGE
        others = [o for o in segments if o.index >= 0 and o is not s]
        if (s.vaddr + s.filesz + size > page_end or end > len(data) or any(data[start:end])
                or any(o.offset < end and start < o.offset + o.filesz for o in others)
                or any(o.vaddr < page_end and s.vaddr < o.vaddr + o.memsz for o in others)):
            continue
        phoff, = struct.unpack_from("<Q", data, 32)
        phentsize, = struct.unpack_from("<H", data, 54)
        header = phoff + s.index * phentsize
        struct.pack_into("<QQ", data, header + 32, s.filesz + size, s.memsz + size)
        return _Place(start, s.vaddr + s.filesz)
    return None
