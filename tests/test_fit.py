"""Fitting: parameter recovery for every law, robustness, pooling, shrinking intervals."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import FAST, sampled, saturating_power_case

import bayescale as bs
from bayescale.laws.simulate import HOFFMANN_2022

pytestmark = pytest.mark.slow

COMPUTE_GRID = np.geomspace(1e16, 1e22, 16)

# law, options, truth, simulate_ladder keyword arguments
RECOVERY = {
    "chinchilla": ("chinchilla", {}, HOFFMANN_2022, {}),
    "gadre2024": ("gadre2024", {}, {"E": 1.9, "A": 300.0, "B": 900.0, "eta": 0.3}, {}),
    "kaplan_n": (
        "kaplan_n",
        {},
        {"N_c": 8.8e13, "alpha_N": 0.076},
        {"params": np.geomspace(1e6, 1e9, 10), "tokens_per_param": (20.0,)},
    ),
    "kaplan_n+E": (
        "kaplan_n",
        {"irreducible": True},
        {"N_c": 1e10, "alpha_N": 0.3, "E": 1.8},
        {"params": np.geomspace(1e6, 1e10, 12), "tokens_per_param": (20.0,)},
    ),
    "kaplan_d": (
        "kaplan_d",
        {},
        {"D_c": 5.4e13, "alpha_D": 0.095},
        {"params": np.geomspace(1e6, 1e8, 4), "tokens_per_param": (10.0, 40.0, 160.0)},
    ),
    "kaplan_c": ("kaplan_c", {}, {"C_c": 3.1e25, "alpha_C": 0.05}, {"compute": COMPUTE_GRID}),
    "kaplan_nd": (
        "kaplan_nd",
        {},
        {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103},
        {"params": np.geomspace(1e6, 1e9, 6), "tokens_per_param": (2.0, 10.0, 50.0, 250.0)},
    ),
    "bnsl": (
        "bnsl",
        {"k": 1},
        {"a": 1.6, "b": 200.0, "c0": 0.1, "c_1": 0.25, "d_1": 1e19, "f_1": 0.4},
        {"compute": np.geomspace(1e16, 1e22, 24), "noise": 0.003},
    ),
}


def _simulate(case, seed=1, **overrides):
    name, options, truth, design = RECOVERY[case]
    law = bs.get_law(name, **options)
    kwargs = {"noise": 0.01, **design, **overrides}
    return law, truth, bs.simulate_ladder(law, truth, seed=seed, **kwargs)


def _read(frame):
    return bs.read_runs(
        frame,
        **{c: c for c in ("params", "tokens", "compute") if c in frame and frame[c].notna().all()},
        loss="loss",
    )


# Scale parameters are judged on the log scale, where their posteriors are close to normal.
LOG_SCALE = {"A", "B", "N_c", "D_c", "C_c", "b", "d_1"}
#: |truth - posterior mean| / posterior sd allowed: 3.3 sd is the two-sided 99.9% normal
#: quantile, so ~40 checks over all laws raise a false alarm with probability ~4% (fixed seeds
#: make each run deterministic; this states how strict the check is).
Z_MAX = 3.3


def z_score(result, name, value):
    draws = result.reported_flat()[name].reshape(-1)
    if name in LOG_SCALE:
        draws, value = np.log(draws), np.log(value)
    return (value - draws.mean()) / draws.std(ddof=1)


@pytest.mark.parametrize("case", list(RECOVERY))
def test_recovers_known_parameters(case):
    law, truth, frame = _simulate(case)
    result = bs.fit(_read(frame), law, **sampled(seed=2, **FAST))
    assert result.diagnostics.ok, result.diagnostics.verdict()
    for name, value in truth.items():
        z = z_score(result, name, value)
        assert abs(z) <= Z_MAX, (
            f"{case}: truth {name}={value} is {z:+.2f} posterior sd from the mean"
        )


@pytest.fixture(scope="module")
def clean_fit():
    frame = bs.simulate_ladder(seed=0)  # the demo ladder
    return frame, bs.fit(_read(frame), "chinchilla", **sampled(seed=0, **FAST))


def test_95_percent_intervals_cover_truth_and_predict_a_big_run(clean_fit):
    _, result = clean_fit
    summary = result.summary()
    covered = [
        summary.loc[k, "lower"] <= v <= summary.loc[k, "upper"] for k, v in HOFFMANN_2022.items()
    ]
    assert sum(covered) >= 4, summary
    truth = float(bs.get_law("chinchilla").loss(HOFFMANN_2022, params=70e9, tokens=1.4e12))
    next_run = result.predict(params=70e9, tokens=1.4e12)
    law_only = result.predict(params=70e9, tokens=1.4e12, noise=False)
    assert next_run.lower[0] <= truth <= next_run.upper[0]
    # the next run includes run-to-run noise: its interval is wider than the law's
    assert next_run.upper[0] - next_run.lower[0] > law_only.upper[0] - law_only.lower[0]
    assert {"median", "mean", "lower", "upper", "prob"} <= next_run.to_dict().keys()


def test_intervals_shrink_with_more_data():
    """Three replicate seeds of the same ladder: every interval narrows (by about sqrt 3)."""
    small = _read(bs.simulate_ladder(seed=3))
    large = _read(pd.concat([bs.simulate_ladder(seed=s) for s in (3, 4, 5)], ignore_index=True))
    widths = {}
    for label, runs in (("small", small), ("large", large)):
        s = bs.fit(runs, "chinchilla", **sampled(seed=0, **FAST)).summary()
        widths[label] = (s["upper"] - s["lower"])[["E", "alpha", "beta"]]
    assert (widths["large"] < widths["small"]).all(), widths


def test_student_t_shrugs_off_a_diverged_run(clean_fit):
    frame, clean = clean_fit
    dirty = pd.concat(
        [
            frame,
            pd.DataFrame(
                {"params": [3e8], "tokens": [6e9], "compute": [6 * 3e8 * 6e9], "loss": [10.0]}
            ),
        ],
        ignore_index=True,
    )
    # the outlier makes nu's posterior heavy-tailed: the fit's own advice (target_accept 0.95)
    robust = bs.fit(
        _read(dirty), "chinchilla", **sampled(seed=0, target_accept=0.95, **FAST)
    ).summary()
    reference = clean.summary()
    for name in ("E", "alpha", "beta"):
        assert (
            reference.loc[name, "lower"]
            <= robust.loc[name, "median"]
            <= reference.loc[name, "upper"]
        ), name
    with warnings.catch_warnings():  # the normal fit is misspecified on purpose; only sigma matters
        warnings.simplefilter("ignore", bs.FitWarning)
        normal = bs.fit(_read(dirty), "chinchilla", **sampled(likelihood="normal", seed=0, **FAST))
    # the normal likelihood has to inflate its noise scale to absorb the outlier
    assert normal.summary().loc["sigma", "median"] > 5 * robust.loc["sigma", "median"]


def _arms(seed=7, distinct_exponents=False):
    truths = {
        "A": dict(HOFFMANN_2022),
        "B": {**HOFFMANN_2022, "E": 1.8, "A": 600.0},
        "C": {**HOFFMANN_2022, "E": 1.6, "B": 300.0},
    }
    if distinct_exponents:  # what partial pooling is for: related, not identical, arms
        truths["B"].update(alpha=0.30, beta=0.25)
        truths["C"].update(alpha=0.38, beta=0.31)
    frames = [
        bs.simulate_ladder("chinchilla", t, seed=seed + i, group=g)
        for i, (g, t) in enumerate(truths.items())
    ]
    frame = pd.concat(frames, ignore_index=True)
    return truths, bs.read_runs(frame, params="params", tokens="tokens", loss="loss", group="group")


@pytest.mark.parametrize("pooling", ["none", "shared", "partial"])
def test_pooling_modes_recover_per_group_truth(pooling):
    truths, runs = _arms(distinct_exponents=pooling != "shared")
    # three 30-run arms (15+ correlated parameters; three hierarchical scales under partial
    # pooling) mix slowly: a full warm-up and more draws give the tail ESS the diagnostics
    # gate asks for (pooling "none" at 1000 draws: tail ESS 145-662 over seeds 0-3, at 2000:
    # 554-1626; "partial" at 2000: 316 for seed 0, at 3000: 583-1364 over seeds 0-2)
    draws = {"shared": 1000, "none": 2000, "partial": 3000}[pooling]
    settings = {**FAST, "draws": draws, "warmup": 1000}
    # none and partial: the fit's own advice for its occasional divergences and slow chains
    # (target_accept 0.99). "none" at 0.95 over seeds 0-3: tail ESS 216-1309 and ok for
    # 3 of 4 (jax 0.12.0.1; the same seed 0 failed before this session's warm-up change
    # too, at tail ESS 331, where 2 others had 1-2 divergences); at 0.99: 589-1498, all ok
    extra = {"target_accept": 0.99} if pooling in ("none", "partial") else {}
    # the law's posterior per group is the subject here: no drift folds (5 more fits each)
    result = bs.fit(
        runs, "chinchilla", **sampled(pooling=pooling, seed=0, drift=False, **settings, **extra)
    )
    assert result.diagnostics.ok, result.diagnostics.verdict()
    names = set(result.summary().index)
    if pooling == "shared":
        assert {"alpha", "beta"} <= names and "alpha[A]" not in names
    else:
        assert {"alpha[A]", "alpha[B]", "alpha[C]"} <= names
    if pooling == "partial":
        assert {"alpha_mu", "alpha_tau", "beta_mu", "beta_tau"} <= names
    for group, truth in truths.items():
        for name, value in truth.items():
            key = name if name in names else f"{name}[{group}]"
            z = z_score(result, key, value)
            assert abs(z) <= Z_MAX, f"{pooling}: {key} truth {value} at {z:+.2f} sd"
    pred = result.predict(params=1e10, tokens=2e11, group="B")
    # (the fit may have continued its chains: extend=3)
    assert pred.draws.shape == (result.n_chains * result.n_draws, 1)
    with pytest.raises(ValueError, match=r"unknown group 'b'; did you mean 'B'\? Groups: A, B, C"):
        result.predict(params=1e10, tokens=2e11, group="b")
    with pytest.raises(ValueError, match="this fit is grouped: name a group, one of A, B, C"):
        result.predict(params=1e10, tokens=2e11)


def test_shared_pooling_narrows_exponents_against_no_pooling():
    _, runs = _arms()
    kwargs = {"seed": 0, "drift": False, **FAST}  # the exponents' posterior alone
    none = bs.fit(runs, "chinchilla", **sampled(pooling="none", **kwargs)).summary()
    shared = bs.fit(runs, "chinchilla", **sampled(pooling="shared", **kwargs)).summary()
    assert shared.loc["alpha", "sd"] < none.loc["alpha[A]", "sd"]


def test_user_defined_law_fits_without_editing_the_package():
    law, truth, frame = saturating_power_case()
    result = bs.fit(_read(frame), law, **sampled(seed=0, **FAST))
    assert result.diagnostics.ok
    for name, value in truth.items():
        assert abs(z_score(result, name, value)) <= Z_MAX


def test_netcdf_round_trip_predicts_identically(clean_fit, tmp_path):
    _, result = clean_fit
    path = result.to_netcdf(tmp_path / "fit.nc")
    loaded = bs.load_fit(path)
    pd.testing.assert_frame_equal(loaded.summary(), result.summary())
    a = result.predict(params=[1e9, 7e10], tokens=[2e10, 1.4e12], seed=3)
    b = loaded.predict(params=[1e9, 7e10], tokens=[2e10, 1.4e12], seed=3)
    np.testing.assert_array_equal(a.draws, b.draws)
    assert loaded.to_dict() == result.to_dict()
    tree = loaded.to_datatree()
    assert {"posterior", "sample_stats", "log_likelihood", "observed_data"} <= set(tree.children)
    assert tree["log_likelihood"]["log_loss"].shape == (4, FAST["draws"], result.runs.n_runs)
    with pytest.raises(ValueError, match=r"exists; pass overwrite=True \(--force\) to replace it"):
        result.to_netcdf(path)


def test_arviz_loo_works_on_the_datatree(clean_fit):
    import arviz as az

    _, result = clean_fit
    with warnings.catch_warnings():
        # a 30-run ladder has influential end points (Pareto k > 0.7 for some): what is
        # tested here is that ArviZ reads the DataTree, not the LOO approximation's quality
        warnings.filterwarnings("ignore", "Estimated shape parameter of Pareto", UserWarning)
        loo = az.loo(result.to_datatree(), pointwise=True)
    assert np.isfinite(loo.elpd)
    assert np.asarray(loo.elpd_i).size == result.runs.n_runs


@pytest.mark.parametrize(
    ("law", "frame", "message"),
    [
        ("kaplan_n", pd.DataFrame({"N": [1e8, 1e8, 1e8], "L": [3.0, 3.1, 2.9]}), "model size"),
        (
            "chinchilla",
            pd.DataFrame({"N": [1e8, 2e8, 4e8], "D": [1e9, 2e9, 4e9], "L": [3.0, 2.9, 2.8]}),
            "runs",
        ),
    ],
)
def test_unidentifiable_data_is_refused_before_sampling(law, frame, message):
    columns = {"params": "N", "tokens": "D"} if "D" in frame else {"params": "N"}
    with pytest.raises(ValueError, match=message):
        bs.fit(frame, law, **sampled(loss="L", **columns))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chains": 0}, "chains must be an integer >= 1 but got 0"),
        ({"draws": 2.5}, "draws must be an integer >= 1 but got 2.5"),
        ({"target_accept": 1.2}, "target_accept must be in \\(0, 1\\) but got 1.2"),
        ({"device": "tpu"}, "device must be one of 'cpu', 'gpu', 'auto' but got 'tpu'"),
        ({"likelihood": "cauchy"}, "likelihood must be one of student_t, normal but got 'cauchy'"),
        ({"pooling": "full"}, "pooling must be one of none, shared, partial but got 'full'"),
    ],
)
def test_bad_fit_arguments(kwargs, message):
    runs = _read(bs.simulate_ladder(seed=0))
    with pytest.raises(ValueError, match=message):
        bs.fit(runs, "chinchilla", **sampled(**{"draws": 10, "warmup": 10, **kwargs}))


def test_same_seed_same_draws():
    runs = _read(bs.simulate_ladder(seed=0))
    a = bs.fit(runs, "chinchilla", **sampled(seed=11, **FAST))
    b = bs.fit(runs, "chinchilla", **sampled(seed=11, **FAST))
    c = bs.fit(runs, "chinchilla", **sampled(seed=12, **FAST))
    np.testing.assert_array_equal(a.samples["alpha"], b.samples["alpha"])
    assert not np.array_equal(a.samples["alpha"], c.samples["alpha"])
