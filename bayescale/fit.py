"""Fit a scaling law by NUTS: ``fit(runs, law) -> Fit``.

Example:
    >>> import bayescale as bs
    >>> runs = bs.simulate_ladder("chinchilla", seed=1)            # doctest: +SKIP
    >>> result = bs.fit(runs, "chinchilla", draws=500, warmup=500)  # doctest: +SKIP
    >>> result.summary()                                             # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ._jax import configure, select_device
from .laws import Law, get_law, list_laws
from .model import ScalingModel, build_model, pad_size
from .posterior import Fit
from .priors import Prior
from .runs import Runs, read_runs
from .specs import ModelSpec, load_model

__all__ = ["fit", "resolve_spec", "sample"]


def resolve_spec(law: str | Law | ModelSpec | Path) -> ModelSpec:
    """A :class:`ModelSpec` from a law name, a spec name or path, a Law or a spec.

    Law names (``chinchilla``) give the law with default priors and the robust
    likelihood; spec names (``chinchilla_besiroglu2024``) and ``.toml`` paths load
    ``models/`` files.
    """
    if isinstance(law, ModelSpec):
        return law
    if isinstance(law, Law):
        return ModelSpec(name=law.name, law=law)
    name = str(law)
    if name in list_laws():
        return ModelSpec(name=name, law=get_law(name))
    try:
        return load_model(law)
    except ValueError as exc:
        if str(name).endswith(".toml"):
            raise
        from difflib import get_close_matches

        from .specs import list_models

        known = list_laws() + list_models()
        hint = get_close_matches(name, known, n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(
            f"unknown law or model spec {name!r}{extra} Laws: {', '.join(list_laws())}; "
            f"specs: {', '.join(list_models())}"
        ) from exc


def _progress_default(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return not (os.environ.get("CI") or os.environ.get("BAYESCALE_NO_PROGRESS"))


def fit(
    data: Runs | pd.DataFrame | str | Path,
    law: str | Law | ModelSpec = "chinchilla",
    *,
    params: str | None = None,
    tokens: str | None = None,
    compute: str | None = None,
    loss: str | None = None,
    group: str | None = None,
    downstream: str | None = None,
    sweep: str | None = None,
    priors: Mapping[str, Prior | str | Mapping] | None = None,
    likelihood: str | None = None,
    pooling: str | None = None,
    chains: int = 4,
    draws: int = 1000,
    warmup: int = 1000,
    seed: int = 0,
    device: str = "auto",
    progress: bool | None = None,
    target_accept: float = 0.9,
    dense_mass: bool = True,
    flops_per_token: float = 6.0,
    command: str | None = None,
) -> Fit:
    """Fit a scaling law to runs and return the posterior as a :class:`Fit`.

    Args:
        data: a :class:`~bayescale.runs.Runs`, a DataFrame or a CSV path.
        law: law name (``chinchilla``), spec name (``chinchilla_besiroglu2024``), a
            ``.toml`` path, a :class:`~bayescale.laws.Law` or a
            :class:`~bayescale.specs.ModelSpec`.
        params, tokens, compute, loss, group, downstream, sweep: column names, when
            ``data`` is a table (ignored for :class:`Runs`).
        priors: overrides by site name, e.g. ``{"alpha": "Uniform(low=0, high=1)"}``.
        likelihood: ``student_t`` (default) or ``normal``.
        pooling: ``none`` / ``shared`` / ``partial`` across groups.
        chains, draws, warmup: NUTS settings (per chain).
        seed: PRNG seed; the same seed gives the same draws on the same machine.
        device: ``cpu``, ``gpu`` or ``auto`` (GPU when JAX sees one).
        progress: progress bar (default on, off when ``CI`` or ``BAYESCALE_NO_PROGRESS`` is set).
        target_accept: NUTS target acceptance probability.
        dense_mass: adapt a dense mass matrix (recommended: coefficients and
            exponents are correlated).

    Returns:
        The :class:`~bayescale.posterior.Fit`.
    """
    for name, value, low in (("chains", chains, 1), ("draws", draws, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer >= {low} but got {value!r}")
    if not 0 < target_accept < 1:
        raise ValueError(f"target_accept must be in (0, 1) but got {target_accept}")
    spec = resolve_spec(law)
    if isinstance(data, Runs):
        runs = data
    else:
        if loss is None:
            raise ValueError("name the loss column (loss=... / --loss COLUMN)")
        runs = read_runs(
            data,
            params=params,
            tokens=tokens,
            compute=compute,
            loss=loss,
            downstream=downstream,
            group=group,
            sweep=sweep,
            flops_per_token=flops_per_token,
        )
    if runs.downstream is not None and not spec.downstream and downstream is not None:
        spec = spec.with_(downstream=True)
    spec = spec.with_(priors=priors, likelihood=likelihood, pooling=pooling)
    scaling_model = build_model(spec, runs)
    started = time.perf_counter()
    samples, stats = sample(
        scaling_model,
        runs,
        chains=chains,
        draws=draws,
        warmup=warmup,
        seed=seed,
        device=device,
        progress=_progress_default(progress),
        target_accept=target_accept,
        dense_mass=dense_mass,
    )
    info = {
        "seed": int(seed),
        "chains": int(chains),
        "draws": int(draws),
        "warmup": int(warmup),
        "target_accept": float(target_accept),
        "dense_mass": bool(dense_mass),
        "device": str(device),
        "seconds": round(time.perf_counter() - started, 3),
        "flops_per_token": float(runs.flops_per_token),
    }
    if command is not None:
        info["command"] = command
    return Fit(scaling_model, samples, stats, runs, info)


def model_arguments(scaling_model: ScalingModel, runs: Runs, size: int | None = None):
    """The (inputs, hyper, observations) the compiled model takes, padded to ``size`` rows."""
    size = pad_size(runs.n_runs) if size is None else size
    values = {name: getattr(runs, name) for name in scaling_model.law.inputs}
    group = runs.group if scaling_model.grouped else None
    inputs = scaling_model.inputs(values, group, pad_to=size)
    obs = {"loss": scaling_model.pad(runs.loss, size)}
    if scaling_model.spec.downstream:
        down = runs.downstream
        mask = np.zeros(size, bool)
        mask[: runs.n_runs] = ~np.isnan(down)
        inputs["downstream_mask"] = mask
        obs["downstream"] = scaling_model.pad(np.nan_to_num(down, nan=0.5), size, fill=0.5)
    return inputs, scaling_model.hyper(), obs


def sample(
    scaling_model: ScalingModel,
    runs: Runs,
    *,
    chains: int,
    draws: int,
    warmup: int,
    seed: int,
    device: str = "auto",
    progress: bool = False,
    target_accept: float = 0.9,
    dense_mass: bool = True,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run NUTS; return samples and sample stats shaped ``(chains, draws, ...)``.

    The compiled sampler is cached per model structure and settings; new data of the
    same padded shape reuses it without recompiling.
    """
    configure()
    import jax

    from .sampler import run_chains

    dev = select_device(device)
    inputs, hyper, obs = model_arguments(scaling_model, runs)
    samples, stats = run_chains(
        scaling_model.model,
        scaling_model.static_key(),
        jax.random.PRNGKey(int(seed)),
        inputs,
        hyper,
        obs,
        chains=chains,
        warmup=warmup,
        draws=draws,
        dense_mass=dense_mass,
        target_accept=target_accept,
        device=dev,
        progress=progress,
    )
    samples = {k: np.asarray(v, dtype=np.float64) for k, v in samples.items()}
    stats = {
        "diverging": np.asarray(stats["diverging"], bool),
        "energy": np.asarray(stats["energy"], np.float64),
        "n_steps": np.asarray(stats["n_steps"], np.int64),
    }
    return samples, stats
