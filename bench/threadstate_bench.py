"""What an env copy's ``PyThreadState_GetDict`` costs (runtime/native/threadstate.py): the real function against
the callback its GOT slot is pointed at, each called N times through one ctypes function pointer.

Run from the repository root:

    .venv/bin/python bench/threadstate_bench.py [--instructions]

Prints time per call (timeit, noisy on a loaded machine) and with ``--instructions`` the user-space
instructions per call, counted by callgrind (two runs of each, N apart, so start-up cancels out).
The callback's own cost is the difference between the two rows; lxml calls the function about 4 times
per parse, numpy 1.x once per ufunc call. Nothing is asserted: it is a measurement.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from polyvenv.runtime.native import threadstate  # noqa: E402


def function(kind: str):
    """The function a copy's slot holds, as a ctypes pointer: the real one, or the env's callback."""
    address = ctypes.cast(threadstate._callback("bench") if kind == "callback"
                          else ctypes.pythonapi.PyThreadState_GetDict, ctypes.c_void_p).value
    return ctypes.CFUNCTYPE(ctypes.c_void_p)(address)


def instructions(kind: str, n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                               __file__, "--run", kind, str(n)], capture_output=True, text=True, check=True)
    return int(re.search(r"Collected : (\d+)", proc.stderr).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--run", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        call = function(args.run[0])
        for _ in range(int(args.run[1])):
            call()
        return
    print(f"{'PyThreadState_GetDict':<24} {'time per call':>14} {'instructions':>13}")
    for kind in ("real", "callback"):
        call = function(kind)
        seconds = min(timeit.repeat(call, number=100_000, repeat=5)) / 100_000
        counted = ""
        if args.instructions and shutil.which("valgrind"):
            counted = str((instructions(kind, 21_000) - instructions(kind, 1_000)) // 20_000)
        print(f"{kind:<24} {seconds * 1e6:>11.2f} us {counted:>13}")


if __name__ == "__main__":
    main()
