"""Posterior draws are evaluated with numpy, not op-by-op JAX: same numbers, fewer imports.

Predictions, decisions and fit files evaluate the law and the likelihood on thousands of
draws on the host. The laws follow their inputs' array type (numpy in, numpy out), the
pointwise log-likelihood is written out instead of calling ``scipy.stats``, and a fit file
is built with ``arviz_base``: a ``bayescale fit --out`` process imports neither ``arviz``
(with arviz-stats and arviz-plots) nor ``scipy.stats``.
"""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import bayescale as bs
from bayescale.posterior.core import _log_density

LAWS = [("chinchilla", {}), ("kaplan_nd", {}), ("kaplan_c", {}), ("bnsl", {"k": 2})]


@pytest.mark.parametrize(("name", "options"), LAWS)
def test_laws_give_numpy_the_values_they_give_jax(name, options):
    law = bs.get_law(name, **options)
    rng = np.random.default_rng(0)
    theta = {p: rng.uniform(0.05, 0.6, size=(50, 1)) for p in law.parameter_names}
    x = {k: rng.normal(0.0, 3.0, size=(1, 40)) for k in law.inputs}
    host = law.log_loss(theta, x)
    assert type(host) is np.ndarray  # no JAX array, hence no op-by-op compile
    traced = jax.jit(law.log_loss)(
        {k: jnp.asarray(v) for k, v in theta.items()}, {k: jnp.asarray(v) for k, v in x.items()}
    )
    assert isinstance(traced, jax.Array)
    np.testing.assert_allclose(host, np.asarray(traced), rtol=1e-13, atol=0)


def test_log_sum_exp_of_infinite_terms_is_not_nan():
    law = bs.get_law("chinchilla")
    theta = {"E": np.array([0.0]), "alpha": np.array([0.3]), "beta": np.array([0.3])}
    theta |= {"log_N_term": np.array([-np.inf]), "log_D_term": np.array([-np.inf])}
    x = {"params": np.zeros(1), "tokens": np.zeros(1)}
    assert law.log_loss(theta, x).tolist() == [-np.inf]


def test_log_density_is_scipys():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(1, 30))
    loc = rng.normal(size=(200, 30))
    scale = rng.uniform(0.01, 2.0, size=(200, 1))
    df = rng.uniform(0.5, 300.0, size=(200, 1))
    np.testing.assert_allclose(
        _log_density(y, loc, scale, df), stats.t.logpdf(y, df, loc=loc, scale=scale), rtol=1e-12
    )
    np.testing.assert_allclose(
        _log_density(y, loc, scale), stats.norm.logpdf(y, loc=loc, scale=scale), rtol=1e-12
    )


@pytest.mark.slow
def test_writing_a_fit_imports_neither_arviz_nor_scipy_stats(tmp_path):
    code = (
        "import sys, bayescale as bs; "
        "runs = bs.read_runs(bs.simulate_ladder(seed=0), params='params', tokens='tokens', "
        "loss='loss'); "
        "f = bs.fit(runs, 'chinchilla', seed=0, sampler=bs.SamplerOptions(progress=False, "
        "chains=2, warmup=150, draws=100, extend=0)); "
        f"f.to_netcdf({str(tmp_path / 'f.nc')!r}); "
        "print(sorted(m for m in ('arviz', 'scipy.stats') if m in sys.modules))"
    )
    env = {
        **os.environ,
        "BAYESCALE_CACHE_DIR": str(tmp_path / "cache"),
        "BAYESCALE_NO_PROGRESS": "1",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
    loaded = bs.load_fit(tmp_path / "f.nc")
    assert loaded.to_datatree()["log_likelihood"]["log_loss"].shape == (2, 100, 30)
