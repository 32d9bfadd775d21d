"""What the benchmarks share (scripts/bench_*.py import it from this directory)."""


def percentile(values, p):
    """The p-th percentile by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]
