"""Fit many independent datasets of one law in a single compiled NUTS call.

Simulation replicates, sensitivity refits, arms or eval sets fitted one by one pay the
per-fit overhead (dispatch, diagnostics) every time and, on a GPU, leave it idle.
:func:`fit_many` pads every dataset to one row count (a mask hides the padding), stacks
the per-dataset prior hyper-parameters (data-dependent default priors such as
``E ~ Uniform(0, min loss)`` differ per dataset) and runs every chain of every dataset in
one program (:func:`bayescale.inference.sampler.run_many`): on a CPU the chains are spread over the
host devices, on a GPU they are vmapped. Each dataset keeps its own reference scale, so
each :class:`~bayescale.posterior.Fit` is exactly what :func:`bayescale.fit` would give,
up to Monte Carlo error.

Example:
    >>> import bayescale as bs
    >>> ladders = [bs.simulate_ladder(seed=s) for s in range(8)]              # doctest: +SKIP
    >>> fits = bs.fit_many(ladders, "chinchilla", params="params",
    ...                    tokens="tokens", loss="loss")                      # doctest: +SKIP
    >>> [f.diagnostics.ok for f in fits]                                      # doctest: +SKIP
    [True, True, True, True, True, True, True, True]
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.runs import Runs, read_runs
from ..laws.base import Law
from ..laws.priors import Prior
from ..laws.specs import ModelSpec
from ..model.scaling import ScalingModel, build_model, pad_size
from ..posterior.core import Fit, FitWarning
from ..settings import FIELDS as SAMPLER_FIELDS
from ..settings import SamplerOptions, resolve_sampler
from .fitting import auto_scatter_growth, resolve_spec
from .sampling import (
    _warm_start,
    as_draws,
    default_target_accept,
    model_arguments,
    run_info,
)

__all__ = ["fit_many"]

#: Warm-up iterations of a fit that adapts from scratch, and of a warm-started one.
FULL_WARMUP = 1000
WARM_WARMUP = 200

_COLUMNS = ("params", "tokens", "compute", "loss", "group", "downstream", "sweep")


def fit_many(
    datasets: Sequence[Runs | pd.DataFrame | str | Path],
    law: str | Law | ModelSpec = "chinchilla",
    *,
    seed: int = 0,
    sampler: SamplerOptions | None = None,
    priors: Mapping[str, Prior | str | Mapping] | None = None,
    likelihood: str | None = None,
    pooling: str | None = None,
    scatter_growth: bool | None = None,
    flops_per_token: float = 6.0,
    warm_start: str | Fit | None = None,
    **columns: str,
) -> list[Fit]:
    """Fit the same law to many independent datasets in one compiled NUTS call.

    Every dataset gets its own posterior, default priors and reference scale, exactly
    as :func:`bayescale.fit` would give it; only the sampling is shared. Dataset ``i``
    is sampled with seed ``seed + i``.

    Args:
        datasets: a list of :class:`~bayescale.data.runs.Runs`, DataFrames or CSV paths.
            They must share the model's structure: the same number of groups (and of
            sweeps) and, with ``downstream=``, a downstream column each.
        law: as in :func:`bayescale.fit`.
        seed: seed of the first dataset; dataset ``i`` uses ``seed + i``.
        priors, likelihood, pooling: as in :func:`bayescale.fit` (the same for every
            dataset; data-dependent defaults are resolved per dataset).
        scatter_growth: as in :func:`bayescale.fit`; by default on when
            :func:`~bayescale.inference.fitting.auto_scatter_growth` turns it on for every
            dataset (one compiled model serves them all).
        sampler: a :class:`~bayescale.SamplerOptions` for every dataset: ``chains``,
            ``draws`` and ``warmup`` per dataset and chain (``warmup`` defaults to 1000,
            or to 200 for the datasets that are warm-started), ``device`` (on a CPU the
            chains of all datasets are spread over the host devices; on a GPU they are
            vectorized), ``target_accept`` and ``dense_mass``. ``progress`` and
            ``extend`` do not apply: the datasets sample in one call, never continued.
            Its options spelled as keywords (``chains=8``) still work, with a
            DeprecationWarning, for this release.
        flops_per_token: FLOPs per parameter and token when compute or tokens is derived.
        warm_start: ``None`` (every dataset adapts its own step size and mass matrix
            from scratch), a :class:`~bayescale.posterior.Fit` of the same model
            structure (every dataset's chains start where that fit's chains ended, with
            its mass matrix; warm-up adapts only the step size) or ``"first"``
            (``datasets[0]`` is fitted with a full warm-up of 1000 iterations, then all
            other datasets are warm-started from it). For datasets whose posteriors are
            close -- bootstrap resamples, leave-one-out or sensitivity refits -- a warm
            start halves the cost of each fit; the diagnostics still judge every fit,
            and for far-apart posteriors (simulation from the prior) fit without it.
        **columns: column names for tables (``params=``, ``tokens=``, ``compute=``,
            ``loss=``, ``group=``, ``downstream=``, ``sweep=``), the same for all.

    Returns:
        One :class:`~bayescale.posterior.Fit` per dataset, in order, each with its
        ``sampler_end`` (a ``warm_start`` for later fits). Fits whose diagnostics are
        not ok are reported in a single :class:`FitWarning`.

    Raises:
        ValueError: bad settings, a dataset that fails validation (the message names
            its index) or datasets of different structure.

    Example:
        >>> ladders = [bs.simulate_ladder(seed=s) for s in range(4)]             # doctest: +SKIP
        >>> fits = bs.fit_many(ladders, params="params", tokens="tokens", loss="loss")  # doctest: +SKIP
        >>> fits[0].summary().loc["alpha", "median"]                               # doctest: +SKIP
        0.34
        >>> runs = bs.load_chinchilla()                                          # doctest: +SKIP
        >>> full = bs.fit(runs, "chinchilla")                                    # doctest: +SKIP
        >>> rng = np.random.default_rng(0)                                       # doctest: +SKIP
        >>> boot = [runs.select(rng.integers(0, runs.n_runs, runs.n_runs))
        ...         for _ in range(64)]                                          # doctest: +SKIP
        >>> fits = bs.fit_many(boot, "chinchilla", warm_start=full)              # doctest: +SKIP
        >>> fits[0].info["warmup"], fits[0].info["warm_start"]                   # doctest: +SKIP
        (200, True)
    """
    pilot = isinstance(warm_start, str) and warm_start == "first"
    if not (warm_start is None or pilot or isinstance(warm_start, Fit)):
        raise ValueError(
            f"warm_start must be None, 'first' or a Fit but got {warm_start!r}"
            if isinstance(warm_start, str)
            else f"warm_start must be None, 'first' or a Fit but got {type(warm_start).__name__}"
        )
    legacy = {k: columns.pop(k) for k in list(columns) if k in SAMPLER_FIELDS}
    opts = resolve_sampler(sampler, legacy, "fit_many")
    chains, draws, device = opts.chains, opts.draws, opts.device
    target_accept, dense_mass, warmup = opts.target_accept, opts.dense_mass, opts.warmup
    if warmup is None:
        warmup = FULL_WARMUP if warm_start is None else WARM_WARMUP
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed must be an integer but got {seed!r}")
    unknown = sorted(set(columns) - set(_COLUMNS))
    if unknown:
        raise ValueError(
            f"fit_many got an unknown argument {unknown[0]!r}; column names are "
            f"{', '.join(_COLUMNS)}"
        )
    if isinstance(datasets, Runs | pd.DataFrame | str | Path) or not isinstance(datasets, Sequence):
        raise ValueError(
            "datasets must be a list of Runs, DataFrames or CSV paths but got "
            f"{type(datasets).__name__}; use bayescale.fit for a single dataset"
        )
    if len(datasets) == 0:
        raise ValueError("datasets must hold at least one dataset but is empty")

    spec = resolve_spec(law)
    all_runs = [_read(i, data, columns, flops_per_token) for i, data in enumerate(datasets)]
    if columns.get("downstream") is not None and not spec.downstream:
        spec = spec.with_(downstream=True)
    spec = spec.with_(priors=priors, likelihood=likelihood, pooling=pooling)
    if scatter_growth is None:
        scatter_growth = all(auto_scatter_growth(spec, runs) for runs in all_runs)
    models = []
    for i, runs in enumerate(all_runs):
        try:
            models.append(build_model(spec, runs, scatter_growth=scatter_growth))
        except ValueError as exc:
            raise ValueError(f"datasets[{i}]: {exc}") from None
    _check_structure(models)
    first = models[0]
    if target_accept is None:
        target_accept = default_target_accept(first)  # as fit() does

    start = None
    if isinstance(warm_start, Fit):
        start = _warm_start(warm_start, first, chains=chains, dense_mass=dense_mass)

    from .._jax import configure, device_name, select_device

    configure()
    from .sampler import run_many

    size = max(pad_size(runs.n_runs) for runs in all_runs)
    arguments = [model_arguments(m, r, size) for m, r in zip(models, all_runs, strict=True)]

    def sample(which: list[int], n_warmup: int, start):
        inputs, hyper, obs = (_stack([arguments[i][k] for i in which]) for k in range(3))
        if start is not None:  # the same start for every dataset: (batch, chains, ...)
            start = {k: np.broadcast_to(v, (len(which), *np.shape(v))) for k, v in start.items()}
        return run_many(
            first.model,
            first.static_key(),
            [int(seed) + i for i in which],
            inputs,
            hyper,
            obs,
            chains=chains,
            warmup=n_warmup,
            draws=draws,
            dense_mass=dense_mass,
            target_accept=target_accept,
            device=dev,
            persist=first.portable,
            start=start,
        )

    n = len(models)
    started = time.perf_counter()
    dev = select_device(device)
    if pilot:  # datasets[0] adapts fully; the others start where its chains ended
        parts = [sample([0], FULL_WARMUP, None)]
        if n > 1:
            end = {k: v[0] for k, v in parts[0][2].items()}
            parts.append(sample(list(range(1, n)), warmup, end))
        samples, stats, ends = (
            {k: np.concatenate([p[j][k] for p in parts]) for k in parts[0][j]} for j in range(3)
        )
        warmups = [FULL_WARMUP] + [warmup] * (n - 1)
        warmed = [False] + [True] * (n - 1)
    else:
        samples, stats, ends = sample(list(range(n)), warmup, start)
        warmups, warmed = [warmup] * n, [start is not None] * n
    seconds = round(time.perf_counter() - started, 3)

    how = "" if warm_start is None else f", warm_start={'first' if pilot else 'Fit'!r}"
    fits = []
    for i, (scaling_model, runs) in enumerate(zip(models, all_runs, strict=True)):
        info = run_info(
            runs,
            seed=int(seed) + i,
            chains=chains,
            draws=draws,
            warmup=warmups[i],
            target_accept=target_accept,
            dense_mass=dense_mass,
            device=device_name(dev),
            seconds=seconds,
        )
        info |= {
            "batch": {"index": i, "size": n},
            "command": f"bayescale.fit_many([... {n} datasets], law={spec.name!r}, "
            f"chains={chains}, draws={draws}, warmup={warmup}, seed={seed}{how}) [{i}]",
            "warm_start": warmed[i],
            "scatter_growth": bool(scaling_model.scatter_growth),
            "warn": False,  # one warning for the batch below, not one per fit
        }
        draws_i, stats_i = as_draws(
            {k: v[i] for k, v in samples.items()}, {k: v[i] for k, v in stats.items()}
        )
        fits.append(Fit(scaling_model, draws_i, stats_i, runs, info))
        fits[-1].sampler_end = {k: np.asarray(v[i]) for k, v in ends.items()}
        fits[-1].info["warn"] = True
    # R-hat and ESS of every fit (~14 ms each): numpy's sorts and FFTs release the GIL,
    # so a few threads share the work (measured on 2 cores: 1.24x with 2 threads, slower
    # with 4 -- the Python between the numpy calls holds the GIL)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
        verdicts = list(pool.map(lambda f: f.diagnostics.ok, fits))
    bad = [i for i, ok in enumerate(verdicts) if not ok]
    if bad:
        shown = ", ".join(str(i) for i in bad[:10]) + (", ..." if len(bad) > 10 else "")
        warnings.warn(
            f"fit diagnostics not ok for {len(bad)} of {len(fits)} datasets ({shown}); "
            f"first: {fits[bad[0]].diagnostics.verdict()}",
            FitWarning,
            stacklevel=2,
        )
    return fits


def _read(index: int, data, columns: Mapping[str, str], flops_per_token: float) -> Runs:
    if isinstance(data, Runs):
        return data
    if columns.get("loss") is None:
        raise ValueError("name the loss column (loss=...) for tables and CSV files")
    try:
        return read_runs(data, flops_per_token=flops_per_token, **columns)
    except ValueError as exc:
        raise ValueError(f"datasets[{index}]: {exc}") from None


def _check_structure(models: list[ScalingModel]) -> None:
    """All models must compile to one program: same law, groups, sweeps, prior families."""
    first = models[0]
    for i, other in enumerate(models[1:], start=1):
        if other.static_key() == first.static_key():
            continue
        for what, a, b in (
            ("groups", first.n_groups, other.n_groups),
            ("sweeps", first.n_sweeps, other.n_sweeps),
        ):
            if a != b:
                raise ValueError(
                    f"datasets[{i}] has {b} {what} but datasets[0] has {a}; fit_many needs "
                    "datasets of one structure (same law, number of groups and sweeps)"
                )
        names = sorted(set(first.priors) | set(other.priors))
        for name in names:
            p, q = first.priors.get(name), other.priors.get(name)
            if p is None or q is None or p.static_key() != q.static_key():
                raise ValueError(
                    f"datasets[{i}] has prior {name} ~ {q} but datasets[0] has {p}; "
                    "fit_many needs datasets of one structure (same prior families)"
                )
        raise ValueError(
            f"datasets[{i}] does not share the model structure of datasets[0] "
            "(law, groups, sweeps, priors); fit them with separate calls"
        )


def _stack(trees: list):
    """Stack a list of equally shaped pytrees (dicts of arrays) along a new first axis."""
    first = trees[0]
    if isinstance(first, Mapping):
        return {k: _stack([t[k] for t in trees]) for k in first}
    return np.stack([np.asarray(t) for t in trees])
