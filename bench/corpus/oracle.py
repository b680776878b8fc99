"""The oracle: one package, two versions side by side beside the host's own copy, one verdict.

Per package, in a workspace of its own: env ``old`` and env ``new`` (namespace isolation) and env
``host``, a venv holding the host's copy (the newest version, the same as ``new``: the case where an
env and the host have the very same files, which process-wide registries keyed by a fixed string
cannot tell apart). Then:

1. In each env's own venv, plainly (bench/corpus/walk.py): which submodules import there, and what the
   smoke call answers. A module that fails there is the package's business and is left out; one that
   crashes or hangs there is left out and the walk restarted past it.
2. In a scratch process run by the host venv's interpreter (bench/corpus/probe.py): the host imports
   its copy and runs the smoke call, then every submodule of both envs is imported side by side, each
   from its own env, then each env's smoke call, then the host's again.

Verdicts (issue 11 and 12, "The corpus"):

- WORKS: every module imported from its own env, the smoke calls answered as in a plain venv, nothing
  of the host touched;
- REFUSED: every failure is a polyvenv error naming the cause and the way out (``isolation =
  "process"`` or ``"auto"``);
- BROKEN: a loud failure that does not (an exception of the package's, or polyvenv's without the way
  out);
- WRONG: a module of a real name appeared in the host's ``sys.modules`` (or one of the host's entries
  was replaced), an env module's ``__file__`` is outside its env, a smoke call answered differently from
  the plain venv, the host's smoke call failed or changed afterwards, the process crashed, or it hung
  past the timeout;
- SKIP: the corpus could not be set up (install failed, nothing imports in a plain venv): no verdict.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parent.parent / "src"
VERDICTS = ("WORKS", "REFUSED", "BROKEN", "WRONG", "SKIP")
ENVS = ("old", "new")
SYNC_TIMEOUT = 1800  # installing is not what is measured: ``timeout`` bounds the imports alone


@dataclass
class Package:
    """One corpus entry, as bench/corpus/packages.toml has it."""

    name: str
    rank: int
    kind: str
    old: str
    new: str
    smoke: str | None = None
    imports: list[str] | None = None

    @classmethod
    def from_toml(cls, entry: dict[str, Any]) -> Package:
        keys = cls.__dataclass_fields__
        return cls(**{k: v for k, v in entry.items() if k in keys})


@dataclass
class Result:
    """What the oracle found for one package: the verdict, the first error, counts and timings."""

    name: str
    rank: int
    kind: str
    versions: str
    verdict: str = "SKIP"
    error: str = ""
    first_failure: str = ""
    ok: int = 0
    total: int = 0
    refused: int = 0
    failed: int = 0
    wrong: list[str] = field(default_factory=list)
    wrong_classes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    envs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def load_packages(path: Path = HERE / "packages.toml") -> list[Package]:
    import tomllib
    return [Package.from_toml(p) for p in tomllib.loads(path.read_text())["package"]]


def try_package(pkg: Package, workdir: Path, *, timeout: float = 600, max_modules: int = 300,
                python: str = sys.executable, wheelhouse: Path | None = None) -> Result:
    """Run the oracle on ``pkg`` in ``workdir`` (reused: a second run does not reinstall); from
    ``wheelhouse`` alone (offline) when given."""
    result = Result(pkg.name, pkg.rank, pkg.kind, f"{pkg.old} / {pkg.new}")
    root = workdir / pkg.name
    root.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, POLYVENV_CACHE_DIR=str(workdir / ".polyvenv-cache"))
    env.pop("PYTHONPATH", None)

    start = time.monotonic()
    # "new" is the host's version: `private` keeps the package itself the env's own copy (the rule would
    # rightly load the host's), so its side-by-side load is what is measured; what it depends on and the
    # host has identically is the host's, by the rule (probe.py allows exactly those)
    body = "".join(f'[envs.{name}]\nrequirements = ["{pkg.name}=={version}"]\n{private}'
                   for name, version, private in (("old", pkg.old, ""), ("new", pkg.new, f'private = ["{pkg.name}"]\n'),
                                                  ("host", pkg.new, "")))
    if wheelhouse is not None:
        body = f'wheelhouse = "{wheelhouse}"\noffline = true\n' + body
    (root / "polyvenv.toml").write_text(body)
    try:
        sync = subprocess.run([python, "-m", "polyvenv", "--no-progress", "sync", "--jobs", "2"], cwd=root,
                              env=dict(env, PYTHONPATH=str(SRC)), capture_output=True, text=True,
                              timeout=SYNC_TIMEOUT)
    except subprocess.TimeoutExpired:
        result.error = f"polyvenv sync took over {SYNC_TIMEOUT}s"
        return result
    result.seconds["sync"] = round(time.monotonic() - start, 1)
    if sync.returncode != 0:
        result.error = "install failed: " + first_line(sync.stderr)
        return result

    # 1. the plain venvs
    start = time.monotonic()
    plain: dict[str, dict[str, Any]] = {}
    for name in ENVS:
        plain[name] = walk(root / ".polyvenv" / name / "bin" / "python", pkg, max_modules, timeout, env)
        result.envs[name] = {"version": plain[name]["version"], "found": plain[name]["found"],
                             "plain_failed": len(plain[name]["failed"]), "ok": 0, "total": len(plain[name]["ok"])}
        if plain[name]["failed"]:
            first = next(iter(plain[name]["failed"].items()))
            result.notes.append(f"{name}: {len(plain[name]['failed'])} fail in a plain venv too, e.g. {first[0]}: "
                                f"{first[1]}"[:200])
    result.seconds["plain"] = round(time.monotonic() - start, 1)
    if not all(plain[name]["ok"] for name in ENVS):
        result.error = "nothing imports in a plain venv: " + "; ".join(
            f"{k}: {v}" for name in ENVS for k, v in list(plain[name]["failed"].items())[:1])
        return result
    smoke = pkg.smoke
    if smoke and any(plain[name]["smoke_error"] for name in ENVS):
        result.notes.append("smoke call fails in a plain venv, not used: "
                            + next(plain[n]["smoke_error"] for n in ENVS if plain[n]["smoke_error"]))
        smoke = None

    # 2. side by side, beside the host
    start = time.monotonic()
    host_python = root / ".polyvenv" / "host" / "bin" / "python"
    host_site = subprocess.run([str(host_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, env=env).stdout.strip()
    names = sorted(set(plain["old"]["names"]) | set(plain["new"]["names"]))
    options = {"src": str(SRC), "root": str(root), "host_site": host_site, "names": names,
               "tops": plain["new"]["tops"], "smoke": smoke,
               "envs": {name: plain[name]["ok"] for name in ENVS}, "timeout": timeout}
    events, outcome, stderr = run_protocol([str(host_python), str(HERE / "probe.py"), json.dumps(options)],
                                           timeout, env, cwd=root)
    if outcome != "done":
        result.notes.append("stderr at the end: " + " | ".join(stack_tail(stderr)))
    result.seconds["side_by_side"] = round(time.monotonic() - start, 1)
    classify(result, events, outcome, plain, smoke)
    return result


def classify(result: Result, events: list[list[str]], outcome: str, plain: dict[str, dict[str, Any]],
             smoke: str | None) -> None:
    """The verdict from the probe's events (see probe.py) and how its process ended."""
    last_try = None
    failures: list[tuple[str, str]] = []  # (kind, "env module: error")
    host_smoke: list[list[str]] = []
    for event in events:
        kind, fields = event[0], event[1:]
        if kind == "T":
            last_try = " ".join(fields[:2])
        elif kind == "O":
            result.envs[fields[0]]["ok"] += 1
            last_try = None
        elif kind == "F":
            env, module, how, error = (fields + ["", "", "", ""])[:4]
            failures.append((how, f"{env} {module}: {error}"))
            last_try = None
        elif kind == "X":
            result.wrong.append(f"{fields[0]} {fields[1]}: {fields[2] if len(fields) > 2 else ''}")
            last_try = None
        elif kind in ("S", "E"):
            env = fields[0]
            if env == "host":
                host_smoke.append(event)
            elif kind == "E":
                failures.append((fields[1], f"{env} smoke call: {fields[2] if len(fields) > 2 else ''}"))
            elif fields[1] != plain[env]["smoke"]:
                result.wrong.append(f"{env} smoke call answered {fields[1]} where its plain venv answers "
                                    f"{plain[env]['smoke']}")
        elif kind == "W":
            result.warnings.append(fields[0])
    result.ok = sum(e["ok"] for e in result.envs.values())
    result.total = sum(e["total"] for e in result.envs.values())
    result.refused = sum(1 for how, _ in failures if how == "refused")
    result.failed = len(failures) - result.refused
    if outcome != "done":
        where = f" importing {last_try}" if last_try else ""
        if not any(e[0] == "T" for e in events) and outcome.startswith("exit"):
            result.verdict, result.error = "SKIP", f"the host program failed before any env import: {outcome}"
            return
        result.wrong.insert(0, f"{outcome}{where}")
    if smoke and outcome == "done":
        before, after = (host_smoke + [["?"], ["?"]])[:2]
        if after[0] == "E":
            result.wrong.append(f"the host's smoke call fails after the envs: {after[-1]}")
        elif before[0] == "S" and after[1:] != before[1:]:
            result.wrong.append(f"the host's smoke call answered {after[-1]} after the envs, {before[-1]} before")
    result.wrong_classes = sorted({wrong_class(w) for w in result.wrong})
    result.first_failure = next((text for _, text in failures), "")[:300]
    if result.wrong:
        result.verdict, result.error = "WRONG", result.wrong[0]
    elif failures and all(how == "refused" for how, _ in failures):
        result.verdict, result.error = "REFUSED", failures[0][1]
    elif failures:
        result.verdict = "BROKEN"
        result.error = next(text for how, text in failures if how != "refused")
    else:
        result.verdict = "WORKS"
    result.error = result.error[:300]


WRONG_CLASSES = {  # what a WRONG finding says -> its class, for the totals
    "crash": "crash", "hang": "hang", "exit": "died", "the host's smoke call": "host broken",
    "appeared in the host": "binds the host", "was replaced": "binds the host", "is the host's": "binds the host",
    "__file__ outside the env": "binds the host", "claims the host's module": "claims a host name",
    "smoke call answered": "answers otherwise",
}


def wrong_class(finding: str) -> str:
    """The class of one WRONG finding (crash, hang, died, host broken, binds the host, claims a host name,
    answers otherwise)."""
    for text, kind in WRONG_CLASSES.items():
        if finding.startswith(text) or text in finding.partition(": ")[2] or text in finding:
            return kind
    return "other"


def walk(python: Path, pkg: Package, max_modules: int, timeout: float, env: dict[str, str]) -> dict[str, Any]:
    """Which submodules of ``pkg`` import in the plain venv of ``python``; restarted past a crash or
    hang (at most 5 times), the culprit counted as failing there."""
    skip: list[str] = []
    failed_hard: dict[str, str] = {}
    for _ in range(6):
        options = {"skip": skip, "max_modules": max_modules, "smoke": pkg.smoke, "imports": pkg.imports}
        events, outcome, _ = run_protocol([str(python), str(HERE / "walk.py"), pkg.name, json.dumps(options)],
                                          timeout, env)
        ok, failed, last = [], dict(failed_hard), None
        info: dict[str, Any] = {}
        smoke, smoke_error = None, None
        for kind, *fields in events:
            text = fields[0] if fields else ""
            if kind == "T":
                last = text
            elif kind == "O":
                ok.append(text)
                last = None
            elif kind == "F":
                failed[text] = fields[1] if len(fields) > 1 else ""
                last = None
            elif kind == "S":
                smoke = text
            elif kind == "E":
                smoke_error = text
            elif kind == "N":
                info = json.loads(text)
        if outcome == "done" or last is None:
            break
        failed_hard[last] = outcome
        skip.append(last)
    return {"ok": ok, "failed": failed, "smoke": smoke, "smoke_error": smoke_error if outcome == "done" or info
            else smoke_error or outcome, "tops": info.get("tops", pkg.imports or []),
            "names": info.get("names", []), "found": info.get("found", len(ok) + len(failed)),
            "version": info.get("version", "?")}


def run_protocol(cmd: list[str], timeout: float, env: dict[str, str],
                 cwd: Path | None = None) -> tuple[list[list[str]], str, str]:
    """Run a walk or probe script; its event lines, how it ended ("done", "hang: no answer after Ns",
    "crash (SIGSEGV)" or "exit N: <last stderr line>") and its stderr. The process group is killed on
    timeout."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
                            start_new_session=True, errors="replace")
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return parse(out), f"hang: no answer after {timeout:.0f}s", err
    events = parse(out)
    if proc.returncode == 0 and events and events[-1][0] in ("D", "N"):
        return events, "done", err
    if proc.returncode < 0:
        return events, f"crash ({signal.Signals(-proc.returncode).name})", err
    return events, f"exit {proc.returncode}: {last_line(err)}", err


def stack_tail(stderr: str, frames: int = 4) -> list[str]:
    """The innermost frames of the last Python traceback faulthandler (or an exception) printed."""
    lines = stderr.strip().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(("Thread 0x", "Current thread", "Traceback",
                                                                      "Fatal Python error"))]
    block = lines[starts[-1]:] if starts else lines[-frames:]
    found = [line.strip() for line in block if line.strip().startswith("File ")]
    return (found[:frames] if found else [line.strip() for line in block[-frames:]])


def parse(out: str) -> list[list[str]]:
    """Event lines: the kind, then its tab-separated fields (walk.py and probe.py say which)."""
    return [line.split("\t") for line in out.splitlines() if line[:1] in "TOFXSEWDN" and line[1:2] in ("\t", "")]


def first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else "(no message)"


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no message)"
