"""Warm-started refits: chains resume where a previous fit ended, with its mass matrix."""

import numpy as np
import pytest
from conftest import FAST, assert_same_posterior, sampled

import bayescale as bs
from bayescale.inference import _programs, _warmup

pytestmark = pytest.mark.slow

COLS = {"params": "params", "tokens": "tokens", "loss": "loss"}


@pytest.fixture(scope="module")
def first():
    return bs.fit(
        bs.simulate_ladder(seed=0), "chinchilla", **sampled(seed=0, progress=False, **COLS, **FAST)
    )


def _refit_data():
    # the same ladder design, new noise: a posterior near the first one
    return bs.simulate_ladder(seed=1)


def test_warm_refit_matches_a_cold_fit_of_the_new_data(first):
    data = _refit_data()
    settings = {k: v for k, v in FAST.items() if k != "warmup"}
    cold = bs.fit(
        data,
        "chinchilla",
        **sampled(seed=5, progress=False, warmup=FAST["warmup"], **COLS, **settings),
    )
    warm = bs.fit(
        data, "chinchilla", **sampled(seed=5, progress=False, warm_start=first, **COLS, **settings)
    )
    assert warm.info["warm_start"] is True and warm.info["warmup"] == 200
    assert cold.info["warm_start"] is False
    assert warm.diagnostics.ok, warm.diagnostics.verdict()
    assert_same_posterior(cold, warm)


def test_end_state_has_one_point_and_metric_per_chain(first):
    end = first.sampler_end
    chains = FAST["chains"]
    dim = end["z"].shape[1]
    assert end["z"].shape == (chains, dim)
    assert end["inverse_mass_matrix"].shape == (chains, dim, dim)
    assert end["step_size"].shape == (chains,)
    np.testing.assert_array_equal(end["schedule"], np.full(chains, FAST["warmup"]))
    assert np.all(end["step_size"] > 0) and np.all(np.isfinite(end["z"]))
    # an adapted dense metric: symmetric positive definite, not the identity it started at
    for m in end["inverse_mass_matrix"]:
        np.testing.assert_allclose(m, m.T, rtol=1e-10, atol=1e-14)
        assert np.all(np.linalg.eigvalsh(m) > 0)
        assert not np.allclose(m, np.eye(dim))


def test_warm_start_settings_are_checked(first, tmp_path):
    data = _refit_data()
    run = {"seed": 1, "progress": False, "draws": 10, **COLS}
    with pytest.raises(
        ValueError, match=r"^warm_start: the previous fit has 4 chains but chains=2$"
    ):
        bs.fit(data, "chinchilla", **sampled(chains=2, warm_start=first, **run))
    with pytest.raises(ValueError, match="warm_start: the previous fit is of another model"):
        bs.fit(data, "chinchilla", **sampled(likelihood="normal", warm_start=first, **run))
    with pytest.raises(ValueError, match="warm_start: the previous fit has dense_mass=True"):
        bs.fit(data, "chinchilla", **sampled(dense_mass=False, warm_start=first, **run))
    with pytest.raises(ValueError, match=r"^warm_start must be a Fit but got dict$"):
        bs.fit(data, "chinchilla", **sampled(warm_start={"z": 1}, **run))
    old = bs.load_fit(first.to_netcdf(tmp_path / "first.nc"))
    old.sampler_end = None  # as a file written without one (an older bayescale) loads
    without = bs.load_fit(old.to_netcdf(tmp_path / "without.nc"))
    assert without.sampler_end is None
    with pytest.raises(ValueError, match="warm_start: this Fit has no sampler end state"):
        bs.fit(data, "chinchilla", **sampled(warm_start=without, **run))


def test_end_state_survives_the_fit_file_and_warm_starts_a_new_process(first, tmp_path):
    loaded = bs.load_fit(first.to_netcdf(tmp_path / "first.nc"))
    assert sorted(loaded.sampler_end) == sorted(first.sampler_end)
    for name, value in first.sampler_end.items():
        np.testing.assert_array_equal(loaded.sampler_end[name], value)
        assert loaded.sampler_end[name].dtype == value.dtype
    run = {"seed": 5, "progress": False, **COLS, **{k: v for k, v in FAST.items() if k != "warmup"}}
    from_file = bs.fit(_refit_data(), "chinchilla", **sampled(warm_start=loaded, **run))
    in_memory = bs.fit(_refit_data(), "chinchilla", **sampled(warm_start=first, **run))
    # the same start, metric, step size and schedule: the same draws, bit for bit
    np.testing.assert_array_equal(from_file.samples["alpha"], in_memory.samples["alpha"])


def test_warm_refit_reuses_the_programs_and_keeps_the_metric(first, monkeypatch):
    """A warm start runs the last 200 iterations of the first fit's warm-up schedule in
    the same compiled ``advance`` and ``finish``; only its ``init`` is its own. Those 200
    iterations lie in numpyro's first, step-size-only window: the metric is not touched."""
    monkeypatch.setattr(_programs, "_PROGRAMS", {})  # a fresh process (JAX's cache is warm)
    monkeypatch.setattr(_programs, "_STATE_TREES", {})
    compiled = []
    real = _programs._Program.compile

    def recording(self):
        compiled.append(self.name)
        return real(self)

    monkeypatch.setattr(_programs._Program, "compile", recording)
    # one noise scale: the programs and the metric are the subject, and with the default's
    # scatter growth the 200-iteration warm refit at FAST settings landed at R-hat 1.013
    run = {"seed": 2, "progress": False, "drift": False, "extend": 0, **COLS, **FAST}
    run["scatter_growth"] = False
    again = bs.fit(bs.simulate_ladder(seed=0), "chinchilla", **sampled(**run))
    assert sorted(compiled) == ["advance", "finish", "init"]
    compiled.clear()
    run.pop("warmup")
    warm = bs.fit(_refit_data(), "chinchilla", **sampled(warm_start=again, **run))
    assert compiled == ["init_warm"]
    assert warm.diagnostics.ok, warm.diagnostics.verdict()
    np.testing.assert_array_equal(
        warm.sampler_end["inverse_mass_matrix"], again.sampler_end["inverse_mass_matrix"]
    )
    assert not np.array_equal(warm.sampler_end["step_size"], again.sampler_end["step_size"])
    np.testing.assert_array_equal(warm.sampler_end["schedule"], again.sampler_end["schedule"])
    # each chain ran 200 warm-up iterations and its draws: one step count per draw
    assert warm.stats["n_steps"].shape == (FAST["chains"], FAST["draws"])


@pytest.mark.parametrize("warmup", [0, 1, 200, 425, 426, 925, 926, 5000])
@pytest.mark.parametrize("came_from", [None, 500, 1000])
def test_warm_start_begins_after_the_first_adaptation_window(warmup, came_from):
    # against numpyro's own schedule: the first iteration a warm start runs lies after
    # the end of the first window, so no mass-matrix window ever opens
    from numpyro.infer.hmc_util import build_adaptation_schedule

    start = {} if came_from is None else {"schedule": np.full(4, came_from)}
    length = _warmup._schedule(warmup, start)
    assert length - warmup > build_adaptation_schedule(length)[0].end
    expected = came_from or _warmup.SHARED_WARMUP
    if warmup + _warmup.FIRST_WINDOW <= expected:
        assert length == expected  # the programs of the schedule it came from
    assert _warmup._schedule(warmup, None) == warmup  # a cold start: its own schedule
