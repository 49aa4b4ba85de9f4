"""Warm-up tree depths: capped in numpyro's first window only, set per iteration.

bayescale hands numpyro's NUTS a traced warm-up depth (``_warmup._TreeDepths``), which
relies on how numpyro reads its ``max_tree_depth`` pair; these tests fail if that changes.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.hmc import hmc
from numpyro.infer.util import ParamInfo

from bayescale.inference import _warmup


def _steps_per_iteration(first_window: int, capped: int, later: int, draws_depth: int):
    """Leapfrog steps of each of 12 iterations (8 warm-up) of NUTS on a standard normal,
    at a step size so small that every tree reaches its depth cap."""

    def potential(z):
        return 0.5 * jnp.sum(z**2)

    init_kernel, sample_kernel = hmc(potential, algo="NUTS")
    z = jnp.ones(1)

    def setup(depth):
        return init_kernel(
            ParamInfo(z, potential(z), jax.grad(potential)(z)),
            8,
            step_size=1e-4,
            adapt_step_size=False,
            adapt_mass_matrix=False,
            max_tree_depth=_warmup._TreeDepths((depth, draws_depth)),
            rng_key=jax.random.PRNGKey(0),
        )

    @jax.jit
    def run():
        state = setup(capped)

        def step(state, _):
            setup(jnp.where(state.i < first_window, capped, later))  # as ``advance`` does
            state = sample_kernel(state)
            return state, state.num_steps

        return jax.lax.scan(step, state, None, length=12)[1]

    return np.asarray(run())


def test_the_warm_up_depth_follows_the_iteration_and_the_draws_keep_theirs():
    steps = _steps_per_iteration(first_window=3, capped=2, later=4, draws_depth=5)
    # 3 first-window iterations at 2^2 - 1, 5 more warm-up at 2^4 - 1, 4 draws at 2^5 - 1
    assert steps.tolist() == [3] * 3 + [15] * 5 + [31] * 4


def test_tree_depths_iterate_as_the_draws_depth_alone():
    depths = _warmup._TreeDepths((6, 10))
    assert (depths[0], depths[1], max(depths)) == (6, 10, 10)


@pytest.mark.parametrize(("warmup", "capped"), [(1000, 75), (500, 75), (100, 15), (10, 10)])
def test_first_window_is_numpyros_initial_buffer(warmup, capped):
    assert _warmup._capped_until(warmup) == capped
    assert _warmup.FIRST_WINDOW_TREE_DEPTH < _warmup.WARMUP_TREE_DEPTH
