"""Targets and per-draw metric values of arms: the shared core of every decision.

A :class:`Target` is a fixed run (params and tokens) or a compute budget spent at each
arm's compute-optimal allocation. :func:`metric_draws` gives each joint posterior draw's
loss or downstream error there: the law's value (``noise=False``) or a new run's
(``noise=True``). Helpers for Monte Carlo errors and the diagnostics gate live here too.

Example:
    >>> Target.make(params=7e9, tokens=1.4e11).compute_optimal
    False
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..data.runs import INPUTS
from ._arms import Arm, ArmSet

__all__ = [
    "METRICS",
    "DecisionWarning",
    "Target",
    "check_metric",
    "clean",
    "gate",
    "mcse",
    "metric_draws",
    "number",
    "rngs",
    "structured_scale",
    "to_metric",
]

METRICS = ("loss", "downstream")


class DecisionWarning(UserWarning):
    """A decision drawn from a fit that fails the diagnostics gate."""


# --------------------------------------------------------------------------- target


@dataclass(frozen=True)
class Target:
    """Where a decision is made: a run's size, or a budget spent compute-optimally.

    Give ``params`` and ``tokens`` (a fixed run; ``compute`` with one of them fills in the
    other through ``C = 6ND``), or ``compute`` alone: then every arm is evaluated at *its
    own* compute-optimal allocation per posterior draw (:mod:`bayescale.allocate`).

    Example:
        >>> Target.make(compute=1e22).compute_optimal
        True
        >>> Target.make(params=7e9, tokens=1.4e11).to_dict()
        {'params': 7000000000.0, 'tokens': 140000000000.0, 'compute': None}
    """

    params: float | None = None
    tokens: float | None = None
    compute: float | None = None

    @classmethod
    def make(cls, params=None, tokens=None, compute=None) -> Target:
        values = {}
        for name, value in (("params", params), ("tokens", tokens), ("compute", compute)):
            if value is None:
                values[name] = None
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise ValueError(f"{name} must be a number but got {value!r}")
            if not math.isfinite(float(value)) or float(value) <= 0:
                raise ValueError(f"{name} must be finite and > 0 but got {value}")
            values[name] = float(value)
        given = [k for k, v in values.items() if v is not None]
        if not given:
            raise ValueError(
                "give a target: params and tokens (--params N --tokens D) or a compute "
                "budget (--compute C)"
            )
        if len(given) == 3:
            raise ValueError(
                "give either params and tokens (--params N --tokens D) or compute "
                "(--compute C), not all three"
            )
        return cls(**values)

    @property
    def compute_optimal(self) -> bool:
        """True when only a budget is given: each arm at its compute-optimal allocation."""
        return self.params is None and self.tokens is None

    def values(self, flops_per_token: float) -> dict[str, float]:
        """The run's params/tokens/compute, whichever follow from what was given."""
        n, d, c = self.params, self.tokens, self.compute
        if d is None and n is not None and c is not None:
            d = c / (flops_per_token * n)
        if n is None and d is not None and c is not None:
            n = c / (flops_per_token * d)
        if c is None and n is not None and d is not None:
            c = flops_per_token * n * d
        return {k: v for k, v in (("params", n), ("tokens", d), ("compute", c)) if v is not None}

    def to_dict(self) -> dict:
        return {"params": self.params, "tokens": self.tokens, "compute": self.compute}

    def describe(self) -> str:
        if self.compute_optimal:
            return f"C = {self.compute:.3g} FLOPs, each arm at its compute-optimal N, D"
        parts = [f"{k[0].upper()} = {v:.3g}" for k, v in self.to_dict().items() if v is not None]
        return ", ".join(parts)


def check_metric(metric: str) -> str:
    """``metric`` if it is ``loss`` or ``downstream``, else a one-line ValueError."""
    if metric not in METRICS:
        raise ValueError(f"metric must be 'loss' or 'downstream' but got {metric!r}")
    return metric


def _target_log_loss(arm: Arm, target: Target) -> np.ndarray:
    """Noise-free log loss of each draw of ``arm`` at the target, ``(S,)``."""
    if target.compute_optimal:
        log_c = np.asarray([[math.log(target.compute)]])
        log_n = arm.frontier_log_params([target.compute]) if arm.allocates() else None
        return arm.frontier_log_loss(log_c, log_n)[:, 0]
    values = target.values(arm.flops_per_token)
    missing = [k for k in arm.law.inputs if k not in values and k not in arm.at]
    if missing:
        flags = ", ".join(f"--{k}" if k in INPUTS else f"--at {k}=VALUE" for k in missing)
        raise ValueError(
            f"law {arm.law.name!r} needs {' and '.join(missing)} at the target (give {flags})"
        )
    # named inputs (U) come from the arm's ``at``
    return arm.law_log_loss({k: np.log(values[k]) for k in arm.law.inputs if k in values})[:, 0]


def _drift_term(arm: Arm, target: Target) -> np.ndarray | float:
    """The fit's learned drift beyond its data (:mod:`bayescale.model.drift`) at the target, ``(S,)``.

    A compute-optimal target gets the drift along compute only (its tokens per parameter
    differ per draw and stay near the ladder's own).
    """
    if not getattr(arm.fit.model, "drift", ()):
        return 0.0
    if target.compute_optimal:
        values = {"compute": np.asarray([target.compute])}
    else:
        values = {
            k: np.asarray([v])
            for k, v in target.values(arm.flops_per_token).items()
            if v is not None
        }
    codes = np.asarray([arm.code], np.int32)
    return arm.fit.drift_offset(values, codes)[arm.order, 0]


def _target_compute(arm: Arm, target: Target) -> float | None:
    return target.values(arm.flops_per_token).get("compute")


def _noise_term(arm: Arm, rng: np.random.Generator, scale_site="sigma", df_site="nu"):
    """One draw of run-to-run noise per posterior draw (Student-t or normal)."""
    names = [scale_site] + ([df_site] if arm.has_site(df_site) else [])
    sites = arm.sites(names)
    if df_site in sites:
        return sites[scale_site] * rng.standard_t(sites[df_site])
    return sites[scale_site] * rng.standard_normal(sites[scale_site].shape)


def scatter_factor(arm: Arm, values: Mapping[str, float | None]) -> np.ndarray | float:
    """``exp(scatter_growth * depth)`` per draw at one target, ``(S,)`` (1.0 without it).

    ``values`` holds the target's params, tokens and compute (any may be None); a
    compute-optimal target's scale for a law of params and tokens is log(C / flops per
    token), whatever each draw's split of C.
    """
    from ..model.scatter import scale_inputs

    model = arm.fit.model
    if not getattr(model, "scatter_growth", False):
        return 1.0
    names = scale_inputs(model.law)
    known = {k: np.asarray([v], np.float64) for k, v in values.items() if v is not None}
    if names == ("params", "tokens") and not {"params", "tokens"} <= set(known):
        if "compute" not in known:
            return 1.0
        known = {"params": known["compute"] / arm.flops_per_token, "tokens": np.ones(1)}
    if not set(names) <= set(known):
        return 1.0
    from ..posterior._predict import scatter_factor as fit_factor

    return fit_factor(arm.fit, known, np.asarray([arm.code], np.int32))[arm.order, 0]


def structured_scale(arm: Arm, compute: float | None, new_sweep: bool) -> np.ndarray:
    """Per-draw sd of the sweep deviation (new sweep) and beyond-the-data discrepancy."""
    fit, model = arm.fit, arm.fit.model
    var = np.zeros(len(arm.order))
    if new_sweep and getattr(model, "n_sweeps", 0):
        var = var + fit.flat("tau_sweep")[arm.order] ** 2
    if getattr(model, "discrepancy", False) and compute is not None:
        beyond = float(np.asarray(fit.beyond_data({"compute": np.asarray([compute])}))[0])
        var = var + (fit.flat("kappa")[arm.order] * beyond) ** 2
    return np.sqrt(var)


def to_metric(arm: Arm, loss: np.ndarray, metric: str, noise: bool, rng) -> np.ndarray:
    """Loss draws as the metric: the loss itself, or the error through the fitted link.

    The link ``eps - k exp(-gamma L)`` is increasing in ``L``, so the loss-optimal
    allocation is also error-optimal. ``noise`` adds the error's own run-to-run noise.
    """
    if metric == "loss":
        return loss
    if not arm.fit.spec.downstream:
        raise ValueError(
            f"metric 'downstream' needs fits with a downstream column (--downstream COL); "
            f"arm {arm.name!r} has none"
        )
    t = arm.sites(("eps", "k", "gamma"))
    shape = (slice(None),) + (None,) * (loss.ndim - 1)
    error = t["eps"][shape] - t["k"][shape] * np.exp(-t["gamma"][shape] * loss)
    if noise:
        error = error + _noise_term(arm, rng, "sigma_downstream", "nu_downstream")[shape]
    return error


def metric_draws(arm: Arm, target: Target, metric: str, noise: bool, rng) -> np.ndarray:
    """Metric per draw at the target, ``(S,)``: the law's value, or a new run's.

    The fit's learned drift beyond its data is added, as in :meth:`Fit.predict`. Fits with
    a discrepancy term (``discrepancy=True``) add it in both variants, drawn independently
    per arm (each arm's law may bend its own way beyond the data).
    """
    log_loss = _target_log_loss(arm, target) + _drift_term(arm, target)
    fit = arm.fit
    if getattr(fit.model, "discrepancy", False):
        log_loss = log_loss + structured_scale(
            arm, _target_compute(arm, target), False
        ) * rng.standard_normal(log_loss.shape)
    if noise:
        if getattr(fit.model, "n_sweeps", 0):  # the big run is a sweep of its own
            tau = fit.flat("tau_sweep")[arm.order]
            log_loss = log_loss + tau * rng.standard_normal(log_loss.shape)
        factor = scatter_factor(arm, target.values(arm.flops_per_token))
        log_loss = log_loss + _noise_term(arm, rng) * factor
    return to_metric(arm, np.exp(log_loss), metric, noise, rng)


# --------------------------------------------------------------------------- helpers


def mcse(values: np.ndarray, chains: int, draws: int) -> float:
    """Monte Carlo standard error of the mean of a per-draw quantity (ESS-based)."""
    x = np.asarray(values, np.float64).reshape(chains, draws)
    if not np.all(np.isfinite(x)):
        return float("nan")
    if np.ptp(x) == 0:
        return 0.0
    from ..posterior._mcmc_stats import mcse_mean  # ArviZ's estimator, without its ~2 s import

    value = mcse_mean(x)
    return value if math.isfinite(value) else float(np.std(x) / math.sqrt(x.size))


def gate(arm_set: ArmSet) -> str | None:
    """Warn (:class:`DecisionWarning`) and return the message when the fits fail the gate."""
    message = arm_set.gate()
    if message is not None:
        warnings.warn(message, DecisionWarning, stacklevel=3)
    return message


def number(value) -> float | None:
    """A JSON-safe float: None for nan/inf."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def rngs(seed: int, n: int) -> list[np.random.Generator]:
    """Independent generators, one per arm, so arms' run noise never coincides."""
    return [np.random.default_rng([int(seed), 31337, i]) for i in range(n)]


def clean(value):
    """Nested dicts of floats made JSON-safe (nan/inf become None)."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, float | np.floating):
        return number(value)
    return value
