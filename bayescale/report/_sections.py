"""The sections of :func:`bayescale.report.write_report`'s ``report.md``.

Each builder returns the Markdown lines of one section: the header and verdict, the
model, the data, the diagnostics, the decisions (arms compared at each target and the
compute-optimal allocation) and how to reproduce the fit.
"""

from __future__ import annotations

import platform
import warnings

import numpy as np

from ..plots.style import format_count, format_flops
from ..posterior.tables import format_estimate

_POOLING = {
    "none": "none: every parameter and the noise scale per group (independent fits)",
    "shared": "shared: exponents common to all groups; E and coefficients per group",
    "partial": "partial: exponents per group drawn around a common mean (hierarchical)",
}
_LIKELIHOOD = {
    "student_t": "Student-t on log loss (robust: the Bayesian analogue of a Huber loss)",
    "normal": "normal on log loss (least squares)",
}


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
            f'pooling="{spec.pooling}", seed={info.get("seed")}, '
            f"sampler=bs.SamplerOptions(chains={info.get('chains')}, draws={info.get('draws')}, "
            f"warmup={info.get('warmup')}, target_accept={info.get('target_accept')}))"
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
