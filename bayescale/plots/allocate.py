"""Allocation figures: iso-loss contours with the frontier, N_opt(C), D/N against C.

Each function takes ``ax=None`` (a new figure when None) and returns the Axes; none calls
``plt.show()``. Bands are equal-tailed posterior intervals of the law (no run noise).

Example:
    >>> from bayescale.plots.allocate import plot_optimal_params   # doctest: +SKIP
    >>> ax = plot_optimal_params(fit, (1e18, 1e25))                  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from .style import (
    AXIS_LABELS,
    PALETTE,
    budget_pair_grid,
    finish_log_axis,
    finish_loss_axis,
    format_count,
    format_flops,
    styled,
)

__all__ = ["plot_isoloss", "plot_optimal_params", "plot_overtraining", "plot_tokens_per_param"]

_FRONTIER = PALETTE[0]
_RUNS = PALETTE[1]
_BASELINE = PALETTE[2]


def _axes(ax, size=(4.2, 3.0)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def _runs_mask(fit, group) -> np.ndarray:
    runs = fit.runs
    if group is None or runs.group is None:
        return np.ones(runs.n_runs, bool)
    return np.asarray(runs.group) == runs.group_names.index(str(group))


def _grid(fit, compute, group, points: int) -> np.ndarray:
    """An explicit grid, a (lo, hi) pair, or the smallest run's compute to 1000x the largest."""
    if compute is None:
        observed = fit.runs.compute
        if observed is None:
            raise ValueError("the fit's runs carry no compute: give compute=(lo, hi)")
        observed = observed[_runs_mask(fit, group)]
        compute = (observed.min(), observed.max() * 1e3)
    pair = budget_pair_grid(compute, points)
    if pair is not None:
        return pair
    values = np.asarray(compute, np.float64)
    if values.ndim != 1 or values.size < 2 or np.any(values <= 0):
        raise ValueError("compute must be (lo, hi) or an increasing grid of positive budgets")
    return values


def _interval(draws: np.ndarray, prob: float):
    q = ((1 - prob) / 2, 0.5, 1 - (1 - prob) / 2)
    return np.quantile(draws, q, axis=0)


@styled
def plot_isoloss(
    fit,
    compute=None,
    *,
    group=None,
    prob: float = 0.95,
    levels=None,
    observed: bool = True,
    points: int = 40,
    ax=None,
):
    """Iso-loss contours of the law in (N, D), the compute-optimal frontier and its band.

    Contours are the posterior median loss at each (N, D); dotted grey lines are
    iso-FLOP lines ``C = kND`` at the grid's decades. The frontier is the median
    ``(N_opt(C), D_opt(C))``; the band joins the ``prob`` interval's ends of N_opt along
    each iso-FLOP line.

    Args:
        fit: a fit of a law in N and D.
        compute: budgets or ``(lo, hi)``; default the smallest run to 1000x the largest.
        group: arm of a grouped fit.
        prob: band probability.
        levels: contour levels (losses); default 12 levels spanning the plotted range.
        observed: overlay the runs.
        points: grid points per axis for the contours.
        ax: matplotlib Axes (None: a new figure).

    Example:
        >>> ax = plot_isoloss(fit, (1e18, 1e24))   # doctest: +SKIP
    """
    from .._util import check_prob
    from ..allocate.optimal import compute_optimal

    prob = check_prob(prob)
    grid = _grid(fit, compute, group, 30)
    alloc = compute_optimal(fit, grid, group=group)
    k = float(fit.info.get("flops_per_token", 6.0))
    n_low, n_mid, n_high = _interval(alloc.params, prob)
    mask = _runs_mask(fit, group)
    n_obs = fit.runs.params[mask] if fit.runs.params is not None else np.array([])
    d_obs = fit.runs.tokens[mask] if fit.runs.tokens is not None else np.array([])
    n_span = np.concatenate([n_low, n_high, n_obs])
    d_span = np.concatenate([grid / (k * n_low), grid / (k * n_high), d_obs])
    n_axis = np.geomspace(n_span.min() / 2, n_span.max() * 2, points)
    d_axis = np.geomspace(d_span.min() / 2, d_span.max() * 2, points)
    nn, dd = np.meshgrid(n_axis, d_axis)
    codes = fit._group_codes(group, nn.size)
    loss = np.median(
        np.exp(fit.log_loss_draws({"params": nn.ravel(), "tokens": dd.ravel()}, codes)), axis=0
    ).reshape(nn.shape)
    ax = _axes(ax, (4.2, 3.4))
    if levels is None:
        levels = np.geomspace(loss.min() * 1.001, np.quantile(loss, 0.9), 12)
    contours = ax.contour(nn, dd, loss, levels=levels, cmap="viridis", linewidths=0.8)
    ax.clabel(contours, fmt=lambda v: f"{v:.3g}", fontsize=6, inline=True)
    for c in 10.0 ** np.arange(np.ceil(np.log10(grid[0])), np.floor(np.log10(grid[-1])) + 1):
        ax.plot(n_axis, c / (k * n_axis), color="0.6", lw=0.6, ls=":", zorder=1)
    band_n = np.concatenate([n_low, n_high[::-1]])
    band_c = np.concatenate([grid, grid[::-1]])
    ax.fill(band_n, band_c / (k * band_n), color=_FRONTIER, alpha=0.2, lw=0)
    ax.plot(n_mid, grid / (k * n_mid), color=_FRONTIER, label="compute-optimal (median)")
    if observed and n_obs.size:
        ax.scatter(n_obs, d_obs, s=8, color=_RUNS, edgecolor="white", lw=0.3, zorder=3)
    ax.set_xlim(n_axis[0], n_axis[-1])
    ax.set_ylim(d_axis[0], d_axis[-1])
    finish_log_axis(ax.xaxis, "params")
    finish_log_axis(ax.yaxis, "tokens")
    ax.set_xlabel(AXIS_LABELS["params"])
    ax.set_ylabel(AXIS_LABELS["tokens"])
    ax.legend(loc="upper left")
    return ax


@styled
def plot_optimal_params(
    fit,
    compute=None,
    *,
    group=None,
    prob: float = 0.95,
    observed: bool = True,
    isoflop=None,
    points: int = 40,
    ax=None,
):
    """N_opt(C): the posterior median and band, the runs, and optionally isoFLOP vertices.

    Args:
        fit: a fit of a law in N and D.
        compute: budgets or ``(lo, hi)``; default the smallest run to 1000x the largest.
        group: arm of a grouped fit.
        prob: band probability.
        observed: overlay the runs at (C, N) (runs off the frontier sit above or below it).
        isoflop: a :func:`~bayescale.allocate.isoflop.isoflop_table` frame: its parabola vertices
            (with bootstrap bars) and best runs are drawn per budget.
        points: budgets on the default grid.
        ax: matplotlib Axes (None: a new figure).

    Example:
        >>> ax = plot_optimal_params(fit, (1e16, 1e22), isoflop=table)   # doctest: +SKIP
    """
    from .._util import check_prob
    from ..allocate.optimal import compute_optimal

    prob = check_prob(prob)
    grid = _grid(fit, compute, group, points)
    alloc = compute_optimal(fit, grid, group=group)
    low, mid, high = _interval(alloc.params, prob)
    ax = _axes(ax)
    ax.fill_between(grid, low, high, color=_FRONTIER, alpha=0.2, lw=0)
    ax.plot(grid, mid, color=_FRONTIER, label=f"posterior N_opt ({100 * prob:g}%)")
    if observed and fit.runs.compute is not None:
        mask = _runs_mask(fit, group)
        ax.scatter(
            fit.runs.compute[mask],
            fit.runs.params[mask],
            s=8,
            color="0.55",
            edgecolor="white",
            lw=0.3,
            zorder=2,
            label="runs",
        )
    if isoflop is not None:
        table = isoflop
        ax.scatter(
            table["compute"],
            table["best_params"],
            marker="s",
            s=14,
            color=_RUNS,
            zorder=4,
            label="best run per budget",
        )
        if "parabola_params" in table:
            used = table["parabola_used"].to_numpy(bool)
            t = table[used]
            err = np.vstack(
                [
                    t["parabola_params"] - t["parabola_lower"],
                    t["parabola_upper"] - t["parabola_params"],
                ]
            )
            ax.errorbar(
                t["compute"],
                t["parabola_params"],
                yerr=err,
                fmt="D",
                ms=3.5,
                color=_BASELINE,
                lw=0.8,
                zorder=5,
                label="parabola vertex (Approach 2)",
            )
    finish_log_axis(ax.xaxis, "compute")
    finish_log_axis(ax.yaxis, "params")
    ax.set_xlabel(AXIS_LABELS["compute"])
    ax.set_ylabel("Compute-optimal N")
    ax.legend(loc="upper left")
    return ax


@styled
def plot_tokens_per_param(
    fit,
    compute=None,
    *,
    group=None,
    prob: float = 0.95,
    reference: float | None = 20.0,
    points: int = 40,
    ax=None,
):
    """Compute-optimal tokens per parameter D/N against C, median and band.

    Args:
        fit: a fit of a law in N and D.
        compute: budgets or ``(lo, hi)``; default the smallest run to 1000x the largest.
        group: arm of a grouped fit.
        prob: band probability.
        reference: a horizontal line (Chinchilla's ~20 tokens per parameter); None for none.
        points: budgets on the default grid.
        ax: matplotlib Axes (None: a new figure).

    Example:
        >>> ax = plot_tokens_per_param(fit, (1e18, 1e25))   # doctest: +SKIP
    """
    from .._util import check_prob
    from ..allocate.optimal import compute_optimal

    prob = check_prob(prob)
    grid = _grid(fit, compute, group, points)
    alloc = compute_optimal(fit, grid, group=group)
    low, mid, high = _interval(alloc.tokens_per_param, prob)
    ax = _axes(ax)
    ax.fill_between(grid, low, high, color=_FRONTIER, alpha=0.2, lw=0)
    ax.plot(grid, mid, color=_FRONTIER, label=f"posterior D/N ({100 * prob:g}%)")
    if reference is not None:
        ax.axhline(reference, color="0.4", ls="--", lw=0.8, label=f"{reference:g} tokens/param")
    finish_log_axis(ax.xaxis, "compute")
    # plain ticks (10, 20, 50) on a log axis, as for loss
    finish_loss_axis(ax.yaxis, label="Compute-optimal tokens per parameter")
    ax.set_xlabel(AXIS_LABELS["compute"])
    ax.legend(loc="best")
    return ax


@styled
def plot_overtraining(result, *, prob: float = 0.95, ax=None):
    """Extra compute of an over-trained model against its tokens per parameter.

    Draws ``compute_factor`` (the over-trained run's compute over a compute-optimal run's
    compute for the same loss) with its band, from :func:`~bayescale.allocate.overtraining`.

    Example:
        >>> ax = plot_overtraining(overtraining(fit, 1.4e9, [5, 20, 80, 320]))   # doctest: +SKIP
    """
    from .._util import check_prob

    prob = check_prob(prob)
    low, mid, high = _interval(result.compute_factor, prob)
    ax = _axes(ax)
    m = result.multipliers
    ax.fill_between(m, low, high, color=_FRONTIER, alpha=0.2, lw=0)
    ax.plot(m, mid, marker="o", ms=3, color=_FRONTIER, label=f"median, {100 * prob:g}% band")
    ax.axhline(1.0, color="0.4", ls="--", lw=0.8)
    finish_log_axis(ax.xaxis, "tokens")
    n = format_count(result.params)
    ax.set_xlabel(f"Tokens per parameter M = D/N  (N = {n})")
    ax.set_ylabel("Compute / compute-optimal compute\nfor the same loss")
    ax.set_title(
        f"over-training N = {n}: C from {format_flops(result.compute[0])} "
        f"to {format_flops(result.compute[-1])}"
    )
    ax.legend(loc="upper left")
    return ax
