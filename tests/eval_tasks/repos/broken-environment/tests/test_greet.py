from greet import greet


def test_present():
    assert greet
