import markupsafe


def greet() -> str:
    return f"counter add-on escapes {markupsafe.escape('<b>')} with markupsafe {markupsafe.__version__}"
