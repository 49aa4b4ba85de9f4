"""Scores of predictive draws against observed values (proper scoring rules and coverage).

All functions take draws shaped ``(draws, targets)`` and observations ``(targets,)``.

Example:
    >>> rng = np.random.default_rng(0)
    >>> draws = rng.normal(3.0, 0.1, (4000, 2))
    >>> np.round(pit(draws, np.array([3.0, 3.2])), 2)
    array([0.5 , 0.98])
"""

from __future__ import annotations

import numpy as np

__all__ = ["LEVELS", "crps", "interval_score", "intervals", "pit"]

#: Central interval probabilities a backtest reports.
LEVELS = (0.5, 0.8, 0.95)


def intervals(draws: np.ndarray, levels=LEVELS) -> dict[str, np.ndarray]:
    """Median and equal-tailed ``lower_<p>``/``upper_<p>`` per target (p in percent).

    Example:
        >>> sorted(intervals(np.ones((10, 1)), (0.5,)))
        ['lower_50', 'median', 'upper_50']
    """
    qs = [0.5] + [q for p in levels for q in ((1 - p) / 2, (1 + p) / 2)]
    values = np.quantile(draws, qs, axis=0)
    out = {"median": values[0]}
    for i, p in enumerate(levels):
        tag = f"{100 * p:g}"
        out[f"lower_{tag}"], out[f"upper_{tag}"] = values[1 + 2 * i], values[2 + 2 * i]
    return out


def pit(draws: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Probability integral transform: the predictive CDF at the observed value (ties split).

    Uniform on (0, 1) for a calibrated forecaster.
    """
    below = np.mean(draws < observed[None, :], axis=0)
    equal = np.mean(draws == observed[None, :], axis=0)
    return below + 0.5 * equal


def crps(draws: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Continuous ranked probability score per target, ``E|X - y| - E|X - X'| / 2``.

    Computed from the sorted draws in O(n log n) per target; in the units of the loss.

    Example:
        >>> float(crps(np.zeros((100, 1)), np.array([1.0]))[0])
        1.0
    """
    x = np.sort(draws, axis=0)
    n = x.shape[0]
    first = np.mean(np.abs(x - observed[None, :]), axis=0)
    # E|X - X'| = 2 / n^2 * sum_i (2i - n - 1) x_(i) for sorted x
    weights = (2 * np.arange(1, n + 1) - n - 1)[:, None]
    spread = 2.0 * np.sum(weights * x, axis=0) / n**2
    return first - 0.5 * spread


def interval_score(lower, upper, observed, prob: float) -> np.ndarray:
    """Winkler / Gneiting-Raftery interval score of central ``prob`` intervals (lower is better).

    ``(u - l) + 2/alpha (l - y)_+ + 2/alpha (y - u)_+`` with ``alpha = 1 - prob``.

    Example:
        >>> float(interval_score(np.array([1.0]), np.array([2.0]), np.array([3.0]), 0.9)[0])
        21.0
    """
    alpha = 1.0 - prob
    lower, upper, observed = (np.asarray(a, np.float64) for a in (lower, upper, observed))
    return (
        (upper - lower)
        + 2.0 / alpha * np.maximum(lower - observed, 0.0)
        + 2.0 / alpha * np.maximum(observed - upper, 0.0)
    )
