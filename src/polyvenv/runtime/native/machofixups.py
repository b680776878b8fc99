"""The data pointers of a Mach-O 64 file (a macOS extension): its rebase information.

A Mach-O file says which of its data words hold an address of its own (and
so move with it) in one of two ways: older files (``LC_DYLD_INFO``) in a
byte-coded list of rebase opcodes, the word itself holding the target
address; newer ones (``LC_DYLD_CHAINED_FIXUPS``, macOS 12 and later) in
chains, each word encoding its target and the distance to the next one in
its page. Either is what ELF's ``R_*_RELATIVE`` relocations are on Linux:
which data words point at which strings (imagerefs.py). Only the plain
64-bit pointer formats are read (arm64e's signed pointers are not used by
Python extensions); anything else gives no pointers, never wrong ones.
"""

from __future__ import annotations

import struct

from .imagerefs import Image, Span, file_offset

_MAGIC = b"\xcf\xfa\xed\xfe"
_LC_SEGMENT_64, _LC_DYLD_INFO, _LC_DYLD_INFO_ONLY, _LC_DYLD_CHAINED_FIXUPS = 0x19, 0x22, 0x80000022, 0x80000034
_PTR_64, _PTR_64_OFFSET = 2, 6  # DYLD_CHAINED_PTR_64 (target: address), _64_OFFSET (target: offset in image)
_PAGE_START_NONE = 0xFFFF


def macho_image(data: bytes) -> Image | None:
    """The pointers of a 64-bit Mach-O file (or a universal file's first slice), or None if there is none."""
    try:
        base = struct.unpack_from(">I", data, 16)[0] if data[:4] == b"\xca\xfe\xba\xbe" else 0
        if data[base:base + 4] != _MAGIC:
            return None
        ncmds, = struct.unpack_from("<I", data, base + 16)
        at, segments, rebases, chained = base + 32, [], None, None
        for _ in range(ncmds):
            cmd, size = struct.unpack_from("<II", data, at)
            if cmd == _LC_SEGMENT_64:
                vmaddr, _vmsize, fileoff, filesize = struct.unpack_from("<QQQQ", data, at + 24)
                segments.append(Span(base + fileoff, vmaddr, filesize))
            elif cmd in (_LC_DYLD_INFO, _LC_DYLD_INFO_ONLY):
                offset, length = struct.unpack_from("<II", data, at + 8)
                rebases = (base + offset, length)
            elif cmd == _LC_DYLD_CHAINED_FIXUPS:
                offset, length = struct.unpack_from("<II", data, at + 8)
                chained = base + offset
            at += size
        image = Image({}, segments)
        if rebases is not None:
            _rebase_opcodes(data, *rebases, image)
        elif chained is not None:
            _chained_fixups(data, chained, image)
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


def _chained_fixups(data: bytes, header: int, image: Image) -> None:
    """Walk each page's chain (``dyld_chained_starts_in_segment``): rebases hold their target, binds none."""
    starts = header + struct.unpack_from("<I", data, header + 4)[0]
    count, = struct.unpack_from("<I", data, starts)
    first = image.spans[0].vaddr if image.spans else 0  # the image's own address (__TEXT's, 0 in a dylib)
    for info in struct.unpack_from(f"<{count}I", data, starts + 4):
        if not info:
            continue
        s = starts + info
        page_size, pointer_format, segment_offset = struct.unpack_from("<HHQ", data, s + 4)
        pages, = struct.unpack_from("<H", data, s + 20)
        if pointer_format not in (_PTR_64, _PTR_64_OFFSET):
            continue
        for page, start in enumerate(struct.unpack_from(f"<{pages}H", data, s + 22)):
            if start == _PAGE_START_NONE or start & 0x8000:
                continue
            place = file_offset(image.spans, first + segment_offset + page * page_size + start)
            while place is not None:
                word, = struct.unpack_from("<Q", data, place)
                bind, step = word >> 63, (word >> 51) & 0xFFF
                # a bind's word names an import, no address; a rebase's low 36 bits are its target
                image.pointers[place] = None if bind else (word & 0xFFFFFFFFF) + (
                    first if pointer_format == _PTR_64_OFFSET else 0)
                place = place + step * 4 if step else None

