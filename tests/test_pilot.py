"""Large tables adapt NUTS on a pilot subsample (bayescale.inference.pilot).

The thresholds are lowered here so that a table of a few hundred runs takes the pilot
path; ``bench/rows.py`` measures it at 10^4 and 10^5 runs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.inference import pilot

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def _table(n: int, seed: int = 0, sweeps: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    params = np.exp(rng.uniform(np.log(2e7), np.log(1.5e9), n))
    tokens = params * np.exp(rng.uniform(np.log(5), np.log(80), n))
    t = TRUTH
    loss = t["E"] + t["A"] / params ** t["alpha"] + t["B"] / tokens ** t["beta"]
    frame = pd.DataFrame({"N": params, "D": tokens, "loss": loss * np.exp(rng.normal(0, 0.01, n))})
    if sweeps:
        frame["arm"] = np.where(rng.uniform(size=n) < 0.97, "common", "rare")
        frame["sweep"] = rng.integers(0, sweeps, n)
    return frame


def test_pilot_rows_hold_every_group_and_sweep_and_repeat_with_the_seed():
    frame = _table(3000, sweeps=40)
    runs = bs.read_runs(frame, params="N", tokens="D", loss="loss", group="arm", sweep="sweep")
    rows = pilot.pilot_rows(runs, 64, seed=3)
    assert rows.size == 64 and np.all(np.diff(rows) > 0)
    assert set(np.asarray(runs.group)[rows]) == set(np.asarray(runs.group))
    assert set(np.asarray(runs.sweep)[rows]) == set(np.asarray(runs.sweep))
    assert np.array_equal(rows, pilot.pilot_rows(runs, 64, seed=3))
    assert not np.array_equal(rows, pilot.pilot_rows(runs, 64, seed=4))
    assert np.array_equal(pilot.pilot_rows(runs, 5000, seed=3), np.arange(3000))


@pytest.fixture(scope="module")
def both_fits():
    """The same 600 runs fitted with a pilot of 128 runs and with the full warm-up."""
    frame = _table(600)
    cols = dict(params="N", tokens="D", loss="loss", drift=False, seed=0)
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(pilot, "PILOT_MIN_ROWS", 500)
        mp.setattr(pilot, "PILOT_ROWS", 128)
        with_pilot = bs.fit(frame, "chinchilla", **cols)
        mp.setattr(pilot, "PILOT_MIN_ROWS", 10**9)
        without = bs.fit(frame, "chinchilla", **cols)
    finally:
        mp.undo()
    return with_pilot, without


def test_a_large_table_adapts_on_the_pilot_and_says_so(both_fits):
    with_pilot, without = both_fits
    assert with_pilot.info["pilot"] == {
        "rows": 128,
        "warmup": 1000,
        "draws": pilot.PILOT_DRAWS,
        "seconds": with_pilot.info["pilot"]["seconds"],
    }
    assert with_pilot.info["warmup"] == pilot.FULL_WARMUP
    assert with_pilot.info["warm_start"] is False
    # the recorded call is the one the user made (its warm-up ran on the pilot)
    assert "warmup=1000" in with_pilot.info["command"]
    assert "pilot" not in without.info and without.info["warmup"] == 1000
    assert with_pilot.diagnostics.ok, with_pilot.diagnostics.messages


def test_the_pilot_leaves_the_posterior_as_the_full_warm_up_finds_it(both_fits):
    with_pilot, without = both_fits
    a, b = with_pilot.summary(), without.summary()
    for name in ("E", "alpha", "beta", "sigma"):
        # the two means differ by Monte Carlo error alone: within 4 combined standard errors
        se = np.hypot(
            a.loc[name, "sd"] / np.sqrt(a.loc[name, "ess_bulk"]),
            b.loc[name, "sd"] / np.sqrt(b.loc[name, "ess_bulk"]),
        )
        assert abs(a.loc[name, "mean"] - b.loc[name, "mean"]) < 4 * se, name
        # and the spreads agree to the precision the draws give an sd, ~1/sqrt(2 ESS) each
        # for the ESS of the tails an sd rests on (the bulk ESS overstates it: sigma's
        # sd differs by 4% between two seeds of the full warm-up, at bulk ESS ~4400)
        rel = 4 * np.sqrt(1 / (2 * a.loc[name, "ess_tail"]) + 1 / (2 * b.loc[name, "ess_tail"]))
        assert abs(a.loc[name, "sd"] / b.loc[name, "sd"] - 1) < rel, name


@pytest.mark.slow
def test_a_table_of_10000_runs_takes_the_pilot_and_recovers_the_law():
    # the real thresholds: 10,000 runs >= PILOT_MIN_ROWS, a pilot of PILOT_ROWS runs
    fitted = bs.fit(_table(10_000, seed=1), "chinchilla", params="N", tokens="D", loss="loss")
    assert fitted.info["pilot"]["rows"] == pilot.PILOT_ROWS
    assert fitted.info["warmup"] == pilot.FULL_WARMUP
    assert fitted.diagnostics.ok, fitted.diagnostics.messages
    summary = fitted.summary(prob=0.99)
    for name in ("E", "alpha", "beta"):
        row = summary.loc[name]
        assert row["lower"] < TRUTH[name] < row["upper"], (name, row.to_dict())
