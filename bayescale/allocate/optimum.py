r"""The optimum search: :math:`\log N_{opt}` per posterior draw and budget.

Closed form for chinchilla and gadre2024 under a constant FLOP rule; otherwise numerical,
vectorised over draws and budgets: a log-spaced grid brackets the minimum of the law's log
loss along the budget, and bisection on the sign of its slope pins it (a jitted JAX search
for ``C = kND``, a NumPy one for a FLOP rule given as a Python callable). Also the checks
shared by the allocation functions, and the law's noise-free loss at per-draw inputs.

Example:
    >>> log_n, how = optimal_log_params(fit, [1e22, 1e24])     # doctest: +SKIP
    >>> how                                                     # doctest: +SKIP
    'closed_form'
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .flops import FlopRule, flop_rule

__all__ = ["optimal_log_params"]

_CLOSED_FORM_LAWS = ("chinchilla", "gadre2024")


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
