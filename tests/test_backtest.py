"""bayescale.trust.backtesting and `bayescale backtest`: splits, scores, errors, JSON and figure."""

import json

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.cli import main
from bayescale.laws import get_law
from bayescale.laws.simulate import HOFFMANN_2022
from bayescale.trust.backtesting import Backtest, backtest

COLS = {"params": "params", "tokens": "tokens", "loss": "loss"}
QUICK = {"chains": 4, "draws": 500, "warmup": 500, "bootstrap": 30}


@pytest.fixture(scope="module")
def ladder() -> pd.DataFrame:
    frame = bs.simulate_ladder(
        "chinchilla", noise=0.005, seed=2, params=(2e7, 5e7, 1.2e8, 3e8, 7e8, 1.5e9, 3e9)
    )
    frame["size"] = [f"n{int(p):d}" for p in frame["params"]]
    return frame


@pytest.fixture(scope="module")
def largest_out(ladder) -> Backtest:
    return backtest(ladder, "chinchilla", holdout="params>=1.5e9", **COLS, **QUICK)


@pytest.mark.slow
def test_a_ladder_that_follows_its_law_is_predicted_within_its_intervals(largest_out, ladder):
    bt = largest_out
    held = ladder[ladder["params"] >= 1.5e9]
    assert len(bt.runs) == len(held) == 10
    assert bt.runs["row"].tolist() == [str(i) for i in held.index]
    truth = get_law("chinchilla").loss(HOFFMANN_2022, params=held["params"], tokens=held["tokens"])
    # the law-only truth sits inside every 95% interval; the noisy observations mostly do
    assert np.all((bt.runs["lower_95"] <= truth) & (truth <= bt.runs["upper_95"]))
    s = bt.summary()
    assert s["n"] == 10 and s["folds"] == 1 and s["folds_not_ok"] == 0
    assert s["coverage_95"] >= 0.8
    assert s["median_rel_error"] < 0.02
    assert 0 < s["mean_pit"] < 1
    assert np.all(bt.runs["beyond"] >= 0) and bt.runs["beyond"].max() > 2.5
    # widths nest: 50% inside 80% inside 95%
    r = bt.runs
    assert np.all((r["lower_95"] <= r["lower_80"]) & (r["lower_80"] <= r["lower_50"]))
    assert np.all((r["upper_50"] <= r["upper_80"]) & (r["upper_80"] <= r["upper_95"]))
    base = s["baseline"]
    assert base["n"] == 10 and base["median_rel_error"] < 0.03
    assert bt.folds.loc[0, "ok"] and "drift" in bt.folds


@pytest.mark.slow
def test_backtest_json_has_the_documented_keys(largest_out):
    payload = json.loads(json.dumps(largest_out.to_dict(), allow_nan=False))
    assert set(payload) == {"summary", "folds", "runs", "settings"}
    for key in (
        "n",
        "n_excluded",
        "coverage_50",
        "coverage_80",
        "coverage_95",
        "median_rel_error",
        "median_width_95",
        "sharpness",
        "interval_score_95",
        "crps",
        "baseline",
        "max_r_hat",
    ):
        assert key in payload["summary"], key
    assert {"fold", "n_fit", "n_held", "max_r_hat", "divergences", "ok"} <= set(payload["folds"][0])
    assert {"observed", "median", "lower_95", "upper_95", "pit", "z", "beyond"} <= set(
        payload["runs"][0]
    )


@pytest.mark.slow
def test_the_figure_marks_fitted_and_held_out_runs(largest_out):
    fig = largest_out.plot()
    left, right = fig.axes
    labels = [t.get_text() for t in left.get_legend().get_texts()]
    assert "fitted" in labels and "held out (observed)" in labels
    assert right.get_xlabel().startswith("log compute beyond")


def test_a_fold_whose_diagnostics_fail_is_reported_and_left_out_of_the_scores():
    runs = pd.DataFrame(
        {
            "fold": ["a", "a", "b"],
            "observed": [3.0, 3.0, 3.0],
            "median": [3.0, 3.1, 9.0],
            "rel_error": [0.0, 0.033, 2.0],
            "pit": [0.5, 0.2, 0.0],
            "crps": [0.01, 0.05, 6.0],
            **{f"lower_{p}": [2.9, 2.9, 8.0] for p in (50, 80, 95)},
            **{f"upper_{p}": [3.1, 3.2, 10.0] for p in (50, 80, 95)},
            **{f"covered_{p}": [True, True, False] for p in (50, 80, 95)},
        }
    )
    folds = pd.DataFrame(
        {"fold": ["a", "b"], "ok": [True, False], "divergences": [0, 12], "max_r_hat": [1.0, 1.2]}
    )
    s = Backtest(runs, folds).summary()
    assert (s["n"], s["n_excluded"], s["folds_not_ok"], s["coverage_95"]) == (2, 1, 1, 1.0)
    assert s["divergences"] == 12 and s["max_r_hat"] == 1.2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"holdout": "params>=1e12"},
            "holdout 'params>=1e+12' holds out no runs (of 35): nothing to predict",
        ),
        (
            {"holdout": "params>=1"},
            "holdout 'params>=1' holds out all 35 runs: nothing left to fit",
        ),
        (
            {"holdout": "params>=5e7"},
            "holdout 'params>=5e+07' leaves 5 runs to fit and 30 to predict, too few to fit: law "
            "'chinchilla' needs at least 2 distinct model sizes, found 1 (params = 2e+07)",
        ),
        ({"holdout": "paramz>=1e9"}, "holdout column 'paramz' not found"),
        ({}, "give a holdout rule (e.g. holdout='compute>=6.4e18') or rolling=K"),
        ({"holdout": "params>=3e9", "rolling": 2}, "give either holdout or rolling, not both"),
        (
            {"holdout": "params>=3e9", "fit_set": "params>=1e9"},
            "fit set 'params>=1e9' and holdout 'params>=3e9' share 5 runs",
        ),
        ({"rolling": 1, "by": "size", "first": 7}, "rolling by 'size' needs at least 8 levels"),
    ],
)
def test_splits_that_cannot_work_are_refused_in_one_line(ladder, kwargs, message):
    with pytest.raises(ValueError) as info:
        backtest(ladder, "chinchilla", **COLS, **kwargs)
    assert str(info.value).startswith(message)


def test_a_grouped_backtest_cannot_predict_a_group_it_has_not_seen(ladder):
    frame = ladder.assign(arm=np.where(ladder["params"] >= 3e9, "big", "small"))
    with pytest.raises(ValueError, match="holds out every run of group 'big'"):
        backtest(frame, "chinchilla", holdout="params>=3e9", group="arm", **COLS)


@pytest.mark.slow
def test_rolling_origin_fits_each_level_and_predicts_the_next(ladder):
    bt = backtest(
        ladder, "chinchilla", rolling=1, by="params", first=5, baseline=False, **COLS, **QUICK
    )
    assert bt.folds["fold"].tolist() == ["params<=7e+08", "params<=1.5e+09"]
    assert bt.folds["n_fit"].tolist() == [25, 30]
    assert bt.runs.groupby("fold").size().tolist() == [5, 5]


def test_cli_errors_exit_2_with_one_line(tmp_path, ladder, capsys):
    csv = tmp_path / "runs.csv"
    ladder.to_csv(csv, index=False)
    code = main(
        [
            "backtest",
            str(csv),
            "--params",
            "params",
            "--tokens",
            "tokens",
            "--loss",
            "loss",
            "--holdout",
            "params>=1e12",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err == "error: holdout 'params>=1e+12' holds out no runs (of 35): nothing to predict\n"
    code = main(["backtest", str(csv), "--params", "params", "--loss", "loss"])
    assert code == 2 and capsys.readouterr().err.startswith("error: give --holdout")


@pytest.mark.slow
def test_cli_prints_one_json_object_and_writes_the_figure(tmp_path, ladder, capsys):
    csv = tmp_path / "runs.csv"
    ladder.to_csv(csv, index=False)
    png = tmp_path / "bt.png"
    code = main(
        [
            "backtest",
            str(csv),
            "--params",
            "params",
            "--tokens",
            "tokens",
            "--loss",
            "loss",
            "--holdout",
            "size==max",
            "--draws",
            "300",
            "--warmup",
            "300",
            "--no-baseline",
            "--json",
            "--plot",
            str(png),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    payload = json.loads(out)
    assert payload["summary"]["n"] == 5 and payload["summary"]["baseline"] is None
    assert payload["plot"] == str(png) and png.stat().st_size > 10_000
