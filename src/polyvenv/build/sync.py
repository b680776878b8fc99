"""`polyvenv sync`: make every declared env match its declaration, safely and at most once.

Per env, the pre-commit pattern: check without a lock (the no-op path: read
one stamp, start nothing); if work is needed, take the env's lock and check
again (another process may have built it meanwhile); build a new versioned
directory beside the working one; stamp it last; switch the link. A failed
or killed build leaves the previous env in place and in use.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from ..config import DISCOVERED_FILE, Config, EnvSpec
from ..errors import BuildError, ConfigError, UsageError
from . import integrity
from ..runtime.lease import retiring
from .installers import Sources
from .interpreters import is_path
from .progress import Progress
from .spec import BuildSpec, Planner, lock_path
from .store import STAMP, Store, read_stamp


class Outcome(NamedTuple):
    name: str
    action: str  # "up to date", "built", "switched", "failed"
    path: Path | None = None
    seconds: float = 0.0
    error: BuildError | None = None


def sources_for(config: Config, offline: bool | None = None, wheelhouse: Path | None = None) -> Sources:
    offline = config.offline if offline is None else offline
    wheelhouse = wheelhouse or config.wheelhouse
    if offline and wheelhouse is None:
        raise UsageError("offline builds install only from a wheelhouse: set `wheelhouse` or pass --wheelhouse DIR")
    if wheelhouse is not None and not wheelhouse.is_dir():
        if offline:
            raise UsageError(f"wheelhouse {wheelhouse} does not exist: fill it with `polyvenv wheelhouse {wheelhouse}`")
        wheelhouse = None  # online, a wheelhouse not yet made is no source, not an error
    return Sources(offline=offline, wheelhouse=wheelhouse)


def select(config: Config, names: Sequence[str] = ()) -> list[EnvSpec]:
    return [config.env(n) for n in dict.fromkeys(names)] if names else list(config.envs.values())


def plan(config: Config, envs: Sequence[EnvSpec], installer: str | None = None) -> tuple[Planner, list[BuildSpec]]:
    """BuildSpecs for ``envs``; every interpreter problem reported at once."""
    planner = Planner(config, installer)
    specs, problems = [], []
    for env in envs:
        try:
            specs.append(planner.spec(env))
        except ConfigError as e:
            problems += e.problems
    if problems:
        planner.close()
        raise ConfigError(problems)
    return planner, specs


def is_current(store: Store, spec: BuildSpec, verify: bool = False,
               digests: integrity.Digests | None = None) -> bool:
    """The env's link points at a complete build of exactly this spec.

    A stamp is only written after every installed file matched its RECORD, so
    the no-op path trusts it and reads no file; ``verify`` (``sync --repair``)
    hashes every file again, for envs damaged after their build.
    """
    build = store.current(spec.name)
    if build != store.build_dir(spec.name, spec.hash):
        return False
    return not verify or not integrity.damaged_files(build, content=True, limit=1, digests=digests)


def sync(
    config: Config,
    names: Sequence[str] = (),
    *,
    offline: bool | None = None,
    wheelhouse: Path | None = None,
    jobs: int = 1,
    locked: bool = False,
    repair: bool = False,
    installer: str | None = None,
    progress: Progress | None = None,
    quiet: bool = False,
    memo: bool = False,
) -> list[Outcome]:
    """Build what is missing or stale; return one Outcome per env (failures included).

    Progress goes to ``progress``, else to the terminal (a live display) or
    stderr lines, unless ``quiet``. ``memo``: this is a plain `sync` of the
    whole workspace, whose no-op answer the next one may reuse (noop.py).
    """
    store = Store(config.envs_dir)
    planner, specs = plan(config, select(config, names), installer)
    from .. import snapshot

    snapshot.write(config)  # lets a host without a TOML parser load this workspace
    try:
        if locked:
            from . import lockfiles

            for spec in specs:
                lockfiles.check_current(spec, lock_path(config, spec.name))
        digests: integrity.Digests = {}  # with --repair: a file several envs share is hashed once
        todo = [s for s in specs if not is_current(store, s, verify=repair, digests=digests)]
        for spec in todo:
            store.check_link_location(spec.name)  # before any build: a user's file there is never replaced
        outcomes = {s.name: Outcome(s.name, "up to date", store.current(s.name)) for s in specs}
        if not todo and memo:
            _remember_noop(config, specs)
        if todo:
            from concurrent.futures import ThreadPoolExecutor

            from .progress import for_terminal

            sources = sources_for(config, offline, wheelhouse)
            progress = progress or for_terminal(quiet)
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                for outcome in pool.map(lambda s: _sync_one(config, store, s, sources, repair, progress), todo):
                    outcomes[outcome.name] = outcome
            progress.close()
    finally:
        planner.close()
    return [outcomes[s.name] for s in specs]


def _remember_noop(config: Config, specs: list[BuildSpec]) -> None:
    """Let the next plain `sync` answer from a memo (noop.py), where its inputs are plain files."""
    from . import noop
    from .installers import Uv

    if config.path is None or config.discoveries or config.bin_dir:
        return  # discovery globs and shims depend on more than a list of files
    if any(s.env.python and not is_path(s.env.python) for s in specs) or not specs:
        return  # "3.12" means the newest 3.12 installed: that can change without any file we know
    if not isinstance(specs[0].installer, Uv):
        return
    files = [(config.path, True), (config.envs_dir / DISCOVERED_FILE, True), (specs[0].installer.binary, True)]
    for spec in specs:
        link = config.envs_dir / spec.name
        files += [(link, False), (link / STAMP, True), (lock_path(config, spec.name), True),
                  (spec.interpreter.path, True)]
        if spec.env.requirements_file:
            files.append((spec.env.requirements_file, True))
        if spec.env.python:
            files.append((config.root / spec.env.python, True))
    noop.remember(str(config.path), len(specs), [(str(path), follow) for path, follow in files])


def _sync_one(config: Config, store: Store, spec: BuildSpec, sources: Sources,
              repair: bool, progress: Progress) -> Outcome:
    started = time.monotonic()
    target = store.build_dir(spec.name, spec.hash)
    with store.lock(spec.name):
        if is_current(store, spec, verify=repair):
            return Outcome(spec.name, "up to date", target)  # another process built it meanwhile
        if read_stamp(target) is not None and not integrity.damaged_files(target, content=repair, limit=1):
            store.switch(spec.name, target)  # an earlier build of this very spec: reuse it
            progress.finished(spec.name, f"switched to its existing build {target.name}")
            return Outcome(spec.name, "switched", target, time.monotonic() - started)
        progress.started(spec.name, f"building ({_describe(spec)})")
        log = store.log_path(spec.name, spec.hash)
        from . import builder

        try:
            with retiring(target) as unused:  # a damaged build of this very spec is rebuilt in its place
                if not unused:
                    raise BuildError(f"env {spec.name!r}: its build {target} is damaged, but a running process "
                                     "loads from it: stop that process (or unload the env), then run "
                                     f"`polyvenv sync --repair {spec.name}` again", env=spec.name, log=str(log))
                stamp = builder.build(spec, target, sources, config.root, log)
        except BuildError as e:
            progress.finished(spec.name, f"FAILED: {e} (log: {e.log})")
            return Outcome(spec.name, "failed", None, time.monotonic() - started, e)
        store.switch(spec.name, target)
        seconds = time.monotonic() - started
        store.record_build({"env": spec.name, "spec_hash": spec.hash, "seconds": round(seconds, 3),
                            "at": time.time()})
        progress.finished(spec.name, f"built in {seconds:.1f}s{_refreshed(stamp)}")
        return Outcome(spec.name, "built", target, seconds)


def _refreshed(stamp: dict[str, Any]) -> str:
    """What a build found damaged in uv's cache and unpacked afresh, for its progress line."""
    names = stamp.get("cache_refreshed") or []
    if len(names) == 1:
        return f"; uv's cache entry for {names[0]} was damaged and was refreshed"
    return f"; uv's cache entries for {', '.join(names)} were damaged and were refreshed" if names else ""


def _describe(spec: BuildSpec) -> str:
    count = len(spec.env.requirements)
    what = f"lock {spec.lock_file.name}" if spec.lock_file else f"{count} requirement{'s' * (count != 1)}"
    if spec.env.requirements_file and not spec.lock_file:
        what += f" + {spec.env.requirements_file.name}"
    return f"Python {spec.interpreter.version}, {what}, {spec.installer.name}"
