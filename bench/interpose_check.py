"""Feasibility check of the interposition direction (issue 11): map module names when C code uses them.

Run from the repository root:

    .venv/bin/python bench/interpose_check.py

It compiles the hermetic package of tests/test_precision.py (``cprec._core`` imports ``cprec`` at init and
``cprec.helpers`` at run time), loads the file with ``ctypes`` (dlopen, no init yet), points its GOT slot
of ``PyImport_ImportModule`` at a ctypes callback that maps ``cprec`` to a stand-in package ``cprec_env``
and calls the real function, then lets CPython initialise the module (dlopen hands back the same handle).
It prints what the callback saw, whether the module's imports were mapped, what interposition cannot
reach (the type's ``tp_name``, the module's ``m_name``: read by CPython from the file, never passed through
a call), and what one mapped import costs against the plain one. Nothing is asserted: it is a measurement.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import mmap
import os
import sys
import tempfile
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from polyvenv.runtime.native.elfrefs import ElfReferences  # noqa: E402
from test_precision import precision_files  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files, _ = precision_files(sys.executable, "1.0")
        for relative, data in files.items():
            path = Path(tmp, relative.replace("cprec/", "cprec_env/") if not relative.endswith(".so") else relative)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data if isinstance(data, bytes) else data.encode())
        # the stand-in the env's copy should bind: cprec_env (its Python half), never a module named cprec
        (Path(tmp) / "cprec_env" / "__init__.py").write_text("VERSION = 'env'\n")
        sys.path.insert(0, tmp)
        [so] = Path(tmp, "cprec").glob("_core*.so")
        refs = ElfReferences(so.read_bytes())
        slots = {name: vaddr for vaddr, name in refs.got.items()}
        print(f"GOT slots of {so.name}: {len(slots)}; PyImport_ImportModule at {slots['PyImport_ImportModule']:#x}")

        handle = ctypes.CDLL(str(so), mode=os.RTLD_NOW | os.RTLD_LOCAL)
        base = _load_base(str(so))
        slot = ctypes.c_void_p.from_address(base + slots["PyImport_ImportModule"])
        real = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p)(slot.value)
        seen: list[str] = []

        @ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p)
        def mapped_import(name: bytes) -> int | None:
            seen.append(name.decode())
            top, dot, rest = name.partition(b".")
            return real(b"cprec_env" + dot + rest if top == b"cprec" else name)

        page = (base + slots["PyImport_ImportModule"]) & ~(mmap.PAGESIZE - 1)
        protection = _protection(page)
        libc = ctypes.CDLL(None)
        if libc.mprotect(ctypes.c_void_p(page), mmap.PAGESIZE, 3) != 0:  # PROT_READ | PROT_WRITE (RELRO)
            raise OSError(ctypes.get_errno(), "mprotect")
        slot.value = ctypes.cast(mapped_import, ctypes.c_void_p).value
        libc.mprotect(ctypes.c_void_p(page), mmap.PAGESIZE, protection)  # as it was (the page may hold .data)

        spec = importlib.machinery.ModuleSpec("cprec_env._core", importlib.machinery.ExtensionFileLoader(
            "cprec_env._core", str(so)), origin=str(so))
        module = importlib.util.module_from_spec(spec)  # type: ignore[attr-defined]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        (Path(tmp) / "cprec_env" / "helpers.py").write_text("VERSION = 'helpers-env'\n")
        at_init = list(seen)
        print("names the callback saw at init:", at_init, "| lazy import:", module.lazy_version(),
              "| then:", seen[len(at_init):])
        print("module named cprec in sys.modules:", "cprec" in sys.modules,
              "| tp_name (interposition cannot map it):", module.Node.__module__,
              "| m_name:", module.__name__)
        plain = timeit.timeit(lambda: real(b"cprec_env.helpers"), number=20000) / 20000
        hooked = timeit.timeit(lambda: mapped_import(b"cprec.helpers"), number=20000) / 20000
        print(f"one import through the callback {hooked * 1e6:.2f} us, plain {plain * 1e6:.2f} us "
              f"({hooked / plain:.1f}x)")
        assert handle  # the library stays loaded while the module lives


def _protection(address: int) -> int:
    for line in open("/proc/self/maps"):
        start, end = (int(x, 16) for x in line.split()[0].split("-"))
        if start <= address < end:
            perms = line.split()[1]
            return (perms[0] == "r") | (perms[1] == "w") << 1 | (perms[2] == "x") << 2
    raise LookupError(hex(address))


def _load_base(path: str) -> int:
    for line in open("/proc/self/maps"):
        fields = line.split()
        if fields[-1] == path and int(fields[2], 16) == 0:
            return int(fields[0].split("-")[0], 16)
    raise LookupError(path)


if __name__ == "__main__":
    main()
