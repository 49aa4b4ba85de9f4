"""Warm-started refits: chains resume where a previous fit ended, with its mass matrix."""

import numpy as np
import pytest
from conftest import FAST, assert_same_posterior

import bayescale as bs

pytestmark = pytest.mark.slow

COLS = {"params": "params", "tokens": "tokens", "loss": "loss"}


@pytest.fixture(scope="module")
def first():
    return bs.fit(bs.simulate_ladder(seed=0), "chinchilla", seed=0, progress=False, **COLS, **FAST)


def _refit_data():
    # the same ladder design, new noise: a posterior near the first one
    return bs.simulate_ladder(seed=1)


def test_warm_refit_matches_a_cold_fit_of_the_new_data(first):
    data = _refit_data()
    settings = {k: v for k, v in FAST.items() if k != "warmup"}
    cold = bs.fit(
        data, "chinchilla", seed=5, progress=False, warmup=FAST["warmup"], **COLS, **settings
    )
    warm = bs.fit(data, "chinchilla", seed=5, progress=False, warm_start=first, **COLS, **settings)
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
        bs.fit(data, "chinchilla", chains=2, warm_start=first, **run)
    with pytest.raises(ValueError, match="warm_start: the previous fit is of another model"):
        bs.fit(data, "chinchilla", likelihood="normal", warm_start=first, **run)
    with pytest.raises(ValueError, match="warm_start: the previous fit has dense_mass=True"):
        bs.fit(data, "chinchilla", dense_mass=False, warm_start=first, **run)
    with pytest.raises(ValueError, match=r"^warm_start must be a Fit but got dict$"):
        bs.fit(data, "chinchilla", warm_start={"z": 1}, **run)
    loaded = bs.load_fit(first.to_netcdf(tmp_path / "first.nc"))
    assert loaded.sampler_end is None
    with pytest.raises(ValueError, match="warm_start: this Fit has no sampler end state"):
        bs.fit(data, "chinchilla", warm_start=loaded, **run)
