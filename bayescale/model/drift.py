r"""Drift: how far the law's extrapolations wander, learned from the ladder's own backtest.

A posterior of the law says how well its parameters are pinned down; it says nothing about
how wrong the law's *form* is beyond the data, since no run there informs it. On real
ladders that form error dominates: fitted on small budgets, laws miss the next 4-16x by
1-5%, and by more the farther they go. The only evidence a ladder holds about that error is
what happens when it is extrapolated *within itself*. So :func:`calibrate_drift` refits the
law on the lower part of the fit set (cut at 1/4, 3/8 and 1/2 of its log-compute span below
its largest compute), predicts the runs above each cut, and reads off each fold's *drift*:
the log-error of its predictions per e-fold of compute beyond its own fit set,

.. math::  b_f = \sum_i w_i\, e_i / d_i \big/ \sum_i w_i, \quad
           e_i = \log L_i - \mathrm{median}\log\hat L_i, \quad w_i = d_i^2 / s_i^2,

with :math:`s_i` the predictive sd of run :math:`i` and :math:`d_i` its log-distance. The
folds' drifts are treated as draws around the ladder's drift :math:`b`,
:math:`b_f \sim N(b, \omega^2 + v_f)` (:math:`v_f = \sum_i w_i (s_i/d_i)^2 / \sum_i w_i`,
the prediction variance per e-fold of a typical target: the targets share the fold's
parameter uncertainty, so their slopes are not independent), with the prior :math:`b \sim N(0, \tau^2)`; a new
extrapolation drifts by :math:`b + \omega z`. Its normal posterior is stored with the fit as
the site ``drift``: predictions beyond the data get ``drift * max(0, log C - log C_max)`` on
log loss (the same draw for every target of a posterior draw: the law bends smoothly). A
ladder that extrapolated well within itself gets a drift near 0 and intervals that widen
little; one that did not is both corrected and widened.

The same is done along the tokens-per-parameter ratio M = D/N for laws of N and D (site
``drift_ratio``, folds cut at 1/4 and 1/2 of the log-M span), for over-trained targets
beyond the largest M fitted. With too few runs for a fold (a 5-run ladder), a drift keeps
its prior, :math:`N(0, \tau^2 + \omega^2)`. A fold whose sampler diagnostics still fail
after a re-run at a higher target acceptance is kept in the record (``ok: False``) but does
not inform the drift.

:data:`DRIFT_PRIOR` (``tau``, ``omega``) was chosen on the real-data backtest corpus
(:mod:`bayescale.trust.corpus`) by leave-one-source-out: see ``docs/calibration.md``.

Example:
    >>> fit = bs.fit(runs, "chinchilla")                    # doctest: +SKIP
    >>> fit.info["drift"]["compute"]["mean"]                 # doctest: +SKIP
    0.012
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np

from .._util import target_kwargs

__all__ = ["DRIFT_PRIOR", "calibrate_drift", "drift_draws", "log_ratio", "log_scale"]

#: per axis: prior sd ``tau`` of a ladder's drift and fold-to-fold spread ``omega``, per
#: e-fold on log loss (chosen on the corpus: ``docs/calibration.md``)
DRIFT_PRIOR = {
    "compute": {"tau": 0.005, "omega": 0.01},
    "ratio": {"tau": 0.02, "omega": 0.01},
}
#: where the folds cut the fit set, as fractions of its log span below its largest value
CUTS = {"compute": (0.25, 0.375, 0.5), "ratio": (0.25, 0.5)}
#: targets closer than this (e-folds) to their fold's edge carry no information on a slope
MIN_DISTANCE = 0.1
SITES = {"compute": "drift", "ratio": "drift_ratio"}
#: a fold fits and predicts at most this many runs (evenly spread along the fold's axis,
#: each group's edge kept): a drift is a slope of log-error against distance, which a
#: thousand runs measure as well as a hundred thousand, at a fraction of the time and memory
MAX_FOLD_RUNS = 1000


def log_scale(values: Mapping[str, np.ndarray | None]) -> np.ndarray:
    """Log compute, or for laws without it the sum of the log inputs (``params``, ``tokens``).

    Example:
        >>> log_scale({"compute": np.array([np.e])}).tolist()
        [1.0]
    """
    if values.get("compute") is not None:
        return np.log(np.asarray(values["compute"], np.float64))
    present = [np.log(np.asarray(v, np.float64)) for k, v in values.items() if v is not None]
    return np.sum(present, axis=0)


def log_ratio(values: Mapping[str, np.ndarray | None]) -> np.ndarray | None:
    """Log tokens per parameter, or None when params or tokens is missing."""
    if values.get("params") is None or values.get("tokens") is None:
        return None
    return np.log(
        np.asarray(values["tokens"], np.float64) / np.asarray(values["params"], np.float64)
    )


def _axis_values(runs, axis: str) -> np.ndarray | None:
    values = {k: getattr(runs, k) for k in ("params", "tokens", "compute")}
    return log_scale(values) if axis == "compute" else log_ratio(values)


def _codes(runs) -> np.ndarray:
    return np.asarray(runs.group) if runs.group is not None else np.zeros(runs.n_runs, np.int64)


def _fold_masks(runs, axis: str, fraction: float) -> tuple[np.ndarray, np.ndarray] | None:
    """``(fit, edge)``: runs at or below each group's cut, and each run's group edge there."""
    x = _axis_values(runs, axis)
    if x is None:
        return None
    codes = _codes(runs)
    fit_mask = np.zeros(runs.n_runs, bool)
    edge = np.zeros(runs.n_runs)
    for g in np.unique(codes):
        rows = codes == g
        top, bottom = x[rows].max(), x[rows].min()
        cut = top - fraction * (top - bottom)
        fit_mask[rows] = x[rows] <= cut + 1e-9
        if not fit_mask[rows].any():
            return None
        edge[rows] = x[rows & fit_mask].max()
    return fit_mask, edge


def thin(runs, values: np.ndarray, limit: int = MAX_FOLD_RUNS) -> np.ndarray:
    """Indices of at most ``limit`` runs spread evenly along ``values``, with every group's
    largest value among them (all runs when there are no more than ``limit``).

    Example:
        >>> class R: n_runs, group = 10, None
        >>> thin(R, np.arange(10.0), limit=4).tolist()
        [0, 3, 6, 9]
    """
    n = runs.n_runs
    if n <= limit:
        return np.arange(n)
    order = np.argsort(values, kind="stable")
    picked = set(order[np.unique(np.linspace(0, n - 1, limit).round().astype(int))].tolist())
    codes = _codes(runs)
    for g in np.unique(codes):
        rows = np.flatnonzero(codes == g)
        picked.add(int(rows[np.argmax(values[rows])]))
    return np.array(sorted(picked))


def _fold_drift(fitted, held, distance: np.ndarray, seed: int) -> dict | None:
    """The fold's drift per e-fold and its variance, from its predictions of ``held``."""
    keep = distance >= MIN_DISTANCE
    if keep.sum() == 0:
        return None
    held = held.select(keep)
    d = distance[keep]
    values = {k: held.input(k) for k in fitted.law.inputs}
    groups = [held.group_names[c] for c in held.group] if fitted.model.grouped else None
    draws = np.log(fitted.predict(**target_kwargs(values), group=groups, seed=seed).draws)
    med = np.median(draws, axis=0)
    q16, q84 = np.quantile(draws, [0.16, 0.84], axis=0)
    s = np.maximum((q84 - q16) / 2, 1e-6)
    errors = np.log(held.loss) - med
    w = d**2 / s**2
    slope = float(np.sum(w * errors / d) / np.sum(w))
    # the targets share the fold's parameter uncertainty: their slopes are not independent,
    # so the fold's variance is that of a typical target, not 1 / sum(w)
    var = float(np.sum(w * (s / d) ** 2) / np.sum(w))
    return {"slope": slope, "var": var, "n_held": int(keep.sum()), "max_distance": float(d.max())}


def calibrate_drift(
    runs,
    fit_fold: Callable,
    inputs: tuple[str, ...],
    n_parameters: int,
    law_name: str,
    prior: Mapping[str, float] | None = None,
    seed: int = 0,
) -> dict:
    """The drift posterior along compute (and along M for laws of N and D).

    Args:
        runs: the fit set (:class:`~bayescale.data.runs.Runs`).
        fit_fold: ``fit_fold(runs, seed) -> Fit``: fits the law to a fold's runs (the
            caller's sampler settings, no drift of its own).
        inputs, n_parameters, law_name: what the law needs (folds that cannot identify it
            are skipped).
        prior: ``{axis: {"tau": ..., "omega": ...}}`` (default :data:`DRIFT_PRIOR`).
        seed: seed of the folds' fits and predictions.

    Returns:
        ``{axis: {"mean", "sd", "tau", "omega", "folds": [...]}}`` for ``compute`` and,
        for laws of N and D, ``ratio``; ``folds`` lists each fold's cut, size, drift and
        diagnostics (an empty list: the drift is its prior).
    """
    from ..data.runs import RunsError

    prior = {**DRIFT_PRIOR, **(prior or {})}
    axes = ["compute"] + (["ratio"] if {"params", "tokens"} <= set(inputs) else [])
    out = {}
    for a, axis in enumerate(axes):
        tau, omega = float(prior[axis]["tau"]), float(prior[axis]["omega"])
        folds = []
        for k, fraction in enumerate(CUTS[axis]):
            masks = _fold_masks(runs, axis, fraction)
            if masks is None:
                continue
            fit_mask, edge = masks
            if fit_mask.all() or not fit_mask.any():
                continue
            train = runs.select(fit_mask)
            train = train.select(thin(train, _axis_values(train, axis)))
            try:
                train.require(inputs, n_parameters, law_name)
            except RunsError:
                continue
            if train.n_runs < n_parameters + 2:
                continue  # a fold that can only just be fitted says nothing about drift
            held = runs.select(~fit_mask)
            distance = _axis_values(held, axis) - edge[~fit_mask]
            kept = thin(held, distance)
            held, distance = held.select(kept), distance[kept]
            fold_seed = seed + 1 + 10 * a + k
            fitted = fit_fold(train, fold_seed)
            result = _fold_drift(fitted, held, distance, fold_seed)
            if result is None:
                continue
            d = fitted.diagnostics
            result.update(
                cut=fraction,
                n_fit=train.n_runs,
                ok=bool(d.ok),
                max_r_hat=float(d.max_r_hat),
                divergences=int(d.divergences),
            )
            folds.append(result)
        precision, weighted = 1.0 / tau**2, 0.0
        for f in folds:
            if not f["ok"]:
                continue  # reported in the fit's info, but a failed fit grades nothing
            precision += 1.0 / (omega**2 + f["var"])
            weighted += f["slope"] / (omega**2 + f["var"])
        mean = weighted / precision
        sd = math.sqrt(1.0 / precision + omega**2)
        out[axis] = {"mean": mean, "sd": sd, "tau": tau, "omega": omega, "folds": folds}
    return out


def drift_draws(calibration: Mapping, chains: int, draws: int, seed: int) -> dict[str, np.ndarray]:
    """Draws ``(chains, draws)`` of each drift site from its normal posterior.

    Example:
        >>> cal = {"compute": {"mean": 0.01, "sd": 0.002}}
        >>> out = drift_draws(cal, 4, 1000, seed=0)
        >>> out["drift"].shape, round(float(out["drift"].mean()), 3)
        ((4, 1000), 0.01)
    """
    rng = np.random.default_rng([int(seed), 4242])
    return {
        SITES[axis]: c["mean"] + c["sd"] * rng.standard_normal((chains, draws))
        for axis, c in calibration.items()
    }


def with_drift(model, calibration: Mapping):
    """The model with its drift sites declared (see :class:`~bayescale.model.ScalingModel`)."""
    return replace(model, drift=tuple(SITES[axis] for axis in calibration))
