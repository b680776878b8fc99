"""Seed 002: an add-on host that owns no config file, its add-ons changing while it runs. It finds them in
a folder, builds them with progress it shows, and a thread calls them all along while the host reloads one
whose file was edited, installs one dropped into the folder and uninstalls one taken out (all three seen
by ``ws.watch``), then moves one to new requirements (``sync``, then ``env.reload()``). One process
throughout, and none of the thread's calls fails.

The host works on a scratch copy of addons/, so running the example changes nothing here. Its envs live
in that workspace's ``.polyvenv``, where a real host's would survive its restarts; this one is deleted at
the end.
"""

import gc
import queue
import shutil
import sys
import tempfile
import threading
import weakref
from pathlib import Path

import polyvenv

HERE = Path(__file__).parent
root = Path(tempfile.mkdtemp(prefix="addon-host-"))
ADDONS = root / "addons"
shutil.copytree(HERE / "addons", ADDONS)
registered = {}  # what the host calls: each add-on's module, of its current generation
in_use = threading.RLock()  # held while the host calls add-ons, and while it (un)registers one
news = queue.Queue()  # what the watch thread did, printed by the main thread in order


def show(event: polyvenv.SyncEvent) -> None:
    """The host's own progress display (a status bar in Blender): one line per step, none per heartbeat."""
    if event.kind in ("started", "finished"):
        print(f"  [{event.env}] {event.message.split(' (')[0]}")


def register(env) -> str:
    with in_use:
        registered[env.name] = env.import_module(f"{env.name}_addon")
    return f"{env.name}: {registered[env.name].greet()}"


def on_change(env, change) -> None:
    """Called by the watch thread: register what is new or reloaded, unregister what is being removed (as
    Blender add-ons do with register() and unregister())."""
    if isinstance(change, list):  # reloaded: these modules are of a new generation
        news.put(f"reloaded {', '.join(change)}; " + register(env))
    elif not isinstance(change, polyvenv.AddonChange):  # a failed reload: the old generation keeps running
        news.put(f"not reloaded: {change}")
    elif change.kind == "installed":
        news.put("installed " + register(env))
    elif change.kind == "removing":  # its folder is gone; it is unloaded once no call is in flight
        with in_use:
            registered.pop(change.name)
    elif change.kind == "removed":
        news.put(f"uninstalled {change.detail}")
    else:
        news.put(f"not installed: {change.detail}")


calls, failures, stop = [0], [], threading.Event()


def serve() -> None:
    """The host's other work: call every registered add-on, again and again."""
    while not stop.wait(0.001):
        with in_use:
            for module in registered.values():
                try:
                    module.greet()
                    calls[0] += 1
                except Exception as e:  # noqa: BLE001 - counted and shown
                    failures.append(e)


ws = polyvenv.Workspace.open(root)  # no polyvenv.toml: what code declares is kept in root/.polyvenv
try:
    found = ws.discover(ADDONS)  # one env per add-on folder holding a requirements.txt
    print("add-ons:", ", ".join(found.envs))
    ws.sync(*found.envs, progress=show)
    for name in found.envs:
        print(register(ws.env(name)))
    server = threading.Thread(target=serve)
    server.start()
    try:
        with ws.watch(on_change, interval=0.1, addons=ADDONS, progress=show):
            code = ADDONS / "greeter" / "greeter_addon.py"  # edited: reloaded
            code.write_text(code.read_text().replace("greeter add-on", "edited greeter add-on"))
            print(news.get(timeout=60))
            print("dropping counter in:")  # a new folder: built, loaded
            shutil.copytree(HERE / "incoming" / "counter", ADDONS / "counter")
            print(news.get(timeout=300))
            shutil.rmtree(ADDONS / "shouter")  # a folder taken out: unloaded, its env deleted
            print(news.get(timeout=60))

        # New requirements for the greeter: the host builds them, then reloads the greeter in place while
        # the thread goes on calling it (the old generation's jinja2, compiling a template, imports its own
        # modules again: it gets them from its own generation).
        (ADDONS / "greeter" / "requirements.txt").write_text("jinja2>=3.1,<3.2\n")
        print("new requirements for greeter:")
        ws.sync("greeter", progress=show)
        old = weakref.ref(registered["greeter"])
        greeter = ws.env("greeter")
        changed = greeter.reload()
        print(f"reloaded {', '.join(changed)}; " + register(greeter))
    finally:
        stop.set()
        server.join()
    gc.collect()
    print(f"the thread called the add-ons {'many' if calls[0] > 10 else calls[0]} times, {len(failures)} failed")
    left = [m for m in sys.modules if m.lower().startswith("shouter_addon")]
    print(f"old greeter collected: {old() is None}, shouter modules left: {len(left)}, "
          f"add-ons now: {', '.join(sorted(ws.env_names))}")
finally:
    shutil.rmtree(root, ignore_errors=True)
