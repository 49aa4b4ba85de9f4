"""The three jitted NUTS programs of a run (``init``, ``advance``, ``finish``) over its jobs.

:func:`_programs` builds them per model structure, settings, device layout and argument
shapes (kept in memory for the process); :func:`_prepare` lowers them, ``advance``
first, and compiles each as soon as it is lowered; :class:`_Program` loads each one from,
or exports it to, the on-disk store (:mod:`bayescale.inference._program_store`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ._nuts import _end_state, _job_advance, _job_finish, _job_init, _Settings
from ._program_store import _program_path, _write_atomic

_LOG = logging.getLogger(__name__)
_PROGRAMS: dict[tuple, _Programs] = {}
_STATE_TREES: dict[tuple, object] = {}  # per-job NUTS state structure, per program key


#: XLA options of the programs that run once per fit (``init``, ``finish``): without
#: LLVM's optimisations they compile faster, and their run time stays negligible.
_LIGHT_OPTIONS = {"xla_backend_optimization_level": 0}


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
    of a run one after the other, in the calling thread.
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
    """Lower the programs not compiled yet, ``advance`` first; each compiles as soon as
    it is lowered."""
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

    # Each program compiles (or loads from JAX's persistent cache) in the calling thread,
    # never a worker: XLA's deserialize_executable of a cache hit in a worker thread can
    # crash the process (SIGSEGV, seen in CI), and compiling in threads saves nothing
    # measurable (a cold 4-chain fit, 2 cores: 6.2-8.5 s either way). advance is lowered
    # from init's output shapes traced without the potential (~0.1 s); a stored init
    # gives those shapes without any trace (a new process: nothing traced).
    def lower(program, avals):
        out = program.lower(avals)
        program.compile()
        return out

    shaped = [p for p in (progs.advance, progs.finish) if p.compiled is None]
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
