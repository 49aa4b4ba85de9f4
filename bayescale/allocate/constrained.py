"""The loss-optimal split of a FLOP budget when a named input is fixed (only U unique tokens).

:func:`constrained_optimal` minimises the law's loss along ``C = k N D`` per posterior draw
with the named inputs held at ``at`` (``{"U": 5e9}``): for ``muennighoff2023`` this is
Muennighoff et al.'s allocation under a data constraint. It reports the optimum's N, D,
epochs ``D/U`` and loss with intervals, and, for a law of ``U``, what the constraint costs:
the same search with every token unique (``U = D``), and the loss difference per draw.

Example:
    >>> alloc = constrained_optimal(fit, 1e21, at={"U": 5e9})       # doctest: +SKIP
    >>> alloc.to_dict()["epochs"]["median"], alloc.to_dict()["loss_cost"]["median"]  # doctest: +SKIP
    (11.8, 0.041)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .._util import check_prob
from .optimal import Allocation, _scalar_or_list, _stats
from .optimum import _budgets, _theta

__all__ = ["ConstrainedAllocation", "constrained_optimal"]

#: extra quantities of a constrained allocation (besides params, tokens, ..., loss)
_EXTRA = ("epochs", "unlimited_params", "unlimited_tokens", "unlimited_loss", "loss_cost")


@dataclass
class ConstrainedAllocation(Allocation):
    """An :class:`~bayescale.allocate.Allocation` with named inputs held fixed.

    Attributes:
        at: the fixed named inputs, ``{"U": 5e9}``.
        epochs: draws of ``D/U`` at the optimum, ``(S, M)`` (None without ``U``).
        unlimited_params, unlimited_tokens, unlimited_loss: the optimum with every token
            unique (``U = D``), None without ``U``.
        loss_cost: ``loss - unlimited_loss`` per draw: what the data constraint costs.
    """

    at: dict = field(default_factory=dict)
    epochs: np.ndarray | None = None
    unlimited_params: np.ndarray | None = None
    unlimited_tokens: np.ndarray | None = None
    unlimited_loss: np.ndarray | None = None
    loss_cost: np.ndarray | None = None

    def interval(self, name: str, prob: float = 0.95) -> dict[str, np.ndarray]:
        """Median and equal-tailed interval of one quantity (also ``epochs``, ``loss_cost``,
        ``unlimited_*``), per budget.

        Example:
            >>> alloc.interval("epochs")["median"]      # doctest: +SKIP
        """
        if name in _EXTRA:
            if getattr(self, name) is None:
                raise ValueError(f"{name} needs a law of U (unique tokens)")
            return _stats(getattr(self, name), check_prob(prob))
        return super().interval(name, prob)

    def to_dict(self, prob: float = 0.95) -> dict:
        """``allocate --json``'s contract keys plus ``at``, ``epochs``, ``loss_cost`` and
        ``unlimited`` (``{"params", "tokens", "loss"}``), each ``{"median","lower","upper"}``.

        Example:
            >>> sorted(alloc.to_dict())[:3]             # doctest: +SKIP
            ['at', 'epochs', 'loss']
        """
        out = super().to_dict(prob)
        out["at"] = {k: float(v) for k, v in self.at.items()}
        if self.epochs is None:
            return out

        def three(name):
            return {k: _scalar_or_list(v) for k, v in self.interval(name, prob).items()}

        out["epochs"] = three("epochs")
        if self.loss_cost is not None:
            out["loss_cost"] = three("loss_cost")
            out["unlimited"] = {k: three(f"unlimited_{k}") for k in ("params", "tokens", "loss")}
        return out


def _check_at(fit, at: Mapping | None, what: str = "to allocate") -> dict[str, float]:
    named = [k for k in fit.law.inputs if k not in ("params", "tokens", "compute")]
    known = tuple(fit.runs.inputs)
    out = {}
    for name, value in dict(at or {}).items():
        if name not in known:
            from .._util import did_you_mean

            extra = did_you_mean(str(name), known) or ";"
            raise ValueError(
                f"unknown input {name!r}{extra} this fit's named inputs are "
                f"{', '.join(known) or '(none)'}"
            )
        v = np.asarray(value, np.float64)
        if v.ndim != 0 or not np.isfinite(v) or v <= 0:
            raise ValueError(f"--at {name} must be one finite number > 0 but got {value!r}")
        out[name] = float(v)
    fit.law.check_inputs(out, what)
    missing = [k for k in named if k not in out]
    if missing:
        flags = ", ".join(f"--at {k}=VALUE" for k in missing)
        raise ValueError(
            f"law {fit.law.name!r} needs {' and '.join(missing)} {what} (give {flags})"
        )
    return out


_SEARCHES: dict = {}


def _search(fit, theta, log_c6: np.ndarray, at: Mapping[str, float], unlimited: bool):
    """argmin over u = log N of the law's log loss at D = C/(kN), per draw and budget.

    A 33-point log grid brackets the minimum, then 50 bisections on the sign of the exact
    derivative (forward-mode autodiff) pin it; the law may have kinks (at U_D = U and
    U_N = N) but is continuous. One jitted function per law and input set.
    """
    import jax.numpy as jnp

    ref = fit.model.log_ref
    names = tuple(sorted(at))
    offsets = {
        "params": ref.get("params", 0.0),
        "tokens": ref.get("tokens", 0.0),
        **{k: ref.get(k, 0.0) for k in names},
    }
    search = _jitted_search(fit.law, names, bool(unlimited))
    theta = {k: jnp.asarray(v) for k, v in theta.items()}
    log_at = {k: jnp.asarray(np.log(at[k])) for k in names}
    u, log_loss = search(theta, jnp.asarray(log_c6), log_at, offsets)
    return np.asarray(u)[..., 0], np.exp(np.asarray(log_loss))[..., 0]


def _jitted_search(law, names: tuple[str, ...], unlimited: bool):
    import jax
    import jax.numpy as jnp

    key = (law.name, law.options, id(law.log_loss_fn), names, unlimited)
    if key in _SEARCHES:
        return _SEARCHES[key]

    def search(theta, log_c6, log_at, offsets):
        def objective(u):
            log_d = log_c6 - u
            x = {"params": u - offsets["params"], "tokens": log_d - offsets["tokens"]}
            for name in names:
                value = log_d if unlimited and name == "U" else log_at[name] + 0.0 * log_d
                x[name] = value - offsets[name]
            return law.log_loss(theta, x)

        def slope(u):
            return jax.jvp(objective, (u,), (jnp.ones_like(u),))[1]

        grid = 0.5 * log_c6 + jnp.linspace(-9.5, 9.5, 33)
        values = objective(grid)
        grid = jnp.broadcast_to(grid, values.shape)
        best = jnp.argmin(values, axis=-1)[..., None]
        step = grid[..., 1:2] - grid[..., 0:1]
        low = jnp.take_along_axis(grid, best, axis=-1) - step
        high = low + 2 * step

        def body(_, state):
            low, high = state
            mid = 0.5 * (low + high)
            rising = slope(mid) > 0
            return jnp.where(rising, low, mid), jnp.where(rising, mid, high)

        low, high = jax.lax.fori_loop(0, 50, body, (low, high))
        u = 0.5 * (low + high)
        return u, objective(u)

    _SEARCHES[key] = jax.jit(search)
    return _SEARCHES[key]


def constrained_optimal(
    fit,
    compute,
    at: Mapping[str, float] | None = None,
    group=None,
    *,
    flops_per_token: float | None = None,
    unlimited: bool = True,
) -> ConstrainedAllocation:
    """Posterior of the loss-optimal N, D (and epochs D/U) at budget(s) ``compute`` with
    the named inputs ``at`` fixed, and what that costs against unlimited unique data.

    Args:
        fit: a fit of a law of params, tokens and named inputs (``muennighoff2023``).
        compute: FLOP budget(s).
        at: the named inputs, e.g. ``{"U": 5e9}`` unique tokens; every named input the law
            reads must be given.
        group: the arm of a grouped fit.
        flops_per_token: ``k`` in ``C = kND`` (default: the fit's, 6).
        unlimited: also search the optimum with every token unique (for ``loss_cost``);
            False skips it (frontiers of decisions need only the constrained one).

    Returns:
        A :class:`ConstrainedAllocation`; for a law of ``U`` its ``unlimited_*`` and
        ``loss_cost`` compare with the optimum where every token is unique (U = D).

    Example:
        >>> alloc = constrained_optimal(fit, [1e20, 1e21], at={"U": 2e9})   # doctest: +SKIP
        >>> alloc.interval("tokens")["median"]                             # doctest: +SKIP
    """
    if not {"params", "tokens"} <= set(fit.law.inputs):
        raise ValueError(
            f"law {fit.law.name!r} depends on {', '.join(fit.law.inputs)}: allocating a budget "
            "needs a law of params and tokens"
        )
    at = _check_at(fit, at)
    c = _budgets(compute)
    k = float(fit.info.get("flops_per_token", 6.0) if flops_per_token is None else flops_per_token)
    if not np.isfinite(k) or k <= 0:
        raise ValueError(f"flops_per_token must be finite and > 0 but got {flops_per_token!r}")
    codes = fit._group_codes(group, len(c))
    theta = {n: np.asarray(v, np.float64)[..., None] for n, v in _theta(fit, codes).items()}
    log_c6 = (np.log(c) - np.log(k))[None, :, None]
    log_n, loss = _search(fit, theta, log_c6, at, unlimited=False)
    params = np.exp(log_n)
    tokens = c[None, :] / (k * params)
    extra: dict = {"epochs": tokens / at["U"]} if "U" in at else {}
    if "U" in at and unlimited:
        log_n_free, loss_free = _search(fit, theta, log_c6, at, unlimited=True)
        extra |= {
            "unlimited_params": np.exp(log_n_free),
            "unlimited_tokens": c[None, :] / (k * np.exp(log_n_free)),
            "unlimited_loss": loss_free,
            "loss_cost": loss - loss_free,
        }
    return ConstrainedAllocation(
        c,
        params,
        tokens,
        tokens / params,
        loss,
        "numerical",
        None if group is None else str(group),
        f"{k:g}ND",
        at=at,
        **extra,
    )
