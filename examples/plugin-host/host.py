"""Seed 000: load three plugins, each in its own env, into this one process, and prove separation."""

import sys
from pathlib import Path

import polyvenv

ws = polyvenv.Workspace.load(Path(__file__).parent)
ws.sync(quiet=True)
for name in ws.env_names:
    env = ws.env(name)
    plugin = env.import_module(f"{name}_plugin")
    jinja2 = env.import_module("jinja2")
    print(f"{name}: {plugin.render('world')}")
    print(f"{name}:   jinja2.__version__ {jinja2.__version__} (metadata {env.version('jinja2')}), "
          f"evalcontextfilter: {plugin.has_evalcontextfilter()}, from {Path(jinja2.__file__).parent}")
print("host: jinja2 in sys.modules:", "jinja2" in sys.modules)
