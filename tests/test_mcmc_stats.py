"""The numpy R-hat / ESS used in the fit path agree with ArviZ's to rounding error."""

import arviz as az
import numpy as np
import pytest

from bayescale._mcmc_stats import ess_bulk, ess_tail, rhat


def _cases():
    rng = np.random.default_rng(1)
    for shape in [(4, 1000), (4, 501), (2, 300), (8, 100)]:
        x = rng.normal(size=shape)
        yield "iid", x
        yield "autocorrelated", np.cumsum(x, axis=1) * 0.1 + rng.normal(size=shape)
        yield "chains disagree", x + 0.3 * np.arange(shape[0])[:, None]
        yield "skewed", np.exp(x)
        yield "ties", np.round(x)


@pytest.mark.parametrize(("kind", "x"), list(_cases()))
def test_matches_arviz(kind, x):
    assert rhat(x) == pytest.approx(float(az.rhat(x)), rel=1e-9)
    assert ess_bulk(x) == pytest.approx(float(az.ess(x)), rel=1e-9)
    assert ess_tail(x) == pytest.approx(float(az.ess(x, method="tail", prob=0.05)), rel=1e-9)


def test_detects_a_stuck_chain():
    x = np.random.default_rng(0).normal(size=(4, 500))
    x[3] = 5.0 + 1e-3 * x[3]
    assert rhat(x) > 1.5
    assert ess_bulk(x) < 20


def test_constant_and_non_finite_draws_are_undefined():
    assert np.isnan(rhat(np.ones((4, 100))))
    bad = np.random.default_rng(0).normal(size=(4, 100))
    bad[0, 3] = np.nan
    assert np.isnan(rhat(bad)) and np.isnan(ess_bulk(bad)) and np.isnan(ess_tail(bad))
