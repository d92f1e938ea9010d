import pytest
from calculator import mean, median, total


def test_total():
    assert total([1, 2, 3]) == 6


def test_mean():
    assert mean([2, 4]) == 3
    assert mean([5]) == 5


def test_mean_of_nothing():
    with pytest.raises(ValueError):
        mean([])


def test_median():
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
