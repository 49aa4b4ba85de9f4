"""Rank-normalised split R-hat and bulk/tail ESS (Vehtari et al. 2021) in plain numpy.

The same estimators as ArviZ/Stan, without importing ArviZ in the fit path (its import
alone costs ~1-2 s of a ~3 s fit). ``tests/test_mcmc_stats.py`` checks them against
``arviz.rhat`` / ``arviz.ess`` / ``arviz.mcse``.

Every function takes draws shaped ``(..., chains, draws)``: one ``(chains, draws)`` array
gives a float, leading axes (parameters, datasets) give an array of that shape, computed
in one pass -- a summary of 7 parameters costs about as much as one did, which is what
the diagnostics of a ``fit_many`` batch of 1024 datasets need. Undefined values (constant
or non-finite draws) are NaN.

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(4, 1000))
    >>> round(rhat(x), 2), 3000 < ess_bulk(x) < 5000
    (1.0, True)
    >>> rhat(np.stack([x, x + np.arange(4)[:, None]])).round(2)
    array([1.  , 1.56])
"""

from __future__ import annotations

import numpy as np

__all__ = ["ess_bulk", "ess_tail", "mcse_mean", "rhat"]


def _by_row(x, fn, spread: bool = False):
    """``fn`` on the rows of ``x`` (``(..., chains, draws)``) whose value is defined.

    A row is defined when its draws are all finite (and, with ``spread``, not all equal);
    ``fn`` gets those rows as float64 ``(rows, chains, draws)`` and returns one value per
    row; the others are NaN. One ``(chains, draws)`` input gives a float, leading axes an
    array of their shape.
    """
    x = np.asarray(x, np.float64)
    if x.ndim < 2:
        raise ValueError(f"draws must be shaped (..., chains, draws) but got shape {x.shape}")
    lead = x.shape[:-2]
    x = x.reshape(-1, *x.shape[-2:])
    ok = np.isfinite(x).all(axis=(-2, -1))
    if spread:
        ok &= np.ptp(x, axis=(-2, -1)) > 0
    out = np.full(x.shape[0], np.nan)
    if ok.any():
        out[ok] = fn(x[ok])
    return float(out[0]) if not lead else out.reshape(lead)


def _split(x: np.ndarray) -> np.ndarray:
    """Each chain cut in two halves (the middle draw of an odd length dropped)."""
    half = x.shape[-1] // 2
    return np.concatenate([x[..., :half], x[..., x.shape[-1] - half :]], axis=-2)


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Normal scores of each row's pooled ranks (average ranks for ties, Blom's offset)."""
    from scipy.special import ndtri  # light; scipy.stats would cost ~0.5 s to import

    rows, m = x.shape[0], x.shape[-2] * x.shape[-1]
    flat = x.reshape(rows, m)
    order = np.argsort(flat, axis=1)  # ties get their average rank: any order will do
    ordered = np.take_along_axis(flat, order, axis=1)
    new_value = np.ones((rows, m), bool)  # a row's first value starts a group of ties
    new_value[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    new_value = new_value.reshape(-1)
    group = np.cumsum(new_value)
    bounds = np.r_[np.flatnonzero(new_value), new_value.size]
    offset = np.repeat(np.arange(rows) * m, m)
    average = 0.5 * (bounds[group] + bounds[group - 1] + 1) - offset  # rank of the ties
    ranks = np.empty((rows, m))
    np.put_along_axis(ranks, order, average.reshape(rows, m), axis=1)
    return ndtri((ranks.reshape(x.shape) - 0.375) / (m + 0.25))


def _rhat_basic(x: np.ndarray) -> np.ndarray:
    n = x.shape[-1]
    between = n * np.var(x.mean(axis=-1), axis=-1, ddof=1)
    within = np.mean(np.var(x, axis=-1, ddof=1), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):  # within 0: undefined, NaN
        return np.sqrt((between / within + n - 1) / n)


def rhat(x):
    """Rank-normalised split R-hat: the larger of the bulk and the folded (tail) R-hat."""

    def rows(x):
        split = _split(x)
        # folded about the median of the split chains (ArviZ's; with an odd number of
        # draws the middle one is not in them)
        folded = np.abs(split - np.median(split, axis=(-2, -1), keepdims=True))
        # one of them undefined (all ties): the other
        return np.fmax(_rhat_basic(_z_scale(split)), _rhat_basic(_z_scale(folded)))

    return _by_row(x, rows, spread=True)


def _autocov(x: np.ndarray) -> np.ndarray:
    """Biased autocovariance of every chain at every lag (FFT)."""
    n = x.shape[-1]
    centred = x - x.mean(axis=-1, keepdims=True)
    size = 2 ** int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(centred, n=size, axis=-1)
    return np.fft.irfft(f * np.conj(f), n=size, axis=-1)[..., :n] / n


def _ess(x: np.ndarray) -> np.ndarray:
    """Geyer's initial monotone sequence on the multi-chain autocorrelation (Stan's), for
    every row of ``x`` (``(rows, chains, n)``) at once.

    Stan's loop, in closed form: with pair sums ``S_k = rho[2k] + rho[2k + 1]``
    (``S_0 = 1 + rho[1]``), it reads pairs ``k = 1 .. R`` while ``S_{k-1} > 0`` (and
    ``2k - 1 < n - 3``); the monotone sequence replaces each pair by the running minimum
    of the pair sums, so ``tau = -1 + 2 * sum(cummin(S)[:R]) + rho[2R]`` where the loop
    kept lag ``2R`` (``S_R >= 0`` or ``rho[2R] > 0``), else ``-1 + 2 * sum(...)``.
    """
    rows, chains, n = x.shape
    size = chains * n
    acov = _autocov(x)
    mean_var = np.mean(acov[..., 0], axis=-1) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if chains > 1:
        var_plus = var_plus + np.var(x.mean(axis=-1), axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var[:, None] - acov.mean(axis=1)) / var_plus[:, None]
    rho[:, 0] = 1.0
    pairs = n // 2
    sums = rho[:, 0 : 2 * pairs : 2] + rho[:, 1 : 2 * pairs : 2]  # S_0 .. S_{pairs-1}
    k = np.arange(1, pairs)
    with np.errstate(invalid="ignore"):
        reads = (sums[:, :-1] > 0) & (2 * k - 1 < n - 3)  # pair k is read
    if reads.shape[1] == 0:  # fewer than 4 draws per split chain: no pair to read
        read = np.zeros(rows, np.int64)
    else:
        read = np.where(reads.all(axis=1), reads.shape[1], np.argmin(reads, axis=1))  # R
    every = np.arange(rows)
    kept = np.cumsum(np.minimum.accumulate(sums, axis=1), axis=1)
    kept = np.where(read > 0, kept[every, np.maximum(read - 1, 0)], 0.0)
    lag = rho[every, 2 * read]
    with np.errstate(invalid="ignore"):
        tail = (sums[every, read] >= 0) | (lag > 0)
    last = np.where(read > 0, np.where(tail, lag, 0.0), 1.0)  # R = 0: lag 0 is 1
    tau = np.maximum(-1.0 + 2.0 * kept + last, 1.0 / np.log10(size))
    ess = size / tau
    ess[np.isnan(rho[:, 1])] = np.nan
    ess[np.ptp(x, axis=(-2, -1)) < np.finfo(float).eps] = float(size)
    return ess


def ess_bulk(x):
    """Bulk ESS: ESS of the normal scores of the split chains."""
    return _by_row(x, lambda x: _ess(_z_scale(_split(x))))


def ess_tail(x, prob: float = 0.05):
    """Tail ESS: the smaller ESS of the indicators below the ``prob`` and ``1 - prob`` quantiles."""

    def rows(x):
        lo, hi = np.quantile(x, [prob, 1.0 - prob], axis=(-2, -1))
        below = [_ess(_split((x <= q[:, None, None]).astype(float))) for q in (lo, hi)]
        return np.minimum(*below)

    return _by_row(x, rows)


def mcse_mean(x):
    """Monte Carlo standard error of the mean: ``sd / sqrt(ESS)``, with the ESS of the
    split chains' raw values (not rank-normalised), as ``arviz.mcse(method="mean")``.

    Undefined (NaN) below 4 draws per chain, as in ArviZ.
    """

    def rows(x):
        if x.shape[-1] < 4:
            return np.full(x.shape[0], np.nan)
        sd = np.std(x.reshape(x.shape[0], -1), axis=-1, ddof=1)
        return sd / np.sqrt(_ess(_split(x)))

    return _by_row(x, rows)
