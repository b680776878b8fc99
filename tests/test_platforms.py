"""The string finder on the other platforms' binaries: read, never run (DESIGN.md, "Other platforms").

The byte patch runs on Linux x86-64 here, but an extension's module names must
be found on every platform wheels ship for. These tests download the same
release's wheels for Linux x86-64 and aarch64, macOS arm64 and x86-64 and Windows x86-64
(`pip download --platform`, into the checkout's ignored .cache/), read each
extension file with the string finder (runtime/native/modulenames.py) and
compare what it would rename with what it finds in the Linux x86-64 wheel.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from polyvenv.runtime.native.modulenames import Selection

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "platform-wheels"
PLATFORMS = {
    "linux-x86_64": "manylinux_2_17_x86_64",
    "linux-aarch64": "manylinux_2_17_aarch64",
    "macos-arm64": "macosx_11_0_arm64",
    "macos-x86_64": "macosx_10_13_x86_64",
    "windows-x86_64": "win_amd64",
}
# (requirement, top-level name, the package's modules): a C extension, a Cython 3.0 one and a Cython one
# with types of its own
PACKAGES = {
    "markupsafe": ("markupsafe==3.0.2", "markupsafe", ("markupsafe", "markupsafe._speedups")),
    "msgpack": ("msgpack==1.1.0", "msgpack", ("msgpack", "msgpack._cmsgpack", "msgpack.exceptions", "msgpack.ext")),
    "pyyaml": ("pyyaml==6.0.2", "yaml", ("yaml", "yaml._yaml", "yaml.error", "yaml.nodes", "yaml.constructor")),
}


def _extensions(package: str, platform: str) -> dict[str, bytes]:
    """The extension files of the package's cp311 wheel for ``platform``, by their module name."""
    requirement, _, _ = PACKAGES[package]
    folder = CACHE / PLATFORMS[platform]
    wheels = [w for w in folder.glob("*.whl") if w.name.lower().startswith(requirement.split("==")[0].lower())]
    if not wheels:
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                               "--platform", PLATFORMS[platform], "--python-version", "3.11", "--implementation",
                               "cp", requirement, "-d", str(folder)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot download {requirement} for {platform}: {proc.stderr.strip().splitlines()[-1:]}")
        wheels = [w for w in folder.glob("*.whl") if w.name.lower().startswith(requirement.split("==")[0].lower())]
    found = {}
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name in wheel.namelist():
            if name.endswith((".so", ".pyd")):
                found[name.split(".", 1)[0].replace("/", ".")] = wheel.read(name)
    return found


def _renamed(package: str, platform: str) -> dict[str, set[str]]:
    """Per extension module: the strings the finder would rename (their text), read from ``platform``'s file."""
    _, top, modules = PACKAGES[package]
    names = {top: top[0].swapcase() + top[1:]}
    return {module: {c.text for c in Selection(data, names, lambda dotted: dotted in modules, {top}).candidates()
                     if c.verdict != "keep"}
            for module, data in _extensions(package, platform).items()}


@pytest.mark.parametrize("platform", [p for p in PLATFORMS if p != "linux-x86_64"])
@pytest.mark.parametrize("package", PACKAGES)
def test_the_module_names_are_found_on_every_platform(package, platform):
    """Every module name the finder renames in the Linux x86-64 file (import arguments, m_name) it finds in
    the other platforms' files too, by their sections: never a string it would miss there."""
    _, _, modules = PACKAGES[package]
    linux, other = _renamed(package, "linux-x86_64"), _renamed(package, platform)
    assert linux.keys() == other.keys()
    for module in linux:
        expected = {text for text in linux[module] if text in modules}
        assert expected, f"{package}: nothing found in the Linux file of {module}: the test would prove nothing"
        assert {text for text in other[module] if text in modules} == expected, (package, platform, module)


@pytest.mark.parametrize("platform", [p for p in PLATFORMS if p != "linux-x86_64"])
@pytest.mark.parametrize("package", ["msgpack", "pyyaml"])
def test_type_names_are_found_on_every_platform(package, platform):
    """Type names (``pkg.mod.Type`` in ``tp_name``) are found by the data pointers to them: ELF relocations,
    Mach-O rebase information (machofixups.py), PE base relocations (pereloc.py); where those cannot be read,
    the type keeps its real name, and pickling it fails loudly (DESIGN.md)."""
    linux, other = _renamed(package, "linux-x86_64"), _renamed(package, platform)
    _, _, modules = PACKAGES[package]
    for module in linux:
        expected = {text for text in linux[module] if text not in modules}
        assert expected, f"{package}: no type name found in the Linux file of {module}"
        assert {text for text in other[module] if text not in modules} == expected, (package, platform, module)
