def greet():
    return "bye"
