"""A cache of facts learnt by running a program (its version), keyed by its file's identity.

Starting an interpreter or uv to ask its version costs 10-20 ms; a no-op
`sync` must start nothing. An entry is valid while the file's inode, size
and mtime are unchanged, so an upgraded interpreter is probed afresh.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ..runtime.files import file_identity
from ..runtime.locations import write_cache_file


class ProbeCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, Any] | None = None
        self._dirty = False

    def get(self, program: str, probe: Callable[[str], dict[str, Any]], needs: tuple[str, ...] = ()) -> dict[str, Any]:
        """``probe(program)``, or the remembered answer for the same unchanged file (if it has every fact
        ``needs`` names: one remembered by an older polyvenv may lack some)."""
        entries = self._load()
        key = list(file_identity(program) or ())  # JSON's form
        cached = entries.get(program)
        if cached and cached["identity"] == key and all(k in cached["facts"] for k in needs):
            return cached["facts"]
        facts = probe(program)
        entries[program] = {"identity": key, "facts": facts}
        self._dirty = True
        return facts

    def save(self) -> None:
        if not self._dirty or self._entries is None:
            return
        if write_cache_file(self.path, json.dumps(self._entries, indent=1).encode()):
            self._dirty = False

    def _load(self) -> dict[str, Any]:
        if self._entries is None:
            try:
                self._entries = json.loads(self.path.read_text())
            except (OSError, ValueError):
                self._entries = {}
        return self._entries
