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
from .runtime.workspace import Workspace

__version__ = "0.1.0"

__all__ = [
    "BuildError", "ConfigError", "EnvNotFound", "InterpreterNotFound", "LockFileOutdated",
    "NotBuilt", "PolyvenvError", "ShimConflict", "UsageError", "Workspace", "__version__",
]
