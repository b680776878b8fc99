"""The byte-level patching of compiled files, so an env's extension modules load under its aliases.

``relocate`` makes the patched copy of an extension (cached per env and file);
``binpatch`` rewrites its module names in place, byte for byte, helped by
``elfsplit`` (strings the linker merged) and ``codetable`` (Cython 3.2's
string tables built on the stack); ``libraries`` gives each env its own copies
of the shared libraries a package ships in its tree, ``registries`` its own
pybind11/nanobind type registries, and ``preload`` refuses, before loading,
what the dynamic loader would still share by name (``elf`` reads what it needs,
``remembered`` keeps what it read of each file across processes);
``globalstate`` tells when an extension's initialisation changed what one
process has once.
"""
