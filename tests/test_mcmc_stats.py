"""The numpy R-hat / ESS used in the fit path agree with ArviZ's to rounding error."""

import arviz as az
import numpy as np
import pytest

from bayescale.posterior._mcmc_stats import ess_bulk, ess_tail, mcse_mean, rhat


def _ar(rng, shape, rho):
    """AR(1) chains: rho 0.9 reads many autocorrelation pairs, rho -0.7 few."""
    e = rng.normal(size=shape)
    x = np.empty(shape)
    x[:, 0] = e[:, 0]
    for t in range(1, shape[1]):
        x[:, t] = rho * x[:, t - 1] + e[:, t]
    return x


def _cases():
    rng = np.random.default_rng(1)
    for shape in [(4, 1000), (4, 501), (2, 300), (8, 100), (4, 9)]:
        x = rng.normal(size=shape)
        yield "iid", x
        yield "autocorrelated", np.cumsum(x, axis=1) * 0.1 + rng.normal(size=shape)
        yield "AR(0.9)", _ar(rng, shape, 0.9)
        yield "antithetic AR(-0.7)", _ar(rng, shape, -0.7)
        yield "chains disagree", x + 0.3 * np.arange(shape[0])[:, None]
        yield "skewed", np.exp(x)
        yield "ties", np.round(x)


@pytest.mark.parametrize(("kind", "x"), list(_cases()))
def test_matches_arviz(kind, x):
    assert rhat(x) == pytest.approx(float(az.rhat(x)), rel=1e-9)
    assert ess_bulk(x) == pytest.approx(float(az.ess(x)), rel=1e-9)
    assert ess_tail(x) == pytest.approx(float(az.ess(x, method="tail", prob=0.05)), rel=1e-9)
    assert mcse_mean(x) == pytest.approx(float(az.mcse(x, method="mean")), rel=1e-9)


def test_leading_axes_give_each_row_its_own_value():
    """(parameters, chains, draws) in one call equals one call per parameter -- the
    closed-form Geyer sequence and the row-wise ranks must not mix rows -- and a row
    that is undefined (constant, NaN) stays NaN without touching the others."""
    cases = [x for _, x in _cases() if x.shape == (4, 501)]
    cases += [np.full((4, 501), 2.0), np.where(cases[0] > 1.5, np.nan, cases[0])]
    stacked = np.stack(cases).reshape(3, 3, 4, 501)  # two leading axes
    for fn in (rhat, ess_bulk, ess_tail, mcse_mean):
        each = np.array([fn(x) for x in cases]).reshape(3, 3)
        np.testing.assert_allclose(fn(stacked), each, rtol=1e-12)
        assert np.isnan(fn(stacked)[2, 2])  # the NaN row
    assert np.isnan(rhat(stacked)[2, 1]) and ess_bulk(stacked)[2, 1] == 4 * 500
    assert np.isnan(mcse_mean(np.ones((4, 3))))  # under 4 draws per chain, as ArviZ


def test_draws_need_chains_and_draws_axes():
    with pytest.raises(
        ValueError, match=r"^draws must be shaped \(\.\.\., chains, draws\) but got shape \(5,\)$"
    ):
        rhat(np.ones(5))


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


class _Draws:
    """The parts of a Fit that conftest.assert_chains_agree reads, for synthetic draws."""

    def __init__(self, x):
        self.samples = {"x": x}
        self.diagnostics = type("D", (), {"divergences": 0, "verdict": lambda self: "-"})()


def test_chains_agree_bound_passes_one_posterior_and_fails_a_shifted_chain():
    """The tests' R-hat tolerance (conftest.assert_chains_agree): draws of one posterior
    pass it (200 sets of autocorrelated chains with ESS ~1000, as a warm start's), a
    chain shifted by 0.75 posterior sd fails it (by 0.5 sd: 190 of these 200)."""
    from conftest import assert_chains_agree

    rng = np.random.default_rng(7)
    passed, shifted_failed = 0, 0
    for _ in range(200):
        e = rng.normal(size=(4, 1000))
        x = np.empty_like(e)  # AR(1), rho 0.6: ESS ~1000 of 4000 draws
        x[:, 0] = e[:, 0]
        for t in range(1, 1000):
            x[:, t] = 0.6 * x[:, t - 1] + 0.8 * e[:, t]
        try:
            assert_chains_agree(_Draws(x))
            passed += 1
        except AssertionError:
            pass
        x[0] += 0.75
        try:
            assert_chains_agree(_Draws(x))
        except AssertionError:
            shifted_failed += 1
    assert passed >= 198  # the bound's false-alarm rate is 1e-4 per check
    assert shifted_failed == 200
