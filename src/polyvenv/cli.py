"""The `polyvenv` command: a thin layer of argument parsing over the build and runtime modules.

Human output goes to stderr, machine output (``--json``) to stdout. Every
failure prints one line first, ``polyvenv: error: ...``, saying what failed,
for which env, and what to do; exit code 2 for usage and configuration
errors, 1 for work that failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from . import __version__
from .config import DEFAULT_PATTERN, Config, Discovery, load_config, remember_discovery
from .errors import PolyvenvError, UsageError

Handler = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # `polyvenv python -c CODE ...`: everything after `python` belongs to it, options included
    # (argparse's REMAINDER would take `-c` for one of ours).
    command_at = next((i for i, a in enumerate(argv) if not a.startswith("-") and
                       (i == 0 or argv[i - 1] != "--config")), None)
    rest = []
    if command_at is not None and argv[command_at] == "python":
        argv, rest = argv[:command_at + 1], argv[command_at + 1:]
    args = parser.parse_args(argv)
    if rest:
        args.args = rest
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    if args.handler in (cmd_sync, cmd_create, cmd_lock, cmd_wheelhouse):  # the commands that run installers
        from .build import interrupts

        interrupts.handle_signals()  # SIGTERM too stops them, and says so
    try:
        return args.handler(args)
    except PolyvenvError as e:
        _error(str(e))
        for extra in getattr(e, "problems", [])[1:]:
            print(f"polyvenv: error: {extra}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        from .build.interrupts import received

        _error(f"interrupted ({received().name}) before it finished: run the same command again to finish its work")
        return 128 + received()


def _error(message: str) -> None:
    print(f"polyvenv: error: {message}", file=sys.stderr)


def _config(args: argparse.Namespace, required: bool = True) -> Config:
    return load_config(Path.cwd(), args.config, required=required)


# -- commands ------------------------------------------------------------------

def cmd_sync(args: argparse.Namespace) -> int:
    from .build.sync import sync

    config = _config(args, required=not args.discover)
    if args.discover:
        config = remember_discovery(config, Discovery(Path(args.discover).resolve(), args.pattern))
    outcomes = sync(
        config, args.names, offline=args.offline or None, wheelhouse=_path(args.wheelhouse),
        jobs=args.jobs, locked=args.locked, frozen=args.frozen, repair=args.repair, installer=args.installer,
        quiet=args.quiet, memo=not (args.names or args.installer or args.discover),
    )
    failed = [o for o in outcomes if o.error]
    shim_changes = _update_shims(config, args.bin_dir)
    if not args.quiet:
        built = sum(o.action == "built" for o in outcomes)
        print(f"polyvenv: {len(outcomes)} envs: {built} built, "
              f"{sum(o.action == 'up to date' for o in outcomes)} up to date, {len(failed)} failed"
              + (f"; shims: {shim_changes}" if shim_changes else ""), file=sys.stderr)
    if failed:
        first = failed[0].error
        _error(f"{first}; the previous build (if any) is still in use" + (f"; log: {first.log}" if first.log else ""))
        return 1
    return 0


def _update_shims(config: Config, bin_dir: str | None) -> str:
    if not (bin_dir or config.bin_dir):
        return ""
    from .build import shims

    return shims.update(config, Path(bin_dir).resolve() if bin_dir else None)


def cmd_list(args: argparse.Namespace) -> int:
    from .build.status import statuses
    from .build.sync import select

    config = _config(args)
    found = statuses(config, select(config, args.names), verify=args.verify)
    if args.json:
        print(json.dumps([s.as_json() for s in found], indent=2))
        return 0
    if not found:
        print(f"no envs declared in {config.describe()}", file=sys.stderr)
    for s in found:
        stamp = s.stamp or {}
        python = stamp.get("interpreter", {}).get("version", "-")
        dists = ", ".join(f"{k}=={v}" for k, v in stamp.get("distributions", {}).items())
        print(f"{s.name:<20} {s.state:<8} py{python:<8} {dists or '-'}")
        for reason in s.reasons if s.state != "ok" else ():
            print(f"{'':<20} {reason}; fix: {s.fix}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from .build.status import statuses
    from .build.sync import select

    config = _config(args)
    found = [s for s in statuses(config, select(config, args.names), verify=True) if s.state != "ok"]
    if args.json:
        print(json.dumps([s.as_json() for s in found], indent=2))
    for s in found:
        print(f"polyvenv: {s.name}: {s.state}: {'; '.join(s.reasons)}; fix: `{s.fix}`", file=sys.stderr)
    if not found:
        print("polyvenv: every env is ok", file=sys.stderr)
    return 1 if any(s.state == "broken" for s in found) else 0


def cmd_run(args: argparse.Namespace) -> int:
    from .build.run import run

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise UsageError("nothing to run: give a command after the env's name, e.g. `polyvenv run NAME -- python`")
    return run(_config(args), args.name, command)


def cmd_lock(args: argparse.Namespace) -> int:
    from .build import lockfiles
    from .build.spec import lock_path
    from .build.store import Store
    from .build.sync import plan, select, sources_for

    config = _config(args)
    planner, specs = plan(config, select(config, args.names))
    try:
        uv = lockfiles.uv_for(planner)
        sources = sources_for(config, args.offline or None, _path(args.wheelhouse))
        store = Store(config.envs_dir)
        for spec in specs:
            path = lock_path(config, spec.name)
            log = store.root / ".logs" / f"{spec.name}.lock.log"
            lockfiles.write_lock(spec, path, uv, sources, config.root, log)  # fails as one BuildError line
            print(f"polyvenv: {spec.name}: wrote {path}", file=sys.stderr)
    finally:
        planner.close()
    return 0


def cmd_wheelhouse(args: argparse.Namespace) -> int:
    from .build.wheelhouse import fill

    config = _config(args)
    count = fill(config, Path(args.dir).resolve(), args.names)
    print(f"polyvenv: {count} wheels in {Path(args.dir).resolve()}", file=sys.stderr)
    return 0


def cmd_shims(args: argparse.Namespace) -> int:
    changes = _update_shims(_config(args), args.bin_dir)
    print(f"polyvenv: shims: {changes or 'no changes'}", file=sys.stderr)
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    from .build.create import create

    action = create(
        Path(args.dir), Path(args.requirements), python=args.python, offline=args.offline,
        wheelhouse=_path(args.wheelhouse), with_pip=args.with_pip, installer=args.installer,
    )
    print(f"polyvenv: {args.dir}: {action}", file=sys.stderr)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from .build.cleanup import remove

    config = _config(args)
    for name in args.names:
        print(f"polyvenv: {remove(config, name)}", file=sys.stderr)
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from .build.cleanup import gc
    from .build.retire import IN_USE

    kept: list[Path] = []
    removed = gc(_config(args), kept)
    for path in removed:
        print(f"polyvenv: removed {path}", file=sys.stderr)
    for path in kept:
        print(f"polyvenv: kept {path}: {IN_USE}", file=sys.stderr)
    print(f"polyvenv: gc removed {len(removed)} unused builds", file=sys.stderr)
    return 0


def cmd_python(args: argparse.Namespace) -> int:
    """The host interpreter with the import map installed: ``python [-c CODE | -m MOD | SCRIPT] [ARGS]``."""
    import runpy

    from .build.sync import sync
    from .runtime.import_map import install_import_map
    from .runtime.workspace import Workspace

    config = _config(args)
    failed = [o for o in sync(config, quiet=True) if o.error]
    if failed:
        raise failed[0].error  # type: ignore[misc]
    install_import_map(Workspace(config))
    argv = list(args.args)
    if not argv:
        import code

        code.interact(banner=f"polyvenv python: import map of {config.describe()} installed", local={})
        return 0
    if argv[0] == "-c" and len(argv) > 1:
        sys.argv = ["-c", *argv[2:]]
        exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})
    elif argv[0] == "-m" and len(argv) > 1:
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        script = Path(argv[0])
        if not script.is_file():
            raise UsageError(f"cannot run {script}: no such file")
        sys.argv = argv
        sys.path.insert(0, str(script.resolve().parent))
        runpy.run_path(str(script), run_name="__main__")
    return 0


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


# -- the parser -------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polyvenv",
        description="Many isolated Python environments, side by side in one program.",
    )
    parser.add_argument("--version", action="version", version=f"polyvenv {__version__}")
    parser.add_argument("--config", metavar="FILE", help="polyvenv.toml or pyproject.toml to use "
                        "(default: the nearest one at or above the current directory)")
    sub = parser.add_subparsers(metavar="COMMAND")

    def command(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    def sources(p: argparse.ArgumentParser) -> None:
        p.add_argument("--offline", action="store_true", help="install only from the wheelhouse")
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
    p.add_argument("--discover", metavar="DIR", help="one env per directory of DIR holding a requirements file")
    p.add_argument("--pattern", default=DEFAULT_PATTERN, help=f"with --discover (default: {DEFAULT_PATTERN})")
    p.add_argument("--bin-dir", metavar="DIR", help="where command shims go (default: bin-dir from the config)")
    p.add_argument("--quiet", "-q", action="store_true")

    for name, handler, text in (("list", cmd_list, "envs, their state (ok / stale / broken / missing), versions"),
                                ("doctor", cmd_doctor, "find broken envs and say how to fix them")):
        p = command(name, handler, text)
        p.add_argument("names", nargs="*", metavar="NAME")
        p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        if name == "list":
            p.add_argument("--verify", action="store_true", help="check every installed file's sha256 against "
                           "its RECORD, as `doctor` does (without it: sizes only)")

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

    p = command("python", cmd_python, "run the host interpreter with the import map installed")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="[-c CODE | -m MODULE | SCRIPT] ARGS")

    p = command("import-map", cmd_import_map, "show which top-level names go to which env")
    p.add_argument("--json", action="store_true")

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
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _path(text: str | None) -> Path | None:
    return Path(text).resolve() if text else None


if __name__ == "__main__":
    sys.exit(main())
