"""One job (one chain) of the NUTS programs: its model pieces, start, kernel and steps.

:func:`_job_init` gives a job's first NUTS state and draw buffers, :func:`_job_advance`
runs its iterations ``i0 .. i1`` and :func:`_job_finish` its constrained draws;
:mod:`bayescale.inference._programs` maps them over every job and compiles them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._warmup import FIRST_WINDOW_TREE_DEPTH, WARMUP_TREE_DEPTH, _capped_until, _TreeDepths


@dataclass(frozen=True)
class _Settings:
    chains: int
    warmup: int
    draws: int
    dense_mass: bool
    target_accept: float
    max_tree_depth: int
    regularize: bool = True  # Stan's shrinkage of the windows' covariance (see run_chains)


def _setup(model, key, inputs, hyper, obs):
    """numpyro's model pieces and NUTS kernels for one job's data (traced by every program).

    ``info.param_info.z`` is only a template of the unconstrained parameters (a feasible
    point of every prior): :func:`_start` picks the starting point. numpyro's
    ``initialize_model`` would also search for a valid start in a while loop holding the
    potential and its gradient, which made ``init`` the slowest program to compile (~3 s
    of its ~6.5 s) for a start :func:`_start` replaces anyway.
    """
    from numpyro.handlers import seed, substitute
    from numpyro.infer.util import ModelInfo, ParamInfo, get_potential_fn, transform_fn

    try:
        from numpyro.infer.util import _get_model_transforms, _prepare_model_for_potential
    except ImportError:  # pragma: no cover - numpyro moved its helpers: the full search
        return _setup_searching(model, key, inputs, hyper, obs)
    args = (inputs, hyper)
    # a feasible point of each prior's support, not a prior draw: drawing (the Gamma prior
    # of nu samples by rejection) put random-number loops into every program to compile
    at_feasible = substitute(seed(model, key), substitute_fn=_feasible_point)
    inv_transforms, replay, enum, trace = _get_model_transforms(at_feasible, args, obs)
    potential_fn, postprocess_fn = get_potential_fn(
        _prepare_model_for_potential(model, trace, enum=enum),
        inv_transforms,
        replay_model=replay,
        enum=enum,
        model_args=args,
        model_kwargs=obs,
    )
    feasible = {
        k: v["value"]
        for k, v in trace.items()
        if v["type"] == "sample" and not v["is_observed"] and not v["fn"].support.is_discrete
    }
    template = transform_fn(inv_transforms, feasible, invert=True)
    return _flat_nuts(
        ModelInfo(ParamInfo(template, None, None), potential_fn, postprocess_fn, trace)
    )


def _flat_nuts(info):
    """``info`` on one flat vector of unconstrained parameters, and NUTS kernels for it.

    numpyro's NUTS works on any pytree, but every leaf of ``z`` is carried separately
    through each leapfrog update, tree merge and loop state (position, momentum and
    gradient of the left, right and proposed ends): the 7 scalar sites of the Chinchilla
    law made ``advance`` ~20% larger to compile (346 vs 275 fusions, ~5.1 vs ~4.1 CPU-s)
    than one vector of 7 does. numpyro ravels ``z`` in the same (sorted-key) order for
    the dense metric, so the draws are the same either way.
    """
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.hmc import hmc
    from numpyro.infer.util import ModelInfo, ParamInfo

    flat, unravel = ravel_pytree(info.param_info.z)
    potential_fn, postprocess_fn = info.potential_fn, info.postprocess_fn

    def potential(f):
        return potential_fn(unravel(f))

    def postprocess(f):
        return postprocess_fn(unravel(f))

    info = ModelInfo(ParamInfo(flat, None, None), potential, postprocess, info.model_trace)
    init_kernel, sample_kernel = hmc(potential, algo="NUTS")
    return info, init_kernel, sample_kernel


def _feasible_point(site):
    import jax.numpy as jnp

    if site["type"] != "sample" or site.get("is_observed"):
        return None
    fn = site["fn"]
    shape = fn.shape(site["kwargs"].get("sample_shape", ()))
    return fn.support.feasible_like(jnp.zeros(shape))


def _setup_searching(model, key, inputs, hyper, obs):  # pragma: no cover - fallback
    from numpyro.infer.initialization import init_to_uniform
    from numpyro.infer.util import initialize_model

    info = initialize_model(
        key,
        model,
        init_strategy=init_to_uniform(radius=2.0),
        model_args=(inputs, hyper),
        model_kwargs=obs,
    )
    return _flat_nuts(info)


def _init_kernel(init_kernel, s: _Settings, param_info, key, start=None, warmup_depth=None):
    metric = {}
    if start is not None:
        # a warm start begins with the given metric and step size; it runs only the last
        # ``warmup`` iterations of the schedule, all inside the first (step-size-only)
        # window, so the metric is kept (see :func:`_schedule`)
        metric = {
            "inverse_mass_matrix": start["inverse_mass_matrix"],
            "step_size": start["step_size"],
        }
    return init_kernel(
        param_info,
        s.warmup,
        **metric,
        dense_mass=s.dense_mass,
        regularize_mass_matrix=s.regularize,
        target_accept_prob=s.target_accept,
        # ``advance`` sets the warm-up depth per iteration (a traced value); the state
        # built here does not depend on it
        max_tree_depth=_TreeDepths(
            (FIRST_WINDOW_TREE_DEPTH if warmup_depth is None else warmup_depth, s.max_tree_depth)
        ),
        rng_key=key,
    )


def _kept(state):
    return state.z, state.diverging, state.energy, state.num_steps


def _job_init(model, s: _Settings, key, start, first, data, shapes_only=False):
    """A job's first NUTS state and draw buffers.

    ``shapes_only`` starts at the template with a zero potential and gradient instead of
    evaluating the potential: the same state structure and shapes, traced without the
    model's log density (:func:`_prepare` lowers ``advance`` from them before ``init``).
    """
    import jax
    import jax.numpy as jnp

    k_init, k_cand, k_run = jax.random.split(key, 3)
    info, init_kernel, _ = _setup(model, k_init, *data)
    if shapes_only:
        param_info = _unevaluated(info)
    elif start is None:
        param_info = _start(info, k_cand, INIT_CANDIDATES)
    else:
        param_info = _at(info, start["z"])
    state = _init_kernel(init_kernel, s, param_info, k_run, start)
    if start is not None:  # a warm start enters the schedule at iteration ``first``
        state = state._replace(i=jnp.asarray(first, jnp.result_type(state.i)))
    buffers = jax.tree.map(
        lambda a: jnp.zeros((s.draws, *jnp.shape(a)), jnp.result_type(a)), _kept(state)
    )
    return state, buffers


def _job_advance(model, s: _Settings, tree, leaves, buffers, i0, i1, data):
    import jax
    import jax.numpy as jnp
    from jax import lax

    state = jax.tree.unflatten(tree, leaves)
    info, init_kernel, sample_kernel = _setup(model, state.rng_key, *data)
    unevaluated = _unevaluated(info)
    capped_until = _capped_until(s.warmup)
    first, later = (min(d, s.max_tree_depth) for d in (FIRST_WINDOW_TREE_DEPTH, WARMUP_TREE_DEPTH))

    def step(i, carry):
        state, buffers = carry
        # numpyro's sample_kernel reads the warm-up schedule, tree depths and integrator
        # that init_kernel last set up (the state it builds here is unused, so it gets a
        # potential and gradient rather than tracing them): this iteration's depth
        depth = jnp.where(state.i < capped_until, first, later)
        _init_kernel(init_kernel, s, unevaluated, state.rng_key, warmup_depth=depth)
        state = sample_kernel(state)
        # warm-up iterations all land in slot 0, which the first draw overwrites
        slot = jnp.maximum(i - s.warmup, 0)
        buffers = jax.tree.map(
            lambda b, v: lax.dynamic_update_index_in_dim(b, v, slot, 0), buffers, _kept(state)
        )
        return state, buffers

    state, buffers = lax.fori_loop(i0, i1, step, (state, buffers))
    return jax.tree.leaves(state), buffers


def _job_finish(model, key, z, data):
    import jax

    info, _, _ = _setup(model, key, *data)
    return jax.vmap(info.postprocess_fn)(z)


#: Random starts drawn per chain; the chain starts at the one with the lowest potential.
INIT_CANDIDATES = 16


def _start(info, key, candidates: int):
    """The best of ``candidates`` random starts (uniform in (-2, 2) unconstrained).

    A single random start far out in the tails (sigma ~ 4 on log loss: potential ~1000
    above the mode) gives the first trajectories so much energy that one can plunge into
    the sigma -> 0 funnel, where the step size collapses to ~1e-14 and the chain never
    leaves (seen: 1 chain in ~50 on a 12-run kaplan_d ladder, R-hat 1.59). Keeping the
    lowest-potential of 16 draws costs 16 potential evaluations and removed those stalls;
    the starts still differ between chains (each chain draws its own 16), so R-hat keeps
    its power to reveal several modes. Should no draw have a finite potential, the chain
    starts at the feasible point of :func:`_setup` (and the diagnostics judge the result).

    The candidates and the feasible point are evaluated in one vmapped value-and-gradient,
    whose row for the chosen start is the start's potential and gradient: one copy of the
    gradient in ``init`` instead of a vmapped potential plus a gradient at the chosen
    point (``init``'s XLA compile: ~1.6 s instead of ~2.4 s on the Chinchilla posterior).
    """
    import jax
    import jax.numpy as jnp
    from numpyro.infer.util import ParamInfo

    flat = info.param_info.z  # one vector (:func:`_flat_nuts`)
    cand = jax.random.uniform(key, (candidates, flat.size), minval=-2.0, maxval=2.0)
    cand = jnp.concatenate([cand.astype(flat.dtype), flat[None]])
    pe, grad = jax.vmap(jax.value_and_grad(info.potential_fn))(cand)
    finite = jnp.where(jnp.isfinite(pe[:-1]), pe[:-1], jnp.inf)
    best = jnp.argmin(finite)
    best = jnp.where(jnp.isfinite(finite[best]), best, candidates)
    return ParamInfo(cand[best], pe[best], grad[best])


def _at(info, flat):
    """numpyro's ParamInfo at the flat unconstrained point ``flat``."""
    import jax
    from numpyro.infer.util import ParamInfo

    pe, grad = jax.value_and_grad(info.potential_fn)(flat)
    return ParamInfo(flat, pe, grad)


def _unevaluated(info):
    """numpyro's ParamInfo at the template with zero potential and gradient (not evaluated)."""
    import jax.numpy as jnp
    from numpyro.infer.util import ParamInfo

    z = info.param_info.z
    return ParamInfo(z, jnp.zeros((), jnp.result_type(float)), jnp.zeros_like(z))


def _end_state(state) -> dict:
    """Where a chain ended and the metric it used: the ``start`` of a warm refit."""
    return {
        "z": state.z,  # one flat vector (:func:`_flat_nuts`)
        "inverse_mass_matrix": state.adapt_state.inverse_mass_matrix,
        "step_size": state.adapt_state.step_size,
    }
