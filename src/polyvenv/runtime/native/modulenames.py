"""Which strings of a compiled extension name a module: the selection the byte patch renames.

A string equal to a module name is not always one (research/renaming.md,
issue 11): a method or class attribute named like its package (``pkg.pkg``),
a registry key ``"pkg.sub.TypeName"``, an alias that the package's Python
half strips of its literal prefix ``"numpy.dtypes."``, a docstring, or bytes
of machine code. Renamed, each breaks the package, silently or not. So a
string is renamed only where it names a module by structure:

- it is a whole NUL-terminated string outside the executable segments (not
  prose around it, not code), written as dotted identifiers;
- it is a module the env has (``numpy``, ``numpy._core._multiarray_umath``):
  the arguments of import calls and ``PyModuleDef.m_name`` look like that.
  Where the same bytes are also a method's or getset's name, or the
  attribute argument of ``PyObject_GetAttrString`` and friends (the linker
  keeps one ``"pkg\\0"`` for both), the module users get a renamed copy of
  their own and the attribute keeps its bytes (elfsplit.py);
- or it is ``module.Name`` used as a module's ``m_name`` (a module the C code makes under a module of
  the env, numpy's ``_simd.AVX2``), or as a type's name (``tp_name``,
  ``PyType_Spec.name``, a spec built on the stack for ``PyType_FromSpec``,
  ``PyErr_NewException``): ``__module__`` and pickle
  follow it, so it must carry the alias; or a capsule name
  (``"numpy.core.multiarray._ARRAY_API"``: passed to ``PyCapsule_*``, or by
  convention ending in ``API``), which provider and user must agree on;
- or it is ``pkg.`` alone where names under ``pkg.`` are renamed: the prefix
  C code checks or strips its own type names with (cffi's
  ``"_cffi_backend."``), which must agree with them.

Everything else keeps its bytes. The users are read from the file
(elfrefs.py; on macOS and Windows only the data pointers, imagerefs.py); where
they cannot be, only the spelling decides, as before, but still never prose, code or ``module.Name``.
Names shorter than ``SHORT`` are renamed only with proof from a user, and
names neither the extension's own distribution nor its declared dependencies
provide (``importable_names``) also need that proof: an unrelated
distribution's two-letter name is no business of this file.
"""

from __future__ import annotations

import os
import re
from typing import Callable, Iterator, NamedTuple

from .imagerefs import references
from .sections import sections

SHORT = 4  # names shorter than this are renamed only where a user proves a module position

IMPORT, TYPE, MODULE_DEF, ATTRIBUTE, OTHER = "import", "type", "module definition", "attribute", "other"
_PROOF = {IMPORT, TYPE, MODULE_DEF}

# (function, argument index) -> what a string passed there is
_CALLS = {
    **{(f, 0): IMPORT for f in ("PyImport_ImportModule", "PyImport_ImportModuleNoBlock", "PyImport_ImportModuleLevel",
                                "PyImport_AddModule", "PyImport_AddModuleRef", "PyCapsule_Import")},
    **{(f, 1): IMPORT for f in ("PyCapsule_New", "PyCapsule_GetPointer", "PyCapsule_IsValid", "PyCapsule_SetName")},
    **{(f, 0): TYPE for f in ("PyErr_NewException", "PyErr_NewExceptionWithDoc")},
    **{(f, 1): ATTRIBUTE for f in (
        "PyObject_GetAttrString", "PyObject_SetAttrString", "PyObject_HasAttrString", "PyObject_DelAttrString",
        "PyObject_HasAttrStringWithError", "PyObject_GetOptionalAttrString", "PyModule_AddObject",
        "PyModule_AddObjectRef", "PyModule_Add", "PyModule_AddIntConstant", "PyModule_AddStringConstant",
        "PyModule_AddType", "PyObject_CallMethod")},
}  # not PyDict_*ItemString: Cython puts its module in sys.modules with PyDict_SetItemString(modules, "pkg._x")
# a PyType_Spec built on the stack just before one of these is passed (Rust: orjson's Fragment): whichever
# register carries the string there, it is the spec's name (its other fields are numbers and a slots array)
_SPEC_CALLS = {"PyType_FromSpec", "PyType_FromSpecWithBases", "PyType_FromModuleAndSpec", "PyType_FromMetaclass"}
# dotted identifiers; the first may start with a digit: mypyc's shared library is <hash>__mypyc
_DOTTED = re.compile(rb"[A-Za-z0-9_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_LONGEST = 256  # module and type names are shorter than this


class Candidate(NamedTuple):
    """A string at ``offset`` spelled like a module name, what its users make of it, and the verdict."""

    offset: int
    text: str
    whole: bool                  # starts a string of its own (not the tail of a longer one)
    uses: dict[int, str]         # user place (file offset of a pointer or a lea's disp32) -> kind
    verdict: str                 # "rename", "split" (only the module users move), or "keep"
    reason: str


class Selection:
    """The module-name strings of one extension file, for ``names`` (real top-level name -> alias).

    ``is_module(dotted)`` says whether the env has that module; ``allowed`` are the top-level names the
    extension's distribution and its declared dependencies provide (None: unknown, all of ``names``).
    """

    def __init__(self, data: bytes, names: dict[str, str], is_module: Callable[[str], bool],
                 allowed: set[str] | None = None) -> None:
        self.data = data
        self.names = names
        self.is_module = is_module
        self.allowed = allowed
        self.refs = references(data)
        self.sections = sections(data)
        self._data_starts = {section.offset for section in self.sections if not section.code}

    def in_code(self, offset: int) -> bool:
        """Whether ``offset`` is in machine code: by the file's sections (any platform), else its segments."""
        if self.sections:
            return any(s.code and s.offset <= offset < s.offset + s.size for s in self.sections)
        return self.refs.ok and self.refs.in_code(offset)

    # -- one string, by its spelling ----------------------------------------------------------

    def meaning(self, text: str) -> tuple[str, str] | None:
        """("module", top) or ("name", top) for ``module.Name``, or None: the spelling's possible meaning."""
        top = text.partition(".")[0]
        if top not in self.names:
            return None
        if text == top or self.is_module(text):
            return "module", top
        parent = text.rpartition(".")[0]
        if parent and (parent == top or self.is_module(parent)):
            return "name", top
        return None

    def string(self, raw: bytes) -> bytes:
        """A string with no users to read (a Cython table's): its alias where the spelling alone suffices."""
        if not _DOTTED.match(raw) or len(raw) > _LONGEST:
            return raw
        text = raw.decode("ascii")
        meaning = self.meaning(text)
        if meaning is None or not self._spelling_suffices(*meaning, text):
            return raw
        return self._alias(raw)

    def _spelling_suffices(self, kind: str, top: str, text: str) -> bool:
        if len(top) < SHORT or (self.allowed is not None and top not in self.allowed):
            return False
        return kind == "module" or text.rpartition(".")[2].endswith("API")  # capsule names, by convention

    def _alias(self, raw: bytes) -> bytes:
        top, dot, rest = raw.partition(b".")
        return self.names[top.decode()].encode() + dot + rest

    # -- every C string of the file, with its users ----------------------------------------------

    def candidates(self) -> Iterator[Candidate]:
        if not self.names:
            return
        alternatives = b"|".join(re.escape(n.encode()) for n in sorted(self.names, key=len, reverse=True))
        for match in re.finditer(rb"(?:" + alternatives + rb")(?=[.\x00])", self.data):
            start = match.start()
            whole = start == 0 or self.data[start - 1] == 0 or start in self._data_starts
            if not whole and not self.refs.ok:
                continue  # inside a longer string, which only a pointer to its tail makes a string of its own
            end = self.data.find(b"\x00", start, start + _LONGEST)
            raw = self.data[start:end] if end > 0 else b""
            if not _DOTTED.match(raw) or self.in_code(start):
                continue  # prose, a path, or bytes of machine code
            text = raw.decode("ascii")
            meaning = self.meaning(text)
            if meaning is None:
                continue
            uses = self._uses(start, len(raw))
            verdict, reason = self._verdict(*meaning, text, whole, uses)
            yield Candidate(start, text, whole, uses, verdict, reason)

    def _uses(self, offset: int, length: int) -> dict[int, str]:
        refs = self.refs
        vaddr = refs.vaddr(offset) if refs.ok else None
        if vaddr is None:
            return {}
        uses = {place: self._data_use(place, length) for place in refs.pointers.get(vaddr, ())}
        for load in refs.loads.get(vaddr, ()):
            callee = refs.callee_after(load.at)
            uses[load.at] = TYPE if callee in _SPEC_CALLS else _CALLS.get(
                (callee or "", load.argument if load.argument is not None else -1), OTHER)
        return uses

    def _data_use(self, place: int, length: int) -> str:
        """What the structure around a pointer to the string makes of it."""
        d, places, refs = self.data, self.refs.pointer_places, self.refs

        def q(at: int) -> int:
            return int.from_bytes(d[at:at + 8], "little") if 0 <= at <= len(d) - 8 else -1

        def i(at: int) -> int:
            return int.from_bytes(d[at:at + 4], "little") if 0 <= at <= len(d) - 4 else -1

        if place + 8 in places:  # {name, function, ...}: PyMethodDef, PyGetSetDef
            target = places[place + 8]
            return ATTRIBUTE if target is not None and refs.executable_vaddr(target) else OTHER
        # PyTypeObject: {refcnt, type, size, tp_name, basicsize, itemsize, ...}
        if (place >= 24 and 0 <= q(place - 24) < 1 << 34 and q(place - 8) == 0 and 0 < q(place + 8) < 1 << 24
                and 0 <= q(place + 16) < 1 << 16 and (q(place - 16) == 0 or place - 16 in places)):
            return TYPE
        # PyModuleDef: {refcnt, type, m_init, m_index, m_copy, m_name, m_doc, m_size, ...}; the count is no
        # pointer (upb's PyType_Specs follow a pointer and four zero words, and would pass for one)
        if (place >= 40 and 0 < q(place - 40) < 1 << 34 and place - 40 not in places
                and not any(q(place - k) for k in (32, 24, 16, 8))
                and not any(place - k in places for k in (32, 24, 16, 8)) and -1 <= _signed(q(place + 16)) < 1 << 20):
            return MODULE_DEF
        # PyType_Spec: {name, int basicsize, int itemsize, unsigned flags, slots}
        if (0 <= i(place + 8) < 1 << 24 and 0 <= i(place + 12) < 1 << 16 and i(place + 20) == 0
                and place + 24 in places and q(place + 8) != length + 1):
            return TYPE
        return OTHER

    def _verdict(self, kind: str, top: str, text: str, whole: bool, uses: dict[int, str]) -> tuple[str, str]:
        kinds = set(uses.values())
        proof = kinds & ({IMPORT, MODULE_DEF} if kind == "module" else {TYPE, IMPORT, MODULE_DEF})
        if not proof:
            if not whole and not uses:
                return "keep", "inside a longer string, and no pointer to it of its own"
            if len(top) < SHORT:
                return "keep", f"a name shorter than {SHORT} characters, with no module user"
            if self.allowed is not None and top not in self.allowed:
                return "keep", "a name the extension's distribution neither provides nor depends on"
            if kind == "name" and not text.rpartition(".")[2].endswith("API"):
                return "keep", "module.Name that is no type's or capsule's name: data"
            if uses and kinds <= {ATTRIBUTE}:
                return "keep", "an attribute's name"
        movers = {place for place, use in uses.items() if use != ATTRIBUTE}
        if not whole or (ATTRIBUTE in kinds and movers):
            return "split", "module users get a renamed copy, the rest keep the bytes"
        return "rename", ", ".join(sorted(proof)) or "spelled as a module name"

    # -- what the patch does ---------------------------------------------------------------------

    def patches(self) -> tuple[dict[int, bytes], dict[int, tuple[bytes, set[int]]]]:
        """In-place renames (offset -> alias bytes) and splits (offset -> (alias + NUL, places to move))."""
        in_place: dict[int, bytes] = {}
        splits: dict[int, tuple[bytes, set[int]]] = {}
        dotted: set[str] = set()  # tops whose dotted names (types, submodules) are renamed
        for c in self.candidates():
            alias = self._alias(c.text.encode())
            if c.verdict == "rename":
                in_place[c.offset] = alias
            elif c.verdict == "split":
                splits[c.offset] = (alias + b"\x00", {p for p, use in c.uses.items() if use != ATTRIBUTE})
            if c.verdict != "keep" and "." in c.text:
                dotted.add(c.text.partition(".")[0])
        for top in dotted:  # "pkg." alone: the prefix the C code checks or strips those names with (cffi)
            for match in re.finditer(re.escape(b"\x00" + top.encode() + b".\x00"), self.data):
                if not self.in_code(match.start() + 1):
                    in_place.setdefault(match.start() + 1, self.names[top].encode())
        return in_place, splits


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def importable_names(root: str, path: str, names: set[str]) -> set[str] | None:
    """Of ``names``, those provided by the distribution installing ``path`` (in site-packages ``root``), its
    declared dependencies (every ``Requires-Dist``, extras included) and the distributions that depend on
    it; None if no record says which distribution installed ``path``."""
    from pathlib import Path

    from ..sitedir import normalize

    relative = os.path.relpath(path, root).replace(os.sep, "/")
    provides: dict[str, set[str]] = {}
    requires: dict[str, set[str]] = {}
    owner = None
    for info in Path(root).glob("*.dist-info"):
        dist = normalize(info.name[:-len(".dist-info")].partition("-")[0])
        try:
            record = (info / "RECORD").read_text(encoding="utf-8").splitlines()
            metadata = (info / "METADATA").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        files = [line.rsplit(",", 2)[0] for line in record if line]
        provides[dist] = {f.split("/", 1)[0].split(".", 1)[0] for f in files} & names
        requires[dist] = {normalize(re.split(r"[\s;<>=!~\[(]", line[len("Requires-Dist:"):].strip(), maxsplit=1)[0])
                          for line in metadata.splitlines() if line.startswith("Requires-Dist:")}
        if relative in files:
            owner = dist
    if owner is None:
        return None

    def closure(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            dist = todo.pop()
            if dist not in seen:
                seen.add(dist)
                todo += requires.get(dist, ())
        return seen

    # its dependencies, and what depends on it (pydantic-core reads pydantic's __version__ at run time)
    related = closure(owner) | {dist for dist in requires if owner in closure(dist)}
    return set().union(*(provides.get(d, set()) for d in related))
