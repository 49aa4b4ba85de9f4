"""One compiled NUTS program per model structure: init, warmup and draws in a single jit.

numpyro's :class:`~numpyro.infer.MCMC` re-traces its chain function on every ``run``;
for scaling-law posteriors (a handful of parameters, a few hundred runs) that compile
dominates the wall time. Here the whole run, for all chains (and, in :func:`run_many`,
for all datasets), is one jitted function whose arguments are the data, so:

* a refit on new data of the same padded shape reuses the compiled program: no trace,
  no compile, only sampling (~0.5 s for a 30-run ladder, ~2 s for 245 runs on 2 cores);
* JAX's persistent cache lets a new process skip compilation too;
* :func:`run_many` runs the same program over many datasets at once (replicates, arms, SBC).

The kernel is numpyro's NUTS (``numpyro.infer.hmc.hmc``) with windowed adaptation of the
step size and a dense mass matrix. Every chain of every dataset is one *job*; jobs run

* ``parallel``: spread over host devices with ``pmap`` (CPU: one thread per device); the
  jobs that share a device run one after another (no lock-step, no vmap to compile);
* ``vectorized``: all vmapped on one device (GPU: thousands of small posteriors at once).

Only ``(draws, ...)`` buffers are kept per chain: warm-up states are written to slot 0
and overwritten by the first draw, so memory does not grow with ``warmup``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from functools import partial

import numpy as np

__all__ = ["compiled_runner", "run_chains", "run_many"]

_RUNNERS: dict[tuple, Callable] = {}
_BAR: list = []  # the progress bar the compiled callback feeds (at most one at a time)


def _progress_tick(i) -> None:
    # Module-level so that the compiled program does not capture a bar object: the same
    # runner (and cache entry) serves fits with and without a fresh bar.
    if _BAR:
        _BAR[0].update_to(int(np.max(i)) + 1)


def _one_chain(
    model,
    warmup,
    draws,
    dense_mass,
    target_accept,
    max_tree_depth,
    progress_every,
    rng_key,
    inputs,
    hyper,
    obs,
):
    import jax
    import jax.numpy as jnp
    from jax import lax
    from numpyro.infer.hmc import hmc
    from numpyro.infer.initialization import init_to_uniform
    from numpyro.infer.util import initialize_model

    k_init, k_cand, k_run = jax.random.split(rng_key, 3)
    info = initialize_model(
        k_init,
        model,
        # random starts within radius 2 of the unconstrained origin (the best of 16 is
        # kept, see _start); prior-median starts were tried and left more chains stuck
        # in a second mode (kaplan_nd, downstream)
        init_strategy=init_to_uniform(radius=2.0),
        model_args=(inputs, hyper),
        model_kwargs=obs,
    )
    init_kernel, sample_kernel = hmc(info.potential_fn, algo="NUTS")
    param_info = _start(info, k_cand, INIT_CANDIDATES)
    state = init_kernel(
        param_info,
        warmup,
        dense_mass=dense_mass,
        target_accept_prob=target_accept,
        # warm-up trees at most 2^6 - 1 leapfrog steps: before the first mass-matrix
        # window the metric is the identity and trees max out (1023 steps), which made
        # the first 100 warm-up iterations cost more than all 1000 draws; the cap halves
        # the cost of a whole fit and leaves the adapted step size and draws unchanged
        max_tree_depth=(min(WARMUP_TREE_DEPTH, max_tree_depth), max_tree_depth),
        rng_key=k_run,
    )

    def kept(state):
        return state.z, state.diverging, state.energy, state.num_steps

    buffers = jax.tree.map(
        lambda a: jnp.zeros((draws, *jnp.shape(a)), jnp.result_type(a)), kept(state)
    )

    def step(carry, i):
        state, buffers = carry
        state = sample_kernel(state)
        if progress_every:
            lax.cond(
                (i + 1) % progress_every == 0,
                lambda: jax.debug.callback(_progress_tick, i),
                lambda: None,
            )
        # warm-up iterations all land in slot 0, which the first draw overwrites
        slot = jnp.maximum(i - warmup, 0)
        buffers = jax.tree.map(
            lambda b, v: lax.dynamic_update_index_in_dim(b, v, slot, 0), buffers, kept(state)
        )
        return (state, buffers), None

    # one scan over warmup + draws: the NUTS kernel is compiled once, not twice
    (_, (z, diverging, energy, num_steps)), _ = lax.scan(
        step, (state, buffers), jnp.arange(warmup + draws)
    )
    constrained = jax.vmap(info.postprocess_fn)(z)
    return constrained, {"diverging": diverging, "energy": energy, "n_steps": num_steps}


#: Deepest NUTS tree during warm-up (the draws use ``max_tree_depth``).
WARMUP_TREE_DEPTH = 6
#: Random starts drawn per chain; the chain starts at the one with the lowest potential.
INIT_CANDIDATES = 16


def _start(info, key, candidates: int):
    """The best of ``candidates`` random starts (uniform in (-2, 2) unconstrained).

    A single random start far out in the tails (sigma ~ 4 on log loss: potential ~1000
    above the mode) gives the first trajectories so much energy that one can plunge into
    the sigma -> 0 funnel, where the step size collapses to ~1e-14 and the chain never
    leaves (seen: 1 chain in ~50 on a 12-run kaplan_d ladder, R-hat 1.59). Keeping the
    lowest-potential of 16 draws (numpyro's first start included) costs 16 potential
    evaluations and removed those stalls; the starts still differ between chains (each
    chain draws its own 16), so R-hat keeps its power to reveal several modes.
    """
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import ParamInfo

    flat, unravel = ravel_pytree(info.param_info.z)

    def potential(f):
        return info.potential_fn(unravel(f))

    draws = jax.random.uniform(key, (candidates - 1, flat.size), minval=-2.0, maxval=2.0)
    cand = jnp.concatenate([flat[None], draws.astype(flat.dtype)])
    pe = jax.vmap(potential)(cand)
    best = cand[jnp.argmin(jnp.where(jnp.isfinite(pe), pe, jnp.inf))]
    pe, grad = jax.value_and_grad(potential)(best)
    return ParamInfo(unravel(best), pe, unravel(grad))


class _Progress:
    """A tqdm bar fed from inside the compiled program (every 5% of iterations)."""

    def __init__(self, total: int, desc: str):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=desc, leave=False)
        self.total = total

    def update_to(self, value: int) -> None:
        self.bar.update(max(0, min(value, self.total) - self.bar.n))

    def __enter__(self):
        _BAR[:] = [self]
        return self

    def __exit__(self, *exc):
        _BAR.clear()
        if exc[0] is None:
            self.update_to(self.total)
        self.bar.close()
        return False


def _progress_every(total: int) -> int:
    return max(1, total // 20)


def compiled_runner(
    model,
    static_key,
    *,
    chains,
    warmup,
    draws,
    dense_mass=True,
    target_accept=0.9,
    max_tree_depth=10,
    chain_method="vectorized",
    batched=False,
    devices=None,
):
    """The jitted ``(rng_keys, inputs, hyper, obs) -> (samples, stats)`` for a structure.

    ``static_key`` identifies the model structure (see ``ScalingModel.static_key``);
    runners are cached on it and the sampler settings, so a refit never re-traces. The
    progress callback is always compiled in (it does nothing without an active bar), so
    fits with and without a bar share one program and one persistent-cache entry.

    Args:
        chain_method: ``parallel``: jobs (one per chain and dataset) spread over
            ``devices`` with ``pmap``, the jobs that share a device run one after
            another; ``vectorized``: all jobs vmapped on one device.
        batched: leading axis of every argument is the dataset; otherwise one dataset
            and a single key.
        devices: the host devices of ``parallel``.
    """
    import jax
    import jax.numpy as jnp

    devices = tuple(devices or ())
    key = (
        static_key,
        chains,
        warmup,
        draws,
        dense_mass,
        target_accept,
        max_tree_depth,
        chain_method,
        batched,
        tuple(d.id for d in devices),
    )
    runner = _RUNNERS.get(key)
    if runner is not None:
        return runner
    chain = partial(
        _one_chain,
        model,
        warmup,
        draws,
        dense_mass,
        target_accept,
        max_tree_depth,
        _progress_every(warmup + draws),
    )

    def run(rng_keys, inputs, hyper, obs):
        data = (inputs, hyper, obs)
        if not batched:
            rng_keys, data = rng_keys[None], jax.tree.map(lambda a: a[None], data)
        n_sets = rng_keys.shape[0]
        jobs = n_sets * chains
        keys = jax.vmap(lambda k: jax.random.split(k, chains))(rng_keys).reshape(jobs, -1)
        which = jnp.repeat(jnp.arange(n_sets), chains)

        def job(key, index):
            return chain(key, *jax.tree.map(lambda a: a[index], data))

        if chain_method == "parallel":
            n_dev = min(len(devices), jobs)
            per = math.ceil(jobs / n_dev)
            # pad with copies of the first jobs so that every device gets as many
            pad = n_dev * per - jobs
            keys = jnp.concatenate([keys, keys[:pad]]).reshape(n_dev, per, -1)
            which = jnp.concatenate([which, which[:pad]]).reshape(n_dev, per)

            def device_jobs(keys, which):
                # one after another, not vmapped: vmapped NUTS runs its while loops in
                # lock-step (every lane waits for the longest trajectory) and compiles
                # ~2.5x slower; on a CPU core the lanes would not run faster anyway.
                if per == 1:
                    return jax.tree.map(lambda a: a[None], job(keys[0], which[0]))
                return jax.lax.map(lambda a: job(*a), (keys, which))

            out = jax.pmap(device_jobs, devices=devices[:n_dev])(keys, which)
            out = jax.tree.map(lambda a: a.reshape(n_dev * per, *a.shape[2:])[:jobs], out)
        elif jobs == 1:
            out = jax.tree.map(lambda a: a[None], job(keys[0], which[0]))
        else:
            out = jax.vmap(job)(keys, which)
        out = jax.tree.map(lambda a: a.reshape(n_sets, chains, *a.shape[1:]), out)
        return out if batched else jax.tree.map(lambda a: a[0], out)

    runner = jax.jit(run)
    _RUNNERS[key] = runner
    return runner


def _as_numpy(tree):
    import jax

    return jax.tree.map(lambda a: np.asarray(a), tree)


def _key_data(seed) -> np.ndarray:
    """A threefry key as uint32 data, built without a JAX dispatch (no extra compile)."""
    if isinstance(seed, int | np.integer):
        seed = int(seed) & 0xFFFFFFFFFFFFFFFF  # as jax.random.PRNGKey does with x64 on
        return np.array([seed >> 32, seed & 0xFFFFFFFF], np.uint32)
    import jax

    if jax.dtypes.issubdtype(getattr(seed, "dtype", None), jax.dtypes.prng_key):
        seed = jax.random.key_data(seed)
    return np.asarray(seed, np.uint32)


def run_chains(
    model,
    static_key,
    rng_key,
    inputs,
    hyper,
    obs,
    *,
    chains,
    warmup,
    draws,
    dense_mass=True,
    target_accept=0.9,
    max_tree_depth=10,
    chain_method=None,
    device=None,
    progress=False,
):
    """Run NUTS chains for one dataset; returns numpy ``(chains, draws, ...)`` arrays.

    ``rng_key`` is a JAX PRNG key or an integer seed.
    """
    settings = {
        "chains": chains,
        "warmup": warmup,
        "draws": draws,
        "dense_mass": dense_mass,
        "target_accept": target_accept,
        "max_tree_depth": max_tree_depth,
    }
    return _run(
        model,
        static_key,
        _key_data(rng_key),
        (inputs, hyper, obs),
        batched=False,
        chain_method=chain_method,
        device=device,
        progress=progress,
        settings=settings,
    )


def run_many(
    model,
    static_key,
    rng_keys,
    inputs,
    hyper,
    obs,
    *,
    chains,
    warmup,
    draws,
    dense_mass=True,
    target_accept=0.9,
    max_tree_depth=10,
    chain_method=None,
    device=None,
):
    """NUTS for a batch of datasets at once: leading axis of every argument is the batch.

    ``rng_keys`` is ``(batch, 2)`` key data (or integer seeds, one per dataset);
    ``hyper`` is batched too (data-dependent default priors differ per dataset).

    Returns numpy arrays shaped ``(batch, chains, draws, ...)``.
    """
    settings = {
        "chains": chains,
        "warmup": warmup,
        "draws": draws,
        "dense_mass": dense_mass,
        "target_accept": target_accept,
        "max_tree_depth": max_tree_depth,
    }
    return _run(
        model,
        static_key,
        np.stack([_key_data(k) for k in rng_keys]),
        (inputs, hyper, obs),
        batched=True,
        chain_method=chain_method,
        device=device,
        progress=False,
        settings=settings,
    )


def _run(model, static_key, keys, data, *, batched, chain_method, device, progress, settings):
    """The compiled runner for these settings, called on ``keys`` and ``data``; numpy out."""
    import jax

    if chain_method is None:
        chain_method = _default_chain_method(device)
    runner = compiled_runner(
        model,
        static_key,
        chain_method=chain_method,
        batched=batched,
        devices=_host_devices(chain_method),
        **settings,
    )
    total = settings["warmup"] + settings["draws"]
    with (
        jax.default_device(device) if device is not None else _null(),
        _Progress(total, "NUTS") if progress else _null(),
    ):
        samples, stats = runner(keys, *data)
        return _as_numpy(samples), _as_numpy(stats)


def _host_devices(chain_method: str) -> tuple:
    if chain_method != "parallel":
        return ()
    import jax

    return tuple(jax.devices("cpu"))


def _default_chain_method(device) -> str:
    """``parallel`` on a CPU, ``vectorized`` elsewhere (GPU: one device, many lanes)."""
    import jax

    forced = os.environ.get("BAYESCALE_CHAIN_METHOD")
    if forced:
        if forced not in ("parallel", "vectorized"):
            raise ValueError(
                f"BAYESCALE_CHAIN_METHOD must be 'parallel' or 'vectorized' but got {forced!r}"
            )
        return forced
    platform = getattr(device, "platform", jax.default_backend())
    # On CPU, pmap over host devices (jobs sequential within a device) traces ~6x and
    # compiles ~2x faster than vmapped chains (vmap of NUTS's while loops), runs chains
    # independently rather than in lock-step (~2.5x less CPU time for 8 datasets x 4
    # chains), and uses every core where one vmapped program uses one.
    return "parallel" if platform == "cpu" else "vectorized"


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
