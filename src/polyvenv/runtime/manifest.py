"""The JSON manifest beside each built env: what the runtime needs, without TOML or the build half.

The builder writes it last (it is also the build's completion stamp), so a
manifest that reads back whole means a complete env.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MANIFEST = "polyvenv.json"
MANIFEST_FORMAT = 1


def read_manifest(env_dir: Path) -> dict[str, Any] | None:
    """The manifest of a complete build, else None (missing, torn, or from another format)."""
    try:
        data = json.loads((env_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT or not data.get("spec_hash"):
        return None
    return data
