"""The README's main command: build real envs with two jinja2 versions and show both working.

Until the in-process runtime lands, each env renders the template in its own
interpreter (`polyvenv run`); later versions load both into this process.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import polyvenv

HERE = Path(__file__).parent
TEMPLATE = "Hello {{ name|upper }} from jinja2 {{ version }}"
RENDER = (
    "import sys, jinja2; "
    "t = jinja2.Template(sys.argv[1]); "
    "print(t.render(name='polyvenv', version=jinja2.__version__), '|', jinja2.__file__)"
)


def main() -> int:
    ws = polyvenv.Workspace.load(HERE / "two-jinjas")
    print(f"workspace: {ws}")
    started = time.monotonic()
    outcomes = ws.sync(jobs=2)
    print(f"sync: {', '.join(f'{o.name} {o.action}' for o in outcomes)} ({time.monotonic() - started:.2f}s)")
    subprocess.run([sys.executable, "-m", "polyvenv", "list"], cwd=ws.root, check=True)
    for name in ws.env_names:
        manifest = ws.manifest(name)
        python = ws.env_dir(name) / "bin" / "python"
        out = subprocess.run([str(python), "-c", RENDER, TEMPLATE], capture_output=True, text=True, check=True)
        print(f"[{name}] {out.stdout.strip()}")
        print(f"[{name}] built with {manifest['installer']['name']} {manifest['installer']['version']}, "
              f"Python {manifest['interpreter']['version']}: {manifest['distributions']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
