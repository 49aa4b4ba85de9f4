"""One run of the sampler for :func:`~bayescale.inference.fit`: model arguments, settings, draws.

:func:`sample` turns a :class:`~bayescale.model.ScalingModel` and its runs into the model
function's arguments, runs NUTS through :func:`~bayescale.inference.sampler.run_chains` and
returns numpy draws; the helpers record the settings a :class:`~bayescale.posterior.Fit`
keeps (:func:`run_info`) and check a warm start against the model (:func:`_warm_start`).

Example:
    >>> import bayescale as bs
    >>> from bayescale.inference.fitting import resolve_spec
    >>> from bayescale.model import build_model
    >>> runs = bs.read_runs(bs.simulate_ladder(seed=0), params="params", tokens="tokens", loss="loss")
    >>> inputs, hyper, obs = model_arguments(build_model(resolve_spec("chinchilla"), runs), runs)
    >>> len(inputs["mask"]) >= runs.n_runs
    True
"""

from __future__ import annotations

import numpy as np

from ..data.runs import Runs
from ..model.scaling import ScalingModel, pad_size
from ..posterior.core import Fit

__all__ = ["as_draws", "default_target_accept", "model_arguments", "run_info", "sample"]

#: tables padded beyond this many rows adapt their dense metric from the windows' sample
#: covariance as it is: Stan's shrinkage (``1e-3 * 5 / (n + 5)`` added to its diagonal)
#: exceeds the posterior variance of their exponents (~1e-6 at 20,000 runs), and the
#: metric it left made NUTS take 35-40 leapfrog steps per draw at 10,000 runs against 9
#: without it (step size 0.08 against 0.45); smaller tables keep it, as before
REGULARIZE_MAX_ROWS = 1024


def _warm_start(previous, scaling_model: ScalingModel, *, chains: int, dense_mass: bool):
    """The sampler ``start`` from a previous fit, checked against this fit's settings."""
    if previous is None:
        return None
    if not isinstance(previous, Fit):
        raise ValueError(f"warm_start must be a Fit but got {type(previous).__name__}")
    if previous.sampler_end is None:
        raise ValueError(
            "warm_start: this Fit has no sampler end state (a fit file written without "
            "one, e.g. by an older bayescale); fit without warm_start"
        )
    if previous.model.static_key() != scaling_model.static_key():
        raise ValueError(
            "warm_start: the previous fit is of another model structure (law, likelihood, "
            "pooling, groups or prior families differ); fit without warm_start"
        )
    had = len(previous.sampler_end["step_size"])
    if had != chains:
        raise ValueError(f"warm_start: the previous fit has {had} chains but chains={chains}")
    if bool(previous.info.get("dense_mass", True)) != bool(dense_mass):
        raise ValueError(
            f"warm_start: the previous fit has dense_mass={previous.info.get('dense_mass')} "
            f"but dense_mass={dense_mass}"
        )
    return previous.sampler_end


def run_info(
    runs: Runs, *, seed, chains, draws, warmup, target_accept, dense_mass, device, seconds
):
    """The sampler settings and provenance a :class:`Fit` records in ``info``."""
    return {
        "seed": int(seed),
        "chains": int(chains),
        "draws": int(draws),
        "warmup": int(warmup),
        "target_accept": float(target_accept),
        "dense_mass": bool(dense_mass),
        "device": str(device),
        "seconds": seconds,
        "flops_per_token": float(runs.flops_per_token),
    }


def as_draws(samples, stats) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Sampler output as numpy: samples in float64, sample stats with their own dtypes."""
    samples = {k: np.asarray(v, dtype=np.float64) for k, v in samples.items()}
    stats = {
        "diverging": np.asarray(stats["diverging"], bool),
        "energy": np.asarray(stats["energy"], np.float64),
        "n_steps": np.asarray(stats["n_steps"], np.int64),
    }
    return samples, stats


def _check_loss_mask(loss_mask, runs: Runs) -> np.ndarray | None:
    """Validate ``loss_mask``: one boolean per run, at least one True."""
    if loss_mask is None:
        return None
    mask = np.asarray(loss_mask)
    if mask.dtype != bool or mask.shape != (runs.n_runs,):
        raise ValueError(
            f"loss_mask must be {runs.n_runs} booleans (one per run) but got "
            f"dtype {mask.dtype} and shape {mask.shape}"
        )
    if not mask.any():
        raise ValueError("loss_mask must keep at least one run for the loss law but is all False")
    return mask


def model_arguments(
    scaling_model: ScalingModel,
    runs: Runs,
    size: int | None = None,
    loss_mask: np.ndarray | None = None,
):
    """The (inputs, hyper, observations) the compiled model takes, padded to ``size`` rows."""
    size = pad_size(runs.n_runs) if size is None else size
    values = {name: runs.input(name) for name in scaling_model.law.inputs}
    group = runs.group if scaling_model.grouped else None
    sweep = scaling_model.sweep_codes(runs) if scaling_model.n_sweeps else None
    inputs = scaling_model.inputs(values, group, pad_to=size, sweep=sweep)
    obs = {"loss": scaling_model.pad(runs.loss, size)}
    if loss_mask is not None:
        inputs["loss_mask"] = inputs["mask"] & scaling_model.pad(loss_mask, size, 0.0).astype(bool)
    if scaling_model.spec.downstream:
        down = runs.downstream
        mask = np.zeros(size, bool)
        mask[: runs.n_runs] = ~np.isnan(down)
        inputs["downstream_mask"] = mask
        obs["downstream"] = scaling_model.pad(np.nan_to_num(down, nan=0.5), size, fill=0.5)
    return inputs, scaling_model.hyper(), obs


def default_target_accept(scaling_model: ScalingModel) -> float:
    """NUTS target acceptance when none is given: 0.95, or 0.97 for partial pooling.

    Scaling-law posteriors of small ladders have long E-A-B tails that the step sizes of
    0.8-0.9 cross with divergences; partial pooling's non-centred hierarchy forms a ridge
    when arms share an exponent. :func:`fit` and :func:`bayescale.inference.batch.fit_many` share it.
    """
    partial = scaling_model.spec.pooling == "partial" and scaling_model.grouped
    return 0.97 if partial else 0.95


def sample(
    scaling_model: ScalingModel,
    runs: Runs,
    *,
    chains: int,
    draws: int,
    warmup: int,
    seed: int,
    device,
    progress: bool = False,
    target_accept: float = 0.9,
    dense_mass: bool = True,
    loss_mask: np.ndarray | None = None,
    start: dict | None = None,
    size: int | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run NUTS; return samples and sample stats shaped ``(chains, draws, ...)`` and where
    each chain ended (see :func:`bayescale.inference.sampler.run_chains`). ``device``: the JAX device
    (:func:`bayescale._jax.select_device`, after :func:`bayescale._jax.configure`).

    The compiled sampler is cached per model structure and settings; new data of the
    same padded shape reuses it without recompiling (``size``: pad to this many rows
    instead of the next power of two, so a subset reuses the full data's programs).
    """
    from .sampler import run_chains

    inputs, hyper, obs = model_arguments(scaling_model, runs, size=size, loss_mask=loss_mask)
    samples, stats, end = run_chains(
        scaling_model.model,
        scaling_model.static_key(),
        int(seed),  # the key data of jax.random.PRNGKey(seed), built without a JAX dispatch
        inputs,
        hyper,
        obs,
        chains=chains,
        warmup=warmup,
        draws=draws,
        dense_mass=dense_mass,
        target_accept=target_accept,
        device=device,
        progress=progress,
        persist=scaling_model.portable,
        start=start,
        regularize_mass_matrix=len(inputs["mask"]) <= REGULARIZE_MAX_ROWS,
    )
    return (*as_draws(samples, stats), end)
