"""Benchmark: an env in a worker process (isolation = "process") against the floors and the peers.

Run from the repository root:

    .venv/bin/python bench/process_bench.py [--quick] [--no-pin]

One run sets up (once, kept under the checkout's ignored .cache/process-bench/)
a bench venv with numpy 2, rpyc and execnet (and pyisolate), installed with
uv, and a worker venv with numpy; then, in a child process of the bench venv
pinned to one CPU (--no-pin: not pinned; this 2-vCPU VM swings ~1.5x with
the CPU a process lands on), it prints one table:

1. Round trip of a trivial call, ``f(2)`` on a cached proxy, against a raw
   ``multiprocessing.connection`` send_bytes/recv_bytes echo over a
   socketpair (target <= 1.3x), and rpyc (a cached netref over a subprocess
   stream), execnet (a persistent channel) and pyisolate (``await ext.f(2)``
   on an extension in a venv of its own under .cache/process-bench/pyisolate/,
   no sandbox) on the same call; a peer that cannot be installed or run is
   skipped with a message.
2. A 100 MB float64 array to the worker and back, against pickling it
   through a ``multiprocessing.Pipe`` to an echoing child and against two
   in-process memcpys (``np.copyto`` into preallocated arrays; target >= 0.8x
   of their speed). Medians after warm-up (segments are reused then).
3. Worker start: a fresh env's first ``import_module`` against
   ``python -c pass`` (and ``-I``) with the same interpreter.
4. With --instructions (needs valgrind; a few minutes): the user-space
   instructions one trivial call costs, in the host and in the worker, and
   the same for the raw echo, counted by callgrind between two marks (the
   calls alone: start-up varies by millions of instructions from one run to
   the next, which a difference of two runs divided by calls did not hide). Unlike time, a count
   does not move with the machine's load: it says where the cost is and
   whether a change cut it, on a busy machine too (the system calls, the
   same few on both sides, are not in it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build_bench import render, say, source_state  # noqa: E402  (same directory, same table style)

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "process-bench"
UV = Path(sys.executable).parent / "uv"
PEERS = ["rpyc", "execnet", "pyisolate"]
RESEARCH = {"rpyc": "126 / 92", "execnet": "100 / 71", "pyisolate": "971 / 595 (482 with its retries cached)"}
TARGET_CALL, TARGET_ARRAY = 1.3, 0.8

BENCHMOD = '''
def f(x):
    return x


def echo(value):
    return value


def mark():  # --instructions: callgrind dumps its counts here, before and after the counted calls
    import os
    os.getppid()
'''

# pyisolate's extension package: the host proxies this ExtensionBase subclass, the child serves it (methods are async).
ISOLATEMOD = '''
from pyisolate import ExtensionBase


class Bench(ExtensionBase):
    async def f(self, x):
        return x
'''

# Runs in the bench venv's python: measures everything and prints a JSON line.
MEASURE = r'''
import json, os, pickle, socket, statistics, subprocess, sys, time
from multiprocessing.connection import Connection
sys.path.insert(0, sys.argv[1])
worker, source, quick, isolate = sys.argv[2], sys.argv[3], sys.argv[4] == "1", sys.argv[5]
import numpy as np
from polyvenv.process import ProcessEnv

CALLS = 2000 if quick else 20000
REPS = 3 if quick else 7
out = {"skipped": {}}


def child(code):
    """A child process of this interpreter running ``code`` on its end of a new socket pair: ours."""
    a, b = socket.socketpair()
    proc = subprocess.Popen([sys.executable, "-c", code, str(b.fileno())], pass_fds=[b.fileno()])
    b.close()
    return a, proc


def per_batch(batch, n):
    """Median and minimum time per call over REPS runs of ``batch(n)``, which makes n calls."""
    best = []
    for _ in range(REPS):
        t = time.perf_counter()
        batch(n)
        best.append((time.perf_counter() - t) / n)
    return statistics.median(best), min(best)


def per_call(fn, n=CALLS):
    def batch(n):
        for _ in range(n):
            fn()
    return per_batch(batch, n)


# 1. raw multiprocessing.connection echo over a socketpair
ECHO = "import sys\nfrom multiprocessing.connection import Connection\nc = Connection(int(sys.argv[1]))\n" \
       "while True:\n    c.send_bytes(c.recv_bytes())\n"
a, echoing = child(ECHO)
conn = Connection(a.detach())
message = pickle.dumps((1, "f", (2,)), 5)
def raw():
    conn.send_bytes(message)
    pickle.loads(conn.recv_bytes())
raw()
out["raw"] = per_call(raw)
echoing.kill()

env = ProcessEnv("bench", worker, source=source)
mod = env.import_module("pvbench")
f = mod.f
f(2)
out["polyvenv"] = per_call(lambda: f(2))

try:
    import rpyc
    from rpyc.core.stream import SocketStream
    RPYC = "import socket, sys, rpyc\nfrom rpyc.core.stream import SocketStream\n" \
           "rpyc.classic.connect_stream(SocketStream(socket.socket(fileno=int(sys.argv[1])))).serve_all()\n"
    a, rchild = child(RPYC)
    rconn = rpyc.classic.connect_stream(SocketStream(a))
    rconn.modules.sys.path.insert(0, source)
    rf = rconn.modules.pvbench.f
    rf(2)
    out["rpyc"] = per_call(lambda: rf(2), CALLS // 4)
    rconn.close()
    rchild.kill()
except Exception as e:
    out["skipped"]["rpyc"] = f"{type(e).__name__}: {e}"
try:
    import execnet
    gw = execnet.makegateway(f"popen//python={sys.executable}")
    ch = gw.remote_exec(f"import sys\nsys.path.insert(0, {source!r})\nimport pvbench\n"
                        "while 1:\n    channel.send(pvbench.f(channel.receive()))\n")
    def ex():
        ch.send(2)
        ch.receive()
    ex()
    out["execnet"] = per_call(ex, CALLS // 4)
    gw.exit()
except Exception as e:
    out["skipped"]["execnet"] = f"{type(e).__name__}: {e}"
try:
    import asyncio, pyisolate
    sys.path.insert(0, isolate)
    from pvisolate import Bench
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    manager = pyisolate.ExtensionManager(Bench, {"venv_root_path": os.path.join(isolate, "venvs")})
    # isolated, no dependencies, no bubblewrap; the child's python -m pyisolate... needs pyisolate on its path
    ext = manager.load_extension({"name": "pvbench", "module_path": os.path.join(isolate, "pvisolate"),
                                  "isolated": True, "dependencies": [], "share_torch": False,
                                  "sandbox_mode": pyisolate.SandboxMode.DISABLED,
                                  "env": {"PYTHONPATH": os.path.dirname(os.path.dirname(pyisolate.__file__))}})
    loop.run_until_complete(ext.f(2))
    async def awaited(n):
        for _ in range(n):
            await ext.f(2)
    out["pyisolate"] = per_batch(lambda n: loop.run_until_complete(awaited(n)), CALLS // 4)
    manager.stop_all_extensions()
    loop.close()
except Exception as e:
    out["skipped"]["pyisolate"] = " ".join(f"{type(e).__name__}: {e}".split())

# 2. 100 MB float64 host -> worker -> host
big = np.random.default_rng(0).random(100 * 1024 * 1024 // 8)
echo = mod.echo
def timed(fn, reps):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times
def through_worker():
    back = echo(big)
    assert back.shape == big.shape
times = timed(through_worker, 3 + REPS)[3:]  # the first calls map fresh segments
back = echo(big)
assert np.array_equal(back, big) and back.flags.writeable
del back
out["array"] = statistics.median(times), min(times)
first, second = np.empty_like(big), np.empty_like(big)
def memcpys():
    np.copyto(first, big)
    np.copyto(second, first)
out["memcpy"] = (statistics.median(timed(memcpys, 1 + REPS)[1:]), None)
PIPE_ECHO = "import sys, pickle\nfrom multiprocessing.connection import Connection\nc = Connection(int(sys.argv[1]))\n" \
            "while True:\n    c.send(c.recv())\n"
a, echoing = child(PIPE_ECHO)
pconn = Connection(a.detach())
def piped():
    pconn.send(big)
    pconn.recv()
out["pipe"] = (statistics.median(timed(piped, 1 + max(REPS // 2, 2))[1:]), None)
echoing.kill()
env.unload()

# 3. worker start
starts, plain, isolated = [], [], []
python = os.path.join(worker, "bin", "python")
for _ in range(5 if quick else 11):
    env = ProcessEnv("bench", worker, source=source)
    t = time.perf_counter()
    env.import_module("pvbench")
    starts.append(time.perf_counter() - t)
    env.unload()
    t = time.perf_counter()
    subprocess.run([python, "-c", "pass"])
    plain.append(time.perf_counter() - t)
    t = time.perf_counter()
    subprocess.run([python, "-I", "-c", "pass"])
    isolated.append(time.perf_counter() - t)
out["start"] = [statistics.median(starts), statistics.median(plain), statistics.median(isolated)]
out["numpy"] = np.__version__
print(json.dumps(out))
'''


# Runs in the bench venv's python under callgrind: N trivial calls, polyvenv's or the raw echo's, between two
# marks (os.getppid in both processes), where callgrind dumps its counts: the calls alone, not start-up.
COUNTED = r'''
import os, pickle, socket, subprocess, sys
sys.path.insert(0, sys.argv[1])
mode, worker, source, n = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
if mode == "raw":
    from multiprocessing.connection import Connection
    ECHO = ("import os, sys\nfrom multiprocessing.connection import Connection\nc = Connection(int(sys.argv[1]))\n"
            "while True:\n    m = c.recv_bytes()\n    if m == b'end': break\n"
            "    if m == b'mark': os.getppid()\n    c.send_bytes(m)\n")
    a, b = socket.socketpair()
    echoing = subprocess.Popen([sys.executable, "-c", ECHO, str(b.fileno())], pass_fds=[b.fileno()])
    b.close()
    conn, message = Connection(a.detach()), pickle.dumps((1, "f", (2,)), 5)
    def f(x):
        conn.send_bytes(message)
        pickle.loads(conn.recv_bytes())
    def mark():
        conn.send_bytes(b"mark")
        conn.recv_bytes()
        os.getppid()
else:
    from polyvenv.process import ProcessEnv
    env = ProcessEnv("bench", worker, source=source)
    module = env.import_module("pvbench")
    f, remote_mark = module.f, module.mark
    def mark():
        remote_mark()
        os.getppid()
for _ in range(200):  # warm: specialised bytecode, buffers grown
    f(2)
mark()
for _ in range(n):
    f(2)
mark()
if mode == "raw":
    conn.send_bytes(b"end")
    echoing.wait()
else:
    env.unload()
'''
COUNTED_CALLS = 2000


def instructions(python: Path, worker: Path, source: Path) -> dict[str, tuple[float, float]]:
    """Instructions per call (host, peer) for "raw" and "polyvenv": callgrind's counts of each process between
    the two marks (its dump files numbered .2), over COUNTED_CALLS calls."""
    import glob
    import re

    counts: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="process-bench-cg-") as tmp:
        script = Path(tmp) / "counted.py"
        script.write_text(COUNTED)
        for mode in ("raw", "polyvenv"):
            out = Path(tmp) / mode
            out.mkdir()
            subprocess.run(["valgrind", "--tool=callgrind", "--trace-children=yes", "--dump-before=os_getppid*",
                            f"--callgrind-out-file={out}/cg.%p", str(python), str(script), str(REPO / "src"),
                            mode, str(worker), str(source), str(COUNTED_CALLS)], capture_output=True, check=True,
                           env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
            host = peer = 0
            for file in glob.glob(f"{out}/cg.*.2"):
                text = Path(file).read_text()
                found = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
                total = int(found.group(1)) if found else 0
                command = re.search(r"^cmd:(.*)$", text, re.M)
                if command and "counted.py" in command.group(1):
                    host += total
                else:
                    peer += total
            counts[mode] = (host / COUNTED_CALLS, peer / COUNTED_CALLS)
    return counts


def ensure_venvs() -> tuple[Path, Path, dict[str, str]]:
    """The bench venv (numpy 2 + the peers that install) and the worker venv (numpy), made once."""
    bench, worker = CACHE / "venv", CACHE / "worker"
    skipped = {}
    for venv, packages in ((bench, ["numpy>=2"]), (worker, ["numpy>=2"])):
        if not (venv / "bin" / "python").exists():
            say(f"creating {venv}")
            subprocess.run([str(UV), "venv", "-q", "-p", sys.executable, str(venv)], check=True)
            subprocess.run([str(UV), "pip", "install", "-q", "-p", str(venv / "bin" / "python"), *packages],
                           check=True)
    python = str(bench / "bin" / "python")
    for peer in PEERS:
        found = subprocess.run([python, "-c", f"import {peer}"], capture_output=True).returncode == 0
        if not found:
            proc = subprocess.run([str(UV), "pip", "install", "-q", "-p", python, peer], capture_output=True, text=True)
            if proc.returncode != 0:
                skipped[peer] = f"could not be installed: {proc.stderr.strip().splitlines()[-1:]}"
    return bench, worker, skipped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about 20 s)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the processes to one CPU")
    parser.add_argument("--instructions", action="store_true",
                        help="also count the instructions of a call, host and worker (valgrind; a few minutes)")
    args = parser.parse_args(argv)
    bench, worker, skipped = ensure_venvs()
    with tempfile.TemporaryDirectory(prefix="process-bench-") as tmp:
        source = Path(tmp) / "src"
        source.mkdir()
        (source / "pvbench.py").write_text(textwrap.dedent(BENCHMOD))
        isolate = CACHE / "pyisolate"
        (isolate / "pvisolate").mkdir(parents=True, exist_ok=True)
        (isolate / "pvisolate" / "__init__.py").write_text(textwrap.dedent(ISOLATEMOD))
        pin = [] if args.no_pin or not hasattr(os, "sched_setaffinity") else ["taskset", "-c", "0"]
        say("measuring" + (" (pinned to CPU 0)" if pin else ""))
        path = f"{bench / 'bin'}{os.pathsep}{os.environ['PATH']}"  # pyisolate makes its venvs with the uv on PATH
        proc = subprocess.run([*pin, str(bench / "bin" / "python"), "-c", MEASURE, str(REPO / "src"), str(worker),
                               str(source), "1" if args.quick else "0", str(isolate)], capture_output=True, text=True,
                              env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "PATH": path})
        counted = None
        if args.instructions and proc.returncode == 0:
            import shutil

            if shutil.which("valgrind"):
                say("counting instructions under callgrind (a few minutes)")
                counted = instructions(bench / "bin" / "python", worker, source)
            else:
                say("--instructions: valgrind is not on PATH; skipped")
    if proc.returncode != 0:
        sys.exit(f"bench: the measuring process failed:\n{proc.stderr}")
    import json

    r = json.loads(proc.stdout.strip().splitlines()[-1])
    skipped.update(r["skipped"])
    us = lambda pair: f"{pair[0] * 1e6:.1f} / {pair[1] * 1e6:.1f}"  # noqa: E731
    raw = r["raw"][0]
    rows: list = [f"polyvenv process isolation, {source_state()}; host numpy {r['numpy']}; "
                  f"{'pinned to one CPU' if not args.no_pin else 'not pinned'}; load {os.getloadavg()[0]:.2f}",
                  "", "1. trivial call round trip, f(2) on a cached proxy",
                  ["", "µs median / min", "vs raw echo", "target", "met"],
                  ["raw multiprocessing.connection echo, socketpair", us(r["raw"]), "1.00x", "", ""],
                  ["polyvenv ProcessEnv", us(r["polyvenv"]), f"{r['polyvenv'][0] / raw:.2f}x",
                   f"<= {TARGET_CALL}x", "yes" if r["polyvenv"][0] / raw <= TARGET_CALL else "NO"]]
    for peer in PEERS:
        note = f"research figure: {RESEARCH[peer]} µs"
        if peer in r:
            rows += [[peer, us(r[peer]), f"{r[peer][0] / raw:.2f}x", "", ""], f"    {peer} {note}"]
        else:
            rows.append(f"  {peer}: skipped ({skipped.get(peer, '?')}); {note}")
    memcpy = r["memcpy"][0]
    mb = 100 * 1024 * 1024 / 1e6
    rows += ["", "2. 100 MB float64 array, host -> worker -> host",
             ["", "ms median", "MB/s", "speed vs 2 memcpys", "met"],
             ["two in-process memcpys (np.copyto)", f"{memcpy * 1e3:.1f}", f"{mb / memcpy:,.0f}", "1.00x", ""],
             ["polyvenv (shared memory, reused)", f"{r['array'][0] * 1e3:.1f}", f"{mb / r['array'][0]:,.0f}",
              f"{memcpy / r['array'][0]:.2f}x", f">= {TARGET_ARRAY}x: " +
              ("yes" if memcpy / r["array"][0] >= TARGET_ARRAY else "NO")],
             ["pickle through a multiprocessing Pipe", f"{r['pipe'][0] * 1e3:.1f}", f"{mb / r['pipe'][0]:,.0f}",
              f"{memcpy / r['pipe'][0]:.2f}x", ""]]
    start, plain, isolated = r["start"]
    rows += ["", "3. worker start (first import_module on a fresh env)",
             ["", "ms median", "vs python -c pass"],
             ["python -c pass", f"{plain * 1e3:.1f}", "1.00x"],
             ["python -I -c pass", f"{isolated * 1e3:.1f}", f"{isolated / plain:.2f}x"],
             ["polyvenv worker start + first import", f"{start * 1e3:.1f}", f"{start / plain:.2f}x"]]
    if counted:
        (rh, rp), (ph, pp) = counted["raw"], counted["polyvenv"]
        rows += ["", "4. user-space instructions per trivial call (callgrind; independent of the load)",
                 ["", "host (k)", "worker / echo (k)", "both (k)", "vs raw echo"],
                 ["raw multiprocessing.connection echo", f"{rh / 1e3:.1f}", f"{rp / 1e3:.1f}",
                  f"{(rh + rp) / 1e3:.1f}", "1.00x"],
                 ["polyvenv ProcessEnv", f"{ph / 1e3:.1f}", f"{pp / 1e3:.1f}", f"{(ph + pp) / 1e3:.1f}",
                  f"{(ph + pp) / (rh + rp):.2f}x"]]
    print(render(rows))


if __name__ == "__main__":
    main()
