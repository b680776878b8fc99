"""Seed 002: an add-on host that owns no config file. Its add-ons are declared from code, built with
progress shown by the host, loaded, and installed, uninstalled and reinstalled with new dependencies
while the host runs, a thread calling another add-on all along: one process throughout.

The host works on a scratch copy of addons/, so running the example changes nothing here. Its envs live
in that workspace's ``.polyvenv``, where a real host's would survive its restarts; this one is deleted at
the end.
"""

import gc
import json
import shutil
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path

import polyvenv

HERE = Path(__file__).parent
root = Path(tempfile.mkdtemp(prefix="addon-host-"))
ADDONS = root / "addons"
shutil.copytree(HERE / "addons", ADDONS)


def show(event: polyvenv.SyncEvent) -> None:
    """The host's own progress display (a status bar in Blender): one line per step, none per heartbeat."""
    if event.kind in ("started", "finished"):
        print(f"  [{event.env}] {event.message.split(' (')[0]}")


def addon(ws: polyvenv.Workspace, name: str):
    return ws.env(name).import_module(f"{name}_addon")


ws = polyvenv.Workspace.open(root)  # no polyvenv.toml: what code declares is kept in root/.polyvenv
try:
    found = ws.discover(ADDONS)  # one env per add-on folder holding a requirements.txt
    print("add-ons:", ", ".join(found.envs))
    ws.sync(*found.envs, progress=show)
    for name in found.envs:
        print(f"{name}: {addon(ws, name).greet()}")

    # A thread keeps calling the greeter while another add-on is installed and one is uninstalled.
    greeter, calls, failures, stop = addon(ws, "greeter"), [0], [], threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                greeter.greet()
                calls[0] += 1
                time.sleep(0.001)
            except Exception as e:  # noqa: BLE001 - counted and shown
                failures.append(e)

    server = threading.Thread(target=serve)
    server.start()
    try:
        # Install: an add-on downloaded with a manifest listing what it needs (no requirements file).
        shutil.copytree(HERE / "incoming" / "counter", ADDONS / "counter")
        manifest = json.loads((ADDONS / "counter" / "addon.json").read_text())
        print("installing counter:")
        ws.add_env("counter", requirements=manifest["requirements"], source=ADDONS / "counter")
        ws.sync("counter", progress=show)
        print(f"counter: {addon(ws, 'counter').greet()}")

        # Uninstall: the shouter's folder is deleted; discover sees it gone, remove_env unloads it and
        # deletes its env (as `polyvenv remove` does).
        shutil.rmtree(ADDONS / "shouter")
        for name in ws.discover(ADDONS).gone:
            print("uninstalled:", ws.remove_env(name))
        left = [m for m in sys.modules if m.lower().startswith("shouter_addon")]
        print(f"shouter modules left: {len(left)}, envs now: {', '.join(sorted(ws.env_names))}")
    finally:
        stop.set()
        server.join()
    print(f"greeter served {'many' if calls[0] > 10 else calls[0]} calls meanwhile, {len(failures)} failed")

    # Reinstall the greeter with new dependencies: its requirements change, the host syncs, then loads
    # the new build (unload, import again). The old generation is freed once the host drops it.
    (ADDONS / "greeter" / "requirements.txt").write_text("jinja2>=3.1,<3.2\n")
    print("reinstalling greeter:")
    ws.sync("greeter", progress=show)
    old = weakref.ref(greeter)
    ws.env("greeter").unload()
    del greeter
    gc.collect()
    print("old greeter collected:", old() is None)
    print(f"greeter: {addon(ws, 'greeter').greet()}")
finally:
    shutil.rmtree(root, ignore_errors=True)
