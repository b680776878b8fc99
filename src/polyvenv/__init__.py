"""polyvenv: many isolated Python environments, side by side in one program.

This module re-exports the public API only. The errors are defined here
(they import nothing); the rest loads on first use, so importing polyvenv
costs a host nothing. Type checkers see every name (the imports under
``TYPE_CHECKING`` never run).
"""

from __future__ import annotations

from .errors import (
    BuildError,
    ConfigError,
    DeclaredEnvWarning,
    EnvImportError,
    EnvNotFound,
    ExtensionNotSupported,
    ForeignPath,
    GenerationRetired,
    InterpreterMismatch,
    InterpreterNotFound,
    LoaderNotSupported,
    LockFileOutdated,
    NotBuilt,
    NotResolvable,
    PolyvenvError,
    PolyvenvWarning,
    ProcessGlobalState,
    ProcessGlobalStateWarning,
    PthFileWarning,
    ReloadFailed,
    ReloadWarning,
    RemoteError,
    ShimConflict,
    UsageError,
    VocabularyConflict,
    VocabularyConflictWarning,
    WorkerDied,
    WorkerRestarted,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: a host pays for nothing
if TYPE_CHECKING:
    from typing import Any

    from .process.env import ProcessEnv
    from .provision.events import SyncEvent
    from .runtime.env import Env
    from .runtime.import_map import install_import_map
    from .runtime.protocol import EnvProtocol
    from .runtime.watch import AddonChange, on_reload
    from .runtime.workspace import Workspace

__version__ = "0.1.0"

_LAZY = {
    "Workspace": "polyvenv.runtime.workspace",
    "Env": "polyvenv.runtime.env",
    "EnvProtocol": "polyvenv.runtime.protocol",
    "ProcessEnv": "polyvenv.process.env",
    "SyncEvent": "polyvenv.provision.events",
    "install_import_map": "polyvenv.runtime.import_map",
    "AddonChange": "polyvenv.runtime.watch",
    "on_reload": "polyvenv.runtime.watch",
}

__all__ = [
    "BuildError", "ConfigError", "EnvImportError", "EnvNotFound", "ExtensionNotSupported", "ForeignPath",
    "InterpreterMismatch", "InterpreterNotFound", "LockFileOutdated", "NotBuilt", "PolyvenvError", "ShimConflict",
    "UsageError", "LoaderNotSupported", "PthFileWarning", "NotResolvable",
    "VocabularyConflictWarning", "ProcessGlobalStateWarning", "RemoteError", "WorkerDied", "PolyvenvWarning",
    "WorkerRestarted", "VocabularyConflict", "ProcessGlobalState", "DeclaredEnvWarning", "SyncEvent",
    "GenerationRetired", "ReloadFailed", "ReloadWarning",
    "Workspace", "Env", "EnvProtocol", "ProcessEnv", "install_import_map", "AddonChange", "on_reload",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'polyvenv' has no attribute {name!r}")
