"""Decision figures: P(best) against compute, the crossover CDF, frontiers of every arm.

Each function takes ``ax=None`` (a new figure when None) and returns the Axes; none calls
``plt.show()``. Arms keep their colours from :func:`~bayescale.plots.style.group_colors`.

Example:
    >>> from bayescale.plots.decide import plot_p_best       # doctest: +SKIP
    >>> ax = plot_p_best(fit, compute=(1e19, 1e24))           # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from .style import (
    AXIS_LABELS,
    budget_pair_grid,
    finish_log_axis,
    finish_loss_axis,
    format_flops,
    group_colors,
    styled,
)

__all__ = ["plot_crossover", "plot_frontiers", "plot_p_best"]


def _axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(4.2, 3.0), layout="constrained")
    return ax


def _compute_grid(source, compute, arms, points: int) -> np.ndarray:
    """An explicit grid, a (lo, hi) pair, or by default the smallest run to 1000x the largest."""
    from ..decide._arms import resolve_arms

    if compute is None:
        arm_set = resolve_arms(source, arms, min_arms=1)
        observed = np.concatenate([a.observed_compute() for a in arm_set.arms])
        if observed.size == 0:
            raise ValueError("the runs carry no compute: give compute=(lo, hi)")
        compute = (observed.min(), observed.max() * 1e3)
    pair = budget_pair_grid(compute, points)
    if pair is not None:
        return pair
    return np.sort(np.atleast_1d(np.asarray(compute, np.float64)))


@styled
def plot_p_best(
    source,
    compute=None,
    *,
    arms=None,
    metric: str = "loss",
    points: int = 60,
    ax=None,
):
    """P(best) of each arm's law against compute, along the compute-optimal frontiers.

    Args:
        source: a grouped Fit or ``{name: Fit}``.
        compute: budgets, or ``(lo, hi)`` (log-spaced ``points``); default: from the
            smallest run to 1000 times the largest.
        arms: subset of arms.
        metric: ``loss`` or ``downstream``.
        ax: matplotlib Axes (None: a new figure).

    Example:
        >>> ax = plot_p_best(fit, (1e19, 1e24))   # doctest: +SKIP
    """
    from ..decide.decision import p_best_curve

    grid = _compute_grid(source, compute, arms, points)
    curve = p_best_curve(source, grid, arms=arms, metric=metric)
    colors = group_colors(list(curve.columns))
    ax = _axes(ax)
    for name in curve.columns:
        ax.plot(curve.index, curve[name], color=colors[name], label=name)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("P(best)")
    ax.set_xlabel(AXIS_LABELS["compute"])
    finish_log_axis(ax.xaxis, "compute")
    ax.legend(title=f"lowest {metric}")
    return ax


@styled
def plot_crossover(result, *, points: int = 200, ax=None):
    """Defective CDF of the crossover compute, with the mass that never crosses in range.

    The curve is ``P(crosses in range at or below C)``; it stops at ``p_in_range``. A bar
    at the right edge stacks the rest: ``never``, ``already`` (crossed before the range)
    and ``multiple``, so the figure never shows an interval without the chance that there
    is no crossing. The conditional median and interval are marked on the curve.

    Args:
        result: a :class:`~bayescale.decide.Crossover`.
        points: evaluation points of the CDF.
        ax: matplotlib Axes (None: a new figure).

    Example:
        >>> ax = plot_crossover(crossover(fit, "llama", "mlstm", (1e19, 1e24)))   # doctest: +SKIP
    """
    lo, hi = result.compute_range
    grid = np.geomspace(lo, hi, points)
    cdf = result.cdf(grid)
    a, b = result.arms
    ax = _axes(ax)
    ax.plot(grid, cdf, color="#0072B2", label="crosses in range, at or below C")
    p_in = result.p("in_range")
    ax.axhline(p_in, color="#0072B2", lw=0.8, ls=":")
    interval = result.interval()
    if interval["median"] is not None:
        y = float(result.cdf([interval["median"]])[0])
        ax.errorbar(
            [interval["median"]],
            [y],
            xerr=[
                [interval["median"] - interval["lower"]],
                [interval["upper"] - interval["median"]],
            ],
            fmt="o",
            color="#0072B2",
            ms=4,
            capsize=3,
            label=f"median, {100 * result.prob:g}% interval if it crosses",
        )
    # the missing mass, stacked at the right edge (in axes-fraction x, data y)
    transform = ax.get_yaxis_transform()
    bottom = p_in
    for name, color in (("never", "#D55E00"), ("already", "#009E73"), ("multiple", "#CC79A7")):
        mass = result.p(name)
        if mass <= 0:
            continue
        ax.bar(
            1.03,
            mass,
            width=0.05,
            bottom=bottom,
            color=color,
            transform=transform,
            clip_on=False,
            label=f"{name}: {mass:.2f}",
        )
        bottom += mass
    ax.set_ylim(0, 1.02)
    ax.set_xlim(lo, hi)
    ax.set_ylabel("P(crossing)")
    ax.set_xlabel(AXIS_LABELS["compute"])
    finish_log_axis(ax.xaxis, "compute")
    ax.set_title(f"{a} vs {b}: P(in range) {p_in:.2f}, P(never) {result.p('never'):.2f}")
    ax.legend(loc="upper left")
    return ax


@styled
def plot_frontiers(
    source,
    compute=None,
    *,
    arms=None,
    metric: str = "loss",
    prob: float = 0.95,
    points: int = 60,
    observed: bool = True,
    ax=None,
):
    """Each arm's law along its compute-optimal frontier: median and band; runs on top.

    Bands are parameter uncertainty (the laws). Observed runs are plotted at their
    compute; runs off the optimal allocation sit above their arm's frontier.

    Args:
        source: a grouped Fit or ``{name: Fit}``.
        compute: budgets or ``(lo, hi)``; default the smallest run to 1000x the largest.
        arms: subset of arms.
        metric: ``loss`` or ``downstream``.
        prob: band probability.
        observed: overlay the observed runs.
        ax: matplotlib Axes (None: a new figure).

    Example:
        >>> ax = plot_frontiers(fit, (1e18, 1e23))   # doctest: +SKIP
    """
    from .._util import check_prob
    from ..decide._arms import resolve_arms
    from ..decide.decision import frontier_draws

    prob = check_prob(prob)
    grid = _compute_grid(source, compute, arms, points)
    curves = frontier_draws(source, grid, arms=arms, metric=metric)
    colors = group_colors(list(curves))
    ax = _axes(ax)
    q = ((1 - prob) / 2, 0.5, 1 - (1 - prob) / 2)
    for name, draws in curves.items():
        low, mid, high = np.quantile(draws, q, axis=0)
        ax.fill_between(grid, low, high, color=colors[name], alpha=0.2, lw=0)
        ax.plot(grid, mid, color=colors[name], label=name)
    if observed:
        for arm in resolve_arms(source, arms, min_arms=1).arms:
            runs = arm.fit.runs
            values = runs.loss if metric == "loss" else runs.downstream
            if values is None or runs.compute is None:
                continue
            mask = np.ones(runs.n_runs, bool)
            if arm.group is not None:
                names = np.asarray(runs.group_names, dtype=object)[np.asarray(runs.group)]
                mask = names == arm.group
            ax.scatter(
                runs.compute[mask],
                values[mask],
                s=9,
                color=colors[arm.name],
                edgecolor="white",
                linewidth=0.3,
                zorder=3,
            )
    ax.set_xlabel(AXIS_LABELS["compute"])
    finish_log_axis(ax.xaxis, "compute")
    if metric == "loss":
        finish_loss_axis(ax.yaxis)
    else:
        ax.set_ylabel(AXIS_LABELS["downstream"])
    ax.set_title(
        f"compute-optimal frontiers ({100 * prob:g}% bands), {format_flops(grid[0])}"
        f" to {format_flops(grid[-1])}"
    )
    ax.legend()
    return ax
