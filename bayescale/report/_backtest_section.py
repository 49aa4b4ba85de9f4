"""The report's "How far to trust it" section: the fit's drift folds and a backtest of its ladder.

A ladder with at least two budgets (or model sizes, for laws without compute) is backtested
as it stands: the law is refitted on the runs below the top quarter of its log-compute span
and predicts the runs in it, with the fit's own sampler settings (:func:`ladder_holdout`).

Example:
    >>> ladder_holdout(fit.runs)          # doctest: +SKIP
    'compute>=4.21e+21'
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

__all__ = ["backtest_section", "drift_lines", "ladder_holdout"]


def ladder_holdout(runs) -> str | None:
    """The rule that holds out the top quarter of the ladder's log-compute span, or None.

    None when the ladder has fewer than two distinct budgets (sizes for laws without compute).

    Example:
        >>> from bayescale.data.runs import read_runs
        >>> import pandas as pd
        >>> df = pd.DataFrame({"N": [1e8, 2e8, 4e8, 8e8], "D": [2e9, 4e9, 8e9, 1.6e10], "L": [3.2, 3.0, 2.9, 2.8]})
        >>> ladder_holdout(read_runs(df, params="N", tokens="D", loss="L"))
        'compute>=3.12e+19'
    """
    column = "compute" if runs.compute is not None else "params"
    values = getattr(runs, column)
    if values is None:
        return None
    x = np.log(np.asarray(values, np.float64))
    if len(np.unique(np.round(x, 2))) < 2:
        return None
    cut = x.max() - 0.25 * (x.max() - x.min())
    threshold = float(np.exp(cut))
    if not np.any(values >= threshold) or np.all(values >= threshold):
        return None
    return f"{column}>={float(f'{threshold:.3g}'):.3g}"


def drift_lines(fit) -> list[str]:
    """Markdown: the drift the fit learned from its ladder's own backtest, fold by fold."""
    calibration = fit.info.get("drift")
    if not calibration:
        return [
            "This fit was made with `drift=False`: its intervals beyond the data are the "
            "law's alone, which real ladders show to be too narrow.",
            "",
        ]
    lines = [
        "The law was refitted on the lower part of the ladder and asked to predict the rest "
        "(bayescale.model.drift); the drift it showed, in % of the loss per e-fold beyond its fit "
        "set, is carried into every prediction beyond the data.",
        "",
        "| axis | cut (fraction of span) | runs fitted | runs predicted | drift %/e-fold | fold ok |",
        "|---|---|---|---|---|---|",
    ]
    for axis, c in calibration.items():
        for f in c["folds"]:
            lines.append(
                f"| {axis} | {f['cut']:g} | {f['n_fit']} | {f['n_held']} | "
                f"{100 * f['slope']:+.2f} ± {100 * np.sqrt(f['var']):.2f} | {'yes' if f['ok'] else 'no'} |"
            )
    lines.append("")
    for axis, c in calibration.items():
        where = "compute" if axis == "compute" else "tokens per parameter"
        source = f"{len(c['folds'])} folds" if c["folds"] else "its prior (too few runs for a fold)"
        lines.append(
            f"- drift along {where}: {100 * c['mean']:+.2f}% ± {100 * c['sd']:.2f}% per e-fold "
            f"(from {source})"
        )
    return [*lines, ""]


def backtest_section(fit, figures_dir: Path, save) -> tuple[list[str], list[Path]]:
    """Markdown lines and figure files of the "How far to trust it" section.

    ``save(figure, stem) -> [paths]`` writes a figure in the report's formats.
    """
    from .._util import FitWarning
    from ..trust.backtesting import backtest

    md = ["## How far to trust it", "", *drift_lines(fit)]
    rule = ladder_holdout(fit.runs)
    if rule is None:
        md += ["The ladder has a single budget: there is nothing to backtest it on.", ""]
        return md, []
    extended = int(fit.info.get("extended", 0))
    draws = int(fit.info.get("draws", 1000)) // (1 + extended)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            bt = backtest(
                fit.runs,
                fit.spec,
                holdout=rule,
                baseline=True,
                chains=fit.n_chains,
                draws=draws,
                warmup=int(fit.info.get("warmup", 1000)),
                seed=int(fit.info.get("seed", 0)),
            )
    except ValueError as exc:
        md += [f"No backtest: {exc}.", ""]
        return md, []
    s = bt.summary()
    md += [
        f"Backtest of this ladder (`bayescale backtest ... --holdout '{rule}'`): fitted on "
        f"{int(bt.folds['n_fit'].iloc[0])} runs, predicted the {int(bt.folds['n_held'].iloc[0])} "
        "runs above the cutoff.",
        "",
    ]
    if s["n"]:
        base = s["baseline"] or {}
        md += [
            "| | 50% | 80% | 95% coverage | median error | median 95% width |",
            "|---|---|---|---|---|---|",
            f"| bayescale | {s['coverage_50']:.0%} | {s['coverage_80']:.0%} | "
            f"{s['coverage_95']:.0%} | {100 * s['median_rel_error']:.2f}% | "
            f"{100 * s['median_width_95']:.1f}% |",
        ]
        if base:
            md.append(
                f"| point fit (Huber + bootstrap) | | | {base['coverage_95']:.0%} | "
                f"{100 * base['median_rel_error']:.2f}% | {100 * base['median_width_95']:.1f}% |"
            )
        md.append("")
    else:
        md += [f"The backtest's fit failed its diagnostics: {bt.folds.to_dict('records')}", ""]
    figure = bt.plot()
    paths = save(figure, figures_dir / "backtest")
    shown = next((p for p in paths if p.suffix == ".png"), None)
    if shown is not None:
        md += [f"![backtest](figures/{shown.name})", ""]
    md += [
        "*Backtest: left, the runs fitted (grey) and held out (black) with the predictions' "
        "50% and 95% intervals; right, each held-out run's error in units of its interval "
        "against its distance beyond the fit set.*",
        "",
    ]
    return md, paths
