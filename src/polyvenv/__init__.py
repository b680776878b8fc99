"""polyvenv: many isolated Python environments, side by side in one program.

This module re-exports the public API only. The errors are defined here
(they import nothing); the rest loads on first use, so importing polyvenv
costs a host nothing.
"""

from .errors import (
    BuildError,
    ConfigError,
    EnvImportError,
    EnvNotFound,
    ExtensionNotSupported,
    ForeignPath,
    InterpreterNotFound,
    LockFileOutdated,
    NotBuilt,
    PolyvenvError,
    PolyvenvWarning,
    ProcessGlobalState,
    RemoteError,
    ShimConflict,
    UsageError,
    VocabularyConflict,
    WorkerDied,
    WorkerRestarted,
)

__version__ = "0.1.0"

_LAZY = {
    "Workspace": "polyvenv.runtime.workspace",
    "Env": "polyvenv.runtime.env",
    "ProcessEnv": "polyvenv.process.env",
    "install_import_map": "polyvenv.runtime.import_map",
}

__all__ = [
    "BuildError", "ConfigError", "EnvImportError", "EnvNotFound", "ExtensionNotSupported", "ForeignPath",
    "InterpreterNotFound", "LockFileOutdated", "NotBuilt", "PolyvenvError", "ShimConflict", "UsageError",
    "VocabularyConflict", "ProcessGlobalState", "RemoteError", "WorkerDied", "PolyvenvWarning",
    "WorkerRestarted", *_LAZY, "__version__",
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'polyvenv' has no attribute {name!r}")
