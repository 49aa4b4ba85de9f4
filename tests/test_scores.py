"""Scoring rules of a backtest against their closed forms."""

import numpy as np
from scipy import stats

from bayescale.trust._scores import crps, interval_score, intervals, pit


def test_crps_of_normal_draws_matches_the_closed_form():
    rng = np.random.default_rng(0)
    mu, sigma = 3.0, 0.2
    draws = rng.normal(mu, sigma, (40_000, 3))
    y = np.array([3.0, 3.1, 3.5])
    z = (y - mu) / sigma
    exact = sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))
    # Monte Carlo error of the estimator at 40k draws is ~0.3% of sigma
    np.testing.assert_allclose(crps(draws, y), exact, atol=0.01 * sigma)


def test_pit_of_calibrated_forecasts_is_uniform():
    rng = np.random.default_rng(1)
    truth = rng.normal(0.0, 1.0, 400)
    draws = rng.normal(0.0, 1.0, (2000, 400))
    u = pit(draws, truth)
    assert stats.kstest(u, "uniform").pvalue > 0.01
    shifted = pit(draws, truth + 1.0)  # a biased forecaster is caught
    assert stats.kstest(shifted, "uniform").pvalue < 1e-6


def test_intervals_and_interval_score():
    draws = np.linspace(0.0, 1.0, 100_001)[:, None]
    q = intervals(draws, (0.5, 0.95))
    np.testing.assert_allclose(
        [q["lower_50"][0], q["upper_50"][0], q["lower_95"][0]], [0.25, 0.75, 0.025]
    )
    inside = interval_score(np.array([1.0]), np.array([2.0]), np.array([1.5]), 0.95)
    below = interval_score(np.array([1.0]), np.array([2.0]), np.array([0.5]), 0.95)
    np.testing.assert_allclose([inside[0], below[0]], [1.0, 1.0 + 40 * 0.5])
