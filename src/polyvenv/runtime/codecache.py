"""Compiled, rewritten code of env modules, cached on disk outside the env, for whichever aliases a load has.

The env's own files are never written to (its ``__pycache__`` belongs to
code compiled from the unrewritten source). An entry is keyed like a .pyc
by the source file's path, mtime and size, and the rewriter's version, so a
warm import reads one file and unmarshals it.

The code in an entry is rewritten with a placeholder for each alias
(namemap.py's ``placeholder``), and it records what each module name its
rewrite asked about meant (an env's own, a facade, a name the env lacks,
or the host's): a load whose names mean the same to that file gets the code
with its own aliases put in the constants and names of the code objects
that hold a placeholder. So the cache made at ``sync`` (warmup.py) is the
one the first start hits, and so are a reload's fresh aliases and a second
env's colliding ones. Code whose rewrite cannot use placeholders (its source
holds the mark character, or the compiler folded a mapped constant into
another) is cached for the exact name map, as before.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import re
import sys
from types import CodeType
from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple

from .locations import user_cache_dir, write_cache_file
from .namemap import MARK, MISSING

if TYPE_CHECKING:
    from .namemap import NameMap

# Bump when rewrite.py changes what it makes of the same source (cached code would be stale).
REWRITE_VERSION = 17
_VARIANTS = 4  # per file: the name meanings of different envs (or hosts) sharing one source file

# A variant: (check, marks, marshalled code). ``check`` is (the module's real dotted name, ((top,
# importing, meaning), ...)) for placeholder code, or the name map's digest for code of exact aliases;
# ``marks`` where the placeholders are: (indices in co_names, in co_varnames, in co_consts, {index in
# co_consts of a code object holding some: its marks}). A file: the length of its header (4 bytes),
# the header (each variant's check, marks and code length, marshalled), then each variant's code.
Marks = Tuple[Tuple[int, ...], Tuple[int, ...], Tuple[int, ...], dict]
Variant = Tuple[Any, Optional[Marks], Any]  # the code as bytes, or a view of the file read


class CodeCache:
    def __init__(self, directory: str | None = None) -> None:
        self.directory = os.path.join(directory or user_cache_dir(), "code", f"py{sys.hexversion:x}")
        self.rewritten = 0  # files this process rewrote and compiled (a debug counter: warmup's tests read it)

    def key(self, path: str, st: os.stat_result) -> str:
        text = f"{REWRITE_VERSION}\0{path}\0{st.st_mtime_ns}\0{st.st_size}"
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    def _path(self, key: str) -> str:
        return os.path.join(self.directory, key[:2], key)

    def _read(self, key: str) -> memoryview | None:
        try:
            with open(self._path(key), "rb", buffering=0) as f:  # unbuffered: no isatty, no tell
                return memoryview(f.read())  # one read: marshal.load(f) reads in many small calls
        except OSError:
            return None

    def get(self, key: str) -> list[Variant] | None:
        data = self._read(key)
        if data is None:
            return None
        try:
            size = int.from_bytes(data[:4], "little")
            at, variants = 4 + size, []
            for check, marks, length in marshal.loads(data[4:at]):
                variants.append((check, marks, data[at:at + length]))
                at += length
            return variants
        except (EOFError, ValueError, TypeError):
            return None

    def put(self, key: str, variants: list[Variant]) -> None:
        header = marshal.dumps(tuple((check, marks, len(code)) for check, marks, code in variants))
        data = b"".join([len(header).to_bytes(4, "little"), header, *(bytes(code) for _, _, code in variants)])
        write_cache_file(self._path(key), data)

    def code(self, names: NameMap, fullname: str, path: str, st: os.stat_result,
             source: Callable[[], bytes], loading: bool = True) -> CodeType:
        """The code of env module ``fullname`` (the file ``path``, whose stat is ``st``) as ``names``
        loads it: from the cache when its names mean the same there, else rewritten once (``source()``
        gives the file's bytes) and cached. ``loading``: for a load (not sync's warm-up), which keeps
        the code of a canonical name map as loaded too (``_exact``)."""
        key = self.key(path, st)
        top, dot, rest = fullname.partition(".")
        real = names.real.get(top)
        own = real + dot + rest if real and rest else None  # a dotted name only: a top-level one is also its
        exact = _exact(key, names, own) if loading and names.canonical else None  # functions' and attributes'
        if exact is not None:
            data = self._read(exact)
            if data is not None:
                try:
                    return marshal.loads(data)
                except (EOFError, ValueError, TypeError):
                    pass
        variants = self.get(key) or ()
        for check, marks, data in variants:
            if check == names.digest or (isinstance(check, tuple) and check[0] == own and all(
                    names.placeholder(t, importing) == meaning for t, importing, meaning in check[1])):
                try:
                    code = marshal.loads(data)
                except (EOFError, ValueError, TypeError):
                    break
                if not marks:
                    return code
                code = _aliased(code, marks, names.aliased)
                if exact is not None:
                    write_cache_file(self._path(exact), marshal.dumps(code))
                return code
        variant, code = _rewritten(names, path, source(), own)
        self.rewritten += 1
        self.put(key, [variant, *[v for v in variants if v[0] != variant[0]][:_VARIANTS - 1]])
        return code


def _exact(key: str, names: NameMap, own: str | None) -> str:
    """The key of the code of file ``key`` as ``names`` loads it, aliases in place (``<key>.<digest>``, beside
    the entry with placeholders it was made from). A canonical name map (every alias its seed's preferred
    one) has the same aliases in every process that can give them, so a host's next start reads its code
    as a plain .pyc is read: putting the aliases in the placeholders' place (``_aliased``) at every start
    was the largest cost a warm load had of its own (30 plugin envs' numpy and pandas code: 175 ms to
    read and make, 116 ms as loaded)."""
    return key + "." + hashlib.sha256(f"{names.digest}\0{own}".encode()).hexdigest()[:16]


def _rewritten(names: NameMap, path: str, source: bytes, own: str | None) -> tuple[Variant, CodeType]:
    """``source`` rewritten and compiled: the cache's variant (with placeholders where it can) and the
    code for ``names``."""
    import ast

    from .rewrite import rewrite

    asked: dict[tuple[str, bool], str | None] = {}

    def replace(top: str, importing: bool) -> str | None:
        meaning = asked.get((top, importing), "")
        if meaning == "":
            meaning = asked[top, importing] = names.placeholder(top, importing)
        return meaning

    tree = ast.parse(source, path)
    # the mark in the source's own strings (any encoding, any escape): they would read as placeholders
    if not _may_hold_mark(source) or not any(isinstance(n, ast.Constant) and isinstance(n.value, str)
                                             and MARK in n.value for n in ast.walk(tree)):
        code = compile(rewrite(tree, replace, own), path, "exec", dont_inherit=True)
        marks = _marks(code)
        reals = {MISSING} | {t for (t, _), m in asked.items() if m is not None}
        # a name starting "__" bound in a class body is mangled: its placeholder would be mangled otherwise
        if marks is None or _whole(code, reals) and not any(t.startswith("__") for t in reals):
            check = (own, tuple(sorted((t, i, m) for (t, i), m in asked.items())))
            variant = (check, marks, marshal.dumps(code))
            return variant, _aliased(code, marks, names.aliased) if marks else code
    code = compile(rewrite(ast.parse(source, path), names.replace, own), path, "exec", dont_inherit=True)
    return (names.digest, None, marshal.dumps(code)), code


def _may_hold_mark(source: bytes) -> bool:
    """Whether a string constant of ``source`` may hold MARK: only if its decoded text has the character, or
    an escape that can make it. A look at the text first, since a walk of every node of every tree was a
    fifth of rewriting a package."""
    from importlib.util import decode_source

    try:
        text = decode_source(source)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return True  # the walk decides
    return MARK in text or _MARK_ESCAPE.search(text) is not None


_MARK_ESCAPE = re.compile(r"\\(?:u[fF]{4}|U0000[fF]{4}|N\{)")  # \uffff, \U0000FFFF, and any named escape


def _strings(code: CodeType) -> list[str]:
    """The strings of ``code`` itself (not of the code objects among its constants)."""
    found = [*code.co_names, *code.co_varnames, *code.co_cellvars, *code.co_freevars]
    for const in code.co_consts:
        found += _strings_in(const)
    return found


def _strings_in(value: Any) -> list[str]:
    """The strings a constant is or holds (in tuples and frozensets)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (tuple, frozenset)):
        return [s for item in value for s in _strings_in(item)]
    return []


def _marks(code: CodeType) -> Marks | None:
    """Where the tree ``code`` holds placeholders (None: nowhere)."""
    children = {}
    for index, const in enumerate(code.co_consts):
        if isinstance(const, CodeType):
            marks = _marks(const)
            if marks is not None:
                children[index] = marks
    names = tuple(i for i, name in enumerate(code.co_names) if MARK in name)
    varnames = tuple(i for i, name in enumerate(code.co_varnames) if MARK in name)
    consts = tuple(i for i, const in enumerate(code.co_consts)
                   if not isinstance(const, CodeType) and any(MARK in s for s in _strings_in(const)))
    return (names, varnames, consts, children) if names or varnames or consts or children else None


def _whole(code: CodeType, reals: set[str]) -> bool:
    """Every placeholder in the tree ``code`` is whole, one of ``reals`` (the compiler may fold a mapped
    constant into a slice of it, which no later replacement could mend)."""
    for s in _strings(code):
        parts = s.split(MARK)
        if len(parts) % 2 == 0 or not reals.issuperset(parts[1::2]):
            return False
    return all(_whole(c, reals) for c in code.co_consts if isinstance(c, CodeType))


def _aliased(code: CodeType, marks: Marks, aliased: Callable[[str], str]) -> CodeType:
    """``code`` with the placeholders where ``marks`` says replaced (``aliased``): only those strings and
    the code objects holding them are made again."""
    names, varnames, at, children = marks
    consts = list(code.co_consts)
    for index, child in children.items():
        consts[index] = _aliased(consts[index], child, aliased)
    for index in at:
        consts[index] = _value(consts[index], aliased)
    changes: dict[str, Any] = {"co_consts": tuple(consts)}
    if names:
        new = list(code.co_names)
        for index in names:
            new[index] = aliased(new[index])
        changes["co_names"] = tuple(new)
    if varnames:
        new = list(code.co_varnames)
        for index in varnames:
            new[index] = aliased(new[index])
        changes["co_varnames"] = tuple(new)
    return code.replace(**changes)


def _value(value: Any, aliased: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return aliased(value) if MARK in value else value
    if isinstance(value, tuple):
        return tuple(_value(item, aliased) for item in value)
    if isinstance(value, frozenset):
        return frozenset(_value(item, aliased) for item in value)
    return value


CODE_CACHE = CodeCache()
