r"""Compute-optimal allocation: how to split a FLOP budget between N and D, per draw.

For a budget :math:`C` and a FLOP rule (``C = k N D`` with ``k = 6`` FLOPs per parameter
per token unless the fit or the caller says otherwise), every posterior draw gives

.. math::  N_{opt}(C) = \arg\min_N L(N, D(N, C)),\qquad D_{opt} = D(N_{opt}, C),

and with them the tokens per parameter :math:`D_{opt}/N_{opt}` and the loss reached. For the
Chinchilla law under a constant rule the minimiser is closed form,
:math:`N_{opt} = G (C/k)^{a}` with :math:`a = \beta/(\alpha+\beta)` and
:math:`G = (\alpha A / (\beta B))^{1/(\alpha+\beta)}`, and the frontier is
:math:`L^*(C) = E + K (C/k)^{-\alpha\beta/(\alpha+\beta)}`; for any other law of N and D,
or a FLOP rule that depends on N (attention FLOPs, ``flops_per_token=lambda N: ...``) or on
both (``flops=lambda N, D: ...``), the minimum is found numerically, vectorised over draws
and budgets: a log-spaced grid brackets it, bisection on the sign of the slope pins it to
~1e-10 in log N or better.

On top of the allocation: the exponents of :math:`N_{opt} \propto C^a`,
:math:`D_{opt} \propto C^b` (:func:`scaling_exponents`), the frontier :math:`L^*(C)` with a
band (:func:`frontier`) and the cost of over-training a fixed model (:func:`overtraining`).

Example:
    >>> alloc = compute_optimal(fit, compute=1e24)      # doctest: +SKIP
    >>> alloc.to_dict()["tokens_per_param"]             # doctest: +SKIP
    {'median': 21.3, 'lower': 15.2, 'upper': 30.9}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._util import check_prob
from .flops import flop_rule
from .optimum import (
    _budgets,
    _check_method,
    _exponents_of,
    _has_closed_form,
    _law_loss_at,
    _needs_nd,
    _optimal_log_params,
    _reported_for_rows,
)

__all__ = [
    "Allocation",
    "ScalingExponents",
    "compute_optimal",
    "frontier",
    "scaling_exponents",
]

_QUANTITIES = ("params", "tokens", "tokens_per_param", "loss")


# --------------------------------------------------------------------------- results


def _stats(draws: np.ndarray, prob: float) -> dict[str, np.ndarray]:
    return {
        "median": np.median(draws, axis=0),
        "lower": np.quantile(draws, (1 - prob) / 2, axis=0),
        "upper": np.quantile(draws, 1 - (1 - prob) / 2, axis=0),
    }


@dataclass
class Allocation:
    """Posterior draws of the compute-optimal allocation at one or more budgets.

    Attributes:
        compute: budgets, shape ``(M,)``.
        params, tokens, tokens_per_param, loss: draws, shape ``(S, M)``; ``loss`` is the
            law's loss at the optimum (no run noise).
        method: ``closed_form`` or ``numerical``.
        group: the arm (grouped fits) or None.
        flops: the FLOP rule, e.g. ``6ND``.
    """

    compute: np.ndarray
    params: np.ndarray
    tokens: np.ndarray
    tokens_per_param: np.ndarray
    loss: np.ndarray
    method: str
    group: str | None = None
    flops: str = "6ND"

    def interval(self, name: str, prob: float = 0.95) -> dict[str, np.ndarray]:
        """Median and equal-tailed interval of one quantity, per budget.

        Example:
            >>> alloc.interval("params")["median"]        # doctest: +SKIP
        """
        prob = check_prob(prob)
        if name not in _QUANTITIES:
            raise ValueError(f"name must be one of {', '.join(_QUANTITIES)} but got {name!r}")
        return _stats(getattr(self, name), prob)

    def to_dict(self, prob: float = 0.95) -> dict:
        """The ``bayescale allocate --json`` object (DESIGN.md contract).

        ``{"params", "tokens", "tokens_per_param", "loss"}``, each ``{"median","lower","upper"}``;
        scalars for a single budget, lists otherwise.

        Example:
            >>> sorted(alloc.to_dict())                   # doctest: +SKIP
            ['loss', 'params', 'tokens', 'tokens_per_param']
        """
        out = {}
        for name in _QUANTITIES:
            stats = self.interval(name, prob)
            out[name] = {k: _scalar_or_list(v) for k, v in stats.items()}
        return out

    def to_frame(self, prob: float = 0.95) -> pd.DataFrame:
        """One row per budget: ``compute`` and ``{name}_median/_lower/_upper``.

        Example:
            >>> alloc.to_frame()[["compute", "loss_median"]]   # doctest: +SKIP
        """
        columns = {"compute": self.compute}
        for name in _QUANTITIES:
            for key, value in self.interval(name, prob).items():
                columns[f"{name}_{key}"] = value
        return pd.DataFrame(columns)


def _scalar_or_list(values: np.ndarray):
    values = np.atleast_1d(values)
    return float(values[0]) if values.size == 1 else [float(v) for v in values]


def compute_optimal(
    fit,
    compute,
    group=None,
    method: str = "auto",
    *,
    flops_per_token=None,
    flops: Callable | None = None,
    at: Mapping[str, float] | None = None,
) -> Allocation:
    """Posterior of the compute-optimal N, D, D/N and loss at budget(s) ``compute``.

    Args:
        fit: a fit of a law in N and D (chinchilla, gadre2024, kaplan_nd, custom).
        compute: FLOP budget(s).
        group: arm of a grouped fit.
        method: ``auto``, ``closed_form`` (chinchilla, gadre2024 under a constant rule) or
            ``numerical``.
        flops_per_token: ``k`` in ``C = kND`` (default: the fit's, 6), or a callable
            ``k(N)``, e.g. ``lambda N: 6 + 12 * n_layer * n_ctx * d_model / N``.
        flops: a callable ``flops(N, D) -> C`` increasing in D (D is solved numerically).
        at: named inputs held fixed, e.g. ``{"U": 5e9}`` unique tokens for
            ``muennighoff2023``: see :func:`bayescale.allocate.constrained.constrained_optimal`.

    Example:
        >>> alloc = compute_optimal(fit, [1e22, 1e24])                  # doctest: +SKIP
        >>> alloc.interval("params")["median"]                         # doctest: +SKIP
        >>> compute_optimal(fit, 1e24, flops=lambda n, d: 6 * n * d + 1e12 * d)  # doctest: +SKIP
    """
    _needs_nd(fit)
    _check_method(method)
    if at or set(fit.law.inputs) - {"params", "tokens", "compute"}:
        if flops is not None or callable(flops_per_token):
            raise ValueError("a FLOP rule other than C = kND is not supported with named inputs")
        from .constrained import constrained_optimal

        return constrained_optimal(fit, compute, at, group, flops_per_token=flops_per_token)
    c = _budgets(compute)
    rule = flop_rule(fit, flops_per_token, flops)
    codes = fit._group_codes(group, len(c))
    log_n, used = _optimal_log_params(fit, codes, np.log(c)[None, :], rule, method)
    params = np.exp(log_n)
    tokens = rule.tokens(params, c[None, :])
    loss = _law_loss_at(fit, params, tokens, codes)
    return Allocation(
        c,
        params,
        tokens,
        tokens / params,
        loss,
        used,
        None if group is None else str(group),
        rule.describe(),
    )


# --------------------------------------------------------------------------- exponents


@dataclass
class ScalingExponents:
    r"""Posterior draws of the exponents in :math:`N_{opt} \propto C^a`, :math:`D_{opt} \propto C^b`.

    Attributes:
        a, b: draws, shape ``(S,)``; ``tokens_per_param`` is ``b - a`` (the exponent of D/N).
        compute: the budget of a local slope, or None for the closed form (constant in C).
        method: ``closed_form`` or ``local_slope``.
    """

    a: np.ndarray
    b: np.ndarray
    compute: float | None
    method: str

    @property
    def tokens_per_param(self) -> np.ndarray:
        return self.b - self.a

    def interval(self, name: str = "a", prob: float = 0.95) -> dict[str, float]:
        """``{"median", "lower", "upper", "mean", "sd"}`` of ``a``, ``b`` or ``tokens_per_param``.

        Example:
            >>> scaling_exponents(fit).interval("a")       # doctest: +SKIP
            {'median': 0.514, 'lower': 0.493, 'upper': 0.537, 'mean': 0.514, 'sd': 0.011}
        """
        prob = check_prob(prob)
        if name not in ("a", "b", "tokens_per_param"):
            raise ValueError(f"name must be 'a', 'b' or 'tokens_per_param' but got {name!r}")
        draws = getattr(self, name)
        out = {k: float(v) for k, v in _stats(draws, prob).items()}
        out["mean"] = float(np.mean(draws))
        out["sd"] = float(np.std(draws, ddof=1))
        return out

    def to_dict(self, prob: float = 0.95) -> dict:
        """``{"a": {...}, "b": {...}, "tokens_per_param": {...}, "compute", "method"}``."""
        out = {name: self.interval(name, prob) for name in ("a", "b", "tokens_per_param")}
        out["compute"] = self.compute
        out["method"] = self.method
        return out

    def summary(self, prob: float = 0.95) -> pd.DataFrame:
        """One row per exponent with median, lower, upper, mean, sd."""
        frame = pd.DataFrame.from_dict(
            {n: self.interval(n, prob) for n in ("a", "b", "tokens_per_param")}, orient="index"
        )
        frame.index.name = "exponent"
        return frame


def scaling_exponents(
    fit,
    compute=None,
    group=None,
    *,
    flops_per_token=None,
    flops: Callable | None = None,
    step: float = 0.01,
) -> ScalingExponents:
    r"""Posterior of a and b in :math:`N_{opt} \propto C^a`, :math:`D_{opt} \propto C^b`.

    For the Chinchilla law under a constant FLOP rule they are constants of the law,
    :math:`a = \beta/(\alpha+\beta)`, :math:`b = \alpha/(\alpha+\beta)` (0.5 each for
    gadre2024's tied exponent). Otherwise they vary with C and are reported as the local
    slopes :math:`d \log N_{opt} / d \log C` and :math:`d \log D_{opt} / d \log C` at
    ``compute``, by a central difference of width ``2 * step`` in log C.

    Args:
        fit: a fit of a law in N and D.
        compute: the budget of the local slope (required unless the closed form applies).
        group: arm of a grouped fit.
        flops_per_token, flops: the FLOP rule (see :func:`compute_optimal`).
        step: half-width of the central difference in log C.

    Example:
        >>> scaling_exponents(fit).interval("a")                       # doctest: +SKIP
        >>> scaling_exponents(kaplan_nd_fit, compute=1e21).method       # doctest: +SKIP
        'local_slope'
    """
    _needs_nd(fit)
    rule = flop_rule(fit, flops_per_token, flops)
    if _has_closed_form(fit, rule):
        rep = _reported_for_rows(fit, fit._group_codes(group, 1))
        alpha, beta = _exponents_of(rep)
        a = (beta / (alpha + beta))[:, 0]
        c = None if compute is None else float(_budgets(compute)[0])
        return ScalingExponents(a, 1.0 - a, c, "closed_form")
    if compute is None:
        raise ValueError(
            f"law {fit.law.name!r} under FLOP rule {rule.describe()} has no closed-form "
            "exponents: give compute=C for the local slope d log N_opt / d log C at C"
        )
    c = _budgets(compute)
    if c.size != 1:
        raise ValueError(f"compute must be a single budget for a local slope but got {c.size}")
    if not (isinstance(step, int | float) and 0 < step < 1):
        raise ValueError(f"step must be in (0, 1) (log C units) but got {step!r}")
    codes = fit._group_codes(group, 2)
    log_c = np.log(c[0]) + np.array([[-step, step]])
    log_n, _ = _optimal_log_params(fit, codes, log_c, rule, "numerical")
    log_d = np.log(rule.tokens(np.exp(log_n), np.exp(log_c)))
    a = (log_n[:, 1] - log_n[:, 0]) / (2 * step)
    b = (log_d[:, 1] - log_d[:, 0]) / (2 * step)
    return ScalingExponents(a, b, float(c[0]), "local_slope")


# --------------------------------------------------------------------------- frontier


def frontier(
    fit,
    compute_grid,
    group=None,
    prob: float = 0.95,
    *,
    flops_per_token=None,
    flops: Callable | None = None,
) -> pd.DataFrame:
    r"""The compute-optimal frontier :math:`L^*(C)` (and N, D, D/N along it) with bands.

    Returns:
        A DataFrame with one row per budget: ``compute`` and ``loss_median``,
        ``loss_lower``, ``loss_upper`` (likewise ``params_*``, ``tokens_*``,
        ``tokens_per_param_*``), equal-tailed at ``prob``. Every draw's frontier is
        non-increasing in C (more compute never hurts the optimal run).

    Example:
        >>> frontier(fit, np.geomspace(1e20, 1e25, 11))[["compute", "loss_median"]]  # doctest: +SKIP
    """
    prob = check_prob(prob)
    alloc = compute_optimal(fit, compute_grid, group, flops_per_token=flops_per_token, flops=flops)
    return alloc.to_frame(prob)
