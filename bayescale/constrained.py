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

from .allocate import Allocation, _budgets, _jitted_log_loss, _scalar_or_list, _stats, _theta
from .posterior import check_prob

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
        out["loss_cost"] = three("loss_cost")
        out["unlimited"] = {k: three(f"unlimited_{k}") for k in ("params", "tokens", "loss")}
        return out


def _check_at(fit, at: Mapping | None) -> dict[str, float]:
    named = [k for k in fit.law.inputs if k not in ("params", "tokens", "compute")]
    known = tuple(fit.runs.inputs)
    out = {}
    for name, value in dict(at or {}).items():
        if name not in known:
            from ._util import did_you_mean

            extra = did_you_mean(str(name), known) or ";"
            raise ValueError(
                f"unknown input {name!r}{extra} this fit's named inputs are "
                f"{', '.join(known) or '(none)'}"
            )
        v = np.asarray(value, np.float64)
        if v.ndim != 0 or not np.isfinite(v) or v <= 0:
            raise ValueError(f"--at {name} must be one finite number > 0 but got {value!r}")
        out[name] = float(v)
    missing = [k for k in named if k not in out]
    if missing:
        flags = ", ".join(f"--at {k}=VALUE" for k in missing)
        raise ValueError(
            f"law {fit.law.name!r} needs {' and '.join(missing)} to allocate (give {flags})"
        )
    return out


def _search(fit, theta, log_c6: np.ndarray, at: Mapping[str, float], unlimited: bool):
    """argmin over u = log N of the law's log loss at D = C/(kN), per draw and budget.

    A 97-point log grid brackets the minimum, then 60 bisections on the sign of a central
    difference pin it (the law may have kinks, at U_D = U and U_N = N, but is continuous).
    """
    ref = fit.model.log_ref
    law = _jitted_log_loss(fit.law)

    def log_loss(u):
        log_d = log_c6 - u
        x = {"params": u - ref.get("params", 0.0), "tokens": log_d - ref.get("tokens", 0.0)}
        for name, value in at.items():
            log_v = log_d if unlimited and name == "U" else np.log(value)
            x[name] = np.broadcast_to(log_v - ref.get(name, 0.0), np.shape(log_d))
        return np.asarray(law(theta, x))

    grid = 0.5 * log_c6 + np.linspace(-9.5, 9.5, 97)
    values = log_loss(np.broadcast_to(grid, np.broadcast_shapes(grid.shape, theta_shape(theta))))
    grid = np.broadcast_to(grid, values.shape)
    best = np.argmin(values, axis=-1)[..., None]
    step = grid[..., 1:2] - grid[..., 0:1]
    low = np.take_along_axis(grid, best, axis=-1) - step
    high = low + 2 * step
    h = 1e-6
    for _ in range(60):
        mid = 0.5 * (low + high)
        rising = log_loss(mid + h) > log_loss(mid - h)
        low, high = np.where(rising, low, mid), np.where(rising, mid, high)
    u = 0.5 * (low + high)
    return u[..., 0], np.exp(log_loss(u))[..., 0]


def theta_shape(theta) -> tuple[int, ...]:
    return np.broadcast_shapes(*(np.shape(v) for v in theta.values()))


def constrained_optimal(
    fit,
    compute,
    at: Mapping[str, float] | None = None,
    group=None,
    *,
    flops_per_token: float | None = None,
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
    extra: dict = {}
    if "U" in at:
        log_n_free, loss_free = _search(fit, theta, log_c6, at, unlimited=True)
        extra = {
            "epochs": tokens / at["U"],
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
