"""The README's main command: build two real envs with different jinja2 versions, then load both
into this one interpreter and render the same template with each, side by side."""

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
    return 0


if __name__ == "__main__":
    sys.exit(main())
