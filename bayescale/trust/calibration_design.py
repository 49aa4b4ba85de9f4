"""The simulated side of SBC: fixed priors, random training ladders, the extrapolation targets.

:func:`calibration_priors` resolves the law's data-dependent default priors once against a
reference ladder (the law's :data:`REFERENCE_TRUTH` on a fixed design), so the prior that
draws each truth is the prior of its fit; :func:`simulate_design` draws a ladder like a real
lab's. :func:`~bayescale.trust.calibration.calibrate` simulates losses on them.

Example:
    >>> design = simulate_design("chinchilla", 12, np.random.default_rng(1))
    >>> sorted(design), len(design["params"])
    (['compute', 'params', 'tokens'], 12)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..laws.base import DataSummary, Law, law_uses_reference
from ..laws.core import get_law
from ..laws.priors import Prior, parse_prior
from ..laws.simulate import HOFFMANN_2022

__all__ = ["CALIBRATION_NOISE", "REFERENCE_TRUTH", "calibration_priors", "simulate_design"]

#: Run-to-run noise on log loss for calibration: 0.4% to 2.7% (95%), like real sweeps.
CALIBRATION_NOISE = Prior("LogNormal", {"mu": round(math.log(0.01), 6), "sigma": 0.5})
#: Reference truths that fix the data-dependent default priors (natural-scale parameters).
REFERENCE_TRUTH: dict[str, dict[str, float]] = {
    "chinchilla": dict(HOFFMANN_2022),
    # Gadre et al. 2024-like: one exponent for N and D = M N
    "gadre2024": {"E": 1.85, "A": 300.0, "B": 1200.0, "eta": 0.3},
    "kaplan_c": {"C_c": 2.3e8, "alpha_C": 0.2, "E": 1.7},
    "kaplan_n": {"N_c": 8.8e13, "alpha_N": 0.076},
    "kaplan_d": {"D_c": 5.4e13, "alpha_D": 0.095},
}
_MULTIPLIERS = (5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0)
_REFERENCE_DESIGN = {
    "params": np.repeat(np.geomspace(3e7, 1e9, 5), 4),
    "tokens_per_param": np.tile([10.0, 20.0, 40.0, 80.0], 5),
}
_TARGETS = (10.0, 100.0)


# --------------------------------------------------------------------------- design


def simulate_design(
    law: str | Law, runs_per_fit: int = 20, rng: np.random.Generator | None = None
) -> dict[str, np.ndarray]:
    """A random training ladder: ``{"params", "tokens", "compute"}`` arrays of one length.

    Laws of params/tokens get ``runs_per_fit`` runs on a grid of model sizes spanning
    1.5-3 decades (smallest 10M-100M) times 3-4 token multipliers out of 5..320; laws of
    compute alone get log-spaced budgets over 2-4 decades from 1e16-1e18 FLOPs.

    Example:
        >>> design = simulate_design("chinchilla", 20, np.random.default_rng(0))
        >>> len(design["params"]), bool(np.all(design["compute"] == 6 * design["params"] * design["tokens"]))
        (20, True)
    """
    law = get_law(law)
    rng = np.random.default_rng(0) if rng is None else rng
    if law.inputs == ("compute",):
        low = 10 ** rng.uniform(16.0, 18.0)
        compute = np.geomspace(low, low * 10 ** rng.uniform(2.0, 4.0), runs_per_fit)
        nan = np.full(runs_per_fit, np.nan)
        return {"params": nan, "tokens": nan, "compute": compute}
    n_mult = 4 if runs_per_fit >= 12 else 3
    n_sizes = math.ceil(runs_per_fit / n_mult)
    low = 10 ** rng.uniform(7.0, 8.0)
    sizes = np.geomspace(low, low * 10 ** rng.uniform(1.5, 3.0), n_sizes)
    mults = np.sort(rng.choice(_MULTIPLIERS, n_mult, replace=False))
    params, mult = (a.ravel() for a in np.meshgrid(sizes, mults, indexing="ij"))
    keep = np.sort(rng.choice(params.size, runs_per_fit, replace=False))
    params, tokens = params[keep], params[keep] * mult[keep]
    return {"params": params, "tokens": tokens, "compute": 6.0 * params * tokens}


def _log_ref(law: Law, design: Mapping[str, np.ndarray]) -> dict[str, float]:
    if not law_uses_reference(law):
        return dict.fromkeys(law.inputs, 0.0)
    return {k: float(np.mean(np.log(design[k]))) for k in law.inputs}


def _targets(law: Law, design: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Targets at 10x and 100x the largest compute, at the ladder's largest tokens/param."""
    c_max = float(np.max(design["compute"]))
    out = {}
    for factor in _TARGETS:
        compute = np.array([factor * c_max])
        if law.inputs == ("compute",):
            out[f"{factor:g}x"] = {"compute": compute}
            continue
        m = float(np.max(design["tokens"] / design["params"]))
        params = np.sqrt(compute / (6.0 * m))
        out[f"{factor:g}x"] = {"params": params, "tokens": m * params, "compute": compute}
    return out


# --------------------------------------------------------------------------- priors


def calibration_priors(
    law: str | Law,
    truth: Mapping[str, float] | None = None,
    noise: Prior | str = CALIBRATION_NOISE,
    likelihood: str = "normal",
) -> dict[str, Prior]:
    """The law's default priors resolved once against a reference ladder, plus noise priors.

    The result is passed to every calibration fit (``fit(..., priors=...)``) and used to
    draw the truths, so both are the same distribution.

    Example:
        >>> calibration_priors("chinchilla")["E"]
        Uniform(low=0, high=2.06...)
    """
    from ..model.noise import NOISE_PRIORS

    law = get_law(law)
    truth = REFERENCE_TRUTH.get(law.name) if truth is None else truth
    if truth is None:
        raise ValueError(
            f"no reference truth for law {law.name!r}; pass truth={{...}} with its "
            f"parameters ({', '.join(law.reported_names)})"
        )
    n = _REFERENCE_DESIGN["params"]
    design = {"params": n, "tokens": n * _REFERENCE_DESIGN["tokens_per_param"]}
    design["compute"] = 6.0 * design["params"] * design["tokens"]
    loss = np.asarray(law.loss(truth, **{k: design[k] for k in law.inputs}), np.float64)
    summary = DataSummary(
        float(loss.min()), float(np.median(loss)), float(loss.max()), _log_ref(law, design)
    )
    priors = law.default_priors(summary)
    priors["sigma"] = parse_prior(noise)
    if likelihood == "student_t":
        priors["nu"] = NOISE_PRIORS["nu"]
    return priors


def _runs(law: Law, design: Mapping[str, np.ndarray], loss: np.ndarray):
    from ..data.runs import read_runs

    frame = pd.DataFrame({k: design[k] for k in law.inputs})
    frame["loss"] = loss
    return read_runs(frame, **{k: k for k in law.inputs}, loss="loss")
