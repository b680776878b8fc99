"""What state each env is in: ok, stale, broken or missing, and why (`list`, `doctor`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Sequence

from ..config import Config, EnvSpec
from ..errors import ConfigError
from . import health, integrity
from .spec import Planner
from .store import Store, read_stamp


class EnvStatus(NamedTuple):
    name: str
    state: str  # "ok", "stale", "broken", "missing"
    path: Path
    reasons: list[str]
    fix: str | None
    stamp: dict[str, Any] | None

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


def statuses(config: Config, envs: Sequence[EnvSpec], installer: str | None = None,
             verify: bool = False) -> list[EnvStatus]:
    """Each env's state. Installed files are checked against their RECORDs by size, or with
    ``verify`` (`doctor`, `list --verify`) by sha256 too, which reads every file."""
    store = Store(config.envs_dir)
    planner = Planner(config, installer)
    digests: integrity.Digests = {}  # envs hardlinked from one uv cache share files: hash each once
    try:
        return [_status(store, planner, env, verify, digests) for env in envs]
    finally:
        planner.close()


def _status(store: Store, planner: Planner, env: EnvSpec, verify: bool, digests: integrity.Digests) -> EnvStatus:
    build = store.current(env.name)
    stamp = read_stamp(build) if build else None

    def status(state: str, reasons: list[str], fix: str | None = None) -> EnvStatus:
        return EnvStatus(env.name, state, store.link(env.name), reasons, fix, stamp)

    if build is None or stamp is None:
        reason = "not built yet" if not store.builds(env.name) else "no complete build"
        return status("missing", [reason], f"polyvenv sync {env.name}")
    problems = health.problems(build, stamp, content=verify, digests=digests)
    if problems and health.interpreter_problem(stamp):
        python = stamp["interpreter"]
        return status("broken", problems, f"reinstall Python {python['version']} at {python['path']}, or set "
                      f"`python` of env {env.name!r} to another interpreter; then run `polyvenv sync {env.name}`")
    if problems:
        return status("broken", problems, f"polyvenv sync --repair {env.name}")
    try:
        spec = planner.spec(env)
    except ConfigError as e:
        return status("stale", e.problems, "fix the configuration, then run `polyvenv sync`")
    if spec.hash != stamp["spec_hash"]:
        return status("stale", _why_stale(stamp, spec.inputs()), f"polyvenv sync {env.name}")
    return status("ok", [])


def _why_stale(stamp: dict[str, Any], inputs: dict[str, Any]) -> list[str]:
    reasons = []
    was, now = stamp["interpreter"], inputs["interpreter"]
    if (was["path"], was["version"]) != (now["path"], now["version"]):
        reasons.append(f"interpreter changed: {was['path']} {was['version']} -> {now['path']} {now['version']}")
    if stamp["requirements"] != inputs["requirements"]:
        reasons.append("requirements changed")
    if stamp["installer"] != inputs["installer"]:
        reasons.append(f"installer changed: {stamp['installer']} -> {inputs['installer']}")
    if stamp.get("link_mode") != inputs.get("link_mode"):
        was_mode, now_mode = stamp.get("link_mode") or "default", inputs.get("link_mode") or "default"
        reasons.append(f"link-mode changed: {was_mode} -> {now_mode}")
    if (stamp.get("lock_file") is None) != (inputs["lock"] is None):
        reasons.append("lock file added" if inputs["lock"] else "lock file removed")
    return reasons or ["the requirements file or lock file changed"]
