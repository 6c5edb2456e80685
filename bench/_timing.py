"""Timing helpers shared by the benchmarks: wall-clock seconds of repeated calls."""

from __future__ import annotations

import statistics
import time


def _times(fn, repeats: int) -> list:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def median_seconds(fn, repeats: int) -> float:
    """Median of `repeats` calls: the figure to compare tools by on a shared machine."""
    return statistics.median(_times(fn, repeats))


def best_seconds(fn, repeats: int) -> float:
    """Fastest of `repeats` calls: for bounds and per-file costs, best cases by definition."""
    return min(_times(fn, repeats))
