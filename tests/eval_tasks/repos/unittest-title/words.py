def shout(text):
    return text.upper() + "!"


def title(text):
    return text.upper()
