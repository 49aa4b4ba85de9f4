r"""Pareto-smoothed importance sampling (PSIS), vectorised over many weight vectors.

EVSI reweights the same posterior draws by the likelihood of hundreds of simulated
outcomes; arviz-stats smooths one vector at a time in Python, this does a whole
``(outcomes, draws)`` matrix at once with the same estimator (Vehtari, Simpson, Gelman,
Yao and Gabry 2024, "Pareto smoothed importance sampling", JMLR 25(72)):

1. the ``M = 3 sqrt(S / r_eff)`` largest raw weights (``S / 5`` when ``S r_eff <= 225``)
   are the tail; the next largest is the threshold ``u``;
2. a generalised Pareto distribution is fitted to the exceedances ``w - u`` with Zhang and
   Stephens' (2009) empirical-Bayes estimator, its shape ``k`` shrunk towards 0.5 by a
   weak prior (10 pseudo-observations), as in the loo R package and arviz-stats;
3. the tail weights are replaced by the fitted quantiles at ``(i - 1/2) / M``, capped at
   the largest raw weight; no truncation (the 2024 paper dropped it).

``k`` is the diagnostic: above 0.7 the reweighted estimate is unreliable.

Example:
    >>> import numpy as np
    >>> log_weights, k = psis(np.random.default_rng(0).standard_normal((2, 1000)))
    >>> np.allclose(np.exp(log_weights).sum(axis=-1), 1.0), bool(np.all(k < 0.7))
    (True, True)
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

__all__ = ["K_THRESHOLD", "gpd_fit", "psis", "tail_length"]

#: Pareto k above which importance-sampling estimates are not trusted.
K_THRESHOLD = 0.7

_PRIOR_BS = 3.0  # Zhang-Stephens grid scale
_PRIOR_K = 10.0  # pseudo-observations of the weak prior on k (centred at 0.5)


def tail_length(n_draws: int, r_eff: float = 1.0) -> int:
    """Number of tail draws ``M`` smoothed by PSIS.

    Example:
        >>> tail_length(4000), tail_length(200)
        (189, 40)
    """
    if n_draws * r_eff > 225:
        return int(np.floor(3.0 * np.sqrt(n_draws / r_eff)))
    return int(np.floor(n_draws / 5))


def gpd_fit(exceedances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit a generalised Pareto distribution to sorted exceedances, row by row.

    Args:
        exceedances: ``(rows, n)`` positive values sorted ascending along the last axis.

    Returns:
        ``(k, sigma)``, each of shape ``(rows,)``: the shape (with the weak prior towards
        0.5) and the scale. Rows that cannot be fitted (first quartile not above the
        minimum) get ``nan``.

    Example:
        >>> x = np.sort(np.random.default_rng(1).pareto(1 / 0.5, size=(1, 2000)), axis=-1)
        >>> round(float(gpd_fit(x)[0][0]), 1)
        0.5
    """
    x = np.asarray(exceedances, np.float64)
    n = x.shape[-1]
    m_est = 30 + int(np.sqrt(n))
    x_star = x[:, int(n / 4 + 0.5) - 1]
    bad = ~(x_star > x[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        b = 1.0 - np.sqrt(m_est / (np.arange(1, m_est + 1, dtype=np.float64) - 0.5))
        b = b[None, :] / (_PRIOR_BS * x_star[:, None]) + 1.0 / x[:, -1:]
        k_grid = np.mean(np.log1p(-b[:, :, None] * x[:, None, :]), axis=-1)
        profile = n * (np.log(-b / k_grid) - k_grid - 1.0)
        weight = np.exp(profile - logsumexp(profile, axis=-1, keepdims=True))
        weight = np.where(weight >= 10 * np.finfo(float).eps, weight, 0.0)
        weight /= weight.sum(axis=-1, keepdims=True)
        b_post = np.sum(b * weight, axis=-1)
        k = np.mean(np.log1p(-b_post[:, None] * x), axis=-1)
        sigma = -k / b_post
    k = (n * k + _PRIOR_K * 0.5) / (n + _PRIOR_K)
    k = np.where(bad, np.nan, k)
    sigma = np.where(bad, np.nan, sigma)
    return k, sigma


def _gpd_quantile(probs: np.ndarray, k: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Quantiles of GPD(0, sigma, k) at ``probs`` for each row: ``(rows, len(probs))``."""
    k = k[:, None]
    sigma = sigma[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        general = sigma * np.expm1(-k * np.log1p(-probs)) / k
        exponential = -sigma * np.log1p(-probs)
    return np.where(k == 0, exponential, general)


def psis(log_ratios: np.ndarray, r_eff: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Pareto-smoothed, normalised log importance weights and the Pareto ``k`` per row.

    Args:
        log_ratios: ``(..., S)`` log importance ratios (here: the log-likelihood of a
            simulated outcome under each posterior draw).
        r_eff: relative efficiency of the draws (ESS / S); 1 treats them as independent.

    Returns:
        ``(log_weights, k)``: ``log_weights`` has the input's shape and sums (in exp) to
        one along the last axis; ``k`` has the leading shape. Rows whose tail cannot be
        fitted keep their raw weights and get ``k = inf`` (treat as unreliable); rows
        whose tail weights are all equal (bounded ratios) keep them and get ``k = 0``.

    Example:
        >>> lw, k = psis(np.log(np.random.default_rng(2).pareto(1 / 0.9, size=4000)))
        >>> bool(k > 0.7)  # a heavy tail: flagged
        True
    """
    ratios = np.asarray(log_ratios, np.float64)
    shape = ratios.shape
    n_draws = shape[-1]
    flat = ratios.reshape(-1, n_draws)
    flat = flat - np.max(flat, axis=-1, keepdims=True)
    n_tail = tail_length(n_draws, r_eff)
    if n_tail < 5:
        raise ValueError(f"PSIS needs at least 25 draws (5 in the tail) but got {n_draws}")
    order = np.argsort(flat, axis=-1, kind="stable")
    ordered = np.take_along_axis(flat, order, axis=-1)
    tail = ordered[:, n_draws - n_tail :]
    log_cutoff = ordered[:, n_draws - n_tail - 1]
    cutoff = np.exp(log_cutoff)
    exceed = np.exp(tail) - cutoff[:, None]
    flat_tail = (tail[:, -1] - tail[:, 0]) < np.finfo(float).tiny
    k, sigma = gpd_fit(np.where(flat_tail[:, None], 1.0 + np.arange(n_tail), exceed))
    ok = np.isfinite(k) & (sigma > 0) & ~flat_tail
    probs = (np.arange(n_tail) + 0.5) / n_tail
    smoothed = cutoff[:, None] + _gpd_quantile(probs, np.where(ok, k, 0.5), np.where(ok, sigma, 1))
    with np.errstate(divide="ignore"):
        smoothed = np.minimum(np.log(smoothed), tail[:, -1:])
    new_tail = np.where(ok[:, None], smoothed, tail)
    rows = np.arange(flat.shape[0])[:, None]
    out = flat.copy()
    out[rows, order[:, n_draws - n_tail :]] = new_tail
    out -= logsumexp(out, axis=-1, keepdims=True)
    k = np.where(flat_tail, 0.0, np.where(np.isfinite(k), k, np.inf))
    return out.reshape(shape), k.reshape(shape[:-1])
