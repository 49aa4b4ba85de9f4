"""The model's own log-density pieces (``bayescale.model._density``) compute what numpyro's do.

They exist to be cheaper for XLA to compile (see the module); these tests hold them to
the values and gradients of the expressions they replace, and the whole potential to
the one written with numpyro's ``StudentT``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats
from test_potential import _at_points, _cases

from bayescale.model import _density
from bayescale.model._density import (
    log_gamma_half_ratio,
    student_t,
    student_t_df_terms,
    student_t_log_prob,
)


def test_log_gamma_half_ratio_matches_gammaln_and_digamma_differences():
    # scipy's differences are accurate here (no large cancellation below x ~ 1e3)
    x = np.geomspace(1e-3, 1e3, 400)
    value = np.asarray(log_gamma_half_ratio(x))
    ref = special.gammaln(x + 0.5) - special.gammaln(x)
    # the reference itself rounds each gammaln: a few ulps of each
    big = 1 + np.abs(special.gammaln(x)) + np.abs(special.gammaln(x + 0.5))
    ulps = 4 * np.finfo(float).eps * big
    assert np.all(np.abs(value - ref) <= ulps)
    slope = np.asarray(jax.vmap(jax.grad(log_gamma_half_ratio))(jnp.asarray(x)))
    ref = special.digamma(x + 0.5) - special.digamma(x)
    ulps = 4 * np.finfo(float).eps * (1 + np.abs(special.digamma(x)))
    np.testing.assert_allclose(slope, ref, rtol=1e-13, atol=ulps.max())
    assert np.all(np.abs(slope - ref) <= 1e-13 * np.abs(ref) + ulps)


def test_log_gamma_half_ratio_keeps_the_recurrence_where_gammaln_differences_cancel():
    """``Gamma(x + 3/2) / Gamma(x + 1) = (x + 1/2) / x * Gamma(x + 1/2) / Gamma(x)``: the
    ratio must step by ``log1p(1 / (2x))`` exactly, across the series' shift and far out,
    where ``gammaln(x + 1/2) - gammaln(x)`` has lost 6 digits (x ~ 1e9)."""
    x = np.concatenate([np.linspace(0.05, 25.0, 300), np.geomspace(25.0, 1e12, 200)])
    at = np.asarray(log_gamma_half_ratio(x))
    step = np.asarray(log_gamma_half_ratio(x + 1.0)) - at
    # both values to a few ulps: their difference to a few ulps of the values
    ulps = 4 * np.finfo(float).eps * (1 + np.abs(at))
    assert np.all(np.abs(step - np.log1p(0.5 / x)) <= 1e-13 * np.log1p(0.5 / x) + ulps)
    # and far out it is the asymptote 1/2 log x - 1/(8x) + 1/(192 x^3)
    big = np.geomspace(1e4, 1e12, 20)
    np.testing.assert_allclose(
        np.asarray(log_gamma_half_ratio(big)),
        0.5 * np.log(big) - 1 / (8 * big) + 1 / (192 * big**3),
        rtol=1e-15,
        atol=1e-15,
    )
    cancelled = special.gammaln(2e9 + 0.5) - special.gammaln(2e9)
    assert abs(cancelled - float(log_gamma_half_ratio(2e9))) > 1e-8  # what it avoids


def test_student_t_log_prob_and_gradient_are_numpyros():
    import numpyro.distributions as dist

    rng = np.random.default_rng(0)
    value, loc = rng.normal(size=(2, 50))
    df = np.concatenate([rng.uniform(1.0, 10.0, 40), np.geomspace(10.0, 1e5, 10)])
    scale = rng.uniform(0.01, 2.0, 50)
    args = tuple(jnp.asarray(a) for a in (value, df, loc, scale))

    def theirs(v, d, m, s):
        return dist.StudentT(d, m, s).log_prob(v)

    # numpyro's and scipy's normalisers round two gammaln(df / 2) ~ 5e5 at df = 1e5
    ulps = 8 * np.finfo(float).eps * (1 + np.abs(special.gammaln(0.5 * df)))
    mine = np.asarray(student_t_log_prob(*args))
    for ref in (theirs(*args), stats.t.logpdf(value, df, loc, scale)):
        assert np.all(np.abs(mine - np.asarray(ref)) <= 1e-13 * np.abs(ref) + ulps)
    for i in range(4):
        slope = jax.vmap(jax.grad(student_t_log_prob, argnums=i))(*args)
        ref = jax.vmap(jax.grad(theirs, argnums=i))(*args)
        np.testing.assert_allclose(slope, ref, rtol=1e-9, atol=1e-12, err_msg=f"argument {i}")
    d = student_t(df, loc, scale)
    np.testing.assert_array_equal(d.log_prob(value), mine)
    # with the df terms computed elsewhere (per group in the model): the same density
    terms = student_t_df_terms(df)
    np.testing.assert_array_equal(student_t(df, loc, scale, terms).log_prob(value), mine)
    assert d.sample(jax.random.PRNGKey(0)).shape == (50,)  # still numpyro's sampler


@pytest.fixture
def numpyros_pieces(monkeypatch):
    """The model as written before ``_density``: numpyro's StudentT."""
    import numpyro.distributions as dist

    monkeypatch.setattr(
        _density, "student_t", lambda df, loc, scale, _: dist.StudentT(df, loc, scale)
    )


def _value_and_grad(spec, runs, options, points):
    return _at_points(spec, runs, options, points, of=jax.value_and_grad)


def test_potential_and_gradient_are_those_of_numpyros_pieces(shared_data, request):
    points = np.random.default_rng(2).uniform(-1.5, 1.5, size=(6, 64))
    cases = _cases(shared_data)
    cases = {k: v for k, v in cases.items() if v[0].likelihood == "student_t"} | {
        "sweeps + discrepancy (normal)": cases["sweeps + discrepancy"]
    }
    assert len(cases) == 4
    mine = {name: _value_and_grad(*case, points) for name, case in cases.items()}
    request.getfixturevalue("numpyros_pieces")
    theirs = {name: _value_and_grad(*case, points) for name, case in cases.items()}
    for name in cases:
        (v, g), (v0, g0) = mine[name], theirs[name]
        assert np.all(np.isfinite(v)) and np.all(np.isfinite(g)), name
        np.testing.assert_allclose(v, v0, rtol=1e-11, err_msg=name)
        np.testing.assert_allclose(g, g0, rtol=1e-8, atol=1e-8 * np.abs(g0).max(), err_msg=name)
