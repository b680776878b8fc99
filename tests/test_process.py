"""Process isolation: envs in real worker processes behind the runtime's API (issue 5).

Envs are built with the real CLI from the generated wheelhouse, with a
`source` directory holding the module `pvdemo` below; the test process is
the host. The PyPI flavour (numpy 1.26.4 in a worker beside numpy 2 in the
host) is under the integration marker.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from pathlib import Path

import pytest

from conftest import MINORS, PYENV, Workspace, find_python

SRC = Path(__file__).parent.parent / "src"
sys.path.insert(0, str(SRC))
import polyvenv  # noqa: E402
from polyvenv.process import ProcessEnv  # noqa: E402

DEMO = '''
import contextlib, os, sys, threading, time, weakref

LIVE = weakref.WeakSet()


class Boom(Exception):
    pass


class BadValue(ValueError):
    pass


class Counter:
    def __init__(self, start=0):
        self.n = start
        self.items = {}
        LIVE.add(self)

    def inc(self, by=1):
        self.n += by
        return self.n

    def __len__(self):
        return self.n

    def __getitem__(self, key):
        return self.items[key]

    def __setitem__(self, key, value):
        self.items[key] = value

    def __delitem__(self, key):
        del self.items[key]

    def __contains__(self, key):
        return key in self.items

    def __iter__(self):
        return iter(sorted(self.items))

    def __eq__(self, other):
        return isinstance(other, Counter) and other.n == self.n

    def __hash__(self):
        return hash(self.n)

    def __repr__(self):
        return f"Counter({self.n})"

    def __str__(self):
        return f"counter at {self.n}"


class _NoValue:
    pass


NOVALUE = _NoValue()


def is_given(value):
    """numpy.vectorize's `pyfunc != np._NoValue`: a comparison that both sides answer NotImplemented."""
    return value != NOVALUE


def squares(n):
    for i in range(n):
        yield i * i


@contextlib.contextmanager
def opened(log):
    log.append("enter")
    try:
        yield "resource"
    except KeyError:
        log.append("handled KeyError")
    finally:
        log.append("exit")


def apply(function, *args, **kwargs):
    return function(*args, **kwargs)


def ping_pong(callback, depth):
    """Calls back into the host, which calls back in here, ``depth`` times."""
    if depth == 0:
        return ["bottom", threading.get_ident()]
    return callback(depth, lambda: ping_pong(callback, depth - 1))


def call_from_thread(callback):
    result = []
    thread = threading.Thread(target=lambda: result.append(callback("from a worker thread")))
    thread.start()
    thread.join()
    return result[0]


def boom():
    raise Boom("the remote thing broke")


def bad_value():
    raise BadValue("not like that")


def divide(a, b):
    return a / b


STOPPED = []


def sleep(seconds):
    try:
        time.sleep(seconds)
    except KeyboardInterrupt:
        STOPPED.append(seconds)
        raise
    return seconds


def stubborn(seconds):
    """Ignores KeyboardInterrupt, as C code that never checks for signals would."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            time.sleep(0.05)
        except KeyboardInterrupt:
            STOPPED.append("ignored")
    return seconds


def background(how, seconds):
    """A process of the env's own that outlives this call: exec'd keeping every inheritable descriptor, or forked."""
    if how == "exec":
        import subprocess
        return subprocess.Popen(["sleep", str(seconds)], close_fds=False).pid
    pid = os.fork()
    if pid == 0:
        time.sleep(seconds)
        os._exit(0)
    return pid


def die(code):
    os._exit(code)


def info():
    import importlib.util
    return {"pid": os.getpid(), "executable": sys.executable, "path": sys.path,
            "version": list(sys.version_info[:2]), "polyvenv": importlib.util.find_spec("polyvenv") is not None,
            "main": getattr(sys.modules["__main__"], "__file__", None)}


def echo(value):
    return value


def live():
    import gc
    gc.collect()
    return len(LIVE)
'''


def make_project(root: Path, wheelhouse: Path, python: str | None = None) -> Path:
    project = root / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "pvdemo.py").write_text(DEMO)
    ws = Workspace(project, wheelhouse)
    pin = f"python = {json.dumps(python)}\n" if python else ""
    ws.write(f"""
        [envs.w]
        requirements = ["alpha==1.0"]
        source = "src"
        isolation = "process"
        {pin}
        [envs.inproc]
        requirements = ["alpha==2.0"]
    """)
    ws.cli("sync")
    return project


@pytest.fixture(scope="module")
def project(tmp_path_factory, wheelhouse) -> Path:
    return make_project(tmp_path_factory.mktemp("process"), wheelhouse)


@pytest.fixture(scope="module")
def env(project):
    env = polyvenv.Workspace.load(project).env("w")
    yield env
    env.unload()


@pytest.fixture(scope="module")
def demo(env):
    return env.import_module("pvdemo")


# -- the env object ---------------------------------------------------------------------------


def test_a_process_env_from_the_workspace_starts_its_worker_on_first_use(project, monkeypatch, tmp_path):
    ws = polyvenv.Workspace.load(project)
    env = ws.env("w")
    assert isinstance(env, polyvenv.ProcessEnv) and ws.env("w") is env
    assert type(ws.env("inproc")).__name__ == "Env"
    assert env.name == "w" and env.version("alpha") == "1.0" and env.pid is None  # no worker for metadata
    assert "no worker" in repr(env)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the host's environment must not leak in
    try:
        info = env.import_module("pvdemo").info()
        assert env.pid == info["pid"] != os.getpid() and f"worker pid {info['pid']}" in repr(env)
        # the build the env's link pointed at on first use, not the link: a later sync cannot mix builds
        assert env.build == (project / ".polyvenv" / "w").resolve()
        assert info["executable"] == str(env.build / "bin" / "python")
        assert str(tmp_path) not in info["path"] and str(SRC) not in info["path"]
        assert str(project / "src") in info["path"]
        assert not any(p.startswith(sys.prefix + os.sep) for p in info["path"])
        assert info["polyvenv"] is False and info["main"].endswith("worker.py")
        assert env.import_module("alpha").__version__ == "1.0"  # the env's alpha, not the other env's
    finally:
        env.unload()
    assert env.pid is None


def test_both_kinds_of_env_answer_the_same_metadata_and_a_process_env_needs_no_worker_for_it(project):
    """``Env`` and ``ProcessEnv`` are one ``EnvProtocol``: distributions, files, entry points, versions."""
    ws = polyvenv.Workspace.load(project)
    for name, version in (("w", "1.0"), ("inproc", "2.0")):
        env = ws.env(name)
        assert {d.metadata["Name"] for d in env.distributions()} >= {"alpha"}
        assert env.version("alpha") == env.distribution("alpha").version == env.metadata.version("alpha") == version
        assert any(f.name == "__init__.py" and f.parts[0] == "alpha" for f in env.files("alpha") or ())
        assert list(env.entry_points(group="no.such.group")) == []
        with pytest.raises(ModuleNotFoundError):  # PackageNotFoundError: not the host's, not the other env's
            env.version("pytest")
    assert ws.env("w").pid is None
    ws.env("inproc").unload()


def test_host_code_imports_a_process_envs_module_through_the_import_map(project):
    """`polyvenv python`: a plain `import pvdemo` in host code gives a module backed by the worker."""
    code = ("import os, pvdemo, sys\nfrom pvdemo import squares\n"
            "print(type(pvdemo).__name__, sys.modules['pvdemo'] is pvdemo, pvdemo.info()['pid'] != os.getpid(), "
            "list(squares(3)), 'echo' in dir(pvdemo))")
    out = subprocess.run([sys.executable, "-m", "polyvenv", "python", "-c", code], cwd=project,
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["module", "True", "True", "[0,", "1,", "4]", "True"]


def test_from_path_needs_a_venv(tmp_path, project):
    with pytest.raises(polyvenv.NotBuilt, match="not a virtualenv"):
        ProcessEnv.from_path(tmp_path)
    env = ProcessEnv.from_path(project / ".polyvenv" / "w")
    try:
        assert env.name == "w" and env.import_module("pvdemo").echo(7) == 7  # `source` from the manifest
    finally:
        env.unload()


# -- proxies ----------------------------------------------------------------------------------


def test_proxies_of_modules_classes_instances_and_functions(demo):
    counter = demo.Counter(5)
    assert counter.n == 5 and counter.inc() == 6 and counter.inc(by=4) == 10
    counter.n = 3
    assert counter.n == 3 and len(counter) == 3 and bool(counter) is True
    counter["a"] = [1, 2]
    counter["b"] = {"x": None}
    assert counter["a"] == [1, 2] and "a" in counter and "z" not in counter
    del counter["b"]
    assert list(counter) == ["a"]
    with pytest.raises(KeyError):
        counter["b"]
    assert repr(counter) == "Counter(3)" and str(counter) == "counter at 3" and f"{counter}" == "counter at 3"
    assert counter == demo.Counter(3) and counter != demo.Counter(4) and hash(counter) == hash(3)
    assert isinstance(counter, demo.Counter) and not isinstance(3, demo.Counter)
    assert demo.Counter.__name__ == "Counter" and demo.__name__ == "pvdemo" and demo.boom.__module__ == "pvdemo"
    assert demo.squares.__doc__ is None and "inc" in dir(counter)
    del counter.items
    with pytest.raises(AttributeError):
        counter.items
    assert demo.echo is demo.echo  # one proxy per remote object while it lives


def test_iteration_generators_and_context_managers(demo):
    gen = demo.squares(4)
    assert next(gen) == 0 and list(gen) == [1, 4, 9]
    assert sum(demo.squares(5)) == 30

    class Log:  # a host object: the worker's context manager calls its append back here
        def __init__(self):
            self.lines = []

        def append(self, line):
            self.lines.append(line)

    log = Log()
    with demo.opened(log) as value:
        assert value == "resource"
    assert log.lines == ["enter", "exit"]
    with pytest.raises(ValueError):  # not handled by the remote context manager: propagates
        with demo.opened(log):
            raise ValueError("inside")
    with demo.opened(log):  # handled remotely: suppressed here too
        raise KeyError("inside")
    assert log.lines[2:] == ["enter", "exit", "enter", "handled KeyError", "exit"]


def test_plain_data_crosses_by_value(demo):
    values = [None, True, 1 << 70, 2.5, 3 + 4j, "é", b"\x00b", bytearray(b"ba"), (1, (2,)), [1, [2]],
              {"k": {1: 2}}, {1, 2}, frozenset({3}), slice(1, 9, 2), range(3), ..., int, ValueError]
    for value in values:
        back = demo.echo(value)
        assert back == value and type(back) is type(value), value
    assert demo.echo(memoryview(b"view")) == b"view"
    mutable = [1]
    demo.apply(mutable.append, 2)  # a bound method of a host object: a handle, called back here
    assert mutable == [1, 2]
    big = os.urandom(3 << 20)  # through shared memory
    assert demo.echo(big) == big and demo.echo(memoryview(big)) == big
    assert demo.echo(bytearray(big)) == big and type(demo.echo(bytearray(big))) is bytearray


def test_the_standard_librarys_value_types_cross_by_value(demo):
    import collections
    import datetime
    import decimal
    import fractions
    import ipaddress
    import pathlib
    import uuid
    import zoneinfo

    values = [datetime.datetime(2020, 6, 1, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
              datetime.datetime(2020, 1, 2, tzinfo=datetime.timezone.utc), datetime.date(2020, 1, 1),
              datetime.timedelta(days=2), decimal.Decimal("1.10"), fractions.Fraction(1, 3), uuid.UUID(int=5),
              pathlib.PurePosixPath("/a/b"), pathlib.Path("/tmp"), ipaddress.ip_network("10.0.0.0/8"),
              collections.OrderedDict(a=1), collections.deque([1, 2], maxlen=3), collections.Counter("abca"),
              collections.defaultdict(list, a=[1])]
    for value in values:
        back = demo.echo(value)
        assert back == value and type(back) is type(value), value
    assert demo.echo(values[0]).tzinfo.key == "Europe/Paris"


class _Sneaky:
    def __reduce__(self):
        return (getattr, (int, "__subclasses__"))  # names builtins.getattr: from there, anything


def test_a_message_naming_anything_but_the_value_types_is_refused():
    """Decoding makes values of the listed types only: what the peer names is never looked up (codec.py)."""
    import pickle

    from polyvenv.process import codec, exceptions

    for payload in (pickle.dumps(_Sneaky(), 5), pickle.dumps(os.system, 5), pickle.dumps(subprocess.Popen, 5)):
        with pytest.raises(pickle.UnpicklingError, match="is not plain data"):
            codec.decode(None, payload, None)
    ran = ("builtins", "exec", "exec", True, ("import os; os.environ['PV_RAN'] = '1'",), "x", "remote traceback")
    error = exceptions.rebuild(ran, polyvenv.RemoteError)  # an error description naming a function, not a class
    assert "PV_RAN" not in os.environ and isinstance(error, polyvenv.RemoteError)


def test_remote_objects_are_released_when_their_proxies_go(demo):
    gc.collect()  # proxies of earlier tests, held by reference cycles (tracebacks) until now
    demo.echo(None)
    before = demo.live()
    counters = [demo.Counter(i) for i in range(50)]
    assert demo.live() == before + 50
    del counters
    gc.collect()
    demo.echo(None)  # the releases ride on the next message
    assert demo.live() == before


# -- callbacks, exceptions ----------------------------------------------------------------------


def test_host_callables_are_called_back_and_calls_nest_both_ways(demo):
    assert demo.apply(lambda a, b=0: a * 10 + b, 4, b=2) == 42
    seen = []

    def callback(depth, go_deeper):
        seen.append((depth, threading.get_ident()))
        return go_deeper()  # host -> worker -> host -> worker ...

    bottom, worker_thread = demo.ping_pong(callback, 4)
    assert bottom == "bottom" and [d for d, _ in seen] == [4, 3, 2, 1]
    assert {t for _, t in seen} == {threading.get_ident()}  # nested callbacks run in the calling thread
    assert demo.call_from_thread(lambda text: text.upper()) == "FROM A WORKER THREAD"  # from the env's thread


def test_operators_run_one_side_at_a_time_and_never_bounce(demo):
    answers = []  # in a thread: a comparison bouncing between the processes would never return
    thread = threading.Thread(target=lambda: answers.extend([demo.is_given(len), demo.is_given(lambda: 0)]),
                              daemon=True)
    thread.start()
    thread.join(30)
    assert answers == [True, True]  # NotImplemented on both sides: identity decides, as locally
    counter = demo.Counter(3)
    assert (counter == demo.Counter(3)) is True and (counter == 3) is False and (3 == counter) is False
    assert (counter != demo.Counter(4)) is True
    with pytest.raises(TypeError):
        counter + 1  # neither side knows how: TypeError here, as for local objects


def test_exceptions_come_back_as_builtin_types_or_remote_errors_with_the_remote_traceback(demo):
    with pytest.raises(ZeroDivisionError) as caught:
        demo.divide(1, 0)
    assert "return a / b" in caught.value.remote_traceback
    printed = "".join(traceback.format_exception(caught.type, caught.value, caught.tb))
    assert "return a / b" in printed and "pvdemo.py" in printed  # the remote frames show above the local ones
    with pytest.raises(polyvenv.RemoteError, match="the remote thing broke") as caught:
        demo.boom()
    error = caught.value
    assert type(error).__name__ == "Boom" and error.remote_type == "pvdemo.Boom"
    assert isinstance(error, polyvenv.PolyvenvError) and 'raise Boom("the remote thing broke")' in error.remote_traceback
    with pytest.raises(ValueError, match="not like that") as caught:  # a subclass of a builtin: still one
        demo.bad_value()
    assert isinstance(caught.value, polyvenv.RemoteError) and caught.value.remote_type == "pvdemo.BadValue"
    with pytest.raises(KeyError):
        demo.apply({}.__getitem__, "missing")  # raised by a host callable, through the worker, back here

    def host_fails():
        raise RuntimeError("in the host")

    with pytest.raises(RuntimeError, match="in the host"):
        demo.apply(host_fails)
    with pytest.raises(AttributeError):
        demo.no_such_function


# -- lifecycle ----------------------------------------------------------------------------------


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_worker_raises_worker_died_and_the_next_call_starts_a_fresh_one(project):
    env = polyvenv.Workspace.load(project).env("w")
    try:
        demo = env.import_module("pvdemo")
        counter = demo.Counter(1)
        pid = env.pid
        threading.Timer(0.3, os.kill, (pid, signal.SIGKILL)).start()
        with pytest.raises(polyvenv.WorkerDied, match=r"env 'w'.*killed by signal 9 \(SIGKILL\).*fresh worker"):
            demo.sleep(30)  # pending when the worker is killed
        with pytest.raises(polyvenv.WorkerDied):
            counter.inc()  # a proxy of the dead worker
        assert "which is gone" in repr(counter)
        demo = env.import_module("pvdemo")
        assert env.pid != pid and demo.echo(1) == 1
        with pytest.raises(polyvenv.WorkerDied, match="exited with code 7"):
            demo.die(7)
        assert env.import_module("pvdemo").echo(2) == 2
    finally:
        env.unload()


def test_unload_stops_the_worker(project):
    env = polyvenv.Workspace.load(project).env("w")
    demo = env.import_module("pvdemo")
    pid = env.pid
    env.unload()
    assert not alive(pid)
    with pytest.raises(polyvenv.WorkerDied, match="unloaded"):
        demo.echo(1)
    assert env.import_module("pvdemo").echo(3) == 3
    env.unload()


def test_no_orphan_when_the_host_is_killed_while_the_worker_is_busy(project):
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(SRC)!r})
        import polyvenv
        env = polyvenv.Workspace.load({str(project)!r}).env("w")
        demo = env.import_module("pvdemo")
        print(env.pid, flush=True)
        demo.sleep(60)
    """)
    host = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(host.stdout.readline())
        assert alive(pid)
        time.sleep(0.3)  # the worker is in its long call now
        host.kill()
        host.wait()
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid), "the worker outlived its host"
    finally:
        host.kill()


def test_a_forked_child_of_the_host_starts_a_worker_of_its_own(project):
    """The parent's worker is the parent's: a child sharing its socket would garble it for both."""
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(SRC)!r})
        import polyvenv
        env = polyvenv.Workspace.load({str(project)!r}).env("w")
        demo = env.import_module("pvdemo")
        parent = env.pid
        read, write = os.pipe()
        child = os.fork()
        if child == 0:
            try:
                seen = ["shared", demo.echo(1)]
            except polyvenv.WorkerDied as e:
                seen = ["forked from" in str(e), env.import_module("pvdemo").info()["pid"] not in (parent, None)]
            os.write(write, repr(seen).encode())
            os._exit(0)
        os.waitpid(child, 0)
        print(os.read(read, 200).decode(), demo.echo(2), env.pid == parent)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[True,", "True]", "2", "True"]


def ctrl_c_after(seconds: float) -> None:
    """Ctrl-C as the terminal delivers it: SIGINT to the host's main thread, interrupting what it waits on."""
    threading.Timer(seconds, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT)).start()


def eventually(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_ctrl_c_of_a_long_call_cancels_it_in_the_worker_and_later_calls_do_not_wait(project):
    env = polyvenv.Workspace.load(project).env("w")
    try:
        demo = env.import_module("pvdemo")
        counter = demo.Counter(1)
        pid = env.pid
        for attempt in (1, 2):  # the second Ctrl-C is handled as the first was
            ctrl_c_after(0.3)
            with pytest.raises(KeyboardInterrupt):
                demo.sleep(20)
            started = time.monotonic()
            assert demo.echo(attempt) == attempt
            # the interrupted call would sleep 20 s more: 15 s tells apart waiting from a loaded machine's slowness
            assert time.monotonic() - started < 15, "a later call waited for the interrupted one"
            assert eventually(lambda: demo.STOPPED == [20] * attempt, 15)  # interrupted in the worker too
        assert env.pid == pid and counter.inc() == 2  # the same worker: its objects are kept
    finally:
        env.unload()


def test_ctrl_c_anywhere_in_a_loop_of_quick_calls_leaves_the_env_working(project):
    """Ctrl-C lands between any two steps of a call's bookkeeping; none may stay behind."""
    import random

    env = polyvenv.Workspace.load(project).env("w")
    try:
        demo = env.import_module("pvdemo")
        pid = env.pid
        rng = random.Random(11)
        for trial in range(30):
            ctrl_c_after(rng.uniform(0.005, 0.03))
            with pytest.raises(KeyboardInterrupt):
                while True:
                    demo.echo([trial, "x" * rng.randint(0, 200)])
            answer: list = []
            caller = threading.Thread(target=lambda: answer.append(demo.echo(trial)), daemon=True)
            caller.start()
            caller.join(5)
            assert answer == [trial], f"trial {trial}: the next call hangs"
        assert env.pid == pid
    finally:
        env.unload()


def test_a_call_that_ignores_ctrl_c_gets_its_worker_restarted_with_a_warning(project):
    env = polyvenv.Workspace.load(project).env("w")
    try:
        demo = env.import_module("pvdemo")
        pid = env.pid
        with pytest.warns(polyvenv.WorkerRestarted, match=rf"env 'w'.*pid {pid}.*interrupted call did not stop"):
            ctrl_c_after(0.3)
            with pytest.raises(KeyboardInterrupt):
                demo.stubborn(20)
            started = time.monotonic()
            assert demo.echo(1) == 1  # served beside the call that goes on
            assert time.monotonic() - started < 5, "a later call waited for the interrupted one"
            assert eventually(lambda: env.pid is None)
        with pytest.raises(polyvenv.WorkerDied, match=r"env 'w'.*interrupted call did not stop.*fresh worker"):
            demo.echo(2)
        assert env.import_module("pvdemo").echo(3) == 3 and env.pid != pid
    finally:
        env.unload()


@pytest.mark.parametrize("how", ["exec", "fork"])
def test_a_background_process_of_the_env_does_not_keep_the_channel_open(project, how):
    env = polyvenv.Workspace.load(project).env("w")
    demo = env.import_module("pvdemo")
    child = demo.background(how, 20)
    try:
        threading.Timer(0.3, os.kill, (env.pid, signal.SIGKILL)).start()
        started = time.monotonic()
        with pytest.raises(polyvenv.WorkerDied, match=r"killed by signal 9"):
            demo.sleep(20)  # pending when the worker is killed
        assert time.monotonic() - started < 5, "the host waited for the env's background process"
    finally:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
        env.unload()


def test_calls_from_several_host_threads_run_concurrently(demo):
    results = []
    started = time.monotonic()
    threads = [threading.Thread(target=lambda: results.append(demo.sleep(0.5))) for _ in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    elapsed = time.monotonic() - started
    assert results == [0.5] * 6
    assert elapsed < 1.5, f"6 concurrent calls of 0.5 s took {elapsed:.2f} s"
    counters = [demo.Counter(i) for i in range(20)]
    threads = [threading.Thread(target=lambda c=c: [c.inc() for _ in range(50)]) for c in counters]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert [c.n for c in counters] == [i + 50 for i in range(20)]



def test_plain_calls_beside_a_thread_called_back_each_get_their_own_answer(project):
    """A caller reading for itself (the fast path) meets other threads' replies and the worker's calls
    back on the socket: each must reach the thread it is for, and no call may hang."""
    env = polyvenv.Workspace.load(project).env("w")
    try:
        demo = env.import_module("pvdemo")
        results: dict = {}

        def plain(i):
            results["plain", i] = [demo.echo((i, j)) for j in range(40)]

        def calling_back():
            results["back"] = [demo.apply(lambda x: ("host", x), j) for j in range(15)]

        threads = [threading.Thread(target=plain, args=(i,), daemon=True) for i in range(3)]
        threads.append(threading.Thread(target=calling_back, daemon=True))
        [t.start() for t in threads]
        [t.join(30) for t in threads]
        assert not any(t.is_alive() for t in threads), "a call hangs"
        assert [results["plain", i] for i in range(3)] == [[(i, j) for j in range(40)] for i in range(3)]
        assert results["back"] == [("host", j) for j in range(15)]
        assert demo.echo("after") == "after"
    finally:
        env.unload()


def test_several_host_threads_each_called_back_at_once_all_get_their_answers(project):
    """Three host threads, each calling into the worker with a callback into the host: a thread waiting
    for its callback's answer must never take another thread's new call (it would answer neither), and a
    reader going off to run a call must leave the socket to the threads waiting for answers. On a hang
    the worker is killed, so the test fails instead of hanging the suite."""
    env = polyvenv.Workspace.load(project).env("w")
    try:
        demo = env.import_module("pvdemo")
        pid = demo.info()["pid"]
        results: dict = {}

        def calling_back(i):
            results[i] = [demo.apply(lambda x: ("host", i, x), j) for j in range(40)]

        threads = [threading.Thread(target=calling_back, args=(i,), daemon=True) for i in range(3)]
        [t.start() for t in threads]
        deadline = time.monotonic() + 30
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        hung = sum(t.is_alive() for t in threads)
        if hung:
            os.kill(pid, signal.SIGKILL)  # the hung calls end with WorkerDied
            [t.join(10) for t in threads]
        assert not hung, f"{hung} of 3 threads calling back at once hang"
        assert results == {i: [("host", i, j) for j in range(40)] for i in range(3)}
        assert demo.echo("after") == "after"
    finally:
        env.unload()

# -- other interpreters -------------------------------------------------------------------------


def test_a_worker_on_another_python_version(tmp_path, wheelhouse):
    host_minor = "%d.%d" % sys.version_info[:2]
    minor = next((m for m in MINORS if m != host_minor and find_python(m)), None)
    if minor is None:
        pytest.skip(f"no CPython other than {host_minor} under {PYENV}")
    project = make_project(tmp_path, wheelhouse, python=minor)
    env = polyvenv.Workspace.load(project).env("w")
    try:
        demo = env.import_module("pvdemo")
        assert "%d.%d" % tuple(demo.info()["version"]) == minor
        assert demo.apply(lambda x: x + 1, 1) == 2 and sum(demo.squares(3)) == 5
        with pytest.raises(ZeroDivisionError):
            demo.divide(1, 0)
        big = os.urandom(2 << 20)
        assert demo.echo(big) == big
    finally:
        env.unload()


# -- numpy: 1.26.4 in the worker, 2.x in the host (PyPI) --------------------------------------


NUMPY_HOST = """
import sys, json
sys.path.insert(0, {src!r})
import numpy
import polyvenv
env = polyvenv.Workspace.load({project!r}).env("np1")
np1 = env.import_module("numpy")
big = numpy.random.default_rng(1).random(4 << 20)  # 32 MB: through shared memory, both ways
back = [np1.ascontiguousarray(big) for _ in range(3)]  # reuses the segments
kinds = [numpy.arange(6, dtype="i2").reshape(2, 3), numpy.array(["ab", "c"]), numpy.array(2.5),
         numpy.zeros((0, 4)), numpy.asfortranarray(numpy.ones((3, 2))), numpy.arange(10)[::3],
         numpy.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
         numpy.array(["2020-01-01T12:00", "1970-01-01"], dtype="M8[ns]"), numpy.arange(3).astype("m8[s]"),
         numpy.array([(1, "2021-03-04")], dtype=[("a", "i4"), ("t", "M8[D]")]),
         numpy.array([1, "two", None, [3]], dtype=object), numpy.array([[1.5, "x"], [(2,), 3]], dtype=object)]
echoed = [np1.asarray(k) for k in kinds]
holding = np1.asarray(numpy.array([len, 1], dtype=object))  # a host function inside: a proxy there, itself here
days = np1.arange("2020-01-30", "2020-02-02", dtype="datetime64[D]")
made = np1.linspace(0, 1, 5)
result = {{
    "versions": [numpy.__version__, np1.__version__, env.version("numpy")],
    "big": [all(type(b) is numpy.ndarray and numpy.array_equal(b, big) for b in back), back[0].flags.writeable],
    "kinds": [bool(numpy.array_equal(e, k)) and e.dtype == k.dtype and e.shape == k.shape
              for e, k in zip(echoed, kinds)],
    "made": [type(made) is numpy.ndarray, made.tolist()],
    "dates": [str(days.dtype), [str(d) for d in days], [(type(x).__name__, str(x.dtype), str(x)) for x in
                                                   (np1.datetime64("2020-01-01T10:00"), np1.timedelta64(5, "s"))],
              str(np1.array([1, "a"], dtype=object).dtype)],
    "holding": [holding.dtype == object, holding[0] is len, holding[1]],
    "scalar": [type(np1.float64(1.5)).__name__, float(np1.add(1, 2)), type(np1.sum(big[:10])).__name__],
    "error": None,
}}
try:
    np1.add(numpy.ones(2), "x")
except Exception as e:
    result["error"] = [e.remote_type, isinstance(e, polyvenv.RemoteError), isinstance(e, TypeError),
                       "numpy" in e.remote_traceback]
print(json.dumps(result))
"""


@pytest.mark.integration
def test_numpy_1_26_in_a_worker_beside_numpy_2_in_the_host(tmp_path):
    minor = "%d.%d" % sys.version_info[:2]
    if minor not in ("3.10", "3.11", "3.12"):
        pytest.skip(f"numpy 1.26.4 has no wheels for CPython {minor}")
    project = tmp_path / "project"
    project.mkdir()
    (project / "polyvenv.toml").write_text(textwrap.dedent("""
        [envs.np1]
        requirements = ["numpy==1.26.4"]
        isolation = "process"
        [envs.host]
        requirements = ["numpy>=2,<3"]
    """))
    proc = subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=project, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"could not build the numpy envs from PyPI (offline?): {proc.stderr.strip()[-300:]}")
    host_python = project / ".polyvenv" / "host" / "bin" / "python"  # the host process: numpy 2 of its own
    code = NUMPY_HOST.format(src=str(SRC), project=str(project))
    out = subprocess.run([str(host_python), "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    host_version, worker_version, declared = result["versions"]
    assert host_version.startswith("2.") and worker_version == declared == "1.26.4"
    assert result["big"] == [True, True]
    assert result["kinds"] == [True] * 12  # datetime64, timedelta64 and object arrays among them
    assert result["dates"] == ["datetime64[D]", ["2020-01-30", "2020-01-31", "2020-02-01"],
                               [["datetime64", "datetime64[m]", "2020-01-01T10:00"],
                                ["timedelta64", "timedelta64[s]", "5 seconds"]], "object"]
    assert result["holding"] == [True, True, 1]
    assert result["made"] == [True, [0.0, 0.25, 0.5, 0.75, 1.0]]
    assert result["scalar"] == ["float64", 3.0, "float64"]
    assert "UFunc" in result["error"][0] and result["error"][1:] == [True, True, True]  # numpy 1.26's own error
