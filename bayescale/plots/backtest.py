"""The backtest figure: what was fitted, what was predicted, and how far off it was.

Left: loss against compute; the fit set's runs in grey, every held-out run in black with
its posterior predictive median and 50% (thick) and 95% (thin) intervals in its fold's
colour. Right: each held-out run's error in units of its interval (the PIT as a normal
quantile, ``z``) against its log-distance beyond the fit set; a calibrated forecaster puts
95% of the points inside the dashed band at +-1.96.
"""

from __future__ import annotations

from .style import PALETTE, finish_log_axis, finish_loss_axis, new_figure, styled

__all__ = ["plot_backtest"]


def _fold_colors(folds) -> dict[str, str]:
    return {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(folds)}


def _predictions(ax, bt, colors) -> None:
    runs = bt.runs
    x_of = runs["compute"] if "compute" in runs else runs["params"]
    seen = set()
    for fold, fitted in bt.fitted.items():
        x_fit = fitted["compute"] if fitted["compute"].notna().all() else fitted["params"]
        fresh = [i for i in fitted.index if i not in seen]
        seen.update(fresh)
        ax.scatter(
            x_fit.loc[fresh],
            fitted["loss"].loc[fresh],
            s=9,
            color="0.65",
            zorder=1,
            label="fitted" if fold == next(iter(bt.fitted)) else None,
        )
    ok = dict(zip(bt.folds["fold"], bt.folds["ok"], strict=True))
    n_folds = len(colors)
    for k, (fold, color) in enumerate(colors.items()):
        rows = runs["fold"] == fold
        # folds side by side at a run's compute: a small multiplicative offset each
        shift = 1.0 + 0.04 * (k - (n_folds - 1) / 2) if n_folds > 1 else 1.0
        x = x_of[rows].to_numpy() * shift
        med = runs.loc[rows, "median"].to_numpy()
        for lo, hi, width in (("lower_95", "upper_95", 0.8), ("lower_50", "upper_50", 2.4)):
            ax.vlines(
                x, runs.loc[rows, lo], runs.loc[rows, hi], color=color, linewidth=width, zorder=2
            )
        label = f"{fold}" + ("" if ok.get(fold, True) else " (diagnostics not ok)")
        ax.scatter(x, med, s=14, color=color, marker="_", zorder=3, label=label)
    ax.scatter(
        x_of,
        runs["observed"],
        s=12,
        facecolor="none",
        edgecolor="black",
        zorder=4,
        label="held out (observed)",
    )
    finish_log_axis(ax.xaxis, "compute" if "compute" in runs else "params")
    finish_loss_axis(ax.yaxis)
    ax.set_xlabel("Training compute C (FLOPs)" if "compute" in runs else "Parameters N")
    ax.legend(loc="upper right", fontsize=7)


def _calibration(ax, bt, colors) -> None:
    runs = bt.runs
    for fold, color in colors.items():
        rows = runs["fold"] == fold
        ax.scatter(runs.loc[rows, "beyond"], runs.loc[rows, "z"], s=12, color=color)
    ax.axhspan(-1.96, 1.96, color="0.92", zorder=0)
    for y in (-1.96, 1.96):
        ax.axhline(y, color="0.5", linestyle="--", linewidth=0.8)
    ax.axhline(0.0, color="0.5", linewidth=0.8)
    ax.set_xlabel("log compute beyond the fit set (e-folds)")
    ax.set_ylabel("error in interval units (z of the PIT)")


@styled
def plot_backtest(bt, ax=None):
    """The backtest figure; with ``ax``, only the left panel is drawn on it.

    Returns:
        The Figure (without ``ax``) or the Axes.

    Example:
        >>> fig = bt.plot()                       # doctest: +SKIP
        >>> fig.savefig("backtest.png")           # doctest: +SKIP
    """
    colors = _fold_colors(list(dict.fromkeys(bt.runs["fold"])))
    if ax is not None:
        _predictions(ax, bt, colors)
        return ax
    fig, (left, right) = new_figure(2, 2, panel_size=(4.2, 3.2))
    _predictions(left, bt, colors)
    _calibration(right, bt, colors)
    s = bt.summary()
    if s["n"]:
        fig.suptitle(
            f"{bt.settings.get('law')}, {bt.settings.get('split')}: 95% coverage "
            f"{s['coverage_95']:.0%} of {s['n']}, median error {100 * s['median_rel_error']:.1f}%",
            fontsize=9,
        )
    return fig
