"""The data pointers of a Mach-O or PE extension file: the users elfrefs.py reads from ELF relocations.

The string finder (modulenames.py) proves a type name (``tp_name``,
``PyType_Spec.name``) or a ``PyModuleDef.m_name`` by the data word that
points at the string and the structure around it. On Linux the dynamic
relocations list those words; a Mach-O file lists them in its rebase
information (machofixups.py), a PE file in its base relocations
(pereloc.py). Both readers give an ``Image``: where each pointer lies and
what it points at, and how file offsets map to addresses. Of the code, only
x86-64's RIP-relative ``lea`` is read (elfrefs.rip_loads), which makes a
string one of its own where it follows other data with no NUL between; the
function called next is not named (no Mach-O stubs or PE import table read)
and arm64's ``adrp`` pairs are not decoded, so a load proves no module
position there.
"""

from __future__ import annotations

from functools import cached_property
from typing import NamedTuple

from .elfrefs import CodeUse, ElfReferences, rip_loads
from .sections import Section, sections


class Span(NamedTuple):
    """Bytes of the file at ``offset`` that the loader maps at ``vaddr``."""

    offset: int
    vaddr: int
    size: int


class Image(NamedTuple):
    """What a pointer-table reader found: file offset of each pointer -> its target address, and the spans."""

    pointers: dict[int, int]
    spans: list[Span]
    registers: dict[int, int] | None  # x86-64 code: ModRM reg number -> argument it carries; None: other code


def file_offset(spans: list[Span], vaddr: int) -> int | None:
    """Where in the file the byte the loader maps at ``vaddr`` is, if it is in the file."""
    return next((s.offset + vaddr - s.vaddr for s in spans if s.vaddr <= vaddr < s.vaddr + s.size), None)


class ImageReferences:
    """The data users of each address in a Mach-O or PE file, with the interface of ``ElfReferences``."""

    def __init__(self, data: bytes, image: Image, found: list[Section]) -> None:
        self.data = data
        self.ok = True
        self.spans = image.spans
        self.pointer_places: dict[int, int | None] = dict(image.pointers)
        self.pointers: dict[int, list[int]] = {}
        for place, target in image.pointers.items():
            self.pointers.setdefault(target, []).append(place)
        self._code = [s for s in found if s.code]
        self._registers = image.registers

    @cached_property
    def loads(self) -> dict[int, list[CodeUse]]:
        """target vaddr -> each RIP-relative ``lea`` of it (x86-64 code only)."""
        if self._registers is None:
            return {}
        code = [(s.offset, vaddr, s.size) for s in self._code if (vaddr := self.vaddr(s.offset)) is not None]
        return rip_loads(self.data, code, self._registers)

    def vaddr(self, offset: int) -> int | None:
        for s in self.spans:
            if s.offset <= offset < s.offset + s.size:
                return s.vaddr + offset - s.offset
        return None

    def in_code(self, offset: int) -> bool:
        return any(s.offset <= offset < s.offset + s.size for s in self._code)

    def executable_vaddr(self, vaddr: int) -> bool:
        """By the sections, not the segments: Mach-O's ``__TEXT`` segment holds the strings too."""
        offset = file_offset(self.spans, vaddr)
        return offset is not None and self.in_code(offset)

    def callee_after(self, at: int) -> str | None:
        return None


def references(data: bytes) -> ElfReferences | ImageReferences:
    """The users of each address in an extension file of any format (``ok`` false where none can be read)."""
    image = None
    if data[:4] in (b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe"):
        from .machofixups import macho_image

        image = macho_image(data)
    elif data[:2] == b"MZ":
        from .pereloc import pe_image

        image = pe_image(data)
    return ImageReferences(data, image, sections(data)) if image is not None else ElfReferences(data)
