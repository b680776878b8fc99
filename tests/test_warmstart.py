"""The first start after `sync` is warm (issue 13): sync rewrites and patches, the first load only reads.

Each test gives its polyvenv processes a private POLYVENV_CACHE_DIR under tmp_path and compares the
cache's files (names, sizes, mtimes) around a load: a load that rewrote or patched anything left a new
or changed file there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from wheelgen import demo_wheel, self_importing_c_wheel

SRC = Path(__file__).parent.parent / "src"

# a module of the envs' shared `source`: the same file loaded by two envs under two aliases of demo
ODD = '''
import demo.sub
SLICED = "demo.sub:VALUE"[:4]       # the compiler folds the mapped constant: a slice of the alias
class Holder:
    import demo.deep.leaf            # `import a.b` binds `a`: in a class body too
    LEAF = demo.deep.leaf.LEAF
def late():
    import demo.late_mod
    return demo.late_mod.LATE
def entry():
    return "demo.sub:helper"
'''

HOST = '''
import json, os, sys
sys.path.insert(0, {src!r})
import types
for taken in {occupied!r}:  # names the host's own modules hold already: the envs cannot have them as aliases
    sys.modules[taken] = types.ModuleType(taken)
import polyvenv
ws = polyvenv.Workspace.load({project!r})
out = {{}}
for name in {envs!r}:
    env = ws.env(name)
    demo, odd = env.import_module("demo"), env.import_module("odd")
    api = env.import_module("demo.api")
    out[name] = {{
        "version": demo.__version__, "alias": demo.__name__, "late": api.late(), "dynamic": api.dynamic(),
        "dunder": api.dunder_import(), "executed": api.executed(), "pickled": api.pickled(),
        "self": demo.SELF_IS_ME, "file": os.path.realpath(demo.__file__).startswith(os.path.realpath({project!r})),
        "sliced": odd.SLICED == demo.__name__[:4],
        "holder": odd.Holder.LEAF, "odd_late": odd.late(), "entry": odd.entry() == demo.__name__ + ".sub:helper",
    }}
    if {cself!r} in name:
        cself = env.import_module("cself")
        out[name]["cself"] = [cself.version_at_init(), cself.lazy_version(), cself.__name__]
if {marked!r}:
    out["marked"] = ws.env({envs!r}[0]).import_module("marked").MARKED
out["real names in sys.modules"] = sorted(n for n in ("demo", "cself", "odd") if n in sys.modules)
print(json.dumps(out))
'''


def _env(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "POLYVENV_WARM"}
    env.update(POLYVENV_CACHE_DIR=str(cache), **extra)
    return env


def _cache_files(cache: Path, kind: str) -> dict[str, tuple[int, int]]:
    """Every file of polyvenv's cache under ``kind`` (code, relocated), with its size and mtime."""
    found = {}
    for directory, _, files in os.walk(cache / kind):
        for file in files:
            st = os.stat(os.path.join(directory, file))
            found[os.path.join(directory, file)] = (st.st_size, st.st_mtime_ns)
    return found


def _project(tmp_path: Path, envs: str) -> Path:
    wh = tmp_path / "wheels"
    demo_wheel(wh, "1.0")
    demo_wheel(wh, "2.0")
    self_importing_c_wheel(wh, sys.executable, "1.0")
    self_importing_c_wheel(wh, sys.executable, "2.0")
    project = tmp_path / "project"
    (project / "plugsrc").mkdir(parents=True)
    (project / "plugsrc" / "odd.py").write_text(ODD)
    # the mark the cache's placeholders use, as data: kept as it is (its module is cached for its exact aliases)
    (project / "plugsrc" / "marked.py").write_text('import demo\nMARKED = "a\\uffffdemo\\uffffb"\n')
    (project / "polyvenv.toml").write_text(f'wheelhouse = "{wh}"\noffline = true\n' + textwrap.dedent(envs))
    return project


def _sync(project: Path, cache: Path, *args: str, **extra: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "polyvenv", "sync", "--no-progress", *args], cwd=project,
                          capture_output=True, text=True, env=_env(cache, **extra))
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def _host(project: Path, cache: Path, envs: list[str], marked: bool = False, occupied: tuple[str, ...] = ()) -> dict:
    code = HOST.format(src=str(SRC), project=str(project), envs=envs, cself="c", marked=marked, occupied=occupied)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(cache))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _expected(version: str) -> dict:
    return {"version": version, "late": f"late-{version}", "dynamic": f"dyn-{version}", "dunder": f"dyn-{version}",
            "executed": f"sub-{version}", "pickled": True, "self": True, "file": True, "sliced": True,
            "holder": f"leaf-{version}", "odd_late": f"late-{version}", "entry": True}


ENVS = """
    [envs.c1]
    requirements = ["demo==1.0", "cself==1.0"]
    source = "plugsrc"
    [envs.c2]
    requirements = ["demo==2.0", "cself==2.0"]
    source = "plugsrc"
"""


def test_the_first_start_after_sync_rewrites_and_patches_nothing_in_either_order(tmp_path):
    project, cache = _project(tmp_path, ENVS), tmp_path / "cache"
    said = _sync(project, cache)
    assert "warmed" in said and "rewritten" in said, said  # sync shows the warm-up
    code, relocated = _cache_files(cache, "code"), _cache_files(cache, "relocated")
    assert code and relocated  # made by sync, before any load
    for order in (["c1", "c2"], ["c2", "c1"]):  # two envs with the same names, loaded after each other
        out = _host(project, cache, order)
        for name, version in (("c1", "1.0"), ("c2", "2.0")):
            got = {k: v for k, v in out[name].items() if k not in ("alias", "cself")}
            assert got == _expected(version), name
            assert out[name]["cself"] == [version, f"helpers-{version}", out[name]["cself"][2]]
        assert out["c1"]["alias"] != out["c2"]["alias"] and "demo" not in (out["c1"]["alias"], out["c2"]["alias"])
        assert out["real names in sys.modules"] == []
        now = _cache_files(cache, "code")
        assert {k: v for k, v in now.items() if k in code} == code, "the first start rewrote code sync had rewritten"
        # what it added: its modules' code as loaded (aliases in place), beside the entries it was made from,
        # for the next start; only the first start makes them (the aliases are the same in either order)
        loaded = set(now) - set(code)
        assert loaded and all(f.rpartition(".")[0] in code for f in loaded), sorted(loaded)
        if order[0] == "c2":
            assert now == kept, "a second start made its modules' code again"
        kept = now
        # each env's extension copies were made at sync for the aliases it prefers, whichever loads first
        assert _cache_files(cache, "relocated") == relocated, order
    # a host whose own modules hold those aliases already: the envs get others, and patch their copies now
    taken = tuple(out[name][key] if key == "alias" else out[name]["cself"][2] for name in ("c1", "c2")
                  for key in ("alias", "cself"))
    out = _host(project, cache, ["c1", "c2"], occupied=taken)
    assert [out["c1"]["version"], out["c2"]["cself"][:2]] == ["1.0", ["2.0", "helpers-2.0"]]
    assert not {out["c1"]["alias"], out["c2"]["cself"][2]} & set(taken)
    assert _cache_files(cache, "code") == kept  # code is cached for any aliases (as loaded: for the preferred)
    after = _cache_files(cache, "relocated")
    assert {p: after[p] for p in relocated} == relocated and len(after) > len(relocated)


def test_without_the_warm_up_the_first_load_rewrites_and_works(tmp_path):
    project, cache = _project(tmp_path, ENVS), tmp_path / "cache"
    said = _sync(project, cache, "--no-warm")
    assert "warmed" not in said
    assert not _cache_files(cache, "code")
    out = _host(project, cache, ["c1"], marked=True)
    assert {k: v for k, v in out["c1"].items() if k not in ("alias", "cself")} == _expected("1.0")
    assert out["marked"] == "a\uffffdemo\uffffb"
    assert _cache_files(cache, "code")  # the load did it
    shutil.rmtree(project / ".polyvenv")  # built again, with the warm-up turned off by the environment
    other = tmp_path / "cache2"
    assert "warmed" not in _sync(project, other, POLYVENV_WARM="0") and not _cache_files(other, "code")


def test_a_reload_after_a_dependency_switch_reads_the_code_sync_rewrote(tmp_path):
    project = _project(tmp_path, """
        [envs.c1]
        requirements = ["demo==1.0"]
        source = "plugsrc"
    """)
    cache = tmp_path / "cache"
    config = project / "polyvenv.toml"
    _sync(project, cache)
    code = textwrap.dedent(f"""
        import json, os, subprocess, sys
        sys.path.insert(0, {str(SRC)!r})
        import polyvenv
        from pathlib import Path
        ws = polyvenv.Workspace.load({str(project)!r})
        env = ws.env("c1")
        before = env.import_module("odd").late()
        config = Path({str(config)!r})
        config.write_text(config.read_text().replace("demo==1.0", "demo==2.0"))
        subprocess.run([sys.executable, "-m", "polyvenv", "sync", "-q"], cwd={str(project)!r}, check=True)
        def files():
            out = {{}}
            for d, _, names in os.walk(os.path.join(os.environ["POLYVENV_CACHE_DIR"], "code")):
                for n in names:
                    st = os.stat(os.path.join(d, n))
                    out[os.path.join(d, n)] = (st.st_size, st.st_mtime_ns)
            return out
        cached = files()
        reloaded = env.reload()
        after = env.import_module("odd").late()
        print(json.dumps({{"before": before, "after": after, "reloaded": sorted(reloaded),
                          "rewritten": sorted(set(files().items()) ^ set(cached.items()), key=str)}}, default=list))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(cache))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["before"], out["after"]) == ("late-1.0", "late-2.0")
    assert "demo" in out["reloaded"] and "odd" in out["reloaded"]
    assert out["rewritten"] == [], "the reload rewrote code of the new build that sync had rewritten"
