"""The gamma plugin: renders with whatever jinja2 its env has."""

import jinja2

NAME = "gamma"


def render(name: str) -> str:
    template = jinja2.Template("{{ plugin|title }} says hello to {{ name }} with jinja2 {{ version }}")
    return template.render(plugin=NAME, name=name, version=jinja2.__version__)


def has_evalcontextfilter() -> bool:
    return hasattr(jinja2, "evalcontextfilter")  # removed in jinja2 3.1
