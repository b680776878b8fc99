"""Issue 13: what envs (and the host) agree on is loaded once; the rest stays private.

The rule's unit tests run on generated wheels unpacked into directories (a pure wheel unpacked is
an install: its files and its RECORD). The host-sharing tests build real envs with the real CLI
and load them into a real host process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from polyvenv.provision.records import distribution_records, write_records
from polyvenv.runtime.hostview import HostView, shared_with_host
from polyvenv.runtime.names import STDLIB, top_level_names
from polyvenv.runtime.records import Records, read_records
from polyvenv.runtime.sharing import offerers, owners, share_keys, shareable
from wheelgen import make_wheel, pure_wheel

SRC = Path(__file__).resolve().parents[1] / "src"


def install(site: Path, *wheels: Path) -> Path:
    site.mkdir(parents=True, exist_ok=True)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(site)
    return site


@pytest.fixture
def wheels(tmp_path) -> dict[str, Path]:
    wh = tmp_path / "wheels"
    made = {
        "alpha1": pure_wheel(wh, "alpha", "1.0"),
        "alpha2": pure_wheel(wh, "alpha", "2.0"),
        "extra": pure_wheel(wh, "extra", "1.0"),
        "plug": make_wheel(wh, "plug", "1.0", {"plug/__init__.py": textwrap.dedent("""
            import alpha
            import importlib
            from typing import TYPE_CHECKING
            try:
                import extra                      # optional: used where installed
            except ImportError:
                extra = None
            if TYPE_CHECKING:
                import only_for_type_checkers
            FOUND = importlib.import_module("by_context")
        """)}),
        "cyc_a1": make_wheel(wh, "cyc-a", "1.0", {"cyc_a.py": "import cyc_b\n"}),
        "cyc_b1": make_wheel(wh, "cyc-b", "1.0", {"cyc_b.py": "def f():\n    import cyc_a\n"}),
        "cyc_b2": make_wheel(wh, "cyc-b", "2.0", {"cyc_b.py": "def f():\n    import cyc_a\n    return 2\n"}),
        "asker": make_wheel(wh, "asker", "1.0", {"asker.py": textwrap.dedent("""
        from importlib.metadata import version
        ALPHA = version("alpha")                  # no import of alpha: its metadata, by name
    """)}),
    "finder": make_wheel(wh, "finder", "1.0", {"finder.py": textwrap.dedent("""
            from importlib.metadata import entry_points
            PLUGINS = {ep.name: ep for ep in entry_points() if ep.group == "finder.plugins"}  # every group's
        """)}),
        "backends": make_wheel(wh, "backends", "1.0", {"backends.py": textwrap.dedent("""
            from importlib.metadata import entry_points
            def backend(name):                    # pandas' plotting backends, as pandas 2 reads them
                eps = entry_points()
                key = "backends.plot"
                found = eps.select(group=key) if hasattr(eps, "select") else eps.get(key, ())
                return [ep for ep in found if ep.name == name]
            def direct():
                return entry_points(group="backends.plot"), entry_points().select(group="backends.plot")
        """)}),
        "plot1": make_wheel(wh, "plot", "1.0", {"plot.py": "V = 1\n"}, entry_points={"backends.plot": {"p": "plot"}}),
        "plot2": make_wheel(wh, "plot", "2.0", {"plot.py": "V = 2\n"}, entry_points={"backends.plot": {"p": "plot"}}),
        "cli1": make_wheel(wh, "cli", "1.0", {"cli.py": "V = 1\n"}, scripts={"cli": "cli:V"}),
        "docs": make_wheel(wh, "docs", "1.0", {"docs.py": textwrap.dedent("""
            import importlib
            def add_doc(place, name, doc):        # numpy's add_newdoc: imports the module its caller names
                setattr(getattr(__import__(place, globals(), {}, [name]), name), "__doc__", doc)
            def sub(name):
                return importlib.import_module(__name__ + "." + name), importlib.import_module("docs." + name)
        """)}),
    }
    return made


def agreeing(site: Path, other: Path) -> set[str]:
    """The distributions of ``site`` the rule shares with the env of ``other`` (both built as sites)."""
    ours, theirs = distribution_records(site), distribution_records(other)
    here = owners(ours, top_level_names([site]), site, (), STDLIB)
    there = owners(theirs, top_level_names([other]), other, (), STDLIB)
    digests = {r.name: r.digest for r in theirs}
    offering = offerers(theirs)
    return shareable(ours, here, there, lambda r: digests.get(r.name) == r.digest,
                     lambda names: {r.name for r in theirs} <= names, lambda name: name in digests,
                     lambda group: offering.get(group, set()))


def test_records_say_what_a_distribution_is_and_what_its_code_references(tmp_path, wheels):
    site = install(tmp_path / "a", wheels["plug"], wheels["alpha1"])
    other = install(tmp_path / "b", wheels["plug"], wheels["alpha2"])
    plug = {r.name: r for r in distribution_records(site)}["plug"]
    assert plug.version == "1.0" and plug.tops == ("plug",)
    assert set(plug.references) == {"alpha", "extra", "by_context", "importlib", "typing"}  # not TYPE_CHECKING's
    assert not plug.discovers
    again = {r.name: r for r in distribution_records(other)}
    assert again["plug"].digest == plug.digest  # the same files: the same distribution
    assert again["alpha"].digest != {r.name: r for r in distribution_records(site)}["alpha"].digest
    finder = {r.name: r for r in distribution_records(install(tmp_path / "c", wheels["finder"]))}["finder"]
    assert finder.discovers


def test_records_are_written_into_the_build_and_read_back_with_the_stdlib(tmp_path, wheels):
    build = tmp_path / "build"
    site = install(build / "lib" / "python3.11" / "site-packages", wheels["alpha1"])
    written = write_records(build, ("Alpha",))
    assert written is not None and read_records(site) == written
    assert read_records(site) == Records(written.distributions, ("alpha",))
    assert read_records(install(tmp_path / "plain", wheels["alpha1"])) is None  # a venv polyvenv did not build


def test_envs_with_the_same_distributions_agree_on_all_of_them(tmp_path, wheels):
    a = install(tmp_path / "a", wheels["plug"], wheels["alpha1"])
    b = install(tmp_path / "b", wheels["plug"], wheels["alpha1"])
    assert agreeing(a, b) == {"plug", "alpha"}
    keys = [share_keys(distribution_records(s), owners(distribution_records(s), top_level_names([s]), s, (), STDLIB))
            for s in (a, b)]
    assert keys[0] == keys[1] and None not in keys[0].values()


def test_a_dependency_of_another_version_keeps_both_private(tmp_path, wheels):
    a = install(tmp_path / "a", wheels["plug"], wheels["alpha1"])
    b = install(tmp_path / "b", wheels["plug"], wheels["alpha2"])
    assert agreeing(a, b) == set()  # plug is the same files, but its `import alpha` means another alpha


def test_an_optional_import_one_env_has_keeps_the_importer_private(tmp_path, wheels):
    a = install(tmp_path / "a", wheels["plug"], wheels["alpha1"])
    b = install(tmp_path / "b", wheels["plug"], wheels["alpha1"], wheels["extra"])
    assert agreeing(a, b) == {"alpha"}
    assert agreeing(b, a) == {"alpha"}  # extra itself: the other env has none


def test_a_cycle_is_shared_or_kept_private_as_a_whole(tmp_path, wheels):
    a = install(tmp_path / "a", wheels["cyc_a1"], wheels["cyc_b1"])
    b = install(tmp_path / "b", wheels["cyc_a1"], wheels["cyc_b1"])
    c = install(tmp_path / "c", wheels["cyc_a1"], wheels["cyc_b2"])
    assert agreeing(a, b) == {"cyc-a", "cyc-b"}
    assert agreeing(a, c) == set()  # cyc_a is the same, but the cyc_b it imports is not


def test_code_that_discovers_distributions_needs_the_whole_env_to_agree(tmp_path, wheels):
    a = install(tmp_path / "a", wheels["finder"], wheels["alpha1"])
    b = install(tmp_path / "b", wheels["finder"], wheels["alpha1"])
    c = install(tmp_path / "c", wheels["finder"], wheels["alpha2"])
    assert agreeing(a, b) == {"finder", "alpha"}
    assert agreeing(a, c) == set()  # finder references no alpha, but its entry_points() sees every distribution
    assert {r.name: r for r in distribution_records(a)}["finder"].groups == ()


def test_entry_points_read_by_group_need_only_that_groups_offerers_to_agree(tmp_path, wheels):
    """pandas reads its plotting backends with ``entry_points().select(group=key)``: it reaches the
    distributions offering that group, not every distribution of the env, so pandas is shared between
    envs that differ elsewhere (in a console script, say) and private where the offerers differ."""
    a = install(tmp_path / "a", wheels["backends"], wheels["plot1"], wheels["alpha1"])
    backends = {r.name: r for r in distribution_records(a)}
    assert backends["backends"].groups == ("backends.plot",) and not backends["backends"].discovers
    assert backends["plot"].offers == ("backends.plot",)
    elsewhere = install(tmp_path / "b", wheels["backends"], wheels["plot1"], wheels["alpha2"], wheels["cli1"])
    assert agreeing(a, elsewhere) == {"backends", "plot"}
    assert agreeing(a, install(tmp_path / "c", wheels["backends"], wheels["plot2"], wheels["alpha1"])) == {"alpha"}
    assert agreeing(a, install(tmp_path / "d", wheels["backends"], wheels["alpha1"])) == {"alpha"}  # no offerer there
    keys = [share_keys(distribution_records(s), owners(distribution_records(s), top_level_names([s]), s, (), STDLIB))
            for s in (a, elsewhere, tmp_path / "c")]
    assert keys[0]["backends"] == keys[1]["backends"] != keys[2]["backends"]


def test_code_importing_a_name_it_is_given_needs_the_whole_env_to_agree(tmp_path, wheels):
    """numpy's ``add_newdoc("scipy.sparse...", ...)`` imports the module its caller names: shared with the
    host, called by an env's scipy, it imported the host's scipy (the corpus saw it): such code can reach
    any module of the env, so it is shared only where the whole env agrees."""
    a = install(tmp_path / "a", wheels["docs"], wheels["alpha1"])
    assert {r.name: r for r in distribution_records(a)}["docs"].given
    assert agreeing(a, install(tmp_path / "b", wheels["docs"], wheels["alpha1"])) == {"docs", "alpha"}
    assert agreeing(a, install(tmp_path / "c", wheels["docs"], wheels["alpha2"])) == set()


def test_metadata_asked_by_name_must_be_the_same_distribution_or_absent_in_both(tmp_path, wheels):
    a = install(tmp_path / "a", wheels["asker"], wheels["alpha1"])
    assert {r.name: r for r in distribution_records(a)}["asker"].metadata == ("alpha",)
    assert agreeing(a, install(tmp_path / "b", wheels["asker"], wheels["alpha1"])) == {"asker", "alpha"}
    assert agreeing(a, install(tmp_path / "c", wheels["asker"], wheels["alpha2"])) == set()
    assert agreeing(install(tmp_path / "d", wheels["asker"]), a) == set()  # absent in one, there in the other


def test_the_host_view_shares_what_the_host_has_identically(tmp_path, wheels):
    build = tmp_path / "build"
    site = install(build / "lib" / "python3.11" / "site-packages", wheels["plug"], wheels["alpha1"])
    host = install(tmp_path / "host", wheels["plug"], wheels["alpha1"], wheels["extra"])
    records = write_records(build)
    assert records is not None
    found = top_level_names([site])
    assert shared_with_host(records, found, site, (), HostView([str(host)])) == {"alpha"}  # the host has extra
    same = install(tmp_path / "same", wheels["plug"], wheels["alpha1"])
    assert shared_with_host(records, found, site, (), HostView([str(same)])) == {"plug", "alpha"}
    private = write_records(build, ("alpha",))
    assert private is not None
    assert shared_with_host(private, found, site, (), HostView([str(same)])) == set()  # plug imports alpha


def test_an_env_uses_the_hosts_own_modules_of_what_the_host_has_identically(workspace, tmp_path):
    """Both sides: where the rule shares, the env's module IS the host's; where it does not (another version,
    or ``private``), the env gets its own copy and the host's module of the real name stays the host's."""
    wh = workspace.wheelhouse
    host = install(tmp_path / "host", wh / "alpha-1.0-py3-none-any.whl", wh / "beta-1.0-py3-none-any.whl")
    workspace.write("""
        [envs.same]
        requirements = ["alpha==1.0", "beta==1.0"]
        [envs.other]
        requirements = ["alpha==2.0", "beta==1.0"]
        [envs.kept]
        requirements = ["alpha==1.0", "beta==1.0"]
        private = ["alpha"]
    """)
    workspace.cli("sync")
    code = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(SRC)!r}, {str(host)!r}]
        import polyvenv
        ws = polyvenv.Workspace.load({str(workspace.root)!r})
        for name in ("same", "other", "kept"):
            env = ws.env(name)
            for top in ("alpha", "beta"):
                module = env.import_module(top)
                print(name, top, module.__version__, module is sys.modules.get(top),
                      module.__file__.startswith({str(host)!r}))
        print("host", sys.modules["alpha"].__version__, sys.modules["alpha"].__file__.startswith({str(host)!r}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "same alpha 1.0 True True", "same beta 1.0 True True",  # the host's very modules: no alias, no copy
        "other alpha 2.0 False False",  # another version: its own
        "other beta 1.0 True True",  # beta's code imports no alpha: the same beta whatever alpha is
        "kept alpha 1.0 False False", "kept beta 1.0 True True",  # private = ["alpha"]
        "host 1.0 True",
    ]


def test_private_is_validated_and_part_of_the_build(workspace):
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
        private = "alpha"
    """)
    proc = workspace.cli("sync", check=False)
    assert proc.returncode == 2 and "private" in proc.stderr.splitlines()[0]
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
    """)
    workspace.cli("sync")
    workspace.write("""
        [envs.a]
        requirements = ["alpha==1.0"]
        private = ["alpha"]
    """)
    assert workspace.status()["a"]["state"] == "stale"  # a new build: the records say what is private
    workspace.cli("sync")
    records = json.loads((workspace.root / ".polyvenv" / "a" / "polyvenv-records.json").read_text())
    assert records["private"] == ["alpha"]


def test_why_names_the_versions_what_is_shared_and_the_pins_behind_each_duplicate(workspace, tmp_path):
    wh = workspace.wheelhouse
    workspace.write("""
        [envs.render_old]
        requirements = ["alpha==1.0", "beta==1.0"]
        [envs.render_new]
        requirements = ["alpha==2.0", "beta"]
        [envs.third]
        requirements = ["alpha==2.0"]
    """)
    workspace.cli("sync")
    host = install(tmp_path / "host", wh / "beta-1.0-py3-none-any.whl")
    env = {**__import__("os").environ, "PYTHONPATH": str(host)}
    lines = workspace.cli("why", env=env).stdout.splitlines()
    assert lines[0] == ("alpha: 1.0 in render_old; 2.0 in render_new, third; render_new, third agree on it "
                        "(loaded once) -- render_old needs alpha==1.0 "
                        "(beta 1.0 requires alpha>=1); render_new needs alpha==2.0 (beta 1.0 requires alpha>=1); "
                        "third needs alpha==2.0")
    assert lines[1].startswith("beta: 1.0 in render_old, render_new (the host's own modules); the host has 1.0")
    answer = json.loads(workspace.cli("why", "alpha", "--json", env=env).stdout)
    (alpha,) = answer["distributions"]
    assert alpha["versions"] == {"1.0": ["render_old"], "2.0": ["render_new", "third"]}
    assert alpha["agree"] == [["render_new", "third"]] and alpha["shared_with_host"] == []
    assert alpha["loaded_once"] == [["render_new", "third"]]
    proc = workspace.cli("why", "nosuch", check=False)
    assert proc.returncode == 1 and "nosuch" in proc.stderr.splitlines()[0]
    import polyvenv

    assert polyvenv.Workspace.load(workspace.root).explain("alpha")["distributions"] == answer["distributions"]
    # a build from before records: the runtime shares nothing of it with the host, and `why` says so
    (workspace.root / ".polyvenv" / "render_old" / "polyvenv-records.json").unlink()
    proc = workspace.cli("why", "beta", "--json", env=env)
    (beta,) = json.loads(proc.stdout)["distributions"]
    assert beta["shared_with_host"] == ["render_new"] and beta["versions"] == {"1.0": ["render_old", "render_new"]}
    assert "env 'render_old' was built before polyvenv recorded its distributions" in proc.stderr


def test_a_vocabulary_package_is_shared_by_the_rule_and_reported_where_it_differs(tmp_path):
    """typing_extensions-like packages: the host's very objects where the host has the same distribution;
    another version gets the env its own copy and a VocabularyConflictWarning saying how to share it."""
    wh = tmp_path / "wh"
    files = {"typing_extensions.py": "TypedDict = object()\n"}
    same = make_wheel(wh, "typing_extensions", "4.12.2", files)
    make_wheel(wh, "typing_extensions", "4.5.0", files)
    make_wheel(wh, "user", "1.0", {"user.py": "import typing_extensions\nTE = typing_extensions\n"})
    host = install(tmp_path / "host", same)
    project = tmp_path / "project"
    project.mkdir()
    (project / "polyvenv.toml").write_text(textwrap.dedent(f"""
        wheelhouse = "{wh}"
        offline = true
        [envs.agrees]
        requirements = ["typing_extensions==4.12.2", "user"]
        [envs.differs]
        requirements = ["typing_extensions==4.5.0", "user"]
    """))
    subprocess.run([sys.executable, "-m", "polyvenv", "sync"], cwd=project, check=True, capture_output=True)
    code = textwrap.dedent(f"""
        import sys, warnings
        sys.path[:0] = [{str(SRC)!r}, {str(host)!r}]
        import polyvenv, typing_extensions
        ws = polyvenv.Workspace.load({str(project)!r})
        for name in ("agrees", "differs"):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                user = ws.env(name).import_module("user")
            print(name, user.TE is typing_extensions, [type(w.message).__name__ for w in caught],
                  any("pin typing_extensions==4.12.2" in str(w.message) for w in caught))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["agrees True [] False", "differs False ['VocabularyConflictWarning'] True"]
    # a host whose typing_extensions 4.12.2 is other files: the same version is not the same distribution
    other = make_wheel(tmp_path / "wh2", "typing_extensions", "4.12.2", {"typing_extensions.py": "TypedDict = 1\n"})
    code = code.replace(str(host), str(install(tmp_path / "host2", other)))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "agrees False ['VocabularyConflictWarning'] False"


def test_a_namespace_package_two_distributions_install_stays_private(tmp_path):
    wh = tmp_path / "wh"
    first = make_wheel(wh, "ns-one", "1.0", {"nspkg/one.py": "ONE = 1\n"})
    second = make_wheel(wh, "ns-two", "1.0", {"nspkg/two.py": "TWO = 2\n"})
    other = make_wheel(wh, "ns-two", "2.0", {"nspkg/two.py": "TWO = 22\n"})
    a = install(tmp_path / "a", first, second)
    assert agreeing(a, install(tmp_path / "b", first, second)) == set()  # `nspkg` is no one distribution's
    assert agreeing(a, install(tmp_path / "c", first, other)) == set()


def test_why_shares_nothing_with_the_host_for_an_env_in_a_worker(workspace, tmp_path):
    wh = workspace.wheelhouse
    workspace.write("""
        [envs.inproc]
        requirements = ["beta==1.0"]
        [envs.worker]
        requirements = ["beta==1.0"]
        isolation = "process"
    """)
    workspace.cli("sync")
    host = install(tmp_path / "host", wh / "beta-1.0-py3-none-any.whl")
    env = {**__import__("os").environ, "PYTHONPATH": str(host)}
    (beta,) = json.loads(workspace.cli("why", "beta", "--json", env=env).stdout)["distributions"]
    assert beta["shared_with_host"] == ["inproc"]


@pytest.mark.parametrize("code, groups", [
    ('entry_points(group="g")', {"g"}),
    ('pkg_resources.iter_entry_points("g")', {"g"}),
    ('metadata.entry_points().select(group="g")', {"g"}),
    ('entry_points().get("g", [])', {"g"}),
    ('entry_points()["g"]', {"g"}),
    ('KEY = "g"\ndef f():\n    return entry_points(group=KEY)', {"g"}),
    ('def f(key):\n    return entry_points(group=key)', None),  # a group it is given: any
    ('KEY = "g"\nKEY = "h"\nentry_points(group=KEY)', None),
    ('def f():\n    eps = entry_points()\n    return eps', None),  # handed on whole
    ('def f():\n    eps = entry_points()\n    return eps.select(group="g"), eps.names', None),
    ('found = entry_points', None),  # handed on uncalled
    ('entry_points(name="x")', None),
    ('metadata.distributions()', None),
])
def test_an_enumeration_is_narrowed_to_groups_only_where_constant_names_say_so(tmp_path, code, groups):
    from polyvenv.provision.records import python_references

    path = tmp_path / "m.py"
    path.write_text("from importlib.metadata import entry_points\nimport importlib.metadata as metadata\n"
                    "import pkg_resources\n" + code + "\n")
    _, discovers, _, _, found = python_references(path)
    assert (None if discovers else found) == groups
