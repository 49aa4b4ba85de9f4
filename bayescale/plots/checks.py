"""Checks of the fit against its own runs: posterior predictive check and residuals.

:func:`plot_ppc` sets each run's observed loss against the posterior predictive of a new
run at its size (run noise included); :func:`plot_residuals` shows log-loss residuals
against each input of the law.
"""

from __future__ import annotations

import numpy as np

from .fit import loss_mask, run_codes, run_targets
from .style import (
    AXIS_LABELS,
    finish_log_axis,
    finish_loss_axis,
    group_colors,
    new_figure,
    styled,
)

__all__ = ["plot_ppc", "plot_residuals"]


# --------------------------------------------------------------------------- ppc


@styled
def plot_ppc(fit, *, prob: float = 0.95, seed: int = 0, ax=None):
    """Posterior predictive check: each run's observed loss against its prediction.

    The prediction is the posterior predictive of a new run at the same size (run
    noise included), with its equal-tailed ``prob`` interval; runs outside it are drawn
    hollow and counted in the corner.

    Example:
        >>> ax = plot_ppc(fit)  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    pred = fit.predict(**run_targets(fit), prob=prob, seed=seed)
    observed = fit.runs.loss
    lower, median, upper = pred.lower, pred.median, pred.upper
    inside = (observed >= lower) & (observed <= upper)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.6, 4.0), layout="constrained")
    colors = group_colors(fit)
    codes = run_codes(fit)
    for g, gname in enumerate(fit.group_names):
        sel = codes == g
        if not sel.any():
            continue
        c = colors[gname]
        ax.errorbar(
            observed[sel],
            median[sel],
            yerr=[median[sel] - lower[sel], upper[sel] - median[sel]],
            fmt="none",
            ecolor=c,
            alpha=0.35,
            lw=0.8,
        )
        for keep, face in ((sel & inside, c), (sel & ~inside, "white")):
            if keep.any():
                ax.scatter(
                    observed[keep],
                    median[keep],
                    s=14,
                    facecolor=face,
                    edgecolor=c,
                    lw=0.8,
                    zorder=3,
                    label=gname if fit.model.grouped and face == c else None,
                )
    lo = min(observed.min(), lower.min()) * 0.97
    hi = max(observed.max(), upper.max()) * 1.03
    ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8, ls="--", zorder=1)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal", adjustable="box")
    finish_loss_axis(ax.xaxis, "Observed loss (nats/token)")
    finish_loss_axis(ax.yaxis, "Predicted loss, new run (nats/token)")
    ax.text(
        0.03,
        0.97,
        f"{inside.mean():.0%} of {len(observed)} runs inside\ntheir {100 * prob:g}% interval"
        f"\n(hollow: outside)",
        transform=ax.transAxes,
        va="top",
        ha="left",
    )
    if fit.model.grouped:
        ax.legend(loc="lower right")
    return ax


# --------------------------------------------------------------------------- residuals


@styled
def plot_residuals(fit, *, ax=None):
    """Residuals in log loss (observed minus posterior median law) against each input.

    One panel per input of the law (log N and log D for Chinchilla). The grey band is
    +-2 noise scales (posterior median sigma); residuals far outside the bulk are pinned
    to the panel edge as triangles and counted, so outliers never flatten the bulk.

    Args:
        ax: a sequence of Axes, one per input (default: a new figure).

    Returns:
        The Figure.

    Example:
        >>> fig = plot_residuals(fit)  # doctest: +SKIP
    """
    inputs = list(fit.law.inputs)
    if ax is None:
        fig, axes = new_figure(len(inputs), len(inputs), (3.4, 2.6), sharey=True)
    else:
        axes = list(np.atleast_1d(ax))
        if len(axes) != len(inputs):
            raise ValueError(f"ax must hold {len(inputs)} Axes (one per input) but got {len(axes)}")
        fig = axes[0].figure
    values = {k: fit.runs.input(k) for k in inputs}
    codes = run_codes(fit)
    log_mu = np.median(fit.log_loss_draws(values, codes), axis=0)
    resid = np.log(fit.runs.loss) - log_mu
    sigma = float(np.median(fit.flat("sigma")))
    spread = float(np.quantile(np.abs(resid), 0.95))
    limit = max(3.0 * sigma, spread) * 1.25
    if np.abs(resid).max() <= 1.6 * limit:
        limit = float(np.abs(resid).max()) * 1.12
    colors = group_colors(fit)
    mask = loss_mask(fit)
    for panel, name in zip(axes, inputs, strict=True):
        xv = values[name]
        panel.axhspan(-2 * sigma, 2 * sigma, color="0.85", lw=0, zorder=0)
        panel.axhline(0.0, color="0.3", lw=0.8)
        for g, gname in enumerate(fit.group_names):
            sel = codes == g
            c = colors[gname]
            shown = sel & (np.abs(resid) <= limit)
            for keep, face in ((shown & mask, c), (shown & ~mask, "none")):
                if keep.any():
                    panel.scatter(xv[keep], resid[keep], s=12, facecolor=face, edgecolor=c, lw=0.7)
            for sign, marker in ((1, "^"), (-1, "v")):
                far = sel & (sign * resid > limit)
                if far.any():
                    panel.scatter(
                        xv[far],
                        np.full(far.sum(), sign * limit * 0.94),
                        marker=marker,
                        s=22,
                        color=c,
                        clip_on=False,
                    )
        n_far = int((np.abs(resid) > limit).sum())
        if n_far:  # in the title row, where it cannot cover a point
            panel.set_title(
                f"▲▼ {n_far} run{'s' if n_far > 1 else ''} beyond ±{limit:.2g}",
                loc="right",
                fontsize=7,
            )
        panel.set_ylim(-limit, limit)
        finish_log_axis(panel.xaxis, name)
        panel.set_xlabel(AXIS_LABELS.get(name, f"{name} (named input)"))
    axes[0].set_ylabel("Residual log loss (observed − fit)")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(color="0.85", label=f"±2σ, σ = {sigma:.2g}")]
    if fit.model.grouped:
        handles += [
            Line2D([], [], color=colors[g], marker="o", ls="none", ms=4, label=g)
            for g in fit.group_names
        ]
    if not mask.all():
        handles.append(
            Line2D(
                [],
                [],
                color="0.3",
                marker="o",
                mfc="none",
                ls="none",
                ms=4,
                label="not in loss fit",
            )
        )
    if ax is None:
        fig.legend(handles=handles, loc="outside upper center", ncols=len(handles))
    else:
        axes[-1].legend(handles=handles, loc="upper right")
    return fig
