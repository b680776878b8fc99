import jinja2


def greet() -> str:
    return jinja2.Template("greeter add-on on jinja2 {{ v }}").render(v=jinja2.__version__)
