"""What every env object answers, in-process (``Env``) or in a worker (``ProcessEnv``).

``Workspace.env(name)`` gives one or the other, as the env's ``isolation``
says; code written against ``EnvProtocol`` works with both.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterable, Protocol

if TYPE_CHECKING:
    from importlib.metadata import Distribution, EntryPoints, PackagePath

    from ..process.env import ProcessEnv
    from .env import Env


class EnvProtocol(Protocol):
    """An env ready to import from; its metadata answers for its own distributions only."""

    name: str

    def import_module(self, name: str) -> Any:
        """The env's module ``name``: the module itself (``Env``), or a proxy of it (``ProcessEnv``)."""
        ...

    def unload(self) -> None:
        """Let go of what the env loaded and of the build it read; the next import reads it afresh."""
        ...

    def reload(self) -> list[str]:
        """A new generation of what changed on disk (``Env``: the changed names and what imports them;
        ``ProcessEnv``: a fresh worker); the names reloaded, for the host to register their new objects."""
        ...

    @property
    def build(self) -> Path | None:
        """The build this load of the env reads from, or None before its first use."""
        ...

    @property
    def metadata(self) -> ModuleType:
        """``importlib.metadata`` answering for the env's distributions."""
        ...

    def distributions(self) -> Iterable[Distribution]: ...

    def distribution(self, name: str) -> Distribution: ...

    def version(self, name: str) -> str: ...

    def entry_points(self, **params: Any) -> EntryPoints: ...

    def files(self, name: str) -> list[PackagePath] | None: ...


if TYPE_CHECKING:  # mypy (scripts/test) proves both satisfy it
    def _both(env: Env, process: ProcessEnv) -> tuple[EnvProtocol, EnvProtocol]:
        return env, process
