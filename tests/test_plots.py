"""Figures: every plot function returns Axes/Figure without warnings and draws what the fit says."""

import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

import bayescale.plots as bsp
from bayescale.laws.priors import parse_prior
from bayescale.plots.fit import run_targets
from bayescale.plots.posterior import prior_density, prior_frozen, prior_sites
from bayescale.plots.style import PALETTE, format_count, format_flops


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --------------------------------------------------------------------------- style


def test_tick_labels_read_like_papers():
    assert [format_count(v) for v in (1e3, 1e8, 1.5e9, 2e12, 50)] == [
        "1K",
        "100M",
        "1.5B",
        "2T",
        "50",
    ]
    assert [format_flops(v) for v in (1e21, 3e21, 2.5e19)] == ["1e21", "3e21", "2.5e19"]
    assert format_count(0) == "" and format_flops(-1) == ""


def test_group_colors_are_fixed_per_group_and_distinct(two_arm_fits):
    colors = bsp.group_colors(two_arm_fits["grouped"])
    assert colors == {"arm_a": PALETTE[0], "arm_b": PALETTE[1]}
    assert bsp.group_colors(two_arm_fits["pooled"]) == {"all": PALETTE[0]}
    many = bsp.group_colors([f"g{i}" for i in range(12)])
    assert len(set(many.values())) == 12


def test_find_ladders_discrete_and_continuous():
    multipliers = np.array([5.0, 5, 10, 20, 20, 40, 80, 160, 320, 640])
    lad = bsp.find_ladders(multipliers, "tokens_per_param", max_ladders=5)
    assert lad.labels == ["D/N = 5", "D/N = 20", "D/N = 80", "D/N = 160", "D/N = 640"]
    assert lad.assign.tolist() == [0, 0, -1, 1, 1, -1, 2, 3, -1, 4]
    continuous = np.geomspace(0.5, 300, 40)
    lad = bsp.find_ladders(continuous, "tokens_per_param", max_ladders=4)
    assert len(lad.labels) == 4 and (lad.assign >= 0).all()
    assert np.bincount(lad.assign).tolist() == [10, 10, 10, 10]
    assert lad.labels[0].startswith("D/N ≈ ")


# --------------------------------------------------------------------------- plot_fit


def test_plot_fit_ungrouped_curves_are_the_posterior_median_law(two_arm_fits):
    fit = two_arm_fits["pooled"]
    ax = bsp.plot_fit(fit, x="params")
    assert isinstance(ax, Axes) and ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "Parameters N" and "Loss" in ax.get_ylabel()
    # each ladder curve (fixed D/N) is the median of the law over posterior draws
    for line in [ln for ln in ax.lines if len(ln.get_xdata()) == 80]:
        n = np.asarray(line.get_xdata())
        color = line.get_color()
        handle = next(h for h in ax.get_legend().legend_handles if h.get_color() == color)
        multiplier = float(handle.get_label().split("= ")[1])
        law = fit.predict(params=n, tokens=multiplier * n, noise=False)
        np.testing.assert_allclose(line.get_ydata(), law.median, rtol=1e-9)
    # every run is drawn once, at its observed loss
    points = np.vstack(
        [np.asarray(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)]
    )
    assert points.shape[0] == fit.runs.n_runs
    np.testing.assert_allclose(np.sort(points[:, 1]), np.sort(fit.runs.loss))
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all(re.fullmatch(r"\d+(\.\d+)?[KMBT]", s) for s in labels)


def test_plot_fit_grouped_has_one_panel_per_group_in_group_colours(two_arm_fits):
    fit = two_arm_fits["grouped"]
    fig = bsp.plot_fit(fit)
    assert isinstance(fig, Figure)
    titled = [a for a in fig.axes if a.get_title()]
    assert [a.get_title() for a in titled] == ["arm_a", "arm_b"]
    colors = bsp.group_colors(fit)
    assert [to_hex(a.title.get_color()) for a in titled] == [
        colors["arm_a"].lower(),
        colors["arm_b"].lower(),
    ]
    xlabels = [t.get_text() for t in titled[0].get_xticklabels() if t.get_text()]
    assert all(re.fullmatch(r"\d+(\.\d+)?e\d+", s) for s in xlabels)  # FLOPs: 1e18
    ax = bsp.plot_fit(fit, x="tokens", groups="arm_b")
    assert isinstance(ax, Axes) and ax.get_title() == "arm_b"


def test_plot_fit_draws_on_a_given_axes_and_isoflop_curves(two_arm_fits):
    _, ax = plt.subplots()
    assert bsp.plot_fit(two_arm_fits["grouped"], x="params", along="compute", ax=ax) is ax


def test_plot_fit_rejects_bad_arguments(two_arm_fits):
    fit = two_arm_fits["pooled"]
    with pytest.raises(
        ValueError, match=r"^x must be 'compute', 'params' or 'tokens' but got 'flops'$"
    ):
        bsp.plot_fit(fit, x="flops")
    with pytest.raises(ValueError, match=r"^along must differ from x but both are 'params'$"):
        bsp.plot_fit(fit, x="params", along="params")
    with pytest.raises(ValueError, match=r"^unknown group 'arm_c'; groups: arm_a, arm_b$"):
        bsp.plot_fit(two_arm_fits["grouped"], groups=["arm_c"])
    with pytest.raises(
        ValueError, match=r"^The value of prob should be in the interval \(0, 1\) but got 1.5$"
    ):
        bsp.plot_fit(fit, probs=(0.5, 1.5))


# --------------------------------------------------------------------------- checks


def test_plot_ppc_reports_the_coverage_it_draws(two_arm_fits):
    fit = two_arm_fits["grouped"]
    ax = bsp.plot_ppc(fit, prob=0.9)
    assert isinstance(ax, Axes)
    pred = fit.predict(**run_targets(fit), prob=0.9)
    inside = np.mean((fit.runs.loss >= pred.lower) & (fit.runs.loss <= pred.upper))
    text = " ".join(t.get_text() for t in ax.texts)
    assert f"{inside:.0%} of {fit.runs.n_runs} runs inside" in text and "90% interval" in text
    assert inside > 0.75  # the model is the one that simulated the data


def test_plot_residuals_one_panel_per_input_centred_on_zero(two_arm_fits):
    fit = two_arm_fits["grouped"]
    fig = bsp.plot_residuals(fit)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert [a.get_xlabel() for a in fig.axes] == ["Parameters N", "Training tokens D"]
    ys = np.concatenate(
        [
            np.asarray(c.get_offsets())[:, 1]
            for c in fig.axes[0].collections
            if isinstance(c, PathCollection)
        ]
    )
    assert ys.size == fit.runs.n_runs
    assert abs(np.median(ys)) < 0.01  # simulated with 1% noise: residuals centre on 0
    with pytest.raises(ValueError, match=r"^ax must hold 2 Axes \(one per input\) but got 1$"):
        bsp.plot_residuals(fit, ax=[fig.axes[0]])


# --------------------------------------------------------------------------- posterior


@pytest.mark.parametrize(
    "text",
    [
        "Normal(mu=0.5, sigma=2)",
        "HalfNormal(sigma=0.1)",
        "LogNormal(mu=1, sigma=0.5)",
        "TruncatedNormal(mu=0.3, sigma=0.3, low=0, high=1.5)",
        "Uniform(low=0, high=2.1)",
        "Exponential(rate=3)",
        "Gamma(concentration=2, rate=0.1)",
        "HalfCauchy(scale=1)",
        "StudentT(df=3, mu=0, sigma=1)",
        "Beta(alpha=2, beta=5)",
    ],
)
def test_prior_density_is_numpyros_and_matches_scipy(text):
    prior = parse_prior(text)
    frozen = prior_frozen(prior)
    grid = np.linspace(*frozen.ppf([0.001, 0.999]), 200)
    np.testing.assert_allclose(prior_density(prior, grid), frozen.pdf(grid), rtol=1e-6, atol=1e-12)
    outside = np.array([-1.0]) if frozen.ppf(0.0) >= 0 else np.array([np.inf])
    assert prior_density(prior, outside)[0] == 0.0


def test_prior_density_compiles_once_per_prior_structure(monkeypatch):
    from bayescale.plots import posterior as _plots_posterior

    monkeypatch.setattr(_plots_posterior, "_DENSITIES", {})
    grid = np.linspace(-5.0, 5.0, 101)
    priors = [parse_prior(f"Normal(mu={mu}, sigma={s})") for mu, s in ((0, 1), (1, 2), (-2, 0.5))]
    for prior in priors:  # one program serves all three: their numbers are its arguments
        np.testing.assert_allclose(
            prior_density(prior, grid), prior_frozen(prior).pdf(grid), rtol=1e-9, atol=1e-300
        )
    assert len(_plots_posterior._DENSITIES) == 1
    shifted = parse_prior("Gamma(concentration=2, rate=0.1, loc=1)")  # another structure
    assert prior_density(shifted, np.array([0.5, 3.0]))[0] == 0.0
    assert len(_plots_posterior._DENSITIES) == 2


def test_plot_prior_posterior_panels_and_honest_scale_labels(two_arm_fits):
    fit = two_arm_fits["grouped"]
    fig = bsp.plot_prior_posterior(fit)
    sites = [s for s, _ in prior_sites(fit)]
    assert sites == ["E", "eta", "log_N_term", "log_D_term", "sigma", "nu", "scatter_growth"]
    main = [a for a in fig.axes if a.get_title(loc="left")]
    assert [a.get_title(loc="left") for a in main] == sites
    by_site = dict(zip(sites, main, strict=True))
    assert "sampled scale" in by_site["log_N_term"].get_xlabel()
    assert "N_ref" in by_site["log_N_term"].get_xlabel()
    assert "prior TruncatedNormal(mu=0.3, sigma=0.1" in by_site["eta"].get_xlabel()
    # E's prior is TruncatedNormal(0.55 m, 0.3 m) on (0, m): the dashed line is its density
    from scipy import stats

    e_prior = fit.model.priors["E"].params
    dashed = next(ln for ln in by_site["E"].lines if ln.get_linestyle() == "--")
    x = dashed.get_xdata()
    inside = (x > 0.01) & (x < e_prior["high"] - 0.01)
    a, b = (np.array([e_prior["low"], e_prior["high"]]) - e_prior["mu"]) / e_prior["sigma"]
    density = stats.truncnorm.pdf(x[inside], a, b, loc=e_prior["mu"], scale=e_prior["sigma"])
    np.testing.assert_allclose(dashed.get_ydata()[inside], density, rtol=1e-6)
    # the data identify E per arm: contraction near 1
    contraction = float(by_site["eta"].get_title(loc="right").split()[-1])
    assert contraction > 0.9


def test_plot_pair_correlations_and_layout(two_arm_fits):
    fit = two_arm_fits["pooled"]
    fig = bsp.plot_pair(fit)
    visible = [a for a in fig.axes if a.get_visible()]
    assert len(visible) == 6  # lower triangle of a 3x3 corner plot: E, A, eta
    rep = fit.reported_flat()
    titles = [a.get_title() for a in visible if a.get_title().startswith("ρ")]
    expected_e_eta = np.corrcoef(rep["E"].ravel(), rep["eta"].ravel())[0, 1]
    assert f"ρ = {expected_e_eta:+.2f}" in titles
    grouped = bsp.plot_pair(two_arm_fits["grouped"], var_names=("E", "eta"))
    assert any(" / " in a.get_title() for a in grouped.axes)  # one ρ per arm
    with pytest.raises(ValueError, match=r"^var_names has 'alpha', not a parameter of this fit"):
        bsp.plot_pair(fit, var_names=("E", "alpha"))


def test_plot_trace_and_rank_return_figures(two_arm_fits):
    trace = bsp.plot_trace(two_arm_fits["grouped"])
    assert isinstance(trace, Figure)
    legend_texts = [t.get_text() for lg in trace.legends for t in lg.get_texts()]
    assert legend_texts == ["arm_a", "arm_b", "shared"]
    rank = bsp.plot_rank(two_arm_fits["pooled"], var_names=["E", "eta"])
    assert isinstance(rank, Figure)
    assert {a.get_title() for a in rank.axes if a.get_title()} == {"E", "eta"}
