"""Drift: the law's extrapolation error learned from the ladder's own backtest."""

import copy
import math
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import sampled

import bayescale as bs
from bayescale.decide import compare
from bayescale.laws import get_law
from bayescale.laws.simulate import HOFFMANN_2022
from bayescale.model.drift import DRIFT_PRIOR, MAX_FOLD_RUNS, calibrate_drift, drift_draws, thin

LAW = get_law("chinchilla")


def _ladder(seed=0, **kwargs):
    frame = bs.simulate_ladder("chinchilla", noise=0.005, seed=seed, **kwargs)
    return bs.read_runs(frame, params="params", tokens="tokens", loss="loss")


class _BiasedFold:
    """A fold 'fit' whose predictions miss the truth by ``slope`` per e-fold of compute
    beyond its own fit set, with a predictive sd of ``sd`` on log loss."""

    def __init__(self, train, slope, sd, seed):
        self.edge = np.log(train.compute.max())
        self.slope, self.sd = slope, sd
        self.rng = np.random.default_rng(seed)
        self.law = LAW
        self.model = SimpleNamespace(grouped=False)
        self.diagnostics = SimpleNamespace(ok=True, max_r_hat=1.0, divergences=0)

    def predict(self, params, tokens, group=None, seed=0):
        truth = LAW.loss(HOFFMANN_2022, params=params, tokens=tokens)
        beyond = np.maximum(0.0, np.log(6 * params * tokens) - self.edge)
        centre = np.log(truth) - self.slope * beyond
        draws = centre + self.sd * self.rng.standard_normal((4000, len(params)))
        return SimpleNamespace(draws=np.exp(draws))


def test_a_ladder_whose_folds_all_drift_the_same_way_gets_that_drift_shrunk_by_its_prior():
    runs = _ladder()
    # the runs themselves follow the law (noise 0.5%); every fold's predictions sit 2% per
    # e-fold too low: the ladder's log-errors are +2% per e-fold, as if the law bent away
    slope, sd = 0.02, 0.004

    def fit_fold(train, seed):
        return _BiasedFold(train, slope, sd, seed)

    cal = calibrate_drift(runs, fit_fold, ("params", "tokens"), 5, "chinchilla")["compute"]
    assert len(cal["folds"]) == 3
    tau, omega = DRIFT_PRIOR["compute"]["tau"], DRIFT_PRIOR["compute"]["omega"]
    # each fold's slope is the injected one up to the run noise (0.5%) over its distances
    for fold in cal["folds"]:
        assert abs(fold["slope"] - slope) < 0.005 / 0.5
    # the conjugate normal posterior, recomputed from the folds
    precision = 1 / tau**2 + sum(1 / (omega**2 + f["var"]) for f in cal["folds"])
    mean = sum(f["slope"] / (omega**2 + f["var"]) for f in cal["folds"]) / precision
    assert cal["mean"] == pytest.approx(mean)
    assert cal["sd"] == pytest.approx(math.sqrt(1 / precision + omega**2))
    assert 0.4 * slope < cal["mean"] < slope


def test_a_large_table_fits_and_scores_its_folds_on_thinned_runs():
    """5,000 runs: each fold fits and predicts at most MAX_FOLD_RUNS (+ the edge), evenly
    spread, and still finds the drift injected into its predictions."""
    rng = np.random.default_rng(3)
    params = np.exp(rng.uniform(np.log(2e7), np.log(1.5e9), 5000))
    tokens = params * np.exp(rng.uniform(np.log(5), np.log(80), 5000))
    loss = LAW.loss(HOFFMANN_2022, params=params, tokens=tokens) * np.exp(
        rng.normal(0, 0.005, 5000)
    )
    frame = pd.DataFrame({"N": params, "D": tokens, "L": loss})
    runs = bs.read_runs(frame, params="N", tokens="D", loss="L")
    seen = []

    def fit_fold(train, seed):
        seen.append(train)
        return _BiasedFold(train, 0.02, 0.004, seed)

    cal = calibrate_drift(runs, fit_fold, ("params", "tokens"), 5, "chinchilla")
    assert len(seen) == 5  # 3 compute folds, 2 ratio folds
    for train in seen:
        assert MAX_FOLD_RUNS <= train.n_runs <= MAX_FOLD_RUNS + 1
    for fold in cal["compute"]["folds"]:
        assert fold["n_held"] <= MAX_FOLD_RUNS + 1
        assert abs(fold["slope"] - 0.02) < 0.005 / 0.5
    # thinning keeps the fold's own edge: the largest compute of the first fold's fit set
    first = seen[0]
    below = runs.compute[runs.compute <= first.compute.max() * (1 + 1e-12)]
    assert first.compute.max() == below.max()


def test_thin_spreads_evenly_and_keeps_every_groups_edge():
    runs = SimpleNamespace(n_runs=10, group=np.array([0] * 8 + [1] * 2), group_names=("a", "b"))
    values = np.array([0, 1, 2, 3, 4, 5, 6, 7, 2.5, 3.5])
    picked = thin(runs, values, limit=4).tolist()
    # in value order the rows are 0 1 2 8 3 9 4 5 6 7: every third (0, 8, 4, 7), and 9, b's edge
    assert picked == [0, 4, 7, 8, 9]
    assert thin(runs, values, limit=10).tolist() == list(range(10))


def test_a_ladder_too_small_for_a_fold_keeps_the_prior():
    frame = bs.simulate_ladder("chinchilla", params=(2e7, 1e8), tokens_per_param=(10.0, 20.0, 40.0))
    runs = bs.read_runs(frame, params="params", tokens="tokens", loss="loss")
    cal = calibrate_drift(runs, None, ("params", "tokens"), 5, "chinchilla")
    for axis in ("compute", "ratio"):
        tau, omega = DRIFT_PRIOR[axis]["tau"], DRIFT_PRIOR[axis]["omega"]
        assert cal[axis]["folds"] == []
        assert cal[axis]["mean"] == 0.0
        assert cal[axis]["sd"] == pytest.approx(math.hypot(tau, omega))


def test_drift_draws_follow_their_posterior():
    out = drift_draws(
        {"compute": {"mean": 0.01, "sd": 0.002}, "ratio": {"mean": 0.0, "sd": 0.02}}, 4, 2500, 0
    )
    assert set(out) == {"drift", "drift_ratio"}
    assert out["drift"].mean() == pytest.approx(0.01, abs=4 * 0.002 / 100)
    assert out["drift_ratio"].std() == pytest.approx(0.02, rel=0.05)


@pytest.mark.slow
def test_a_fit_learns_no_drift_from_a_ladder_that_follows_its_law(tmp_path):
    runs = _ladder(seed=4)
    fit = bs.fit(runs, "chinchilla", **sampled(progress=False, seed=1))
    cal = fit.info["drift"]["compute"]
    assert len(cal["folds"]) == 3 and all(f["ok"] for f in cal["folds"])
    assert abs(cal["mean"]) < 2 * cal["sd"]
    assert fit.diagnostics.ok
    # 10x and 100x beyond the ladder: the intervals hold the truth, and widen with distance
    n, d = np.array([5e9, 1.6e10]), np.array([1e11, 3.2e11])
    truth = LAW.loss(HOFFMANN_2022, params=n, tokens=d)
    p = fit.predict(params=n, tokens=d)
    assert np.all((p.lower <= truth) & (truth <= p.upper))
    width = (p.upper - p.lower) / p.median
    assert width[1] > width[0]
    # inside the ladder the drift adds nothing
    inside = {"params": runs.params[:3], "tokens": runs.tokens[:3]}
    assert np.all(fit.drift_offset(inside) == 0.0)
    # the fit file keeps the drift: the same draws give the same predictions
    path = fit.to_netcdf(tmp_path / "fit.nc")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = bs.load_fit(path)
    assert loaded.model.drift == ("drift", "drift_ratio")
    np.testing.assert_array_equal(loaded.predict(params=n, tokens=d).draws, p.draws)
    without = bs.fit(runs, "chinchilla", **sampled(progress=False, seed=1, drift=False))
    assert without.model.drift == () and "drift" not in without.info
    q = without.predict(params=n, tokens=d)
    assert np.all((q.upper - q.lower) < (p.upper - p.lower))


def test_a_fold_whose_sampler_failed_is_recorded_but_grades_nothing():
    runs = _ladder()
    calls = []

    def fit_fold(train, seed):
        fold = _BiasedFold(train, 0.02, 0.004, seed)
        if not calls:  # the first fold's sampler "failed"
            fold.diagnostics = SimpleNamespace(ok=False, max_r_hat=1.15, divergences=81)
        calls.append(fold)
        return fold

    cal = calibrate_drift(runs, fit_fold, ("params", "tokens"), 5, "chinchilla")["compute"]
    assert [f["ok"] for f in cal["folds"]] == [False, True, True]
    assert cal["folds"][0]["divergences"] == 81
    omega = DRIFT_PRIOR["compute"]["omega"]
    good = cal["folds"][1:]
    precision = 1 / DRIFT_PRIOR["compute"]["tau"] ** 2 + sum(
        1 / (omega**2 + f["var"]) for f in good
    )
    mean = sum(f["slope"] / (omega**2 + f["var"]) for f in good) / precision
    assert cal["mean"] == pytest.approx(mean)


@pytest.mark.slow
def test_decisions_see_the_same_drift_as_predictions():
    runs = _ladder(seed=5)
    fit = bs.fit(runs, "chinchilla", **sampled(progress=False, seed=2))
    shifted = copy.copy(fit)
    shifted.samples = dict(fit.samples)
    shifted.samples["drift"] = fit.samples["drift"] + 0.05  # a drift no draw could hide
    n, d = 1.6e10, 3.2e11
    result = compare({"plain": fit, "shifted": shifted}, params=n, tokens=d)
    for k, arm in enumerate((fit, shifted)):
        law = arm.predict(params=np.array([n]), tokens=np.array([d]), noise=False).draws[:, 0]
        assert result.expected[k] == pytest.approx(law.mean(), rel=1e-9)
    assert result.expected[1] > result.expected[0]
