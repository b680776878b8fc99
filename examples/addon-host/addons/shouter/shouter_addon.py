import jinja2


def greet() -> str:
    return jinja2.Template("{{ ('shouter add-on on jinja2 ' ~ v) | upper }}").render(v=jinja2.__version__)
