"""IsoFLOP analysis: Approach-2 parabolas, near-optimum selection, per-budget tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from allocate_helpers import isoflop_runs, synthetic_fit, true_optimum

import bayescale as bs
from bayescale.allocate.isoflop import (
    exponent_table,
    isoflop_table,
    near_optimum,
    parabola_baseline,
    sweep_budgets,
    sweep_residuals,
    without_sweep,
)
from bayescale.data.datasets import load_porian2024_exponents
from bayescale.laws.simulate import HOFFMANN_2022

A_TRUE = HOFFMANN_2022["beta"] / (HOFFMANN_2022["alpha"] + HOFFMANN_2022["beta"])
BUDGETS = np.geomspace(1e18, 1e21, 8)
KAPLAN_SETUP = dict(
    hparams="base", warmup="long", decay="kaplan", param_count="kaplan", loss_split="train"
)


def test_parabola_baseline_recovers_a_on_noiseless_isoflop_data():
    runs = isoflop_runs(HOFFMANN_2022, BUDGETS, offsets=np.linspace(-1.5, 1.0, 9))
    base = parabola_baseline(runs, bootstrap=200)
    # the isoFLOP curve is not a parabola, but its shape in log(N/N_opt) is the same at every
    # budget, so every vertex is off by the same factor and the slope is exact
    assert abs(base.a - A_TRUE) < 1e-9
    assert base.vertices["used"].all() and len(base.vertices) == len(BUDGETS)
    n_opt = true_optimum(HOFFMANN_2022, base.vertices["compute"].to_numpy())[0]
    ratio = base.vertices["params"].to_numpy() / n_opt
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)
    np.testing.assert_allclose(
        base.params_at(BUDGETS), ratio[0] * true_optimum(HOFFMANN_2022, BUDGETS)[0], rtol=1e-9
    )


def test_parabola_bootstrap_interval_covers_a_on_noisy_data():
    runs = isoflop_runs(HOFFMANN_2022, BUDGETS, noise=0.003, seed=1)
    base = parabola_baseline(runs, bootstrap=1000, seed=0)
    stats = base.interval(0.95)
    assert stats["lower"] < A_TRUE < stats["upper"]
    assert stats["lower"] < stats["estimate"] < stats["upper"]
    assert 0.003 < stats["sd"] < 0.05
    vert = base.vertices
    assert (vert["params_lower"] < vert["params"]).all() and (
        vert["params"] < vert["params_upper"]
    ).all()
    again = parabola_baseline(runs, bootstrap=1000, seed=0)
    np.testing.assert_array_equal(again.a_draws, base.a_draws)  # seeded


def test_budgets_without_an_inner_minimum_are_left_out():
    # the smallest budget sees only the rising side of its curve: its vertex lies outside
    frame = isoflop_runs(HOFFMANN_2022, BUDGETS).frame()
    n_opt = true_optimum(HOFFMANN_2022, BUDGETS[0])[0]
    keep = ~((frame["sweep"] == f"{BUDGETS[0]:.3g}") & (frame["params"] < 1.2 * n_opt))
    runs = bs.read_runs(
        frame[keep.to_numpy()], params="params", tokens="tokens", loss="loss", sweep="sweep"
    )
    base = parabola_baseline(runs, bootstrap=50)
    assert base.vertices["used"].tolist() == [False] + [True] * (len(BUDGETS) - 1)
    assert abs(base.a - A_TRUE) < 1e-9
    flat = runs.select(runs.sweep == runs.sweep_names.index(f"{BUDGETS[0]:.3g}"))
    with pytest.raises(ValueError, match=r"only 0 budget\(s\) have a parabola with a minimum"):
        parabola_baseline(flat, bootstrap=50)


def test_near_optimum_keeps_runs_within_the_excess_of_each_sweep():
    frame = pd.DataFrame(
        {
            "params": [1e7, 2e7, 4e7, 8e7, 1e8, 2e8, 4e8],
            "tokens": [1e9] * 7,
            "loss": [3.3, 3.0, 3.05, 4.0, 2.5, 2.6, 2.9],
            "budget": ["a", "a", "a", "a", "b", "b", "b"],
        }
    )
    runs = bs.read_runs(frame, params="params", tokens="tokens", loss="loss", sweep="budget")
    kept = near_optimum(runs, max_excess=0.1, min_points=1)
    assert kept.loss.tolist() == [3.3, 3.0, 3.05, 2.5, 2.6]  # 3.3 <= 1.1*3.0, 4.0 > 3.3
    kept = near_optimum(runs, max_excess=0.01, min_points=3)
    assert kept.loss.tolist() == [3.3, 3.0, 3.05, 2.5, 2.6, 2.9]  # three lowest per sweep
    with pytest.raises(ValueError, match="max_excess must be a number > 0 but got -1"):
        near_optimum(runs, max_excess=-1)
    budgets = sweep_budgets(runs)
    assert budgets["sweep"].tolist() == ["a", "b"]
    np.testing.assert_allclose(budgets["compute_spread"], [8.0, 4.0])
    np.testing.assert_allclose(budgets["compute"], [6e9 * np.sqrt(1e7 * 8e7), 6e9 * 2e8])
    assert without_sweep(runs).sweep is None


def test_runs_without_sweep_are_refused():
    runs = bs.read_runs(bs.simulate_ladder(), params="params", tokens="tokens", loss="loss")
    with pytest.raises(ValueError, match="isoFLOP analysis needs a sweep column"):
        parabola_baseline(runs)
    with pytest.raises(ValueError, match="bootstrap must be an integer >= 10 but got 5"):
        parabola_baseline(isoflop_runs(HOFFMANN_2022, BUDGETS), bootstrap=5)


def test_isoflop_table_puts_law_parabola_and_best_run_side_by_side():
    runs = isoflop_runs(HOFFMANN_2022, BUDGETS, noise=0.002, seed=2)
    fit = synthetic_fit("chinchilla", {"all": HOFFMANN_2022}, spread=0.01, runs=without_sweep(runs))
    base = parabola_baseline(runs, bootstrap=200)
    table = isoflop_table(fit, runs, baseline=base, prob=0.9)
    assert table["sweep"].tolist() == [f"{c:.3g}" for c in BUDGETS]
    n_true = true_optimum(HOFFMANN_2022, table["compute"].to_numpy())[0]
    assert ((table["params_lower"] < n_true) & (n_true < table["params_upper"])).all()
    np.testing.assert_allclose(table["params_median"], n_true, rtol=0.05)
    np.testing.assert_allclose(table["parabola_params"], base.vertices["params"])
    frame = runs.frame()
    for _, row in table.iterrows():
        sweep = frame[frame["sweep"] == row["sweep"]]
        assert row["best_loss"] == sweep["loss"].min()
        assert row["best_params"] == sweep.loc[sweep["loss"].idxmin(), "params"]
        assert row["n_runs"] == len(sweep)
    published = {"simulated": (A_TRUE, A_TRUE, A_TRUE)}
    exps = exponent_table({"simulated": fit}, {"simulated": base}, published)
    assert exps["method"].tolist() == [
        "posterior (chinchilla)",
        "parabola vertices (Approach 2, bootstrap)",
        "published",
    ]
    assert exps.loc[0, "lower"] < A_TRUE < exps.loc[0, "upper"]
    assert exps.loc[1, "median"] == base.a


def test_sweep_residuals_recover_shared_offsets_per_budget():
    frame = isoflop_runs(HOFFMANN_2022, BUDGETS).frame()
    offsets = dict(
        zip(frame["sweep"].unique(), np.linspace(-0.05, 0.05, len(BUDGETS)), strict=True)
    )
    frame["loss"] *= np.exp(frame["sweep"].map(offsets))
    runs = bs.read_runs(frame, params="params", tokens="tokens", loss="loss", sweep="sweep")
    fit = synthetic_fit("chinchilla", {"all": HOFFMANN_2022}, spread=1e-4, runs=without_sweep(runs))
    table = sweep_residuals(fit, runs)
    assert table["sweep"].tolist() == list(offsets)
    np.testing.assert_allclose(table["mean_residual"], list(offsets.values()), atol=1e-3)
    assert (table["sd_residual"] < 1e-3).all() and (table["n_runs"] == 9).all()
    with pytest.raises(ValueError, match="isoFLOP analysis needs a sweep column"):
        sweep_residuals(fit)


def test_porian_parabola_baseline_reproduces_the_published_exponents(shared_data):
    published = load_porian2024_exponents(shared_data)
    for setup in ({}, KAPLAN_SETUP):
        runs = near_optimum(bs.load_porian2024(path=shared_data, **setup), max_excess=0.1)
        base = parabola_baseline(runs, bootstrap=300)
        keys = {
            "dataset": "rw",
            "hparams": "tuned",
            "warmup": "short",
            "decay": "const",
            "param_count": "standard",
            "loss_split": "val",
        } | setup
        row = published[np.logical_and.reduce([published[k] == v for k, v in keys.items()])]
        a_paper = float(row["a_est_bs_median_weighted"].iloc[0])
        stats = base.interval()
        # Approach 2 on the same points lands within 0.03 of Porian's interpolation method
        assert abs(base.a - a_paper) < 0.03, (setup, base.a, a_paper)
        assert stats["lower"] < a_paper < stats["upper"], (setup, stats, a_paper)


def test_xlstm_sweeps_with_spread_compute_and_groups(shared_data):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.RunsWarning)
        runs = bs.load_xlstm(path=shared_data)
    budgets = sweep_budgets(runs)
    assert len(budgets) == 4 and (budgets["compute_spread"] > 1.1).all()  # 6ND varies within
    base = parabola_baseline(near_optimum(runs), group="mlstm", bootstrap=100)
    assert base.vertices["sweep"].str.contains("mlstm").all()
    with pytest.raises(ValueError, match="unknown group 'gpt'"):
        parabola_baseline(runs, group="gpt")
