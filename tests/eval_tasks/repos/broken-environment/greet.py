def greet():
    return 'bye'
