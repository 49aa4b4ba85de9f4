"""The fit against the data: scaling curves along the ladders that were trained.

Curves are drawn along the ladders that were actually trained (a fixed tokens-per-parameter
multiplier, a fixed model size, or a fixed compute budget for IsoFLOP data), so every band
sits on top of the runs that constrain it. Bands are the posterior of the law itself
(parameter uncertainty); :func:`bayescale.plots.plot_ppc` adds the run-to-run noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .style import (
    AXIS_LABELS,
    finish_log_axis,
    finish_loss_axis,
    group_colors,
    new_figure,
    shade,
    styled,
)

__all__ = ["plot_fit"]

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
_ALONG = ("tokens_per_param", "params", "tokens", "compute")
_SYMBOL = {"params": "N", "tokens": "D", "compute": "C", "tokens_per_param": "D/N"}


# --------------------------------------------------------------------------- helpers


def run_targets(fit) -> dict:
    """Keyword arguments of ``fit.predict`` that reproduce every observed run."""
    runs = fit.runs
    out: dict = {"at": {k: runs.input(k) for k in fit.law.inputs}}
    if fit.model.grouped:
        out["group"] = [fit.group_names[c] for c in runs.group]
    return out


def run_codes(fit) -> np.ndarray:
    """Group code of every run (zeros for an ungrouped fit)."""
    if fit.model.grouped:
        return np.asarray(fit.runs.group, np.int32)
    return np.zeros(fit.runs.n_runs, np.int32)


def loss_mask(fit) -> np.ndarray:
    """True for runs whose loss entered the likelihood (``fit(loss_mask=...)``)."""
    mask = fit.info.get("loss_mask")
    return np.ones(fit.runs.n_runs, bool) if mask is None else np.asarray(mask, bool)


def _fixed_values(fit, along: str) -> np.ndarray:
    runs = fit.runs
    if along == "tokens_per_param":
        return runs.tokens / runs.params
    return np.asarray(getattr(runs, along), np.float64)


def _format_fixed(along: str, value: float) -> str:
    from .style import format_count, format_flops

    if along == "tokens_per_param":
        return f"{value:.3g}"
    return format_flops(value) if along == "compute" else format_count(value)


@dataclass
class Ladders:
    """Which curves to draw: fixed values, a label each, and each run's ladder (-1: none)."""

    values: np.ndarray
    labels: list[str]
    assign: np.ndarray


def find_ladders(values: np.ndarray, along: str, max_ladders: int = 5) -> Ladders:
    """Group runs into ladders by the quantity held fixed along each curve.

    Discrete designs (a few multipliers such as 5, 10, 20, ...) give one ladder per
    value, at most ``max_ladders`` of them spread over the range; continuous ones (the
    IsoFLOP-derived Chinchilla multipliers) are cut into ``max_ladders`` quantile bins,
    each drawn at its median and labelled with its range.

    Example:
        >>> lad = find_ladders(np.array([5.0, 5, 20, 20, 80, 80]), "tokens_per_param", 2)
        >>> lad.labels, lad.assign.tolist()
        (['D/N = 5', 'D/N = 80'], [0, 0, -1, -1, 1, 1])
    """
    logv = np.log10(values)
    order = np.sort(np.unique(np.round(logv, 3)))
    cuts = np.flatnonzero(np.diff(order) > 0.05) + 1
    clusters = np.split(order, cuts)
    symbol = _SYMBOL[along]
    discrete = len(clusters) <= 12 and all(c[-1] - c[0] < 0.05 for c in clusters)
    if discrete:
        rounded = np.array([np.mean(c) for c in clusters])
        member = np.argmin(np.abs(logv[:, None] - rounded[None, :]), axis=1)
        # the exact design values (5, not 10**round(log10 5, 3)): curves sit on the ladder
        centres = np.array([np.mean(logv[member == k]) for k in range(len(rounded))])
        keep = np.unique(np.round(np.linspace(0, len(centres) - 1, min(max_ladders, len(centres)))))
        keep = keep.astype(int)
        nearest = np.argmin(np.abs(logv[:, None] - centres[None, :]), axis=1)
        position = {int(k): i for i, k in enumerate(keep)}
        assign = np.array([position.get(int(n), -1) for n in nearest])
        chosen = 10.0 ** centres[keep]
        labels = [f"{symbol} = {_format_fixed(along, v)}" for v in chosen]
        return Ladders(chosen, labels, assign)
    n_bins = max(1, min(max_ladders, len(order)))
    edges = np.quantile(logv, np.linspace(0, 1, n_bins + 1))
    assign = np.clip(np.searchsorted(edges, logv, side="right") - 1, 0, n_bins - 1)
    chosen, labels = [], []
    for b in range(n_bins):
        inside = logv[assign == b]
        centre = 10.0 ** np.median(inside)
        chosen.append(centre)
        low, high = 10.0 ** inside.min(), 10.0 ** inside.max()
        labels.append(
            f"{symbol} ≈ {_format_fixed(along, centre)} "
            f"({_format_fixed(along, low)}–{_format_fixed(along, high)})"
        )
    return Ladders(np.asarray(chosen), labels, assign)


def _grid_inputs(x: str, along: str, fixed: float, xs: np.ndarray, fpt: float) -> dict:
    if along == "tokens_per_param":
        if x == "params":
            n = xs
        elif x == "tokens":
            n = xs / fixed
        else:
            n = np.sqrt(xs / (fpt * fixed))
        d = fixed * n
    elif along == "params":
        n = np.full_like(xs, fixed)
        d = xs if x == "tokens" else xs / (fpt * n)
    elif along == "tokens":
        d = np.full_like(xs, fixed)
        n = xs if x == "params" else xs / (fpt * d)
    else:  # along == "compute": IsoFLOP curves
        n = xs if x == "params" else fixed / (fpt * xs)
        d = fixed / (fpt * n)
    return {"params": n, "tokens": d, "compute": fpt * n * d}


def _check_x(fit, x: str | None, along: str | None) -> tuple[str, str | None]:
    inputs = fit.law.inputs
    if x is None:
        x = "compute" if "compute" in inputs or len(inputs) > 1 else inputs[0]
    if x not in ("compute", "params", "tokens"):
        raise ValueError(f"x must be 'compute', 'params' or 'tokens' but got {x!r}")
    if len(inputs) == 1:
        if x != inputs[0]:
            raise ValueError(
                f"law {fit.law.name!r} is a function of {inputs[0]} only; plot it with x={inputs[0]!r}"
            )
        return x, None
    if along is None:
        along = "params" if x == "tokens" else "tokens_per_param"
    if along not in _ALONG:
        raise ValueError(f"along must be one of {', '.join(_ALONG)} but got {along!r}")
    if along == x:
        raise ValueError(f"along must differ from x but both are {x!r}")
    return x, along


def _band_quantiles(draws: np.ndarray, probs) -> dict:
    out = {"median": np.median(draws, axis=0)}
    for p in probs:
        out[p] = np.quantile(draws, [(1 - p) / 2, 1 - (1 - p) / 2], axis=0)
    return out


def _check_probs(probs) -> tuple[float, ...]:
    from .._util import check_prob

    return tuple(sorted((check_prob(p) for p in probs), reverse=True))


# --------------------------------------------------------------------------- plot_fit


@styled
def plot_fit(
    fit,
    x: str | None = None,
    *,
    along: str | None = None,
    groups=None,
    probs=(0.5, 0.95),
    max_ladders: int = 5,
    xlim=None,
    ax=None,
):
    """Observed runs with the posterior median law and its 50% / 95% bands.

    Args:
        fit: a :class:`~bayescale.posterior.Fit`.
        x: horizontal axis, ``compute`` (default), ``params`` or ``tokens``.
        along: the quantity held fixed along each curve: ``tokens_per_param`` (default;
            ``params`` when ``x="tokens"``), ``params``, ``tokens`` or ``compute``
            (IsoFLOP curves, with ``x="params"``).
        groups: group names to show (default all).
        probs: band probabilities.
        max_ladders: at most this many curves per group.
        xlim: ``(low, high)`` to extend the curves over (e.g. up to a target compute).
        ax: draw on this Axes (all groups together); default a new figure with one
            panel per group (grouped fits) or a single panel.

    Named inputs of the law (``U``) are held along each curve at the geometric mean of
    that ladder's runs.

    Returns:
        The Axes when drawing on one panel, else the Figure (one panel per group).

    Example:
        >>> fig_or_ax = plot_fit(fit, x="params", along="compute")  # doctest: +SKIP
    """
    x, along = _check_x(fit, x, along)
    probs = _check_probs(probs)
    names = list(fit.group_names)
    chosen = names if groups is None else [str(g) for g in np.atleast_1d(groups)]
    unknown = [g for g in chosen if g not in names]
    if unknown:
        raise ValueError(f"unknown group {unknown[0]!r}; groups: {', '.join(names)}")
    colors = group_colors(fit)
    codes = run_codes(fit)
    fpt = float(fit.info.get("flops_per_token", fit.runs.flops_per_token))
    if along is not None:
        fixed = _fixed_values(fit, along)
        ladders = find_ladders(fixed, along, max_ladders)
    else:
        ladders = Ladders(np.array([np.nan]), [""], np.zeros(fit.runs.n_runs, int))
    multi = ax is None and fit.model.grouped and len(chosen) > 1
    if multi:
        _fig, axes = new_figure(len(chosen), 3, (3.1, 2.7), sharex=True, sharey=True)
    else:
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6.4, 3.8), layout="constrained")
        axes = [ax] * len(chosen)
    n_lad = len(ladders.values)
    tone = [0.5] if n_lad == 1 else list(np.linspace(0.2, 1.0, n_lad))
    ladder_color = _ladder_colors(fit, n_lad, tone)
    mask = loss_mask(fit)
    xobs = np.asarray(getattr(fit.runs, x), np.float64)
    for panel, gname in zip(axes, chosen, strict=True):
        g = names.index(gname)
        in_group = codes == g
        base = colors[gname]
        other = in_group & (ladders.assign < 0)
        if other.any():
            panel.scatter(xobs[other], fit.runs.loss[other], s=9, color="0.8", zorder=2)
        for i in range(n_lad):
            sel = in_group & (ladders.assign == i)
            if not sel.any():
                continue
            color = ladder_color(base, i)
            xs = _curve_range(xobs[sel], xlim)
            if along is None:
                values = {x: xs}
            else:
                values = _grid_inputs(x, along, ladders.values[i], xs, fpt)
            for k in fit.law.inputs:  # named inputs (U): the ladder's geometric mean
                if k not in values:
                    held = np.log(np.asarray(fit.runs.input(k), np.float64)[sel])
                    values[k] = np.full(len(xs), float(np.exp(held.mean())))
            values = {k: values[k] for k in fit.law.inputs}
            on_curve = np.full(len(xs), g, np.int32)
            # beyond the data the law bends as its ladder's backtest says (the fit's drift)
            log_loss = fit.log_loss_draws(values, on_curve) + fit.drift_offset(values, on_curve)
            loss = np.exp(log_loss)
            q = _band_quantiles(loss, probs)
            for p, alpha in zip(probs, (0.15, 0.3, 0.45), strict=False):
                panel.fill_between(xs, q[p][0], q[p][1], color=color, alpha=alpha, lw=0)
            panel.plot(xs, q["median"], color=color, zorder=3)
            marker = MARKERS[i % len(MARKERS)]
            for kept, face in ((sel & mask, color), (sel & ~mask, "none")):
                if kept.any():
                    panel.scatter(
                        xobs[kept],
                        fit.runs.loss[kept],
                        s=16,
                        marker=marker,
                        facecolor=face,
                        edgecolor=color,
                        linewidth=0.7,
                        zorder=4,
                    )
        if multi:
            panel.set_title(gname, color=base, fontweight="bold")
    target = axes[0]
    panels = list(dict.fromkeys(axes))
    for panel in panels:
        finish_log_axis(panel.xaxis, x)
        finish_loss_axis(panel.yaxis, None)
    for panel in panels:
        if panel.get_subplotspec() is None or panel.get_subplotspec().is_last_row():
            panel.set_xlabel(AXIS_LABELS[x])
        if panel.get_subplotspec() is None or panel.get_subplotspec().is_first_col():
            panel.set_ylabel(AXIS_LABELS["loss"])
    handles = _legend_handles(fit, ladders, ladder_color, probs, chosen, colors, multi, mask)
    if multi:
        target.figure.legend(handles=handles, loc="outside right upper")
        return target.figure
    target.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if fit.model.grouped and len(chosen) == 1:
        target.set_title(chosen[0], color=colors[chosen[0]], fontweight="bold")
    return target


def _curve_range(xobs: np.ndarray, xlim) -> np.ndarray:
    if xlim is not None:
        low, high = sorted(float(v) for v in xlim)
        if not (low > 0 and math.isfinite(high)):
            raise ValueError(f"xlim must be two positive numbers but got {xlim!r}")
    else:
        pad = 0.15 if xobs.max() > xobs.min() * 1.01 else 0.3
        low, high = xobs.min() / 10**pad, xobs.max() * 10**pad
    return np.geomspace(low, high, 80)


def _ladder_colors(fit, n_lad: int, tone):
    """Ladder ``i`` of a group: a shade of the group colour (grouped fits, or a single
    ladder), or, with no groups to keep apart, a step of a colour-blind-safe sequential map."""
    if fit.model.grouped or n_lad == 1:
        return lambda base, i: shade(base, tone[i])
    import matplotlib as mpl

    steps = np.linspace(0.0, 0.8, n_lad)
    cmap = mpl.colormaps["viridis"]
    return lambda base, i: cmap(steps[i])


def _legend_handles(fit, ladders, ladder_color, probs, chosen, colors, multi, mask):
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    neutral = "#555555"
    base = neutral if multi or len(chosen) > 1 else colors[chosen[0]]
    handles = []
    if ladders.labels != [""]:
        for i, label in enumerate(ladders.labels):
            c = ladder_color(base, i)
            handles.append(
                Line2D([], [], color=c, marker=MARKERS[i % len(MARKERS)], ms=4, label=label)
            )
    else:
        handles.append(
            Line2D([], [], color=ladder_color(base, 0), marker="o", ms=4, label="runs, median")
        )
    if (ladders.assign < 0).any():
        handles.append(Line2D([], [], color="0.8", marker="o", ms=4, ls="none", label="other runs"))
    if not mask.all():
        handles.append(
            Line2D(
                [],
                [],
                color=neutral,
                marker="o",
                mfc="none",
                ms=4,
                ls="none",
                label="not in loss fit",
            )
        )
    handles.append(Line2D([], [], color=neutral, label="posterior median"))
    for p, alpha in zip(probs, (0.15, 0.3, 0.45), strict=False):
        handles.append(Patch(color=neutral, alpha=alpha, lw=0, label=f"{100 * p:g}% band"))
    if not multi and len(chosen) > 1:
        handles += [Line2D([], [], color=colors[g], lw=3, label=g) for g in chosen]
    return handles
