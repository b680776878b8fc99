"""The data pointers of a PE32+ file (a Windows ``.pyd``): its base relocations.

A PE file is linked at a preferred ``ImageBase``; every absolute pointer in
its data (``tp_name``, ``m_name``, a method table's entries) holds that
preferred address and is listed in the ``.reloc`` table as an
``IMAGE_REL_BASED_DIR64`` entry, so the loader can move it. That list is
what ELF's ``R_X86_64_RELATIVE`` relocations are on Linux: which data words
point at which strings (imagerefs.py). Addresses here are RVAs.
"""

from __future__ import annotations

import struct

from .imagerefs import Image, Span, file_offset

_PE32_PLUS = 0x20B
_BASERELOC = 5  # the data directory of base relocations
_DIR64 = 10
_AMD64 = 0x8664
_MICROSOFT_X64 = {1: 0, 2: 1}  # rcx, rdx (r8, r9 need REX.R): the registers of the first arguments


def pe_image(data: bytes) -> Image | None:
    """The pointers of a PE32+ file by their base relocations, or None if it is no such file."""
    try:
        pe, = struct.unpack_from("<I", data, 0x3C)
        if data[pe:pe + 4] != b"PE\x00\x00":
            return None
        count, optional_size = struct.unpack_from("<H", data, pe + 6)[0], struct.unpack_from("<H", data, pe + 20)[0]
        optional = pe + 24
        if struct.unpack_from("<H", data, optional)[0] != _PE32_PLUS:
            return None
        image_base, = struct.unpack_from("<Q", data, optional + 24)
        directories, = struct.unpack_from("<I", data, optional + 108)
        reloc_rva, reloc_size = struct.unpack_from("<II", data, optional + 112 + _BASERELOC * 8) if (
            directories > _BASERELOC) else (0, 0)
        spans = []
        for i in range(count):
            s = optional + optional_size + i * 40
            virtual_size, rva, raw_size, raw_offset = struct.unpack_from("<IIII", data, s + 8)
            spans.append(Span(raw_offset, rva, min(virtual_size or raw_size, raw_size)))
        machine, = struct.unpack_from("<H", data, pe + 4)
        image = Image({}, spans, _MICROSOFT_X64 if machine == _AMD64 else None)
        at = file_offset(spans, reloc_rva)
        end = at + reloc_size if at is not None else 0
        while at is not None and at + 8 <= end:
            page, block = struct.unpack_from("<II", data, at)
            if block < 8:
                break
            for entry in struct.unpack_from(f"<{(block - 8) // 2}H", data, at + 8):
                place = file_offset(spans, page + (entry & 0xFFF))
                if entry >> 12 == _DIR64 and place is not None:
                    image.pointers[place] = struct.unpack_from("<Q", data, place)[0] - image_base
            at += block
        return image
    except struct.error:
        return None

