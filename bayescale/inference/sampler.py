"""Compiled NUTS programs per model structure, exported to disk so a new process skips tracing.

numpyro's :class:`~numpyro.infer.MCMC` re-traces its chain function on every ``run``;
for scaling-law posteriors (a handful of parameters, a few hundred runs) tracing and
compiling dominate the wall time. Here a fit is three jitted programs whose arguments are
the data -- ``init`` (starting points, adaptation state, draw buffers), ``advance`` (NUTS
iterations ``i0 .. i1`` for every chain, writing draws into fixed buffers) and ``finish``
(constrained values and deterministic sites) -- so:

* a refit on new data of the same padded shape reuses the compiled programs: no trace,
  no compile, only sampling;
* each program is exported (:mod:`jax.export`) and its serialized StableHLO stored next to
  JAX's persistent compilation cache: a new process loads it instead of tracing numpyro's
  NUTS (~1.5 s) and lowering it (~0.8 s), and JAX's cache then skips the XLA compile;
* each program compiles (or loads from JAX's cache) in its own thread as soon as it is
  lowered; ``advance``, the longest compile, is lowered first from ``init``'s output
  shapes (traced without the potential), so on a cold cache ``init`` is traced while
  ``advance`` compiles (245-point Student-t posterior, 2 cores: ~1.6 s and ~3 s of XLA);
  ``init`` and ``finish``, which run once per fit, compile without LLVM optimisation;
* the progress bar is fed between calls of ``advance`` (20 calls per run instead of one),
  not by a host callback inside the program, which could not be exported; a large table's
  chains on host devices advance in calls of bounded rows x iterations, since XLA holds
  memory for the iterations of a call until it returns (:mod:`bayescale._chunks`);
* :func:`run_many` runs the same programs over many datasets at once (replicates, arms, SBC);
* a warm start (chains resuming where a previous run ended, with its metric) has an
  ``init`` of its own but runs the previous run's ``advance`` and ``finish``: it enters
  that run's warm-up schedule its ``warmup`` iterations before the end, inside numpyro's
  first (step-size-only) adaptation window, so the metric is kept and nothing else
  compiles (a first warm refit: ~2 s of XLA on a cold cache instead of ~9 s).

The kernel is numpyro's NUTS (``numpyro.infer.hmc.hmc``) with windowed adaptation of the
step size and a dense mass matrix. Every chain of every dataset is one *job*; jobs run

* ``parallel``: spread over host devices with ``shard_map`` (CPU: one thread per device);
  the jobs that share a device run one after another (no lock-step, no vmap to compile);
* ``vectorized``: all vmapped on one device (GPU: thousands of small posteriors at once).

Only ``(draws, ...)`` buffers are kept per chain: warm-up states are written to slot 0
and overwritten by the first draw, so memory does not grow with ``warmup``.

Exported programs are keyed on everything they depend on: the model structure, the
sampler settings, the argument shapes, the device layout, the versions of jax, jaxlib and
numpyro, and a digest of bayescale's own source, so an edited or upgraded package never
loads a stale program. Custom laws (user functions) are never written to disk.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from .._chunks import advance_calls
from .._jax import numpyro_version

__all__ = ["run_chains", "run_many"]


_LOG = logging.getLogger(__name__)
_PROGRAMS: dict[tuple, _Programs] = {}
_STATE_TREES: dict[tuple, object] = {}  # per-job NUTS state structure, per program key


@dataclass(frozen=True)
class _Settings:
    chains: int
    warmup: int
    draws: int
    dense_mass: bool
    target_accept: float
    max_tree_depth: int
    regularize: bool = True  # Stan's shrinkage of the windows' covariance (see run_chains)


@dataclass(frozen=True)
class _Layout:
    """How jobs map onto devices: ``parallel`` (shard_map) or ``vectorized`` (vmap)."""

    method: str
    n_sets: int
    jobs: int  # n_sets * chains
    devices: tuple  # parallel: the devices used (len n_dev)
    per: int  # jobs per device (parallel), padded

    @property
    def padded(self) -> int:
        return len(self.devices) * self.per if self.method == "parallel" else self.jobs

    def pad(self, a: np.ndarray) -> np.ndarray:
        """``(jobs, ...)`` per-job values padded as the jobs are (copies of the first ones)."""
        return np.concatenate([a, a[: self.padded - self.jobs]])

    def which(self, chains: int) -> np.ndarray:
        """Dataset index of each (padded) job."""
        return self.pad(np.repeat(np.arange(self.n_sets, dtype=np.int32), chains))

    def mesh(self):
        """The device mesh of the parallel layout (one axis, ``d``)."""
        from jax.sharding import Mesh

        return Mesh(np.array(self.devices), ("d",))

    def key(self) -> tuple:
        return (self.method, self.n_sets, self.jobs, tuple(d.id for d in self.devices), self.per)


def _layout(chain_method: str, n_sets: int, chains: int, devices: tuple) -> _Layout:
    jobs = n_sets * chains
    if chain_method == "parallel":
        n_dev = min(len(devices), jobs)
        return _Layout("parallel", n_sets, jobs, tuple(devices[:n_dev]), math.ceil(jobs / n_dev))
    return _Layout("vectorized", n_sets, jobs, (), jobs)


# ------------------------------------------------------------------ one job (one chain)
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


class _TreeDepths(tuple):
    """numpyro's ``(warm-up, draws)`` max tree depths, where the warm-up one may be traced.

    numpyro picks ``self[0]`` or ``self[1]`` by iteration, which takes a traced depth, and
    sizes its trajectory buffers by ``max()`` of the pair, which must stay a Python int:
    iterating yields the draws' depth alone, never below the warm-up one.
    """

    def __iter__(self):
        return iter((self[1],))


def _capped_until(warmup: int) -> int:
    """Iterations whose trees stop at ``FIRST_WINDOW_TREE_DEPTH``: numpyro's first window.

    In that window the metric is still the identity and trees would max out; from the
    first mass-matrix window on they may grow to ``WARMUP_TREE_DEPTH``. A schedule of one
    window (fewer than 20 iterations) never adapts the metric and stays capped.

    Example:
        >>> _capped_until(1000), _capped_until(100), _capped_until(10)
        (75, 15, 10)
    """
    from numpyro.infer.hmc_util import build_adaptation_schedule

    windows = build_adaptation_schedule(warmup)
    return windows[0].end + 1 if len(windows) > 1 else warmup


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


#: XLA options of the programs that run once per fit (``init``, ``finish``): without
#: LLVM's optimisations they compile faster, and their run time stays negligible.
_LIGHT_OPTIONS = {"xla_backend_optimization_level": 0}
#: Deepest NUTS tree in the first warm-up window, where the metric is still the identity:
#: trees there max out (1023 steps) and made those 75 iterations cost more than all 1000
#: draws; 2^6 - 1 leapfrog steps halved the cost of a whole fit.
FIRST_WINDOW_TREE_DEPTH = 6
#: Deepest NUTS tree in the rest of warm-up (the draws use ``max_tree_depth``). Capped at 6
#: there too, a chain whose metric came out of a window badly scaled could not move far
#: enough to estimate the next one: it ran its draws at a tenth of its siblings' step size
#: with ~300 leapfrog steps each (2 of 64 Chinchilla bootstrap fits, seed 0), and every
#: lane of a vmapped GPU batch waits for such a chain. 2^8 - 1 steps leave room to repair
#: the metric; uncapped (10), a GPU batch's warm-up waits for the deepest lane's trees.
#: Measured (bench/gpu.py, H100, 1024 fits): 102 s at 6, 52 s at 10, 40 s at 8.
WARMUP_TREE_DEPTH = 8
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


# ------------------------------------------------------------------ jobs over devices
def _over_jobs(fn, layout: _Layout, n_job_args: int, batched: bool):
    """``fn(*job_args, data)`` for one job -> the same over all (padded) jobs.

    The first ``n_job_args`` arguments (and ``which``, the dataset of each job, which comes
    last among them) have a leading job axis; the rest (``i0``, ``i1``, the data) are
    shared. A job of a batch reads its own dataset: ``data[which]``.
    """
    import jax
    from jax import lax

    def one(*args):
        job_args, which, shared = args[: n_job_args - 1], args[n_job_args - 1], args[n_job_args:]
        data = shared[-1]
        if batched:
            data = jax.tree.map(lambda a: a[which], data)
        return fn(*job_args, *shared[:-1], data)  # fn(*job_args, i0, i1, data)

    if layout.method == "vectorized":
        return jax.vmap(one, in_axes=(0,) * n_job_args + (None,) * 3)

    from jax.sharding import PartitionSpec as P

    def device_jobs(*args):
        job_args, shared = args[:n_job_args], args[n_job_args:]
        # one after another, not vmapped: vmapped NUTS runs its while loops in lock-step
        # (every lane waits for the longest trajectory) and compiles ~2.5x slower; on a
        # CPU core the lanes would not run faster anyway.
        if layout.per == 1:
            out = one(*jax.tree.map(lambda a: a[0], job_args), *shared)
            return jax.tree.map(lambda a: a[None], out)
        return lax.map(lambda ja: one(*ja, *shared), job_args)

    return jax.shard_map(
        device_jobs,
        mesh=layout.mesh(),
        in_specs=(P("d"),) * n_job_args + (P(),) * 3,
        out_specs=P("d"),
        # numpyro's while loops mix per-device and replicated values in their carries,
        # which the varying-axes type check rejects; every job is independent anyway
        check_vma=False,
    )


@dataclass
class _Programs:
    init: _Program  # (rng_keys, None, which, zero, zero, data) -> (leaves, buffers)
    init_warm: _Program  # (rng_keys, start, which, first, zero, data) -> the same
    advance: _Program  # (leaves, buffers, which, i0, i1, data) -> (leaves, buffers)
    finish: _Program  # (z, leaves, which, zero, zero, data) -> (constrained draws, end)
    layout: _Layout
    #: ``init``'s output ``(leaves, buffers)`` shapes for its argument shapes, traced
    #: without the potential (no XLA program: it only shapes advance's arguments)
    init_shapes: Callable
    init_avals: tuple = ()

    def starter(self, warm: bool) -> _Program:
        """The init program of a cold or a warm start (they share advance and finish)."""
        return self.init_warm if warm else self.init


def _programs(
    model, static_key, s: _Settings, layout: _Layout, batched, data, persist, platform: str
):
    """The three programs for this structure, settings, layout and argument shapes.

    ``platform`` is where they run (``cpu`` or the accelerator's, e.g. ``gpu``): a GPU
    machine also fits on its CPU (``device="cpu"``), and a program exported for one
    platform cannot run on another.
    """
    import jax

    shapes = jax.tree.map(lambda a: (np.shape(a), np.result_type(a).str), data)
    key = (
        platform,
        static_key,
        s,
        layout.key(),
        batched,
        str(jax.tree.structure(data)),
        str(shapes),
    )
    found = _PROGRAMS.get(key)
    if found is not None:
        return found
    over = partial(_over_jobs, layout=layout, batched=batched)
    chains = s.chains

    def init(rng_keys, start, which, first, _i1, data, shapes_only=False):
        keys = jax.vmap(lambda k: jax.random.split(k, chains))(rng_keys).reshape(-1, 2)
        keys = jax.numpy.concatenate([keys, keys[: layout.padded - layout.jobs]])

        def job(k, start, first, _i1, data):
            state, buffers = _job_init(model, s, k, start, first, data, shapes_only)
            _STATE_TREES[key] = jax.tree.structure(state)
            return jax.tree.leaves(state), buffers

        return over(job, n_job_args=3)(keys, start, which, first, _i1, data)

    def state_tree():
        if key not in _STATE_TREES:  # only when init came from disk and advance did not
            progs.init_shapes(progs.init_avals)
        return _STATE_TREES[key]

    def advance(leaves, buffers, which, i0, i1, data):
        tree = state_tree()
        job = partial(_job_advance, model, s, tree)
        return over(job, n_job_args=3)(leaves, buffers, which, i0, i1, data)

    def finish(z, leaves, which, _i0, _i1, data):
        zero_key = jax.numpy.zeros(2, jax.numpy.uint32)
        tree = state_tree()

        def job(z, leaves, _a, _b, data):
            end = _end_state(jax.tree.unflatten(tree, leaves))
            return _job_finish(model, zero_key, z, data), end

        return over(job, n_job_args=3)(z, leaves, which, _i0, _i1, data)

    shard = _shardings(layout)
    progs = _Programs(
        _Program("init", init, key, shard, (False, True, True), persist, light=True),
        _Program("init_warm", init, key, shard, (False, True, True), persist, light=True),
        _Program("advance", advance, key, shard, (True, True, True), persist),
        _Program("finish", finish, key, shard, (True, True, True), persist, light=True),
        layout,
        init_shapes=lambda avals: jax.eval_shape(partial(init, shapes_only=True), *avals),
    )
    _PROGRAMS[key] = progs
    return progs


def _shardings(layout: _Layout):
    """``(sharded, replicated)`` NamedShardings of the parallel layout, else None."""
    if layout.method != "parallel":
        return None
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = layout.mesh()
    return NamedSharding(mesh, P("d")), NamedSharding(mesh, P())


class _Program:
    """A jitted program, loaded from / exported to the on-disk program store when allowed.

    :meth:`lower` gets the program ready for arguments shaped like ``avals`` (loading the
    exported program, or tracing and exporting it) and :meth:`compile` compiles it (or
    loads it from JAX's persistent cache); :func:`_prepare` compiles the three programs
    of a run in parallel threads (XLA compiles outside the GIL).
    """

    def __init__(self, name, fn, key, shard, job_axes, persist, light=False):
        import jax

        self.name = name
        self.key = key
        self.persist = persist
        # the platform to export for: jax.export's default is the default backend, the
        # GPU on a GPU machine, even for a program that runs on its CPU
        self.platforms = ("cpu",) if key[0] == "cpu" else None
        self.options = dict(_LIGHT_OPTIONS) if light else None
        if shard is None:
            self.shardings = {}
        else:
            sharded, replicated = shard
            ins = tuple(sharded if j else replicated for j in job_axes)
            self.shardings = {
                "in_shardings": (*ins, replicated, replicated, replicated),
                "out_shardings": sharded,
            }
        self.jitted = jax.jit(fn, **self.shardings)
        self.lowered = None
        self.compiled: Callable | None = None

    def __call__(self, *args):
        return self.compiled(*args)

    def lower(self, avals):
        """Load or export the program and lower it for ``avals``; returns the output avals."""
        import jax

        exported = self._load_or_export(avals)
        fn = self.jitted if exported is None else jax.jit(exported.call, **self.shardings)
        self.lowered = fn.lower(*avals)
        return self.lowered.out_info

    def compile(self) -> None:
        try:
            self.compiled = self.lowered.compile(self.options)
        except Exception as exc:  # an XLA without the option: compile as usual
            if self.options is None:
                raise
            _LOG.debug("%s compiled without %s (%s)", self.name, self.options, exc)
            self.compiled = self.lowered.compile()
        self.lowered = None

    def stored(self) -> bool:
        """Whether this program is in the on-disk store (loading it traces nothing)."""
        path = self._path()
        return path is not None and path.exists()

    def _path(self) -> Path | None:
        return _program_path(self.name, self.key) if self.persist else None

    def _load_or_export(self, avals):
        import jax

        path = self._path()
        if path is None:
            return None
        if path.exists():
            try:
                return jax.export.deserialize(bytearray(path.read_bytes()))
            except Exception as exc:  # unreadable or from another jax: export it again
                _LOG.debug("stored %s program %s not loaded: %s", self.name, path, exc)
        try:
            exported = jax.export.export(self.jitted, platforms=self.platforms)(*avals)
            blob = exported.serialize()
        except Exception as exc:  # not exportable here: the plain jit samples the same
            _LOG.debug("%s program not exported (%s); it stays in memory", self.name, exc)
            return None
        _write_atomic(path, blob)
        return exported


def _init_avals(keys, start, which, data) -> tuple:
    """Shapes and dtypes of ``init``'s arguments (``i0``/``i1`` slots: int32 scalars)."""
    import jax

    def aval(a):
        return jax.ShapeDtypeStruct(np.shape(a), np.result_type(a))

    zero = aval(np.int32(0))
    return (
        aval(keys),
        jax.tree.map(aval, start),
        aval(which),
        zero,
        zero,
        jax.tree.map(aval, data),
    )


def _prepare(progs: _Programs, keys, start, which, data) -> None:
    """Lower the programs not compiled yet, ``advance`` first; each compiles in a thread
    of its own from the moment it is lowered."""
    import jax

    def plain(info):
        return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), info)

    init_avals = _init_avals(keys, start, which, data)
    _, _, which_aval, zero, _, data_avals = init_avals
    if not progs.init_avals:
        progs.init_avals = init_avals
    starter = progs.starter(start is not None)
    pending = [p for p in (starter, progs.advance, progs.finish) if p.compiled is None]
    if not all(p.stored() for p in pending):
        # a program will be traced: numpyro (imported lazily, see bayescale._jax) must be
        # loaded before the trace starts, or a module-level jax.numpy constant of its
        # would be created inside the trace and kept as a leaked tracer
        import numpyro.infer  # noqa: F401
    from concurrent.futures import ThreadPoolExecutor

    # advance, the longest compile (~3 s of XLA on a cold cache), is lowered first, from
    # init's output shapes traced without the potential (~0.1 s), and each program
    # compiles in its own thread as soon as it is lowered: XLA compiles outside the GIL,
    # so init is traced while advance compiles; before, advance waited for init's trace.
    # A stored init gives those shapes without any trace (a new process: nothing traced).
    shaped = [p for p in (progs.advance, progs.finish) if p.compiled is None]
    with ThreadPoolExecutor(3) as pool:
        compiling = []

        def lower(program, avals):
            out = program.lower(avals)
            compiling.append(pool.submit(program.compile))
            return out

        shapes = None
        if starter.compiled is None and (not shaped or starter.stored()):
            shapes = lower(starter, init_avals)
        if shaped:
            leaves, buffers = plain(shapes or progs.init_shapes(init_avals))
            if progs.advance.compiled is None:
                lower(progs.advance, (leaves, buffers, which_aval, zero, zero, data_avals))
            if starter.compiled is None and shapes is None:
                lower(starter, init_avals)
            if progs.finish.compiled is None:
                lower(progs.finish, (buffers[0], leaves, which_aval, zero, zero, data_avals))
        for future in compiling:
            future.result()


def _program_path(name: str, key: tuple) -> Path | None:
    """Where the exported program for ``key`` lives, or None when not stored on disk."""
    from .._jax import cache_dir

    directory = cache_dir()
    if directory is None:
        return None
    try:
        import flatbuffers  # noqa: F401  (jax.export's serializer needs it)
    except ImportError:
        return None
    import jax
    import jaxlib

    x64 = bool(jax.config.read("jax_enable_x64"))
    platform = jax.default_backend()
    text = repr(
        (
            name,
            key,
            x64,
            platform,
            jax.__version__,
            jaxlib.__version__,
            numpyro_version(),
            _source_digest(),
        )
    )
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    return directory / "bayescale-programs" / f"{name}-{digest}.jaxexport"


_DIGEST: list[str] = []


def _source_digest() -> str:
    """sha256 of bayescale's own source files: an edited package never loads old programs."""
    if not _DIGEST:
        h = hashlib.sha256()
        root = Path(__file__).resolve().parents[1]  # the whole package, every subpackage
        for path in sorted(root.rglob("*.py")):
            h.update(path.relative_to(root).as_posix().encode())
            h.update(path.read_bytes())
        _DIGEST.append(h.hexdigest())
    return _DIGEST[0]


def _write_atomic(path: Path, blob: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs the next process a trace


# ------------------------------------------------------------------ running
class _Progress:
    """A tqdm bar advanced between the calls of ``advance``."""

    def __init__(self, total: int, desc: str):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=desc, leave=False)
        self.total = total

    def update_to(self, value: int) -> None:
        self.bar.update(max(0, min(value, self.total) - self.bar.n))

    def close(self) -> None:
        self.bar.close()


def _bounds(first: int, total: int, calls: int) -> list[tuple[int, int]]:
    """Iterations ``first .. total`` in ``calls`` nearly equal ``(i0, i1)`` pieces."""
    edges = np.unique(np.linspace(first, total, calls + 1).round().astype(int))
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


#: Warm-up schedule of a warm start whose ``start`` does not name the schedule it came
#: from (a default fit's). A warm start reuses the programs of that schedule: it enters
#: it ``warmup`` iterations before its end, with its own metric.
SHARED_WARMUP = 1000
#: Length of numpyro's first adaptation window (Stan's 75-iteration initial buffer) in
#: every schedule of 150 iterations or more.
FIRST_WINDOW = 75


def _schedule(warmup: int, start) -> int:
    """The warm-up schedule length the programs of a run are compiled for.

    A cold start runs all ``warmup`` iterations of its own schedule. A warm start runs
    the last ``warmup`` iterations of the schedule its ``start`` came from (so a refit
    compiles no new ``advance`` or ``finish``: only its ``init``). numpyro's adaptation
    moves to its first mass-matrix window only when an iteration hits the end of its
    first (step-size-only) window, which a warm start, beginning later, never does: its
    metric is kept and its step size is adapted by dual averaging to the end of warm-up.
    A warm-up too long to begin after that first window gets a schedule of its own.
    """
    if start is None:
        return warmup
    length = int(np.max(start["schedule"])) if "schedule" in start else SHARED_WARMUP
    return max(length, warmup + FIRST_WINDOW)


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
    persist=True,
    start=None,
    regularize_mass_matrix=True,
):
    """Run NUTS chains for one dataset.

    Returns numpy ``(samples, stats, end)``: samples and stats shaped ``(chains, draws,
    ...)``, and ``end``, where each chain ended (``z``: flat unconstrained point) with the
    metric it used (``inverse_mass_matrix``, ``step_size``) and the length of the warm-up
    schedule it ran (``schedule``). Passing a previous ``end`` as ``start`` warm-starts the
    chains there with that metric: its ``warmup`` iterations adapt only the step size,
    and they reuse the compiled programs of that schedule (see :func:`_schedule`).

    ``rng_key`` is a JAX PRNG key or an integer seed. ``persist=False`` keeps the
    programs out of the on-disk store (custom laws: user code bayescale cannot digest).
    ``regularize_mass_matrix=False`` uses each window's sample covariance as it is,
    without Stan's shrinkage towards ``1e-3 * I``, which swamps the covariance of a
    posterior narrower than ~0.03 per unconstrained unit (a table of many runs).
    """
    return _run(
        model,
        static_key,
        _key_data(rng_key)[None],
        (inputs, hyper, obs),
        batched=False,
        chain_method=chain_method,
        device=device,
        progress=progress,
        persist=persist,
        start=start,
        sampler=(chains, warmup, draws, dense_mass, target_accept, max_tree_depth),
        regularize=regularize_mass_matrix,
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
    persist=True,
    start=None,
):
    """NUTS for a batch of datasets at once: leading axis of every argument is the batch.

    ``rng_keys`` is ``(batch, 2)`` key data (or integer seeds, one per dataset);
    ``hyper`` is batched too (data-dependent default priors differ per dataset).
    ``start`` warm-starts every chain as in :func:`run_chains`, its arrays shaped
    ``(batch, chains, ...)``.

    Returns numpy ``(samples, stats, end)``, each array shaped ``(batch, chains, ...)``.
    """
    if start is not None:  # (batch, chains, ...) -> one row per job
        start = {k: np.reshape(v, (-1, *np.shape(v)[2:])) for k, v in start.items()}
    return _run(
        model,
        static_key,
        np.stack([_key_data(k) for k in rng_keys]),
        (inputs, hyper, obs),
        batched=True,
        chain_method=chain_method,
        device=device,
        progress=False,
        persist=persist,
        start=start,
        sampler=(chains, warmup, draws, dense_mass, target_accept, max_tree_depth),
    )


def _run(
    model,
    static_key,
    keys,
    data,
    *,
    batched,
    chain_method,
    device,
    progress,
    persist,
    start,
    sampler,
    regularize=True,
):
    """The programs for these sampler settings, run on ``keys`` and ``data``; numpy out.

    ``sampler`` is ``(chains, warmup, draws, dense_mass, target_accept, max_tree_depth)``.
    ``warmup`` iterations run: all of the schedule from a cold start, the last ``warmup``
    of the schedule ``start`` came from for a warm one (:func:`_schedule`)."""
    import jax

    if chain_method is None:
        chain_method = _default_chain_method(device)
    chains, warmup, draws, dense_mass, target_accept, max_tree_depth = sampler
    s = _Settings(
        chains,
        _schedule(warmup, start),
        draws,
        bool(dense_mass),
        float(target_accept),
        int(max_tree_depth),
        bool(regularize),
    )
    layout = _layout(chain_method, keys.shape[0], s.chains, _host_devices(chain_method))
    which = layout.which(s.chains)
    total = s.warmup + s.draws
    first = s.warmup - warmup
    platform = "cpu" if chain_method == "parallel" else _platform(device)
    with jax.default_device(device) if device is not None else _null():
        progs = _programs(model, static_key, s, layout, batched, data, persist, platform)
        if start is not None:
            start = {k: layout.pad(np.asarray(v)) for k, v in start.items() if k != "schedule"}
        starter = progs.starter(start is not None)
        if any(p.compiled is None for p in (starter, progs.advance, progs.finish)):
            _prepare(progs, keys, start, which, data)
        zero = np.int32(0)
        leaves, buffers = starter(keys, start, which, np.int32(first), zero, data)
        bar = _Progress(warmup + s.draws, "NUTS") if progress else None
        try:
            # calls of a bounded number of rows x iterations: XLA on host devices holds
            # memory for the iterations a call ran until it returns (bayescale._chunks)
            calls = advance_calls(
                total - first,
                rows=_rows(data, keys.shape[0]),
                parallel=layout.method == "parallel",
                progress=bar is not None,
            )
            for i0, i1 in _bounds(first, total, calls):
                leaves, buffers = progs.advance(
                    leaves, buffers, which, np.int32(i0), np.int32(i1), data
                )
                if bar is not None:
                    jax.block_until_ready(buffers)
                    bar.update_to(i1 - first)
        finally:
            if bar is not None:
                bar.close()
        z, diverging, energy, n_steps = buffers
        constrained, end = progs.finish(z, leaves, which, zero, zero, data)
        stats = {"diverging": diverging, "energy": energy, "n_steps": n_steps}

        def host(a):
            a = np.asarray(a)[: layout.jobs]
            a = a.reshape(layout.n_sets, s.chains, *a.shape[1:])
            return a if batched else a[0]

        end = jax.tree.map(host, end)
        # the schedule these chains ran, so that a warm start from them reuses its programs
        end["schedule"] = np.full(np.shape(end["step_size"]), s.warmup, np.int64)
        return jax.tree.map(host, constrained), jax.tree.map(host, stats), end


def _rows(data, n_sets: int) -> int:
    """Rows of one dataset: its largest data array's size (batched data: per dataset)."""
    import jax

    sizes = [int(np.size(a)) for a in jax.tree.leaves(data)]
    return max(sizes, default=1) // max(n_sets, 1)


def _platform(device) -> str:
    """The platform ``device`` belongs to (``cpu``, ``gpu``, ...); None: JAX's default."""
    import jax

    return device.platform if device is not None else jax.default_backend()


def _host_devices(chain_method: str) -> tuple:
    if chain_method != "parallel":
        return ()
    import jax

    return tuple(jax.devices("cpu"))


def _default_chain_method(device) -> str:
    """``parallel`` on a CPU, ``vectorized`` elsewhere (GPU: one device, many lanes)."""
    forced = os.environ.get("BAYESCALE_CHAIN_METHOD")
    if forced:
        if forced not in ("parallel", "vectorized"):
            raise ValueError(
                f"BAYESCALE_CHAIN_METHOD must be 'parallel' or 'vectorized' but got {forced!r}"
            )
        return forced
    platform = _platform(device)
    # On CPU, sharding jobs over host devices (sequential within a device; measured with
    # pmap, the same layout before shard_map replaced it for jax.export) traced ~6x and
    # compiled ~2x faster than vmapped chains (vmap of NUTS's while loops), runs chains
    # independently rather than in lock-step (~2.5x less CPU time for 8 datasets x 4
    # chains), and uses every core where one vmapped program uses one.
    return "parallel" if platform == "cpu" else "vectorized"


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
