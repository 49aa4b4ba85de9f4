"""House style shared by every bayescale figure: group colours, log-axis ticks, layout.

One colour per group everywhere (fits, residuals, posteriors, decisions), Okabe-Ito's
colour-blind-safe palette; log axes labelled the way papers write sizes ("100M", "1B",
"1e21"); the loss axis on a log scale with a few plain ticks ("2", "2.5", "3").

Example:
    >>> group_colors(["rpj", "c4"])
    {'rpj': '#0072B2', 'c4': '#D55E00'}
    >>> format_count(1.5e9), format_flops(3e21)
    ('1.5B', '3e21')
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from functools import wraps

import numpy as np

from .._format import format_count, format_flops

__all__ = [
    "AXIS_LABELS",
    "PALETTE",
    "STYLE",
    "finish_log_axis",
    "finish_loss_axis",
    "format_count",
    "format_flops",
    "group_colors",
    "new_figure",
    "shade",
    "styled",
]

#: Okabe & Ito (2008) colour-blind-safe palette, yellow dropped (unreadable on white).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")

AXIS_LABELS = {
    "params": "Parameters N",
    "tokens": "Training tokens D",
    "compute": "Training compute C (FLOPs)",
    "loss": "Loss (nats/token)",
    "downstream": "Downstream error",
}

#: rcParams applied while a bayescale figure is drawn (text sizes are fixed at creation).
STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.which": "major",
    "grid.alpha": 0.25,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.4,
    "savefig.dpi": 150,  # PNGs for reading; the PDFs are the print versions
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,  # embed TrueType: editable text in the PDF, accepted by publishers
}


def group_colors(fit_or_names) -> dict[str, str]:
    """One colour per group, the same in every figure.

    Args:
        fit_or_names: a :class:`~bayescale.posterior.Fit` (its ``group_names``) or a
            sequence of group names. An ungrouped fit has the single group ``all``.

    Returns:
        ``{group name: hex colour}`` in group order.

    Example:
        >>> group_colors(["c4_original", "rpj", "rw_original"])["rpj"]
        '#D55E00'
    """
    names = getattr(fit_or_names, "group_names", fit_or_names)
    names = [str(n) for n in names]
    if len(names) <= len(PALETTE):
        return {n: PALETTE[i] for i, n in enumerate(names)}
    import matplotlib as mpl

    cmap = mpl.colormaps["tab20"]
    return {n: mpl.colors.to_hex(cmap(i % 20)) for i, n in enumerate(names)}


def shade(color: str, t: float) -> tuple[float, float, float]:
    """A lighter (``t=0``) to darker (``t=1``) version of ``color``; ``t=0.5`` is the colour.

    Ladders inside one group share the group's hue and differ in lightness.

    Example:
        >>> from matplotlib.colors import to_rgb
        >>> shade("#0072B2", 0.5) == to_rgb("#0072B2")
        True
    """
    from matplotlib.colors import to_rgb

    rgb = np.asarray(to_rgb(color))
    light, dark = rgb + (1.0 - rgb) * 0.6, rgb * 0.55
    t = float(np.clip(t, 0.0, 1.0))
    mixed = (
        light + (rgb - light) * (t / 0.5) if t <= 0.5 else rgb + (dark - rgb) * ((t - 0.5) / 0.5)
    )
    return tuple(float(c) for c in mixed)


_FORMATTERS = {"params": format_count, "tokens": format_count, "compute": format_flops}


def finish_log_axis(axis, kind: str) -> None:
    """Log scale with readable labels for ``params``/``tokens`` (1B) or ``compute`` (1e21).

    Decades are labelled; when the data span less than about two decades the 2 and 5
    multiples are labelled too, so an axis never has fewer than three labels.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    _set_log(axis)
    low, high = sorted(axis.get_view_interval())
    decades = math.log10(high / low) if low > 0 else 3.0
    subs = (
        (1.0,) if decades >= 2.2 else (1.0, 2.0, 5.0) if decades >= 0.8 else (1.0, 1.5, 2, 3, 5, 7)
    )
    # at most ~6 labels: with more decades, every other one (1e16, 1e18, ...)
    axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=6))
    axis.set_major_formatter(FuncFormatter(_FORMATTERS.get(kind, format_flops)))
    axis.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10) * 1.0))
    axis.set_minor_formatter(NullFormatter())


_NICE = (
    (1.0,),
    (1.0, 2.0, 5.0),
    (1.0, 2.0, 3.0, 5.0),
    (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0),
    (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0, 8.0),
)


def _set_log(axis) -> None:
    from matplotlib.axis import XAxis

    (axis.axes.set_xscale if isinstance(axis, XAxis) else axis.axes.set_yscale)("log")


def _nice_log_ticks(low: float, high: float) -> list[float]:
    decades = range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
    candidates = []
    for mantissas in _NICE:
        ticks = [m * 10.0**d for d in decades for m in mantissas]
        candidates.append([t for t in ticks if low <= t <= high])
    for wanted in (4, 3):  # the coarsest set with at least 4 (else 3) ticks
        for ticks in candidates:
            if wanted <= len(ticks) <= 8:
                return ticks
    from matplotlib.ticker import MaxNLocator

    return [t for t in MaxNLocator(4).tick_values(low, high) if low <= t <= high]


def finish_loss_axis(axis, label: str | None = AXIS_LABELS["loss"]) -> None:
    """Log scale for loss with 3-8 plain ticks (``2``, ``2.5``, ``3``), no minor labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    _set_log(axis)
    low, high = sorted(axis.get_view_interval())
    if low <= 0:
        return
    axis.set_major_locator(FixedLocator(_nice_log_ticks(low, high)))
    axis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.4g}"))
    axis.set_minor_locator(NullLocator())
    if label:
        axis.set_label_text(label)


@contextmanager
def _style():
    import matplotlib as mpl

    with mpl.rc_context(STYLE):
        yield


def styled(fn):
    """Draw ``fn``'s figure under :data:`STYLE` (decorator)."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        with _style():
            return fn(*args, **kwargs)

    return wrapper


def new_figure(n_panels: int, ncols: int, panel_size: Sequence[float] = (3.2, 2.5), **kwargs):
    """A constrained-layout figure with ``n_panels`` axes; unused grid cells are removed."""
    import matplotlib.pyplot as plt

    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
        layout="constrained",
        squeeze=False,
        **kwargs,
    )
    flat = list(axes.ravel())
    for extra in flat[n_panels:]:
        extra.remove()
    return fig, flat[:n_panels]


def thin(n: int, limit: int, seed: int = 0) -> np.ndarray:
    """Indices of at most ``limit`` of ``n`` draws (a fixed random subset, for scatter plots)."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


def unique_in_order(values: Iterable) -> list:
    seen: dict = {}
    for v in values:
        seen.setdefault(v, None)
    return list(seen)


def budget_pair_grid(compute, points: int) -> np.ndarray | None:
    """``points`` budgets log-spaced over a ``(lo, hi)`` pair; None when ``compute`` is not a pair.

    Example:
        >>> budget_pair_grid((1e18, 1e21), 4)
        array([1.e+18, 1.e+19, 1.e+20, 1.e+21])
    """
    values = np.asarray(compute, np.float64)
    if values.ndim != 1 or values.size != 2:
        return None
    lo, hi = float(values[0]), float(values[1])
    if not 0 < lo < hi:
        raise ValueError(f"compute must satisfy 0 < lo < hi but got ({lo:g}, {hi:g})")
    return np.geomspace(lo, hi, points)
