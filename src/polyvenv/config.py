"""Read ``[tool.polyvenv]`` (or ``polyvenv.toml``) into validated EnvSpec objects.

Standard library only: the runtime reads configuration too. Validation
collects every problem before raising, so one run shows them all, each
naming the file and the key.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from .errors import ConfigError
from .runtime.files import write_atomic

CONFIG_FILE = "polyvenv.toml"
PYPROJECT = "pyproject.toml"
DISCOVERED_FILE = "discovered.json"  # in envs-dir: what `sync --discover` remembers
DECLARED_FILE = "declared.json"  # in envs-dir: the envs a program declared from code (declared.py)
DEFAULT_PATTERN = "*/requirements.txt"
ISOLATIONS = ("namespace", "process", "auto")  # auto: probed at sync (runtime/probe.py)
INSTALLERS = ("uv", "pip")
LINK_MODES = ("hardlink", "copy", "clone")  # how uv puts files from its cache into an env
LOCK_FORMATS = ("requirements", "pylock")  # `<env>.txt` (hashed requirements) or PEP 751 `pylock.<env>.toml`

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# An env's name becomes part of file names polyvenv makes (".<name>.<pid>.link", "<name>-<hash>.log",
# ".<name>-<hash>.trash-<pid>"); 200 leaves room for the longest suffix under NAME_MAX (255).
MAX_NAME = 200
ENVS_MARKER = ".polyvenv-envs"  # in envs-dir: this directory is polyvenv's (provision/store.py writes it)
# Names polyvenv itself uses inside envs-dir: no env may take them.
_RESERVED = {DISCOVERED_FILE, DECLARED_FILE, ENVS_MARKER}
# What an envs-dir made before it carried ENVS_MARKER holds: recognised as polyvenv's, marked on next sync.
_LEGACY_ENTRIES = {".builds", ".locks", ".logs", ".cache", DISCOVERED_FILE}
_TOP_KEYS = ("envs-dir", "bin-dir", "wheelhouse", "offline", "locks-dir", "lock-format", "installer", "link-mode",
             "discover", "envs")
_ENV_KEYS = (
    "requirements", "requirements-file", "source", "python",
    "isolation", "shared", "private", "scripts", "provides",
)
_DISCOVER_KEYS = ("dir", "pattern")
_TABLE_KINDS = {_TOP_KEYS: "a top-level key", _ENV_KEYS: "an env key ([envs.NAME])",
                _DISCOVER_KEYS: "a key of [discover]"}


def _belongs(key: str) -> tuple[tuple[str, ...], str] | None:
    """The table ``key`` is valid in, and how to name it, or None if it is valid in none."""
    return next(((keys, kind) for keys, kind in _TABLE_KINDS.items() if key in keys), None)


class EnvSpec(NamedTuple):
    """One declared environment, with paths made absolute."""

    name: str
    requirements: tuple[str, ...] = ()
    requirements_file: Path | None = None
    source: Path | None = None
    python: str | None = None
    isolation: str = "namespace"
    shared: tuple[str, ...] = ()
    scripts: tuple[str, ...] = ()
    private: tuple[str, ...] = ()  # distributions kept private even where the host or other envs agree
    provides: tuple[str, ...] = ()
    script_dir: Path | None = None  # a discovered module's bin/: its Python scripts get shims


class Discovery(NamedTuple):
    """One directory scanned for per-module requirements files (seed 003)."""

    dir: Path
    pattern: str = DEFAULT_PATTERN


class Config(NamedTuple):
    """A workspace's whole declaration (immutable: changes make a new one with ``_replace``)."""

    root: Path
    path: Path | None
    envs_dir: Path
    locks_dir: Path
    envs: dict[str, EnvSpec]
    bin_dir: Path | None = None
    wheelhouse: Path | None = None
    offline: bool = False
    installer: str = "uv"
    discoveries: tuple[Discovery, ...] = ()
    link_mode: str | None = None  # None: uv's default (hardlink on Linux, clone on macOS)
    lock_format: str = "requirements"  # what `polyvenv lock` writes (provision/lockfiles.py)

    def env(self, name: str) -> EnvSpec:
        from .errors import EnvNotFound

        try:
            return self.envs[name]
        except KeyError:
            hint = did_you_mean(name, self.envs)
            known = ", ".join(self.envs) or "none"
            raise EnvNotFound(f"no env named {name!r} in {self.describe()}{hint} (declared: {known})") from None

    def describe(self) -> str:
        return str(self.path) if self.path else f"{self.root} (no config file)"


def find_config(start: Path) -> Path | None:
    """The nearest polyvenv.toml, or pyproject.toml with [tool.polyvenv], at or above ``start``."""
    for directory in (start.resolve(), *start.resolve().parents):
        candidate = directory / CONFIG_FILE
        if candidate.is_file():
            return candidate
        candidate = directory / PYPROJECT
        if candidate.is_file() and _has_polyvenv_table(candidate):
            return candidate
    return None


def config_path(start: Path | str = ".", config_file: Path | str | None = None) -> Path | None:
    """The config file ``load_config`` reads: ``config_file``, else the first one at or above ``start``."""
    return Path(config_file).resolve() if config_file else find_config(Path(start))


def load_config(start: Path | str = ".", config_file: Path | str | None = None, *, required: bool = True) -> Config:
    """Find and validate the configuration; raise ConfigError listing every problem.

    With ``required=False`` and no file found, the workspace is the directory
    ``start`` with default settings (what ``sync --discover`` needs).
    """
    start = Path(start)
    path = config_path(start, config_file)
    if path is None:
        discovered = _discovered_root(start)  # `sync --discover` without a config file made a workspace here
        if discovered is not None:
            return _validate({}, root=discovered, path=None)
        if required:
            raise ConfigError(
                f"no {CONFIG_FILE}, and no {PYPROJECT} with [tool.polyvenv], in {start.resolve()} or above: "
                "create one (see README) or pass --config FILE"
            )
        return _validate({}, root=start.resolve(), path=None)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = _read_toml(path)
    except _NoTomlParser as e:  # the runtime reads the copy `sync` leaves (snapshot.py) before it comes here
        raise ConfigError(f"{e}; or run `polyvenv sync` once, which leaves a copy this Python can read") from None
    if path.name == PYPROJECT:  # any other file holds polyvenv's keys at top level
        data = data.get("tool", {}).get("polyvenv", {})
    return _validate(data, root=path.parent, path=path)


def workspace_config(directory: Path | str) -> Config:
    """The config of the workspace at ``directory`` itself, never one above it: its polyvenv.toml (or
    pyproject.toml with [tool.polyvenv]) if it holds one, else the directory alone with default
    settings, its envs in ``directory/.polyvenv`` (a host that owns no config file: ``Workspace.open``)."""
    directory = Path(directory).resolve()
    found = find_config(directory)
    if found is not None and found.parent == directory:
        return load_config(directory, found)
    return _validate({}, root=directory, path=None)


def remember_discovery(config: Config, discovery: Discovery, bin_dir: Path | None = None) -> Config:
    """Record a `--discover DIR` (and the `--bin-dir` its shims went to) so later commands (list,
    run, gc, shims) see those envs and their shims, with or without a config file."""
    remembered = _remembered(config.envs_dir)
    entry: dict[str, str] = {"dir": str(discovery.dir), "pattern": discovery.pattern}
    if bin_dir is not None:
        entry["bin_dir"] = str(bin_dir)
    same = [e for e in remembered if (e.get("dir"), e.get("pattern")) == (entry["dir"], entry["pattern"])]
    if same != [entry]:
        others = [e for e in remembered if e not in same]
        config.envs_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(config.envs_dir / DISCOVERED_FILE, json.dumps(others + [entry], indent=2) + "\n")
    config = _merge_discovered(config, [discovery])
    return config._replace(bin_dir=config.bin_dir or bin_dir)


def discover(discovery: Discovery) -> list[EnvSpec]:
    """One env per directory holding a requirements file, named after that directory."""
    envs = []
    for req in sorted(discovery.dir.glob(discovery.pattern)):
        if not req.is_file():
            continue
        module = discovery.dir / req.relative_to(discovery.dir).parts[0]
        envs.append(EnvSpec(
            name=module.name,
            requirements_file=req.resolve(),
            source=module.resolve(),
            script_dir=(module / "bin").resolve(),
        ))
    return envs


# -- internals ---------------------------------------------------------------

def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib  # type: ignore[import-not-found]
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise _NoTomlParser(f"{path}: reading TOML needs Python 3.11+ or the tomli package") from None
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None


class _NoTomlParser(ConfigError):
    pass


def _has_polyvenv_table(pyproject: Path) -> bool:
    try:
        return "polyvenv" in _read_toml(pyproject).get("tool", {})
    except _NoTomlParser:  # no parser here: a table header is enough to tell
        return re.search(r"^\s*\[\s*tool\.polyvenv\b", pyproject.read_text(), re.M) is not None


class _Checker:
    """Collects problems, each prefixed with the file and the table it is in."""

    def __init__(self, path: Path | None, where: str | None = None) -> None:
        self.where = where or (str(path) if path else "command line")
        self.problems: list[str] = []

    def add(self, table: str, message: str) -> None:
        where = f"[{table.lstrip('.')}] " if table.lstrip(".") else ""
        self.problems.append(f"{self.where}: {where}{message}")

    def keys(self, table: str, data: dict[str, Any], allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in data:
            if key in allowed:
                continue
            elsewhere = _belongs(key)
            if elsewhere and elsewhere[0] != allowed:
                self.add(table, f"{key} is {elsewhere[1]}, not {_TABLE_KINDS[allowed]}: move it there")
            else:
                self.add(table, f"unknown key {key!r}{did_you_mean(key, allowed)}")

    def typed(self, table: str, data: dict[str, Any], key: str, kind: type, default: Any = None) -> Any:
        value = data.get(key, default)
        if value is default or isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return value
        self.add(table, f"{key}: expected {_kind_name(kind)}, got {type(value).__name__} {value!r}")
        return default

    def strings(self, table: str, data: dict[str, Any], key: str) -> tuple[str, ...]:
        value = data.get(key, [])
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        self.add(table, f"{key}: expected a list of strings, got {type(value).__name__} {value!r}")
        return ()


def _validate(data: dict[str, Any], *, root: Path, path: Path | None) -> Config:
    check = _Checker(path)
    top = "tool.polyvenv" if path and path.name == PYPROJECT else ""
    if not isinstance(data, dict):
        raise ConfigError(f"{check.where}: [tool.polyvenv] must be a table")
    check.keys(top, data, _TOP_KEYS)

    def directory(key: str, default: str | None) -> Path | None:
        value = check.typed(top, data, key, str, default)
        return (root / value).resolve() if value else None

    envs_dir = directory("envs-dir", ".polyvenv")
    locks_dir = directory("locks-dir", "polyvenv-locks")
    installer = check.typed(top, data, "installer", str, "uv")
    if installer not in INSTALLERS:
        check.add(top, f"installer: must be one of {', '.join(INSTALLERS)}, got {installer!r}")
    link_mode = check.typed(top, data, "link-mode", str, None)
    if link_mode is not None and link_mode not in LINK_MODES:
        check.add(top, f"link-mode: must be one of {', '.join(LINK_MODES)}, got {link_mode!r}")
    lock_format = check.typed(top, data, "lock-format", str, "requirements")
    if lock_format not in LOCK_FORMATS:
        check.add(top, f"lock-format: must be one of {', '.join(LOCK_FORMATS)}, got {lock_format!r}")
    config = Config(
        root=root,
        path=path,
        envs_dir=envs_dir or root / ".polyvenv",
        locks_dir=locks_dir or root / "polyvenv-locks",
        bin_dir=directory("bin-dir", None),
        wheelhouse=directory("wheelhouse", None),
        offline=check.typed(top, data, "offline", bool, False),
        installer=installer,
        link_mode=link_mode,
        lock_format=lock_format,
        envs={},
    )

    problem = envs_dir_problem(config.envs_dir, root)
    if problem:
        check.add(top, problem)
    for key, value in (("bin-dir", config.bin_dir), ("locks-dir", config.locks_dir)):
        if value is not None and os.path.lexists(value) and not value.is_dir():
            check.add(top, f"{key}: {value} exists and is not a directory: move it away or choose another path")
    if config.offline and config.wheelhouse is None:
        check.add(top, "offline = true needs `wheelhouse`: offline, local wheels are the only source")
    envs_table = check.typed(top, data, "envs", dict, {})
    envs: dict[str, EnvSpec] = {}
    for name, body in envs_table.items():
        spec = _env_spec(check, env_table(top, name), name, body, root)
        if spec:
            envs[name] = spec

    discoveries = _discoveries(check, top, data.get("discover"), root)
    if check.problems:
        raise ConfigError(check.problems)
    config = config._replace(envs=envs)
    entries = _remembered(config.envs_dir)
    remembered = [Discovery(Path(d["dir"]), d["pattern"]) for d in entries]
    bin_dirs = [Path(d["bin_dir"]) for d in entries if d.get("bin_dir")]
    if config.bin_dir is None and bin_dirs:  # where `sync --discover --bin-dir` put the shims
        config = config._replace(bin_dir=bin_dirs[-1])
    from .declared import merge_declared

    return merge_declared(_merge_discovered(config, discoveries + remembered))  # the envs declared from code


def _discovered_root(start: Path) -> Path | None:
    """The nearest directory at or above ``start`` whose default envs dir remembers a discovery, or
    envs a program declared from code (a workspace without a config file: ``Workspace.open``)."""
    for directory in (start.resolve(), *start.resolve().parents):
        if any((directory / ".polyvenv" / kept).is_file() for kept in (DISCOVERED_FILE, DECLARED_FILE)):
            return directory
    return None


def env_table(top: str, name: str) -> str:
    """``envs.NAME`` (under ``top``), the table an env's problems are reported in; a name that cannot
    name an env is quoted and cut short, so the report stays one readable line."""
    plain = name if _NAME.fullmatch(name) and len(name) <= MAX_NAME else json.dumps(name[:40])
    return f"{top}.envs.{plain}"


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name an env (it becomes a file name in envs-dir), or None.

    One rule for names from the config, from discovery and from the command line.
    """
    if len(name) > MAX_NAME:
        return f"env name {name[:40]!r}... is {len(name)} characters long: at most {MAX_NAME} fit in a file name"
    if not _NAME.fullmatch(name) or ".." in name:
        return (f"env name {name!r} is not a plain name: use letters, digits, '_', '-' or '.', "
                "not starting with '.' or '-', nor containing '/' or '..'")
    if name in _RESERVED:
        return f"env name {name!r} is a file polyvenv keeps in envs-dir: choose another name"
    return None


def envs_dir_problem(envs_dir: Path, root: Path) -> str | None:
    """Why ``envs_dir`` cannot be polyvenv's envs directory, or None.

    polyvenv deletes and replaces entries of its envs dir (gc, remove, sync), so it must be a
    directory that holds nothing else: absent, empty, or one polyvenv marked as its own. Never
    ``/``, the home directory, the workspace root or one of its parents.
    """
    home = Path.home().resolve()
    if envs_dir == root or envs_dir in root.parents:
        what = "the workspace root" if envs_dir == root else "a parent of the workspace"
        return f"envs-dir: {envs_dir} is {what}: polyvenv deletes what it finds there; use a directory of its own, " \
               "such as \".polyvenv\""
    if envs_dir == home or envs_dir == Path(envs_dir.anchor):
        return f"envs-dir: {envs_dir} is {'the home directory' if envs_dir == home else 'the root directory'}: " \
               "use a directory of its own, such as \".polyvenv\""
    if os.path.lexists(envs_dir) and not envs_dir.is_dir():
        return f"envs-dir: {envs_dir} exists and is not a directory: move it away or choose another path"
    if not envs_dir.is_dir() or (envs_dir / ENVS_MARKER).is_file():
        return None
    try:
        foreign = [e for e in os.listdir(envs_dir) if not _legacy_entry(envs_dir, e)]
    except OSError as e:
        return f"envs-dir: cannot read {envs_dir}: {e.strerror}"
    if foreign and not (envs_dir / ENVS_MARKER).is_file():  # look again: a builder may have marked it meanwhile
        return (f"envs-dir: {envs_dir} already holds files polyvenv did not make (e.g. {sorted(foreign)[0]!r}): "
                "choose an empty or new directory")
    return None


def _legacy_entry(envs_dir: Path, entry: str) -> bool:
    """An entry an envs-dir made by an earlier polyvenv holds: its own files, or a link into its builds."""
    if entry in _LEGACY_ENTRIES or entry.endswith(".link") and entry.startswith("."):
        return True
    target = envs_dir / entry
    return target.is_symlink() and os.readlink(target).startswith(".builds" + os.sep)


def _env_spec(check: _Checker, table: str, name: str, body: Any, root: Path) -> EnvSpec | None:
    problem = name_problem(name)
    if problem:
        check.add(table, problem)
        return None
    if not isinstance(body, dict):
        check.add(table, f"expected a table of env settings, got {type(body).__name__}")
        return None
    check.keys(table, body, _ENV_KEYS)
    requirements = check.strings(table, body, "requirements")
    for problem in _requirement_problems(requirements):
        check.add(table, f"requirements: {problem}")
    req_file = check.typed(table, body, "requirements-file", str)
    req_path = (root / req_file).resolve() if req_file else None
    if req_path is not None and not req_path.is_file():
        check.add(table, f"requirements-file: {req_path} does not exist")
    source = check.typed(table, body, "source", str)
    source_path = (root / source).resolve() if source else None
    if source_path is not None and not source_path.is_dir():
        check.add(table, f"source: {source_path} is not a directory")
    isolation = check.typed(table, body, "isolation", str, "namespace")
    if isolation not in ISOLATIONS:
        check.add(table, f"isolation: must be one of {', '.join(ISOLATIONS)}, got {isolation!r}")
    return EnvSpec(
        name=name,
        requirements=requirements,
        requirements_file=req_path,
        source=source_path,
        python=check.typed(table, body, "python", str),
        isolation=isolation,
        shared=check.strings(table, body, "shared"),
        private=check.strings(table, body, "private"),
        scripts=check.strings(table, body, "scripts"),
        provides=check.strings(table, body, "provides"),
    )


@functools.lru_cache(maxsize=None)
def _simple_requirement() -> re.Pattern[str]:
    """Requirements this simple are valid PEP 508 for certain; only others need packaging's parser,
    whose import costs more than a whole no-op `sync` may. Compiled on first use: a host loading a
    workspace from its snapshot never needs it."""
    version = r"\d+(\.\d+)*"
    clause = rf"\s*((==|!=)\s*{version}(\.\*)?|(>=|<=|>|<|~=)\s*{version})"
    return re.compile(
        rf"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?(\[[A-Za-z0-9_-]+(,[A-Za-z0-9_-]+)*\])?({clause}(\s*,{clause})*)?$"
    )


def _requirement_problems(requirements: Iterable[str]) -> list[str]:
    """PEP 508 problems, when packaging is importable (always in the build half)."""
    requirements = [r for r in requirements if not _simple_requirement().match(r)]
    if not requirements:
        return []
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # a runtime host without the build dependencies: the builder checked
        return []
    problems = []
    for text in requirements:
        try:
            Requirement(text)
        except InvalidRequirement as e:
            first = str(e).splitlines()[0]
            problems.append(f"{text!r} is not a valid PEP 508 requirement ({first}){_operator_hint(text)}")
    return problems


_SWAPPED = {"=>": ">=", "=<": "<=", "=~": "~=", "=!": "!=", "=": "=="}


def _operator_hint(text: str) -> str:
    """`` (did you mean 'jinja2>=3.1'?)`` for an operator written the wrong way round (or a single '=')."""
    match = re.match(r"^([A-Za-z0-9._\[\],-]+)\s*(=>|=<|=~|=!|=(?![=<>~!]))\s*(\S.*)$", text)
    if not match:
        return ""
    fixed = f"{match.group(1)}{_SWAPPED[match.group(2)]}{match.group(3)}"
    return f" (did you mean {fixed!r}?)"


def _discoveries(check: _Checker, top: str, value: Any, root: Path) -> list[Discovery]:
    if value is None:
        return []
    tables = value if isinstance(value, list) else [value]
    found = []
    for table in tables:
        if not isinstance(table, dict):
            check.add(top, f"discover: expected a table with 'dir' and 'pattern', got {table!r}")
            continue
        check.keys(f"{top}.discover", table, _DISCOVER_KEYS)
        directory = check.typed(f"{top}.discover", table, "dir", str)
        pattern = check.typed(f"{top}.discover", table, "pattern", str, DEFAULT_PATTERN)
        if not directory:
            check.add(f"{top}.discover", "dir: required")
        elif not (root / directory).is_dir():
            check.add(f"{top}.discover", f"dir: {(root / directory).resolve()} is not a directory")
        else:
            found.append(Discovery((root / directory).resolve(), pattern))
    return found


def _merge_discovered(config: Config, discoveries: list[Discovery]) -> Config:
    envs = dict(config.envs)
    problems = []
    for discovery in discoveries:
        if not discovery.dir.is_dir():
            continue  # a remembered directory that was removed since: nothing to discover
        for spec in discover(discovery):
            problem = name_problem(spec.name)
            if problem:
                problems.append(f"{spec.requirements_file}: discovered {problem}")
            elif spec.name in envs and envs[spec.name].requirements_file != spec.requirements_file:
                problems.append(
                    f"{spec.requirements_file}: discovered env {spec.name!r} clashes with the env "
                    f"of that name from {envs[spec.name].requirements_file or config.describe()}"
                )
            else:
                envs[spec.name] = spec
    if problems:
        raise ConfigError(problems)
    all_discoveries = tuple(dict.fromkeys((*config.discoveries, *discoveries)))
    return config._replace(envs=envs, discoveries=all_discoveries)


def _remembered(envs_dir: Path) -> list[dict[str, str]]:
    try:
        return json.loads((envs_dir / DISCOVERED_FILE).read_text())
    except (OSError, ValueError):
        return []


def counted(count: int, noun: str) -> str:
    """``1 env``, ``2 envs``: a count with its noun in the number it takes."""
    return f"{count} {noun}{'s' * (count != 1)}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _kind_name(kind: type) -> str:
    return {str: "a string", bool: "true or false", dict: "a table", list: "a list"}.get(kind, kind.__name__)
