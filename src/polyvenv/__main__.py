"""`polyvenv` and `python -m polyvenv`: a no-op `sync` answered from its memo, else the full CLI."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from .provision.noop import answer

    if answer(argv):
        return 0
    from .cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
