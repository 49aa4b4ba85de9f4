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
* each program compiles (or loads from JAX's cache) in the calling thread as soon as it
  is lowered (a cache hit deserialized in a worker thread can crash XLA); ``advance`` is
  lowered first from ``init``'s output shapes (traced without the potential);
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

import os

import numpy as np

from .._chunks import advance_calls
from ._nuts import _Settings
from ._programs import _layout, _prepare, _programs
from ._warmup import _schedule

__all__ = ["run_chains", "run_many"]


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
