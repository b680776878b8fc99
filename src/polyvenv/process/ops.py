"""What one side may ask of the other: a named operation, run where the objects live.

A request names one of these and gives its arguments (objects of the side
that runs it arrive as themselves, see codec.py). The worker also answers
``import``; the host never does: the env may only use what it was given.
"""

from __future__ import annotations

import builtins
import importlib
import operator
from typing import Any


def call(function: Any, args: tuple, kwargs: dict) -> Any:
    return function(*args, **kwargs)


def context_enter(obj: Any) -> Any:
    return type(obj).__enter__(obj)


def context_exit(obj: Any, error: tuple | None) -> Any:
    """``__exit__`` with an exception like the one raised on the other side (a builtin type, else Exception)."""
    if error is None:
        return type(obj).__exit__(obj, None, None, None)
    name, message = error
    kind = getattr(builtins, name, None) if name else None
    if not (isinstance(kind, type) and issubclass(kind, BaseException)):
        kind = Exception
    try:
        exc = kind(message)
    except Exception:
        exc = Exception(message)
    return type(obj).__exit__(obj, type(exc), exc, None)


def one_sided(name: str) -> Any:
    """``obj.__<name>__(other)`` as the object's own type answers it, NotImplemented included.

    Binary operators and comparisons run one side only: the caller's Python then tries the reflected
    method itself, as it would locally. Running the whole ``a == b`` protocol where ``a`` lives would
    bounce between the processes for ever when both sides answer NotImplemented (a host function
    compared with a numpy sentinel in the worker: numpy's ``vectorize`` does that).
    """
    dunder = f"__{name}__"

    def op(obj: Any, other: Any) -> Any:
        method = getattr(type(obj), dunder, None)
        return NotImplemented if method is None else method(obj, other)

    return op


BINARY = ("add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow", "lshift", "rshift",
          "and", "or", "xor")
UNARY = ("neg", "pos", "abs", "invert", "index")
COMPARE = ("eq", "ne", "lt", "le", "gt", "ge")

OPS: dict[str, Any] = {
    "getattr": getattr, "setattr": setattr, "delattr": delattr, "call": call, "dir": dir,
    "repr": repr, "str": str, "format": format, "bytes": bytes, "int": int, "float": float, "complex": complex,
    "bool": bool, "hash": hash, "len": len, "iter": iter, "next": next, "reversed": reversed,
    "contains": operator.contains, "getitem": operator.getitem, "setitem": operator.setitem,
    "delitem": operator.delitem, "enter": context_enter, "exit": context_exit,
    "isinstance": isinstance, "issubclass": issubclass,
    **{name: getattr(operator, name) for name in UNARY},
    **{name: one_sided(name) for name in BINARY + COMPARE},
    **{"r" + name: one_sided("r" + name) for name in BINARY},
}
WORKER_OPS = {**OPS, "import": importlib.import_module}
