"""A workspace: the declared envs of one project, and where their builds live."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, NamedTuple

from ..config import DEFAULT_PATTERN, Config, EnvSpec, config_path, load_config
from ..errors import NotBuilt
from .manifest import Manifest, read_manifest

if TYPE_CHECKING:
    from ..process.env import ProcessEnv
    from ..provision.events import SyncEvent
    from ..provision.progress import Progress
    from ..provision.sync import Outcome
    from .env import Env
    from .watch import Callback, Watch


def isolation(declared: str, manifest: Manifest) -> str:
    """``"namespace"`` or ``"process"``: what an env declared, or for ``"auto"`` what the probe of its
    build found (runtime/probe.py); a build without a verdict, or for another Python, runs in a worker."""
    if declared != "auto":
        return declared
    if manifest.verdict != "namespace":
        return "process"
    from .abi import mismatch

    return "process" if mismatch(manifest) else "namespace"


class Discovered(NamedTuple):
    """What ``Workspace.discover`` found: ``envs``, one per folder holding a requirements file; ``added``,
    those this workspace did not know before; ``gone``, envs discovered there before whose folder is
    gone (``remove_env`` uninstalls each)."""

    envs: tuple[str, ...]
    added: tuple[str, ...]
    gone: tuple[str, ...]


class Workspace:
    """The envs declared by a polyvenv.toml or pyproject.toml, found upward from a path."""

    def __init__(self, config: Config) -> None:
        import _thread  # threading's lock, without importing threading (a host may use no env)

        self.config = config
        self._envs: dict[str, Env | ProcessEnv] = {}
        self._envs_lock = _thread.RLock()

    @classmethod
    def load(cls, path: str | Path = ".", config_file: str | Path | None = None) -> Workspace:
        """The workspace of the config file at or above ``path`` (or ``config_file``): from the copy `sync`
        left of that very file while it is current (a host's start-up should not pay for a TOML parser,
        and Python < 3.11 has none), else from the file."""
        from ..snapshot import read

        found = config_path(path, config_file)
        config = read(found) if found is not None and found.is_file() else None
        return cls(config if config is not None else load_config(Path(path), config_file))

    @classmethod
    def open(cls, path: str | Path = ".") -> Workspace:
        """The workspace at the directory ``path`` itself, with or without a config file: for a host
        that declares its envs from code (``add_env``, ``discover``) and owns no config file. Its envs,
        and what was declared from code, live in ``path/.polyvenv``, so a restart finds them."""
        from ..config import workspace_config

        return cls(workspace_config(path))

    @property
    def root(self) -> Path:
        return self.config.root

    @property
    def env_names(self) -> list[str]:
        return list(self.config.envs)

    def env_dir(self, name: str) -> Path:
        """The env's stable path (a link to its current build)."""
        self.config.env(name)  # raises EnvNotFound with a suggestion
        return self.config.envs_dir / name

    def manifest(self, name: str) -> Manifest:
        """The built env's manifest; NotBuilt if it was never built completely."""
        manifest = read_manifest(self.env_dir(name))
        if manifest is None:
            raise NotBuilt(f"env {name!r} is not built: run `polyvenv sync {name}` (or Workspace.sync())",
                           env=name, path=self.env_dir(name))
        return manifest

    def env(self, name: str) -> Env | ProcessEnv:
        """The built env ``name``, ready to import from (one Env, or ProcessEnv, object per name, ever,
        whichever threads ask first): both satisfy ``polyvenv.EnvProtocol``; which one is the env's
        ``isolation`` (for ``"auto"``, the verdict the probe recorded in its build's manifest: ``isolation``
        above)."""
        env = self._envs.get(name)
        if env is None:
            with self._envs_lock:  # two Envs of one name would load its modules twice, one never unloaded
                env = self._env(name)
        return env

    def _env(self, name: str) -> Env | ProcessEnv:
        """``env(name)``, the lock held: the one made before, else a new one."""
        from .env import Env
        from .sitedir import site_packages

        env = self._envs.get(name)
        if env is None:
            spec = self.config.env(name)
            manifest = self.manifest(name)  # NotBuilt, with the command that fixes it
            if isolation(spec.isolation, manifest) == "process":  # a worker process of the env's own interpreter
                from ..process import ProcessEnv

                env = self._envs[name] = ProcessEnv(name, self.env_dir(name), manifest, spec.source)
                return env
            roots = [site_packages(self.env_dir(name)), spec.source]  # source and shared: as declared now
            env = Env(name, [r for r in roots if r is not None], spec.shared, manifest, prefix=self.env_dir(name))
            env.check_interpreter()  # built for another Python than this one: refused now, saying what to do
            self._envs[name] = env
        return env

    def watch(self, callback: Callback | None = None, interval: float = 0.5, watcher: str = "auto",
              addons: str | Path | None = None, log: IO[str] | None = None, **sync_options: Any) -> Watch:
        """Reload the loaded envs whose ``source`` or build changes on disk, then ``callback(env, changed)``
        (the names reloaded, or the ReloadFailed that kept the old generation): a running watch, also a
        context manager; ``stop()`` ends it (runtime/watch.py). With ``addons=DIR``, also install the
        add-on folders dropped into DIR and uninstall those taken out (``discover``, ``sync(name,
        **sync_options)``, ``remove_env``), each told as ``callback(env, AddonChange(...))``. With
        ``log=sys.stderr``, each reload is told there in one line, and so is each failure (not warned)."""
        from .watch import Watch

        return Watch(self, callback, interval, watcher, addons, log, **sync_options)

    def sync(self, *names: str, progress: Callable[[SyncEvent], object] | Progress | None = None,
             **options: Any) -> list[Outcome]:
        """Build what is missing or stale, as `polyvenv sync` does (needs the build dependencies); raise
        the first env's error, once every env was tried. ``progress``: a callable given each SyncEvent
        as it happens (``polyvenv.SyncEvent``: started, running, finished, then one ``done`` per env),
        or a display of provision/progress.py; without it, the terminal's display. ``options`` are
        `sync`'s: ``offline``, ``wheelhouse`` (the only source offline), ``jobs``, ``quiet``, ..."""
        from ..provision.sync import sync

        events = None
        if progress is not None and not hasattr(progress, "started"):
            from ..provision.events import Events

            progress = events = Events(progress)
        if options.get("wheelhouse") is not None:
            options["wheelhouse"] = Path(options["wheelhouse"]).resolve()
        outcomes = sync(self.config, names, progress=progress, **options)  # type: ignore[arg-type]
        if events is not None:
            events.done(outcomes)
        for outcome in outcomes:
            if outcome.error:
                raise outcome.error
        return outcomes

    # -- add-ons declared from code, installed and uninstalled in the running host ---------------

    def add_env(self, name: str, **settings: Any) -> EnvSpec:
        """Declare env ``name`` from code, or change its declaration: an ``[envs.NAME]`` table's keys as
        keyword arguments (``requirements=[...]``, ``requirements_file=``, ``source=``, ``python=``,
        ``isolation=``, ``shared=[...]``, ``private=[...]``, ``scripts=``, ``provides=``), relative paths from the
        workspace root. Checked as a config file's tables are (ConfigError, the same messages), and
        kept in the envs dir (declared.py): a restart, `polyvenv list` and `gc` see it.

        ``sync(name)`` builds it. A new build (changed requirements or python) is loaded after that
        sync by ``env.unload()`` and importing again; a changed ``source``, ``shared`` or
        ``isolation`` (what a loaded env is made from) unloads the env now, and the next ``env(name)``
        is made from the new declaration."""
        from ..declared import declare

        with self._envs_lock:
            before = self.config.envs.get(name)
            self.config = declare(self.config, name, settings)
            spec = self.config.envs[name]
            made = self._envs.get(name)
            if made is not None and before is not None and _made_from(before) != _made_from(spec):
                del self._envs[name]
                made.unload()
        return spec

    def remove_env(self, name: str) -> str:
        """Uninstall env ``name`` in the running host, and say what was deleted: its modules unloaded
        (``env.unload()``: objects the host holds keep working until it drops them), its declaration
        from code forgotten, its builds, link and shims deleted as `polyvenv remove` does (a build
        another running process loads from is kept, and the line says so). Other envs are untouched.
        ConfigError for an env the config file or a discovery declares: remove it there."""
        from ..declared import declarations, forget
        from ..errors import EnvNotFound
        from ..provision.cleanup import remove

        with self._envs_lock:
            declared = name in self.config.envs or name in declarations(self.config.envs_dir)
            config = forget(self.config, name)
            env = self._envs.pop(name, None)
            if env is not None:
                env.unload()  # first: the lease this process holds would keep the build
            self.config = config
            try:
                return remove(config, name)
            except EnvNotFound:
                if declared:
                    return f"{name}: forgotten (nothing of it was built)"
                raise

    def discover(self, directory: str | Path, pattern: str = DEFAULT_PATTERN) -> Discovered:
        """What `polyvenv sync --discover DIR` declares, from code: one env per folder of ``directory``
        holding a requirements file (``pattern``), named after the folder, its ``source`` that folder.
        Remembered, as the command does, so a restart sees them too; ``sync`` builds them. A folder
        dropped in since is among ``added``; one deleted since is among ``gone``, for ``remove_env``."""
        from ..config import Discovery, remember_discovery, workspace_config

        discovery = Discovery(Path(directory).resolve(), pattern)
        if not discovery.dir.is_dir():
            from ..errors import ConfigError

            raise ConfigError(f"Workspace.discover: {discovery.dir} is not a directory: make it, or pass the "
                              "directory that holds the add-on folders")
        with self._envs_lock:
            before = {n for n, spec in self.config.envs.items() if _discovered_in(spec, discovery.dir)}
            remember_discovery(self.config, discovery)
            config = load_config(self.root, self.config.path) if self.config.path else workspace_config(self.root)
            found = tuple(n for n, spec in config.envs.items() if _discovered_in(spec, discovery.dir))
            self.config = config
        gone = sorted(before.difference(found) | self._orphans_from(discovery.dir))
        return Discovered(found, tuple(n for n in found if n not in before), tuple(gone))

    def _orphans_from(self, directory: Path) -> set[str]:
        """Envs built from a folder of ``directory`` that no declaration names any more (deleted while
        no process of this workspace looked)."""
        envs_dir = self.config.envs_dir
        names = [e for e in (os.listdir(envs_dir) if envs_dir.is_dir() else []) if not e.startswith(".")]
        orphans = set()
        for name in names:
            if name in self.config.envs or not (envs_dir / name).is_symlink():
                continue
            manifest = read_manifest(envs_dir / name)
            source = manifest.source if manifest is not None else None
            if source is not None and Path(source).parent == directory:
                orphans.add(name)
        return orphans

    def explain(self, package: str | None = None) -> dict[str, Any]:
        """What `polyvenv why [PKG] --json` prints: per distribution, which envs have which version, what is
        shared with the host (this interpreter) and between envs, and the pins behind each duplicate."""
        from ..provision.explain import explain

        return explain(self.config, package)

    def __repr__(self) -> str:
        return f"<polyvenv.Workspace {self.config.describe()}: {', '.join(self.env_names) or 'no envs'}>"


def _made_from(spec: EnvSpec) -> tuple[Any, ...]:
    """What a loaded Env (or ProcessEnv) object is made from: a change to it needs a new object."""
    return spec.source, spec.shared, spec.isolation


def _discovered_in(spec: EnvSpec, directory: Path) -> bool:
    """``spec`` is an env ``discover`` found in ``directory`` (one per folder, its source that folder)."""
    return spec.script_dir is not None and spec.source is not None and spec.source.parent == directory
