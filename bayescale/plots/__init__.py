"""Figures for papers and notebooks (matplotlib only).

Every function takes the :class:`~bayescale.posterior.Fit` (or a decision result) first and
returns the matplotlib Axes (single-panel figures, drawn on ``ax`` when given) or Figure
(multi-panel ones); none calls ``plt.show()``. Groups keep one colour across all figures
(:func:`group_colors`).

* the fit: :func:`plot_fit`, :func:`plot_ppc`, :func:`plot_residuals`;
* the posterior: :func:`plot_prior_posterior`, :func:`plot_pair`, :func:`plot_trace`,
  :func:`plot_rank`;
* decisions (:mod:`bayescale.decide`): :func:`plot_p_best`, :func:`plot_crossover`,
  :func:`plot_frontiers`;
* allocation (:mod:`bayescale.allocate`): :func:`plot_isoloss`, :func:`plot_optimal_params`,
  :func:`plot_tokens_per_param`, :func:`plot_overtraining`.

Example:
    >>> import bayescale.plots as bsp
    >>> bsp.group_colors(["c4", "rpj"])
    {'c4': '#0072B2', 'rpj': '#D55E00'}
"""

from .allocate import (
    plot_isoloss,
    plot_optimal_params,
    plot_overtraining,
    plot_tokens_per_param,
)
from .checks import plot_ppc, plot_residuals
from .decide import plot_crossover, plot_frontiers, plot_p_best
from .fit import find_ladders, plot_fit
from .posterior import plot_pair, plot_prior_posterior, plot_rank, plot_trace
from .style import format_count, format_flops, group_colors

__all__ = [
    "find_ladders",
    "format_count",
    "format_flops",
    "group_colors",
    "plot_crossover",
    "plot_fit",
    "plot_frontiers",
    "plot_isoloss",
    "plot_optimal_params",
    "plot_overtraining",
    "plot_p_best",
    "plot_pair",
    "plot_ppc",
    "plot_prior_posterior",
    "plot_rank",
    "plot_residuals",
    "plot_tokens_per_param",
    "plot_trace",
]
