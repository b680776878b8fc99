"""The README's main command: build real envs with different jinja2 versions and different numpy
versions, then load them all into this one interpreter and use each, side by side."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import polyvenv

HERE = Path(__file__).parent
TEMPLATE = "{% for n in names %}{{ n|upper }}{% if not loop.last %}, {% endif %}{% endfor %}: {{ snippet }}"


def main() -> int:
    ws = polyvenv.Workspace.load(HERE / "two-jinjas")
    print(f"workspace: {ws}")
    started = time.monotonic()
    outcomes = ws.sync(jobs=2)
    print(f"sync: {', '.join(f'{o.name} {o.action}' for o in outcomes)} ({time.monotonic() - started:.2f}s)\n")
    subprocess.run([sys.executable, "-m", "polyvenv", "list"], cwd=ws.root, check=True)

    print(f"\nboth in this one process (Python {sys.version.split()[0]}, pid {subprocess.os.getpid()}):")
    for name in ws.env_names:
        env = ws.env(name)
        jinja2 = env.import_module("jinja2")
        template = jinja2.Environment(autoescape=True).from_string(TEMPLATE)
        print(f"  [{name}] jinja2 {jinja2.__version__} (markupsafe {env.version('markupsafe')}), "
              f"loaded as module {jinja2.__name__!r}")
        print(f"  [{name}]   {template.render(names=['ada', 'grace'], snippet='<b>&</b>')}")
        print(f"  [{name}]   from {Path(jinja2.__file__).parent}")
    try:
        import jinja2 as host_jinja2
        print(f"  [host] its own jinja2 {host_jinja2.__version__} is untouched ({host_jinja2.__name__!r})")
    except ImportError:
        print("  [host] has no jinja2 of its own, and still has none:", "jinja2" not in sys.modules)
    two_numpys()
    return 0


def two_numpys() -> None:
    """Compiled code side by side: each numpy's C code computes, and raises its own version's errors."""
    ws = polyvenv.Workspace.load(HERE / "two-numpys")
    started = time.monotonic()
    outcomes = ws.sync(jobs=2)
    print(f"\nsync: {', '.join(f'{o.name} {o.action}' for o in outcomes)} ({time.monotonic() - started:.2f}s)")
    print(f"two numpys with their C extensions in this same process (pid {subprocess.os.getpid()}), "
          "and one in a worker process:")
    for name in ws.env_names:
        env = ws.env(name)
        np = env.import_module("numpy")  # a module, or for a process env a proxy of the worker's module
        where = f"worker pid {env.pid}" if isinstance(env, polyvenv.ProcessEnv) else "in this process"
        a = np.arange(6.0).reshape(2, 3)
        print(f"  [{name}] numpy {np.__version__} ({where}): a @ a.T = {(a @ a.T).tolist()}, "
              f"det = {np.linalg.det(np.eye(3) * 2):.1f}, repr(np.float64(0.5)) = {np.float64(0.5)!r}")
        try:
            np.add(np.ones(2), "x")
        except Exception as error:  # raised from C: that version's own class (from a worker: its RemoteError twin)
            print(f"  [{name}]   np.add(np.ones(2), 'x') raised {type(error).__module__}.{type(error).__name__}: "
                  f"{str(error)[:60]}...")
        if isinstance(env, polyvenv.ProcessEnv):
            env.unload()


if __name__ == "__main__":
    sys.exit(main())
