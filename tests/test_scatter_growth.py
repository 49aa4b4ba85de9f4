"""Scatter that widens toward the small end of the ladder: ``fit(..., scatter_growth=True)``.

The model is ``log L_i ~ Normal(log mu_i, sigma * exp(g * depth_i))``, ``depth_i`` the
e-folds of scale (here log N*D) below the fit set's top. Simulated ladders with a known
``g`` check that it is recovered, that a homoscedastic ladder keeps it near 0, that
predictions at and beyond the top keep ``sigma`` while runs deep in the ladder get the
wider scatter, and that the fit file, the log-likelihood, the CLI and bad input carry it.
"""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import sampled

import bayescale as bs
from bayescale.laws.specs import ModelSpec
from bayescale.model.scaling import build_model

GROWTH = 0.15
TOP_NOISE = 0.004
PARAMS = (2e7, 5e7, 1.2e8, 3e8, 7e8, 1.5e9)
MULTIPLIERS = (5.0, 10.0, 20.0, 40.0, 80.0)
SETTINGS = {"chains": 4, "draws": 500, "warmup": 500}


def heteroscedastic_ladder(seed: int = 0, growth: float = GROWTH):
    """Hoffmann's law; run noise ``TOP_NOISE * exp(growth * depth)`` on log loss."""
    frame = bs.simulate_ladder(params=PARAMS, tokens_per_param=MULTIPLIERS, noise=0.0)
    log_scale = np.log(frame["params"] * frame["tokens"])
    depth = log_scale.max() - log_scale
    rng = np.random.default_rng(seed)
    scale = TOP_NOISE * np.exp(growth * depth)
    frame["loss"] = frame["loss"] * np.exp(scale * rng.standard_normal(len(frame)))
    return frame, depth.to_numpy()


def _fit(frame, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        return bs.fit(
            frame,
            "chinchilla",
            params="params",
            tokens="tokens",
            loss="loss",
            **sampled(likelihood="normal", drift=False, seed=0, **SETTINGS, **kwargs),
        )


@pytest.fixture(scope="module")
def growing():
    frame, depth = heteroscedastic_ladder()
    return frame, depth, _fit(frame, scatter_growth=True)


def test_depth_is_e_folds_of_scale_below_the_top(growing):
    frame, depth, fit = growing
    got = fit.model.depth(
        {"params": frame["params"].to_numpy(), "tokens": frame["tokens"].to_numpy()}
    )
    np.testing.assert_allclose(got, depth, rtol=0, atol=1e-12)
    beyond = fit.model.depth({"params": np.array([1e10]), "tokens": np.array([2e11])})
    assert beyond.tolist() == [0.0]
    assert fit.model.frontier["scale"] == pytest.approx(np.log(1.5e9 * 80 * 1.5e9))


def test_known_growth_and_top_scatter_are_recovered(growing):
    _, _, fit = growing
    assert fit.diagnostics.ok, fit.diagnostics.verdict()
    g, sigma = fit.flat("scatter_growth"), fit.flat("sigma")
    assert np.quantile(g, 0.005) < GROWTH < np.quantile(g, 0.995)
    assert np.quantile(sigma, 0.005) < TOP_NOISE < np.quantile(sigma, 0.995)
    # the data show the growth: almost no posterior mass is left near a constant scatter
    assert np.mean(g < GROWTH / 3) < 0.01


def test_a_homoscedastic_ladder_keeps_the_growth_near_zero():
    frame = bs.simulate_ladder(params=PARAMS, tokens_per_param=MULTIPLIERS, noise=0.01, seed=2)
    fit = _fit(frame, scatter_growth=True)
    g = fit.flat("scatter_growth")
    # 11.4 e-folds of scale: the growth of the other ladder (0.15) would make the smallest
    # runs scatter 5.5x more than the largest, which 30 runs of equal scatter rule out
    assert np.mean(g >= GROWTH) < 0.05
    prior_975 = 0.2 * 2.2414  # HalfNormal(0.2)
    assert np.quantile(g, 0.975) < prior_975 / 3
    assert np.quantile(fit.flat("sigma"), 0.005) < 0.01 < np.quantile(fit.flat("sigma"), 0.995)


def test_only_runs_below_the_top_get_the_wider_scatter(growing):
    frame, depth, fit = growing
    deep = np.argmax(depth)
    target = {"params": frame["params"].iloc[deep], "tokens": frame["tokens"].iloc[deep]}
    noisy = fit.predict(**target, seed=1)
    law_only = fit.predict(**target, noise=False, seed=1)
    factor = np.exp(fit.flat("scatter_growth") * depth[deep])
    expected = np.sqrt(np.mean((fit.flat("sigma") * factor) ** 2))
    spread = np.std(np.log(noisy.draws[:, 0])) ** 2 - np.std(np.log(law_only.draws[:, 0])) ** 2
    assert np.sqrt(spread) == pytest.approx(expected, rel=0.1)
    # at and beyond the top the scatter is sigma itself: a fit without the growth term
    # with the same draws of sigma would give the same noise
    from bayescale.posterior._predict import scatter_factor

    big = {"params": np.array([1e10]), "tokens": np.array([2e11])}
    assert np.all(scatter_factor(fit, big) == 1.0)


def test_log_likelihood_uses_each_runs_own_scatter(growing):
    frame, depth, fit = growing
    ll = fit.log_likelihood().reshape(-1, len(frame))
    values = {"params": frame["params"].to_numpy(), "tokens": frame["tokens"].to_numpy()}
    log_mu = fit.log_loss_draws(values, np.zeros(len(frame), np.int32))
    scale = fit.flat("sigma")[:, None] * np.exp(fit.flat("scatter_growth")[:, None] * depth)
    y = np.log(frame["loss"].to_numpy())[None, :]
    expected = -0.5 * ((y - log_mu) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi)
    np.testing.assert_allclose(ll, expected, rtol=1e-9, atol=1e-9)


def test_the_fit_file_keeps_the_growth(growing, tmp_path):
    _, _, fit = growing
    path = tmp_path / "fit.nc"
    fit.to_netcdf(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.FitWarning)
        loaded = bs.load_fit(path)
    assert (
        loaded.model.scatter_growth
        and loaded.model.frontier["scale"] == fit.model.frontier["scale"]
    )
    assert "scatter_growth" in loaded.model.noise_sites
    a = fit.predict(params=7e8, tokens=1.4e10, seed=3)
    b = loaded.predict(params=7e8, tokens=1.4e10, seed=3)
    np.testing.assert_array_equal(a.draws, b.draws)


def test_cli_fit_takes_scatter_growth(tmp_path):
    frame, _ = heteroscedastic_ladder(seed=4)
    csv = tmp_path / "runs.csv"
    frame.to_csv(csv, index=False)
    out = tmp_path / "fit.nc"
    flags = ["--chains", "2", "--draws", "300", "--warmup", "300", "--no-progress"]
    cmd = [sys.executable, "-m", "bayescale", "fit", str(csv), "--params", "params"]
    cmd += ["--tokens", "tokens", "--loss", "loss", "--no-drift"]
    for extra, grows in (([], True), (["--no-scatter-growth"], False)):
        done = subprocess.run(
            cmd + extra + flags + ["--out", str(out), "--json", "--force"],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert ("scatter_growth" in json.dumps(json.loads(done.stdout))) is grows
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bs.FitWarning)
            assert bs.load_fit(out).model.scatter_growth is grows
    both = subprocess.run(
        [*cmd, "--scatter-growth", "--no-scatter-growth", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert both.returncode == 2
    assert both.stderr == (
        "error: bayescale fit: argument --no-scatter-growth: not allowed with argument "
        "--scatter-growth\n"
    )


def test_a_law_without_a_scale_is_refused():
    law = bs.custom_law(
        "lr_only",
        lambda t, U: t["E"] + t["A"] * U ** -t["a"],
        {
            "E": "Uniform(low=0, high=2)",
            "A": "LogNormal(mu=3, sigma=2)",
            "a": "Uniform(low=0, high=1)",
        },
        inputs=("U",),
        register=False,
    )
    frame, _ = heteroscedastic_ladder()
    runs = bs.read_runs(
        frame.assign(U=frame["tokens"]), compute="compute", loss="loss", inputs={"U": "U"}
    )
    with pytest.raises(ValueError) as err:
        build_model(ModelSpec(name="lr_only", law=law), runs, scatter_growth=True)
    assert str(err.value) == (
        "scatter_growth needs a law of params, tokens or compute; law 'lr_only' has inputs U"
    )


def test_decisions_give_a_small_candidate_the_wider_scatter(growing):
    from bayescale.decide._arms import Arm
    from bayescale.decide._metrics import scatter_factor

    frame, depth, fit = growing
    order = np.arange(fit.n_chains * fit.n_draws)
    arm = Arm("all", fit, None, order)
    g = fit.flat("scatter_growth")
    deep = int(np.argmax(depth))
    n, d = frame["params"].iloc[deep], frame["tokens"].iloc[deep]
    small = scatter_factor(arm, {"params": n, "tokens": d, "compute": 6 * n * d})
    np.testing.assert_allclose(small, np.exp(g * depth[deep]), rtol=1e-12)
    # a compute-optimal target knows only its compute: its scale is log(C / 6)
    by_compute = scatter_factor(arm, {"params": None, "tokens": None, "compute": 6 * n * d})
    np.testing.assert_allclose(by_compute, small, rtol=1e-9)
    assert scatter_factor(arm, {"params": 1e10, "tokens": 2e11, "compute": 1.2e22}).tolist() == [
        1.0
    ] * len(order)


def test_the_default_grows_the_scatter_only_where_the_runs_can_inform_it():
    from bayescale.inference.fitting import auto_scatter_growth, resolve_spec

    frame, _ = heteroscedastic_ladder()
    runs = bs.read_runs(frame, params="params", tokens="tokens", loss="loss")
    chinchilla = resolve_spec("chinchilla")  # 5 parameters: at least 9 runs
    assert auto_scatter_growth(chinchilla, runs)
    assert auto_scatter_growth(chinchilla, runs.select(np.arange(9)))
    assert not auto_scatter_growth(chinchilla, runs.select(np.arange(8)))
    # a law of a further input (unique tokens U) keeps one scatter
    with_u = bs.read_runs(
        frame.assign(U=frame["tokens"] / 2),
        params="params",
        tokens="tokens",
        loss="loss",
        inputs={"U": "U"},
    )
    assert not auto_scatter_growth(resolve_spec("muennighoff2023"), with_u)


def test_fit_records_the_choice_and_takes_an_explicit_no(growing):
    frame, _, fit = growing
    assert fit.info["scatter_growth"] is True
    plain = _fit(frame, scatter_growth=False)
    assert plain.info["scatter_growth"] is False
    assert "scatter_growth" not in plain.samples and not plain.model.scatter_growth
    auto = _fit(frame.iloc[:8])  # 8 runs for 5 parameters: the default leaves it out
    assert auto.info["scatter_growth"] is False
