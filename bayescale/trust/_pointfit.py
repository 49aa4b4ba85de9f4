"""The point-fit baseline of a backtest: Huber on log loss, L-BFGS-B, bootstrap intervals.

What most scaling-law papers do (Hoffmann et al. 2022, Besiroglu et al. 2024): minimise the
Huber loss (``delta = 1e-3``) of the log-loss residuals over a grid of starting points with
L-BFGS-B, and bootstrap the runs for intervals. Here for any law, in the law's own sampling
parameterisation (log-terms centred at the data's reference scale), with the parameters
bounded by the supports of their default priors (``0 < E <`` smallest loss, exponents in
``(0, 1.5)``). Grouped runs get one independent fit per group. The interval of a prediction
is the bootstrap percentile interval of the law's value, as published (no run noise).

Example:
    >>> base = point_fit(runs, get_law("chinchilla"), bootstrap=100)        # doctest: +SKIP
    >>> base.predict({"params": np.array([7e10]), "tokens": np.array([1.4e12])},
    ...              np.zeros(1, int), prob=0.95)                            # doctest: +SKIP
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from ..laws.base import DataSummary, Law, reference_scale
from ..laws.priors import Prior

__all__ = ["PointFit", "point_fit"]

DELTA = 1e-3


def _bounds(prior: Prior) -> tuple[float, float]:
    p, f = prior.params, prior.family
    if f in ("Uniform", "TruncatedNormal"):
        return float(p["low"]), float(p["high"])
    if f in ("HalfNormal", "LogNormal", "Exponential", "HalfCauchy"):
        return 0.0, math.inf
    if f == "Gamma":
        return float(p.get("loc", 0.0)), math.inf
    if f == "Beta":
        return 0.0, 1.0
    return -math.inf, math.inf


def _starts(priors: dict[str, Prior], names, rng, n: int) -> np.ndarray:
    """``n`` starting points drawn from the priors (clipped inside their bounds)."""
    cols = []
    for name in names:
        prior = priors[name]
        p = prior.params
        low, high = _bounds(prior)
        if prior.family == "Uniform":
            x = rng.uniform(p["low"], p["high"], n)
        elif prior.family in ("Normal", "TruncatedNormal", "StudentT"):
            x = p["mu"] + p["sigma"] * rng.standard_normal(n)
        elif prior.family == "LogNormal":
            x = np.exp(p["mu"] + p["sigma"] * rng.standard_normal(n))
        elif prior.family == "HalfNormal":
            x = np.abs(p["sigma"] * rng.standard_normal(n))
        else:
            x = np.exp(rng.normal(0.0, 1.0, n))
        span = (high - low) if math.isfinite(high - low) else 1.0
        cols.append(np.clip(x, low + 1e-6 * span, high - 1e-6 * span))
    return np.column_stack(cols)


def _huber(r: np.ndarray) -> np.ndarray:
    small = np.abs(r) <= DELTA
    # divided by delta: the same minimiser with O(1) values for L-BFGS-B's tolerances
    return np.where(small, 0.5 * r**2 / DELTA, np.abs(r) - 0.5 * DELTA)


@dataclass
class _GroupFit:
    law: Law
    log_ref: dict[str, float]
    names: tuple[str, ...]
    estimate: np.ndarray  # (parameters,)
    boot: np.ndarray  # (bootstrap, parameters)

    def log_loss(self, theta: np.ndarray, values: dict[str, np.ndarray]) -> np.ndarray:
        """Log loss at ``values`` for parameter rows ``theta`` (k, p): ``(k, targets)``."""
        x = {
            k: np.log(np.asarray(v, np.float64)) - self.log_ref.get(k, 0.0)
            for k, v in values.items()
        }
        t = {n: theta[:, i][:, None] for i, n in enumerate(self.names)}
        with np.errstate(all="ignore"):
            return np.asarray(self.law.log_loss_fn(t, {k: v[None, :] for k, v in x.items()}))


def _fit_group(law: Law, values, loss, bootstrap: int, rng) -> _GroupFit:
    from scipy.optimize import minimize

    summary = DataSummary.from_arrays(loss, values)
    summary = DataSummary(
        summary.min_loss,
        summary.median_loss,
        summary.max_loss,
        {**summary.log_ref, **reference_scale(law, summary.log_ref)},
    )
    priors = law.default_priors(summary)
    names = law.parameter_names
    bounds = []
    for n in names:
        low, high = _bounds(priors[n])
        span = (high - low) if math.isfinite(high - low) else 1.0
        bounds.append(
            (
                low + 1e-9 * span if math.isfinite(low) else None,
                high - 1e-9 * span if math.isfinite(high) else None,
            )
        )
    fit = _GroupFit(
        law, dict(summary.log_ref), names, np.zeros(len(names)), np.zeros((0, len(names)))
    )
    log_l = np.log(loss)

    def objective(theta, rows):
        """Huber sum and its forward-difference gradient, from one batched evaluation."""
        step = 1e-7 * np.maximum(1.0, np.abs(theta))
        batch = np.vstack([theta, theta + np.diag(step)])
        pred = fit.log_loss(batch, {k: v[rows] for k, v in values.items()})
        sums = _huber(pred - log_l[rows][None, :]).sum(axis=1)
        if not np.all(np.isfinite(sums)):
            return 1e30, np.zeros_like(theta)
        return float(sums[0]), (sums[1:] - sums[0]) / step

    def refine(start, rows):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = minimize(
                objective, start, args=(rows,), jac=True, method="L-BFGS-B", bounds=bounds
            )
        return res.fun, res.x

    every = np.arange(len(loss))
    starts = _starts(priors, names, rng, 512)
    preds = fit.log_loss(starts, values)
    scores = np.where(np.isfinite(preds).all(axis=1), _huber(preds - log_l).sum(axis=1), np.inf)
    best = min((refine(s, every) for s in starts[np.argsort(scores)[:8]]), key=lambda r: r[0])
    fit.estimate = best[1]
    boot = []
    for _ in range(bootstrap):
        rows = rng.integers(0, len(loss), len(loss))
        boot.append(refine(fit.estimate, rows)[1])
    fit.boot = np.array(boot).reshape(-1, len(names))
    return fit


@dataclass
class PointFit:
    """A Huber point fit per group with its bootstrap refits.

    Attributes:
        groups: one fit per group code (a single entry when ungrouped).
    """

    groups: list[_GroupFit]

    def predict(self, values: dict[str, np.ndarray], codes: np.ndarray, prob: float) -> dict:
        """``{"median", "lower", "upper"}`` of the loss at each target, one entry per target.

        ``median`` is the point fit's own prediction; the interval is the bootstrap's
        equal-tailed percentile interval at ``prob``.
        """
        size = len(codes)
        out = {k: np.full(size, np.nan) for k in ("median", "lower", "upper")}
        for g, fit in enumerate(self.groups):
            rows = np.asarray(codes) == g
            if fit is None or not rows.any():
                continue
            sub = {k: np.asarray(v)[rows] for k, v in values.items()}
            out["median"][rows] = np.exp(fit.log_loss(fit.estimate[None, :], sub)[0])
            if len(fit.boot):
                draws = np.exp(fit.log_loss(fit.boot, sub))
                tail = 100 * (1 - prob) / 2
                out["lower"][rows] = np.nanpercentile(draws, tail, axis=0)
                out["upper"][rows] = np.nanpercentile(draws, 100 - tail, axis=0)
        return out


def point_fit(runs, law: Law, bootstrap: int = 200, seed: int = 0) -> PointFit:
    """Fit ``law`` to ``runs`` by Huber L-BFGS-B (per group) with ``bootstrap`` refits.

    Example:
        >>> point_fit(runs, get_law("chinchilla"), bootstrap=50).groups[0].estimate  # doctest: +SKIP
    """
    rng = np.random.default_rng(seed)
    codes = runs.group if runs.group is not None else np.zeros(runs.n_runs, np.int64)
    n_groups = len(runs.group_names) if runs.group is not None else 1
    fits: list[_GroupFit | None] = []
    for g in range(n_groups):
        rows = codes == g
        if rows.sum() < len(law.parameter_names) + 1:
            fits.append(None)  # too few runs in this group for a point fit of its own
            continue
        values = {k: np.asarray(runs.input(k))[rows] for k in law.inputs}
        fits.append(_fit_group(law, values, np.asarray(runs.loss)[rows], bootstrap, rng))
    return PointFit(fits)
