"""The worker: run by path with the env's own interpreter in isolated mode, it serves its host.

    <env>/bin/python -I .../polyvenv/process/worker.py FD BELL_FD HOST_NUMPY [PATH...]

``-I`` keeps the host's PYTHONPATH, user site and working directory out:
the worker sees the standard library, the env's site-packages (its venv's
``site``) and PATH... (the env's ``source``). Its own modules, the files
beside this one, are loaded as the private package ``_polyvenv_process``, so
no ``polyvenv`` name exists in the worker for env code to collide with. FD and
BELL_FD are the worker's ends of the host's two socket pairs (channel.py);
they are the worker's alone: close-on-exec, and closed in a child forked by
the env's code, so a background process never keeps the host waiting on a
dead worker. When the host goes (exit, crash, kill -9) both reach their end, and the
bell's watcher thread ends the process, busy calls included.
"""

import os
import sys


class HostError(Exception):
    """An exception raised by host code that the env called back, of a type the env does not know."""


def _load_package():
    here = os.path.dirname(os.path.abspath(__file__))
    if here in sys.path:  # only without -I
        sys.path.remove(here)
    import types

    package = types.ModuleType("_polyvenv_process")
    package.__path__ = [here]
    sys.modules[package.__name__] = package
    import importlib

    return importlib.import_module("_polyvenv_process.channel"), importlib.import_module("_polyvenv_process.ops")


def _exit() -> None:
    """The host is gone: so is this process, whatever its threads are doing."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(0)


def main(argv: list) -> None:
    fd, descriptors, bell, host_numpy, *paths = argv
    sys.argv[:] = [os.path.abspath(__file__)]
    sys.path.extend(paths)
    channel_module, ops = _load_package()
    import _socket
    import importlib.util
    import pickle

    sockets = [_socket.socket(fileno=int(n)) for n in (fd, descriptors, bell)]
    for sock in sockets:  # the worker's alone: not the processes its env's code starts
        os.set_inheritable(sock.fileno(), False)
    os.register_at_fork(after_in_child=lambda: [sock.close() for sock in sockets])
    channel = channel_module.Channel(sockets[0], sockets[1], 1, ops.WORKER_OPS, HostError, _exit, "host", serve=True)
    channel.on_close = _exit
    channel.watch(sockets[2], _exit)
    channel.peer_numpy = host_numpy == "1"
    channel.cancel_on_main()
    numpy = importlib.util.find_spec("numpy") is not None
    hello = pickle.dumps((os.getpid(), tuple(sys.version_info[:3]), numpy), 5)
    channel.wire.send(channel_module.HELLO, 0, 0, hello)
    channel.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
