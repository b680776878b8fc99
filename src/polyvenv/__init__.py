"""polyvenv: many isolated Python environments, side by side in one program.

This module re-exports the public API only. Importing it costs the host
nothing beyond the standard library.
"""

from .errors import (
    BuildError,
    ConfigError,
    EnvNotFound,
    InterpreterNotFound,
    LockFileOutdated,
    NotBuilt,
    PolyvenvError,
    ShimConflict,
    UsageError,
)
__version__ = "0.1.0"


def __getattr__(name: str):
    """The API beyond the errors loads on first use: importing polyvenv costs a host nothing."""
    if name == "Workspace":
        from .runtime.workspace import Workspace

        return Workspace
    raise AttributeError(f"module 'polyvenv' has no attribute {name!r}")

__all__ = [
    "BuildError", "ConfigError", "EnvNotFound", "InterpreterNotFound", "LockFileOutdated",
    "NotBuilt", "PolyvenvError", "ShimConflict", "UsageError", "Workspace", "__version__",
]
