"""Per-thread state each env's copy of an extension keeps to itself: ``PyThreadState_GetDict()``.

C code keeps per-thread objects in the thread's state dict, under fixed keys: lxml its parser
context and error log (keyed by class names, ``"_ParserDictionaryContext"``), older numpy its
error state, greenlet its current greenlet. A relocated copy, beside the host's copy or another
env's, reads and writes the same keys in the same dict, so whichever copy runs second in a thread
gets the first one's object: the host's lxml then fails a plain parse (``TypeError: Cannot convert
lXml.etree._ParserDictionaryContext to lxml.etree._ParserDictionaryContext``).

The copy's slot of ``PyThreadState_GetDict`` in its global offset table (where its calls to
the function go, read from its relocations by elfrefs.py) is pointed, after ``dlopen`` and before
its module is initialised, at a function returning the env's own dict for the thread: a
``threading.local``'s, one per env copy tree, shared by every extension of the env, as a venv's
extensions share the thread's dict, and gone with the thread as the real one is. No compiler is
needed (a ctypes callback); the host's files and its own copies are untouched. A copy this
cannot be done for (not ELF on Linux, no ctypes) is refused with the way out.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from ...errors import ExtensionNotSupported
from .elf import Buffer

SYMBOL = "PyThreadState_GetDict"
_RTLD_DI_LINKMAP = 2
_PAGE = 4096
_REDIRECTS: dict[str, Any] = {}  # copy tree -> its callback, kept alive as long as the process (copies never unload)
_LOCK = threading.Lock()


def calls_thread_dict(data: Buffer) -> bool:
    """Whether the object imports ``PyThreadState_GetDict`` (its name in its dynamic string table)."""
    from .elf import dynamic

    info = dynamic(data)
    if info is None:
        return False
    start, size = info.strtab
    return SYMBOL.encode() + b"\x00" in bytes(data[start:start + size])


def own_thread_state(files: list[str], original: str, tree: str, env: str) -> None:
    """Before the env's relocated copy of the extension ``original`` is initialised: if it, or one of its
    libraries' copies it loads (``files``: the copy first), calls ``PyThreadState_GetDict``, load it and
    point those calls at the dict of the env copy tree ``tree``."""
    for path in files:
        reason, slots = _slots(path)
        if not slots and reason is None:
            continue
        try:
            if reason is not None:
                raise OSError(reason)
            with _LOCK:
                _redirect(files[0], path, slots, _callback(tree))
        except (OSError, ImportError, AttributeError, ValueError) as failed:
            which = "" if path == files[0] else f" (through its library {os.path.basename(path)})"
            raise ExtensionNotSupported(
                f"env {env!r}: {original} keeps per-thread state under fixed keys{which} (it calls {SYMBOL}), "
                f"which polyvenv could not make the env's own ({failed}): the host's copy and the env's would "
                "take each other's objects; give this env isolation = \"process\"", path=original) from failed


def read_ahead(files: list[str]) -> None:
    """Read what ``own_thread_state`` asks of ``files`` now (sync's warm-up, runtime/warmup.py): a load
    then reads it from the cache (remembered.py)."""
    for path in files:
        _slots(path)


def _slots(path: str) -> tuple[str | None, list[int]]:
    """The GOT slots of ``PyThreadState_GetDict`` in the file (none if it does not call it), or why they
    cannot be redirected (read once per file, remembered.py)."""
    from .remembered import remembered

    reason, slots = remembered("thread dict slots 1", path, lambda: _read_slots(path))
    return reason, list(slots)


def _read_slots(path: str) -> tuple[str | None, list[int]]:
    import mmap

    from .elf import is_elf64
    from .elfrefs import ElfReferences

    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:  # a few pages read
        if not is_elf64(data):  # Mach-O, PE: their import tables are not read yet
            named = data.find(SYMBOL.encode() + b"\x00") >= 0
            return ("its calls are redirected only in ELF files on Linux" if named else None), []
        if not calls_thread_dict(data):
            return None, []
        slots = ElfReferences(data).got_slots(SYMBOL)  # []: a longer name ending in it (_PyThreadState_GetDict)
    if slots is None:
        return "it is named outside its global offset table", []
    if slots and not sys.platform.startswith("linux"):
        return "its calls are redirected only on Linux", []
    return None, slots


def _callback(tree: str) -> Any:
    """The env copy tree's ``PyThreadState_GetDict``: a borrowed reference to its own dict for the thread."""
    callback = _REDIRECTS.get(tree)
    if callback is None:
        import ctypes

        local = threading.local()
        callback = _REDIRECTS[tree] = ctypes.CFUNCTYPE(ctypes.c_void_p)(lambda: id(local.__dict__))
    return callback


def _redirect(extension: str, path: str, slots: list[int], callback: Any) -> None:
    """``dlopen`` the ``extension`` copy as the import system will (it gets this same handle), which maps
    ``path`` (itself, or a library it needs), and write ``callback``'s address into ``path``'s GOT ``slots``
    (vaddrs), unless a former load of it did already."""
    import ctypes

    ctypes.CDLL(extension, mode=sys.getdlopenflags())
    base = _load_bias(ctypes.CDLL(path, mode=sys.getdlopenflags()))  # loaded: the same handle
    target = ctypes.cast(callback, ctypes.c_void_p).value
    libc = ctypes.CDLL(None, use_errno=True)
    for vaddr in slots:
        slot = ctypes.c_void_p.from_address(base + vaddr)
        if slot.value == target:
            continue
        page = (base + vaddr) & ~(_PAGE - 1)
        protection = _protection(page)
        if not protection & 2 and libc.mprotect(ctypes.c_void_p(page), _PAGE, protection | 2) != 0:  # RELRO
            raise OSError(ctypes.get_errno(), f"mprotect of its GOT: {os.strerror(ctypes.get_errno())}")
        slot.value = target
        if not protection & 2:
            libc.mprotect(ctypes.c_void_p(page), _PAGE, protection)


def _load_bias(handle: Any) -> int:
    """Where the loaded object's addresses start (``link_map.l_addr``, by ``dlinfo``)."""
    import ctypes

    try:
        dlinfo = ctypes.CDLL(None).dlinfo
    except AttributeError:  # glibc < 2.34 keeps it in libdl
        dlinfo = ctypes.CDLL("libdl.so.2").dlinfo
    link_map = ctypes.c_void_p()
    if dlinfo(ctypes.c_void_p(handle._handle), _RTLD_DI_LINKMAP, ctypes.byref(link_map)) != 0 or not link_map.value:
        raise OSError("dlinfo found no link map")
    return int(ctypes.c_size_t.from_address(link_map.value).value)


def _protection(address: int) -> int:
    """PROT_* bits of the mapping holding ``address``, as ``/proc/self/maps`` lists it."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            span, perms = line.split(None, 2)[:2]
            start, end = (int(x, 16) for x in span.split("-"))
            if start <= address < end:
                return (perms[0] == "r") | (perms[1] == "w") << 1 | (perms[2] == "x") << 2
    raise OSError(f"no mapping holds {address:#x}")
