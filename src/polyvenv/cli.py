"""The `polyvenv` command: a thin layer of argument parsing over the build and runtime modules.

Human output goes to stderr, machine output (``--json``) to stdout. Every
failure prints one line first, ``polyvenv: error: ...``, saying what failed,
for which env, and what to do; exit code 2 for usage and configuration
errors, 1 for work that failed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NoReturn, Sequence

from . import __version__
from .config import DEFAULT_PATTERN, Config, Discovery, counted, did_you_mean, load_config, remember_discovery
from .error_handler import Outcome, error_handler, use_color
from .error_handler import error as _error
from .errors import UsageError

if TYPE_CHECKING:
    from .provision.progress import Progress

Handler = Callable[[argparse.Namespace], int]
_VALUED = ("--config", "--color")  # the global options that take a value (as the next argument)
_COLORS = ("auto", "always", "never")
_PYTHON_FLAGS, _PYTHON_VALUED = ("--watch", "-h", "--help"), ("--interval",)  # `python`'s own options


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    with error_handler() as outcome:
        outcome.code = _dispatch(argv, outcome)
    return outcome.code


def _dispatch(argv: list[str], outcome: Outcome) -> int:
    command_at = _command_at(argv)
    use_color(_color_asked(argv[:command_at]))  # before anything can fail: a usage error is colored as asked
    parser = _parser()
    if command_at is None:
        if any(a in ("-h", "--help", "--version") for a in argv):
            parser.parse_args(argv)  # prints and exits 0
        raise UsageError("no command given: run `polyvenv --help` to see the commands")
    commands = _commands(parser)
    if argv[command_at] not in commands:
        hint = did_you_mean(argv[command_at], commands)
        raise UsageError(f"unknown command {argv[command_at]!r}{hint}: run `polyvenv --help` to see the commands")
    # `polyvenv python -c CODE ...`: everything after `python` belongs to it, options included
    # (argparse's REMAINDER would take `-c` for one of ours), but `python`'s own options before the
    # script (`--watch`); global options go before `python`.
    rest = None
    if argv[command_at] == "python":
        own = _python_options(argv[command_at + 1:])
        argv, rest = argv[:command_at + 1 + own], argv[command_at + 1 + own:]
    args, unknown = parser.parse_known_args(argv)
    if unknown and argv[command_at] == "python" and _python_options(unknown) == len(unknown):
        raise UsageError(f"{' '.join(unknown)}: `python`'s own options go after it, before the script "
                         "(`polyvenv python --watch SCRIPT`)")
    if unknown:
        raise UsageError(f"unrecognized arguments: {' '.join(unknown)}: run `polyvenv {argv[command_at]} --help` "
                         "for the options")
    if rest is not None:
        args.args = rest
    outcome.verbose = args.verbose
    use_color(args.color)
    if args.handler in (cmd_sync, cmd_create, cmd_lock, cmd_wheelhouse):  # the commands that run installers
        from .provision import interrupts

        interrupts.handle_signals()  # SIGTERM too stops them, and says so
    return args.handler(args)


def _color_asked(options: Sequence[str]) -> str:
    """The --color the user gave before the command (else $POLYVENV_COLOR, else auto)."""
    given = [options[i + 1] for i, a in enumerate(options[:-1]) if a == "--color"]
    given += [a.split("=", 1)[1] for a in options if a.startswith("--color=")]
    return given[-1] if given else os.environ.get("POLYVENV_COLOR") or "auto"


def _command_at(argv: Sequence[str]) -> int | None:
    """Where the command is in ``argv``: its first word that is neither an option nor an option's value."""
    i = 0
    while i < len(argv):
        if argv[i] in _VALUED:
            i += 2
        elif argv[i].startswith("-"):
            i += 1
        else:
            return i
    return None


def _python_options(after: Sequence[str]) -> int:
    """How many of the words after `python` are its own options (they come first, before the script)."""
    i = 0
    while i < len(after):
        if after[i] in _PYTHON_VALUED:
            i += 2
        elif after[i] in _PYTHON_FLAGS or after[i].partition("=")[0] in _PYTHON_VALUED:
            i += 1
        else:
            break
    return min(i, len(after))


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


def _config(args: argparse.Namespace, required: bool = True) -> Config:
    return load_config(Path.cwd(), args.config, required=required)


def _say(args: argparse.Namespace, line: str) -> None:
    """A line for the user on stderr, unless --quiet."""
    if not args.quiet:
        print(f"polyvenv: {line}", file=sys.stderr)


def _progress(args: argparse.Namespace) -> Progress:
    from .provision.progress import for_terminal

    color = {"always": True, "never": False}.get(args.color)
    return for_terminal(quiet=args.quiet, live=not args.no_progress, color=color)


# -- commands ------------------------------------------------------------------

def cmd_sync(args: argparse.Namespace) -> int:
    from .provision.sync import raise_first_failure, sync

    config = _config(args, required=not args.discover)
    if args.discover:
        config = remember_discovery(config, Discovery(Path(args.discover).resolve(), args.pattern),
                                    _path(args.bin_dir))
    outcomes = sync(
        config, args.names, offline=args.offline or None, wheelhouse=_path(args.wheelhouse),
        jobs=args.jobs, locked=args.locked, frozen=args.frozen, repair=args.repair, installer=args.installer,
        progress=_progress(args), quiet=args.quiet, memo=not (args.names or args.installer or args.discover),
        warm=False if args.no_warm else None,
    )
    shim_changes = _update_shims(config, args.bin_dir)
    built = sum(o.action == "built" for o in outcomes)
    _say(args, f"{counted(len(outcomes), 'env')}: {built} built, "
               f"{sum(o.action == 'up to date' for o in outcomes)} up to date, "
               f"{sum(bool(o.error) for o in outcomes)} failed" + (f"; shims: {shim_changes}" if shim_changes else ""))
    raise_first_failure(outcomes)
    return 0


def _update_shims(config: Config, bin_dir: str | None) -> str:
    if not (bin_dir or config.bin_dir):
        return ""
    from .provision import shims

    return shims.update(config, Path(bin_dir).resolve() if bin_dir else None)


def cmd_list(args: argparse.Namespace) -> int:
    from .provision.status import statuses
    from .provision.sync import select

    config = _config(args)
    found = statuses(config, select(config, args.names), verify=args.verify)
    if args.json:
        print(json.dumps([s.as_json() for s in found], indent=2))
        return 0
    if not found:
        _say(args, f"no envs declared in {config.describe()}")
        return 0
    width = max(20, *(len(s.name) + 1 for s in found))
    print(f"{'ENV':<{width}} {'STATE':<8} {'PYTHON':<10} {'ISOLATION':<16} DISTRIBUTIONS")
    for s in found:
        built = s.manifest
        python = built.interpreter.version if built and built.interpreter else "-"
        dists = ", ".join(f"{k}=={v}" for k, v in ((built and built.distributions) or {}).items())
        print(f"{s.name:<{width}} {s.state:<8} {python:<10} {s.isolation:<16} {dists or '-'}")
        for reason in s.reasons if s.state != "ok" else ():
            print(f"{'':<{width}} {reason}; fix: {s.fix}")
        if built and built.verdict_reasons:  # why "auto" chose a worker: the first reason
            more = f" (and {len(built.verdict_reasons) - 1} more: `polyvenv check {s.name}`)" * (
                len(built.verdict_reasons) > 1)
            print(f"{'':<{width}} auto chose process: {built.verdict_reasons[0]}{more}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .errors import NotBuilt
    from .provision.store import Store
    from .provision.sync import select
    from .runtime.manifest import read_manifest
    from .runtime.probe import Verdict, probe

    config = _config(args)
    envs = select(config, args.names)
    store = Store(config.envs_dir)
    verdicts: list[tuple[str, Verdict]] = []
    for env in envs:
        build = store.current(env.name)
        if build is None or read_manifest(build) is None:
            raise NotBuilt(f"env {env.name!r} is not built: run `polyvenv sync {env.name}` first, then check it",
                           env=env.name)
    progress = _progress(args)
    try:
        for env in envs:
            build = store.current(env.name)
            assert build is not None
            log = config.envs_dir / ".logs" / f"{env.name}.check.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            progress.started(env.name, "probing its modules", log)
            with open(log, "w") as out:
                verdict = probe(env.name, build, source=env.source, shared=env.shared, log=out)
            progress.finished(env.name, f"{verdict.summary()} in {verdict.seconds:.1f}s")
            verdicts.append((env.name, verdict))
    finally:
        progress.close()
    if args.json:
        print(json.dumps([{"name": name, "isolation": config.env(name).isolation, **v.as_json()}
                          for name, v in verdicts], indent=2))
    else:
        for name, verdict in verdicts:
            _print_verdict(name, config.env(name).isolation, verdict)
    # a namespace env the probe would send to a worker misbehaves in-process: say so by the exit code
    return 1 if any(config.env(n).isolation == "namespace" and v.isolation == "process" for n, v in verdicts) else 0


def _print_verdict(name: str, declared: str, verdict: object) -> None:
    from .runtime.probe import Verdict

    assert isinstance(verdict, Verdict)
    print(f"{name} (isolation = {declared!r}): {verdict.summary()}")
    width = max([24, *(len(m.module) + 1 for m in verdict.modules)])
    print(f"  {'MODULE':<{width}} {'STATUS':<8} REASON")
    for m in verdict.modules:
        print(f"  {m.module:<{width}} {m.status:<8} {m.reason or '-'}")
    if not verdict.modules:
        for reason in verdict.reasons:
            print(f"  {reason}")


def cmd_doctor(args: argparse.Namespace) -> int:
    from .provision.status import statuses
    from .provision.sync import select

    config = _config(args)
    found = [s for s in statuses(config, select(config, args.names), verify=True) if s.state != "ok"]
    if args.json:
        print(json.dumps([s.as_json() for s in found], indent=2))
    for s in found:
        print(f"polyvenv: {s.name}: {s.state}: {'; '.join(s.reasons)}; fix: `{s.fix}`", file=sys.stderr)
    if not found:
        _say(args, "every env is ok")
    return 1 if any(s.state == "broken" for s in found) else 0


def cmd_run(args: argparse.Namespace) -> int:
    from .provision.run import run

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise UsageError("nothing to run: give a command after the env's name, e.g. `polyvenv run NAME -- python`")
    return run(_config(args), args.name, command)


def cmd_lock(args: argparse.Namespace) -> int:
    from .provision.lockcmd import lock

    lock(_config(args), args.names, args.offline or None, _path(args.wheelhouse))
    return 0


def cmd_wheelhouse(args: argparse.Namespace) -> int:
    from .provision.wheelhouse import fill

    config = _config(args)
    directory = Path(args.dir).resolve()
    count = fill(config, directory, args.names, progress=_progress(args))
    _say(args, f"{counted(count, 'wheel')} in {directory}")
    return 0


def cmd_shims(args: argparse.Namespace) -> int:
    config = _config(args)
    if not (args.bin_dir or config.bin_dir):
        raise UsageError(f"no bin-dir to write shims to: set `bin-dir = \"DIR\"` in {config.describe()} or pass "
                         "--bin-dir DIR (and `scripts = [\"*\"]` in the envs whose commands you want there)")
    changes = _update_shims(config, args.bin_dir)
    if not changes and not any(env.scripts or env.script_dir for env in config.envs.values()):
        _say(args, "shims: none: no env exports a command; add `scripts = [\"*\"]` (or a list of names) to an env")
        return 0
    _say(args, f"shims: {changes or 'no changes'}")
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    from .provision.create import create

    action = create(
        Path(args.dir), Path(args.requirements), python=args.python, offline=args.offline,
        wheelhouse=_path(args.wheelhouse), with_pip=args.with_pip, installer=args.installer,
        progress=_progress(args),
    )
    _say(args, f"{args.dir}: {action}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from .provision.cleanup import remove

    config = _config(args)
    for name in args.names:
        _say(args, remove(config, name))
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from .provision.cleanup import gc
    from .provision.retire import IN_USE

    kept: list[Path] = []
    removed = gc(_config(args), kept)
    for path in removed:
        _say(args, f"removed {path}")
    for path in kept:
        _say(args, f"kept {path}: {IN_USE}")
    _say(args, f"gc removed {counted(len(removed), 'unused build')}")
    return 0


def cmd_python(args: argparse.Namespace) -> int:
    """The host interpreter with the import map installed: ``python [-c CODE | -m MOD | SCRIPT] [ARGS]``."""
    from .provision.host import run_python

    return run_python(_config(args), args.args, watch=args.interval if args.watch else None)


def cmd_import_map(args: argparse.Namespace) -> int:
    from .runtime.import_map import conflicts, provided_names

    config = _config(args)
    names = provided_names(config.envs.values())
    if args.json:
        print(json.dumps(names, indent=2, sort_keys=True))
    else:
        for name, envs in sorted(names.items()):
            print(f"{name:<24} -> {', '.join(envs)}")
    clashes = conflicts(names)
    for clash in clashes:
        _error(clash)
    return 2 if clashes else 0


def cmd_why(args: argparse.Namespace) -> int:
    """Which envs have which version of each distribution, what is shared, which pins force each duplicate."""
    from .provision.explain import explain

    config = _config(args)
    answer = explain(config, args.package)
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
    else:
        for row in answer["distributions"]:
            print(row["why"])
    if args.package and not answer["distributions"]:
        _error(f"no env of {config.describe()} has a distribution named {args.package!r}: "
               "run `polyvenv why` for every distribution")
        return 1
    for name in answer["unbuilt"]:
        _say(args, f"env {name!r} is not built: run `polyvenv sync {name}`")
    for name in answer["unrecorded"]:
        _say(args, f"env {name!r} was built before polyvenv recorded its distributions: it uses none of the host's "
             "modules (but the vocabulary packages of the host's version) until it is built again")
    return 0


# -- the parser -------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors in polyvenv's one-line form (exit 2 by UsageError)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}: run `{self.prog} --help` for the options")


def _global_options(p: argparse.ArgumentParser, top: bool) -> None:
    """The options every command takes, before or after its name, each with an environment variable.

    On a command's parser they default to SUPPRESS, so one given before the command is kept.
    """
    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    group = p.add_argument_group("global options")
    group.add_argument("--config", metavar="FILE", default=default(os.environ.get("POLYVENV_CONFIG") or None),
                       help="polyvenv.toml or pyproject.toml to use (default: the nearest one at or above the "
                       "current directory) [env: POLYVENV_CONFIG]")
    group.add_argument("-q", "--quiet", action="store_true", default=default(_env_flag("POLYVENV_QUIET")),
                       help="print only errors and what was asked for [env: POLYVENV_QUIET]")
    group.add_argument("-v", "--verbose", action="store_true", default=default(_env_flag("POLYVENV_VERBOSE")),
                       help="also print the traceback of an unexpected error [env: POLYVENV_VERBOSE]")
    group.add_argument("--no-progress", action="store_true", default=default(_env_flag("POLYVENV_NO_PROGRESS")),
                       help="plain progress lines, no live display [env: POLYVENV_NO_PROGRESS]")
    group.add_argument("--offline", action="store_true", default=default(_env_flag("POLYVENV_OFFLINE")),
                       help="install and resolve only from the wheelhouse [env: POLYVENV_OFFLINE]")
    color = os.environ.get("POLYVENV_COLOR") or "auto"
    if top and color not in _COLORS:
        raise UsageError(f"POLYVENV_COLOR={color!r}: must be one of {', '.join(_COLORS)}")
    group.add_argument("--color", choices=_COLORS, default=default(color),
                       help="color in the live display and the error prefix (default: auto: on a terminal, unless "
                       "NO_COLOR is set) [env: POLYVENV_COLOR]")


def _env_flag(name: str) -> bool:
    """A boolean environment variable, read as uv reads its own (UV_OFFLINE=1)."""
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise UsageError(f"{name}={os.environ[name]!r}: expected 1/true/yes or 0/false/no")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="polyvenv",
        description="Many isolated Python environments, side by side in one program.",
    )
    parser.add_argument("--version", action="version", version=f"polyvenv {__version__}")
    _global_options(parser, top=True)
    sub = parser.add_subparsers(metavar="COMMAND")

    def command(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        _global_options(p, top=False)
        return p

    def sources(p: argparse.ArgumentParser) -> None:
        p.add_argument("--wheelhouse", metavar="DIR", help="local wheels (the only source when offline)")

    def installer(p: argparse.ArgumentParser) -> None:
        p.add_argument("--installer", choices=("uv", "pip"), help="override the configured installer")

    p = command("sync", cmd_sync, "build or update envs; a no-op when nothing changed")
    p.add_argument("names", nargs="*", metavar="NAME")
    sources(p)
    installer(p)
    p.add_argument("--jobs", "-j", type=_positive, default=os.cpu_count() or 1, metavar="N",
                   help="build N envs at once (default: the number of CPUs)")
    locking = p.add_mutually_exclusive_group()
    locking.add_argument("--locked", action="store_true", help="fail if a lock file is missing or out of date")
    locking.add_argument("--frozen", action="store_true",
                         help="install each lock file as it is, without checking it against its requirements")
    p.add_argument("--repair", action="store_true",
                   help="check every installed file of every env against its RECORD (sha256) and rebuild "
                   "damaged ones, unpacking afresh what uv's cache holds damaged")
    p.add_argument("--no-warm", action="store_true",
                   help="do not rewrite each new build's code and patch its extensions now (its first load "
                   "does it; also POLYVENV_WARM=0)")
    p.add_argument("--discover", metavar="DIR", help="one env per directory of DIR holding a requirements file")
    p.add_argument("--pattern", default=DEFAULT_PATTERN, help=f"with --discover (default: {DEFAULT_PATTERN})")
    p.add_argument("--bin-dir", metavar="DIR", help="where command shims go (default: bin-dir from the config)")

    for name, handler, text in (("list", cmd_list, "envs, their state (ok / stale / broken / missing), versions"),
                                ("doctor", cmd_doctor, "find broken envs and say how to fix them")):
        p = command(name, handler, text)
        p.add_argument("names", nargs="*", metavar="NAME")
        p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        if name == "list":
            p.add_argument("--verify", action="store_true", help="check every installed file's sha256 against "
                           "its RECORD, as `doctor` does (without it: sizes only)")

    p = command("check", cmd_check, "probe envs in a scratch process: what loads side by side, what is refused "
                "and why (the verdict isolation = \"auto\" uses)")
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")

    p = command("run", cmd_run, "run a command inside one env (built first if needed)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD...")

    p = command("lock", cmd_lock, "write per-env lock files (exact pins + hashes)")
    p.add_argument("names", nargs="*", metavar="NAME")
    sources(p)

    p = command("shims", cmd_shims, "(re)write command shims")
    p.add_argument("--bin-dir", metavar="DIR")

    p = command("wheelhouse", cmd_wheelhouse, "download every wheel the envs need, for offline builds")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("names", nargs="*", metavar="NAME")

    p = command("python", cmd_python, "run the host interpreter with the import map installed "
                "(global options go before `python`, its own before the script)")
    p.add_argument("--watch", action="store_true", default=_env_flag("POLYVENV_WATCH"),
                   help="reload each loaded env in the running process when its source or build changes (an "
                   "edit, a `polyvenv sync`), one line on stderr per reload [env: POLYVENV_WATCH]")
    p.add_argument("--interval", type=_seconds, default=_env_seconds("POLYVENV_WATCH_INTERVAL", 0.5),
                   metavar="S", help="with --watch: seconds between looks, and how long a change must hold "
                   "still to be reloaded (default: 0.5) [env: POLYVENV_WATCH_INTERVAL]")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="[-c CODE | -m MODULE | SCRIPT] ARGS")

    p = command("import-map", cmd_import_map, "show which top-level names go to which env")
    p.add_argument("--json", action="store_true")

    p = command("why", cmd_why, "which envs have which version, what is shared with whom and with the host, "
                "which pins force each duplicate")
    p.add_argument("package", nargs="?", metavar="PKG")
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")

    p = command("create", cmd_create, "create or update one venv at a path, no config needed")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("-r", "--requirements", required=True, metavar="FILE")
    p.add_argument("--python", metavar="X", help="version (3.12) or path of the interpreter")
    p.add_argument("--with-pip", action="store_true", help="seed pip into the venv")
    sources(p)
    installer(p)

    p = command("remove", cmd_remove, "delete an env (all its builds and shims)")
    p.add_argument("names", nargs="+", metavar="NAME")

    command("gc", cmd_gc, "delete builds and envs nothing references")
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def _env_seconds(name: str, default: float) -> float:
    """A number of seconds from an environment variable (``default`` when unset)."""
    text = os.environ.get(name, "").strip()
    try:
        return _seconds(text) if text else default
    except argparse.ArgumentTypeError as e:
        raise UsageError(f"{name}={os.environ[name]!r}: {e}") from None


def _path(text: str | None) -> Path | None:
    return Path(text).resolve() if text else None


if __name__ == "__main__":
    sys.exit(main())
