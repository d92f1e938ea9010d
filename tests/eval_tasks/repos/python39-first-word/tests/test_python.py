import sys


def test_runs_on_python_3_9():
    assert sys.version_info[:2] == (3, 9)
