"""Process isolation: an env in a worker process of its own interpreter, behind the runtime's API.

``ProcessEnv`` (env.py) starts the worker (worker.py) and speaks to it over a
socket pair (channel.py: requests, replies, threads; wire.py: frames;
codec.py: what crosses by value; handles.py, proxy.py: what stays behind;
buffers.py: large buffers through shared memory; exceptions.py: errors with
their remote tracebacks). The worker loads the files beside worker.py under a
private name, never this package, so nothing here may import outside it.
"""

from __future__ import annotations

from .env import ProcessEnv
from .proxy import Proxy

__all__ = ["ProcessEnv", "Proxy"]
