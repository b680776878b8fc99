"""`polyvenv sync`: make every declared env match its declaration, safely and at most once.

Per env, the pre-commit pattern: check without a lock (the no-op path: read
one stamp, start nothing); if work is needed, take the env's lock and check
again (another process may have built it meanwhile); build a new versioned
directory beside the working one; stamp it last; switch the link. A failed
or killed build leaves the previous env in place and in use.

The last config on disk wins: under the lock, before building and again
right before switching, the env's spec is planned afresh from the file as
it is then, and a sync whose plan the file no longer declares (it was saved
meanwhile) switches nothing. A signal stops the installers, and nothing
switches after it (interrupts.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple, Sequence

from ..config import DECLARED_FILE, DISCOVERED_FILE, Config, EnvSpec, load_config
from ..errors import BuildError, ConfigError, Interrupted, UsageError
from ..runtime.lease import retiring
from ..runtime.manifest import MANIFEST, Manifest, read_manifest
from . import integrity, interrupts, lockfiles, noop
from .installers import Sources
from .interpreters import is_path
from .progress import Lines as ProgressLines
from .progress import Progress
from .spec import BuildSpec, Planner, lock_path
from .store import Store


class ConfigChanged(BuildError):
    """The config file changed while a sync built an env: the build of the older plan is not used."""


class Outcome(NamedTuple):
    name: str
    action: str  # "up to date", "built", "switched", "probed" (an "auto" env's build without a verdict), "failed"
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


def unprobed(store: Store, spec: BuildSpec) -> bool:
    """An ``isolation = "auto"`` env whose current build has no verdict yet (the env was declared
    "auto" after it was built, or a sync was stopped between its build and its probe)."""
    if spec.env.isolation != "auto":
        return False
    build = store.current(spec.name)
    built = read_manifest(build) if build is not None else None
    return built is not None and built.verdict is None


def probed(spec: BuildSpec, build: Path, built: Manifest, store: Store, progress: Progress) -> Manifest:
    """``built`` with the verdict of a probe of ``build`` recorded in its manifest (runtime/probe.py):
    which modules load side by side, and so whether the env runs in-process or in a worker."""
    from ..runtime.manifest import record_verdict
    from ..runtime.probe import Verdict, probe

    log = store.log_path(spec.name, built.spec_hash).with_suffix(".probe.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    progress.started(spec.name, 'probing its modules (isolation = "auto")', log)
    with open(log, "w") as out:
        out.write(f"# polyvenv probe of env {spec.name!r} at {build}\n")
        try:
            verdict = probe(spec.name, build, source=spec.env.source, shared=spec.env.shared, log=out)
        except OSError as e:  # the scratch process could not start: nothing is proven
            verdict = Verdict("process", (f"the probe could not run: {e}",))
        out.write(f"# verdict: {verdict.summary()} in {verdict.seconds:.1f}s\n")
    interrupts.check()
    return record_verdict(build, built, verdict.isolation, verdict.reasons, verdict.seconds)


def warmed(spec: BuildSpec, build: Path, built: Manifest, store: Store, progress: Progress) -> str:
    """Warm the first start of ``build`` (runtime/warmup.py) in a scratch process of this interpreter, the
    host's: its code rewritten and its extensions patched now, not at its first load. A note for the
    progress line (``""``: nothing to warm). Not for an env that runs in a worker, nor for one built for
    another Python (a host of that Python rewrites it at its first load). A failure costs only the warmth."""
    import json
    import sys

    from ..runtime.abi import mismatch
    from ..runtime.warmup import Warmed

    if spec.env.isolation == "process" or built.verdict == "process" or mismatch(built, [build]):
        return ""
    log = store.log_path(spec.name, built.spec_hash).with_suffix(".warm.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    progress.started(spec.name, "warming its first start (rewriting its code, patching its extensions)", log)
    request = {"name": spec.name, "build": str(build), "shared": list(spec.env.shared)}
    with open(log, "w") as out:
        out.write(f"# polyvenv warm-up of env {spec.name!r} at {build} (POLYVENV_WARM=0 or sync --no-warm: "
                  "none)\n")
        out.flush()
        code, output = interrupts.run([sys.executable, "-c", "from polyvenv.runtime.warmup import main; main()",
                                       json.dumps(request)], sink=out)
    try:
        result = Warmed(**json.loads(output.strip().splitlines()[-1]))
    except (ValueError, TypeError, IndexError):
        return f"; not warmed (the warm-up failed with exit code {code}; its log: {log})"
    return f"; {result.summary()}"


def warming(warm: bool | None) -> bool:
    """Whether ``sync`` warms the builds it makes: ``warm``, else ``$POLYVENV_WARM`` (``0`` turns it off)."""
    import os

    return warm if warm is not None else os.environ.get("POLYVENV_WARM", "1").strip().lower() not in (
        "0", "no", "false", "off")


def verdict_note(built: Manifest) -> str:
    """``; auto: namespace (probed in 1.2s)`` for a progress line, or ``""`` without a verdict."""
    if built.verdict is None:
        return ""
    why = f": {built.verdict_reasons[0]}" if built.verdict_reasons else ""
    return f"; auto: {built.verdict} (probed in {built.probe_seconds or 0:.1f}s){why}"


def sync(
    config: Config,
    names: Sequence[str] = (),
    *,
    offline: bool | None = None,
    wheelhouse: Path | None = None,
    jobs: int = 1,
    locked: bool = False,
    frozen: bool = False,
    repair: bool = False,
    installer: str | None = None,
    progress: Progress | None = None,
    quiet: bool = False,
    memo: bool = False,
    warm: bool | None = None,
) -> list[Outcome]:
    """Build what is missing or stale; return one Outcome per env (failures included).

    Progress goes to ``progress``, else to the terminal (a live display) or
    stderr lines, unless ``quiet``. ``memo``: this is a plain `sync` of the
    whole workspace, whose no-op answer the next one may reuse (noop.py).

    Lock files follow uv's semantics: a lock out of date with its env's
    requirements is locked again first (offline: refused, saying which env
    and what to run); ``locked`` refuses a missing or out-of-date lock;
    ``frozen`` installs each lock as it is. ``warm`` (default: yes, unless ``$POLYVENV_WARM`` is 0):
    each build's code is rewritten and its extensions patched before it is switched to, so the
    first start loads it warm (runtime/warmup.py).
    """
    store = Store(config.envs_dir)
    watched = _memo_inputs(config) if memo and not names and not frozen else None
    recorded = noop.identities(watched) if watched is not None else []  # before they are read
    planner, specs = plan(config, select(config, names), installer)
    from .. import snapshot

    snapshot.write(config)  # lets a host without a TOML parser load this workspace
    relock_failures: dict[str, Outcome] = {}
    try:
        if locked:
            for spec in specs:
                lockfiles.check_current(spec, lock_path(config, spec.name))
        elif not frozen:
            specs, relock_failures = _relocked(config, planner, specs, offline, wheelhouse, progress, quiet)
        digests: integrity.Digests = {}  # with --repair: a file several envs share is hashed once
        todo = [s for s in specs if s.name not in relock_failures
                and (not is_current(store, s, verify=repair, digests=digests) or unprobed(store, s))]
        for spec in todo:
            store.check_link_location(spec.name)  # before any build: a user's file there is never replaced
        outcomes = {s.name: Outcome(s.name, "up to date", store.current(s.name)) for s in specs}
        outcomes.update(relock_failures)
        if not todo and not relock_failures and watched is not None:
            _remember_noop(config, watched, recorded)
        if todo:
            sources = sources_for(config, offline, wheelhouse)
            outcomes.update(_build(config, store, todo, sources, repair, installer, jobs, progress, quiet,
                                   warming(warm)))
    finally:
        planner.close()
    return [outcomes[s.name] for s in specs]


def _relocked(config: Config, planner: Planner, specs: list[BuildSpec], offline: bool | None,
              wheelhouse: Path | None, progress: Progress | None,
              quiet: bool) -> tuple[list[BuildSpec], dict[str, Outcome]]:
    """``specs`` with every lock file that is out of date with its env locked again (and the
    env planned again from it), and the envs whose locking failed; offline, LockFileOutdated.

    Whether a lock is current is its recorded input hash against the
    declaration: no resolver runs unless one is out of date.
    """
    stale = [s for s in specs if s.lock_file and not lockfiles.is_current(s, s.lock_file)]
    if not stale:
        return specs, {}
    sources = sources_for(config, offline, wheelhouse)
    if sources.offline:
        raise lockfiles.outdated_offline([s.name for s in stale], [lock_path(config, s.name) for s in stale])
    uv = lockfiles.uv_for(planner)
    say = progress or ProgressLines(quiet=quiet)
    fresh, failed = {}, {}
    for spec in stale:
        lock = lock_path(config, spec.name)
        log = config.envs_dir / ".logs" / f"{spec.name}.lock.log"
        say.started(spec.name, "locking again (its lock file is out of date with its requirements)")
        try:
            lockfiles.write_lock(spec, lock, uv, sources, config.root, log)
        except BuildError as e:
            say.finished(spec.name, f"FAILED: {e}")
            # names its log
            failed[spec.name] = Outcome(spec.name, "failed", None, 0.0, BuildError(str(e), env=spec.name))
            continue
        say.finished(spec.name, f"locked: {lock}")
        fresh[spec.name] = planner.spec(spec.env)
    return [fresh.get(s.name, s) for s in specs], failed


def _build(config: Config, store: Store, todo: list[BuildSpec], sources: Sources, repair: bool,
           installer: str | None, jobs: int, progress: Progress | None, quiet: bool,
           warm: bool) -> dict[str, Outcome]:
    """Each env of ``todo`` synced, ``jobs`` at a time; on Ctrl-C or SIGTERM, raise Interrupted
    saying which envs were switched before it and which were not."""
    from concurrent.futures import ThreadPoolExecutor

    from .progress import for_terminal

    interrupts.clear()
    progress = progress or for_terminal(quiet)
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    futures = {}
    try:
        for spec in todo:
            futures[spec.name] = pool.submit(_sync_one, config, store, spec, sources, repair, installer, progress,
                                             warm)
        return {name: future.result() for name, future in futures.items()}
    except KeyboardInterrupt:
        interrupts.stop()  # the installers end now; no build starts or switches from here on
        pool.shutdown(wait=True, cancel_futures=True)
        switched = [name for name, f in futures.items() if f.done() and not f.cancelled() and f.exception() is None
                    and f.result().action in ("built", "switched")]
        raise Interrupted(_interrupted(switched, [n for n in futures if n not in switched]),
                          interrupts.received()) from None
    finally:
        pool.shutdown(wait=True)
        progress.close()


def _interrupted(switched: list[str], not_switched: list[str]) -> str:
    """The one line an interrupted sync ends with: what the signal left switched, and what not."""
    done = f"switched: {', '.join(switched)}; " if switched else ""
    return (f"interrupted ({interrupts.received().name}): {done}not switched: {', '.join(not_switched)} "
            "(each keeps its previous build, if it had one); run `polyvenv sync` to finish")


def _declared_now(config: Config, name: str, installer: str | None) -> BuildSpec | None:
    """The spec of env ``name`` as the config file declares it now (None: it no longer does).

    A sync plans from the file as it read it at its start; what it switches an
    env to must still be what the file says when it switches: the last config
    saved wins over an older process's plan.
    """
    fresh = load_config(config.root, config.path)
    if name not in fresh.envs:
        return None
    planner, specs = plan(fresh, [fresh.envs[name]], installer)
    planner.close()
    return specs[0]


def _memo_inputs(config: Config) -> list[tuple[str, bool]] | None:
    """Every file a no-op decision of ``config`` reads, with whether to follow it (not: a link),
    or None where the decision depends on more than files (noop.py)."""
    if config.path is None or config.discoveries or config.bin_dir or config.installer != "uv" or not config.envs:
        return None  # discovery globs and shims depend on more than a list of files
    if any(env.python and not is_path(env.python) for env in config.envs.values()):
        return None  # "3.12" means the newest 3.12 installed: that can change without any file we know
    from uv import find_uv_bin

    from .interpreters import current

    default = current().path
    files = [(config.path, True), (config.envs_dir / DISCOVERED_FILE, True), (config.envs_dir / DECLARED_FILE, True),
             (find_uv_bin(), True)]
    for env in config.envs.values():
        link = config.envs_dir / env.name
        files += [(link, False), (link / MANIFEST, True), (lock_path(config, env.name), True),
                  (config.root / env.python if env.python else default, True)]
        if env.requirements_file:
            files.append((env.requirements_file, True))
    return [(str(path), follow) for path, follow in files]


def _remember_noop(config: Config, files: list[tuple[str, bool]], recorded: list) -> None:
    """Let the next plain `sync` answer from a memo (noop.py) of ``files`` with the identities
    ``recorded`` before this sync read them: a file saved while it decided differs from the memo.

    The config file (and the remembered discoveries) were read before that,
    so they are read again: a save since is seen here, and nothing is recorded.
    """
    try:
        if load_config(config.root, config.path) != config:
            return
    except ConfigError:
        return  # saved meanwhile, and broken: the next sync says so
    if noop.identities(files) != recorded:
        return  # changed while this sync decided: the next one decides afresh
    noop.remember(str(config.path), len(config.envs), recorded)


def _sync_one(config: Config, store: Store, spec: BuildSpec, sources: Sources, repair: bool,
              installer: str | None, progress: Progress, warm: bool = True) -> Outcome:
    started = time.monotonic()
    planned = spec.hash
    target = store.build_dir(spec.name, planned)
    lock = store.lock(spec.name)
    interrupts.acquire(lock)  # as long as another process builds this env, unless interrupted
    try:
        if is_current(store, spec, verify=repair):
            current = read_manifest(target) if unprobed(store, spec) else None
            if current is not None:  # built before it was "auto": probed now, once
                current = probed(spec, target, current, store, progress)
                progress.finished(spec.name, f"up to date{verdict_note(current)}")
                return Outcome(spec.name, "probed", target, time.monotonic() - started)
            return Outcome(spec.name, "up to date", target)  # another process built it meanwhile
        superseded = _superseded(config, store, spec, planned, installer, progress, built=False)
        if superseded:
            return superseded
        existing = read_manifest(target)
        if existing is not None and not integrity.damaged_files(target, content=repair, limit=1):
            if spec.env.isolation == "auto" and existing.verdict is None:
                existing = probed(spec, target, existing, store, progress)
            note = warmed(spec, target, existing, store, progress) if warm else ""
            interrupts.check()
            store.switch(spec.name, target)  # an earlier build of this very spec: reuse it
            progress.finished(spec.name, f"switched to its existing build {target.name}{verdict_note(existing)}"
                                         f"{note}")
            return Outcome(spec.name, "switched", target, time.monotonic() - started)
        log = store.log_path(spec.name, planned)
        progress.started(spec.name, f"building ({_describe(spec)})", log)
        from . import builder

        try:
            with retiring(target) as unused:  # a damaged build of this very spec is rebuilt in its place
                if not unused:
                    raise BuildError(f"env {spec.name!r}: its build {target} is damaged, but a running process "
                                     "loads from it: stop that process (or unload the env), then run "
                                     f"`polyvenv sync --repair {spec.name}` again", env=spec.name, log=str(log))
                built = builder.build(spec, target, sources, config.root, log, planned)
                if spec.env.isolation == "auto":  # the verdict belongs to the build: made once, before it is used
                    built = probed(spec, target, built, store, progress)
                note = warmed(spec, target, built, store, progress) if warm else ""
        except BuildError as e:
            progress.finished(spec.name, f"FAILED: {e} (log: {e.log})")
            return Outcome(spec.name, "failed", None, time.monotonic() - started, e)
        superseded = _superseded(config, store, spec, planned, installer, progress, built=True)
        if superseded:
            return superseded
        interrupts.check()  # a signal during the build: the new build is kept, not switched to
        store.switch(spec.name, target)
    finally:
        lock.release()
    seconds = time.monotonic() - started
    store.record_build({"env": spec.name, "spec_hash": planned, "seconds": round(seconds, 3), "at": time.time()})
    progress.finished(spec.name, f"built in {seconds:.1f}s{_refreshed(built)}{verdict_note(built)}{note}")
    return Outcome(spec.name, "built", target, seconds)


def _superseded(config: Config, store: Store, spec: BuildSpec, planned: str, installer: str | None,
                progress: Progress, built: bool) -> Outcome | None:
    """None while the config file still declares the spec this sync planned (hash ``planned``);
    else what became of the env: up to date if another sync built what the file declares now,
    otherwise failed with ConfigChanged (the env is not switched to an older plan)."""
    if config.path is None:
        return None
    try:
        now = _declared_now(config, spec.name, installer)
    except ConfigError as e:
        now, why = None, f" and is now invalid ({e})"
    else:
        why = "" if now else f" and no longer declares env {spec.name!r}"
    if now and now.hash == planned:
        return None
    if now and is_current(store, now):
        progress.finished(spec.name, f"up to date (as {config.path.name} declares it now)")
        return Outcome(spec.name, "up to date", store.current(spec.name))
    doing = "its build of the older config is kept, not switched to" if built else "not building the older config"
    error = ConfigChanged(f"env {spec.name!r}: {config.path} changed since this sync read it{why}; {doing}: "
                          "run `polyvenv sync` again", env=spec.name)
    progress.finished(spec.name, f"{'not switched' if built else 'not built'}: {config.path.name} changed "
                                 "since this sync read it")
    return Outcome(spec.name, "failed", None, 0.0, error)


def _refreshed(built: Manifest) -> str:
    """What a build found damaged in uv's cache and unpacked afresh, for its progress line."""
    names = built.cache_refreshed
    if len(names) == 1:
        return f"; uv's cache entry for {names[0]} was damaged and was refreshed"
    return f"; uv's cache entries for {', '.join(names)} were damaged and were refreshed" if names else ""


def _describe(spec: BuildSpec) -> str:
    count = len(spec.env.requirements)
    what = f"lock {spec.lock_file.name}" if spec.lock_file else f"{count} requirement{'s' * (count != 1)}"
    if spec.env.requirements_file and not spec.lock_file:
        what += f" + {spec.env.requirements_file.name}"
    return f"Python {spec.interpreter.version}, {what}, {spec.installer.name}"


def raise_first_failure(outcomes: Sequence[Outcome]) -> None:
    """Raise the error of the first env that failed to build, saying the previous build stays in use.

    What `sync`, `run` and `python` do after syncing: one line for the first failure (each
    failure's own line was shown as it happened).
    """
    first = next((o.error for o in outcomes if o.error), None)
    if first is not None:
        log = f"; log: {first.log}" if first.log else ""
        raise BuildError(f"{first}; the previous build (if any) is still in use{log}", env=first.env, log=first.log)
