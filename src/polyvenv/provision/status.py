"""What state each env is in: ok, stale, broken or missing, and why (`list`, `doctor`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Sequence

from ..config import Config, EnvSpec
from ..errors import ConfigError
from ..runtime.manifest import Manifest, read_manifest
from . import health, integrity, lockfiles
from .spec import Planner
from .store import Store


class EnvStatus(NamedTuple):
    name: str
    state: str  # "ok", "stale", "broken", "missing"
    path: Path
    reasons: list[str]
    fix: str | None
    manifest: Manifest | None  # of the env's current build
    declared: str = "namespace"  # the env's isolation as declared

    @property
    def isolation(self) -> str:
        """``namespace``, ``process``, or for ``auto`` its verdict: ``auto: namespace``, ``auto: unprobed``."""
        if self.declared != "auto":
            return self.declared
        verdict = self.manifest.verdict if self.manifest else None
        return f"auto: {verdict or 'unprobed'}"

    def as_json(self) -> dict[str, Any]:
        built = self.manifest
        return {
            "name": self.name,
            "state": self.state,
            "path": str(self.path),
            "build": built.path if built else None,
            "reasons": self.reasons,
            "fix": self.fix,
            "python": built.interpreter._asdict() if built and built.interpreter else None,
            "requirements": list(built.requirements) if built else None,
            "distributions": (built.distributions if built else None) or {},
            "built_at": built.built_at if built else None,
            "spec_hash": built.spec_hash if built else None,
            "isolation": self.declared,
            "verdict": built.verdict if built else None,
            "verdict_reasons": list(built.verdict_reasons) if built else [],
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
    built = read_manifest(build) if build else None

    def status(state: str, reasons: list[str], fix: str | None = None) -> EnvStatus:
        return EnvStatus(env.name, state, store.link(env.name), reasons, fix, built, env.isolation)

    if build is None or built is None:
        reason = "not built yet" if not store.builds(env.name) else "no complete build"
        return status("missing", [reason], f"polyvenv sync {env.name}")
    problems = health.problems(build, built, content=verify, digests=digests)
    python = built.interpreter
    if problems and python is not None and health.interpreter_problem(built):
        return status("broken", problems, f"reinstall Python {python.version} at {python.path}, or set "
                      f"`python` of env {env.name!r} to another interpreter; then run `polyvenv sync {env.name}`")
    if problems:
        return status("broken", problems, f"polyvenv sync --repair {env.name}")
    try:
        spec = planner.spec(env)
    except ConfigError as e:
        return status("stale", e.problems, "fix the configuration, then run `polyvenv sync`")
    outdated = ([f"its lock file {spec.lock_file} is out of date with its requirements"]
                if spec.lock_file and not lockfiles.is_current(spec, spec.lock_file) else [])
    if spec.hash != built.spec_hash:
        return status("stale", _why_stale(built, spec.inputs()) + outdated, f"polyvenv sync {env.name}")
    if outdated:
        return status("stale", outdated, f"polyvenv sync {env.name}")  # which locks it again, then installs that
    return status("ok", [])


def _why_stale(built: Manifest, inputs: dict[str, Any]) -> list[str]:
    reasons = []
    was, now = built.interpreter, inputs["interpreter"]
    if was is None or (was.path, was.version) != (now["path"], now["version"]):
        before = f"{was.path} {was.version}" if was else "unknown"
        reasons.append(f"interpreter changed: {before} -> {now['path']} {now['version']}")
    if list(built.requirements) != inputs["requirements"]:
        reasons.append("requirements changed")
    installer = built.installer._asdict() if built.installer else None
    if installer != inputs["installer"]:
        reasons.append(f"installer changed: {installer} -> {inputs['installer']}")
    if built.link_mode != inputs.get("link_mode"):
        was_mode, now_mode = built.link_mode or "default", inputs.get("link_mode") or "default"
        reasons.append(f"link-mode changed: {was_mode} -> {now_mode}")
    if (built.lock_file is None) != (inputs["lock"] is None):
        reasons.append("lock file added" if inputs["lock"] else "lock file removed")
    return reasons or ["the requirements file or lock file changed"]
