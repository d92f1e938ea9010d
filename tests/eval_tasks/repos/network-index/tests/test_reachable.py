import urllib.request


def test_the_index_answers():
    with urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=30) as answer:
        assert answer.status == 200
