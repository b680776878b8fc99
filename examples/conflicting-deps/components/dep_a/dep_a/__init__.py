"""dep_a: pinned to attrs 21.4 (uses the old `attr.s` API)."""

import attr


@attr.s(frozen=True)
class Point:
    x = attr.ib()
    y = attr.ib(default=0)


def describe() -> str:
    return f"dep_a uses attrs {attr.__version__}: {attr.asdict(Point(1))}"
