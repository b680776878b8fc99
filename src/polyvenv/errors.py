"""Every error polyvenv raises on purpose derives from PolyvenvError.

Each class carries the exit code the command line uses for it: 2 for a
usage or configuration problem the user must fix in what they wrote, 1 for
work that failed. ``str(error)`` is the one clear line printed first: what
failed, for which env, and what to do. ``env`` and ``path`` say the same for
a program: the env the failure is about and the file or directory (None
where the failure is about neither).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: `import polyvenv` stays free
if TYPE_CHECKING:
    from typing import Any, Union

    StrPath = Union[str, os.PathLike[str]]


class PolyvenvError(Exception):
    """Base class of polyvenv's own errors."""

    exit_code = 1
    env: str | None
    path: str | None

    def __init__(self, *args: Any, env: str | None = None, path: StrPath | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env = env
        self.path = os.fspath(path) if path is not None else getattr(self, "path", None)


class ConfigError(PolyvenvError):
    """The configuration is invalid; ``problems`` lists every problem found."""

    exit_code = 2

    def __init__(self, problems: list[str] | str, *, env: str | None = None, path: StrPath | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        first = self.problems[0]
        more = len(self.problems) - 1
        super().__init__(first if not more else f"{first} (and {more} more problem{'s' * (more > 1)})",
                         env=env, path=path)


class UsageError(PolyvenvError):
    """The command line asked for something that cannot be done as asked."""

    exit_code = 2


class InterpreterNotFound(ConfigError):
    """A requested Python interpreter does not exist on this machine."""


class BuildError(PolyvenvError):
    """Building an environment failed; the previous build is untouched."""

    def __init__(self, message: str, env: str | None = None, log: str | None = None, *,
                 path: StrPath | None = None) -> None:
        super().__init__(message, env=env, path=path)
        self.log = log


class Interrupted(PolyvenvError):
    """A signal (Ctrl-C, SIGTERM) stopped the command; it exits 128 + the signal's number."""

    def __init__(self, message: str, signum: int = 2) -> None:
        super().__init__(message)
        self.signal = signum
        self.exit_code = 128 + signum


class LockFileOutdated(PolyvenvError):
    """``sync --locked`` found a lock file that no longer matches its env."""


class ShimConflict(PolyvenvError):
    """Two envs, or an env and a foreign file, want the same command name."""


class ForeignPath(PolyvenvError):
    """A path polyvenv would delete or replace is not one it made: refused, left as it is."""

    exit_code = 2


class EnvNotFound(UsageError):
    """A command named an env the workspace does not declare."""


class NotBuilt(PolyvenvError):
    """An env was used before it was built, or its build is broken."""


class EnvImportError(PolyvenvError, ModuleNotFoundError):
    """An env's code imported a module the env does not have (nor shares with the host)."""

    def __init__(self, env: str, module: str, looked_in: list[str], top_level: bool = True) -> None:
        where = ", ".join(looked_in) or (
            "nowhere (the env has no site-packages)" if top_level else "nowhere (its package has no directory)")
        fix = (f"add the distribution that provides it to the env's requirements, or list "
               f"{module.split('.')[0]!r} in its `shared` to use the host's" if top_level else
               f"the env's {module.split('.')[0]} has no such submodule: check the version the env installs")
        super().__init__(f"env {env!r} has no module {module!r} (looked in {where}); {fix}", name=module, env=env)


class ExtensionNotSupported(PolyvenvError, ImportError):
    """Compiled code a namespace env cannot load side by side (today: bytecode without its source)."""


class LoaderNotSupported(ExtensionNotSupported):
    """A module an env's own finder or path hook provides with a loader whose code polyvenv cannot run
    under the env's names (a zip archive's, a host library's)."""


class InterpreterMismatch(PolyvenvError, ImportError):
    """A namespace env built for another Python (version, ABI, free-threaded or not) than the host's:
    in-process loading needs the host's own; ``isolation = "process"`` (or ``"auto"``) runs it in a worker."""


class NotResolvable(PolyvenvError, ImportError):
    """Env code asked the standard library to run or import something it can only resolve on the host's
    names (``runpy.run_path`` of a directory or zip archive), or a child process of env code cannot load
    its parent's envs under the names their modules have there (runtime/children.py)."""


class GenerationRetired(PolyvenvError, ImportError):
    """Code of an env's generation that ``reload()`` replaced imported a module of that generation which
    is no longer loaded (its loaded objects keep working; it cannot load more)."""


class ReloadFailed(PolyvenvError):
    """``Env.reload()`` could not import the env's new generation (a syntax or import error in a file):
    the old generation keeps running, untouched."""


class ObjectFromAnotherEnv(PolyvenvError, TypeError):
    """An object of one env (or of the host) reached code of another env (or of the host) that loads its
    distribution separately: ``env`` is the receiving side, ``origin`` the object's (None: the host's),
    ``distribution`` the one they do not share."""

    def __init__(self, message: str, *, env: str | None, origin: str | None, distribution: str) -> None:
        super().__init__(message, env=env)
        self.origin = origin
        self.distribution = distribution


class WorkerDied(PolyvenvError):
    """The worker process of an env with process isolation died (or was stopped) before it answered."""


class PolyvenvWarning(UserWarning):
    """Base class of polyvenv's own warnings."""


class ReloadWarning(PolyvenvWarning):
    """``Workspace.watch()`` saw a change it could not reload (the old generation keeps running)."""


class WorkerRestarted(PolyvenvWarning):
    """A call interrupted in the host (Ctrl-C) did not stop in its env's worker, so the worker was stopped:
    its objects are gone, and the next call on the env starts a fresh worker."""


class RemoteError(PolyvenvError):
    """An exception raised in an env's worker, of a type that is not builtin: each remote type gets a
    subclass of this named after it (``remote_type`` is its qualified name), with the remote traceback
    as ``remote_traceback`` and as its ``__cause__``."""


class PthFileWarning(PolyvenvWarning):
    """A line of an env's ``.pth`` file failed when the env was loaded; the rest of the env loads without it,
    as ``site`` goes on for a venv."""


class VocabularyConflictWarning(PolyvenvWarning):
    """An env has its own version of a package whose objects cross API boundaries (typing_extensions,
    annotated_types): the host's objects of that package are not the env's, so they may be ignored."""


class ProcessGlobalStateWarning(PolyvenvWarning):
    """An env's compiled code changed state one process has once (signal handlers, atexit, the C locale):
    envs sharing the process share it; ``isolation = "process"`` gives the env its own."""


class DeclaredEnvWarning(PolyvenvWarning):
    """An env declared from code (``Workspace.add_env``) no longer passes the config's checks when its
    workspace is loaded (its folder was deleted meanwhile): it is left out, the other envs load."""


VocabularyConflict = VocabularyConflictWarning  # the names before 0.2, kept
ProcessGlobalState = ProcessGlobalStateWarning
