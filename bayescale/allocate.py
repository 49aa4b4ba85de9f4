r"""Compute-optimal allocation: how to split a FLOP budget between N and D, per draw.

For a budget :math:`C` and the rule :math:`C = k N D` (``k = 6`` FLOPs per parameter per
token unless the fit says otherwise), every posterior draw gives

.. math::  N_{opt}(C) = \arg\min_N L(N, C / (k N)),\qquad D_{opt} = C / (k N_{opt}),

and with them the tokens per parameter :math:`D_{opt}/N_{opt}` and the loss reached. For the
Chinchilla law the minimiser is closed form,
:math:`N_{opt} = G (C/k)^{\beta/(\alpha+\beta)}` with
:math:`G = (\alpha A / (\beta B))^{1/(\alpha+\beta)}`; for any other law of N and D it is
found numerically, vectorised over draws and budgets: a log-spaced grid brackets the
minimum, golden-section search refines it to ~1e-10 in log N.

Example:
    >>> alloc = compute_optimal(fit, compute=1e24)      # doctest: +SKIP
    >>> alloc.to_dict()["tokens_per_param"]             # doctest: +SKIP
    {'median': 21.3, 'lower': 15.2, 'upper': 30.9}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .posterior import check_prob

__all__ = ["Allocation", "compute_optimal", "optimal_log_params"]

_GOLDEN = (np.sqrt(5.0) - 1.0) / 2.0


@dataclass
class Allocation:
    """Posterior draws of the compute-optimal allocation at one or more budgets.

    Attributes:
        compute: budgets, shape ``(M,)``.
        params, tokens, tokens_per_param, loss: draws, shape ``(S, M)``; ``loss`` is the
            law's loss at the optimum (no run noise).
        method: ``closed_form`` or ``numerical``.
        group: the arm (grouped fits) or None.
    """

    compute: np.ndarray
    params: np.ndarray
    tokens: np.ndarray
    tokens_per_param: np.ndarray
    loss: np.ndarray
    method: str
    group: str | None = None

    def interval(self, name: str, prob: float = 0.95) -> dict[str, np.ndarray]:
        """Median and equal-tailed interval of one quantity, per budget."""
        prob = check_prob(prob)
        draws = getattr(self, name)
        return {
            "median": np.median(draws, axis=0),
            "lower": np.quantile(draws, (1 - prob) / 2, axis=0),
            "upper": np.quantile(draws, 1 - (1 - prob) / 2, axis=0),
        }

    def to_dict(self, prob: float = 0.95) -> dict:
        """The ``bayescale allocate --json`` object (DESIGN.md contract).

        ``{"params", "tokens", "tokens_per_param", "loss"}``, each ``{"median","lower","upper"}``;
        scalars for a single budget, lists otherwise.
        """
        out = {}
        for name in ("params", "tokens", "tokens_per_param", "loss"):
            stats = self.interval(name, prob)
            out[name] = {k: _scalar_or_list(v) for k, v in stats.items()}
        return out


def _scalar_or_list(values: np.ndarray):
    values = np.atleast_1d(values)
    return float(values[0]) if values.size == 1 else [float(v) for v in values]


def _needs_nd(fit) -> None:
    inputs = set(fit.law.inputs)
    if not {"params", "tokens"} <= inputs:
        raise ValueError(
            f"law {fit.law.name!r} depends on {', '.join(sorted(inputs))} only: compute-optimal "
            "allocation needs a law of both params (N) and tokens (D), e.g. chinchilla"
        )


def _budgets(compute) -> np.ndarray:
    c = np.atleast_1d(np.asarray(compute, np.float64))
    if c.ndim != 1 or not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise ValueError(f"compute must be finite and > 0 but got {np.asarray(compute).tolist()}")
    return c


def optimal_log_params(fit, compute, group=None, method: str = "auto") -> tuple[np.ndarray, str]:
    """``log N_opt`` per draw and budget, shape ``(S, M)``, and the method used.

    Args:
        fit: a :class:`~bayescale.posterior.Fit` of a law in N and D.
        compute: budget(s) in FLOPs.
        group: the arm, for grouped fits.
        method: ``auto`` (closed form where the law has one), ``closed_form`` or ``numerical``.
    """
    _needs_nd(fit)
    if method not in ("auto", "closed_form", "numerical"):
        raise ValueError(f"method must be 'auto', 'closed_form' or 'numerical' but got {method!r}")
    c = _budgets(compute)
    codes = fit._group_codes(group, len(c))
    k = float(fit.info.get("flops_per_token", 6.0))
    log_c6 = np.log(c / k)[None, :]
    closed = fit.law.name in ("chinchilla", "gadre2024")
    if method == "closed_form" and not closed:
        raise ValueError(
            f"law {fit.law.name!r} has no closed-form allocation; use method='numerical'"
        )
    if closed and method != "numerical":
        rep = _reported_for_rows(fit, codes)
        alpha = rep["alpha"] if "alpha" in rep else rep["eta"]
        beta = rep["beta"] if "beta" in rep else rep["eta"]
        log_g = (np.log(alpha * rep["A"]) - np.log(beta * rep["B"])) / (alpha + beta)
        return log_g + beta / (alpha + beta) * log_c6, "closed_form"
    return _numerical(fit, codes, log_c6), "numerical"


def _reported_for_rows(fit, codes: np.ndarray) -> dict[str, np.ndarray]:
    reported = fit.reported()
    out = {}
    for name, value in reported.items():
        flat = value.reshape(-1, *value.shape[2:])
        out[name] = flat[:, codes] if flat.ndim == 2 else flat[:, None]
    return out


def _numerical(fit, codes: np.ndarray, log_c6: np.ndarray) -> np.ndarray:
    """Golden-section search for argmin over u = log N of L(e^u, C/(k e^u)), per draw and budget."""
    import jax.numpy as jnp

    model = fit.model
    names = fit.law.parameter_names
    flat = {n: fit.flat(n) for n in names}
    theta = {
        n: jnp.asarray(v)[..., None] for n, v in model.theta_for_rows(flat, codes, names).items()
    }
    ref = jnp.asarray([model.log_ref.get("params", 0.0), model.log_ref.get("tokens", 0.0)])
    s = next(iter(flat.values())).shape[0]
    log_c6_j = jnp.broadcast_to(jnp.asarray(log_c6)[..., None], (s, log_c6.shape[1], 1))
    return np.asarray(_golden_search(fit.law)(theta, log_c6_j, ref))[..., 0]


_SEARCHES: dict = {}


def _golden_search(law):
    """A jitted minimiser of the law's log loss along C = kND (cached per law)."""
    import jax
    import jax.numpy as jnp

    key = (law.name, law.options, id(law.log_loss_fn))
    if key in _SEARCHES:
        return _SEARCHES[key]

    def search(theta, log_c6, ref):
        def objective(u):  # u: log N, broadcast against theta (S, M, 1)
            return law.log_loss(theta, {"params": u - ref[0], "tokens": log_c6 - u - ref[1]})

        # bracket: a grid of log N within e^{+-9.5} of the square-root split
        grid = 0.5 * log_c6 + jnp.linspace(-9.5, 9.5, 97)
        values = objective(grid)
        best = jnp.argmin(values, axis=-1)[..., None]
        step = grid[..., 1:2] - grid[..., 0:1]
        a = jnp.take_along_axis(grid, best, axis=-1) - step
        b = a + 2 * step
        x1, x2 = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
        f1, f2 = objective(x1), objective(x2)

        def body(_, state):
            a, b, x1, x2, f1, f2 = state
            left = f1 < f2  # minimum in [a, x2]
            a_new = jnp.where(left, a, x1)
            b_new = jnp.where(left, x2, b)
            x1_new = jnp.where(left, b_new - _GOLDEN * (b_new - a_new), x2)
            x2_new = jnp.where(left, x1, a_new + _GOLDEN * (b_new - a_new))
            probe = jnp.where(left, x1_new, x2_new)  # the one new point to evaluate
            f_probe = objective(probe)
            f1_new = jnp.where(left, f_probe, f2)
            f2_new = jnp.where(left, f1, f_probe)
            return a_new, b_new, x1_new, x2_new, f1_new, f2_new

        a, b, *_ = jax.lax.fori_loop(0, 80, body, (a, b, x1, x2, f1, f2))
        return 0.5 * (a + b)

    _SEARCHES[key] = jax.jit(search)
    return _SEARCHES[key]


def compute_optimal(fit, compute, group=None, method: str = "auto") -> Allocation:
    """Posterior of the compute-optimal N, D, D/N and loss at budget(s) ``compute``.

    Args:
        fit: a fit of a law in N and D (chinchilla, gadre2024, kaplan_nd, custom).
        compute: FLOP budget(s).
        group: arm of a grouped fit.
        method: ``auto``, ``closed_form`` (chinchilla, gadre2024) or ``numerical``.

    Example:
        >>> alloc = compute_optimal(fit, [1e22, 1e24])                  # doctest: +SKIP
        >>> alloc.interval("params")["median"]                         # doctest: +SKIP
    """
    c = _budgets(compute)
    log_n, used = optimal_log_params(fit, c, group=group, method=method)
    k = float(fit.info.get("flops_per_token", 6.0))
    params = np.exp(log_n)
    tokens = c[None, :] / (k * params)
    codes = fit._group_codes(group, len(c))
    loss = _law_loss_at(fit, params, tokens, codes)
    return Allocation(
        c, params, tokens, tokens / params, loss, used, None if group is None else str(group)
    )


def _law_loss_at(fit, params: np.ndarray, tokens: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Noise-free loss per draw at per-draw inputs ``(S, M)``."""
    import jax.numpy as jnp

    model = fit.model
    names = fit.law.parameter_names
    flat = {n: fit.flat(n) for n in names}
    theta = {n: jnp.asarray(v) for n, v in model.theta_for_rows(flat, codes, names).items()}
    x = {
        "params": np.log(params) - model.log_ref.get("params", 0.0),
        "tokens": np.log(tokens) - model.log_ref.get("tokens", 0.0),
    }
    return np.exp(np.asarray(fit.law.log_loss(theta, {k: jnp.asarray(v) for k, v in x.items()})))
