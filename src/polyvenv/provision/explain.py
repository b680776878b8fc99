"""`polyvenv why`: which envs have which version of each distribution, what is shared, and which pins force a duplicate.

The same answer for the command line and for Python (``Workspace.explain()``).
Shared with the host means what the runtime does at load (runtime/hostview.py,
the rule in runtime/sharing.py), asked of this interpreter: the host is the
Python that runs the question. Envs that agree on a distribution (equal share
keys, ``agree``) load it once in a host that loads them side by side
(runtime/units.py: ``loaded_once``, the in-process ones); a worker loads its
own. For each distribution with more than one version, the pins
come from the env's own requirements and the installed distributions'
``Requires-Dist``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterable

from ..config import Config
from ..runtime.hostview import HostView, shared_with_host
from ..runtime.manifest import Manifest, read_manifest
from ..runtime.names import top_level_names
from ..runtime.records import Records, read_records
from ..runtime.sitedir import normalize, site_packages
from ..runtime.units import env_keys
from ..runtime.workspace import isolation
from .records import distribution_records


def explain(config: Config, package: str | None = None) -> dict[str, Any]:
    """Per distribution (or only ``package``): versions by env, sharing, and the pins behind duplicates."""
    host = HostView()
    envs: dict[str, tuple[Manifest, Records, Path]] = {}
    unbuilt, unrecorded = [], []
    for name, spec in config.envs.items():
        prefix = config.envs_dir / name
        manifest = read_manifest(prefix)
        site = site_packages(prefix) if manifest is not None else None
        if manifest is None or site is None:
            unbuilt.append(name)
            continue
        records = read_records(site)
        if records is None:  # a build from before records: the same facts, found now
            unrecorded.append(name)
            records = Records(tuple(distribution_records(site)), manifest.private)
        envs[name] = (manifest, records, site)
    rows: dict[str, dict[str, Any]] = {}
    for name, (manifest, records, site) in envs.items():
        spec = config.envs[name]
        roots = [site, *([spec.source] if spec.source else [])]
        found = top_level_names(roots)
        declared = {s.partition(".")[0] for s in spec.shared}
        # a worker shares nothing with the host; nor, but its vocabulary packages, a build from before records
        in_process = isolation(spec.isolation, manifest) == "namespace" and name not in unrecorded
        with_host = shared_with_host(records, found, site, declared, host) if in_process else set()
        shared = declared | {top for r in records.distributions if r.name in with_host for top in r.tops}
        keys = env_keys(records, found, site, shared)
        for record in records.distributions:
            if package is not None and record.name != normalize(package):
                continue
            row = rows.setdefault(record.name, {"name": record.name, "versions": {}, "host": host.version(record.name),
                                                "shared_with_host": [], "private": [], "agree": [],
                                                "loaded_once": [], "pins": {}, "_keys": {}})
            row["versions"].setdefault(record.version, []).append(name)
            if record.name in with_host:
                row["shared_with_host"].append(name)
            elif record.name in records.private:
                row["private"].append(name)
            key = keys.get(record.name)
            if key is not None:
                row["_keys"].setdefault(key, []).append((name, in_process))
    for row in rows.values():
        groups = [group for group in row.pop("_keys").values() if len(group) > 1]
        row["agree"] = sorted(sorted(name for name, _ in group) for group in groups)
        row["loaded_once"] = sorted(once for once in (sorted(name for name, inside in group if inside)
                                                      for group in groups) if len(once) > 1)
        if len(row["versions"]) > 1:
            for version, names in row["versions"].items():
                for env in names:
                    row["pins"][env] = pins(row["name"], envs[env][0], envs[env][2])
        row["why"] = _why(row)
    return {"host": sys.executable, "envs": sorted(envs), "unbuilt": unbuilt, "unrecorded": unrecorded,
            "distributions": [rows[name] for name in sorted(rows)]}


def pins(name: str, manifest: Manifest, site: Path) -> list[str]:
    """What makes env ``manifest`` have its version of ``name``: its own requirements naming it, and
    each installed distribution whose Requires-Dist names it ("jinja2 2.11.3 requires markupsafe>=0.23")."""
    from packaging.requirements import InvalidRequirement, Requirement

    found = []
    for line in _requirements(manifest):
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if normalize(requirement.name) == name:
            found.append(str(requirement))
    for info in sorted(site.glob("*.dist-info")):
        dist, _, version = info.name[: -len(".dist-info")].partition("-")
        try:
            metadata = (info / "METADATA").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in metadata.split("\n\n", 1)[0].splitlines():
            if not line.startswith("Requires-Dist:"):
                continue
            try:
                requirement = Requirement(line[len("Requires-Dist:"):].strip())
            except InvalidRequirement:
                continue
            if normalize(requirement.name) != name:
                continue
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue  # an extra's, or another platform's
            found.append(f"{normalize(dist)} {version} requires {requirement}")
    return found


def _requirements(manifest: Manifest) -> Iterable[str]:
    yield from manifest.requirements
    if manifest.requirements_file:
        try:
            lines = Path(manifest.requirements_file).read_text().splitlines()
        except OSError:
            return
        for line in lines:
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                yield line


def _why(row: dict[str, Any]) -> str:
    """The one line `why` prints for a distribution."""
    name = row["name"]
    parts = []
    for version, names in sorted(row["versions"].items()):
        shared = [n for n in names if n in row["shared_with_host"]]
        where = ", ".join(names) + (" (the host's own modules" + (f" in {', '.join(shared)})" if shared != names
                                                                   else ")") if shared else "")
        parts.append(f"{version} in {where}")
    line = f"{name}: " + "; ".join(parts)
    if row["host"]:
        line += f"; the host has {row['host']}"
    if row["private"]:
        line += f"; kept private in {', '.join(row['private'])} (private = [...])"
    for group in row["agree"]:
        once: list[str] = next((o for o in row["loaded_once"] if set(o) <= set(group)), [])
        line += f"; {', '.join(group)} agree on it" + (" (loaded once)" if once == group else
                                                        f" (loaded once by {', '.join(once)})" if once else "")
    if row["pins"]:
        reasons = []
        for env, found in row["pins"].items():
            version = next(v for v, names in row["versions"].items() if env in names)
            direct = [p for p in found if " requires " not in p]
            needs = ", ".join(direct) or f"{name}=={version}"
            via = [p for p in found if " requires " in p]
            reasons.append(f"{env} needs {needs}" + (f" ({'; '.join(via)})" if via else "") if found
                           else f"{env} has {version}")
        line += " -- " + "; ".join(reasons)
    return line
