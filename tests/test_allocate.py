"""Compute-optimal allocation: truth coverage, closed form vs numerical, FLOP rules, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from allocate_helpers import KAPLAN_ND, synthetic_fit, true_optimum
from conftest import FAST, sampled

import bayescale as bs
from bayescale.allocate import (
    compute_optimal,
    flop_rule,
    frontier,
    optimal_log_params,
    overtraining,
    scaling_exponents,
)
from bayescale.cli import main
from bayescale.laws.simulate import HOFFMANN_2022


@pytest.fixture(scope="module")
def sim_fit():
    """Chinchilla fitted by NUTS to a ladder simulated from Hoffmann's law (max C ~ 1e21)."""
    frame = bs.simulate_ladder("chinchilla", HOFFMANN_2022, noise=0.01, seed=1)
    runs = bs.read_runs(frame, params="params", tokens="tokens", loss="loss")
    return bs.fit(runs, "chinchilla", **sampled(seed=2, progress=False, **FAST))


@pytest.fixture(scope="module")
def chin():
    return synthetic_fit("chinchilla", {"all": HOFFMANN_2022})


@pytest.fixture(scope="module")
def fit_file(chin, tmp_path_factory):
    return str(chin.to_netcdf(tmp_path_factory.mktemp("allocate") / "chin.nc"))


# --------------------------------------------------------------------------- posterior


@pytest.mark.slow
def test_true_optimum_100x_beyond_the_data_is_in_the_95_interval(sim_fit):
    assert sim_fit.diagnostics.ok, sim_fit.diagnostics.verdict()
    compute = 100 * sim_fit.runs.compute.max()
    n_true, d_true = true_optimum(HOFFMANN_2022, compute)
    loss_true = float(bs.get_law("chinchilla").loss(HOFFMANN_2022, params=n_true, tokens=d_true))
    alloc = compute_optimal(sim_fit, compute)
    assert alloc.method == "closed_form"
    for name, truth in (
        ("params", n_true),
        ("tokens", d_true),
        ("tokens_per_param", d_true / n_true),
        ("loss", loss_true),
    ):
        stats = alloc.interval(name, 0.95)
        assert stats["lower"][0] < truth < stats["upper"][0], (name, truth, stats)
    a = scaling_exponents(sim_fit).interval("a")
    a_true = HOFFMANN_2022["beta"] / (HOFFMANN_2022["alpha"] + HOFFMANN_2022["beta"])
    assert a["lower"] < a_true < a["upper"]


@pytest.mark.slow
def test_closed_form_and_numerical_agree_to_1e6(sim_fit):
    budgets = [1e19, 1e22, 1e25]
    closed = compute_optimal(sim_fit, budgets, method="closed_form")
    numerical = compute_optimal(sim_fit, budgets, method="numerical")
    assert (closed.method, numerical.method) == ("closed_form", "numerical")
    for name in ("params", "tokens", "tokens_per_param", "loss"):
        a, b = getattr(closed, name), getattr(numerical, name)
        assert np.max(np.abs(a / b - 1)) < 1e-6, name


def test_compute_bookkeeping_is_exact(chin):
    budgets = np.array([3.3e18, 1e21, 7.7e24])
    alloc = compute_optimal(chin, budgets)
    np.testing.assert_allclose(
        alloc.params * alloc.tokens * 6, np.broadcast_to(budgets, alloc.params.shape), rtol=1e-12
    )
    np.testing.assert_allclose(alloc.tokens_per_param, alloc.tokens / alloc.params, rtol=1e-15)
    eight = compute_optimal(chin, budgets, flops_per_token=8.0)
    np.testing.assert_allclose(
        eight.params * eight.tokens * 8, np.broadcast_to(budgets, alloc.params.shape), rtol=1e-12
    )
    assert eight.flops == "8ND"
    # same split of C/k: the optimum at C under k=8 is the optimum at 6C/8 under k=6
    np.testing.assert_allclose(
        eight.params, compute_optimal(chin, budgets * 6 / 8).params, rtol=1e-12
    )


def test_optimal_log_params_matches_hoffmann_closed_form(chin):
    log_n, how = optimal_log_params(chin, [1e22, 1e24])
    assert how == "closed_form" and log_n.shape == (chin.n_chains * chin.n_draws, 2)
    rep = {k: v.reshape(-1) for k, v in chin.reported().items()}
    s = 17  # any draw: the formula is per draw
    draw = {k: float(rep[k][s]) for k in ("E", "A", "B", "alpha", "beta")}
    np.testing.assert_allclose(
        np.exp(log_n[s]), [true_optimum(draw, c)[0] for c in (1e22, 1e24)], rtol=1e-12
    )


# --------------------------------------------------------------------------- FLOP rules


def test_constant_callable_rule_matches_closed_form(chin):
    closed = compute_optimal(chin, [1e20, 1e23])
    as_callable = compute_optimal(
        chin, [1e20, 1e23], flops_per_token=lambda n: np.full_like(n, 6.0)
    )
    assert as_callable.method == "numerical" and as_callable.flops == "k(N)*N*D"
    np.testing.assert_allclose(as_callable.params, closed.params, rtol=1e-6)
    general = compute_optimal(chin, [1e20, 1e23], flops=lambda n, d: 6.0 * n * d)
    np.testing.assert_allclose(general.params, closed.params, rtol=1e-6)


def test_attention_flops_rule_is_solved_and_met_exactly(chin):
    # C = 6ND + 12 n_layer n_ctx d_model D: the same rule as k(N) = 6 + 12 n_layer n_ctx d_model / N
    attention = 12 * 24 * 2048 * 1024.0
    budgets = np.array([1e19, 1e21])
    by_d = compute_optimal(chin, budgets, flops=lambda n, d: (6.0 * n + attention) * d)
    by_k = compute_optimal(chin, budgets, flops_per_token=lambda n: 6.0 + attention / n)
    np.testing.assert_allclose(
        (6.0 * by_d.params + attention) * by_d.tokens,
        np.broadcast_to(budgets, by_d.params.shape),
        rtol=1e-12,
    )
    np.testing.assert_allclose(by_d.params, by_k.params, rtol=1e-6)
    np.testing.assert_allclose(by_d.loss, by_k.loss, rtol=1e-12)
    # brute force along the constraint for a few draws: nothing on a fine grid beats it
    law = bs.get_law("chinchilla")
    rep = {k: v.reshape(-1) for k, v in chin.reported().items()}
    for s in (0, 500, 999):
        draw = {k: float(rep[k][s]) for k in law.reported_names}
        n_grid = np.geomspace(by_d.params[s, 1] / 3, by_d.params[s, 1] * 3, 20001)
        losses = law.loss(draw, params=n_grid, tokens=budgets[1] / (6 * n_grid + attention))
        assert abs(np.log(n_grid[np.argmin(losses)] / by_d.params[s, 1])) < 2e-4
        assert by_d.loss[s, 1] <= losses.min() * (1 + 1e-12)
    # attention FLOPs make each token dearer, so fewer tokens at a fixed budget
    assert np.all(by_d.tokens < compute_optimal(chin, budgets).tokens)


def test_flop_rule_validation(chin):
    with pytest.raises(ValueError, match="give flops_per_token or flops, not both"):
        flop_rule(chin, 6.0, lambda n, d: 6 * n * d)
    with pytest.raises(ValueError, match=r"flops_per_token must be finite and > 0 but got -6"):
        compute_optimal(chin, 1e21, flops_per_token=-6)
    with pytest.raises(ValueError, match=r"flops_per_token\(N\) must return finite values > 0"):
        compute_optimal(chin, 1e21, flops_per_token=lambda n: -n)
    with pytest.raises(ValueError, match="cannot meet the budget"):
        compute_optimal(chin, 1e21, flops=lambda n, d: 6 * n * d + 1e30)
    with pytest.raises(ValueError, match="has no closed-form allocation"):
        compute_optimal(chin, 1e21, method="closed_form", flops_per_token=lambda n: 6 + 0 * n)


# --------------------------------------------------------------------------- exponents


def test_scaling_exponents_closed_form_and_local_slope_agree(chin):
    closed = scaling_exponents(chin)
    rep = {k: v.reshape(-1) for k, v in chin.reported().items()}
    np.testing.assert_allclose(closed.a, rep["beta"] / (rep["alpha"] + rep["beta"]), rtol=1e-14)
    np.testing.assert_allclose(closed.a + closed.b, 1.0, rtol=1e-14)
    local = scaling_exponents(chin, 1e22, flops=lambda n, d: 6 * n * d)
    assert (closed.method, local.method, local.compute) == ("closed_form", "local_slope", 1e22)
    np.testing.assert_allclose(local.a, closed.a, atol=1e-5)
    np.testing.assert_allclose(local.b, closed.b, atol=1e-5)
    summary = closed.summary()
    assert list(summary.index) == ["a", "b", "tokens_per_param"]
    assert summary.loc["a", "lower"] < summary.loc["a", "median"] < summary.loc["a", "upper"]


def test_kaplan_nd_numerical_allocation_matches_its_closed_form():
    # L = [(Nc/N)^(aN/aD) + Dc/D]^aD along C = 6ND: N_opt^(r+1) = r Nc^r C / (6 Dc), r = aN/aD
    fit = synthetic_fit("kaplan_nd", {"all": KAPLAN_ND}, draws=250)
    budgets = np.array([1e19, 1e23])
    alloc = compute_optimal(fit, budgets)
    assert alloc.method == "numerical"
    rep = {k: v.reshape(-1)[:, None] for k, v in fit.reported().items()}
    r = rep["alpha_N"] / rep["alpha_D"]
    n_true = (r * rep["N_c"] ** r * budgets / (6 * rep["D_c"])) ** (1 / (r + 1))
    np.testing.assert_allclose(alloc.params, n_true, rtol=1e-6)
    slope = scaling_exponents(fit, 1e21)
    a_true = (rep["alpha_D"] / (rep["alpha_N"] + rep["alpha_D"]))[:, 0]
    np.testing.assert_allclose(slope.a, a_true, atol=1e-5)
    with pytest.raises(ValueError, match="give compute=C for the local slope"):
        scaling_exponents(fit)
    with pytest.raises(ValueError, match="no closed-form allocation"):
        compute_optimal(fit, 1e21, method="closed_form")


# ----------------------------------------------------------------------- frontier, over-training


def test_frontier_is_monotone_decreasing_in_every_draw(chin):
    grid = np.geomspace(1e17, 1e27, 21)
    alloc = compute_optimal(chin, grid)
    assert np.all(np.diff(alloc.loss, axis=1) < 0)
    assert np.all(np.diff(alloc.params, axis=1) > 0) and np.all(np.diff(alloc.tokens, axis=1) > 0)
    table = frontier(chin, grid, prob=0.9)
    assert list(table.columns[:4]) == ["compute", "params_median", "params_lower", "params_upper"]
    assert np.all(np.diff(table["loss_median"]) < 0)
    assert np.all(table["loss_lower"] < table["loss_median"])
    assert np.all(table["loss_median"] < table["loss_upper"])
    # the frontier lower-bounds every run at the same compute
    runs = chin.runs
    at_runs = compute_optimal(chin, runs.compute).loss
    along = np.exp(
        chin.log_loss_draws(
            {"params": runs.params, "tokens": runs.tokens}, np.zeros(runs.n_runs, int)
        )
    )
    assert np.all(at_runs <= along * (1 + 1e-12))


def test_overtraining_definitions(chin):
    n = 1.4e9
    multipliers = np.array([1.0, 5.0, 20.0, 80.0, 320.0, 640.0])
    ot = overtraining(chin, n, multipliers)
    s = chin.n_chains * chin.n_draws
    assert ot.loss.shape == (s, len(multipliers))
    np.testing.assert_allclose(ot.compute, 6 * n * n * multipliers, rtol=1e-15)
    assert np.all(ot.loss_penalty >= 0) and np.all(ot.compute_factor >= 1 - 1e-12)
    # C' is where the frontier reaches the over-trained run's loss
    s_idx = 123
    reached = compute_optimal(chin, ot.equal_loss_compute[s_idx]).loss[s_idx]
    np.testing.assert_allclose(reached, ot.loss[s_idx], rtol=1e-10)
    # a model trained as draw s's compute-optimal run pays nothing; far from it, both grow
    best = compute_optimal(chin, 1e21)
    n_opt, m_opt = best.params[s_idx, 0], best.tokens_per_param[s_idx, 0]
    at_opt = overtraining(chin, n_opt, [m_opt])
    np.testing.assert_allclose(at_opt.compute, 1e21, rtol=1e-12)
    assert at_opt.loss_penalty[s_idx, 0] < 1e-12 and at_opt.compute_factor[s_idx, 0] < 1 + 1e-9
    assert ot.compute_factor[s_idx, -1] > ot.compute_factor[s_idx, -2] > 1.01
    e = chin.reported()["E"].reshape(-1)[s_idx]
    assert e < ot.loss[s_idx, -1] < ot.loss[s_idx, 0]
    frame = ot.to_frame()
    assert {"compute_factor_median", "loss_penalty_upper", "optimal_loss_lower"} <= set(
        frame.columns
    )


def test_overtraining_bisection_for_laws_without_closed_form():
    fit = synthetic_fit("kaplan_nd", {"all": KAPLAN_ND}, draws=250)
    ot = overtraining(fit, 1e9, [2.0, 200.0])
    assert np.all(ot.compute_factor >= 1)
    reached = compute_optimal(fit, ot.equal_loss_compute[7]).loss[7]
    np.testing.assert_allclose(reached, ot.loss[7], rtol=1e-9)


def test_grouped_fit_allocates_per_arm():
    other = dict(HOFFMANN_2022, alpha=0.30, A=300.0)
    fit = synthetic_fit("chinchilla", {"a": HOFFMANN_2022, "b": other}, spread=0.0)
    for name, truth in (("a", HOFFMANN_2022), ("b", other)):
        alloc = compute_optimal(fit, 1e23, group=name)
        np.testing.assert_allclose(alloc.params[:, 0], true_optimum(truth, 1e23)[0], rtol=1e-12)
        assert alloc.group == name
    with pytest.raises(ValueError, match="unknown group 'c'"):
        compute_optimal(fit, 1e23, group="c")
    with pytest.raises(ValueError, match="this fit is grouped: name a group"):
        compute_optimal(fit, 1e23)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("budget", [0.0, -1e21, np.nan, [1e21, -5]])
def test_bad_budgets(chin, budget):
    with pytest.raises(ValueError, match="compute must be finite and > 0 but got"):
        compute_optimal(chin, budget)


def test_law_without_tokens_is_refused():
    fit = synthetic_fit("kaplan_n", {"all": {"N_c": 8.8e13, "alpha_N": 0.076}}, draws=250)
    message = "needs a law of both params and tokens"
    for call in (
        lambda: compute_optimal(fit, 1e21),
        lambda: scaling_exponents(fit),
        lambda: overtraining(fit, 1e9, [20]),
    ):
        with pytest.raises(ValueError, match=message):
            call()


# --------------------------------------------------------------------------- CLI


def test_cli_allocate_json_keys_and_values(chin, fit_file, capsys):
    assert main(["allocate", fit_file, "--compute", "1e23", "--json", "--prob", "0.9"]) == 0
    out, err = capsys.readouterr()
    payload = json.loads(out)
    assert set(payload) == {
        "params",
        "tokens",
        "tokens_per_param",
        "loss",
        "compute",
        "prob",
        "group",
        "method",
        "flops",
        "exponents",
        "diagnostics",
    }
    for name in ("params", "tokens", "tokens_per_param", "loss"):
        assert set(payload[name]) == {"median", "lower", "upper"}
    expected = compute_optimal(chin, 1e23).to_dict(0.9)
    for name in ("params", "tokens", "tokens_per_param", "loss"):
        for key in ("median", "lower", "upper"):
            assert payload[name][key] == pytest.approx(expected[name][key], rel=1e-9)
    assert payload["compute"] == 1e23 and payload["prob"] == 0.9 and payload["flops"] == "6ND"
    assert set(payload["exponents"]) == {"a", "b", "method"}
    assert err == ""
    assert main(["allocate", fit_file, "--compute", "1e23"]) == 0
    assert "tokens per param" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--compute=-1e21"], "expected a positive finite number but got '-1e21'"),
        (["--compute", "0"], "expected a positive finite number but got '0'"),
        (
            ["--compute", "1e21", "--group", "rpj"],
            "this fit has no groups but group 'rpj' was given",
        ),
        (["--compute", "1e21", "--prob", "1.5"], "prob should be in the interval (0, 1)"),
        ([], "the following arguments are required: --compute"),
    ],
)
def test_cli_allocate_bad_input_exits_2(fit_file, capsys, extra, message):
    assert main(["allocate", fit_file, *extra, "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err


def test_cli_allocate_refuses_a_law_of_params_only(tmp_path, capsys):
    fit = synthetic_fit("kaplan_n", {"all": {"N_c": 8.8e13, "alpha_N": 0.076}}, draws=250)
    path = str(fit.to_netcdf(tmp_path / "kaplan_n.nc"))
    assert main(["allocate", path, "--compute", "1e21", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs a law of both params and tokens" in err


def test_cli_allocate_unknown_group_of_a_grouped_fit(tmp_path, capsys):
    other = dict(HOFFMANN_2022, alpha=0.30)
    fit = synthetic_fit("chinchilla", {"c4": HOFFMANN_2022, "rpj": other}, draws=250)
    path = str(fit.to_netcdf(tmp_path / "grouped.nc"))
    assert main(["allocate", path, "--compute", "1e21", "--group", "rjp", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown group 'rjp'; did you mean 'rpj'?" in err
    assert main(["allocate", path, "--compute", "1e21", "--group", "rpj", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["group"] == "rpj"


# --------------------------------------------------------------------------- plots


def test_plots_return_axes_with_the_frontier(chin):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayescale.plots.allocate import (
        plot_isoloss,
        plot_optimal_params,
        plot_overtraining,
        plot_tokens_per_param,
    )

    ax = plot_optimal_params(chin, (1e18, 1e24), points=12)
    median = compute_optimal(chin, np.geomspace(1e18, 1e24, 12)).interval("params")["median"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), median)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    ax2 = plot_tokens_per_param(chin, (1e18, 1e24), points=12)
    assert len(ax2.lines) == 2  # median and the 20 tokens/param reference
    ax3 = plot_isoloss(chin, (1e18, 1e24), points=20)
    assert ax3.collections and ax3.get_xlabel() == "Parameters N"
    _fig, ax4 = plt.subplots()
    assert plot_overtraining(overtraining(chin, 1e9, [5, 20, 80]), ax=ax4) is ax4
    plt.close("all")
