"""Rank-normalised split R-hat and bulk/tail ESS (Vehtari et al. 2021) in plain numpy.

The same estimators as ArviZ/Stan, without importing ArviZ in the fit path (its import
alone costs ~1-2 s of a ~3 s fit). ``tests/test_mcmc_stats.py`` checks them against
``arviz.rhat`` / ``arviz.ess``.

Every function takes draws shaped ``(chains, draws)``.

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(4, 1000))
    >>> round(rhat(x), 2), 3000 < ess_bulk(x) < 5000
    (1.0, True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["ess_bulk", "ess_tail", "rhat"]


def _split(x: np.ndarray) -> np.ndarray:
    """Each chain cut in two halves (the middle draw of an odd length dropped)."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Normal scores of the pooled ranks (average ranks for ties, Blom's offset)."""
    from scipy.special import ndtri  # light; scipy.stats would cost ~0.5 s to import

    flat = x.reshape(-1)
    order = np.argsort(flat, kind="mergesort")
    ordered = flat[order]
    new_value = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(new_value)
    bounds = np.r_[np.flatnonzero(new_value), flat.size]
    ranks = np.empty(flat.size)
    ranks[order] = 0.5 * (bounds[group] + bounds[group - 1] + 1)  # average rank of ties
    return ndtri((ranks.reshape(x.shape) - 0.375) / (x.size + 0.25))


def _rhat_basic(x: np.ndarray) -> float:
    n = x.shape[1]
    between = n * np.var(x.mean(axis=1), ddof=1)
    within = np.mean(np.var(x, axis=1, ddof=1))
    return float(np.sqrt((between / within + n - 1) / n))


def rhat(x: np.ndarray) -> float:
    """Rank-normalised split R-hat: the larger of the bulk and the folded (tail) R-hat."""
    x = np.asarray(x, np.float64)
    if not np.all(np.isfinite(x)) or np.ptp(x) == 0:
        return float("nan")
    bulk = _rhat_basic(_z_scale(_split(x)))
    tail = _rhat_basic(_z_scale(_split(np.abs(x - np.median(x)))))
    return max(bulk, tail)


def _autocov(x: np.ndarray) -> np.ndarray:
    """Biased autocovariance of every chain at every lag (FFT)."""
    n = x.shape[1]
    centred = x - x.mean(axis=1, keepdims=True)
    size = 2 ** int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(centred, n=size, axis=1)
    return np.fft.irfft(f * np.conj(f), n=size, axis=1)[:, :n] / n


def _ess(x: np.ndarray) -> float:
    """Geyer's initial monotone sequence on the multi-chain autocorrelation (Stan's)."""
    chains, n = x.shape
    if np.ptp(x) < np.finfo(float).eps:
        return float(x.size)
    acov = _autocov(x)
    mean_var = np.mean(acov[:, 0]) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if chains > 1:
        var_plus += np.var(x.mean(axis=1), ddof=1)
    rho = 1.0 - (mean_var - acov.mean(axis=0)) / var_plus
    rho[0] = 1.0
    out = np.zeros(n)
    out[0], out[1] = 1.0, rho[1]
    even, odd = 1.0, rho[1]
    t = 1
    while t < n - 3 and even + odd > 0.0:
        even, odd = rho[t + 1], rho[t + 2]
        if even + odd >= 0:
            out[t + 1], out[t + 2] = even, odd
        t += 2
    max_t = t - 2
    if even > 0:
        out[max_t + 1] = even
    t = 1
    while t <= max_t - 2:
        if out[t + 1] + out[t + 2] > out[t - 1] + out[t]:
            out[t + 1] = out[t + 2] = (out[t - 1] + out[t]) / 2.0
        t += 2
    tau = -1.0 + 2.0 * np.sum(out[: max_t + 1]) + np.sum(out[max_t + 1 : max_t + 2])
    tau = max(tau, 1.0 / np.log10(x.size))
    return float("nan") if np.isnan(out).any() else float(x.size / tau)


def ess_bulk(x: np.ndarray) -> float:
    """Bulk ESS: ESS of the normal scores of the split chains."""
    x = np.asarray(x, np.float64)
    if not np.all(np.isfinite(x)):
        return float("nan")
    return _ess(_z_scale(_split(x)))


def ess_tail(x: np.ndarray, prob: float = 0.05) -> float:
    """Tail ESS: the smaller ESS of the indicators below the ``prob`` and ``1 - prob`` quantiles."""
    x = np.asarray(x, np.float64)
    if not np.all(np.isfinite(x)):
        return float("nan")
    lo, hi = np.quantile(x, [prob, 1.0 - prob])
    return min(_ess(_split((x <= lo).astype(float))), _ess(_split((x <= hi).astype(float))))
