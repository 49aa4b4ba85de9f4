"""A self-contained report of a fit, ready for a paper appendix.

:func:`write_report` writes ``report.md`` (model, data, diagnostics verdict, parameter
table, figures, predictions, decisions, compute-optimal allocation, and how to
reproduce it all), ``table.tex`` (booktabs + siunitx) and every figure as PNG and PDF under
``figures/``. ``bayescale report FIT.nc --out DIR`` is a thin shell over it.

Example:
    >>> files = write_report(fit, "appendix", targets=[{"params": 70e9, "tokens": 1.4e12}])  # doctest: +SKIP
    >>> files["report"]  # doctest: +SKIP
    'appendix/report.md'
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from .._util import check_prob
from ..plots.style import STYLE
from ..posterior.tables import (
    LATEX_PREAMBLE,
    prediction_rows,
    predictions_table,
    to_table,
)
from ._sections import (
    _data_section,
    _decision_sections,
    _diagnostics_section,
    _model_section,
    _reproduce_section,
    report_header,
)

__all__ = ["FIGURE_FORMATS", "figure_specs", "report_header", "write_report"]

FIGURE_FORMATS = ("png", "pdf")


def figure_specs(fit) -> list[tuple[str, str, object]]:
    """``(file stem, caption, draw function)`` for every figure of the report."""
    from .. import plots

    inputs = fit.law.inputs
    specs = []
    if len(inputs) > 1:
        specs.append(
            (
                "fit_compute",
                "Observed runs and the fitted law against training compute, one curve per "
                "tokens-per-parameter ladder D/N (posterior median, 50% and 95% bands of the "
                "law; hollow markers: runs left out of the loss fit).",
                lambda: plots.plot_fit(fit, x="compute"),
            )
        )
        specs.append(
            (
                "fit_tokens",
                "The same fit against training tokens, one curve per model size N.",
                lambda: plots.plot_fit(fit, x="tokens"),
            )
        )
    else:
        specs.append(
            (
                f"fit_{inputs[0]}",
                f"Observed runs and the fitted law against {inputs[0]} (posterior median, "
                "50% and 95% bands of the law).",
                lambda: plots.plot_fit(fit, x=inputs[0]),
            )
        )
    specs += [
        (
            "ppc",
            "Posterior predictive check: each run's observed loss against the posterior "
            "predictive median of a new run at its size, with the 95% interval (run noise "
            "included); hollow markers fall outside it.",
            lambda: plots.plot_ppc(fit),
        ),
        (
            "residuals",
            "Residuals in log loss (observed minus posterior median law) against each input; "
            "grey band: ±2 noise scales; triangles: runs beyond the panel, pinned to its edge.",
            lambda: plots.plot_residuals(fit),
        ),
    ]
    frontier_law = set(inputs) == {"params", "tokens"} or tuple(inputs) == ("compute",)
    if fit.model.grouped and frontier_law:  # decisions between arms (bayescale.decide)
        specs += [
            (
                "frontiers",
                "Each arm's law along its compute-optimal frontier (median and 95% band of "
                "the law), with the observed runs.",
                lambda: plots.plot_frontiers(fit),
            ),
            (
                "p_best",
                "Posterior probability that each arm's law reaches the lowest loss, against "
                "compute along the compute-optimal frontiers.",
                lambda: plots.plot_p_best(fit),
            ),
        ]
    elif set(inputs) == {"params", "tokens"}:  # compute-optimal allocation (bayescale.allocate)
        specs += [
            (
                "optimal_params",
                "Compute-optimal model size N_opt against compute (posterior median and 95% "
                "band), with the observed runs.",
                lambda: plots.plot_optimal_params(fit),
            ),
            (
                "tokens_per_param",
                "Compute-optimal tokens per parameter D/N against compute (posterior median "
                "and 95% band; dashed: 20 tokens per parameter).",
                lambda: plots.plot_tokens_per_param(fit),
            ),
        ]
    specs += [
        (
            "prior_posterior",
            "What the data taught: each sampled parameter's posterior (histogram) over its "
            "prior (dashed), each scaled to its own peak; coefficients on the sampled log "
            "scale. Contraction is 1 − var(posterior)/var(prior).",
            lambda: plots.plot_prior_posterior(fit),
        ),
        (
            "pair",
            "Pairwise posterior draws with their correlations ρ (per group, in group order).",
            lambda: plots.plot_pair(fit),
        ),
        (
            "trace",
            "MCMC traces and per-chain marginal densities (line style: chain).",
            lambda: plots.plot_trace(fit),
        ),
        (
            "rank",
            "Rank ECDF plots per chain: curves inside the envelope mean the chains agree.",
            lambda: plots.plot_rank(fit),
        ),
    ]
    return specs


def _save(figure, stem: Path, formats: Sequence[str]) -> list[Path]:
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    fig = figure if hasattr(figure, "savefig") else figure.figure
    written = []
    with mpl.rc_context(STYLE):
        for ext in formats:
            path = stem.with_suffix(f".{ext}")
            fig.savefig(path)
            written.append(path)
    plt.close(fig)
    return written


def write_report(
    fit,
    out: str | Path,
    *,
    targets: Sequence[Mapping] | None = None,
    prob: float = 0.95,
    formats: Sequence[str] = FIGURE_FORMATS,
    command: str | None = None,
    force: bool = False,
    backtest: bool = True,
    at: Mapping[str, float] | None = None,
) -> dict:
    """Write ``report.md``, ``table.tex`` and the figures of ``fit`` into folder ``out``.

    Args:
        fit: a :class:`~bayescale.posterior.Fit`.
        out: output folder (created).
        targets: sizes to predict, e.g. ``[{"params": 70e9, "tokens": 1.4e12}]``; for
            grouped fits also the arms are compared there, and for laws of N and D the
            compute-optimal allocation at each target's budget is added.
        prob: interval probability.
        formats: figure formats (``png`` and/or ``pdf``).
        command: the command that made the report (recorded under "Reproduce").
        force: overwrite an existing ``report.md`` in ``out``.
        backtest: add "How far to trust it": the fit's drift folds and a backtest of its
            own ladder (the top quarter of its log-compute span held out; one more fit).
        at: named inputs of every target that gives none (``{"U": 5e9}``; ``--at U=5e9``).

    Returns:
        ``{"out", "report", "table", "figures", "files"}`` with paths as strings;
        ``files`` lists every file written.

    Example:
        >>> write_report(fit, "/tmp/report", targets=[{"compute": 1e24}])["files"][:2]  # doctest: +SKIP
        ['/tmp/report/report.md', '/tmp/report/table.tex']
    """
    prob = check_prob(prob)
    formats = tuple(formats)
    bad = [f for f in formats if f not in FIGURE_FORMATS]
    if bad or not formats:
        raise ValueError(
            f"formats must be among {', '.join(FIGURE_FORMATS)} but got {list(formats)}"
        )
    out = Path(out)
    report = out / "report.md"
    if report.exists() and not force:
        raise ValueError(f"{str(report)!r} exists; pass force=True (--force) to overwrite it")
    if targets and at:
        targets = [{"at": dict(at), **t} if "at" not in t else t for t in targets]
    rows = prediction_rows(fit, list(targets), prob) if targets else []
    figures_dir = out / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = [report, out / "table.tex"]
    d = fit.diagnostics
    md = report_header(fit)
    md += _model_section(fit)
    md += _data_section(fit)
    md += _diagnostics_section(fit, prob)
    md += [
        "## Parameters",
        "",
        f"Posterior median and equal-tailed {100 * prob:g}% interval; natural scale "
        "(E in nats, A not log A). LaTeX: [table.tex](table.tex).",
        "",
        to_table(fit, "markdown", prob),
        "",
    ]
    table_tex = f"{LATEX_PREAMBLE}\n{to_table(fit, 'latex', prob)}\n"
    if rows:
        md += [
            "## Predictions",
            "",
            "Loss of a new run at each target (posterior predictive, run-to-run noise "
            "included) and of the law itself (parameter uncertainty only).",
            "",
            predictions_table(fit, list(targets), prob, "markdown"),
            "",
        ]
        table_tex += "\n" + predictions_table(fit, list(targets), prob, "latex") + "\n"
        md += _decision_sections(fit, rows, prob)
    md += ["## Figures", ""]
    figure_paths = []
    for stem, caption, draw in figure_specs(fit):
        written = _save(draw(), figures_dir / stem, formats)
        figure_paths += written
        shown = next((p for p in written if p.suffix == ".png"), None)
        links = ", ".join(f"[{p.suffix[1:].upper()}](figures/{p.name})" for p in written)
        if shown is not None:
            md.append(f"![{stem}](figures/{shown.name})")
            md.append("")
        md += [f"*{caption}* ({links})", ""]
    if backtest:
        from ._backtest_section import backtest_section

        trust, written = backtest_section(
            fit, figures_dir, lambda figure, stem: _save(figure, stem, formats)
        )
        md += trust
        figure_paths += written
    md += _reproduce_section(fit, command)
    report.write_text("\n".join(md), encoding="utf-8")
    (out / "table.tex").write_text(table_tex, encoding="utf-8")
    files += figure_paths
    return {
        "out": str(out),
        "report": str(report),
        "table": str(out / "table.tex"),
        "figures": [str(p) for p in figure_paths],
        "files": [str(p) for p in files],
        "diagnostics_ok": bool(d.ok),
    }


def report_command(argv: Sequence[str]) -> str:
    """The shell command line that reproduces a report (quoted)."""
    return "bayescale " + shlex.join(list(argv))
