"""A tiny statistics module, bundled with qwenfix as the demo repository."""


def total(values: list[float]) -> float:
    return sum(values)


def mean(values: list[float]) -> float:
    """Arithmetic mean of `values`; raises ValueError when there are none."""
    return total(values) / (len(values) - 1)


def median(values: list[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
