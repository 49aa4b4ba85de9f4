"""fit_many: many datasets in one compiled NUTS call, each fit as fit() would give it."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import assert_chains_agree, assert_same_posterior, sampled

import bayescale as bs
from bayescale.laws.simulate import HOFFMANN_2022

COLUMNS = {"params": "params", "tokens": "tokens", "loss": "loss"}
# 1000 draws per chain: every one of the fits must pass R-hat <= 1.01, whose own Monte
# Carlo noise is ~1/ESS; target_accept 0.95 keeps these ladders free of divergences
SETTINGS = {
    "chains": 4,
    "draws": 1000,
    "warmup": 500,
    "likelihood": "normal",
    "target_accept": 0.95,
    "seed": 11,
}
N_SETS = 6


def _ladders() -> list[pd.DataFrame]:
    """Six replicates of one ladder with different noise; the last lacks two runs.

    Every dataset is padded to 64 rows (29 or 31 of them masked): if the row mask
    leaked, the posteriors would differ from the single fits'. Equal padded sizes let
    the single fits share one compiled program.
    """
    ladders = [
        bs.simulate_ladder(
            params=np.geomspace(1e7, 3e9, 7),
            tokens_per_param=(3, 8, 20, 50, 120),
            noise=0.01,
            seed=100 + s,
        )
        for s in range(N_SETS)
    ]
    short = ladders[-1]
    largest = (short["params"] == short["params"].max()) & (short["tokens"] / short["params"] > 30)
    ladders[-1] = short[~largest].reset_index(drop=True)
    return ladders


@pytest.fixture(scope="module")
def ladders():
    return _ladders()


@pytest.fixture(scope="module")
def batch(ladders):
    return bs.fit_many(ladders, "chinchilla", **sampled(**SETTINGS, **COLUMNS))


@pytest.fixture(scope="module")
def singles(ladders):
    seed = SETTINGS["seed"]
    settings = {k: v for k, v in SETTINGS.items() if k != "seed"}
    return [
        # fit_many samples the law alone: no drift folds, no continued chains
        bs.fit(
            d,
            "chinchilla",
            **sampled(**settings, seed=seed + i, progress=False, drift=False, extend=0, **COLUMNS),
        )
        for i, d in enumerate(ladders)
    ]


def test_fit_many_returns_one_ok_fit_per_dataset(batch, ladders):
    assert len(batch) == N_SETS
    for i, (result, data) in enumerate(zip(batch, ladders, strict=True)):
        assert result.diagnostics.ok, (i, result.diagnostics.verdict())
        assert result.runs.n_runs == len(data)
        assert result.samples["alpha"].shape == (SETTINGS["chains"], SETTINGS["draws"])
        assert result.info["seed"] == SETTINGS["seed"] + i
        assert result.info["batch"] == {"index": i, "size": N_SETS}
        assert result.info["device"] == "cpu"  # what device="auto" ran on (tests: the CPU)


def test_each_fit_keeps_its_own_priors_and_reference_scale(batch, singles):
    # data-dependent defaults (E ~ Uniform(0, min loss), log-term means, log_ref) are per
    # dataset; they must equal what fit() resolves on that dataset alone
    for many, single in zip(batch, singles, strict=True):
        assert many.model.priors == single.model.priors
        assert many.model.log_ref == pytest.approx(single.model.log_ref)
    assert batch[0].model.priors["E"] != batch[1].model.priors["E"]
    assert batch[0].model.log_ref["params"] != batch[-1].model.log_ref["params"]


def test_fit_many_agrees_with_single_fits_within_monte_carlo_error(batch, singles):
    for i, (many, single) in enumerate(zip(batch, singles, strict=True)):
        # medians within 4.5 Monte Carlo SE; sds to 25% (single's sd within 0.75-1.25 of
        # fit_many's: the ratio single / many within 0.8-1.33)
        assert_same_posterior(many, single, z_max=4.5, sd_ratio=(0.8, 1 / 0.75), label=(i,))


def test_on_a_cpu_fit_many_gives_each_dataset_the_draws_fit_gives_it(batch, singles):
    # on a CPU both run every chain as a job of its own over the host devices (no vmap, no
    # lock-step): the same arithmetic, so dataset i with seed + i has fit's draws bit for bit
    # (on a GPU the lanes of a vmapped batch agree within Monte Carlo error only, above)
    for i, (many, single) in enumerate(zip(batch, singles, strict=True)):
        assert many.samples.keys() == single.samples.keys()
        for name, draws in single.samples.items():
            np.testing.assert_array_equal(many.samples[name], draws, err_msg=f"{i} {name}")


def test_fit_many_recovers_the_truth(batch):
    for result in batch:
        s = result.summary(prob=0.99)
        for name in ("alpha", "beta"):
            assert s.loc[name, "lower"] < HOFFMANN_2022[name] < s.loc[name, "upper"], name


def test_fit_many_is_reproducible(ladders, batch):
    again = bs.fit_many(ladders, "chinchilla", **sampled(**SETTINGS, **COLUMNS))
    for first, second in zip(batch, again, strict=True):
        np.testing.assert_array_equal(first.samples["alpha"], second.samples["alpha"])


def test_fit_many_warns_once_for_fits_that_are_not_ok(ladders, monkeypatch):
    # a sampler whose chains disagree (each chain stuck at its own value) for datasets 0
    # and 2: fit_many must say so once, naming them, and each fit must stay not ok
    def disagreeing_chains(model, static_key, rng_keys, inputs, hyper, obs, **kw):
        n_sets, chains, draws = len(rng_keys), kw["chains"], kw["draws"]
        rng = np.random.default_rng(0)
        offset = np.zeros((n_sets, chains, 1))
        offset[[0, 2]] = np.arange(chains)[:, None]
        noise = rng.normal(size=(n_sets, chains, draws)) * 0.01
        samples = {
            "E": 1.7 + noise + 0.1 * offset,
            "alpha": 0.34 + noise,
            "beta": 0.28 + noise,
            "log_N_term": -1.0 + noise,
            "log_D_term": -1.0 + noise,
            "sigma": 0.01 + np.abs(noise),
        }
        stats = {
            "diverging": np.zeros((n_sets, chains, draws), bool),
            "energy": rng.normal(size=(n_sets, chains, draws)),
            "n_steps": np.full((n_sets, chains, draws), 7),
        }
        end = {
            "z": np.zeros((n_sets, chains, 5)),
            "inverse_mass_matrix": np.broadcast_to(np.eye(5), (n_sets, chains, 5, 5)),
            "step_size": np.full((n_sets, chains), 0.1),
        }
        return samples, stats, end

    monkeypatch.setattr("bayescale.inference.sampler.run_many", disagreeing_chains)
    with pytest.warns(
        bs.FitWarning, match=r"not ok for 2 of 3 datasets \(0, 2\); first: "
    ) as record:
        # the fake sampler draws the law and sigma alone: no scatter growth
        fits = bs.fit_many(
            ladders[:3],
            "chinchilla",
            **sampled(likelihood="normal", scatter_growth=False, **COLUMNS),
        )
    assert len(record) == 1
    assert [f.diagnostics.ok for f in fits] == [False, True, False]
    with pytest.warns(bs.FitWarning, match="chains disagree"):  # still warns when used
        fits[0].predict(params=1e9, tokens=2e10)


# --------------------------------------------------------------------------- warm starts
WARM = {k: v for k, v in SETTINGS.items() if k != "warmup"}


@pytest.fixture(scope="module")
def warm_batch(ladders):
    with warnings.catch_warnings():  # see test_fit_many_warm_starts_from_a_fit_...
        warnings.simplefilter("ignore", bs.FitWarning)
        return bs.fit_many(ladders, "chinchilla", **sampled(warm_start="first", **WARM, **COLUMNS))


def test_warm_start_first_adapts_one_dataset_and_starts_the_others_from_it(warm_batch, batch):
    assert [f.info["warmup"] for f in warm_batch] == [1000] + [200] * (N_SETS - 1)
    assert [f.info["warm_start"] for f in warm_batch] == [False] + [True] * (N_SETS - 1)
    assert all(f.info["warm_start"] is False for f in batch)
    for i, (warm, cold) in enumerate(zip(warm_batch, batch, strict=True)):
        # a warm start keeps the pilot's metric: its ESS can be lower than a cold fit's
        # (710-2000 in 30 warm fits of these ladders vs 1600-2200 cold), so its R-hat is
        # held to the noise its own ESS implies rather than to the 1.01 gate
        if i == 0:
            assert warm.diagnostics.ok, (i, warm.diagnostics.verdict())
        else:
            assert_chains_agree(warm, label=(i,))
        assert warm.info["seed"] == SETTINGS["seed"] + i
        assert warm.info["batch"] == {"index": i, "size": N_SETS}
        assert_same_posterior(cold, warm, z_max=4.5, sd_ratio=(0.8, 1 / 0.75), label=(i,))
    # a warm-started dataset keeps the pilot's metric (step-size-only warm-up): each
    # chain ends with the inverse mass matrix the pilot's chain ended with
    pilot = warm_batch[0].sampler_end["inverse_mass_matrix"]
    for result in warm_batch[1:]:
        np.testing.assert_array_equal(result.sampler_end["inverse_mass_matrix"], pilot)
    # while a cold fit adapts its own
    assert not np.allclose(batch[1].sampler_end["inverse_mass_matrix"], pilot)


# a warm-started fit whose R-hat lands just above the 1.01 gate warns (as it should); the
# test holds it to the noise its ESS implies instead (assert_chains_agree)
@pytest.mark.filterwarnings("ignore::bayescale.FitWarning")
def test_fit_many_warm_starts_from_a_fit_and_its_fits_warm_start_fit(singles, batch, ladders):
    # singles[0] comes from fit() (target_accept 0.95, like SETTINGS): its end state
    # starts every chain of both datasets here
    warm = bs.fit_many(
        ladders[1:3], "chinchilla", **sampled(warm_start=singles[0], **WARM, **COLUMNS)
    )
    for i, result in enumerate(warm, start=1):
        assert result.info["warmup"] == 200 and result.info["warm_start"] is True
        assert_chains_agree(result, label=(i,))
        assert_same_posterior(batch[i], result, z_max=4.5, sd_ratio=(0.8, 1 / 0.75), label=(i,))
    # a fit_many fit has an end state per chain, shaped as fit()'s (7 unconstrained
    # parameters: E, two log terms, alpha, beta, sigma, scatter_growth) ...
    end = batch[2].sampler_end
    assert end["z"].shape == singles[2].sampler_end["z"].shape == (SETTINGS["chains"], 7)
    assert end["inverse_mass_matrix"].shape == (SETTINGS["chains"], 7, 7)
    assert end["step_size"].shape == (SETTINGS["chains"],) and np.all(end["step_size"] > 0)
    # ... which fit() takes as a warm start
    again = bs.fit(
        ladders[2], "chinchilla", **sampled(warm_start=batch[2], progress=False, **WARM, **COLUMNS)
    )
    assert again.info["warm_start"] is True
    assert_chains_agree(again)


@pytest.mark.parametrize(
    ("warm_start", "kwargs", "message"),
    [
        ("last", {}, r"^warm_start must be None, 'first' or a Fit but got 'last'$"),
        ({"z": 0}, {}, r"^warm_start must be None, 'first' or a Fit but got dict$"),
        ("single", {"chains": 2}, r"^warm_start: the previous fit has 4 chains but chains=2$"),
        ("single", {"likelihood": "student_t"}, r"^warm_start: the previous fit is of another"),
    ],
)
def test_bad_warm_start_is_one_clear_error(singles, ladders, warm_start, kwargs, message):
    if warm_start == "single":
        warm_start = singles[0]
    settings = {"likelihood": "normal", "draws": 10} | kwargs
    with pytest.raises(ValueError, match=message):
        bs.fit_many(
            ladders[:2], "chinchilla", **sampled(warm_start=warm_start, **settings, **COLUMNS)
        )


# --------------------------------------------------------------------------- bad input


def _grouped(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    out = frame.copy()
    out["arm"] = [names[i % len(names)] for i in range(len(out))]
    return out


def test_datasets_of_different_structure_are_refused(ladders):
    one = _grouped(ladders[0], ["a"])
    two = _grouped(ladders[1], ["a", "b"])
    with pytest.raises(
        ValueError,
        match=r"^datasets\[1\] has 2 groups but datasets\[0\] has 1; fit_many needs datasets "
        r"of one structure",
    ):
        bs.fit_many([one, two], "chinchilla", **sampled(group="arm", **COLUMNS))


@pytest.mark.parametrize(
    ("datasets", "kwargs", "message"),
    [
        ([], {}, r"^datasets must hold at least one dataset but is empty$"),
        (None, {}, r"^datasets must be a list of Runs, DataFrames or CSV paths but got NoneType"),
        ("frame", {}, r"but got DataFrame; use bayescale.fit for a single dataset$"),
        ("two", {"chains": 0}, r"^chains must be an integer >= 1 but got 0$"),
        ("two", {"draws": 1.5}, r"^draws must be an integer >= 1 but got 1.5$"),
        ("two", {"seed": "0"}, r"^seed must be an integer but got '0'$"),
        ("two", {"target_accept": 1.0}, r"^target_accept must be in \(0, 1\) but got 1.0$"),
        ("two", {"param": "params"}, r"^fit_many got an unknown argument 'param'; column names"),
        ("bad", {}, r"^datasets\[1\]: "),
    ],
)
def test_bad_input_is_one_clear_error(ladders, datasets, kwargs, message):
    columns = dict(COLUMNS)
    if datasets == "frame":
        datasets = ladders[0]
    elif datasets == "two":
        datasets = ladders[:2]
    elif datasets == "bad":
        broken = ladders[1].copy()
        broken.loc[3, "loss"] = -1.0
        datasets = [ladders[0], broken]
    if "param" in kwargs:
        columns.pop("params")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=message):
            bs.fit_many(datasets, "chinchilla", **sampled(**kwargs, **columns))


def test_loss_column_must_be_named(ladders):
    with pytest.raises(ValueError, match=r"^name the loss column \(loss=\.\.\.\)"):
        bs.fit_many(ladders[:2], "chinchilla", params="params", tokens="tokens")


def test_fit_many_defaults_to_fits_target_accept(ladders, monkeypatch):
    """fit_many samples each dataset as fit() would: the same default target acceptance
    (0.95; 0.97 for partial pooling), which the benchmark's batch-vs-sequential ratio
    relies on."""
    seen = []

    def recording(*args, target_accept, **kwargs):
        seen.append(target_accept)
        raise RuntimeError("stop after the settings")

    monkeypatch.setattr("bayescale.inference.sampler.run_many", recording)
    arms = [d.assign(arm=np.where(np.arange(len(d)) % 2, "a", "b")) for d in ladders[:2]]
    for datasets, kwargs in (
        (ladders[:2], {}),
        (arms, {"group": "arm", "pooling": "partial"}),
    ):
        with pytest.raises(RuntimeError, match="stop after the settings"):
            bs.fit_many(datasets, "chinchilla", **sampled(**kwargs, **COLUMNS))
    assert seen == [
        0.95,
        0.97,
    ]  # fit()'s defaults (bayescale.inference.sampling.default_target_accept)
