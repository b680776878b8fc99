"""A C entry point that calls a Python function, and the method descriptors pointed at one.

A compiled type's method runs C code that a Python wrapper cannot sit in front of without changing
the method's identity, and C code compares identities (numpy caches ``ndarray.__array_ufunc__`` to
tell its own arrays from overrides). The descriptor object stays; only what it calls changes: a
method descriptor's ``d_method`` is pointed at a copy of its ``PyMethodDef`` whose function is a
trampoline, a slot wrapper's ``d_wrapped`` at one. The trampoline is eight instructions of x86-64
(System V) machine code in an executable page, a tail call of
``PyObject_CallFunctionObjArgs(guard, self, args, kwds)``: the guard runs with the GIL held, as the C
function did, and an exception it raises propagates as the C function's would (a ctypes callback
would swallow it). Nothing of the extension's files or its mapped memory is written. Where this
cannot be done (another CPU or ABI, a free-threaded build, no executable page), ``available()`` is
False and the caller leaves the type as it is.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable

Guard = Callable[..., Any]
_KEEP: list[Any] = []  # guards, method definitions and pages: alive as long as the process (types never unload)
_PAGE: list[Any] = []  # [mmap, used]
_LOCK = threading.Lock()
_DESCR_COMMON = 5 * 8  # PyObject_HEAD, d_type, d_name, d_qualname: where d_method / d_base start
_SIZE = 4096


def available() -> bool:
    """Whether trampolines can be made here: CPython with the GIL, 64-bit x86 with the System V ABI."""
    import platform
    import sysconfig

    return (sys.implementation.name == "cpython" and sys.maxsize > 2**32 and sys.platform != "win32"
            and platform.machine().lower() in ("x86_64", "amd64")
            and not sysconfig.get_config_var("Py_GIL_DISABLED"))


def _trampoline(guard: Guard) -> int:
    """The address of C code ``PyObject *f(PyObject *self, PyObject *args, PyObject *kwds)`` that returns
    ``guard(self, args)``, or ``guard(self, args, kwds)`` where ``kwds`` is not NULL."""
    import ctypes
    import mmap
    import struct

    call = ctypes.cast(ctypes.pythonapi.PyObject_CallFunctionObjArgs, ctypes.c_void_p).value
    code = (b"\x48\x89\xd1"  # mov rcx, rdx        kwds: the third argument, or the terminating NULL
            b"\x48\x89\xf2"  # mov rdx, rsi        args
            b"\x48\x89\xfe"  # mov rsi, rdi        self
            b"\x48\xbf" + struct.pack("<Q", id(guard))  # movabs rdi, guard
            + b"\x45\x31\xc0"  # xor r8d, r8d      the terminating NULL after kwds
            b"\x49\xbb" + struct.pack("<Q", call or 0)  # movabs r11, PyObject_CallFunctionObjArgs
            + b"\x31\xc0"  # xor eax, eax          a variadic call: no vector registers
            b"\x41\xff\xe3")  # jmp r11            a tail call: its return is ours
    with _LOCK:
        if not _PAGE or _PAGE[1] + len(code) > _SIZE:
            _PAGE[:] = [mmap.mmap(-1, _SIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC), 0]
            _KEEP.append(_PAGE[0])
        page, used = _PAGE
        page[used:used + len(code)] = code
        _PAGE[1] = used + len(code)
        _KEEP.append(guard)
        return ctypes.addressof(ctypes.c_char.from_buffer(page, used))


def guard_method(owner: type, name: str, make: Callable[[Any], Guard]) -> bool:
    """Point ``owner.name`` (a method descriptor) at ``make(original)``, where ``original`` is a descriptor
    of the C function it had; False (nothing changed) if it is not one. A method called the fast way
    (``METH_FASTCALL``) or without keywords is called the classic way from then on: its descriptor's own
    entry point too."""
    import ctypes

    descr = owner.__dict__.get(name)
    if type(descr).__name__ != "method_descriptor":
        return False

    class MethodDef(ctypes.Structure):
        _fields_ = [("ml_name", ctypes.c_char_p), ("ml_meth", ctypes.c_void_p), ("ml_flags", ctypes.c_int),
                    ("ml_doc", ctypes.c_char_p)]

    slot = ctypes.c_void_p.from_address(id(descr) + _DESCR_COMMON)
    theirs = MethodDef.from_address(slot.value or 0)
    classic = 0x3  # METH_VARARGS | METH_KEYWORDS; or METH_VARARGS alone, METH_FASTCALL | METH_KEYWORDS:
    if theirs.ml_name != name.encode() or theirs.ml_flags not in (classic, 0x1, 0x82):
        return False
    kept = MethodDef(theirs.ml_name, theirs.ml_meth, theirs.ml_flags, theirs.ml_doc)
    new_method = ctypes.pythonapi.PyDescr_NewMethod
    new_method.restype, new_method.argtypes = ctypes.py_object, [ctypes.py_object, ctypes.c_void_p]
    original = new_method(owner, ctypes.addressof(kept))
    ours = MethodDef(theirs.ml_name, _trampoline(make(original)), classic, theirs.ml_doc)
    _KEEP.extend((kept, ours))
    if theirs.ml_flags != classic:  # the descriptor's entry point of a classic method: a fresh one of ours has it
        like_ours = new_method(owner, ctypes.addressof(ours))
        entry = ctypes.c_void_p.from_address(id(descr) + _DESCR_COMMON + 8)
        entry.value = ctypes.c_void_p.from_address(id(like_ours) + _DESCR_COMMON + 8).value
    slot.value = ctypes.addressof(ours)
    return True


def guard_call(owner: type, guard: Guard) -> bool:
    """Point ``owner.__call__`` (the slot wrapper, what ``getattr(obj, "__call__")`` finds) at ``guard``;
    calling an instance goes on straight to the type's C function, unguarded and as fast as before."""
    import ctypes

    descr = owner.__dict__.get("__call__")
    if type(descr).__name__ != "wrapper_descriptor":
        return False
    ctypes.c_void_p.from_address(id(descr) + _DESCR_COMMON + 8).value = _trampoline(guard)
    return True
