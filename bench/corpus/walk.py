"""Run by a plain venv's own interpreter (no polyvenv): what a distribution's modules are, and which import.

This is the baseline the oracle compares against: a submodule that fails to import in the package's own
venv is the package's business, not polyvenv's, so only the ones that import here are tried side by
side. Standard library only; it reports on a private copy of stdout (what the imported modules print goes
to stderr) one line per event (tab-separated fields), so the caller can restart it past a module that crashed or hung:

    T  module             about to import it
    O  module             imported
    F  module  error      failed (left out of the side-by-side list)
    S  repr               the smoke call's result        E  error   the smoke call failed
    N  json               {"tops": the distribution's top-level names, "names": every top-level name
                          in this venv, "found": submodules found, "version": the installed version}

usage: python walk.py DIST JSON-OPTIONS   (options: skip, max_modules, smoke, imports)
"""

import importlib
import importlib.metadata
import json
import os
import pkgutil
import sys
import sysconfig

SKIPPED_PARTS = {"tests", "test", "testing", "__main__", "conftest", "_tests"}


def distribution_tops(dist):
    """The top-level module names a distribution installs, read from its RECORD (top_level.txt lies
    for some), the way `import` would see them."""
    tops = set()
    for file in dist.files or ():
        parts = file.parts
        if len(parts) == 0 or parts[0].endswith((".dist-info", ".data")) or parts[0] in ("..", "__pycache__"):
            continue
        first = parts[0]
        if len(parts) == 1:
            if first.endswith(".py"):
                tops.add(first[:-3])
            elif first.endswith((".so", ".pyd")):
                tops.add(first.split(".")[0])
        else:
            tops.add(first)
    return sorted(t for t in tops if t.isidentifier() and t not in SKIPPED_PARTS)


def venv_names():
    """Every top-level name any distribution of this venv installs."""
    names = set()
    for dist in importlib.metadata.distributions():
        names.update(distribution_tops(dist))
    return sorted(names)


def submodules(top, skip):
    """``top`` and its submodules, breadth first, as pkgutil.walk_packages finds them (each package is
    imported to read its ``__path__``); yields names to try."""
    queue = [top]
    while queue:
        name = queue.pop(0)
        if name in skip or SKIPPED_PARTS.intersection(name.split(".")):
            continue
        yield name
        module = sys.modules.get(name)
        path = getattr(module, "__path__", None)
        if path is None:
            continue
        try:
            found = sorted(pkgutil.iter_modules(list(path), name + "."), key=lambda m: m.name)
        except Exception:  # a __path__ that is not a list of directories
            continue
        queue.extend(m.name for m in found)


def main():
    dist_name, options = sys.argv[1], json.loads(sys.argv[2])
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # what imported modules print goes to stderr, never into the protocol
    sys.stdout = sys.stderr

    def say(kind, *fields):
        cut = None if kind == "N" else 300
        proto.write("\t".join([kind] + [str(f).replace("\n", " ").replace("\t", " ")[:cut] for f in fields]) + "\n")

    dist = importlib.metadata.distribution(dist_name)
    tops = options.get("imports") or distribution_tops(dist)
    skip = set(options.get("skip", ()))
    limit = options.get("max_modules", 300)
    found = 0
    site = os.path.realpath(sysconfig.get_paths()["purelib"])
    for top in tops:
        for name in submodules(top, skip):
            if found >= limit:
                break
            found += 1
            say("T", name)
            try:
                module = importlib.import_module(name)
            except BaseException as e:  # SystemExit and friends too: the module's business
                say("F", name, f"{type(e).__name__}: {e}")
                continue
            where = getattr(module, "__file__", None)
            if where and not os.path.realpath(where).startswith(site):
                say("F", name, f"not from this venv: {where}")
                continue
            say("O", name)
    smoke = options.get("smoke")
    if smoke:
        space = {"imp": importlib.import_module}
        try:
            exec(smoke, space)
            say("S", repr(space.get("result")))
        except BaseException as e:
            say("E", f"{type(e).__name__}: {e}")
    say("N", json.dumps({"tops": tops, "names": venv_names(), "found": found,
                         "version": dist.version}))
    proto.flush()
    os._exit(0)  # no atexit or finalizers of what was imported: they are not what is measured


if __name__ == "__main__":
    main()
