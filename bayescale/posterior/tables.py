r"""Tables for papers and notebooks: parameters, model comparison, predictions.

Every table comes as Markdown (GitHub pipes), LaTeX (booktabs rules, ``\num{}`` numbers
for siunitx, underscores escaped) or HTML. Numbers carry as many digits as their interval
resolves: ``1.806 [1.773, 1.837]`` for ``E``, ``447 [329, 620]`` for ``A``, and
``8.8e13 [6.1e13, 1.10e14]`` for a Kaplan ``N_c`` (same resolution, 1e12, throughout).

Example:
    >>> format_estimate(1.80612, 1.77301, 1.83698)
    ('1.806', '1.773', '1.837')
    >>> format_estimate(8.8e13, 6.1e13, 1.1e14)
    ('8.8e13', '6.1e13', '1.10e14')
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from ._cells import (
    FORMATS,
    LATEX_PREAMBLE,
    PARETO_K_MAX,
    _check_format,
    _ess,
    _num,
    _render,
    _rhat,
    format_estimate,
    latex_escape,
    latex_name,
)

__all__ = [
    "FORMATS",
    "LATEX_PREAMBLE",
    "compare_table",
    "fit_html",
    "format_estimate",
    "latex_escape",
    "latex_name",
    "prediction_rows",
    "predictions_table",
    "to_table",
]


# --------------------------------------------------------------------------- parameters


def to_table(
    fit,
    format: str = "markdown",
    prob: float = 0.95,
    *,
    caption: str | None = None,
    floating: bool = True,
) -> str:
    r"""Posterior median and equal-tailed interval of every parameter, with R-hat and ESS.

    Args:
        fit: a :class:`~bayescale.posterior.Fit`.
        format: ``markdown``, ``latex`` (booktabs + siunitx ``\num``) or ``html``.
        prob: interval probability.
        caption: LaTeX caption (default: law, runs, interval and diagnostics verdict).
        floating: LaTeX only: wrap the ``tabular`` in a ``table`` float with the caption.

    Returns:
        The table as text: a header row, then one row per parameter.

    Example:
        >>> print(fit.to_table())  # doctest: +SKIP
        | Parameter | Median [95% interval] | R-hat | ESS bulk | ESS tail |
        |:--|--:|--:|--:|--:|
        | E | 1.806 [1.773, 1.837] | 1.001 | 1839 | 1450 |
    """
    _check_format(format)
    summary = fit.summary(prob)
    pct = f"{100 * prob:g}%"
    pct_tex = pct.replace("%", r"\%")
    rows = []
    for name, row in summary.iterrows():
        med, lo, hi = format_estimate(row["median"], row["lower"], row["upper"])
        r_hat, bulk, tail = _rhat(row["r_hat"]), _ess(row["ess_bulk"]), _ess(row["ess_tail"])
        if format == "latex":
            rows.append(
                [
                    latex_name(name),
                    f"{_num(med)} [{_num(lo)}, {_num(hi)}]",
                    _num(r_hat),
                    _num(bulk),
                    _num(tail),
                ]
            )
        else:
            cell = html.escape if format == "html" else str
            rows.append([cell(str(name)), f"{med} [{lo}, {hi}]", r_hat, bulk, tail])
    if format == "latex":
        header = [
            "Parameter",
            rf"Median [{pct_tex} interval]",
            r"$\hat{R}$",
            r"ESS\textsubscript{bulk}",
            r"ESS\textsubscript{tail}",
        ]
    else:
        header = ["Parameter", f"Median [{pct} interval]", "R-hat", "ESS bulk", "ESS tail"]
    if caption is None and format == "latex":
        verdict = fit.diagnostics.verdict()
        caption = (
            rf"Posterior of the \texttt{{{latex_escape(fit.law.name)}}} law "
            rf"(\texttt{{{latex_escape(fit.law.formula)}}}) fitted to {fit.runs.n_runs} runs: "
            rf"posterior median and equal-tailed {pct_tex} interval; $\hat{{R}}$ and "
            f"effective sample sizes from {fit.n_chains} chains of {fit.n_draws} draws. "
            f"Diagnostics: {latex_escape(verdict)}."
        )
    return _render(
        header,
        rows,
        format,
        align="lcrrr",
        caption=caption or "",
        label="tab:bayescale-parameters",
        floating=floating,
    )


def fit_html(fit, prob: float = 0.95) -> str:
    """The notebook view of a fit: headline, coloured diagnostics verdict, parameter table."""
    d = fit.diagnostics
    head = (
        f"<p><strong>Fit</strong> {html.escape(fit.spec.name)}: "
        f"<code>{html.escape(fit.law.formula)}</code> on {fit.runs.n_runs} runs, "
        f"{html.escape(fit.spec.likelihood)} likelihood, pooling {html.escape(fit.spec.pooling)}, "
        f"{fit.n_chains}&times;{fit.n_draws} draws</p>"
    )
    detail = (
        f"max R-hat {d.max_r_hat:.3f}, {d.divergences} divergences, "
        f"min ESS bulk {d.min_ess_bulk:.0f}"
    )
    if d.ok:
        verdict = (
            f'<p style="color:#1a7f37"><strong>diagnostics: ok</strong> ({html.escape(detail)})</p>'
        )
    else:
        items = "".join(f"<li>{html.escape(m)}</li>" for m in d.messages)
        verdict = (
            '<div style="color:#b42318"><strong>diagnostics not ok</strong> '
            f"({html.escape(detail)})<ul>{items}</ul></div>"
        )
    return f'<div class="bayescale-fit">{head}{verdict}{to_table(fit, "html", prob)}</div>'


# --------------------------------------------------------------------------- comparison


def _same_runs(a, b) -> bool:
    """Same runs in the same order (groups may differ: grouped vs pooled models)."""
    if a.n_runs != b.n_runs:
        return False
    for name in ("params", "tokens", "compute", "loss"):
        x, y = getattr(a, name), getattr(b, name)
        if (x is None) != (y is None) or (x is not None and not np.array_equal(x, y)):
            return False
    return True


def compare_table(fits: Mapping, format: str = "markdown") -> str:
    r"""Compare model specs fitted to the same runs by PSIS-LOO (ArviZ ``compare``).

    Columns: ELPD-LOO with its standard error, the difference from the best model with
    the standard error of the difference, the effective number of parameters ``p_loo``,
    stacking weight, and the number of runs with Pareto k > 0.7 (where PSIS-LOO is
    unreliable: such runs are listed under the table, not hidden as warnings).

    Args:
        fits: ``{name: Fit}``, at least two, all on the same runs.
        format: ``markdown``, ``latex`` or ``html``.

    Example:
        >>> print(compare_table({"student_t": fit_t, "normal": fit_n}))  # doctest: +SKIP
    """
    import arviz as az

    _check_format(format)
    if not isinstance(fits, Mapping) or len(fits) < 2:
        raise ValueError(
            f"fits must be a dict of at least 2 named fits but got {type(fits).__name__}"
            f" with {len(fits) if hasattr(fits, '__len__') else 0} entries"
        )
    first_name, first = next(iter(fits.items()))
    for name, fit in fits.items():
        if not hasattr(fit, "to_datatree"):
            raise ValueError(f"fits[{name!r}] must be a Fit but got {type(fit).__name__}")
        if not _same_runs(fit.runs, first.runs):
            raise ValueError(
                f"fits[{name!r}] was fitted to other runs than fits[{first_name!r}]; "
                "PSIS-LOO compares models on the same runs only"
            )
    loo, bad_k = {}, {}
    with warnings.catch_warnings():
        # Pareto-k warnings become a column of the table instead
        warnings.simplefilter("ignore")
        for name, fit in fits.items():
            loo[name] = az.loo(fit.to_datatree(), pointwise=True)
            k = np.asarray(loo[name].pareto_k).reshape(-1)
            bad_k[name] = int(np.sum(k > PARETO_K_MAX))
        table = az.compare(loo, round_to="none")
    rows, notes = [], []
    for name, row in table.iterrows():
        elpd, se = float(row["elpd"]), float(row["se"])
        diff, dse = float(row["elpd_diff"]), float(row["dse"])
        cells = [
            str(name),
            f"{elpd:.1f} ({se:.1f})",
            f"{diff:.1f} ({dse:.1f})",
            f"{float(row['p']):.1f}",
            f"{float(row['weight']):.2f}",
            str(bad_k[name]),
            "ok" if fits[name].diagnostics.ok else "not ok",
        ]
        if format == "latex":
            cells = [
                latex_escape(cells[0]),
                f"{_num(f'{elpd:.1f}')} ({_num(f'{se:.1f}')})",
                f"{_num(f'{diff:.1f}')} ({_num(f'{dse:.1f}')})",
                _num(cells[3]),
                _num(cells[4]),
                _num(cells[5]),
                cells[6],
            ]
        elif format == "html":
            cells[0] = html.escape(cells[0])
        rows.append(cells)
        if bad_k[name]:
            notes.append(
                f"{name}: {bad_k[name]} run(s) with Pareto k > {PARETO_K_MAX}; "
                "PSIS-LOO is unreliable there (refit without them or use K-fold)."
            )
    if format == "latex":
        header = [
            "Model",
            r"ELPD\textsubscript{LOO} (SE)",
            r"$\Delta$ELPD (SE)",
            r"$p_\mathrm{LOO}$",
            "Weight",
            r"Pareto $k > 0.7$",
            "Diagnostics",
        ]
        notes = [latex_escape(n) for n in notes]
    else:
        header = [
            "Model",
            "ELPD-LOO (SE)",
            "ΔELPD (SE)",
            "p_loo",
            "Weight",
            "Pareto k > 0.7",
            "Diagnostics",
        ]
        if format == "html":
            notes = [html.escape(n) for n in notes]
    return _render(
        header,
        rows,
        format,
        align="lrrrrrl",
        caption="Model comparison by PSIS-LOO cross-validation on the same runs (higher ELPD is better).",
        label="tab:bayescale-compare",
        notes=notes,
    )


# --------------------------------------------------------------------------- predictions

_TARGET_KEYS = ("params", "tokens", "compute", "group", "label", "at")


def prediction_rows(
    fit, targets: Sequence[Mapping], prob: float = 0.95, seed: int = 0
) -> list[dict]:
    """Predicted loss of a new run (run noise included) and of the law, per target.

    A grouped fit predicts every group for a target that names none.

    Example:
        >>> prediction_rows(fit, [{"params": 70e9, "tokens": 1.4e12}])[0]["new_run"]  # doctest: +SKIP
        {'median': 1.93, 'mean': 1.93, 'lower': 1.88, 'upper': 1.99, 'prob': 0.95}
    """
    from .core import check_prob

    prob = check_prob(prob)
    if isinstance(targets, Mapping) or not isinstance(targets, Sequence) or not targets:
        raise ValueError(
            "targets must be a non-empty list of dicts like {'params': N, 'tokens': D}"
        )
    out = []
    for i, target in enumerate(targets):
        if not isinstance(target, Mapping):
            raise ValueError(f"targets[{i}] must be a dict but got {type(target).__name__}")
        unknown = [k for k in target if k not in _TARGET_KEYS]
        if unknown:
            raise ValueError(
                f"targets[{i}] has unknown key {unknown[0]!r}; use {', '.join(_TARGET_KEYS)}"
            )
        n, d, c = (target.get(k) for k in ("params", "tokens", "compute"))
        fpt = float(fit.info.get("flops_per_token", 6.0))
        if d is None and n is not None and c is not None:
            d = float(c) / (fpt * float(n))
        if c is None and n is not None and d is not None:
            c = fpt * float(n) * float(d)
        if fit.model.grouped and target.get("group") is None:
            groups = list(fit.group_names)
        else:
            groups = [target.get("group")]
        for group in groups:
            sizes = {"params": n, "tokens": d, "compute": c}
            at = dict(target.get("at") or {})  # named inputs: {"U": 5e9}
            new_run = fit.predict(**sizes, group=group, prob=prob, seed=seed, at=at)
            law = fit.predict(**sizes, group=group, prob=prob, seed=seed, noise=False, at=at)
            out.append(
                {
                    "label": target.get("label"),
                    **{k: None if v is None else float(v) for k, v in sizes.items()},
                    "at": at,
                    "group": group,
                    "new_run": new_run.to_dict(),
                    "law": law.to_dict(),
                }
            )
    return out


def predictions_table(
    fit, targets: Sequence[Mapping], prob: float = 0.95, format: str = "markdown", seed: int = 0
) -> str:
    """Predicted loss at target sizes: a new run (with run noise) and the law itself.

    Args:
        fit: a :class:`~bayescale.posterior.Fit`.
        targets: dicts with ``params``/``tokens``/``compute`` (missing ones follow from
            C = 6ND), optional ``group``, ``label`` and ``at`` (named inputs, ``{"U": 5e9}``).
        prob: interval probability.
        format: ``markdown``, ``latex`` or ``html``.

    Example:
        >>> print(predictions_table(fit, [{"params": 70e9, "tokens": 1.4e12, "label": "Chinchilla"}]))  # doctest: +SKIP
    """
    from .._format import format_count, format_flops

    _check_format(format)
    rows_data = prediction_rows(fit, targets, prob, seed)
    grouped = fit.model.grouped
    labelled = any(r["label"] for r in rows_data)
    named = list(dict.fromkeys(k for r in rows_data for k in r.get("at", {})))  # ["U"]
    pct = f"{100 * prob:g}%"
    rows = []
    for r in rows_data:
        sizes = [
            format_count(r["params"]) if r["params"] else "–",
            format_count(r["tokens"]) if r["tokens"] else "–",
            format_flops(r["compute"]) if r["compute"] else "–",
        ]
        cells = ([str(r["label"] or "")] if labelled else []) + sizes
        cells += [format_count(r["at"][k]) if k in r["at"] else "–" for k in named]
        if grouped:
            cells.append(str(r["group"]))
        for key in ("new_run", "law"):
            p = r[key]
            med, lo, hi = format_estimate(p["median"], p["lower"], p["upper"])
            cells.append(
                f"{_num(med)} [{_num(lo)}, {_num(hi)}]"
                if format == "latex"
                else f"{med} [{lo}, {hi}]"
            )
        if format == "latex":
            cells = [latex_escape(c) if i < len(cells) - 2 else c for i, c in enumerate(cells)]
            if r["compute"]:
                cells[(1 if labelled else 0) + 2] = _num(sizes[2])
        elif format == "html":
            cells = [html.escape(c) for c in cells]
        rows.append(cells)
    pct_tex = pct.replace("%", r"\%")
    header = (
        (["Target"] if labelled else [])
        + ["N", "D", "C (FLOPs)"]
        + named
        + (["Group"] if grouped else [])
    )
    if format == "latex":
        header += [f"New run [{pct_tex}]", f"Law [{pct_tex}]"]
    else:
        header += [f"Loss of a new run [{pct} interval]", f"Law, no run noise [{pct} interval]"]
    align = ("l" if labelled else "") + "rrr" + "r" * len(named) + ("l" if grouped else "") + "rr"
    return _render(
        header,
        rows,
        format,
        align=align,
        caption=(
            "Predicted loss (nats/token): posterior predictive median and interval of a new "
            "run, and of the law without run-to-run noise."
        ),
        label="tab:bayescale-predictions",
    )
