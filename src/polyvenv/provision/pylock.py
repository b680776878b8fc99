"""PEP 751 lock files (``pylock.<env>.toml``), written by ``uv pip compile --format pylock.toml``.

polyvenv installs a pylock.toml as the exact pins and sha256 hashes it
records, in hashed-requirements form, with hash checking on: the same way,
from the same sources (index, wheelhouse, offline), with either installer,
as a requirements lock. Not by handing the file to the installer, because
uv (0.13) installs a pylock.toml only as a preview feature and fetches the
URLs it records, ignoring ``--find-links``: offline from a wheelhouse it
fails; and pip cannot install one at all.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import BuildError

SUFFIX = ".toml"


def is_pylock(lock: Path) -> bool:
    return lock.name.startswith("pylock.") and lock.suffix == SUFFIX


def as_requirements(lock: Path, scratch: Path) -> Path:
    """``lock`` as a hashed requirements file in ``scratch`` (``lock`` itself if it is one)."""
    if not is_pylock(lock):
        return lock
    try:
        import tomllib
    except ImportError:  # Python < 3.11: the build half depends on tomli there
        import tomli as tomllib  # type: ignore[no-redef]

    try:
        data = tomllib.loads(lock.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise BuildError(f"lock file {lock} cannot be read as TOML ({e}): run `polyvenv lock` again") from None
    lines = []
    for package in data.get("packages", []):
        name, version = package.get("name"), package.get("version")
        artifacts = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
        hashes = sorted({a["hashes"]["sha256"] for a in artifacts if "sha256" in a.get("hashes", {})})
        if not version or not hashes:
            raise BuildError(f"lock file {lock}: package {name!r} has no version or no sha256-hashed artifact "
                             "(a VCS, directory or archive source): polyvenv installs only pinned, hashed "
                             "distributions from a pylock.toml; use `lock-format = \"requirements\"`")
        marker = f" ; {package['marker']}" if package.get("marker") else ""
        lines.append(f"{name}=={version}{marker} \\\n" + " \\\n".join(f"    --hash=sha256:{h}" for h in hashes))
    copy = scratch / f"{lock.stem}.txt"
    copy.write_text("\n".join(lines) + "\n")
    return copy
