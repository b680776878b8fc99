"""The data pointers of a Mach-O 64 file (a macOS extension): its rebase information.

A Mach-O file says which of its data words hold an address of its own (and
so move with it) in its rebase information (``LC_DYLD_INFO``): a byte-coded
list of rebase opcodes, each rebased word holding its target address. That
is what ELF's ``R_*_RELATIVE`` relocations are on Linux: which data words
point at which strings (imagerefs.py). Newer executables say it in chained
fixups (``LC_DYLD_CHAINED_FIXUPS``) instead, but ld64 falls back to rebase
opcodes for bundles linked ``-undefined dynamic_lookup``, as Python
extensions are: every macOS wheel checked (C, Cython, Rust, numpy built for
macOS 14) has them. A file without them gives None: no pointers, never
wrong ones.
"""

from __future__ import annotations

import struct

from .elfrefs import ARGUMENT_REGISTERS
from .imagerefs import Image, Span

_MAGIC = b"\xcf\xfa\xed\xfe"
_LC_SEGMENT_64, _LC_DYLD_INFO, _LC_DYLD_INFO_ONLY = 0x19, 0x22, 0x80000022
_CPU_X86_64 = 0x01000007


def macho_image(data: bytes) -> Image | None:
    """The pointers of a 64-bit Mach-O file (or a universal file's first slice) by its rebase opcodes, or None."""
    try:
        base = struct.unpack_from(">I", data, 16)[0] if data[:4] == b"\xca\xfe\xba\xbe" else 0
        if data[base:base + 4] != _MAGIC:
            return None
        ncmds, = struct.unpack_from("<I", data, base + 16)
        at, segments, rebases = base + 32, [], None
        for _ in range(ncmds):
            cmd, size = struct.unpack_from("<II", data, at)
            if cmd == _LC_SEGMENT_64:
                vmaddr, _vmsize, fileoff, filesize = struct.unpack_from("<QQQQ", data, at + 24)
                segments.append(Span(base + fileoff, vmaddr, filesize))
            elif cmd in (_LC_DYLD_INFO, _LC_DYLD_INFO_ONLY):
                offset, length = struct.unpack_from("<II", data, at + 8)
                rebases = (base + offset, length)
            at += size
        if rebases is None:
            return None
        cputype, = struct.unpack_from("<I", data, base + 4)
        image = Image({}, segments, ARGUMENT_REGISTERS if cputype == _CPU_X86_64 else None)  # System V, as Linux
        _rebase_opcodes(data, *rebases, image)
        return image
    except (struct.error, IndexError):
        return None


def _rebase_opcodes(data: bytes, start: int, length: int, image: Image) -> None:
    """Run the rebase opcodes (``REBASE_OPCODE_*``): each rebased word holds its target address."""
    at, end, segment, offset = start, start + length, 0, 0

    def uleb() -> int:
        nonlocal at
        value = shift = 0
        while True:
            byte = data[at]
            at += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    def rebase(times: int, step: int) -> None:
        nonlocal offset
        for _ in range(times):
            place = image.spans[segment].offset + offset
            if offset < image.spans[segment].size:
                image.pointers[place] = struct.unpack_from("<Q", data, place)[0]
            offset += 8 + step

    while at < end:
        opcode, immediate = data[at] & 0xF0, data[at] & 0x0F
        at += 1
        if opcode == 0x00:    # DONE
            break
        elif opcode == 0x20:  # SET_SEGMENT_AND_OFFSET_ULEB
            segment, offset = immediate, uleb()
        elif opcode == 0x30:  # ADD_ADDR_ULEB
            offset += uleb()
        elif opcode == 0x40:  # ADD_ADDR_IMM_SCALED
            offset += immediate * 8
        elif opcode == 0x50:  # DO_REBASE_IMM_TIMES
            rebase(immediate, 0)
        elif opcode == 0x60:  # DO_REBASE_ULEB_TIMES
            rebase(uleb(), 0)
        elif opcode == 0x70:  # DO_REBASE_ADD_ADDR_ULEB
            rebase(1, uleb())
        elif opcode == 0x80:  # DO_REBASE_ULEB_TIMES_SKIPPING_ULEB
            times = uleb()
            rebase(times, uleb())
        # 0x10 SET_TYPE_IMM: every type rebases a whole pointer here

