"""Simulation-based calibration, the misspecification study and ``bayescale calibrate``."""

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import sampled
from scipy import stats

import bayescale as bs
from bayescale.cli import main
from bayescale.laws.simulate import HOFFMANN_2022
from bayescale.posterior.model_check import ModelCheckWarning
from bayescale.trust.calibration import calibrate
from bayescale.trust.calibration_design import (
    CALIBRATION_NOISE,
    calibration_priors,
    simulate_design,
)
from bayescale.trust.calibration_result import Calibration, binomial_band, plot_ranks

#: 40 replicates per law fit the test budget; the 99% binomial band for 95% intervals is
#: then [0.85, 1], for 80% [0.625, 0.95] and for 50% [0.3, 0.7].
REPLICATES = 40
SEED = 2


# --------------------------------------------------------------------------- fast


def test_calibration_priors_are_fixed_and_realistic():
    priors = calibration_priors("chinchilla")
    # E's default prior is resolved once against Hoffmann's law on the reference ladder
    loss = bs.get_law("chinchilla").loss(
        HOFFMANN_2022,
        params=np.repeat(np.geomspace(3e7, 1e9, 5), 4),
        tokens=np.repeat(np.geomspace(3e7, 1e9, 5), 4) * np.tile([10, 20, 40, 80], 5),
    )
    m = round(float(loss.min()), 6)
    assert priors["E"] == bs.Prior(
        "TruncatedNormal",
        {"mu": round(0.55 * m, 6), "sigma": round(0.3 * m, 6), "low": 0.0, "high": m},
    )
    assert priors["sigma"] == CALIBRATION_NOISE
    assert set(priors) == {"E", "alpha", "beta", "log_N_term", "log_D_term", "sigma"}
    # the noise prior puts 95% of its mass between 0.4% and 2.7% on loss
    low, high = stats.lognorm(0.5, scale=0.01).ppf([0.025, 0.975])
    assert 0.003 < low < 0.005 and 0.02 < high < 0.03
    assert "nu" in calibration_priors("gadre2024", likelihood="student_t")
    with pytest.raises(ValueError, match="no reference truth for law 'kaplan_nd'"):
        calibration_priors("kaplan_nd")


def test_simulated_ladders_look_like_a_lab_ladder():
    rng = np.random.default_rng(0)
    for _ in range(20):
        design = simulate_design("chinchilla", 20, rng)
        sizes = np.unique(design["params"])
        decades = math.log10(sizes.max() / sizes.min())
        assert 1.5 - 1e-9 <= decades <= 3.0 + 1e-9
        assert 1e7 <= sizes.min() <= 1e8
        mults = np.unique(np.round(design["tokens"] / design["params"], 6))
        assert 3 <= len(mults) <= 4 and set(mults) <= {5, 10, 20, 40, 80, 160, 320}
        np.testing.assert_allclose(design["compute"], 6 * design["params"] * design["tokens"])
    design = simulate_design("kaplan_c", 12, rng)
    assert np.isnan(design["params"]).all() and len(design["compute"]) == 12


def test_binomial_band_matches_scipy():
    assert binomial_band(40, 0.95) == (34, 40)
    assert binomial_band(40, 0.5) == tuple(int(v) for v in stats.binom.interval(0.99, 40, 0.5))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"replicates": 0}, "replicates must be an integer >= 1 but got 0"),
        ({"replicates": 2, "runs_per_fit": 5}, "runs_per_fit must be an integer >= 7"),
        ({"replicates": 2, "likelihood": "huber"}, "likelihood must be 'normal' or 'student_t'"),
        ({"replicates": 2, "n_ranked": 3}, "n_ranked must be an integer >= 9 but got 3"),
    ],
)
def test_calibrate_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        calibrate("chinchilla", **kwargs)


def _fake_calibration(rng) -> Calibration:
    ranks = pd.DataFrame({"alpha": rng.integers(0, 100, 50), "E": rng.integers(0, 100, 50)})
    covered = {
        lvl: pd.DataFrame({"alpha": rng.random(50) < lvl, "E": rng.random(50) < lvl})
        for lvl in (0.5, 0.8, 0.95)
    }
    return Calibration("chinchilla", ranks, covered, ranks * 0.0, n_ranked=99)


def test_plot_ranks_returns_axes_with_the_uniform_band():
    import matplotlib.pyplot as plt

    result = _fake_calibration(np.random.default_rng(0))
    ax = plot_ranks(result, "alpha", bins=10)
    assert isinstance(ax, plt.Axes)
    assert sum(p.get_height() for p in ax.patches if hasattr(p, "get_height")) >= 50
    assert ax.get_title() == "alpha"
    _, given = plt.subplots()
    assert plot_ranks(result, "E", ax=given) is given
    with pytest.raises(ValueError, match="unknown quantity 'beta'"):
        plot_ranks(result, "beta")
    plt.close("all")


def test_coverage_band_flags_miscalibration():
    rng = np.random.default_rng(1)
    result = _fake_calibration(rng)
    result.covered[0.95]["E"] = rng.random(50) < 0.7  # 70% coverage of "95%" intervals
    flagged = {(q, lvl) for q, lvl, _ in result.outside_band()}
    assert ("E", "0.95") in flagged
    assert not any(q == "alpha" for q, _ in flagged)


def test_cli_calibrate_rejects_bad_arguments(capsys):
    assert main(["calibrate", "--replicates", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "expected an integer >= 1" in err
    assert err.count("\n") == 1
    assert main(["calibrate", "--replicates", "2", "--law", "chinchila"]) == 2
    assert "did you mean 'chinchilla'?" in capsys.readouterr().err


# --------------------------------------------------------------------------- SBC


@pytest.fixture(scope="module")
def sbc_chinchilla():
    return calibrate("chinchilla", REPLICATES, seed=SEED)


@pytest.fixture(scope="module")
def sbc_gadre():
    return calibrate("gadre2024", REPLICATES, seed=SEED)


def _assert_calibrated(result: Calibration, parameters):
    assert result.replicates == REPLICATES
    # the replicates grow their scatter toward the small runs, as fit() would (20 runs)
    expected = {*parameters, "sigma", "scatter_growth"}
    expected |= {"loss@10x", "loss@100x", "new_run@10x", "new_run@100x"}
    assert set(result.ranks.columns) == expected
    assert result.ranks.min().min() >= 0 and result.ranks.max().max() <= result.n_ranked
    # every parameter and extrapolation, at 50/80/95%, inside its binomial band, at a 1% false
    # alarm rate for the whole table (Bonferroni over its cells, like the uniformity check
    # below): a 99% band per cell fails a calibrated sampler in up to 1 - 0.99^27 = 24% of
    # seeds (one did: B's 95% interval covered 33 of 40, P = 0.0034, under another PRNG stream)
    cells = result.coverage().size
    assert result.outside_band(1 - 0.01 / cells) == [], result.table()
    # rank histograms: no quantity grossly non-uniform (Bonferroni over the quantities)
    assert result.uniformity().min() > 0.01 / len(expected), result.uniformity()
    # degenerate prior draws were redrawn, and said so
    assert result.to_dict()["rejected"] == result.rejected >= 0


@pytest.mark.slow
def test_sbc_chinchilla_intervals_are_calibrated(sbc_chinchilla):
    _assert_calibrated(sbc_chinchilla, ["E", "A", "B", "alpha", "beta"])
    priors = sbc_chinchilla.priors
    assert priors["E"].startswith("TruncatedNormal(mu=1.3") and "high=2.4" in priors["E"]
    assert priors["sigma"] == str(CALIBRATION_NOISE)


@pytest.mark.slow
def test_sbc_gadre2024_intervals_are_calibrated(sbc_gadre):
    _assert_calibrated(sbc_gadre, ["E", "A", "B", "eta"])


@pytest.mark.slow
def test_sbc_result_writes_its_artifacts(sbc_gadre, tmp_path):
    paths = sbc_gadre.write(tmp_path / "sbc")
    assert [p.name for p in paths] == ["calibration.json", "ranks.csv", "coverage.csv", "ranks.png"]
    payload = json.loads(paths[0].read_text())
    assert payload["replicates"] == REPLICATES
    assert payload["coverage"]["eta"]["0.95"] == pytest.approx(
        sbc_gadre.covered[0.95]["eta"].mean()
    )
    assert pd.read_csv(paths[1]).shape == (REPLICATES, 1 + sbc_gadre.ranks.shape[1])
    with pytest.raises(ValueError, match="exists; pass overwrite=True"):
        sbc_gadre.write(tmp_path / "sbc")


@pytest.mark.slow
def test_cli_calibrate_json_and_out(tmp_path, capsys):
    out = tmp_path / "sbc"
    argv = ["calibrate", "--law", "gadre2024", "--replicates", "3", "--seed", "5", "--json"]
    assert main([*argv, "--out", str(out)]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["law"] == "gadre2024" and payload["replicates"] == 3
    assert set(payload["coverage"]["eta"]) == {"0.5", "0.8", "0.95"}
    assert payload["band99"]["0.95"][1] == 1.0
    assert (out / "ranks.png").stat().st_size > 0
    assert main([*argv, "--out", str(out)]) == 2
    assert "is not empty; pass --force" in capsys.readouterr().err


# --------------------------------------------------------------------------- misspecification


def _broken_ladder(steepen: float, seed: int = 0) -> pd.DataFrame:
    """24 budgets over 4 decades; the slope triples at mid-range when ``steepen``."""
    rng = np.random.default_rng(seed)
    compute = np.geomspace(1e17, 1e21, 24)
    c0 = 0.12
    truth = {
        "a": 1.8,
        "b": math.exp(0.4 + c0 * 43.7),
        "c0": c0,
        "c_1": steepen * c0,
        "d_1": 1e19,
        "f_1": 0.1,
    }
    loss = bs.get_law("bnsl", k=1, x="compute").loss(truth, compute=compute)
    return pd.DataFrame(
        {"compute": compute, "loss": loss * np.exp(0.004 * rng.standard_normal(24))}
    )


@pytest.fixture(scope="module")
def misspecified_fits():
    law = bs.get_law("kaplan_c", irreducible=True)
    settings = {"chains": 2, "draws": 300, "warmup": 300, "likelihood": "normal"}
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        for name, steepen in (("well", 0.0), ("broken", 2.0)):
            out[name] = bs.fit(
                _broken_ladder(steepen), law, **sampled(compute="compute", loss="loss", **settings)
            )
    return out


@pytest.mark.slow
def test_model_check_fires_when_the_law_cannot_bend(misspecified_fits):
    broken = misspecified_fits["broken"]
    with pytest.warns(ModelCheckWarning, match="model check"):
        check = broken.check()
    assert not check.ok
    assert check.trend_p < 0.01 or check.largest_runs_p < 0.01
    assert check.to_dict()["ok"] is False and check.messages
    # the misfit shows out of sample: the broken truth at 100x is outside the 95% interval
    truth = bs.get_law("bnsl", k=1, x="compute").loss(
        {
            "a": 1.8,
            "b": math.exp(0.4 + 0.12 * 43.7),
            "c0": 0.12,
            "c_1": 0.24,
            "d_1": 1e19,
            "f_1": 0.1,
        },
        compute=1e23,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)  # misfit often upsets the sampler too
        lower, upper = broken.interval(compute=1e23)
    assert not lower[0] <= truth <= upper[0]


@pytest.mark.slow
def test_model_check_is_quiet_on_a_well_specified_fit(misspecified_fits):
    well = misspecified_fits["well"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelCheckWarning)
        check = well.check()
    assert check.ok, check.verdict()
    assert check.verdict() == "ok"
    assert check.largest_runs_p > 0.01 and check.trend_p > 0.01
    assert len(check.largest_runs) == 6  # the top quarter of 24 budgets
