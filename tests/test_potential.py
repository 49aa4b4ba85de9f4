"""The sampler's potential: priors enter without their normalisers, and nothing else changes.

``Prior.unnormalized`` drops the terms of a prior's log density that depend only on its
hyper-parameters. Over random unconstrained points, the potential NUTS samples must then
differ from the one with numpyro's full densities by one constant, for every model shape:
hierarchical arms, sweep effects, the downstream link and the discrepancy term.
"""

import jax
import numpy as np
import pandas as pd
from conftest import two_arm_runs
from jax.flatten_util import ravel_pytree

import bayescale as bs
from bayescale.inference import _nuts
from bayescale.inference.fitting import resolve_spec
from bayescale.inference.sampling import model_arguments
from bayescale.laws.priors import Prior
from bayescale.model import build_model

COLS = {"params": "params", "tokens": "tokens", "loss": "loss"}


def _ladder_with_sweeps() -> pd.DataFrame:
    frame = bs.simulate_ladder(seed=4)
    frame["budget"] = np.round(np.log10(frame["params"] * frame["tokens"] * 6)).astype(int)
    return frame


def _cases(shared_data):
    gadre = bs.read_runs(
        shared_data / "gadre2024_runs.csv",
        params="n_params",
        tokens="n_tokens",
        loss="loss_c4_val",
        downstream="err_avg_17task_subset",
        group="data_distribution",
    )
    return {
        "chinchilla_besiroglu2024": (
            resolve_spec("chinchilla_besiroglu2024"),
            bs.read_runs(
                shared_data / "chinchilla_epoch2024.csv",
                params="Model Size",
                compute="Training FLOP",
                loss="loss",
            ),
            {},
        ),
        "partial pooling": (
            resolve_spec("gadre2024").with_(pooling="partial"),
            bs.read_runs(two_arm_runs(), group="group", **COLS),
            {},
        ),
        "sweeps + discrepancy": (
            resolve_spec("chinchilla").with_(likelihood="normal"),
            bs.read_runs(_ladder_with_sweeps(), sweep="budget", **COLS),
            {"discrepancy": True},
        ),
        "downstream, shared pooling": (
            resolve_spec("gadre2024").with_(downstream=True, pooling="shared"),
            gadre,
            {},
        ),
    }


def _at_points(spec, runs, options, points, of=lambda potential: potential):
    """``of(potential)`` at each row of ``points`` (cut to the model's dimension), as numpy."""
    scaling_model = build_model(spec, runs, **options)
    inputs, hyper, obs = model_arguments(scaling_model, runs)
    key = jax.random.PRNGKey(0)

    def at(flat):
        info, _, _ = _nuts._setup(scaling_model.model, key, inputs, hyper, obs)
        return of(info.potential_fn)(flat)  # the potential of one flat vector

    def dimension():
        return _nuts._setup(scaling_model.model, key, inputs, hyper, obs)[0].param_info.z

    d = jax.eval_shape(dimension).shape[0]
    return jax.tree.map(np.asarray, jax.jit(jax.vmap(at))(jax.numpy.asarray(points[:, :d])))


def test_potential_differs_from_the_fully_normalised_one_by_a_constant(shared_data, monkeypatch):
    points = np.random.default_rng(0).uniform(-1.5, 1.5, size=(8, 64))
    cases = _cases(shared_data)
    lean = {name: _at_points(*case, points) for name, case in cases.items()}
    monkeypatch.setattr(Prior, "unnormalized", Prior.distribution)
    full = {name: _at_points(*case, points) for name, case in cases.items()}
    for name in cases:
        assert np.all(np.isfinite(lean[name])) and np.all(np.isfinite(full[name])), name
        gap = full[name] - lean[name]
        assert np.ptp(gap) < 1e-9 * (1.0 + np.abs(full[name]).max()), (name, np.ptp(gap))
    # the constant is the priors' normalisers: not zero (truncated normals, Uniform(0, E_max))
    assert abs(full["chinchilla_besiroglu2024"][0] - lean["chinchilla_besiroglu2024"][0]) > 0.1


def _info(potential):
    """The parts of ``_nuts._setup``'s info that ``_nuts._start`` reads: a 2-vector."""
    from numpyro.infer.util import ParamInfo

    template = jax.numpy.array([0.25, -0.5])  # the feasible point
    info = type("Info", (), {})()
    info.param_info = ParamInfo(template, None, None)
    info.potential_fn = potential
    return info


def test_start_is_the_best_candidate_with_its_own_potential_and_gradient():
    """One vmapped value-and-gradient picks the lowest of 16 uniform(-2, 2) candidates
    and returns that point's potential and gradient (not the feasible point's)."""

    def potential(x):
        return jax.numpy.sum((x - jax.numpy.array([1.0, -1.5])) ** 2)

    key = jax.random.key_data(jax.random.PRNGKey(3))
    start = _nuts._start(_info(potential), key, 16)
    cand = np.asarray(jax.random.uniform(key, (16, 2), minval=-2.0, maxval=2.0))
    best = cand[np.argmin([float(potential(c)) for c in cand])]
    np.testing.assert_array_equal(np.asarray(start.z), best)
    value, grad = jax.value_and_grad(potential)(jax.numpy.asarray(best))
    np.testing.assert_allclose(float(start.potential_energy), float(value), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(start.z_grad), np.asarray(grad), rtol=1e-12)


def test_start_falls_back_to_the_feasible_point_when_no_candidate_is_finite():
    """A potential finite only near the template: every candidate is inf (or NaN), so
    the chain starts at the feasible point, with its finite potential and gradient."""

    def potential(x):
        near = jax.numpy.all(jax.numpy.abs(x - jax.numpy.array([0.25, -0.5])) < 1e-3)
        return jax.numpy.where(near, jax.numpy.sum(x**2), jax.numpy.inf)

    start = _nuts._start(_info(potential), jax.random.key_data(jax.random.PRNGKey(0)), 16)
    np.testing.assert_array_equal(np.asarray(start.z), [0.25, -0.5])
    np.testing.assert_allclose(float(start.potential_energy), 0.25**2 + 0.5**2, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(start.z_grad), [0.5, -1.0])


def test_nuts_runs_on_one_flat_vector_in_numpyros_site_order(shared_data):
    """NUTS samples one flat vector (not a dict of sites, whose every leaf numpyro would
    carry separately through the trajectory): its potential and constrained values are
    numpyro's own on the dict that ``ravel_pytree`` gives, for every model shape."""
    from numpyro.infer.util import initialize_model

    rng = np.random.default_rng(1)
    for name, (spec, runs, options) in _cases(shared_data).items():
        scaling_model = build_model(spec, runs, **options)
        inputs, hyper, obs = model_arguments(scaling_model, runs)
        info, _, _ = _nuts._setup(scaling_model.model, jax.random.PRNGKey(0), inputs, hyper, obs)
        ref = initialize_model(
            jax.random.PRNGKey(0), scaling_model.model, model_args=(inputs, hyper), model_kwargs=obs
        )
        template, unravel = ravel_pytree(ref.param_info.z)
        z = info.param_info.z
        assert z.ndim == 1 and z.shape == template.shape, name
        for flat in rng.uniform(-1.5, 1.5, size=(3, z.size)):
            np.testing.assert_allclose(
                float(info.potential_fn(flat)),
                float(ref.potential_fn(unravel(flat))),
                rtol=1e-12,
                err_msg=name,
            )
            mine, theirs = info.postprocess_fn(flat), ref.postprocess_fn(unravel(flat))
            assert mine.keys() == theirs.keys(), name
            for site in mine:
                np.testing.assert_allclose(mine[site], theirs[site], rtol=1e-12, err_msg=name)
