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

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._util import check_prob

__all__ = [
    "Allocation",
    "FlopRule",
    "Overtraining",
    "ScalingExponents",
    "compute_optimal",
    "flop_rule",
    "frontier",
    "optimal_log_params",
    "overtraining",
    "scaling_exponents",
]

_CLOSED_FORM_LAWS = ("chinchilla", "gadre2024")
_QUANTITIES = ("params", "tokens", "tokens_per_param", "loss")


# --------------------------------------------------------------------------- FLOP rules


@dataclass(frozen=True)
class FlopRule:
    """How training compute follows from N and D, and D from N and C.

    Three kinds: ``constant`` (``C = k N D``), ``per_param`` (``C = k(N) N D`` with a
    callable ``k``, e.g. ``6 + 12 n_layer n_ctx d_model / N`` to count attention) and
    ``general`` (``C = flops(N, D)``, any callable increasing in D; D is found by a
    safeguarded Newton search in log D). Build one with :func:`flop_rule`.

    Example:
        >>> rule = flop_rule(flops_per_token=6.0)
        >>> float(rule.tokens(np.array([1e9]), np.array([6e18]))[0])
        1000000000.0
    """

    kind: str
    k: float = 6.0
    fn: Callable | None = None

    @property
    def constant(self) -> bool:
        return self.kind == "constant"

    def describe(self) -> str:
        """``6ND``, ``k(N)*N*D`` or ``flops(N, D)``.

        Example:
            >>> flop_rule(flops_per_token=8).describe()
            '8ND'
        """
        if self.kind == "constant":
            return f"{self.k:g}ND"
        return "k(N)*N*D" if self.kind == "per_param" else "flops(N, D)"

    def compute(self, params, tokens) -> np.ndarray:
        """Training FLOPs of runs ``(params, tokens)``.

        Example:
            >>> float(flop_rule(flops=lambda n, d: (6 * n + 1e9) * d).compute(1e9, 1e10))
            7e+19
        """
        params = np.asarray(params, np.float64)
        tokens = np.asarray(tokens, np.float64)
        if self.kind == "constant":
            return self.k * params * tokens
        if self.kind == "per_param":
            return self._k_of(params) * params * tokens
        return self._flops(params, tokens)

    def tokens(self, params, compute) -> np.ndarray:
        """Tokens D with ``rule(N, D) = C``; NaN where the budget cannot be met."""
        params = np.asarray(params, np.float64)
        compute = np.asarray(compute, np.float64)
        if self.kind == "constant":
            return compute / (self.k * params)
        if self.kind == "per_param":
            return compute / (self._k_of(params) * params)
        return self._solve_tokens(params, compute)

    def _k_of(self, params: np.ndarray) -> np.ndarray:
        k = np.broadcast_to(np.asarray(self.fn(params), np.float64), np.shape(params))
        bad = ~(np.isfinite(k) & (k > 0))
        if np.any(bad):
            at = np.asarray(params)[bad].ravel()[0]
            raise ValueError(
                f"flops_per_token(N) must return finite values > 0 but got "
                f"{k[bad].ravel()[0]!r} at N={at:g}"
            )
        return k

    def _flops(self, params: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        shape = np.broadcast_shapes(np.shape(params), np.shape(tokens))
        c = np.broadcast_to(np.asarray(self.fn(params, tokens), np.float64), shape)
        bad = ~(np.isfinite(c) & (c > 0))
        if np.any(bad):
            where = np.argwhere(bad)[0]
            n = np.broadcast_to(params, shape)[tuple(where)]
            d = np.broadcast_to(tokens, shape)[tuple(where)]
            raise ValueError(
                f"flops(N, D) must return finite values > 0 but got {c[tuple(where)]!r} "
                f"at N={n:g}, D={d:g}"
            )
        return c

    def _solve_tokens(self, params: np.ndarray, compute: np.ndarray) -> np.ndarray:
        # Newton in log-log space inside a bracket of e^{+-30} around 6ND's answer, falling
        # back to bisection when a step leaves the bracket: robust for any rule increasing
        # in D, and one or two steps for the usual rules, which are nearly linear in D
        params, compute = np.broadcast_arrays(params, compute)
        target = np.log(compute)
        guess = np.log(compute / (6.0 * params))
        low, high = guess - 30.0, guess + 30.0

        def gap(log_d):
            return np.log(self._flops(params, np.exp(log_d))) - target

        reachable = (gap(low) <= 0) & (gap(high) >= 0)
        x = np.clip(guess, low, high)
        for _ in range(100):
            g = gap(x)
            done = np.abs(g) <= 1e-15 * np.maximum(1.0, np.abs(target))
            if np.all(done | ~reachable):
                break
            low, high = np.where(g < 0, x, low), np.where(g > 0, x, high)
            slope = (gap(x + 1e-7) - g) / 1e-7
            with np.errstate(divide="ignore", invalid="ignore"):
                newton = x - g / slope
            inside = np.isfinite(newton) & (newton > low) & (newton < high)
            x = np.where(done, x, np.where(inside, newton, 0.5 * (low + high)))
        return np.where(reachable, np.exp(x), np.nan)


def flop_rule(fit=None, flops_per_token=None, flops: Callable | None = None) -> FlopRule:
    """The FLOP rule for an allocation: the fit's constant unless the caller gives one.

    Args:
        fit: a fit; its ``flops_per_token`` (6 by default) is the fallback constant.
        flops_per_token: a number ``k`` (``C = kND``) or a callable ``k(N)`` (``C = k(N)ND``).
        flops: a callable ``flops(N, D) -> C``, increasing in D (vectorised over arrays).

    Example:
        >>> flop_rule(flops_per_token=lambda n: 6 + 12 * 24 * 2048 * 1024 / n).describe()
        'k(N)*N*D'
    """
    if flops is not None and flops_per_token is not None:
        raise ValueError("give flops_per_token or flops, not both")
    if flops is not None:
        if not callable(flops):
            raise ValueError(f"flops must be a callable flops(N, D) -> C but got {flops!r}")
        return FlopRule("general", fn=flops)
    if callable(flops_per_token):
        return FlopRule("per_param", fn=flops_per_token)
    if flops_per_token is None:
        k = 6.0 if fit is None else float(fit.info.get("flops_per_token", 6.0))
    else:
        if isinstance(flops_per_token, bool) or not isinstance(flops_per_token, numbers.Real):
            raise ValueError(
                "flops_per_token must be a number > 0 or a callable of N but got "
                f"{flops_per_token!r}"
            )
        k = float(flops_per_token)
    if not np.isfinite(k) or k <= 0:
        raise ValueError(f"flops_per_token must be finite and > 0 but got {flops_per_token!r}")
    return FlopRule("constant", k=k)


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


# --------------------------------------------------------------------------- checks


def _needs_nd(fit) -> None:
    inputs = set(fit.law.inputs)
    if not {"params", "tokens"} <= inputs:
        raise ValueError(
            f"law {fit.law.name!r} depends on {', '.join(sorted(inputs))} only: compute-optimal "
            "allocation needs a law of both params and tokens (N and D), e.g. chinchilla"
        )


def _budgets(compute, name: str = "compute") -> np.ndarray:
    try:
        c = np.atleast_1d(np.asarray(compute, np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be finite numbers > 0 but got {compute!r}") from None
    if c.ndim != 1 or c.size == 0 or not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise ValueError(f"{name} must be finite and > 0 but got {np.asarray(compute).tolist()}")
    return c


def _check_method(method: str) -> None:
    if method not in ("auto", "closed_form", "numerical"):
        raise ValueError(f"method must be 'auto', 'closed_form' or 'numerical' but got {method!r}")


# --------------------------------------------------------------------------- N_opt


def optimal_log_params(
    fit,
    compute,
    group=None,
    method: str = "auto",
    *,
    flops_per_token=None,
    flops: Callable | None = None,
) -> tuple[np.ndarray, str]:
    """``log N_opt`` per draw and budget, shape ``(S, M)``, and the method used.

    Args:
        fit: a :class:`~bayescale.posterior.Fit` of a law in N and D.
        compute: budget(s) in FLOPs.
        group: the arm, for grouped fits.
        method: ``auto`` (closed form where the law has one), ``closed_form`` or ``numerical``.
        flops_per_token, flops: the FLOP rule (see :func:`flop_rule`); default the fit's
            constant ``k`` (6).

    Example:
        >>> log_n, how = optimal_log_params(fit, [1e22, 1e24])     # doctest: +SKIP
        >>> log_n.shape, how                                       # doctest: +SKIP
        ((4000, 2), 'closed_form')
    """
    _needs_nd(fit)
    _check_method(method)
    c = _budgets(compute)
    rule = flop_rule(fit, flops_per_token, flops)
    codes = fit._group_codes(group, len(c))
    return _optimal_log_params(fit, codes, np.log(c)[None, :], rule, method)


def _has_closed_form(fit, rule: FlopRule) -> bool:
    return fit.law.name in _CLOSED_FORM_LAWS and rule.constant


def _optimal_log_params(
    fit, codes: np.ndarray, log_c: np.ndarray, rule: FlopRule, method: str
) -> tuple[np.ndarray, str]:
    """``log N_opt`` for log budgets ``log_c`` of shape ``(1, M)`` or ``(S, M)`` (per draw)."""
    closed = fit.law.name in _CLOSED_FORM_LAWS
    if method == "closed_form" and not closed:
        raise ValueError(
            f"law {fit.law.name!r} has no closed-form allocation; use method='numerical'"
        )
    if method == "closed_form" and not rule.constant:
        raise ValueError(
            f"the FLOP rule {rule.describe()} has no closed-form allocation; use method='numerical'"
        )
    if _has_closed_form(fit, rule) and method != "numerical":
        rep = _reported_for_rows(fit, codes)
        alpha, beta = _exponents_of(rep)
        log_g = (np.log(alpha * rep["A"]) - np.log(beta * rep["B"])) / (alpha + beta)
        return log_g + beta / (alpha + beta) * (log_c - np.log(rule.k)), "closed_form"
    if rule.constant:
        return _numerical(fit, codes, log_c - np.log(rule.k)), "numerical"
    return _numerical_rule(fit, codes, log_c, rule), "numerical"


def _exponents_of(rep: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    alpha = rep["alpha"] if "alpha" in rep else rep["eta"]
    beta = rep["beta"] if "beta" in rep else rep["eta"]
    return alpha, beta


def _reported_for_rows(fit, codes: np.ndarray) -> dict[str, np.ndarray]:
    reported = fit.reported()
    out = {}
    for name, value in reported.items():
        flat = value.reshape(-1, *value.shape[2:])
        out[name] = flat[:, codes] if flat.ndim == 2 else flat[:, None]
    return out


def _theta(fit, codes: np.ndarray) -> dict[str, np.ndarray]:
    names = fit.law.parameter_names
    flat = {n: fit.flat(n) for n in names}
    return fit.model.theta_for_rows(flat, codes, names)


def _numerical(fit, codes: np.ndarray, log_c6: np.ndarray) -> np.ndarray:
    """Golden-section search for argmin over u = log N of L(e^u, C/(k e^u)), per draw and budget."""
    import jax.numpy as jnp

    model = fit.model
    theta = {n: jnp.asarray(v)[..., None] for n, v in _theta(fit, codes).items()}
    ref = jnp.asarray([model.log_ref.get("params", 0.0), model.log_ref.get("tokens", 0.0)])
    s = fit.flat(fit.law.parameter_names[0]).shape[0]
    log_c6_j = jnp.broadcast_to(jnp.asarray(log_c6)[..., None], (s, log_c6.shape[1], 1))
    return np.asarray(_slope_search(fit.law)(theta, log_c6_j, ref))[..., 0]


_SEARCHES: dict = {}


def _slope_search(law):
    """A jitted minimiser of the law's log loss along C = kND (cached per law).

    A log-spaced grid brackets the minimum; bisection on the sign of the exact derivative
    (forward-mode autodiff) then pins it to ~1e-13 in log N. Searching on function values
    alone (golden section) stalls near 1e-7, where the loss is flat to float64 precision.
    """
    import jax
    import jax.numpy as jnp

    key = (law.name, law.options, id(law.log_loss_fn))
    if key in _SEARCHES:
        return _SEARCHES[key]

    def search(theta, log_c6, ref):
        def objective(u):  # u: log N, broadcast against theta (S, M, 1)
            return law.log_loss(theta, {"params": u - ref[0], "tokens": log_c6 - u - ref[1]})

        def slope(u):  # elementwise in u, so one JVP with unit tangents is the derivative
            return jax.jvp(objective, (u,), (jnp.ones_like(u),))[1]

        # bracket: a grid of log N within e^{+-9.5} of the square-root split
        grid = 0.5 * log_c6 + jnp.linspace(-9.5, 9.5, 97)
        values = objective(grid)
        best = jnp.argmin(values, axis=-1)[..., None]
        step = grid[..., 1:2] - grid[..., 0:1]
        low = jnp.take_along_axis(grid, best, axis=-1) - step
        high = low + 2 * step
        low, high = jnp.broadcast_arrays(low, high)

        def body(_, state):
            low, high = state
            mid = 0.5 * (low + high)
            rising = slope(mid) > 0  # the minimum lies below mid
            return jnp.where(rising, low, mid), jnp.where(rising, mid, high)

        low, high = jax.lax.fori_loop(0, 64, body, (low, high))
        return 0.5 * (low + high)

    _SEARCHES[key] = jax.jit(search)
    return _SEARCHES[key]


def _numerical_rule(fit, codes: np.ndarray, log_c: np.ndarray, rule: FlopRule) -> np.ndarray:
    """Minimise the log loss along ``rule(N, D) = C`` for a rule given as a Python callable.

    The callable need not be traceable by JAX, so the loop runs in NumPy; the law is
    evaluated eagerly. Points where the budget cannot be met count as +inf.
    """
    theta = {n: v[..., None] for n, v in _theta(fit, codes).items()}
    s = fit.flat(fit.law.parameter_names[0]).shape[0]
    log_c = np.broadcast_to(log_c, (s, log_c.shape[1]))[..., None]

    def objective(u: np.ndarray) -> np.ndarray:
        u, lc = np.broadcast_arrays(u, log_c)
        tokens = rule.tokens(np.exp(u), np.exp(lc))
        with np.errstate(invalid="ignore", divide="ignore"):
            value = _law_log_loss(fit, theta, u, np.log(tokens))
        return np.where(np.isfinite(value), value, np.inf)

    # the grid for D(N, C) depends on the budget only: solve it once per budget, not per draw
    unique_c = log_c[:1] if np.all(log_c == log_c[:1]) else log_c
    grid = 0.5 * (unique_c - np.log(6.0)) + np.linspace(-9.5, 9.5, 97)
    tokens_grid = rule.tokens(np.exp(grid), np.exp(unique_c))
    with np.errstate(invalid="ignore", divide="ignore"):
        values = _law_log_loss(fit, theta, grid, np.log(tokens_grid))
    values = np.where(np.isfinite(values), values, np.inf)
    if np.any(np.all(np.isinf(values), axis=-1)):
        raise ValueError(
            f"the FLOP rule {rule.describe()} cannot meet the budget for any N within "
            "e^{+-9.5} of sqrt(C/6): check flops(N, D)"
        )
    grid = np.broadcast_to(grid, values.shape)
    best = np.argmin(values, axis=-1)[..., None]
    step = grid[..., 1:2] - grid[..., 0:1]
    low = np.take_along_axis(grid, best, axis=-1) - step
    high = low + 2 * step
    # bisection on the sign of a central difference: its float64 noise (~1e-16 / h) moves
    # the root by ~1e-10, where golden section on values would stall near 1e-7
    h = 1e-5
    for _ in range(60):
        mid = 0.5 * (low + high)
        rising = objective(mid + h) > objective(mid - h)
        low, high = np.where(rising, low, mid), np.where(rising, mid, high)
    return 0.5 * (low + high)[..., 0]


_LOG_LOSSES: dict = {}


def _jitted_log_loss(law):
    """``law.log_loss`` compiled once per law: the NumPy search calls it ~120 times."""
    import jax

    key = (law.name, law.options, id(law.log_loss_fn))
    if key not in _LOG_LOSSES:
        _LOG_LOSSES[key] = jax.jit(law.log_loss)
    return _LOG_LOSSES[key]


def _law_log_loss(fit, theta, log_params: np.ndarray, log_tokens: np.ndarray) -> np.ndarray:
    """The law's noise-free log loss at natural-scale log-inputs, as NumPy."""
    model = fit.model
    shape = np.broadcast_shapes(np.shape(log_params), np.shape(log_tokens))
    x = {
        "params": np.broadcast_to(log_params - model.log_ref.get("params", 0.0), shape),
        "tokens": np.broadcast_to(log_tokens - model.log_ref.get("tokens", 0.0), shape),
    }
    theta = {k: np.asarray(v, np.float64) for k, v in theta.items()}
    return np.asarray(_jitted_log_loss(fit.law)(theta, x))


def _law_loss_at(fit, params: np.ndarray, tokens: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Noise-free loss per draw at per-draw inputs ``(S, M)``."""
    return np.exp(_law_log_loss(fit, _theta(fit, codes), np.log(params), np.log(tokens)))


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


# --------------------------------------------------------------------------- over-training


@dataclass
class Overtraining:
    """The price of training a fixed N on M tokens per parameter (Gadre et al.'s question).

    All draws have shape ``(S, K)`` for K multipliers. At ``D = M N`` and ``C = rule(N, D)``:

    - ``loss``: the law's loss of the over-(or under-)trained run;
    - ``optimal_loss``: :math:`L^*(C)`, the compute-optimal loss at the same compute;
    - ``loss_penalty``: ``loss - optimal_loss`` (>= 0), the loss given up at equal compute;
    - ``equal_loss_compute``: :math:`C'` with :math:`L^*(C') = ` ``loss``, the compute a
      compute-optimal run needs to reach the same loss;
    - ``compute_factor``: ``compute / equal_loss_compute`` (>= 1), how many times the
      compute-optimal model's compute the over-trained run spends for that loss; the extra
      compute is ``compute_factor - 1``;
    - ``optimal_tokens_per_param``: D/N of the compute-optimal run at ``compute``.

    Attributes:
        params: the fixed model size N.
        multipliers, tokens, compute: shape ``(K,)``.
    """

    params: float
    multipliers: np.ndarray
    tokens: np.ndarray
    compute: np.ndarray
    loss: np.ndarray
    optimal_loss: np.ndarray
    loss_penalty: np.ndarray
    equal_loss_compute: np.ndarray
    compute_factor: np.ndarray
    optimal_tokens_per_param: np.ndarray
    group: str | None = None

    def to_frame(self, prob: float = 0.95) -> pd.DataFrame:
        """One row per multiplier: inputs and ``{name}_median/_lower/_upper``.

        Example:
            >>> overtraining(fit, 1e9, [20, 320]).to_frame()      # doctest: +SKIP
        """
        prob = check_prob(prob)
        columns = {
            "params": np.full(len(self.multipliers), self.params),
            "tokens_per_param": self.multipliers,
            "tokens": self.tokens,
            "compute": self.compute,
        }
        for name in (
            "loss",
            "optimal_loss",
            "loss_penalty",
            "compute_factor",
            "optimal_tokens_per_param",
        ):
            for key, value in _stats(getattr(self, name), prob).items():
                columns[f"{name}_{key}"] = value
        return pd.DataFrame(columns)


def overtraining(
    fit,
    params: float,
    multipliers,
    group=None,
    *,
    flops_per_token=None,
) -> Overtraining:
    """Loss and compute cost of training ``params`` on ``multipliers`` tokens per parameter.

    See :class:`Overtraining` for the definitions. For chinchilla and gadre2024 the
    frontier is closed form, :math:`L^*(C) = E + K (C/k)^{-\\gamma}` with
    :math:`\\gamma = \\alpha\\beta/(\\alpha+\\beta)`, so :math:`C'` is too; other laws
    solve :math:`L^*(C') = L` per draw by bisection in log C.

    Args:
        fit: a fit of a law in N and D.
        params: the fixed model size N (> 0).
        multipliers: tokens per parameter M (> 0), e.g. ``[20, 80, 320, 640]``.
        group: arm of a grouped fit.
        flops_per_token: constant ``k`` or callable ``k(N)`` (default: the fit's).

    Example:
        >>> ot = overtraining(fit, 1.4e9, [20, 160, 640])             # doctest: +SKIP
        >>> ot.to_frame()[["tokens_per_param", "compute_factor_median"]]  # doctest: +SKIP
    """
    _needs_nd(fit)
    n = _budgets(params, "params")
    if n.size != 1:
        raise ValueError(f"params must be a single model size but got {n.size}")
    n = float(n[0])
    m = _budgets(multipliers, "multipliers")
    rule = flop_rule(fit, flops_per_token)
    tokens = m * n
    compute = rule.compute(np.full_like(tokens, n), tokens)
    codes = fit._group_codes(group, len(m))
    loss = _law_loss_at(fit, np.full((1, len(m)), n), tokens[None, :], codes)
    log_c = np.log(compute)[None, :]
    method = "auto" if rule.constant else "numerical"
    log_n_opt, _ = _optimal_log_params(fit, codes, log_c, rule, method)
    n_opt = np.exp(log_n_opt)
    d_opt = rule.tokens(n_opt, compute[None, :])
    optimal_loss = _law_loss_at(fit, n_opt, d_opt, codes)
    # the over-trained run can never beat the optimum; clip the ~1e-15 rounding
    loss = np.maximum(loss, optimal_loss)
    log_c_equal = _equal_loss_log_compute(fit, codes, loss, log_c, rule)
    equal = np.exp(log_c_equal)
    return Overtraining(
        n,
        m,
        tokens,
        compute,
        loss,
        optimal_loss,
        loss - optimal_loss,
        equal,
        np.exp(log_c - log_c_equal),
        d_opt / n_opt,
        None if group is None else str(group),
    )


def _equal_loss_log_compute(fit, codes, loss, log_c, rule: FlopRule) -> np.ndarray:
    """``log C'`` with ``L*(C') = loss`` per draw; at most ``log_c`` since L* decreases."""
    if _has_closed_form(fit, rule):
        rep = _reported_for_rows(fit, codes)
        alpha, beta = _exponents_of(rep)
        log_g = (np.log(alpha * rep["A"]) - np.log(beta * rep["B"])) / (alpha + beta)
        gamma = alpha * beta / (alpha + beta)
        # L*(C) - E = A N^-alpha + B D^-beta = K (C/k)^-gamma along N = G (C/k)^a
        log_k_term = np.logaddexp(np.log(rep["A"]) - alpha * log_g, np.log(rep["B"]) + beta * log_g)
        excess = np.maximum(loss - rep["E"], np.finfo(float).tiny)
        log_c_equal = np.log(rule.k) + (log_k_term - np.log(excess)) / gamma
        return np.minimum(log_c_equal, log_c)
    low = np.broadcast_to(log_c - 40.0, loss.shape).copy()
    high = np.broadcast_to(log_c, loss.shape).copy()
    for _ in range(60):
        mid = 0.5 * (low + high)
        log_n, _ = _optimal_log_params(fit, codes, mid, rule, "numerical")
        n_mid = np.exp(log_n)
        reached = _law_loss_at(fit, n_mid, rule.tokens(n_mid, np.exp(mid)), codes) <= loss
        high = np.where(reached, mid, high)
        low = np.where(reached, low, mid)
    return 0.5 * (low + high)
