"""What state each env is in: ok, stale, broken or missing, and why (`list`, `doctor`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..config import Config, EnvSpec
from ..errors import ConfigError
from . import health
from .spec import Planner
from .store import Store, read_stamp


@dataclass
class EnvStatus:
    name: str
    state: str  # "ok", "stale", "broken", "missing"
    path: Path
    reasons: list[str] = field(default_factory=list)
    fix: str | None = None
    stamp: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        stamp = self.stamp or {}
        return {
            "name": self.name,
            "state": self.state,
            "path": str(self.path),
            "build": stamp.get("path"),
            "reasons": self.reasons,
            "fix": self.fix,
            "python": stamp.get("interpreter"),
            "requirements": stamp.get("requirements"),
            "distributions": stamp.get("distributions", {}),
            "built_at": stamp.get("built_at"),
            "spec_hash": stamp.get("spec_hash"),
        }


def statuses(config: Config, envs: Sequence[EnvSpec], installer: str | None = None) -> list[EnvStatus]:
    store = Store(config.envs_dir)
    planner = Planner(config, installer)
    try:
        return [_status(store, planner, env) for env in envs]
    finally:
        planner.close()


def _status(store: Store, planner: Planner, env: EnvSpec) -> EnvStatus:
    build = store.current(env.name)
    stamp = read_stamp(build) if build else None
    status = EnvStatus(env.name, "missing", store.link(env.name), stamp=stamp)
    if build is None or stamp is None:
        status.reasons.append("not built yet" if not store.builds(env.name) else "no complete build")
        status.fix = f"polyvenv sync {env.name}"
        return status
    problems = health.problems(build, stamp)
    if problems:
        status.state, status.reasons = "broken", problems
        status.fix = f"polyvenv sync --repair {env.name}"
        if health.interpreter_problem(stamp):
            python = stamp["interpreter"]
            status.fix = (f"reinstall Python {python['version']} at {python['path']}, or set `python` of env "
                          f"{env.name!r} to another interpreter; then run `polyvenv sync {env.name}`")
        return status
    try:
        spec = planner.spec(env)
    except ConfigError as e:
        status.state, status.reasons = "stale", e.problems
        status.fix = "fix the configuration, then run `polyvenv sync`"
        return status
    if spec.hash != stamp["spec_hash"]:
        status.state = "stale"
        status.reasons = _why_stale(stamp, spec.inputs())
        status.fix = f"polyvenv sync {env.name}"
    else:
        status.state = "ok"
    return status


def _why_stale(stamp: dict[str, Any], inputs: dict[str, Any]) -> list[str]:
    reasons = []
    was, now = stamp["interpreter"], inputs["interpreter"]
    if (was["path"], was["version"]) != (now["path"], now["version"]):
        reasons.append(f"interpreter changed: {was['path']} {was['version']} -> {now['path']} {now['version']}")
    if stamp["requirements"] != inputs["requirements"]:
        reasons.append("requirements changed")
    if stamp["installer"] != inputs["installer"]:
        reasons.append(f"installer changed: {stamp['installer']} -> {inputs['installer']}")
    if (stamp.get("lock_file") is None) != (inputs["lock"] is None):
        reasons.append("lock file added" if inputs["lock"] else "lock file removed")
    return reasons or ["the requirements file or lock file changed"]
