def simple_url(name):
    return f"https://pypi.org/simple/{name}"
