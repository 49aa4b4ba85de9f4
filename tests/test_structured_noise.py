"""Structured noise: the sweep random effect and the beyond-the-data discrepancy term."""

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from conftest import sampled

import bayescale as bs
from bayescale.laws.simulate import HOFFMANN_2022
from bayescale.trust.validate import compare_structured, leave_one_group_out, without_sweep

TAU_SWEEP = 0.03
RUN_NOISE = 0.004
SETTINGS = {"chains": 2, "draws": 400, "warmup": 400}


def isoflop_sweeps(seed: int = 3, n_sweeps: int = 8) -> tuple[pd.DataFrame, dict]:
    """IsoFLOP sweeps from Hoffmann's law; each budget shares one deviation.

    The deviations are standardised to mean 0 and standard deviation exactly TAU_SWEEP, so
    the spread the data carry is the known one (8 raw draws would scatter it by +-25%).
    """
    rng = np.random.default_rng(seed)
    budgets = np.geomspace(1e18, 3e20, n_sweeps)
    raw = rng.standard_normal(n_sweeps)
    effects = TAU_SWEEP * (raw - raw.mean()) / raw.std()
    rows = []
    for budget, effect in zip(budgets, effects, strict=True):
        n_opt = np.sqrt(budget / (6 * 20))
        for scale in (0.35, 0.7, 1.4, 2.8):
            params = n_opt * scale
            tokens = budget / (6 * params)
            mean = bs.get_law("chinchilla").loss(HOFFMANN_2022, params=params, tokens=tokens)
            loss = float(mean) * np.exp(effect + RUN_NOISE * rng.standard_normal())
            rows.append((params, tokens, loss, f"{budget:.3g}"))
    frame = pd.DataFrame(rows, columns=["params", "tokens", "loss", "budget"])
    return frame, {f"{b:.3g}": e for b, e in zip(budgets, effects, strict=True)}


@pytest.fixture(scope="module")
def sweeps():
    frame, effects = isoflop_sweeps()
    runs = bs.read_runs(frame, params="params", tokens="tokens", loss="loss", sweep="budget")
    # one scatter for every run: what the sweep effect takes from sigma is the subject, and
    # a scatter that grows toward small budgets would take part of it too
    common = {"likelihood": "normal", "scatter_growth": False, **SETTINGS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        structured = bs.fit(runs, "chinchilla", **sampled(discrepancy=True, **common))
        plain = bs.fit(without_sweep(runs), "chinchilla", **sampled(**common))
    structured.info["warn"] = plain.info["warn"] = False  # verdicts are checked below
    return runs, effects, structured, plain


@pytest.mark.slow
def test_sweep_effect_recovers_known_tau(sweeps):
    _, effects, structured, plain = sweeps
    assert structured.model.n_sweeps == 8
    assert plain.model.n_sweeps == 0 and "tau_sweep" not in plain.samples
    tau = structured.flat("tau_sweep")
    lower, upper = np.quantile(tau, [0.005, 0.995])
    assert lower < TAU_SWEEP < upper
    assert abs(np.median(tau) - TAU_SWEEP) < 0.5 * TAU_SWEEP
    # the deviations are identified up to what the law's coefficients can absorb, so
    # compare their pattern, not each value
    effect = np.median(structured.flat("sweep_effect"), axis=0)
    truth = [effects[name] for name in structured.model.sweep_names]
    assert np.corrcoef(effect, truth)[0, 1] > 0.8
    # the law is still Hoffmann's: exponents inside their 99% intervals
    for name in ("alpha", "beta"):
        draws = structured.reported()[name].reshape(-1)
        assert np.quantile(draws, 0.005) < HOFFMANN_2022[name] < np.quantile(draws, 0.995)
    assert {"tau_sweep", "kappa"} <= set(structured.summary().index)
    # without the effect the run noise must absorb the budget deviations
    assert np.median(plain.flat("sigma")) > 3 * np.median(structured.flat("sigma"))


@pytest.mark.slow
def test_new_sweep_intervals_are_wider_than_without_the_effect(sweeps):
    _, _, structured, plain = sweeps
    target = {"params": 3e8, "tokens": 6e9}  # a new budget inside the data: no discrepancy
    assert structured.beyond_data({k: np.array([v]) for k, v in target.items()})[0] == 0.0
    new = structured.predict(**target)
    old = plain.predict(**target)
    width_new = float(new.upper[0] - new.lower[0])
    width_old = float(old.upper[0] - old.lower[0])
    # a new budget draws its own deviation (sd 0.03 on log loss): ~4 sd = 12% wide
    assert width_new / float(new.median[0]) > 0.08
    assert width_new > 1.2 * width_old
    # a run in a known sweep uses that sweep's estimated deviation: narrower than a new one
    known = structured.predict(**target, sweep=structured.model.sweep_names[3])
    assert float(known.upper[0] - known.lower[0]) < 0.6 * width_new
    truth = bs.get_law("chinchilla").loss(HOFFMANN_2022, **target)
    assert new.lower[0] < truth < new.upper[0]
    with pytest.raises(ValueError, match="unknown sweep 'nope'"):
        structured.predict(**target, sweep="nope")
    with pytest.raises(ValueError, match="no sweep column"):
        plain.predict(**target, sweep="1e+18")


@pytest.mark.slow
def test_discrepancy_widens_only_beyond_the_data(sweeps):
    _, _, structured, _ = sweeps
    assert structured.model.discrepancy
    kappa = structured.flat("kappa")
    # no run inside the data informs kappa: its posterior is its HalfNormal(0.01) prior
    assert abs(np.mean(kappa) - 0.01 * np.sqrt(2 / np.pi)) < 0.0015
    inside = {"params": 3e8, "tokens": 6e9}
    beyond = {"params": 2e11, "tokens": 4e12}  # ~150x the largest budget
    distance = structured.beyond_data({k: np.array([v]) for k, v in beyond.items()})[0]
    assert distance == pytest.approx(np.log(6 * 2e11 * 4e12 / 3e20), rel=0.05)
    # the same draws without the term, for the comparison
    off = bs.Fit(
        replace(structured.model, discrepancy=False),
        structured.samples,
        structured.stats,
        structured.runs,
        {**structured.info, "warn": False},
    )
    for noise in (True, False):
        np.testing.assert_array_equal(
            structured.predict(**inside, noise=noise, sweep="1e+18").draws,
            off.predict(**inside, noise=noise, sweep="1e+18").draws,
        )
    wide = structured.predict(**beyond, noise=False)
    narrow = off.predict(**beyond, noise=False)
    # beyond the data each draw moves by exactly kappa * distance * Normal(0, 1) on log loss
    extra = np.log(np.ravel(wide.draws)) - np.log(np.ravel(narrow.draws))
    z = extra / (kappa * distance)
    se = 1 / np.sqrt(z.size)
    assert abs(np.mean(z)) < 4 * se and abs(np.std(z) - 1) < 4 * se
    # and the interval widens by what that adds to the law's own spread (the 95% bounds of
    # 800 draws carry ~10% Monte Carlo error, and the sum is not exactly normal)
    ratio = (wide.upper - wide.lower) / (narrow.upper - narrow.lower)
    spread = np.var(np.log(np.ravel(narrow.draws)))
    expected = np.sqrt(1 + np.mean(kappa**2) * distance**2 / spread)
    assert ratio[0] > 1 and ratio[0] == pytest.approx(expected, rel=0.15), (ratio, expected)


@pytest.mark.slow
def test_sweep_fit_round_trips_through_netcdf(sweeps, tmp_path):
    _, _, structured, _ = sweeps
    path = structured.to_netcdf(tmp_path / "sweeps.nc")
    loaded = bs.load_fit(path)
    loaded.info["warn"] = False
    a = structured.predict(params=3e9, tokens=6e10, seed=1)
    b = loaded.predict(params=3e9, tokens=6e10, seed=1)
    assert loaded.model.sweep_names == structured.model.sweep_names
    assert loaded.model.static_key() == structured.model.static_key()
    assert loaded.model.frontier == structured.model.frontier
    np.testing.assert_array_equal(a.draws, b.draws)
    np.testing.assert_allclose(loaded.log_likelihood(), structured.log_likelihood())


def test_leave_one_group_out_rejects_bad_input():
    frame, _ = isoflop_sweeps(n_sweeps=3)
    runs = bs.read_runs(frame, params="params", tokens="tokens", loss="loss")
    with pytest.raises(ValueError, match="no sweep column"):
        leave_one_group_out(runs)
    runs = bs.read_runs(frame, params="params", tokens="tokens", loss="loss", sweep="budget")
    with pytest.raises(ValueError, match="unknown sweep 'x'"):
        leave_one_group_out(runs, folds=["x"])
    with pytest.raises(ValueError, match="by must be 'sweep' or 'group'"):
        leave_one_group_out(runs, by="arch")


@pytest.mark.slow
def test_leave_one_sweep_out_scores_a_held_out_budget():
    """Hold out the middle budget (9 simulated) and score its four runs."""
    frame, effects = isoflop_sweeps(seed=3, n_sweeps=9)  # 8 left: the fixture's programs
    runs = bs.read_runs(frame, params="params", tokens="tokens", loss="loss", sweep="budget")
    held = list(effects)[4]
    table, out = compare_structured(
        leave_one_group_out, runs, "chinchilla", folds=[held], likelihood="normal", **SETTINGS
    )
    predictions = out["structured"].predictions
    assert list(predictions["fold"].unique()) == [held] and len(predictions) == 4
    assert set(predictions["row"]) == {str(i) for i in np.flatnonzero(frame.budget == held)}
    np.testing.assert_allclose(predictions["observed"], frame.loss[frame.budget == held])
    assert (predictions["beyond"] == 0).all()  # interpolation: the discrepancy adds nothing
    assert table.loc["structured", "coverage"] == 1.0
    assert table.loc["structured", "median_abs_pct_error"] < 5.0
    # a new budget's interval carries tau_sweep: wider than the plain law's
    assert table.loc["structured", "median_rel_width"] > table.loc["plain", "median_rel_width"]
    assert out["plain"].settings["structured"] is False
    assert out["structured"].settings["discrepancy"] is True
