r"""Crossover posterior: where (if anywhere) two arms' compute-optimal frontiers cross.

See :class:`Crossover` for the classification of draws (already / in range / never /
multiple) and :func:`crossover` for the algorithm (a log grid and vectorised bisection).

Example:
    >>> result = crossover(fit, "llama", "mlstm", (1e19, 1e24))   # doctest: +SKIP
    >>> result.p("never")                                          # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .._util import check_prob
from ._arms import resolve_arms
from ._metrics import clean, gate, mcse

__all__ = ["CLASSES", "Crossover", "crossover"]

#: The classes of a draw, in the order of :attr:`Crossover.classes` codes.
CLASSES = ("already", "in_range", "never", "multiple")


@dataclass
class Crossover:
    r"""Posterior of the compute at which arms A and B cross along their frontiers.

    For each draw, :math:`\Delta(C) = \log L_A(C) - \log L_B(C)` with each arm at its own
    compute-optimal allocation. With :math:`C_0` the smallest observed compute of the two
    arms and ``[lo, hi]`` the requested range, roots of :math:`\Delta` are counted on
    :math:`[\min(C_0, lo), hi]` (a fine log grid, each root refined by bisection):

    * ``already``: exactly one root, in :math:`[C_0, lo)`: the arms crossed between the
      smallest observed run and the range start, and the order at ``lo`` holds to ``hi``;
    * ``in_range``: exactly one root, in :math:`[lo, hi]`;
    * ``never``: no root in :math:`[\min(C_0, lo), hi]`;
    * ``multiple``: two or more roots there.

    The classes partition the draws. ``median``/``lower``/``upper`` are quantiles of the
    root *conditional on* ``in_range``; :meth:`cdf` is the defective CDF
    ``P(in_range and root <= C)``, whose missing mass ``1 - p_in_range`` is
    ``p_already + p_never + p_multiple``.

    Attributes:
        arms: ``(A, B)``.
        compute_range: ``(lo, hi)``.
        observed_min: :math:`C_0` (None when the runs carry no compute).
        classes: per-draw class index into :data:`CLASSES`, ``(S,)``.
        roots: per-draw crossing compute for ``in_range`` draws, nan otherwise.
        a_better_lo, a_better_hi: per-draw indicators that A's law is lower at lo / hi.
    """

    arms: tuple[str, str]
    compute_range: tuple[float, float]
    observed_min: float | None
    classes: np.ndarray
    roots: np.ndarray
    a_better_lo: np.ndarray
    a_better_hi: np.ndarray
    chains: int
    n_per_chain: int
    paired: bool
    prob: float = 0.95
    diagnostics: dict | None = None
    warning: str | None = None

    def p(self, name: str) -> float:
        """Probability of a class: ``already``, ``in_range``, ``never`` or ``multiple``."""
        return float(np.mean(self.classes == CLASSES.index(name)))

    @property
    def conditional_roots(self) -> np.ndarray:
        return self.roots[self.classes == CLASSES.index("in_range")]

    def interval(self) -> dict[str, float | None]:
        """Median and equal-tailed interval of the crossing, given it is in range."""
        roots = self.conditional_roots
        if roots.size == 0:
            return {"median": None, "lower": None, "upper": None}
        q = np.quantile(np.log(roots), [0.5, (1 - self.prob) / 2, 1 - (1 - self.prob) / 2])
        return dict(zip(("median", "lower", "upper"), np.exp(q).tolist(), strict=True))

    def cdf(self, compute) -> np.ndarray:
        """Defective CDF ``P(crosses in range at or below C)`` (never reaches 1 unless sure)."""
        c = np.atleast_1d(np.asarray(compute, np.float64))
        roots = np.where(np.isnan(self.roots), np.inf, self.roots)
        return np.mean(roots[:, None] <= c[None, :], axis=0)

    def to_dict(self) -> dict:
        """The ``bayescale crossover --json`` object (DESIGN.md contract plus extras)."""
        a, b = self.arms
        c, d = self.chains, self.n_per_chain
        out = {
            "p_already": self.p("already"),
            "p_in_range": self.p("in_range"),
            "p_never": self.p("never"),
            "p_multiple": self.p("multiple"),
            **self.interval(),
            "arms": [a, b],
            "compute_range": list(self.compute_range),
            "observed_min_compute": self.observed_min,
            "prob": self.prob,
            "paired": self.paired,
            "winner_at_lo": {
                a: float(self.a_better_lo.mean()),
                b: 1 - float(self.a_better_lo.mean()),
            },
            "winner_at_hi": {
                a: float(self.a_better_hi.mean()),
                b: 1 - float(self.a_better_hi.mean()),
            },
            "mcse": clean(
                {f"p_{name}": mcse(self.classes == i, c, d) for i, name in enumerate(CLASSES)}
            ),
            "diagnostics": self.diagnostics,
        }
        if self.warning:
            out["warning"] = self.warning
        return out

    def __repr__(self) -> str:
        i = self.interval()
        where = "" if i["median"] is None else f", median {i['median']:.3g}"
        return (
            f"<Crossover {self.arms[0]} vs {self.arms[1]}: P(in range) "
            f"{self.p('in_range'):.2f}{where}, P(never) {self.p('never'):.2f}>"
        )


def _check_range(compute_range) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in compute_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"compute_range must be two numbers (LO, HI) but got {compute_range!r}"
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
        raise ValueError(f"compute_range must satisfy 0 < LO < HI but got LO={lo:g}, HI={hi:g}")
    return lo, hi


def _interpolate(u: np.ndarray, u_grid: np.ndarray, values: np.ndarray, j: np.ndarray):
    """Linear interpolation of per-draw ``values`` (S', G) at ``u`` inside interval ``j``."""
    rows = np.arange(len(u))
    w = (u - u_grid[j]) / (u_grid[j + 1] - u_grid[j])
    return (1 - w) * values[rows, j] + w * values[rows, j + 1]


def crossover(
    source,
    arm_a: str,
    arm_b: str,
    compute_range,
    *,
    grid: int = 300,
    iterations: int = 40,
    prob: float = 0.95,
    seed: int = 0,
    at: Mapping[str, float] | None = None,
) -> Crossover:
    """Where (if anywhere) arm A's compute-optimal frontier crosses arm B's.

    Each draw's log-loss difference is evaluated on a log grid of ``grid`` budgets from
    ``min(C_0, lo)`` to ``hi`` (``lo`` a node), sign changes are counted and classified
    (see :class:`Crossover`), and each in-range root is refined by ``iterations`` steps of
    bisection, vectorised over draws. Between grid nodes ``log N_opt`` is interpolated
    linearly (exact for chinchilla/gadre2024, second-order accurate in the loss otherwise).

    Args:
        source: a grouped Fit or ``{name: Fit}``.
        arm_a, arm_b: the two arms.
        compute_range: ``(lo, hi)`` in FLOPs.
        grid: grid points (>= 50).
        iterations: bisection steps per root.
        prob: probability of the conditional interval.
        seed: seed of the random pairing of unpaired arms.
        at: named inputs held fixed along the frontiers, ``{"U": 5e9}`` (each arm's
            frontier is then its loss-optimal split under that constraint).

    Example:
        >>> result = crossover(fit, "llama", "mlstm", (1e19, 1e24))   # doctest: +SKIP
        >>> result.to_dict()["p_in_range"]                            # doctest: +SKIP
    """
    prob = check_prob(prob)
    lo, hi = _check_range(compute_range)
    if not isinstance(grid, int | np.integer) or grid < 50:
        raise ValueError(f"grid must be an integer >= 50 but got {grid!r}")
    if str(arm_a) == str(arm_b):
        raise ValueError(f"crossover needs two different arms but got {arm_a!r} twice")
    arm_set = resolve_arms(source, [arm_a, arm_b], seed=seed, at=at)
    a, b = arm_set.arms
    observed = np.concatenate([a.observed_compute(), b.observed_compute()])
    observed_min = float(observed.min()) if observed.size else None
    start = lo if observed_min is None else min(observed_min, lo)
    if start < lo:
        share = math.log(lo / start) / math.log(hi / start)
        n_before = int(np.clip(round(grid * share), 10, grid - 10))
        before = np.linspace(math.log(start), math.log(lo), n_before + 1)[:-1]
    else:
        before = np.zeros(0)
    u = np.concatenate([before, np.linspace(math.log(lo), math.log(hi), grid - len(before))])
    i_lo = len(before)
    log_n = {}
    diff = None
    for arm in (a, b):
        log_n[arm.name] = arm.frontier_log_params(np.exp(u)) if arm.allocates() else None
        value = arm.frontier_log_loss(u[None, :], log_n[arm.name])
        diff = value if diff is None else diff - value
    positive = diff > 0
    change = positive[:, 1:] != positive[:, :-1]  # interval j = [u_j, u_{j+1}]
    n_before_roots = change[:, :i_lo].sum(axis=1)
    n_in = change[:, i_lo:].sum(axis=1)
    classes = np.full(diff.shape[0], CLASSES.index("multiple"))
    classes[(n_before_roots == 0) & (n_in == 0)] = CLASSES.index("never")
    classes[(n_before_roots == 1) & (n_in == 0)] = CLASSES.index("already")
    in_range = (n_before_roots == 0) & (n_in == 1)
    classes[in_range] = CLASSES.index("in_range")
    roots = np.full(diff.shape[0], np.nan)
    draws = np.flatnonzero(in_range)
    if draws.size:
        j = i_lo + np.argmax(change[draws, i_lo:], axis=1)
        left, right = u[j], u[j + 1]
        left_positive = positive[draws, j]

        def delta_positive(point):
            total = None
            for arm in (a, b):
                grid_n = log_n[arm.name]
                ln = None if grid_n is None else _interpolate(point, u, grid_n[draws], j)
                value = arm.frontier_log_loss(
                    point[:, None], None if ln is None else ln[:, None], draws=draws
                )[:, 0]
                total = value if total is None else total - value
            return total > 0

        for _ in range(int(iterations)):
            mid = 0.5 * (left + right)
            same = delta_positive(mid) == left_positive
            left = np.where(same, mid, left)
            right = np.where(same, right, mid)
        roots[draws] = np.exp(0.5 * (left + right))
    warning = gate(arm_set)
    return Crossover(
        (a.name, b.name),
        (lo, hi),
        observed_min,
        classes,
        roots,
        diff[:, i_lo] < 0,
        diff[:, -1] < 0,
        arm_set.chains,
        arm_set.draws,
        arm_set.paired,
        prob,
        arm_set.diagnostics(),
        warning,
    )
