"""The type registries of C++ binding libraries, each env's its own.

pybind11 and nanobind keep one registry of bound C++ types per interpreter, in its
state dict, under a key compiled into every extension built with them: pybind11's
``__pybind11_internals_v<N>_<abi>__`` (and ``__pybind11_module_local_v…``,
``__pybind11_module_cache``, ``…_call_once_storage__`` beside it), nanobind's format
``__nb_internals_%s_%s__``. Every extension built with a compatible version joins that
registry, so a second copy of one (an env's, beside the host's or another env's)
registers its types a second time: pybind11 raises ``type "X" is already registered!``,
nanobind aborts the process. SWIG keeps its table of wrapped types in a module of its
own, ``sys.modules["swig_runtime_data5"]``: the second copy's proxy classes replace the
first's, so the host's own SWIG module silently returns the env's classes.

A relocated copy has those keys with the env's own prefix of the same length
(``__pybind11_`` -> ``__pv3f9c2a_``; ``swig_runtime_data5`` -> ``pv3f9c2a1b0d_data5``, in
the type names SWIG compares too): the env's extensions share one registry among
themselves, as in a plain venv (a type bound by one module is cast by another), and
none with the host or another env. pybind11's platform ABI id, which its
``_pybind11_conduit_v1_`` compares before handing another module a raw pointer to an
object of a type it does not know, gets the env's mark too, so one copy's objects
are not taken for another's.
"""

from __future__ import annotations

import re

_PYBIND11 = re.compile(rb"__pybind11_(?=internals|modul)")  # "modul": a key's first 16 bytes, as code copies them
_PYBIND11_KEY = re.compile(rb"\x00__pybind11_internals_v[0-9]+_([A-Za-z0-9_]+?)__\x00")
_NANOBIND = re.compile(rb"__nb_internals_")
_SWIG = re.compile(rb"(?<![A-Za-z0-9_])swig_runtime(?=_data[0-9])")  # "swig_runtime_data5", and its types' names


def private_registries(data: bytes, tag: str) -> bytes:
    """``data`` (an extension, or a library it needs) with its binding registries' keys marked with ``tag``
    (hex digits; the same for every file of one env)."""
    if b"pybind11" not in data and b"__nb_internals_" not in data and b"swig_runtime_data" not in data:
        return data
    data = _SWIG.sub(b"pv" + tag[:10].encode(), data)
    abi_ids = {m.group(1) for m in _PYBIND11_KEY.finditer(data)}
    data = _PYBIND11.sub(b"__pv" + tag[:6].encode() + b"_", data)
    data = _NANOBIND.sub(b"__pv" + tag[:10].encode() + b"_", data)
    mark = b"pv" + tag[:6].encode()
    for abi in abi_ids:  # the conduit's id: the key's middle, or the longest suffix of it that stands alone
        for start in [0] + [i + 1 for i, c in enumerate(abi) if c == ord("_")]:
            standalone = re.compile(rb"(?<=\x00)(_?)" + re.escape(abi[start:]) + rb"(?=\x00)")  # pybind11 2: "_gcc…"
            if len(abi) - start > 8 and standalone.search(data):
                data = standalone.sub(lambda m: m.group(1) + mark + abi[start + 8:], data)
                break
    return data

