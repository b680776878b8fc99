"""Run as the host program, by the host venv's own interpreter: the host's copy, then the envs side by side.

The scratch process the oracle (oracle.py) starts for one package. It does what a user's host would do
(import its own copy plainly, run it), then loads env after env with polyvenv and imports every
submodule that imported in that version's plain venv, checking after each import what a user could
never see for themselves:

- a module of a real top-level name (one the envs or the host install; not one the sharing rule gives
  the host's modules) appears in ``sys.modules``, or
  an entry the host had is replaced: env code bound (or overwrote) the host's modules;
- a module an env import brought in has its ``__file__`` outside that env's build (the host's
  site-packages, another env);
- the smoke call answers differently from the plain venv, or the host's smoke call fails or answers
  differently afterwards.

Standard library and polyvenv only. Reports one line per event on a private copy of stdout (what
imported modules print goes to stderr), tab-separated fields, flushed at once, so a crash or hang still
leaves the trail:

    T  env  module                  about to import it
    O  env  module                  imported from its own env
    F  env  module  kind  error     failed: kind is "refused" (a polyvenv error naming the way out) or "error"
    X  env  module  what            WRONG: what went wrong
    S  env  repr  /  E  env  kind  error    the smoke call's result / failure (env "host" is the host)
    W  text                         a polyvenv warning
    D                               done

usage: python probe.py JSON-OPTIONS  (src, root, envs: {name: modules}, names, tops, smoke, plain)
"""

import faulthandler
import importlib
import json
import os
import sys
import warnings

WAY_OUT = ('isolation = "process"', 'isolation = "auto"', "isolation = 'process'", "isolation = 'auto'")


def main():
    options = json.loads(sys.argv[1])
    faulthandler.enable()  # a crash prints where it happened to stderr, which the oracle keeps
    if options.get("timeout"):  # and so does a hang, just before the oracle kills it
        faulthandler.dump_traceback_later(max(1.0, options["timeout"] - 2))
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def say(kind, *fields):
        proto.write("\t".join([kind] + [str(f).replace("\n", " ").replace("\t", " ")[:300] for f in fields]) + "\n")

    sys.path.insert(0, options["src"])
    import polyvenv
    from polyvenv.runtime.names import STDLIB

    host_site = os.path.realpath(options["host_site"])
    # real top-level names: shared with the host by design are the standard library (a backport's name
    # means the host's stdlib module) and what the sharing rule gives the host's modules (SHARED: the
    # distributions an env has identically to the host, with an agreeing closure), filled in as envs load
    real = set(options["names"]) - set(STDLIB)
    SHARED = set()

    def smoke(env, imp):
        if not options.get("smoke"):
            return
        space = {"imp": imp}
        try:
            exec(options["smoke"], space)
        except BaseException as e:
            say("E", env, kind_of(e), f"{type(e).__name__}: {e}")
            return
        say("S", env, repr(space.get("result")))

    # the host, as its own program would: its copy imported plainly, and used
    for top in options["tops"]:
        importlib.import_module(top)
    smoke("host", importlib.import_module)
    baseline = dict(sys.modules)

    seen = dict(baseline)  # key -> the module last checked under it: each entry is looked at once

    def check_host(env, module):
        for key, value in list(sys.modules.items()):
            if seen.get(key, seen) is value:
                continue
            seen[key] = value
            if key in baseline:
                say("X", env, module, f"the host's sys.modules[{key!r}] was replaced")
                continue
            top = key.partition(".")[0]
            if top in real and top not in SHARED:
                say("X", env, module, f"a module of the real name {key!r} appeared in the host")
                continue
            where = getattr(value, "__file__", None)
            if top in SHARED or str(getattr(value, "__name__", "")).partition(".")[0] in SHARED:
                continue  # the host's module of a distribution the env shares (requests.packages.urllib3)
            if isinstance(where, str) and os.path.realpath(where).startswith(host_site):
                say("X", env, module, f"{key} is the host's file {where}")

    def check_bindings(env, module):
        """Module globals of the env's modules that are the host's objects (a module, a class, a
        function of a real name), or env objects claiming a real module name."""
        reported = 0
        private = real - SHARED
        for key, value in list(sys.modules.items()):
            if key in baseline or key.partition(".")[0] in real or value is None or reported >= 3:
                continue
            for attr, obj in list(getattr(value, "__dict__", {}).items()):
                what = bound_to_host(obj, private)
                if what:
                    say("X", env, module, f"{key}.{attr} {what}")
                    reported += 1
                    break

    ws = polyvenv.Workspace.load(options["root"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = {}
        for name, modules in options["envs"].items():
            env = ws.env(name)
            build = os.path.realpath(ws.env_dir(name))
            loaded[name] = env
            SHARED.update(env.names.shared)
            for module in modules:
                say("T", name, module)
                try:
                    got = env.import_module(module)
                except BaseException as e:
                    say("F", name, module, kind_of(e), f"{type(e).__name__}: {e}")
                else:
                    outside = [p for p in files_of(got) if not os.path.realpath(p).startswith(build + os.sep)
                               and not (module.partition(".")[0] in SHARED
                                        and os.path.realpath(p).startswith(host_site))]  # shared by the rule
                    if outside:
                        say("X", name, module, f"__file__ outside the env: {outside[0]}")
                    else:
                        say("O", name, module)
                check_host(name, module)
            check_bindings(name, "(its modules' globals)")
        for name, env in loaded.items():
            smoke(name, env.import_module)
            check_host(name, "(smoke call)")
        check_bindings("old+new", "(after the smoke calls)")
    for w in caught:
        if isinstance(w.message, polyvenv.PolyvenvWarning):
            say("W", f"{type(w.message).__name__}: {w.message}")
    smoke("host", importlib.import_module)
    say("D")
    proto.flush()
    os._exit(0)


def bound_to_host(obj, real):
    """Why ``obj`` (a global of an env module) is the host's, or claims to be; "" when it is not.

    Only the object's type is looked at first (no attribute of a lazy proxy is touched): modules, classes
    and functions are checked by their own ``__name__``/``__module__``, other objects by their class's."""
    kind = type(obj)
    try:
        if issubclass(kind, type(sys)):
            name = obj.__name__
            if isinstance(name, str) and name.partition(".")[0] in real and sys.modules.get(name) is obj:
                return f"is the host's module {name}"
            return ""
        target = obj if issubclass(kind, type) or kind.__name__ in FUNCTION_TYPES else kind
        owner = target.__dict__.get("__module__") if issubclass(kind, type) or target is kind else \
            getattr(target, "__module__", None)
        if not isinstance(owner, str) or owner.partition(".")[0] not in real:
            return ""
        host = getattr(sys.modules.get(owner), "__dict__", {})  # never getattr: a lazy module would import
        what = "is the host's" if host.get(getattr(target, "__name__", "")) is target else "claims the host's module"
        return f"{what} {owner}.{getattr(target, '__qualname__', '?')}" + ("" if target is obj else " (its class)")
    except Exception:
        return ""


FUNCTION_TYPES = {"function", "builtin_function_or_method", "cython_function_or_method", "fused_cython_function"}


def kind_of(error):
    """"refused" when polyvenv refused with the reason and the way out, anywhere in the chain."""
    import polyvenv
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, polyvenv.PolyvenvError) and any(w in str(error) for w in WAY_OUT):
            return "refused"
        error = error.__cause__ or error.__context__
    return "error"


def files_of(module):
    """Where a module was loaded from: its file, or a namespace package's directories."""
    where = getattr(module, "__file__", None)
    if where:
        return [where]
    return list(getattr(module, "__path__", None) or ())


if __name__ == "__main__":
    main()
