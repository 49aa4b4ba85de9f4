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

import platform
import shlex
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .._util import check_prob
from ..plots.style import STYLE, format_count, format_flops
from ..posterior.tables import (
    LATEX_PREAMBLE,
    format_estimate,
    prediction_rows,
    predictions_table,
    to_table,
)

__all__ = ["FIGURE_FORMATS", "figure_specs", "report_header", "write_report"]

FIGURE_FORMATS = ("png", "pdf")

_POOLING = {
    "none": "none: every parameter and the noise scale per group (independent fits)",
    "shared": "shared: exponents common to all groups; E and coefficients per group",
    "partial": "partial: exponents per group drawn around a common mean (hierarchical)",
}
_LIKELIHOOD = {
    "student_t": "Student-t on log loss (robust: the Bayesian analogue of a Huber loss)",
    "normal": "normal on log loss (least squares)",
}


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


# --------------------------------------------------------------------------- sections


def _range(values: np.ndarray | None, fmt) -> tuple[str, str, str]:
    if values is None:
        return ("–", "–", "–")
    return (fmt(np.min(values)), fmt(np.median(values)), fmt(np.max(values)))


def _data_section(fit) -> list[str]:
    runs = fit.runs
    cols = ", ".join(f"{k} = `{v}`" for k, v in runs.columns.items())
    lines = [
        "## Data",
        "",
        f"{runs.n_runs} runs; columns: {cols}."
        + (
            f" Derived: {', '.join(runs.derived)} (C = {runs.flops_per_token:g}·N·D)."
            if runs.derived
            else ""
        ),
        "",
        "| Quantity | Min | Median | Max |",
        "|:--|--:|--:|--:|",
    ]
    ratio = (
        runs.tokens / runs.params if runs.tokens is not None and runs.params is not None else None
    )
    for label, values, fmt in (
        ("Parameters N", runs.params, format_count),
        ("Tokens D", runs.tokens, format_count),
        ("Compute C (FLOPs)", runs.compute, format_flops),
        ("Tokens per parameter D/N", ratio, lambda v: f"{v:.3g}"),
        ("Loss (nats/token)", runs.loss, lambda v: f"{v:.4g}"),
    ):
        if values is not None and np.all(np.isfinite(values)):
            lines.append(f"| {label} | " + " | ".join(_range(values, fmt)) + " |")
    if fit.model.grouped:
        counts = np.bincount(runs.group, minlength=len(fit.group_names))
        groups = ", ".join(
            f"`{g}` ({c} runs)" for g, c in zip(fit.group_names, counts, strict=True)
        )
        lines += ["", f"Groups ({runs.columns.get('group', 'group')}): {groups}."]
    mask = fit.info.get("loss_mask")
    if mask is not None:
        lines += ["", f"{int(np.sum(~np.asarray(mask, bool)))} run(s) left out of the loss fit."]
    return [*lines, ""]


def _model_section(fit) -> list[str]:
    spec, model = fit.spec, fit.model
    refs = ", ".join(
        f"{ {'params': 'N', 'tokens': 'D', 'compute': 'C'}.get(k, k) }_ref = "
        f"{(format_flops if k == 'compute' else format_count)(float(np.exp(v)))}"
        for k, v in model.log_ref.items()
        if v
    )
    lines = [
        "## Model",
        "",
        "| | |",
        "|:--|:--|",
        f"| Law | `{fit.law.name}`: `{fit.law.formula}` |",
        f"| Model spec | `{spec.name}`"
        + (f" ({spec.description})" if spec.description else "")
        + " |",
        f"| Likelihood | {_LIKELIHOOD.get(spec.likelihood, spec.likelihood)} |",
    ]
    if model.grouped:
        lines.append(f"| Pooling | {_POOLING.get(spec.pooling, spec.pooling)} |")
    if spec.downstream:
        lines.append("| Downstream | `Err = eps - k exp(-gamma L)` fitted jointly |")
    if refs:
        lines.append(f"| Reference scale | {refs} (log-inputs are centred there) |")
    citation = spec.citation or fit.law.citation
    if citation:
        lines.append(f"| Citation | {citation} |")
    from ..plots.posterior import prior_sites

    lines += ["", "Priors (as sampled; coefficients on the centred log scale):", "", "```"]
    for site, prior_name in prior_sites(fit):
        lines.append(f"{site} ~ {fit.model.priors[prior_name]}")
    lines += ["```", ""]
    return lines


def _diagnostics_section(fit, prob: float) -> list[str]:
    import arviz as az

    d = fit.diagnostics
    lines = ["## Diagnostics", ""]
    if d.ok:
        lines.append("**Verdict: ok.**")
    else:
        lines.append("> **Verdict: NOT OK — do not rely on these numbers yet.**")
        lines += [f"> - {m}" for m in d.messages]
    lines += [
        "",
        "| Check | Value | Required |",
        "|:--|--:|--:|",
        f"| max R-hat | {d.max_r_hat:.4f} | ≤ 1.01 |",
        f"| divergent transitions | {d.divergences} | 0 |",
        f"| min ESS bulk / tail | {d.min_ess_bulk:.0f} / {d.min_ess_tail:.0f} | ≥ {d.ess_required:.0f} |",
        f"| min E-BFMI | {d.min_ebfmi:.2f} | ≥ 0.3 |",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pareto-k warnings are reported in the table
        loo = az.loo(fit.to_datatree(), pointwise=True)
    k = np.asarray(loo.pareto_k).reshape(-1)
    bad = int(np.sum(k > 0.7))
    lines.append(
        f"| PSIS-LOO runs with Pareto k > 0.7 | {bad} of {k.size} | 0 |",
    )
    lines += [
        "",
        f"PSIS-LOO: ELPD {float(loo.elpd):.1f} (SE {float(loo.se):.1f}), p_loo {float(loo.p):.1f}.",
        "",
    ]
    return lines


def report_header(fit) -> list[str]:
    """Title and one-line summary; a not-ok verdict comes first, as a block quote."""
    d = fit.diagnostics
    lines = [f"# Scaling-law fit: {fit.spec.name}", ""]
    if not d.ok:
        lines += [
            "> **⚠ Diagnostics NOT OK** — the sampler did not converge reliably; "
            "numbers below are provisional.",
            *(f"> - {m}" for m in d.messages),
            "",
        ]
    lines += [
        f"`{fit.law.formula}` fitted to {fit.runs.n_runs} runs "
        f"({fit.n_chains} chains × {fit.n_draws} draws). Diagnostics: "
        + ("**ok**." if d.ok else "**not ok** (see below)."),
        "",
    ]
    return lines


def _decision_sections(fit, rows: list[dict], prob: float) -> list[str]:
    """Arms compared at each target (grouped fits) and the compute-optimal allocation."""
    from ..allocate.optimal import compute_optimal
    from ..decide.decision import compare

    lines: list[str] = []
    caught: list[str] = []
    targets = {}
    for r in rows:  # one entry per target, whatever the group
        key = (r["params"], r["tokens"], r["compute"], tuple(sorted(r.get("at", {}).items())))
        targets.setdefault(key, r)
    if fit.model.grouped:
        lines += ["## Decisions at the targets", ""]
        lines.append(
            "Which arm (group) reaches the lower loss at each target, from paired posterior "
            "draws of the laws (parameter uncertainty, no run noise). Expected regret: what "
            "choosing the arm costs against the best arm of each draw; EVPI: the expected "
            "regret of the recommended arm."
        )
        for (n, d, c, at), r in targets.items():
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                if n is not None and d is not None:
                    result = compare(fit, params=n, tokens=d, prob=prob, at=dict(at))
                else:
                    result = compare(fit, compute=c, prob=prob, at=dict(at))
            caught += [str(w.message) for w in seen]
            name = r["label"] or (
                f"N = {format_count(n)}, D = {format_count(d)}"
                if n is not None and d is not None
                else f"C = {format_flops(c)} FLOPs"
            )
            lines += [
                "",
                f"**{name}**: recommended `{result.recommended}`, EVPI {result.evpi:.3g} nats.",
                "",
                f"| Arm | P(best) | Expected loss [{100 * prob:g}% interval] | Expected regret |",
                "|:--|--:|--:|--:|",
            ]
            for k, arm in enumerate(result.arms):
                med, lo, hi = format_estimate(result.expected[k], result.lower[k], result.upper[k])
                lines.append(
                    f"| {arm} | {result.p_best[k]:.2f} | {med} [{lo}, {hi}] | "
                    f"{result.expected_regret[k]:.3g} |"
                )
        lines.append("")
    named = set(fit.law.inputs) - {"params", "tokens", "compute"}
    if {"params", "tokens"} <= set(fit.law.inputs) and "compute" not in fit.law.inputs:
        lines += [
            "## Compute-optimal allocation at the targets' budgets",
            "",
            f"Loss-minimising N and D for each target's compute C = {fit.runs.flops_per_token:g}·N·D "
            f"(posterior median [{100 * prob:g}% interval]).",
            "",
            "| C (FLOPs) | Group | N_opt | D_opt | D/N | Loss |",
            "|--:|:--|--:|--:|--:|--:|",
        ]
        if named:
            lines[-3:-3] = [
                "With the named inputs of each target held fixed ("
                + ", ".join(sorted(named))
                + "), the loss-optimal N and D under that constraint.",
                "",
            ]
        groups = list(fit.group_names) if fit.model.grouped else [None]
        for _n, _d, c, at in targets:
            for g in groups:
                alloc = compute_optimal(fit, compute=c, group=g, at=dict(at))
                cells = []
                for name, fmt in (
                    ("params", format_count),
                    ("tokens", format_count),
                    ("tokens_per_param", lambda v: f"{v:.3g}"),
                    ("loss", None),
                ):
                    s = alloc.interval(name, prob)
                    med, lo, hi = (
                        float(np.atleast_1d(s[k])[0]) for k in ("median", "lower", "upper")
                    )
                    if fmt is None:
                        med_s, lo_s, hi_s = format_estimate(med, lo, hi)
                    else:
                        med_s, lo_s, hi_s = fmt(med), fmt(lo), fmt(hi)
                    cells.append(f"{med_s} [{lo_s}, {hi_s}]")
                lines.append(f"| {format_flops(c)} | {g or '–'} | " + " | ".join(cells) + " |")
        lines.append("")
    if caught:
        lines = [*(f"> **Warning:** {m}" for m in dict.fromkeys(caught)), "", *lines]
    return lines


def _reproduce_section(fit, command: str | None) -> list[str]:
    import arviz
    import matplotlib

    from .. import __version__

    record = fit._record()
    info = fit.info
    fit_command = info.get("command")
    lines = ["## Reproduce", ""]
    if fit_command:
        lines += ["Fit:", "", "```", fit_command, "```", ""]
    else:
        spec = fit.spec
        call = (
            f'bs.fit(runs, "{spec.name}", likelihood="{spec.likelihood}", '
            f'pooling="{spec.pooling}", chains={info.get("chains")}, draws={info.get("draws")}, '
            f"warmup={info.get('warmup')}, seed={info.get('seed')}, "
            f"target_accept={info.get('target_accept')})"
        )
        lines += [
            "Fitted from Python (no command recorded); the equivalent call on runs with the "
            "data hash below:",
            "",
            "```python",
            call,
            "```",
            "",
        ]
    if command:
        lines += ["Report:", "", "```", command, "```", ""]
    versions = {"bayescale": __version__, **dict(record.get("versions", {}))}
    versions.setdefault("arviz", arviz.__version__)
    versions.setdefault("numpy", np.__version__)
    versions.setdefault("python", platform.python_version())
    versions["matplotlib"] = matplotlib.__version__
    lines += [
        "| | |",
        "|:--|:--|",
        "| Software | " + ", ".join(f"{k} {v}" for k, v in versions.items()) + " |",
        f"| Sampler | NUTS, {info.get('chains')} chains × {info.get('draws')} draws after "
        f"{info.get('warmup')} warmup, seed {info.get('seed')}, target_accept "
        f"{info.get('target_accept')}, dense mass {info.get('dense_mass')}, device "
        f"{info.get('device')}, {info.get('seconds')} s |",
        f"| Data hash (SHA-256) | `{record.get('data_hash')}` |",
    ]
    if info.get("loaded_from"):
        lines.append(f"| Fit file | `{info['loaded_from']}` |")
    return [*lines, ""]


# --------------------------------------------------------------------------- report


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
