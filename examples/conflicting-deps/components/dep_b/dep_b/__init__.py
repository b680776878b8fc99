"""dep_b: needs attrs >= 24 (uses `attrs.define` and `attrs.evolve`)."""

import attrs


@attrs.define
class Point:
    x: int
    y: int = 0


def describe() -> str:
    return f"dep_b uses attrs {attrs.__version__}: {attrs.asdict(attrs.evolve(Point(1), y=2))}"
