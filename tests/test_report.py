"""Tables (Markdown / LaTeX / HTML), model comparison, predictions, and `bayescale report`."""

import io
import json
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from conftest import TWO_ARMS

from bayescale.cli import main
from bayescale.posterior import Fit
from bayescale.posterior.tables import (
    compare_table,
    format_estimate,
    latex_escape,
    latex_name,
    prediction_rows,
    predictions_table,
    to_table,
)

TARGET = {"params": 7e9, "tokens": 1.4e11}  # the two-arm fits are conftest.two_arm_fits


@pytest.fixture(scope="module")
def report(two_arm_fits, tmp_path_factory):
    """`bayescale report` run once on the grouped fit, through the CLI, with --json."""
    folder = tmp_path_factory.mktemp("report")
    fit_path = folder / "fit.nc"
    two_arm_fits["grouped"].to_netcdf(fit_path)
    out = folder / "appendix"
    target = f"{TARGET['params']:g},{TARGET['tokens']:g}"
    argv = ["report", str(fit_path), "--out", str(out), "--target", target, "--json"]
    return {"argv": argv, "out": out, "fit_path": fit_path}


@pytest.fixture(scope="module")
def report_run(report):
    """Exit code, stdout and stderr of that run (capsys is function-scoped)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(report["argv"])
    return code, (out.getvalue(), err.getvalue())


# --------------------------------------------------------------------------- numbers


def test_format_estimate_digits_follow_the_interval():
    assert format_estimate(1.80612, 1.77301, 1.83698) == ("1.806", "1.773", "1.837")
    assert format_estimate(447.2, 329.4, 620.8) == ("447", "329", "621")
    assert format_estimate(0.00369, 0.00312, 0.00433) == ("0.0037", "0.0031", "0.0043")
    assert format_estimate(8.8e13, 6.1e13, 1.1e14) == ("8.8e13", "6.1e13", "1.10e14")
    assert format_estimate(2.5e-4, 2.0e-4, 3.1e-4) == ("2.5e-4", "2.0e-4", "3.1e-4")


def test_latex_names_and_escaping():
    assert latex_escape("c4_original 5% & $x") == r"c4\_original 5\% \& \$x"
    assert latex_name("alpha[c4_original]") == r"$\alpha$[c4\_original]"
    assert latex_name("alpha_N") == r"$\alpha_{N}$"
    assert latex_name("N_c") == r"$N_{c}$"
    assert latex_name("eta_mu") == r"$\mu_{\eta}$"
    assert latex_name("sigma_downstream") == r"\texttt{sigma\_downstream}"


# --------------------------------------------------------------------------- parameter table


def test_markdown_table_has_one_row_per_parameter(two_arm_fits):
    fit = two_arm_fits["grouped"]
    text = fit.to_table(prob=0.9)
    lines = text.splitlines()
    assert lines[0] == "| Parameter | Median [90% interval] | R-hat | ESS bulk | ESS tail |"
    assert lines[1] == "|:--|:-:|--:|--:|--:|"
    summary = fit.summary(0.9)
    assert len(lines) == 2 + len(summary)
    for line, (name, row) in zip(lines[2:], summary.iterrows(), strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        med, lo, hi = format_estimate(row["median"], row["lower"], row["upper"])
        assert cells == [
            name,
            f"{med} [{lo}, {hi}]",
            f"{row['r_hat']:.3f}",
            f"{row['ess_bulk']:.0f}",
            f"{row['ess_tail']:.0f}",
        ]
    assert [c.split("|")[1].strip() for c in lines[2:4]] == ["E[arm_a]", "E[arm_b]"]
    assert text == to_table(fit, "markdown", 0.9)


def _check_latex_structure(text: str) -> None:
    begins = re.findall(r"\\begin\{(\w+)\}", text)
    ends = re.findall(r"\\end\{(\w+)\}", text)
    assert begins and sorted(begins) == sorted(ends)
    for env in set(begins):  # properly nested: each begin before its end
        assert text.index(rf"\begin{{{env}}}") < text.index(rf"\end{{{env}}}")
    top, mid, bottom = (text.index(r) for r in (r"\toprule", r"\midrule", r"\bottomrule"))
    assert top < mid < bottom
    assert text.count("{") - text.count(r"\{") == text.count("}") - text.count(r"\}")
    assert not re.search(r"(?<!\\)_", re.sub(r"\$[^$]*\$", "", text)), "unescaped _ outside math"


def test_latex_table_is_booktabs_with_siunitx_numbers(two_arm_fits):
    fit = two_arm_fits["grouped"]
    text = fit.to_table("latex")
    _check_latex_structure(text)
    body = text[text.index(r"\midrule") + len(r"\midrule") : text.index(r"\bottomrule")]
    rows = [r for r in body.strip().splitlines()]
    assert len(rows) == len(fit.summary()) and all(r.endswith(r"\\") for r in rows)
    assert all(r.count("&") == 4 for r in rows)
    e_row = fit.summary().loc["E[arm_a]"]
    med, lo, hi = format_estimate(e_row["median"], e_row["lower"], e_row["upper"])
    assert rows[0] == (
        rf"$E$[arm\_a] & \num{{{med}}} [\num{{{lo}}}, \num{{{hi}}}] & "
        rf"\num{{{e_row['r_hat']:.3f}}} & \num{{{e_row['ess_bulk']:.0f}}} & \num{{{e_row['ess_tail']:.0f}}} \\"
    )
    assert r"\caption{" in text and "Diagnostics: ok." in text
    bare = to_table(fit, "latex", floating=False)
    assert bare.startswith(r"\begin{tabular}{lcrrr}") and r"\caption" not in bare
    with pytest.raises(
        ValueError, match=r"^format must be one of markdown, latex, html but got 'md'$"
    ):
        fit.to_table("md")


def test_notebook_view_colours_the_verdict(two_arm_fits):
    fit = two_arm_fits["grouped"]
    html = fit._repr_html_()
    assert "diagnostics: ok" in html and "#1a7f37" in html
    assert html.count("<tr>") == 1 + len(fit.summary())
    # the same posterior with one chain shifted: the chains disagree, the view says so in red
    samples = {k: v.copy() for k, v in fit.samples.items()}
    samples["eta"][0] += 0.05
    broken = Fit(fit.model, samples, fit.stats, fit.runs, {**fit.info, "warn": False})
    html = broken._repr_html_()
    assert "diagnostics not ok" in html and "#b42318" in html and "max R-hat" in html


# --------------------------------------------------------------------------- comparison


def test_compare_table_prefers_the_model_that_knows_the_arms(two_arm_fits):
    text = compare_table({"one law": two_arm_fits["pooled"], "per-arm E": two_arm_fits["grouped"]})
    lines = text.splitlines()
    assert (
        lines[0]
        == "| Model | ELPD-LOO (SE) | ΔELPD (SE) | p_loo | Weight | Pareto k > 0.7 | Diagnostics |"
    )
    first, second = ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:4])
    assert first[0] == "per-arm E" and first[2] == "0.0 (0.0)"
    diff, dse = (float(v) for v in re.match(r"(-?[\d.]+) \(([\d.]+)\)", second[2]).groups())
    # the arms differ by 0.1 nats with 1% noise: one law for both is far worse
    assert second[0] == "one law" and diff < -2 * dse
    assert re.fullmatch(r"\d+", first[5]) and first[6] == "ok"
    latex = compare_table(
        {"one_law": two_arm_fits["pooled"], "per_arm": two_arm_fits["grouped"]}, format="latex"
    )
    _check_latex_structure(latex)
    assert r"one\_law" in latex


def test_compare_table_rejects_bad_input(two_arm_fits):
    with pytest.raises(ValueError, match=r"^fits must be a dict of at least 2 named fits"):
        compare_table({"only": two_arm_fits["pooled"]})
    other = two_arm_fits["pooled"]
    subset = Fit(
        other.model,
        other.samples,
        other.stats,
        other.runs.select(np.arange(20)),
        {**other.info, "warn": False},
    )
    with pytest.raises(ValueError, match=r"^fits\['b'\] was fitted to other runs than fits\['a'\]"):
        compare_table({"a": other, "b": subset})


# --------------------------------------------------------------------------- predictions


def test_predictions_table_one_row_per_arm_matches_predict(two_arm_fits):
    fit = two_arm_fits["grouped"]
    text = predictions_table(fit, [TARGET], prob=0.9)
    lines = text.splitlines()
    assert lines[0].startswith("| N | D | C (FLOPs) | Group | Loss of a new run [90% interval]")
    assert len(lines) == 2 + 2
    for line, arm in zip(lines[2:], TWO_ARMS, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[:4] == ["7B", "140B", "5.9e21", arm]
        law = fit.predict(**TARGET, group=arm, noise=False, prob=0.9)
        med, lo, hi = format_estimate(law.median[0], law.lower[0], law.upper[0])
        assert cells[5] == f"{med} [{lo}, {hi}]"
    rows = prediction_rows(fit, [{**TARGET, "group": "arm_b", "label": "big run"}])
    assert (
        len(rows) == 1
        and rows[0]["group"] == "arm_b"
        and rows[0]["compute"] == pytest.approx(5.88e21)
    )
    # arm_b's E is 0.1 nats higher: its predicted loss at the target is higher than arm_a's
    a, b = (fit.predict(**TARGET, group=g, noise=False).median[0] for g in TWO_ARMS)
    assert 0.05 < b - a < 0.15
    _check_latex_structure(predictions_table(fit, [TARGET], format="latex"))


def test_predictions_reject_bad_targets(two_arm_fits):
    fit = two_arm_fits["pooled"]
    with pytest.raises(
        ValueError,
        match=r"^targets\[1\] has unknown key 'flops'; use params, tokens, compute, group, label, at$",
    ):
        predictions_table(fit, [TARGET, {"flops": 1e21}])
    with pytest.raises(ValueError, match=r"^targets must be a non-empty list of dicts"):
        predictions_table(fit, TARGET)


# --------------------------------------------------------------------------- report


def test_report_cli_writes_every_file_it_lists(report, report_run):
    code, (out, err) = report_run
    assert code == 0, err
    payload = json.loads(out)
    assert set(payload) == {"out", "report", "table", "figures", "files", "diagnostics_ok"}
    assert payload["diagnostics_ok"] is True
    stems = {"fit_compute", "fit_tokens", "ppc", "residuals", "frontiers", "p_best"}
    stems |= {"prior_posterior", "pair", "trace", "rank", "backtest"}
    written = {p.rsplit("/", 1)[1] for p in payload["figures"]}
    assert written == {f"{s}.{ext}" for s in stems for ext in ("png", "pdf")}
    for path in payload["files"]:
        data = Path(path).read_bytes()
        assert len(data) > 0, path
        if path.endswith(".png"):
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
        if path.endswith(".pdf"):
            assert data[:5] == b"%PDF-"


def test_report_markdown_links_resolve_and_sections_are_there(report, report_run, two_arm_fits):
    text = (report["out"] / "report.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    links = re.findall(r"(?<!!)\[[^\]]*\]\(([^)]+)\)", text)
    assert len(images) == 11  # ten figures of the fit and its ladder's backtest
    for rel in images + links:
        target = report["out"] / rel
        assert target.is_file() and target.stat().st_size > 0, rel
    fit = two_arm_fits["grouped"]
    for heading in (
        "## Model",
        "## Data",
        "## Diagnostics",
        "## Parameters",
        "## Predictions",
        "## Decisions at the targets",
        "## Compute-optimal allocation",
        "## Figures",
        "## How far to trust it",
        "## Reproduce",
    ):
        assert heading in text
    # the ladder's own backtest: its drift folds and a held-out check with coverage
    assert "| compute | 0.25 |" in text and "Backtest of this ladder" in text
    assert "| bayescale |" in text and "| point fit (Huber + bootstrap) |" in text
    for site, prior in fit.model.priors.items():
        if site in fit.samples:
            assert f"{site} ~ {prior}" in text  # priors printed as Prior objects
    assert "Pooling | shared" in text and "**Verdict: ok.**" in text and "NOT OK" not in text
    assert "| Parameters N | 50M | " in text and "`arm_a` (15 runs)" in text
    assert "bayescale report " + " ".join(report["argv"][1:-1]) in text  # the exact command
    assert "recommended `arm_a`" in text  # arm_a's E is lower
    assert "numpyro" in text and "matplotlib" in text


def test_report_table_tex_compiles_structurally(report, report_run, two_arm_fits):
    text = (report["out"] / "table.tex").read_text()
    assert text.startswith(r"% needs \usepackage{booktabs} and \usepackage{siunitx}")
    tables = text.split(r"\end{table}")[:-1]
    assert len(tables) == 2  # parameters, predictions
    for table in tables:
        _check_latex_structure(table + r"\end{table}")
    assert text.count(r"\toprule") == text.count(r"\midrule") == text.count(r"\bottomrule") == 2


def test_report_cli_bad_input_exits_2(report, report_run, capsys):
    code = main(report["argv"][:-1])  # same output folder, no --force
    assert code == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith("exists; pass force=True (--force) to overwrite it")
    )
    code = main(["report", str(report["fit_path"]), "--out", "x", "--target", "7e21"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "error: law 'gadre2024' needs --target PARAMS,TOKENS (e.g. 70e9,1.4e12) but got '7e21'"
    )
    code = main(["report", str(report["fit_path"]), "--out", "x", "--target", "7e9,abc"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "error: --target expects PARAMS,TOKENS (e.g. 70e9,1.4e12) or COMPUTE, positive numbers, "
        "but got '7e9,abc'"
    )


def test_report_puts_a_failed_verdict_first(two_arm_fits):
    from bayescale.report import report_header

    fit = two_arm_fits["grouped"]
    samples = {k: v.copy() for k, v in fit.samples.items()}
    samples["eta"][0] += 0.05  # one chain elsewhere: R-hat fails
    broken = Fit(fit.model, samples, fit.stats, fit.runs, {**fit.info, "warn": False})
    header = report_header(broken)
    assert header[2].startswith("> **⚠ Diagnostics NOT OK**")
    assert header[3].startswith("> - max R-hat") and "not ok" in header[-2]
    assert not any("NOT OK" in line for line in report_header(fit))


def test_write_report_rejects_unknown_formats(two_arm_fits, tmp_path):
    from bayescale.report import write_report

    with pytest.raises(ValueError, match=r"^formats must be among png, pdf but got \['svg'\]$"):
        write_report(two_arm_fits["pooled"], tmp_path, formats=("svg",))
