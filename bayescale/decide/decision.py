r"""Decisions at scale: which arm wins, where arms cross, what the next small run is worth.

*Arms* are the groups of one grouped fit (architectures, data mixes, recipes) or several
separate fits ``{"llama": fit_a, "xlstm": fit_b}``. The metric is the loss or a downstream
error rate: lower is better for both. For every joint posterior draw ``s`` and arm ``a``
with metric :math:`L_{a,s}` at the target:

* :math:`P(\text{best})_a = P(L_a = \min_b L_b)` (ties share the draw);
* expected regret :math:`R_a = E[L_a - \min_b L_b] = E[\max(L_a - \min_{b \ne a} L_b, 0)]`:
  what choosing ``a`` costs, in the metric's units, against the arm that is best *in that
  draw*;
* the recommendation is :math:`\arg\min_a E[L_a]`, which is also :math:`\arg\min_a R_a`
  because :math:`R_a = E[L_a] - E[\min_b L_b]`;
* EVPI :math:`= E[L_{rec}] - E[\min_a L_a] = R_{rec}`: what knowing the laws exactly would
  save; the ceiling on what any experiment can be worth.

Two variants, named by ``noise``:

* ``noise=False`` (default, "which law is better"): the laws' values, parameter
  uncertainty only;
* ``noise=True`` ("will our single big run of A beat B?"): each arm's value is a new run's,
  with its own run-to-run noise (and, for fits with a sweep column, a new sweep's
  deviation), drawn independently per arm.

Draws are *paired* (the same joint draw for every arm) under pooling ``shared``/``partial``,
and re-paired at random otherwise (see :mod:`bayescale.decide._arms`). Every result reports Monte
Carlo standard errors from the ESS of the per-draw quantity, the fit's diagnostics, and a
``warning`` when the fit fails the gate (R-hat > 1.01 or divergences).

Example:
    >>> result = compare(fit, compute=1e22)            # doctest: +SKIP
    >>> result.recommended, round(result.evpi, 4)      # doctest: +SKIP
    ('mlstm', 0.0012)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._util import check_prob
from ._arms import resolve_arms
from ._crossover import CLASSES, Crossover, crossover
from ._evsi import NextRuns, next_experiment, read_candidates
from ._metrics import (
    DecisionWarning,
    Target,
    check_metric,
    clean,
    gate,
    mcse,
    metric_draws,
    rngs,
    to_metric,
)

__all__ = [
    "CLASSES",
    "Comparison",
    "Crossover",
    "DecisionWarning",
    "NextRuns",
    "Target",
    "compare",
    "crossover",
    "frontier_draws",
    "next_experiment",
    "p_best_curve",
    "read_candidates",
]


@dataclass
class Comparison:
    """Posterior comparison of arms at one target.

    Attributes:
        arms: arm names.
        draws: metric per joint draw and arm, ``(S, K)``.
        chains, n_per_chain: layout of the ``S`` draws (for the ESS-based MCSE).
        paired: whether the draws of different arms are paired (one joint posterior).
        metric: ``loss`` or ``downstream``.
        noise: False: the laws ("which law is better"); True: one new run per arm.
        target: the :class:`Target` as a dict.
        prob: interval probability.
        margin: practical-equivalence margin (metric units) or None.
        diagnostics: the fit's (or fits') diagnostics.
        warning: the gate's message when the fit fails it, else None.
    """

    arms: list[str]
    draws: np.ndarray
    chains: int
    n_per_chain: int
    paired: bool
    metric: str = "loss"
    noise: bool = False
    target: dict = field(default_factory=dict)
    prob: float = 0.95
    margin: float | None = None
    diagnostics: dict | None = None
    warning: str | None = None

    @property
    def variant(self) -> str:
        """``law`` (parameter uncertainty only) or ``next_run`` (with run noise)."""
        return "next_run" if self.noise else "law"

    @property
    def regret_draws(self) -> np.ndarray:
        """``L_a - min_b L_b`` per draw, ``(S, K)``."""
        return self.draws - self.draws.min(axis=1, keepdims=True)

    @property
    def best_draws(self) -> np.ndarray:
        """Indicator that the arm is best in the draw (ties split), ``(S, K)``."""
        best = self.draws == self.draws.min(axis=1, keepdims=True)
        return best / best.sum(axis=1, keepdims=True)

    @property
    def p_best(self) -> np.ndarray:
        return self.best_draws.mean(axis=0)

    @property
    def expected(self) -> np.ndarray:
        return self.draws.mean(axis=0)

    @property
    def lower(self) -> np.ndarray:
        return np.quantile(self.draws, (1 - self.prob) / 2, axis=0)

    @property
    def upper(self) -> np.ndarray:
        return np.quantile(self.draws, 1 - (1 - self.prob) / 2, axis=0)

    @property
    def expected_regret(self) -> np.ndarray:
        return self.regret_draws.mean(axis=0)

    @property
    def recommended(self) -> str:
        """The arm with the smallest expected metric (= smallest expected regret)."""
        return self.arms[int(np.argmin(self.expected))]

    @property
    def evpi(self) -> float:
        """``E[L_rec] - E[min_a L_a]``: the expected value of perfect information."""
        return float(self.expected_regret[self.arms.index(self.recommended)])

    def difference(self, arm_a: str, arm_b: str) -> np.ndarray:
        """Per-draw ``L_a - L_b`` (its spread shows what pairing buys)."""
        return self.draws[:, self.arms.index(arm_a)] - self.draws[:, self.arms.index(arm_b)]

    def p_equivalent(self) -> dict[str, float]:
        """``P(|L_a - L_rec| < margin)`` for every arm other than the recommended one."""
        if self.margin is None:
            return {}
        rec = self.recommended
        return {
            a: float(np.mean(np.abs(self.difference(a, rec)) < self.margin))
            for a in self.arms
            if a != rec
        }

    def mcse(self) -> dict:
        """ESS-based Monte Carlo standard errors of every reported expectation."""
        c, d = self.chains, self.n_per_chain
        best, regret = self.best_draws, self.regret_draws
        out = {
            "arms": {
                a: {
                    "p_best": mcse(best[:, k], c, d),
                    "expected": mcse(self.draws[:, k], c, d),
                    "expected_regret": mcse(regret[:, k], c, d),
                }
                for k, a in enumerate(self.arms)
            },
            "evpi": mcse(regret[:, self.arms.index(self.recommended)], c, d),
        }
        if self.margin is not None:
            rec = self.recommended
            out["p_equivalent"] = {
                a: mcse(np.abs(self.difference(a, rec)) < self.margin, c, d)
                for a in self.arms
                if a != rec
            }
        return out

    def to_dict(self) -> dict:
        """The ``bayescale decide --json`` object (DESIGN.md contract plus extras).

        ``{"arms": {G: {"p_best","expected","expected_regret","lower","upper"}},
        "recommended": G, "evpi": x}`` and alongside: ``variant``, ``noise``, ``metric``,
        ``target``, ``prob``, ``paired``, ``mcse``, ``diagnostics``, ``equivalence`` (with
        a margin), ``warning`` (when the fit fails the gate).
        """
        lower, upper = self.lower, self.upper
        out = {
            "arms": {
                a: {
                    "p_best": float(self.p_best[k]),
                    "expected": float(self.expected[k]),
                    "expected_regret": float(self.expected_regret[k]),
                    "lower": float(lower[k]),
                    "upper": float(upper[k]),
                }
                for k, a in enumerate(self.arms)
            },
            "recommended": self.recommended,
            "evpi": self.evpi,
            "variant": self.variant,
            "noise": self.noise,
            "metric": self.metric,
            "target": dict(self.target),
            "prob": self.prob,
            "paired": self.paired,
            "mcse": clean(self.mcse()),
            "diagnostics": self.diagnostics,
        }
        if self.margin is not None:
            p_eq = self.p_equivalent()
            out["equivalence"] = {
                "margin": self.margin,
                "versus": self.recommended,
                "p_equivalent": p_eq,
            }
            if len(self.arms) == 2:
                out["p_equivalent"] = next(iter(p_eq.values()))
        if self.warning:
            out["warning"] = self.warning
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per arm: p_best, expected, lower, upper, expected_regret."""
        return pd.DataFrame(
            {
                "p_best": self.p_best,
                "expected": self.expected,
                "lower": self.lower,
                "upper": self.upper,
                "expected_regret": self.expected_regret,
            },
            index=pd.Index(self.arms, name="arm"),
        )

    def __repr__(self) -> str:
        return (
            f"<Comparison of {len(self.arms)} arms ({self.variant}, {self.metric}): "
            f"recommended {self.recommended!r}, EVPI {self.evpi:.4g}>"
        )


def compare(
    source,
    *,
    params: float | None = None,
    tokens: float | None = None,
    compute: float | None = None,
    arms: Sequence[str] | None = None,
    metric: str = "loss",
    noise: bool = False,
    margin: float | None = None,
    prob: float = 0.95,
    seed: int = 0,
    paired: bool | None = None,
    at: Mapping[str, float] | None = None,
) -> Comparison:
    """Compare arms at a target: P(best), expected value, interval, expected regret, EVPI.

    Args:
        source: a grouped Fit (arms = groups) or ``{name: Fit}`` / ``{name: (Fit, group)}``.
        params, tokens: a fixed target run; or
        compute: a budget, each arm at its own compute-optimal allocation per draw (for
            ``downstream`` too: the error link is increasing in loss, so the loss-optimal
            split is also error-optimal).
        arms: a subset of arms (default all).
        metric: ``loss`` or ``downstream`` (error rate); lower is better.
        noise: False (default): the laws, parameter uncertainty only ("which law is
            better"); True: one new run per arm with its run-to-run noise ("will our single
            big run of A beat B?").
        margin: practical-equivalence margin; adds ``P(|L_a - L_rec| < margin)``.
        prob: interval probability.
        seed: seed of the random pairing (unpaired arms) and the noise draws.
        paired: None (default): pair draws whenever the arms share one joint posterior;
            False: pair at random anyway (shows what pairing buys).
        at: the target's named inputs, ``{"U": 5e9}`` (laws such as ``muennighoff2023``);
            with ``compute`` each arm is at its loss-optimal split under them.

    Returns:
        A :class:`Comparison`; warns :class:`DecisionWarning` when the fit fails the gate.

    Example:
        >>> result = compare(fit, params=7e9, tokens=1.4e11, metric="downstream")  # doctest: +SKIP
        >>> result.to_dict()["recommended"]                                         # doctest: +SKIP
        'rw_original'
    """
    prob = check_prob(prob)
    check_metric(metric)
    target = Target.make(params, tokens, compute)
    if margin is not None and not (isinstance(margin, int | float) and margin > 0):
        raise ValueError(f"margin must be a number > 0 but got {margin!r}")
    arm_set = resolve_arms(source, arms, seed=seed, paired=paired, at=at)
    generators = rngs(seed, len(arm_set.arms))
    draws = np.column_stack(
        [
            metric_draws(arm, target, metric, bool(noise), rng)
            for arm, rng in zip(arm_set.arms, generators, strict=True)
        ]
    )
    warning = gate(arm_set)
    return Comparison(
        arm_set.names,
        draws,
        arm_set.chains,
        arm_set.draws,
        arm_set.paired,
        metric,
        bool(noise),
        {**target.to_dict(), **arm_set.arms[0].at},
        prob,
        None if margin is None else float(margin),
        arm_set.diagnostics(),
        warning,
    )


# --------------------------------------------------------------------------- frontiers


def frontier_draws(
    source,
    compute,
    *,
    arms: Sequence[str] | None = None,
    metric: str = "loss",
    seed: int = 0,
    at: Mapping[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Each arm's metric along its compute-optimal frontier, ``{arm: (S, M)}`` (the laws).

    Example:
        >>> curves = frontier_draws(fit, np.geomspace(1e19, 1e23, 50))   # doctest: +SKIP
        >>> np.median(curves["llama"], axis=0)                           # doctest: +SKIP
    """
    check_metric(metric)
    c = np.atleast_1d(np.asarray(compute, np.float64))
    if c.ndim != 1 or not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise ValueError(f"compute must be finite and > 0 but got {np.asarray(compute).tolist()}")
    arm_set = resolve_arms(source, arms, seed=seed, min_arms=1, at=at)
    out = {}
    for arm in arm_set.arms:
        log_n = arm.frontier_log_params(c) if arm.allocates() else None
        loss = np.exp(arm.frontier_log_loss(np.log(c)[None, :], log_n))
        out[arm.name] = to_metric(arm, loss, metric, False, None)
    return out


def p_best_curve(
    source,
    compute,
    *,
    arms: Sequence[str] | None = None,
    metric: str = "loss",
    seed: int = 0,
) -> pd.DataFrame:
    """P(best) of each arm's law at each budget, along the compute-optimal frontiers.

    Returns:
        DataFrame indexed by compute, one column per arm (rows sum to one).

    Example:
        >>> p_best_curve(fit, [1e20, 1e21, 1e22]).round(2)   # doctest: +SKIP
    """
    curves = frontier_draws(source, compute, arms=arms, metric=metric, seed=seed)
    stacked = np.stack(list(curves.values()), axis=-1)  # (S, M, K)
    best = stacked == stacked.min(axis=-1, keepdims=True)
    p = (best / best.sum(axis=-1, keepdims=True)).mean(axis=0)
    index = pd.Index(np.atleast_1d(np.asarray(compute, np.float64)), name="compute")
    return pd.DataFrame(p, index=index, columns=list(curves))
