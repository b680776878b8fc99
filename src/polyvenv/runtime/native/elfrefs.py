"""Who uses a string in a shared object: the pointers to it in data, and the code that loads its address.

The byte patch renames a string only where it provably names a module
(modulenames.py), and the proof is in its users: a pointer at a
``PyTypeObject``'s ``tp_name`` or a ``PyModuleDef``'s ``m_name``, a ``lea``
of it in the register that carries the first argument of the
``PyImport_ImportModule`` called next. This module finds those users in an
ELF64 little-endian file without running it: ``R_*_RELATIVE`` dynamic
relocations (data pointers, as in static tables), x86-64 RIP-relative
``lea`` (code), and for each ``lea`` the imported function called next,
named through its PLT stub or GOT slot (the slots the interposition
direction would redirect: measured in bench/modulenames_bench.py).
Anything it cannot read gives no users, never wrong ones.
"""

from __future__ import annotations

import re
import struct
from functools import cached_property
from typing import NamedTuple

from .elf import Buffer

_PT_LOAD, _PT_DYNAMIC = 1, 2
_PF_X = 1
_DT_NULL, _DT_PLTRELSZ, _DT_STRTAB, _DT_SYMTAB, _DT_RELA, _DT_RELASZ, _DT_JMPREL = 0, 2, 5, 6, 7, 8, 23
_X86_64 = 62
_RELATIVE = {62: 8, 183: 1027}            # e_machine -> R_*_RELATIVE
_GOT_KINDS = {62: (6, 7), 183: (1025, 1026)}  # R_*_GLOB_DAT, R_*_JUMP_SLOT
# lea disp32(%rip), %reg: REX.W (+R), 8D, ModRM with mod 00 and r/m 101 (reg in bits 5-3)
_LEA_RIP = re.compile(rb"[\x48\x4c]\x8d[\x05\x0d\x15\x1d\x25\x2d\x35\x3d]")
_CALL_WINDOW = 48  # bytes after a lea in which the call it prepares is looked for
# x86-64 System V: the registers of the first arguments, by ModRM reg number (REX.R clear)
ARGUMENT_REGISTERS = {7: 0, 6: 1, 2: 2, 1: 3}  # rdi, rsi, rdx, rcx


class Segment(NamedTuple):
    index: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int


class CodeUse(NamedTuple):
    """A ``lea`` of the string: where its disp32 is, the argument it loads, and the function called next."""

    at: int
    argument: int | None
    callee: str | None


class ElfReferences:
    """The users of each address in one ELF64 shared object (``ok`` is false for anything else)."""

    def __init__(self, data: Buffer) -> None:
        self.data = data
        self.ok = data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1
        self.machine = struct.unpack_from("<H", data, 18)[0] if self.ok else 0
        self.ok = self.ok and self.machine in _RELATIVE
        self.segments = self._segments() if self.ok else []

    def _segments(self) -> list[Segment]:
        phoff, = struct.unpack_from("<Q", self.data, 32)
        phentsize, phnum = struct.unpack_from("<HH", self.data, 54)
        found = []
        for i in range(phnum):
            kind, flags, offset, vaddr, _, filesz, memsz, _ = struct.unpack_from(
                "<IIQQQQQQ", self.data, phoff + i * phentsize)
            if kind in (_PT_LOAD, _PT_DYNAMIC):
                found.append(Segment(i if kind == _PT_LOAD else -1, flags, offset, vaddr, filesz, memsz))
        return found

    def vaddr(self, offset: int) -> int | None:
        for s in self.segments:
            if s.index >= 0 and s.offset <= offset < s.offset + s.filesz:
                return s.vaddr + offset - s.offset
        return None

    def file_offset(self, vaddr: int) -> int | None:
        for s in self.segments:
            if s.index >= 0 and s.vaddr <= vaddr < s.vaddr + s.filesz:
                return s.offset + vaddr - s.vaddr
        return None

    def in_code(self, offset: int) -> bool:
        """Whether a file offset lies in an executable segment (machine code, never a string)."""
        return any(s.index >= 0 and s.flags & _PF_X and s.offset <= offset < s.offset + s.filesz
                   for s in self.segments)

    def executable_vaddr(self, vaddr: int) -> bool:
        return any(s.index >= 0 and s.flags & _PF_X and s.vaddr <= vaddr < s.vaddr + s.memsz for s in self.segments)

    # -- the dynamic section ---------------------------------------------------------------

    @cached_property
    def _dynamic(self) -> dict[int, int]:
        dynamic = next((s for s in self.segments if s.index < 0), None)
        tags: dict[int, int] = {}
        if dynamic is None:
            return tags
        for at in range(dynamic.offset, dynamic.offset + dynamic.filesz, 16):
            tag, value = struct.unpack_from("<qQ", self.data, at)
            if tag == _DT_NULL:
                break
            tags.setdefault(tag, value)
        return tags

    def _relocations(self, start_tag: int, size_tag: int) -> list[tuple[int, int, int]]:
        """(where: vaddr, info, addend) of a RELA table."""
        start = self.file_offset(self._dynamic.get(start_tag, -1))
        size = self._dynamic.get(size_tag, 0)
        if start is None or not size:
            return []
        return [struct.unpack_from("<QQq", self.data, at) for at in range(start, start + size, 24)]

    @cached_property
    def pointers(self) -> dict[int, list[int]]:
        """target vaddr -> the file offsets of the data pointers to it (``R_*_RELATIVE``)."""
        relative = _RELATIVE[self.machine]
        found: dict[int, list[int]] = {}
        for where, info, addend in self._relocations(_DT_RELA, _DT_RELASZ):
            if info & 0xFFFFFFFF == relative:
                at = self.file_offset(where)
                if at is not None:
                    found.setdefault(addend, []).append(at)
        return found

    @cached_property
    def pointer_places(self) -> dict[int, int | None]:
        """File offsets holding a relocated pointer (of any kind) -> its target, where the file says."""
        relative = _RELATIVE[self.machine]
        places: dict[int, int | None] = {}
        for where, info, addend in self._relocations(_DT_RELA, _DT_RELASZ):
            at = self.file_offset(where)
            if at is not None:
                places[at] = addend if info & 0xFFFFFFFF == relative else None
        return places

    @cached_property
    def imports(self) -> dict[str, list[tuple[int, int]]]:
        """Symbol name -> (vaddr, relocation kind) of each dynamic relocation that names it."""
        symtab = self.file_offset(self._dynamic.get(_DT_SYMTAB, -1))
        strtab = self.file_offset(self._dynamic.get(_DT_STRTAB, -1))
        found: dict[str, list[tuple[int, int]]] = {}
        if symtab is None or strtab is None:
            return found
        for where, info, _ in (self._relocations(_DT_RELA, _DT_RELASZ)
                               + self._relocations(_DT_JMPREL, _DT_PLTRELSZ)):
            if info >> 32:
                name_at, = struct.unpack_from("<I", self.data, symtab + (info >> 32) * 24)
                end = self.data.find(b"\x00", strtab + name_at)
                name = bytes(self.data[strtab + name_at:end]).decode("latin-1")
                found.setdefault(name, []).append((where, info & 0xFFFFFFFF))
        return found

    @cached_property
    def got(self) -> dict[int, str]:
        """GOT slot vaddr -> the imported symbol it holds (``PyImport_ImportModule``...)."""
        kinds = _GOT_KINDS[self.machine]
        return {where: name for name, uses in self.imports.items() for where, kind in uses if kind in kinds}

    def got_slots(self, symbol: str) -> list[int] | None:
        """The GOT slots (vaddrs) of ``symbol``, or None if the file also names it otherwise (a pointer in data)."""
        kinds = _GOT_KINDS.get(self.machine, ())
        uses = self.imports.get(symbol, [])
        return [where for where, kind in uses] if all(kind in kinds for _, kind in uses) else None

    # -- code -------------------------------------------------------------------------------

    @cached_property
    def loads(self) -> dict[int, list[CodeUse]]:
        """target vaddr -> each RIP-relative ``lea`` of it (x86-64 only)."""
        if self.machine != _X86_64:
            return {}
        return rip_loads(self.data, [(s.offset, s.vaddr, s.filesz) for s in self.segments
                                     if s.index >= 0 and s.flags & _PF_X], ARGUMENT_REGISTERS)

    def callee_after(self, at: int) -> str | None:
        """The imported function the first call (or tail jump) within a few bytes after ``at`` reaches."""
        vaddr = self.vaddr(at)
        if vaddr is None:
            return None
        window = self.data[at + 4:at + 4 + _CALL_WINDOW]
        for i in range(len(window) - 4):
            op = window[i]
            if op in (0xE8, 0xE9) and i + 5 <= len(window):
                target = vaddr + 4 + i + 5 + struct.unpack_from("<i", window, i + 1)[0]
                name = self._stub(target)
                if name is not None:
                    return name
            elif op == 0xFF and window[i + 1] in (0x15, 0x25) and i + 6 <= len(window):
                slot = vaddr + 4 + i + 6 + struct.unpack_from("<i", window, i + 2)[0]
                if slot in self.got:
                    return self.got[slot]
        return None

    def _stub(self, vaddr: int) -> str | None:
        """The symbol a PLT stub at ``vaddr`` jumps to (``[endbr64] [bnd] jmp *slot(%rip)``)."""
        at = self.file_offset(vaddr)
        if at is None or not self.in_code(at):
            return None
        code = self.data[at:at + 16]
        skip = 4 if code[:4] == b"\xf3\x0f\x1e\xfa" else 0
        skip += 1 if code[skip:skip + 1] == b"\xf2" else 0
        if code[skip:skip + 2] != b"\xff\x25":
            return None
        slot = vaddr + skip + 6 + struct.unpack_from("<i", code, skip + 2)[0]
        return self.got.get(slot)


def rip_loads(data: Buffer, code: list[tuple[int, int, int]], registers: dict[int, int]) -> dict[int, list[CodeUse]]:
    """target vaddr -> each RIP-relative ``lea`` of it in the x86-64 ``code`` (file offset, vaddr, size) spans;
    ``registers`` maps a ModRM reg number to the argument it carries in the file's calling convention."""
    found: dict[int, list[CodeUse]] = {}
    for offset, vaddr, size in code:
        for match in _LEA_RIP.finditer(data, offset, offset + size):
            at = match.end()
            target = vaddr + at + 4 - offset + struct.unpack_from("<i", data, at)[0]
            rex_r = data[match.start()] & 4
            argument = None if rex_r else registers.get((data[at - 1] >> 3) & 7)
            found.setdefault(target, []).append(CodeUse(at, argument, None))
    return found
