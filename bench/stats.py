"""Small statistics for benchmark figures: percentiles, summaries and ratios of medians of repeats."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) with linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summary(values: Sequence[float], scale: float = 1.0) -> dict[str, Any]:
    """n, p50, p90, p99, mean and max of ``values`` (each multiplied by ``scale``, e.g. 1e3 for ms)."""
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": percentile(values, 50) * scale, "p90": percentile(values, 90) * scale,
            "p99": percentile(values, 99) * scale, "mean": statistics.fmean(values) * scale,
            "max": max(values) * scale}


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratios(subject: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """Per-repeat ratios subject/baseline: repeat i of each was measured back to back."""
    return [s / b for s, b in zip(subject, baseline, strict=False) if b]


def rounded(obj: Any, digits: int = 4) -> Any:
    """Floats rounded to ``digits`` significant figures, so the results JSON stays small and readable."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}") if obj == obj else None
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [rounded(v, digits) for v in obj]
    return obj


def quantiles(values: Sequence[float], points: int = 101) -> list[float]:
    """``points`` evenly spaced quantiles (0…100 %): a distribution small enough to keep in the results JSON."""
    if not values:
        return []
    return [percentile(values, 100 * i / (points - 1)) for i in range(points)]


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of per-repeat figures: what a ratio is reported with."""
    if not values:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan")}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}
