"""An exception raised on one side, raised again on the other with the remote traceback attached.

A builtin exception type comes back as itself (``except KeyError`` keeps
working); any other type as a subclass of the receiving side's remote error
class named after it, which also derives from the remote type's nearest
builtin base (a remote ``json.JSONDecodeError`` is still a ``ValueError``).
The remote traceback text is the ``__cause__``, so it prints above the local
one, and is kept as ``remote_traceback``.
"""

from __future__ import annotations

import builtins

_CLASSES: dict[tuple, type] = {}


class RemoteTraceback(Exception):
    """The traceback of the exception as it was raised on the other side."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text.rstrip()}\n"""'


def describe(error: BaseException) -> tuple:
    """What the other side needs to raise ``error`` again: type names, builtin base, args, text."""
    import traceback

    kind = type(error)
    base = next((c.__name__ for c in kind.__mro__ if c.__module__ == "builtins" and issubclass(c, Exception)
                 and getattr(builtins, c.__name__, None) is c), None)
    exact = kind.__module__ == "builtins" and base == kind.__name__
    text = "".join(traceback.format_exception(kind, error, error.__traceback__))
    return (kind.__module__, kind.__qualname__, base, exact, error.args if exact else (), str(error), text)


def rebuild(description: tuple, remote_error: type) -> BaseException:
    """The exception to raise here, its remote traceback attached."""
    module, qualname, base, exact, args, message, text = description
    error = None
    if exact and _builtin_exception(base) is not None:
        try:
            error = _builtin_exception(base)(*args)
        except Exception:
            error = None
    if error is None:
        error = _remote_class(remote_error, module, qualname, base)(message)
    error.remote_traceback = text
    error.__cause__ = RemoteTraceback(text)
    return error


def _remote_class(remote_error: type, module: str, qualname: str, base: str | None) -> type:
    key = (remote_error, module, qualname, base)
    cls = _CLASSES.get(key)
    if cls is None:
        namespace = {"__module__": module, "__qualname__": qualname, "remote_type": f"{module}.{qualname}"}
        name = qualname.rpartition(".")[2]
        builtin = _builtin_exception(base) or Exception
        try:
            cls = type(name, (remote_error, builtin) if builtin is not Exception else (remote_error,), namespace)
        except TypeError:  # a base whose layout cannot be mixed in
            cls = type(name, (remote_error,), namespace)
        _CLASSES[key] = cls
    return cls


def _builtin_exception(name: str | None) -> type | None:
    """The builtin exception class ``name``: only a class, never a function the peer names (``exec``)."""
    kind = getattr(builtins, name, None) if name else None
    return kind if isinstance(kind, type) and issubclass(kind, BaseException) else None
