"""A workspace: the declared envs of one project, and where their builds live."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config, config_path, load_config
from ..errors import NotBuilt
from .manifest import Manifest, read_manifest

if TYPE_CHECKING:
    from ..process.env import ProcessEnv
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

    def watch(self, callback: Callback | None = None, interval: float = 0.5, watcher: str = "auto") -> Watch:
        """Reload the loaded envs whose ``source`` or build changes on disk, then ``callback(env, changed)``
        (the names reloaded, or the ReloadFailed that kept the old generation): a running watch, also a
        context manager; ``stop()`` ends it (runtime/watch.py)."""
        from .watch import Watch

        return Watch(self, callback, interval, watcher)

    def sync(self, *names: str, **options: Any) -> list[Outcome]:
        """Build what is missing or stale, as `polyvenv sync` does (needs the build dependencies)."""
        from ..provision.sync import sync

        outcomes = sync(self.config, names, **options)
        for outcome in outcomes:
            if outcome.error:
                raise outcome.error
        return outcomes

    def __repr__(self) -> str:
        return f"<polyvenv.Workspace {self.config.describe()}: {', '.join(self.env_names) or 'no envs'}>"
