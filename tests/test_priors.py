"""Prior specs: printing, parsing without eval, and errors that name the rule."""

import math

import numpy as np
import pytest

from bayescale.laws.priors import FAMILIES, Prior, parse_prior


@pytest.mark.parametrize(
    "text",
    [
        "Normal(mu=0.5, sigma=1)",
        "HalfNormal(sigma=0.1)",
        "LogNormal(mu=3, sigma=2)",
        "TruncatedNormal(mu=0.35, sigma=0.25, low=0, high=1.5)",
        "TruncatedNormal(mu=0.35, sigma=0.25, low=0)",
        "Uniform(low=0, high=2.08)",
        "Exponential(rate=2)",
        "Gamma(concentration=2, rate=0.1)",
        "Gamma(concentration=2, rate=0.1, loc=1)",
        "HalfCauchy(scale=1)",
        "StudentT(df=3, mu=0, sigma=1)",
        "Beta(alpha=2, beta=5)",
    ],
)
def test_prints_as_written_and_parses_back(text):
    prior = parse_prior(text)
    assert str(prior) == text
    assert parse_prior(str(prior)) == prior
    assert parse_prior(prior.to_dict()) == prior


def test_every_family_builds_a_numpyro_distribution_with_its_support():
    import numpyro.distributions as dist

    examples = {
        "Normal": {"mu": 0, "sigma": 1},
        "HalfNormal": {"sigma": 1},
        "LogNormal": {"mu": 0, "sigma": 1},
        "TruncatedNormal": {"mu": 0, "sigma": 1, "low": 0, "high": 2},
        "Uniform": {"low": 0, "high": 2},
        "Exponential": {"rate": 1},
        "Gamma": {"concentration": 2, "rate": 1},
        "HalfCauchy": {"scale": 1},
        "StudentT": {"df": 3, "mu": 0, "sigma": 1},
        "Beta": {"alpha": 2, "beta": 2},
    }
    assert set(examples) == set(FAMILIES)
    for family, params in examples.items():
        d = Prior(family, params).distribution()
        assert isinstance(d, dist.Distribution)
        assert math.isfinite(float(d.log_prob(d.mean if family != "HalfCauchy" else 1.0)))


@pytest.mark.parametrize(
    "text",
    [
        "Normal(mu=-0.4, sigma=1.5)",
        "HalfNormal(sigma=0.1)",
        "LogNormal(mu=0.5, sigma=0.7)",
        "TruncatedNormal(mu=0.3, sigma=0.3, low=0, high=1.5)",
        "TruncatedNormal(mu=0.3, sigma=0.3, low=0)",
        "TruncatedNormal(mu=0.3, sigma=0.3, high=0.2)",
        "Uniform(low=0, high=2.07739)",
        "Exponential(rate=3)",
        "Gamma(concentration=2, rate=0.1)",
        "Gamma(concentration=2, rate=0.1, loc=1)",
        "HalfCauchy(scale=0.5)",
        "StudentT(df=3, mu=1, sigma=2)",
        "Beta(alpha=2, beta=5)",
    ],
)
def test_unnormalized_prior_differs_from_the_density_by_a_constant(text):
    """What the sampler sees: the same support and samples, and a log density that is
    numpyro's minus a constant (its normaliser), to float64 rounding, over the support."""
    import jax
    import jax.numpy as jnp

    prior = parse_prior(text)
    exact, lean = prior.distribution(), prior.unnormalized()
    assert lean.support is exact.support or str(lean.support) == str(exact.support)
    key = jax.random.PRNGKey(0)
    np.testing.assert_array_equal(lean.sample(key, (5,)), exact.sample(key, (5,)))
    x = exact.sample(jax.random.PRNGKey(1), (200,))
    gap = np.asarray(exact.log_prob(x) - lean.log_prob(x))
    assert np.all(np.isfinite(gap))
    scale = 1.0 + np.abs(np.asarray(exact.log_prob(x))).max()
    assert np.ptp(gap) < 1e-9 * scale, (text, np.ptp(gap))
    assert lean.log_prob(jnp.asarray(x[:3])).shape == (3,)


def test_shifted_gamma_has_support_above_loc_and_matches_scipy():
    """nu ~ 1 + Gamma(2, 0.1): NUTS must see the support (1, inf), not the real line."""
    import jax
    import jax.numpy as jnp
    import numpyro
    from numpyro.infer.util import initialize_model
    from scipy import stats

    prior = parse_prior("Gamma(concentration=2, rate=0.1, loc=1)")
    d = prior.distribution()
    assert bool(d.support(1.5)) and not bool(d.support(0.9))
    for x in (1.01, 3.0, 40.0):
        expected = stats.gamma(2.0, loc=1.0, scale=10.0).logpdf(x)
        assert float(d.log_prob(x)) == pytest.approx(expected, rel=1e-12)
    draws = np.asarray(d.sample(jax.random.PRNGKey(0), (20000,)))
    assert draws.min() > 1.0
    assert draws.mean() == pytest.approx(21.0, rel=0.02)  # 1 + 2 / 0.1

    def model(hyper):
        numpyro.sample("nu", prior.distribution(hyper))

    hyper = {k: jnp.asarray(v) for k, v in prior.hyper().items()}  # traced hyper-parameters
    info = initialize_model(jax.random.PRNGKey(1), model, model_args=(hyper,))
    # every unconstrained value maps inside the support with a finite potential
    for u in (-30.0, -2.0, 0.0, 3.0):
        z = {"nu": jnp.asarray(u)}
        assert float(info.postprocess_fn(z)["nu"]) > 1.0
        assert math.isfinite(float(info.potential_fn(z)))


def test_truncated_normal_respects_bounds():
    d = parse_prior("TruncatedNormal(mu=0.3, sigma=0.3, low=0, high=1.5)").distribution()
    assert bool(d.support(0.7))
    assert not bool(d.support(-0.1))
    assert not bool(d.support(1.6))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "Normall(mu=0, sigma=1)",
            "unknown prior family 'Normall'; valid families: .*; did you mean 'Normal'\\?",
        ),
        ("Normal(mu=0)", "prior Normal needs parameter 'sigma'"),
        ("Normal(mu=0, sigma=-1)", "prior Normal parameter 'sigma' must be > 0 but got -1.0"),
        (
            "Normal(mu=0, scale=1)",
            "prior Normal has no parameter 'scale'; its parameters are mu, sigma",
        ),
        ("Uniform(low=2, high=1)", "prior Uniform needs low < high but got low=2.0, high=1.0"),
        (
            "Gamma(concentration=2, rate=0.1, loc=inf)",
            "prior Gamma parameter 'loc' must be finite but got inf",
        ),
        (
            "Normal(mu=__import__('os'), sigma=1)",
            "cannot read prior argument .*; arguments are name=number",
        ),
        ("normal 0 1", "cannot read prior 'normal 0 1'; write it like 'Normal\\(mu=0, sigma=1\\)'"),
        ({"mu": 0, "sigma": 1}, "prior table needs a 'dist' entry naming the family"),
        (
            {"dist": "Normal", "mu": "0", "sigma": 1},
            "prior Normal parameter 'mu' must be a number, got '0'",
        ),
    ],
)
def test_bad_priors_fail_with_one_line_naming_the_rule(spec, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_prior(spec)
    assert "\n" not in str(info.value)
