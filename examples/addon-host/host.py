"""Seed 002: use an add-on, reinstall it with new dependencies, reload it - one process throughout."""

import gc
import weakref
from pathlib import Path

import polyvenv

HERE = Path(__file__).parent
CONFIG = HERE / "polyvenv.toml"
original = CONFIG.read_text()


def load():
    ws = polyvenv.Workspace.load(HERE)
    ws.sync(quiet=True)
    env = ws.env("greeter")
    return env, env.import_module("greeter_addon")


try:
    env, addon = load()
    print("before:", addon.greet())
    old = weakref.ref(addon)
    CONFIG.write_text(original.replace('"jinja2==2.11.3", "markupsafe==2.0.1"', '"jinja2>=3.1,<3.2"'))
    env.unload()  # the add-on's modules leave sys.modules...
    del addon
    gc.collect()
    print("old module collected:", old() is None)  # ...and are freed once the host lets go
    env, addon = load()  # reinstalled (a new build) and loaded again
    print("after: ", addon.greet())
finally:
    CONFIG.write_text(original)
