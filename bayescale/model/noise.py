"""The noise of a scaling model: noise priors, likelihoods and structured noise.

Run-to-run scatter of log loss (``sigma``, with Student-t degrees of freedom ``nu``), the
same for a downstream error, the structured-noise sites (a sweep's shared deviation
``tau_sweep``, the beyond-the-data discrepancy ``kappa``, the scatter's growth toward the
small end of the ladder ``scatter_growth``) and their default priors; the
observation sites :class:`~bayescale.model.scaling.ScalingModel` adds; the projection that
keeps sweep deviations free of what the law owns; and the warning for a Student-t posterior
that may be improper.

Example:
    >>> NOISE_PRIORS["sigma"]
    LogNormal(mu=-4.6, sigma=1)
    >>> sweep_projection(2, np.log([1.0, 8.0]), np.array([0, 1]), np.zeros(2, int)).round(2)
    array([[ 0.5, -0.5],
           [-0.5,  0.5]])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..laws.priors import Prior

if TYPE_CHECKING:
    from .scaling import ScalingModel

__all__ = [
    "NOISE_PRIORS",
    "STRUCTURED_PRIORS",
    "likelihood",
    "sweep_projection",
    "warn_if_improper",
]

#: Student-t degrees of freedom are 1 + Gamma(2, 0.1) (Juarez & Steel's prior, shifted):
#: with nu free down to 0 the posterior is improper. When the law can pass exactly through
#: k runs, sigma -> 0 gains sigma^-k from those and loses sigma^((n-k) nu) on the other n-k,
#: so for nu < (k-1)/(n-k) the density is not integrable at sigma = 0 and a chain that finds
#: that corner never leaves (seen: nu 1e-4, sigma 4e-4 on a 12-run kaplan_d ladder). With
#: nu >= 1 (Cauchy tails at most) the posterior is proper whenever n >= 2k - 1.
#: Run-to-run scatter of log loss, sigma ~ LogNormal(log 0.01, 1): median 1% of the loss, 95%
#: within 0.14-7%. Fits of the real ladders in the data folder put it at 0.3-1.8% (5.7% for
#: a law that ignores data repetition); the old HalfNormal(0.1) put half its mass above 6.7%
#: and its mode at 0, where a ladder of 5-13 runs has a funnel (sigma -> 0 as the law passes
#: through the runs) that NUTS crossed with divergences and R-hat 1.01-1.17.
NOISE_PRIORS = {
    "sigma": Prior("LogNormal", {"mu": -4.6, "sigma": 1.0}),
    "nu": Prior("Gamma", {"concentration": 2.0, "rate": 0.1, "loc": 1.0}),
    "sigma_downstream": Prior("HalfNormal", {"sigma": 0.05}),
    "nu_downstream": Prior("Gamma", {"concentration": 2.0, "rate": 0.1, "loc": 1.0}),
}
#: Structured noise (see ``ScalingModel.model``): the spread of a sweep's shared deviation on
#: log loss (a few percent at most in real isoFLOP sweeps) and the discrepancy growth rate
#: per e-fold of compute beyond the data (published extrapolations miss by ~1-3% at ~100x).
#: ``scatter_growth`` is how fast the scatter widens per e-fold of compute below the top of
#: the fit set (``sigma * exp(scatter_growth * depth)``): HalfNormal(0.2) lets the smallest
#: runs of a 5-e-fold ladder scatter up to ~7x more than its largest (97.5% quantile 0.45).
STRUCTURED_PRIORS = {
    "tau_sweep": Prior("HalfNormal", {"sigma": 0.05}),
    "kappa": Prior("HalfNormal", {"sigma": 0.01}),
    "scatter_growth": Prior("HalfNormal", {"sigma": 0.2}),
}


def sweep_projection(k: int, log_scale, sweep, group) -> np.ndarray:
    """The projection of :meth:`ScalingModel.sweep_projection
    <bayescale.model.scaling.ScalingModel.sweep_projection>` for ``k`` sweeps."""
    log_scale, sweep, group = (np.asarray(a) for a in (log_scale, sweep, group))
    present = np.bincount(sweep, minlength=k) > 0
    t = np.array(
        [log_scale[sweep == s].mean() if present[s] else 0.0 for s in range(k)], np.float64
    )
    t = (t - t[present].mean()) / (t[present].std() or 1.0)
    t[~present] = 0.0
    sweep_group = np.array(
        [np.bincount(group[sweep == s]).argmax() if present[s] else -1 for s in range(k)]
    )
    columns = [(sweep_group == g).astype(float) for g in np.unique(sweep_group[present])]
    columns += [t, t**2]
    basis = np.zeros((k, 0))
    for column in columns:
        trial = np.column_stack([basis, column])
        rank = np.linalg.matrix_rank(trial)
        if rank > basis.shape[1] and rank <= present.sum() - 1:
            basis = trial
    if basis.shape[1] == 0:
        return np.eye(k)
    q, _ = np.linalg.qr(basis)
    return np.eye(k) - q @ q.T


def likelihood(site: str, mean, scale, df, obs, mask):
    """The observation site ``site`` over the runs (masked): ``df`` None (normal), or
    Student-t ``(df, df_terms)`` per run."""
    import numpyro
    import numpyro.distributions as dist

    from ._density import student_t

    if df is None:
        d = dist.Normal(mean, scale)
    else:
        nu, nu_terms = df
        d = student_t(nu, mean, scale, nu_terms)
    with numpyro.plate(f"{site}_runs", mean.shape[-1]), numpyro.handlers.mask(mask=mask):
        numpyro.sample(site, d, obs=obs)


def _nu_floor(prior: Prior) -> float:
    """The lowest value a degrees-of-freedom prior allows."""
    p = prior.params
    if prior.family == "Gamma":
        return p["loc"]
    if prior.family in ("Uniform", "TruncatedNormal"):
        return max(p["low"], 0.0)
    return 0.0


def warn_if_improper(model: ScalingModel, runs) -> None:
    """Warn when a Student-t posterior may be improper (sigma -> 0 with exact-fit runs).

    If the law can pass exactly through k of n runs, the density near sigma = 0 behaves
    like sigma^(-k + (n - k) nu): with nu >= 1 (and a prior vanishing at nu = 1, as the
    default 1 + Gamma(2, 0.1)) it is integrable when n >= 2k - 1. k is at most the number
    of law parameters a noise scale serves.
    """
    import warnings

    from .._util import FitWarning

    floor = _nu_floor(model.priors["nu"])
    if floor < 1.0:
        warnings.warn(
            f"prior nu = {model.priors['nu']} allows Student-t degrees of freedom below 1: "
            "the posterior can be improper (sigma -> 0 while the law passes exactly through "
            "a few runs); use a floor such as Gamma(concentration=2, rate=0.1, loc=1)",
            FitWarning,
            stacklevel=3,
        )
        return
    names = model.law.parameter_names
    codes = np.asarray(runs.group) if model.grouped else np.zeros(runs.n_runs, np.int64)
    if model.is_grouped("sigma"):  # pooling none: each group has its own law and noise
        counts = [(int(np.sum(codes == g)), len(names), g) for g in range(model.n_groups)]
    else:
        n_params = sum(model.n_groups if model.is_grouped(n) else 1 for n in names)
        counts = [(runs.n_runs, n_params, None)]
    for n, p, g in counts:
        if n < 2 * p - 1:
            where = f" in group {model.group_names[g]!r}" if g is not None else ""
            warnings.warn(
                f"student_t likelihood with {n} runs{where} for {p} law parameters: the "
                f"posterior can be improper (sigma -> 0 while the law passes exactly through "
                f"{p} runs) below {2 * p - 1} runs; use likelihood='normal' or add runs",
                FitWarning,
                stacklevel=3,
            )
            return
