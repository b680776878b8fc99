"""What an ELF shared object tells the dynamic loader: the libraries it needs, where it looks for them,
the name it is known by, and the symbols it shares process-wide (64-bit little-endian ELF).

Read straight from the bytes (``bytes``, ``bytearray`` or an ``mmap``), so that a file
mapped lazily costs only the pages these few tables live on. Anything not
understood reads as "nothing known" (``None``), never as an error.
"""

from __future__ import annotations

import re
import struct
from typing import NamedTuple, Union

_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NULL, _DT_NEEDED, _DT_STRTAB, _DT_STRSZ, _DT_SONAME, _DT_RPATH, _DT_RUNPATH = 0, 1, 5, 10, 14, 15, 29
_STRING_TAGS = (_DT_NEEDED, _DT_SONAME, _DT_RPATH, _DT_RUNPATH)
_SHT_DYNSYM, _SHT_NOBITS, _SHF_WRITE = 11, 8, 1
_STB_GNU_UNIQUE = 10
_UNIQUE_INFO = re.compile(rb"[\xa0-\xaf]")  # st_info bytes whose binding (high nibble) is STB_GNU_UNIQUE

Buffer = Union[bytes, bytearray, "mmap.mmap"]  # noqa: F821 - an mmap where a caller maps a file


class Dynamic(NamedTuple):
    """The dynamic section of a shared object, as the loader uses it."""

    needed: tuple[str, ...]
    search: tuple[str, ...]  # where DT_NEEDED names are looked for: DT_RUNPATH if any, else DT_RPATH
    soname: str | None
    strtab: tuple[int, int]  # file offset and size of the dynamic string table
    string_refs: tuple[int, ...]  # the table offsets the dynamic section itself names


def is_elf64(data: Buffer) -> bool:
    return len(data) > 64 and data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1


def dynamic(data: Buffer) -> Dynamic | None:
    """The shared object's dynamic section, or None (not a 64-bit little-endian ELF, or no such section)."""
    if not is_elf64(data):
        return None
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    loads, dyn = [], None
    for i in range(phnum):
        kind, _, offset, vaddr, _, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", data, phoff + i * phentsize)
        if kind == _PT_LOAD:
            loads.append((vaddr, filesz, offset))
        elif kind == _PT_DYNAMIC:
            dyn = (offset, filesz)
    if dyn is None:
        return None
    entries = []
    for at in range(dyn[0], min(dyn[0] + dyn[1], len(data) - 15), 16):
        tag, value = struct.unpack_from("<qQ", data, at)
        if tag == _DT_NULL:
            break
        entries.append((tag, value))
    tags = dict(entries)
    strtab = next((offset + tags[_DT_STRTAB] - vaddr for vaddr, size, offset in loads
                   if _DT_STRTAB in tags and vaddr <= tags[_DT_STRTAB] < vaddr + size), None)
    if strtab is None:
        return None
    size = tags.get(_DT_STRSZ, 0)

    def string(at: int) -> str:
        end = data.find(b"\x00", strtab + at, strtab + size)
        return bytes(data[strtab + at:end if end >= 0 else strtab + at]).decode("utf-8", "replace")

    search = [string(v) for t, v in entries if t == _DT_RUNPATH] or [string(v) for t, v in entries if t == _DT_RPATH]
    return Dynamic(
        needed=tuple(string(v) for t, v in entries if t == _DT_NEEDED),
        search=tuple(d for entry in search for d in entry.split(":") if d),
        soname=next((string(v) for t, v in entries if t == _DT_SONAME), None),
        strtab=(strtab, size),
        string_refs=tuple(v for t, v in entries if t in _STRING_TAGS),
    )


def _dynsym(data: Buffer) -> tuple[int, int, int, int] | None:
    """(offset, size, entry size, offset of its string table) of ``.dynsym``, from the section headers."""
    shoff, = struct.unpack_from("<Q", data, 40)
    shentsize, shnum = struct.unpack_from("<HH", data, 58)
    if not shoff or shentsize < 64 or shoff + shnum * shentsize > len(data):
        return None
    for i in range(shnum):
        header = struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
        kind, offset, size, link, entsize = header[1], header[4], header[5], header[6], header[9]
        if kind == _SHT_DYNSYM and entsize >= 24 and link < shnum:
            strtab, = struct.unpack_from("<Q", data, shoff + link * shentsize + 24)
            return offset, size, entsize, strtab
    return None


def unique_symbols(data: Buffer) -> dict[str, bytes | None]:
    """The symbols of binding ``STB_GNU_UNIQUE`` the object defines: name -> its bytes if it is read-only
    data (a constant table), None if it is state (writable, or not in the file).

    The dynamic loader keeps one definition of each such name per process, whoever loads
    it and however (``RTLD_LOCAL`` included): C++ statics of inline functions and templates
    compiled without ``-fvisibility=hidden`` or ``-fno-gnu-unique``.
    """
    if not is_elf64(data):
        return {}
    table = _dynsym(data)
    if table is None:
        return {}
    offset, size, entsize, strtab = table
    infos = bytes(data[offset + 4:offset + size:entsize])  # one st_info byte per symbol: a fast first look
    shoff, = struct.unpack_from("<Q", data, 40)
    shentsize, shnum = struct.unpack_from("<HH", data, 58)
    found: dict[str, bytes | None] = {}
    for match in _UNIQUE_INFO.finditer(infos):
        name, _, _, shndx, value, length = struct.unpack_from("<IBBHQQ", data, offset + match.start() * entsize)
        if not shndx or shndx >= shnum:
            continue  # not defined here
        end = data.find(b"\x00", strtab + name)
        _, kind, flags, addr, at = struct.unpack_from("<IIQQQ", data, shoff + shndx * shentsize)
        constant = kind != _SHT_NOBITS and not flags & _SHF_WRITE
        found[bytes(data[strtab + name:end]).decode("utf-8", "replace")] = \
            bytes(data[at + value - addr:at + value - addr + length]) if constant else None
    return found


def symbol_name_offsets(data: Buffer) -> tuple[int, ...]:
    """Where each ``.dynsym`` name starts in the dynamic string table."""
    table = _dynsym(data) if is_elf64(data) else None
    if table is None:
        return ()
    offset, size, entsize, _ = table
    return tuple(struct.unpack_from("<I", data, at)[0] for at in range(offset, offset + size, entsize))


def uses_python(data: Buffer) -> bool:
    """Whether the object names Python's C API among its dynamic symbols (a library Python code calls into)."""
    info = dynamic(data)
    if info is None:
        return False
    start, size = info.strtab
    strings = bytes(data[start:start + size])
    return b"\x00Py" in strings or b"\x00_Py" in strings


def rename_needed(data: bytearray, renames: dict[str, str]) -> bool:
    """Rename, in place, the DT_NEEDED and DT_SONAME strings in ``renames`` (each to a name of the same length).

    The strings are changed in the dynamic string table itself; a name the linker shares with the
    tail of another string there (a symbol name ending in it) is left alone and False is returned,
    as for a file that is not ELF.
    """
    info = dynamic(data)
    if info is None:
        return not renames
    start, size = info.strtab
    refs = set(info.string_refs) | set(symbol_name_offsets(data))
    done = True
    for old, new in renames.items():
        assert len(old) == len(new)
        string = old.encode() + b"\0"
        wanted = [r for r in info.string_refs if bytes(data[start + r:start + r + len(string)]) == string]
        if not wanted:
            done = False
            continue
        for at in wanted:
            if any(at < r < at + len(old) for r in refs):
                done = False
                continue
            data[start + at:start + at + len(old)] = new.encode()
    return done
